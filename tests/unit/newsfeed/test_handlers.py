"""Handlers against a real SQLite file; the fetcher is scripted because unit tests run without network (the real
fetcher over a real HTTP server is exercised in tests/integration/newsfeed/test_poll_pipeline.py)."""
import dataclasses
import datetime as dt
import json
import random

import pytest
from sqlalchemy import select

from newsfeed import handlers
from newsfeed.commands import AddFeed, ListArticles, UpdateFeed
from newsfeed.events import ARTICLE_INGESTED, ARTICLE_UPDATED, EVENT_SCHEMAS
from newsfeed.exceptions import FeedAlreadyExists, InvalidFeed, NotFound
from newsfeed.model import Article, OutboxMessage, create_schema
from services.kernel.db import make_engine, make_session_factory
from services.kernel.outbox import SqlUnitOfWork

from .factories import ScriptedFetcher, fetch_failed, fetch_not_modified, fetch_ok, make_item, rss

FEED_URL = "https://news.example.cn/rss.xml"
NOW = dt.datetime(2026, 1, 10, 12, 0, tzinfo=dt.UTC)
LONG_BODY = (
    "<p>市医疗保障局发布《关于完善职工基本医疗保险门诊共济保障机制的实施办法（征求意见稿）》，向社会公开征求意见。"
    "征求意见稿提出，普通门诊统筹报销比例在一级及以下定点医疗机构提高到百分之六十，年度最高支付限额由二千元提高到"
    "三千元，退休人员报销比例再提高五个百分点。意见反馈截止日期为二月十日。</p>"
)


@pytest.fixture
def uow(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'newsfeed.sqlite3'}")
    create_schema(engine)
    yield SqlUnitOfWork(make_session_factory(engine), OutboxMessage, EVENT_SCHEMAS)
    engine.dispose()


def outbox(uow) -> list[tuple[str, dict]]:
    with uow:
        rows = uow.session.scalars(select(OutboxMessage).order_by(OutboxMessage.created_at)).all()
        return [(row.event_type, json.loads(row.payload)) for row in rows]


def subscribe(uow, fetcher, url=FEED_URL, **settings) -> int:
    return handlers.add_feed(uow, AddFeed(url=url, **settings), fetcher, now=NOW)["id"]


def two_items():
    return [make_item(guid="g1", link="https://news.example.cn/a/1.html?utm_source=rss", description=LONG_BODY),
            make_item(guid="g2", title="住房租赁新规", link="https://news.example.cn/a/2.html",
                      description="<p>保障性租赁住房管理办法草案公开征求意见。</p>")]


def test_adding_a_feed_stores_its_title_and_makes_it_due_at_once(uow):
    fetcher = ScriptedFetcher({FEED_URL: fetch_ok(FEED_URL, rss(two_items()))})

    feed = handlers.add_feed(uow, AddFeed(url=FEED_URL, category="health"), fetcher, now=NOW)

    assert feed["title"] == "示例日报" and feed["outlet"] == "示例日报"
    assert feed["health"]["status"] == "new"
    assert handlers.due_feeds(uow, NOW) == [feed["id"]]


def test_adding_a_page_discovers_the_feed_it_advertises(uow):
    page = b'<html><head><link rel="alternate" type="application/rss+xml" href="/rss.xml"></head><body/></html>'
    fetcher = ScriptedFetcher({"https://news.example.cn/": fetch_ok("https://news.example.cn/", page,
                                                                     {"content-type": "text/html"}),
                               FEED_URL: fetch_ok(FEED_URL, rss(two_items()))})

    feed = handlers.add_feed(uow, AddFeed(url="https://news.example.cn/"), fetcher, now=NOW)

    assert feed["url"] == FEED_URL
    assert feed["site_url"] == "https://news.example.cn/"


def test_a_page_without_feeds_is_invalid_with_a_reason(uow):
    fetcher = ScriptedFetcher({"https://x.example/": fetch_ok("https://x.example/", b"<html><body>hi</body></html>",
                                                               {"content-type": "text/html"})})

    with pytest.raises(InvalidFeed) as invalid:
        handlers.add_feed(uow, AddFeed(url="https://x.example/"), fetcher)

    assert "no feed found" in invalid.value.errors["url"][0]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [({"url": "ftp://x.example/feed"}, "url"), ({"time_zone": "Mars/Olympus"}, "time_zone"),
     ({"poll_interval_s": 5}, "poll_interval_s"), ({"language": "fr"}, "language")],
)
def test_bad_feed_settings_are_rejected_field_by_field(uow, overrides, field):
    with pytest.raises(InvalidFeed) as invalid:
        handlers.add_feed(uow, AddFeed(**{"url": FEED_URL, **overrides}), ScriptedFetcher())

    assert field in invalid.value.errors


def test_adding_the_same_feed_twice_is_a_conflict(uow):
    fetcher = ScriptedFetcher({FEED_URL: fetch_ok(FEED_URL, rss(two_items()))})
    subscribe(uow, fetcher)

    with pytest.raises(FeedAlreadyExists):
        subscribe(uow, fetcher)


def test_first_poll_stores_articles_and_emits_one_ingested_event_each(uow):
    fetcher = ScriptedFetcher({FEED_URL: fetch_ok(FEED_URL, rss(two_items()), etag='"v1"')})
    feed_id = subscribe(uow, fetcher)

    outcome = handlers.poll_feed(uow, feed_id, fetcher, now=NOW)

    assert (outcome.status, outcome.new, outcome.updated) == ("ok", 2, 0)
    events = outbox(uow)
    assert [name for name, _ in events] == [ARTICLE_INGESTED, ARTICLE_INGESTED]
    first = events[0][1]
    assert first["url"] == "https://news.example.cn/a/1.html"
    assert first["version"] == 1 and first["language"] == "zh" and first["outlet"] == "示例日报"
    assert first["published_at"] == "2026-01-06T02:00:00+00:00"
    health = handlers.get_feed(uow, feed_id)["health"]
    assert health["status"] == "ok" and health["last_success_at"] == NOW and health["next_poll_at"] > NOW


def test_second_poll_sends_validators_and_a_304_emits_nothing(uow):
    fetcher = ScriptedFetcher({FEED_URL: [fetch_ok(FEED_URL, rss(two_items()), etag='"v1"'),
                                          fetch_ok(FEED_URL, rss(two_items()), etag='"v1"'),
                                          fetch_not_modified(FEED_URL, etag='"v1"')]})
    feed_id = subscribe(uow, fetcher)
    handlers.poll_feed(uow, feed_id, fetcher, now=NOW)

    outcome = handlers.poll_feed(uow, feed_id, fetcher, now=NOW)

    assert outcome.status == "not_modified"
    assert fetcher.calls[-1] == (FEED_URL, '"v1"', None)
    assert len(outbox(uow)) == 2


def test_repolling_unchanged_content_without_validators_emits_nothing(uow):
    fetcher = ScriptedFetcher({FEED_URL: fetch_ok(FEED_URL, rss(two_items()))})
    feed_id = subscribe(uow, fetcher)
    handlers.poll_feed(uow, feed_id, fetcher, now=NOW)

    outcome = handlers.poll_feed(uow, feed_id, fetcher, now=NOW + dt.timedelta(minutes=15))

    assert (outcome.new, outcome.updated, outcome.unchanged) == (0, 0, 2)
    assert len(outbox(uow)) == 2


def test_really_changed_item_emits_updated_with_the_next_version(uow):
    items = two_items()
    changed = [dataclasses.replace(items[0], title="医保门诊报销新规（修订）"), items[1]]
    fetcher = ScriptedFetcher({FEED_URL: [fetch_ok(FEED_URL, rss(items)), fetch_ok(FEED_URL, rss(items)),
                                          fetch_ok(FEED_URL, rss(changed))]})
    feed_id = subscribe(uow, fetcher)
    handlers.poll_feed(uow, feed_id, fetcher, now=NOW)

    outcome = handlers.poll_feed(uow, feed_id, fetcher, now=NOW)

    assert (outcome.updated, outcome.unchanged) == (1, 1)
    name, payload = outbox(uow)[-1]
    assert name == ARTICLE_UPDATED
    assert payload["version"] == 2 and payload["title"] == "医保门诊报销新规（修订）"


def test_same_story_in_two_feeds_is_one_article_owned_by_the_first(uow):
    mirror = "https://mirror.example.com/feed"
    fetcher = ScriptedFetcher({FEED_URL: fetch_ok(FEED_URL, rss(two_items())),
                               mirror: fetch_ok(mirror, rss(two_items()[:1], title="Mirror"))})
    first = subscribe(uow, fetcher)
    second = subscribe(uow, fetcher, url=mirror)
    handlers.poll_feed(uow, first, fetcher, now=NOW)

    outcome = handlers.poll_feed(uow, second, fetcher, now=NOW)

    assert (outcome.new, outcome.duplicates) == (0, 1)
    assert handlers.count_articles(uow) == 2


def test_syndicated_copy_from_another_outlet_is_grouped_under_the_canonical_article(uow):
    other = "https://other.example.com/feed"
    copy = make_item(guid="o1", title="门诊报销比例拟提高", link="https://other.example.com/n/77",
                     description=LONG_BODY.replace("发布", "今天发布"))
    fetcher = ScriptedFetcher({FEED_URL: fetch_ok(FEED_URL, rss(two_items())),
                               other: fetch_ok(other, rss([copy], title="Other Daily"))})
    first = subscribe(uow, fetcher)
    second = subscribe(uow, fetcher, url=other)
    handlers.poll_feed(uow, first, fetcher, now=NOW)

    outcome = handlers.poll_feed(uow, second, fetcher, now=NOW)

    assert (outcome.new, outcome.syndicated) == (1, 1)
    name, payload = outbox(uow)[-1]
    canonical = outbox(uow)[0][1]
    assert name == ARTICLE_INGESTED and payload["canonical_of"] == canonical["id"]


def test_events_carry_no_author_and_mask_contact_details(uow):
    item = make_item(guid="p1", author="reporter@example.cn (Wang Reporter)",
                     description="<p>咨询电话13812345678，邮箱 office@example.gov.cn，身份证110101199001011234。</p>")
    fetcher = ScriptedFetcher({FEED_URL: fetch_ok(FEED_URL, rss([item]))})
    feed_id = subscribe(uow, fetcher)

    handlers.poll_feed(uow, feed_id, fetcher, now=NOW)

    raw = json.dumps(outbox(uow), ensure_ascii=False)
    assert "Wang" not in raw and "13812345678" not in raw and "office@example.gov.cn" not in raw
    assert "110101199001011234" not in raw and "[redacted]" in raw


def test_http_failure_backs_off_and_records_the_reason(uow):
    fetcher = ScriptedFetcher({FEED_URL: [fetch_ok(FEED_URL, rss(two_items())),
                                          fetch_failed(FEED_URL, 429, retry_after=3600)]})
    feed_id = subscribe(uow, fetcher)

    outcome = handlers.poll_feed(uow, feed_id, fetcher, now=NOW, rng=random.Random(1))

    health = handlers.get_feed(uow, feed_id)["health"]
    assert outcome.status == "failed" and outcome.error == "HTTP 429"
    assert health["status"] == "failing" and health["consecutive_failures"] == 1
    assert health["last_error"] == "HTTP 429" and health["next_poll_at"] >= NOW + dt.timedelta(hours=1)


def test_unusable_document_marks_the_feed_failed_with_the_reason(uow):
    page = b"<!DOCTYPE html><html><body>maintenance</body></html>"
    fetcher = ScriptedFetcher({FEED_URL: [fetch_ok(FEED_URL, rss(two_items())), fetch_ok(FEED_URL, page)]})
    feed_id = subscribe(uow, fetcher)

    outcome = handlers.poll_feed(uow, feed_id, fetcher, now=NOW)

    assert outcome.status == "failed" and outcome.error == "HTML page, not a feed"
    assert handlers.list_feeds(uow)[0]["health"]["last_error"] == "HTML page, not a feed"
    assert outbox(uow) == []


def test_success_after_failures_resets_the_count_but_keeps_the_last_error_visible(uow):
    fetcher = ScriptedFetcher({FEED_URL: [fetch_ok(FEED_URL, rss(two_items())), fetch_failed(FEED_URL, 500),
                                          fetch_ok(FEED_URL, rss(two_items()))]})
    feed_id = subscribe(uow, fetcher)
    handlers.poll_feed(uow, feed_id, fetcher, now=NOW)

    handlers.poll_feed(uow, feed_id, fetcher, now=NOW + dt.timedelta(hours=1))

    health = handlers.get_feed(uow, feed_id)["health"]
    assert health["consecutive_failures"] == 0 and health["status"] == "ok"
    assert health["last_error"] == "HTTP 500"


def test_due_feeds_are_leased_so_a_second_tick_does_not_poll_them_again(uow):
    fetcher = ScriptedFetcher({FEED_URL: fetch_ok(FEED_URL, rss(two_items()))})
    feed_id = subscribe(uow, fetcher)

    assert handlers.due_feeds(uow, NOW) == [feed_id]
    assert handlers.due_feeds(uow, NOW + dt.timedelta(seconds=5)) == []


def test_paused_feeds_are_not_due_and_are_not_polled(uow):
    fetcher = ScriptedFetcher({FEED_URL: fetch_ok(FEED_URL, rss(two_items()))})
    feed_id = subscribe(uow, fetcher)
    handlers.pause_feed(uow, feed_id)

    assert handlers.due_feeds(uow, NOW) == []
    assert handlers.poll_feed(uow, feed_id, fetcher, now=NOW).status == "skipped"
    assert handlers.resume_feed(uow, feed_id, now=NOW)["health"]["next_poll_at"] == NOW


def test_update_feed_changes_settings_and_refuses_bad_values(uow):
    fetcher = ScriptedFetcher({FEED_URL: fetch_ok(FEED_URL, rss(two_items()))})
    feed_id = subscribe(uow, fetcher)

    view = handlers.update_feed(uow, UpdateFeed(feed_id, outlet="Demo Daily", poll_interval_s=600, category=""))

    assert (view["outlet"], view["poll_interval_s"], view["category"]) == ("Demo Daily", 600, None)
    with pytest.raises(InvalidFeed):
        handlers.update_feed(uow, UpdateFeed(feed_id, time_zone="Nowhere/Land"))


def test_unknown_feed_and_article_are_not_found(uow):
    with pytest.raises(NotFound):
        handlers.get_feed(uow, 404)
    with pytest.raises(NotFound):
        handlers.get_article(uow, "nope")


def test_removing_a_feed_removes_its_articles(uow):
    fetcher = ScriptedFetcher({FEED_URL: fetch_ok(FEED_URL, rss(two_items()))})
    feed_id = subscribe(uow, fetcher)
    handlers.poll_feed(uow, feed_id, fetcher, now=NOW)

    handlers.remove_feed(uow, feed_id)

    assert handlers.list_feeds(uow) == [] and handlers.count_articles(uow) == 0


def test_articles_are_listed_in_pages_for_reindexing(uow):
    items = [make_item(guid=f"g{i}", title=f"第{i}条", link=f"https://news.example.cn/a/{i}.html") for i in range(5)]
    fetcher = ScriptedFetcher({FEED_URL: fetch_ok(FEED_URL, rss(items))})
    feed_id = subscribe(uow, fetcher)
    handlers.poll_feed(uow, feed_id, fetcher, now=NOW)

    first = handlers.list_articles(uow, ListArticles(limit=3))
    second = handlers.list_articles(uow, ListArticles(limit=3, after=first["next_after"]))

    ids = [item["id"] for item in first["items"] + second["items"]]
    assert len(ids) == 5 == len(set(ids)) and second["next_after"] is None
    assert handlers.get_article(uow, ids[0])["content_html"].startswith("<p>")


def test_stored_article_keeps_author_and_sanitised_html_but_not_scripts(uow):
    item = make_item(guid="s1", author="Desk", description='<p>ok</p><script>alert(1)</script><a href="/x">x</a>')
    fetcher = ScriptedFetcher({FEED_URL: fetch_ok(FEED_URL, rss([item]))})
    feed_id = subscribe(uow, fetcher)
    handlers.poll_feed(uow, feed_id, fetcher, now=NOW)

    with uow:
        article = uow.session.scalars(select(Article)).one()
        assert article.author == "Desk"
        assert "script" not in article.content_html
        assert 'href="https://news.example.cn/x"' in article.content_html


def test_an_unexpected_error_while_storing_fails_only_that_feed_and_leaves_nothing_half_written(uow, monkeypatch):
    fetcher = ScriptedFetcher({FEED_URL: fetch_ok(FEED_URL, rss(two_items()))})
    feed_id = subscribe(uow, fetcher)

    def explode(session, feed, batch, emit, now):
        emit(ARTICLE_INGESTED, {})  # staged, and must be rolled back with everything else

    # Fault injection: a bug cannot be produced on demand otherwise.
    monkeypatch.setattr(handlers, "store_articles", explode)
    outcome = handlers.poll_feed(uow, feed_id, fetcher, now=NOW)

    assert outcome.status == "failed" and outcome.error.startswith("internal error while storing")
    assert handlers.get_feed(uow, feed_id)["health"]["consecutive_failures"] == 1
    assert outbox(uow) == [] and handlers.count_articles(uow) == 0


def test_service_input_is_loaded_into_commands_or_refused_with_field_messages():
    from newsfeed import schemas

    command = schemas.load_add_feed({"url": "http://127.0.0.1:8000/demo/feeds/a.xml", "language": "zh"})
    assert command == AddFeed(url="http://127.0.0.1:8000/demo/feeds/a.xml", language="zh")
    with pytest.raises(InvalidFeed) as invalid:
        schemas.load_add_feed({"url": "not a url", "poll_interval_s": 1, "time_zone": "Nowhere"})
    assert set(invalid.value.errors) == {"url", "poll_interval_s", "time_zone"}
    assert schemas.load_update_feed({"feed_id": 3, "outlet": "X"}) == UpdateFeed(feed_id=3, outlet="X")
    assert schemas.load_list_articles({"limit": 5}).limit == 5


def test_poll_outcome_and_feed_views_dump_to_plain_json(uow):
    from newsfeed import schemas

    fetcher = ScriptedFetcher({FEED_URL: fetch_ok(FEED_URL, rss(two_items()))})
    feed_id = subscribe(uow, fetcher)
    outcome = handlers.poll_feed(uow, feed_id, fetcher, now=NOW)

    dumped = schemas.PollOutcomeSchema().dump(outcome)
    feed = schemas.FeedSchema().dump(handlers.get_feed(uow, feed_id))
    page = schemas.ArticlePageSchema().dump(handlers.list_articles(uow))

    json.dumps([dumped, feed, page])
    assert dumped["new"] == 2 and feed["health"]["status"] == "ok" and len(page["items"]) == 2


def test_an_item_whose_link_moves_onto_another_items_url_neither_crashes_nor_duplicates(uow):
    first = make_item(guid="g1", link="https://news.example.cn/a/1.html")
    moved = make_item(guid="g1", title="改了标题", link="https://news.example.cn/a/9.html")
    other = make_item(guid="g9", title="另一条", link="https://news.example.cn/a/9.html")
    fetcher = ScriptedFetcher({FEED_URL: [fetch_ok(FEED_URL, rss([first])), fetch_ok(FEED_URL, rss([first])),
                                          fetch_ok(FEED_URL, rss([moved, other]))]})
    feed_id = subscribe(uow, fetcher)
    handlers.poll_feed(uow, feed_id, fetcher, now=NOW)

    outcome = handlers.poll_feed(uow, feed_id, fetcher, now=NOW)

    assert (outcome.status, outcome.updated, outcome.duplicates, outcome.new) == ("ok", 1, 1, 0)
    assert outbox(uow)[-1][1]["url"] == "https://news.example.cn/a/9.html"
