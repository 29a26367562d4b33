"""The newsfeed model and handlers on real databases: SQLite and PostgreSQL (the `database_url` fixture)."""
import dataclasses
import datetime as dt
import json

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from newsfeed import handlers
from newsfeed.commands import AddFeed, ListArticles
from newsfeed.events import ARTICLE_INGESTED, EVENT_SCHEMAS
from newsfeed.model import Article, Feed, OutboxMessage, create_schema
from newsfeed.pipeline import parse_and_normalise, store_articles
from services.kernel.db import make_engine, make_session_factory
from services.kernel.outbox import SqlUnitOfWork, relay_pending
from tests.unit.newsfeed.factories import ScriptedFetcher, fetch_ok, make_item, rss

FEED_URL = "https://news.example.cn/rss.xml"
NOW = dt.datetime(2026, 1, 10, 12, 0, tzinfo=dt.UTC)
BODY = ("<p>市医疗保障局发布门诊费用报销管理办法征求意见稿，拟将一级及以下定点医疗机构普通门诊统筹支付比例提高到"
        "百分之六十，二级机构百分之五十五，三级机构百分之五十，退休人员再提高十个百分点，年度限额提高到四千元。"
        "征求意见稿还规定，个人账户可用于支付配偶、父母、子女在定点医疗机构就医发生的个人负担费用。</p>")


@pytest.fixture
def engine(database_url):
    engine = make_engine(database_url)
    create_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def uow(engine):
    return SqlUnitOfWork(make_session_factory(engine), OutboxMessage, EVENT_SCHEMAS)


def subscribe(uow, items, url=FEED_URL) -> tuple[int, ScriptedFetcher]:
    fetcher = ScriptedFetcher({url: fetch_ok(url, rss(items))})
    return handlers.add_feed(uow, AddFeed(url=url), fetcher, now=NOW)["id"], fetcher


def test_article_round_trips_aware_utc_dates_chinese_categories_and_64_bit_lsh_keys(uow):
    feed_id, fetcher = subscribe(uow, [make_item(guid="g1", description=BODY, categories=["医保", "民生"])])

    handlers.poll_feed(uow, feed_id, fetcher, now=NOW)

    with uow:
        article = uow.session.scalars(select(Article)).one()
        assert article.published_at == dt.datetime(2026, 1, 6, 2, 0, tzinfo=dt.UTC)
        assert article.ingested_at == NOW and article.ingested_at.tzinfo is not None
        assert article.categories == ["医保", "民生"]
        keys = [article.lsh0, article.lsh1, article.lsh2, article.lsh3, article.lsh4]
        assert all(key is not None and -(1 << 63) <= key < (1 << 63) for key in keys)
        assert article.sketch and len(article.sketch) == 160


def test_very_long_urls_and_guids_are_stored_and_found_again(uow):
    long_url = "https://news.example.cn/a?" + "&".join(f"p{i}=v{i}" for i in range(400))
    feed_id, fetcher = subscribe(uow, [make_item(guid="g" * 3000, link=long_url)])

    first = handlers.poll_feed(uow, feed_id, fetcher, now=NOW)
    second = handlers.poll_feed(uow, feed_id, fetcher, now=NOW)

    assert (first.new, second.unchanged) == (1, 1)


def test_articles_and_their_events_commit_together_and_roll_back_together(uow):
    feed_id, _ = subscribe(uow, [make_item()])
    with uow:
        feed = uow.session.get(Feed, feed_id)
        _, articles = parse_and_normalise(rss([make_item(guid="a"), make_item(guid="b", link="https://e.cn/b")]),
                                          {}, feed, NOW)
        store_articles(uow.session, feed, articles, uow.emit, NOW)
        uow.rollback()
    with uow:
        assert uow.session.scalars(select(Article)).all() == []
        assert uow.session.scalars(select(OutboxMessage)).all() == []

    with uow:
        feed = uow.session.get(Feed, feed_id)
        store_articles(uow.session, feed, articles, uow.emit, NOW)
        uow.commit()
    with uow:
        assert len(uow.session.scalars(select(Article)).all()) == 2
        assert [row.event_type for row in uow.session.scalars(select(OutboxMessage))] == [ARTICLE_INGESTED] * 2


def test_the_database_refuses_two_articles_with_the_same_canonical_url(uow):
    feed_id, fetcher = subscribe(uow, [make_item(guid="g1")])
    handlers.poll_feed(uow, feed_id, fetcher, now=NOW)

    with uow:
        original = uow.session.scalars(select(Article)).one()
        clone = Article(**{column.key: getattr(original, column.key) for column in Article.__table__.columns})
        clone.id = "0" * 32
        uow.session.add(clone)
        with pytest.raises(IntegrityError):
            uow.session.flush()


def test_due_feeds_come_oldest_first_and_paused_ones_never(uow):
    first, _ = subscribe(uow, [make_item()], url="https://a.example/feed")
    second, _ = subscribe(uow, [make_item()], url="https://b.example/feed")
    third, _ = subscribe(uow, [make_item()], url="https://c.example/feed")
    with uow:
        uow.session.get(Feed, first).next_poll_at = NOW - dt.timedelta(minutes=1)
        uow.session.get(Feed, second).next_poll_at = NOW - dt.timedelta(minutes=5)
        uow.session.get(Feed, third).next_poll_at = NOW + dt.timedelta(minutes=5)
        uow.commit()
    handlers.pause_feed(uow, first)

    assert handlers.due_feeds(uow, NOW) == [second]


def test_articles_changed_since_a_moment_are_paged(uow):
    items = [make_item(guid=f"g{i}", title=f"第{i}条", link=f"https://news.example.cn/{i}") for i in range(4)]
    feed_id, fetcher = subscribe(uow, items)
    handlers.poll_feed(uow, feed_id, fetcher, now=NOW)
    changed = [dataclasses.replace(items[0], title="第0条（更新）")] + items[1:]
    fetcher.answer(FEED_URL, fetch_ok(FEED_URL, rss(changed)))
    later = NOW + dt.timedelta(hours=1)
    handlers.poll_feed(uow, feed_id, fetcher, now=later)

    page = handlers.list_articles(uow, ListArticles(changed_since=later, limit=10))

    assert [item["title"] for item in page["items"]] == ["第0条（更新）"]
    assert page["items"][0]["version"] == 2


def test_relay_publishes_newsfeed_events_in_order_and_marks_them_sent(uow, engine):
    items = [make_item(guid=f"g{i}", link=f"https://news.example.cn/{i}") for i in range(3)]
    feed_id, fetcher = subscribe(uow, items)
    handlers.poll_feed(uow, feed_id, fetcher, now=NOW)
    published = []

    sent = relay_pending(make_session_factory(engine), OutboxMessage, lambda name, body: published.append((name, body)))

    assert sent == 3 and [name for name, _ in published] == [ARTICLE_INGESTED] * 3
    assert {body["url"] for _, body in published} == {f"https://news.example.cn/{i}" for i in range(3)}
    assert relay_pending(make_session_factory(engine), OutboxMessage, lambda *_: None) == 0
    json.dumps([body for _, body in published])  # payloads are plain JSON
