"""The search service's use cases on a real embedded index and its real state database (SQLite and PostgreSQL)."""
import datetime as dt
import html
import itertools
import re

import pytest

from search import handlers
from search.backends.embedded import EmbeddedSearchBackend
from search.events import EVENT_SCHEMAS, LINKS_SUGGESTED
from search.linking import InterestProfile, analyse_article, score_article
from search.matching import EmbeddedProfileMatcher
from search.queries import parse_search_params
from search.state import Base, OutboxMessage, PolicyProfileRecord
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


_FILLER = [
    "周末城市马拉松开跑，两万名选手从体育中心出发，沿江大道部分路段实行交通管制，地铁二号线延长运营一小时。",
    "气象台预计下周气温回升，白天最高气温二十五度，夜间有小雨，提醒市民注意早晚温差，适时增减衣物。",
    "本市新开通三条公交线路，连接城东新区与火车站，首末班时间分别为早六点和晚十点，票价两元。",
    "市图书馆推出夜间阅读活动，每周五延长开放至晚九点，并举办青年作家读书分享会和亲子绘本讲座。",
    "足球联赛第十轮比赛中，本地球队主场二比一战胜对手，积分升至联赛第三，下轮将客场挑战领头羊。",
    "老城区改造项目进入收尾阶段，街巷立面翻新完成，沿街商铺陆续开业，夜市将于下月起恢复经营。",
    "动物园迎来两只大熊猫幼崽，园方表示幼崽健康状况良好，预计明年春天与游客正式见面。",
    "全市中小学下周举行秋季运动会，教育部门提醒各校做好安全预案，合理安排比赛项目和作息时间。",
]
# Each sentence carries a little of policy 7; together they are about it.
_EVIDENCE = [
    "医保改革持续推进。", "门诊就医将更加方便。", "在职职工与退休人员待遇有别。",
    "报销统筹支付范围将进一步规范。", "医疗费用负担有望减轻。", "起付标准的具体办法正在征求意见。",
]


def make_long_article_event(**overrides):
    """A long round-up whose evidence for policy 7 is spread over paragraphs far apart: a snippet holds one piece."""
    paragraphs = []
    for number, sentence in enumerate(_EVIDENCE):
        paragraphs.append("".join(_FILLER[(number + k) % len(_FILLER)] for k in range(4)))
        paragraphs.append(sentence)
    paragraphs.append(_FILLER[6] + _FILLER[7])
    values = {"id": "art-long", "url": "https://news.example/a/long", "title": "周末城市生活速览", "summary": "",
              "text": "".join(paragraphs)}
    return make_article_event(**{**values, **overrides})


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


def test_a_government_meeting_report_near_the_policy_date_ranks_first_among_equal_coverage(ctx):
    """The same meeting report, once dated days from the policy's publication and once a year before: the words are
    equal, so is the evidence; the one near the policy's own date comes first."""
    report = dict(
        title="市政府常务会议研究门诊医保报销管理办法",
        text="市政府召开常务会议，讨论门诊医疗费用医保报销管理办法草案，普通门诊统筹起付标准为在职职工800元。",
        summary="",
    )
    handlers.index_article(ctx, make_article_event(
        event_id="a-far", id="art-a-far", url="https://news.example/a/far", published_at="2025-10-30T08:00:00+00:00",
        **report,
    ))
    handlers.index_article(ctx, make_article_event(
        event_id="a-near", id="art-z-near", url="https://news.example/a/near", published_at="2026-10-30T08:00:00+00:00",
        **report,
    ))
    suggestions = handlers.index_policy(ctx, make_policy_event())
    assert [s["article_id"] for s in suggestions] == ["art-z-near", "art-a-far"]  # a tie would order them a, z
    assert stored_profile(ctx).dates == ["2026-11-01"] and stored_profile(ctx).procedure == "government"
    assert suggestions[0]["score"] > suggestions[1]["score"]
    assert suggestions[0]["matched_terms"] == suggestions[1]["matched_terms"]


def stored_profile(ctx, policy_id=7):
    with ctx.session_factory() as session:
        return InterestProfile.from_dict(session.get(PolicyProfileRecord, policy_id).profile["interest"])


def test_existing_coverage_scores_a_long_article_on_its_whole_body_where_a_snippet_is_not_enough(ctx):
    event = make_long_article_event()
    handlers.index_article(ctx, event)
    (suggestion,) = handlers.index_policy(ctx, make_policy_event())
    profile = stored_profile(ctx)
    whole = score_article(profile, analyse_article(event["title"], event["text"], article_id="art-long"))
    assert suggestion["article_id"] == "art-long"
    assert suggestion["score"] == round(whole.score, 4) >= profile.threshold
    assert {"退休", "征求意见"} <= set(suggestion["matched_terms"])
    # What a search shows of the article (its title and snippets) scores below the threshold for every top term.
    shown = 0
    for term, _ in sorted(profile.terms.items(), key=lambda item: (-item[1], item[0]))[:6]:
        for hit in ctx.backend.search(parse_search_params({"q": term, "doc_type": "article"})).hits:
            snippets = " ".join(" ".join(parts) for parts in hit.highlights.values())
            text = html.unescape(re.sub(r"<[^>]+>", "", snippets))
            assert score_article(profile, analyse_article(hit.title, text, article_id="art-long")).score < profile.threshold
            shown += 1
    assert shown >= 3


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
