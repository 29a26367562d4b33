"""Polling real feeds over HTTP (a local server, tests/integration/newsfeed/httpserver.py) into SQLite and PostgreSQL
with the real fetcher: ingestion, conditional requests, updates, redirects, back-off and bad feeds."""
import dataclasses
import datetime as dt
import json
import random

import pytest
from sqlalchemy import select

from newsfeed import handlers
from newsfeed.commands import AddFeed
from newsfeed.events import ARTICLE_INGESTED, ARTICLE_UPDATED, EVENT_SCHEMAS
from newsfeed.fetch import Fetcher, FetchPolicy
from newsfeed.model import OutboxMessage, create_schema
from services.kernel.db import make_engine, make_session_factory
from services.kernel.outbox import SqlUnitOfWork
from tests.unit.newsfeed.factories import atom, make_item, rss

NOW = dt.datetime(2026, 1, 10, 12, 0, tzinfo=dt.UTC)
ITEMS = [
    make_item(guid="jc-1", link="https://jiangcheng.example.cn/a/1.html"),
    make_item(guid="jc-2", title="保障性租赁住房草案征求意见", link="https://jiangcheng.example.cn/a/2.html",
              description="<p>租金不高于同地段市场租金的九成，房价上涨较快片区优先供应。</p>"),
    make_item(guid="jc-3", title="地铁新线开通", link="https://jiangcheng.example.cn/a/3.html",
              description="<p>新站设置非机动车停放区。</p>"),
]


@pytest.fixture
def uow(database_url):
    engine = make_engine(database_url)
    create_schema(engine)
    yield SqlUnitOfWork(make_session_factory(engine), OutboxMessage, EVENT_SCHEMAS)
    engine.dispose()


@pytest.fixture
def fetcher():
    with Fetcher(FetchPolicy(connect_timeout=2.0, read_timeout=2.0, total_timeout=10.0)) as fetcher:
        yield fetcher


def events(uow) -> list[tuple[str, dict]]:
    with uow:
        rows = uow.session.scalars(select(OutboxMessage).order_by(OutboxMessage.created_at, OutboxMessage.id)).all()
        return [(row.event_type, json.loads(row.payload)) for row in rows]


def subscribe(uow, fetcher, url) -> int:
    return handlers.add_feed(uow, AddFeed(url=url), fetcher, now=NOW)["id"]


def test_first_poll_ingests_every_item_and_a_304_afterwards_emits_nothing(uow, fetcher, feed_server):
    feed_server.serve("/rss.xml", rss(ITEMS), etag='"v1"')
    feed_id = subscribe(uow, fetcher, feed_server.url("/rss.xml"))

    first = handlers.poll_feed(uow, feed_id, fetcher, now=NOW)
    second = handlers.poll_feed(uow, feed_id, fetcher, now=NOW + dt.timedelta(minutes=15))

    assert (first.status, first.new) == ("ok", 3)
    assert second.status == "not_modified"
    assert feed_server.requests_to("/rss.xml")[-1].headers["if-none-match"] == '"v1"'
    assert [name for name, _ in events(uow)] == [ARTICLE_INGESTED] * 3
    assert {body["url"] for _, body in events(uow)} == {item.link for item in ITEMS}


def test_a_changed_item_emits_article_updated_and_nothing_else(uow, fetcher, feed_server):
    route = feed_server.serve("/rss.xml", rss(ITEMS), etag='"v1"')
    feed_id = subscribe(uow, fetcher, feed_server.url("/rss.xml"))
    handlers.poll_feed(uow, feed_id, fetcher, now=NOW)
    changed = [dataclasses.replace(ITEMS[0], description="<p>征求意见截止日期延长至二月二十日。</p>"), *ITEMS[1:]]
    route.body, route.etag = rss(changed), '"v2"'

    outcome = handlers.poll_feed(uow, feed_id, fetcher, now=NOW + dt.timedelta(minutes=15))

    assert (outcome.new, outcome.updated, outcome.unchanged) == (0, 1, 2)
    name, body = events(uow)[-1]
    assert name == ARTICLE_UPDATED and body["version"] == 2 and "二月二十日" in body["text"]
    assert len(events(uow)) == 4


def test_a_permanent_redirect_updates_the_stored_feed_url(uow, fetcher, feed_server):
    feed_server.serve("/rss.xml", rss(ITEMS))
    feed_id = subscribe(uow, fetcher, feed_server.url("/rss.xml"))
    feed_server.serve("/new/rss.xml", rss(ITEMS))
    feed_server.redirect("/rss.xml", "/new/rss.xml", status=301)

    outcome = handlers.poll_feed(uow, feed_id, fetcher, now=NOW)

    assert outcome.status == "ok" and outcome.new == 3
    assert handlers.get_feed(uow, feed_id)["url"] == feed_server.url("/new/rss.xml")


def test_429_with_retry_after_backs_off_at_least_that_long_and_shows_in_health(uow, fetcher, feed_server):
    feed_server.serve("/rss.xml", rss(ITEMS))
    feed_id = subscribe(uow, fetcher, feed_server.url("/rss.xml"))
    feed_server.error("/rss.xml", 429, retry_after="7200")

    outcome = handlers.poll_feed(uow, feed_id, fetcher, now=NOW, rng=random.Random(7))

    health = handlers.get_feed(uow, feed_id)["health"]
    assert outcome.status == "failed"
    assert health["last_error"] == "HTTP 429" and health["consecutive_failures"] == 1
    assert health["next_poll_at"] >= NOW + dt.timedelta(hours=2)


def test_repeated_500s_back_off_further_each_time(uow, fetcher, feed_server):
    feed_server.serve("/rss.xml", rss(ITEMS))
    feed_id = subscribe(uow, fetcher, feed_server.url("/rss.xml"))
    feed_server.error("/rss.xml", 500)
    rng = random.Random(3)

    waits = []
    for _ in range(4):
        handlers.poll_feed(uow, feed_id, fetcher, now=NOW, rng=rng)
        waits.append(handlers.get_feed(uow, feed_id)["health"]["next_poll_at"] - NOW)

    health = handlers.get_feed(uow, feed_id)["health"]
    assert health["consecutive_failures"] == 4 and health["status"] == "failing"
    assert waits[-1] > dt.timedelta(minutes=1) and max(waits) <= dt.timedelta(hours=6)


def test_a_malformed_feed_is_marked_failed_while_the_other_feeds_carry_on(uow, fetcher, feed_server):
    feed_server.serve("/good.xml", rss(ITEMS))
    feed_server.serve("/cycling.atom", atom([{"id": "urn:c1", "link": "https://bikes.example.org/1",
                                                "content": "<p>Protected cycling lanes on five roads</p>"}]),
                      content_type="application/atom+xml")
    feed_server.serve("/broken.xml", rss(ITEMS))
    good = subscribe(uow, fetcher, feed_server.url("/good.xml"))
    cycling = subscribe(uow, fetcher, feed_server.url("/cycling.atom"))
    broken = subscribe(uow, fetcher, feed_server.url("/broken.xml"))
    feed_server.serve("/broken.xml", b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>",
                      content_type="application/rss+xml")

    outcomes = {feed_id: handlers.poll_feed(uow, feed_id, fetcher, now=NOW) for feed_id in handlers.due_feeds(uow, NOW)}

    assert outcomes[good].new == 3 and outcomes[cycling].new == 1
    assert outcomes[broken].status == "failed"
    health = {feed["id"]: feed["health"] for feed in handlers.list_feeds(uow)}
    assert health[broken]["last_error"] == "HTML page, not a feed" and health[broken]["status"] == "failing"
    assert health[good]["status"] == "ok" and health[cycling]["status"] == "ok"


def test_a_gbk_feed_served_as_utf8_is_stored_without_mojibake(uow, fetcher, feed_server):
    document = rss([make_item(title="医保门诊报销新规")], encoding="gbk", declared_encoding="utf-8")
    feed_server.serve("/gbk.xml", document, content_type="application/rss+xml; charset=utf-8", gzip=True)
    feed_id = subscribe(uow, fetcher, feed_server.url("/gbk.xml"))

    handlers.poll_feed(uow, feed_id, fetcher, now=NOW)

    assert events(uow)[0][1]["title"] == "医保门诊报销新规"


def test_adding_a_news_page_discovers_and_subscribes_its_feed(uow, fetcher, feed_server):
    feed_server.serve("/news/", b'<html><head><link rel="alternate" type="application/rss+xml" title="News" '
                                b'href="/news/rss.xml"></head><body>news</body></html>', content_type="text/html")
    feed_server.serve("/news/rss.xml", rss(ITEMS))

    feed = handlers.add_feed(uow, AddFeed(url=feed_server.url("/news/")), fetcher, now=NOW)

    assert feed["url"] == feed_server.url("/news/rss.xml")
    assert handlers.poll_feed(uow, feed["id"], fetcher, now=NOW).new == 3
