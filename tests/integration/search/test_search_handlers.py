"""The search service's use cases on a real embedded index and its real state database (SQLite and PostgreSQL)."""
import datetime as dt
import itertools

import pytest

from search import handlers
from search.backends.embedded import EmbeddedSearchBackend
from search.events import EVENT_SCHEMAS, LINKS_SUGGESTED
from search.matching import EmbeddedProfileMatcher
from search.state import Base, OutboxMessage
from services.kernel.db import make_engine, make_session_factory
from services.kernel.outbox import SqlUnitOfWork

_clock = itertools.count(1)


def occurred():
    return (dt.datetime(2026, 11, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=next(_clock))).isoformat()


def make_policy_event(**overrides):
    payload = {
        "event_id": "e1", "occurred_at": occurred(), "schema_version": 1,
        "policy_id": 7, "version": 1, "title": "门诊医疗费用医保报销管理办法（征求意见稿）",
        "summary": "提高职工医保门诊报销比例。", "department": "市医疗保障局", "topics": ["医保"],
        "document_number": None, "language": "zh", "state": "open", "time_zone": "Asia/Shanghai",
        "open_at": None, "close_at": None, "published_at": "2026-11-01T00:00:00+00:00",
        "updated_at": "2026-11-01T00:00:00+00:00", "preamble": "",
        "clauses": [
            {"number": 1, "label": "第一条", "chapter": None, "text": "为提高医保门诊保障水平，规范普通门诊费用统筹支付，制定本办法。"},
            {"number": 2, "label": "第二条", "chapter": None, "text": "普通门诊统筹的起付标准为在职职工800元，退休人员600元。"},
        ],
        "url_path": "/policies/7",
    }
    payload.update(overrides)
    return payload


def make_article_event(**overrides):
    payload = {
        "event_id": "a1", "occurred_at": occurred(), "schema_version": 1, "id": "art-1", "version": 1, "feed_id": 1,
        "url": "https://news.example/a/1", "title": "本市拟提高医保门诊报销比例 普通门诊统筹起付标准公布",
        "summary": "市医疗保障局就门诊费用报销办法征求意见。",
        "text": "市医疗保障局起草了门诊医疗费用医保报销管理办法，普通门诊统筹起付标准为在职职工800元。医保门诊报销比例提高。",
        "language": "zh", "outlet": "示例日报", "published_at": "2026-11-02T08:00:00+00:00", "updated_at": None,
        "categories": ["民生"], "canonical_of": None,
    }
    payload.update(overrides)
    return payload


@pytest.fixture
def ctx(database_url, tmp_path):
    engine = make_engine(database_url)
    Base.metadata.create_all(engine)
    factory = make_session_factory(engine)
    backend = EmbeddedSearchBackend(tmp_path / "index.sqlite3")
    backend.ensure_schema()
    context = handlers.SearchContext(
        backend, EmbeddedProfileMatcher(backend), lambda: SqlUnitOfWork(factory, OutboxMessage, EVENT_SCHEMAS)
    )
    context.session_factory = factory
    yield context
    engine.dispose()


def outbox_links(ctx):
    with ctx.session_factory() as session:
        import json

        return [json.loads(row.payload) for row in session.query(OutboxMessage).filter_by(event_type=LINKS_SUGGESTED)]


def test_published_policy_and_its_clauses_are_found_by_a_two_character_query(ctx):
    handlers.index_policy(ctx, make_policy_event())
    result = handlers.search(ctx, {"q": "医保"})
    ids = {hit["doc_id"] for hit in result["hits"]}
    assert "policy:7" in ids and "clause:7:1" in ids
    assert any("<mark>" in snippet for hit in result["hits"] for snippets in hit["highlights"].values()
               for snippet in snippets)


def test_article_matching_an_open_policy_is_indexed_and_suggested_with_its_matched_terms(ctx):
    handlers.index_policy(ctx, make_policy_event())
    suggestions = handlers.index_article(ctx, make_article_event())
    assert suggestions and suggestions[0]["policy_id"] == 7
    assert suggestions[0]["matched_terms"]
    assert outbox_links(ctx)[0]["links"][0]["article_id"] == "art-1"
    assert handlers.search(ctx, {"q": "起付标准", "doc_type": "article"})["total"] == 1


def test_policy_published_after_its_coverage_finds_that_coverage(ctx):
    handlers.index_article(ctx, make_article_event())
    assert outbox_links(ctx) == []
    suggestions = handlers.index_policy(ctx, make_policy_event())
    assert [s["article_id"] for s in suggestions] == ["art-1"]


def test_unrelated_article_is_not_suggested(ctx):
    handlers.index_policy(ctx, make_policy_event())
    assert handlers.index_article(ctx, make_article_event(
        id="art-2", title="城市马拉松周末开跑", summary="赛事交通管制。", text="周末城市马拉松开跑，部分道路实行交通管制。",
    )) == []


def test_closed_consultation_stops_linking_and_updates_the_state_facet(ctx):
    handlers.index_policy(ctx, make_policy_event())
    handlers.update_window_state(ctx, {"policy_id": 7, "state": "closed", "occurred_at": occurred()})
    assert handlers.index_article(ctx, make_article_event()) == []
    facets = handlers.search(ctx, {"q": "医保", "doc_type": "policy"})["facets"]["consultation_state"]
    assert facets == [{"value": "closed", "count": 1}]


def test_late_older_policy_event_does_not_roll_the_index_back(ctx):
    older = make_policy_event(title="旧标题 医保")
    newer = make_policy_event(title="新标题 医保")
    handlers.index_policy(ctx, newer)
    handlers.index_policy(ctx, older)
    assert handlers.search(ctx, {"q": "新标题"})["total"] >= 1
    assert handlers.search(ctx, {"q": "旧标题"})["total"] == 0


def test_redelivered_article_event_is_harmless(ctx):
    handlers.index_policy(ctx, make_policy_event())
    event = make_article_event()
    handlers.index_article(ctx, event)
    handlers.index_article(ctx, event)
    assert handlers.search(ctx, {"q": "起付标准", "doc_type": "article"})["total"] == 1


def moderated(status, **overrides):
    payload = {
        "occurred_at": occurred(), "comment_id": 5, "reference": "C-5", "policy_id": 7, "version": 1,
        "clause_number": 2, "stance": "support", "status": status, "text": "建议提高退休人员门诊报销比例。" if status == "approved" else None,
        "display_name": None, "language": "zh", "replies": [], "created_at": "2026-11-03T00:00:00+00:00",
        "moderated_at": "2026-11-03T01:00:00+00:00", "url_path": "/policies/7#comment-5",
    }
    payload.update(overrides)
    return payload


def test_only_approved_comments_are_searchable_and_hiding_removes_them(ctx):
    handlers.index_comment(ctx, moderated("approved"))
    assert handlers.search(ctx, {"q": "退休人员", "doc_type": "comment"})["total"] == 1
    handlers.index_comment(ctx, moderated("hidden"))
    assert handlers.search(ctx, {"q": "退休人员", "doc_type": "comment"})["total"] == 0


def test_editor_keywords_and_synonyms_change_the_profile(ctx):
    handlers.index_policy(ctx, make_policy_event())
    view = handlers.set_profile_terms(ctx, 7, ["门诊共济"], {"医保": ["医疗保障"]})
    assert view["keywords"] == ["门诊共济"] and view["synonyms"] == {"医保": ["医疗保障"]}
    suggestions = handlers.index_article(ctx, make_article_event(
        id="art-3", title="门诊共济改革解读", summary="", text="医疗保障部门推进门诊共济保障机制改革。",
    ))
    assert suggestions and suggestions[0]["policy_id"] == 7
    assert handlers.set_profile_terms(ctx, 999, [], {}) is None


def test_profiles_come_back_after_a_restart(ctx):
    handlers.index_policy(ctx, make_policy_event())
    fresh = handlers.SearchContext(ctx.backend, EmbeddedProfileMatcher(ctx.backend), ctx.unit_of_work)
    assert handlers.load_open_profiles(fresh) == 1


def test_withdrawn_policy_leaves_the_index_and_stops_linking(ctx):
    handlers.index_policy(ctx, make_policy_event())
    handlers.index_policy(ctx, make_policy_event(state="withdrawn"))
    assert handlers.search(ctx, {"q": "医保", "doc_type": "policy"})["total"] == 0
    assert handlers.search(ctx, {"q": "医保", "doc_type": "clause"})["total"] == 0
    assert handlers.index_article(ctx, make_article_event()) == []


@pytest.mark.parametrize("language, title, indexed_as", [("ja", "東京の医療保険制度", "zh"), ("de", "Radwege in der Stadt", "en"),
                                                         (None, "Cycling lanes", "en")])
def test_articles_in_other_languages_are_indexed_rather_than_refused(ctx, language, title, indexed_as):
    handlers.index_article(ctx, make_article_event(id=f"x-{indexed_as}-{language}", title=title, language=language))
    query = title[:2] if indexed_as == "zh" else title.split()[0]
    result = handlers.search(ctx, {"q": query, "doc_type": "article"})
    assert [hit["source"]["language"] for hit in result["hits"]] == [indexed_as]
