"""One contract for every search backend: the embedded SQLite FTS5 index and Elasticsearch.

The embedded half always runs (on a real SQLite file). The Elasticsearch half needs a real server and runs only when
ELASTICSEARCH_URL is set (e.g. `docker compose up -d elasticsearch`); nothing here fakes one.
"""
import os
import uuid
from datetime import UTC, datetime

import pytest

from search.backends.base import MAX_FETCH_IDS
from search.backends.embedded import EmbeddedSearchBackend
from search.documents import InvalidDocument, build_document
from search.queries import parse_search_params

ES_SKIP_REASON = "ELASTICSEARCH_URL not set: Elasticsearch contract half skipped"


def make_doc(doc_type="article", **overrides):
    values = {
        "version": 1,
        "title": "默认标题",
        "body": "默认正文",
        "url": "https://example.org/doc",
        "published_at": datetime(2026, 1, 1, 8, 0, tzinfo=UTC),
    }
    if doc_type == "comment":
        values["status"] = "approved"
    if doc_type == "article":
        values["outlet"] = "新华社"
    values.update(overrides)
    return build_document(doc_type, values)


def corpus():
    return [
        make_doc(
            "policy", policy_id="1", title="医疗保障条例（征求意见稿）",
            body="第一条 为了深化医疗保障改革，保障参保人员合法权益，制定本条例。",
            department="国家医保局", topics=["health"], consultation_state="open",
            published_at=datetime(2026, 1, 5, tzinfo=UTC), url="https://gov.example/policy/1",
        ),
        make_doc(
            "clause", policy_id="1", clause_number=2, title="第二条 适用范围",
            body="本条例适用于基本医疗保险和大病保险。", department="国家医保局", topics=["health"],
            consultation_state="open", published_at=datetime(2026, 1, 5, tzinfo=UTC), url="https://gov.example/policy/1#2",
        ),
        make_doc(
            doc_id="article:a1", title="医保报销新规下月落地", body="记者从市医保局获悉，门诊报销比例将提高。",
            outlet="人民日报", topics=["health"], published_at=datetime(2026, 1, 10, tzinfo=UTC),
        ),
        make_doc(
            doc_id="article:a2", title="北京房价连续三月回落", body="二手房价格环比下降，成交量有所回升。",
            outlet="财新", topics=["housing"], published_at=datetime(2026, 1, 12, tzinfo=UTC),
        ),
        make_doc(
            doc_id="article:a3", title="Housing prices and health insurance reform",
            body="Beijing publishes a draft regulation on medical insurance for public comment.",
            outlet="Caixin Global", language="en", topics=["housing", "health"],
            published_at=datetime(2026, 1, 8, tzinfo=UTC),
        ),
        make_doc(
            doc_id="article:a4", title="AI辅助医保审核试点启动", body="多地试点用AI识别医保欺诈。",
            outlet="界面", topics=["health", "technology"], published_at=datetime(2026, 1, 15, tzinfo=UTC),
        ),
        make_doc(
            doc_id="article:a5", title="改革医疗体系 保障民生", body="改革持续推进，医疗资源下沉，民生保障有力。",
            outlet="光明日报", topics=["health"], published_at=datetime(2026, 1, 3, tzinfo=UTC),
        ),
        make_doc(
            doc_id="article:a6", title="房价数据<script>alert('x')</script>发布",
            body="<script>alert(1)</script> 房价 & 租金 数据显示 <b>回稳</b>。",
            outlet="财新", topics=["housing"], published_at=datetime(2026, 1, 20, tzinfo=UTC),
        ),
        make_doc(
            "comment", doc_id="comment:c1", title="关于报销范围的意见", body="支持医保改革，希望扩大门诊报销范围。",
            policy_id="1", stance="support", topics=["health"], published_at=datetime(2026, 1, 6, tzinfo=UTC),
        ),
        make_doc(
            "reply", doc_id="reply:r1", title="答复：关于报销范围", body="感谢您的意见，门诊报销范围将逐步扩大。",
            policy_id="1", comment_id="comment:c1", department="国家医保局",
            published_at=datetime(2026, 1, 7, tzinfo=UTC),
        ),
    ]


@pytest.fixture(params=["embedded", pytest.param("elasticsearch", marks=pytest.mark.elasticsearch)])
def backend(request, tmp_path):
    if request.param == "embedded":
        instance = EmbeddedSearchBackend(tmp_path / "search.sqlite3")
        instance.ensure_schema()
        yield instance
        instance.close()
        return
    url = os.environ.get("ELASTICSEARCH_URL")
    if not url:
        pytest.skip(ES_SKIP_REASON)
    from search.backends.elasticsearch import ElasticsearchSearchBackend

    prefix = f"tbtest-{uuid.uuid4().hex[:8]}"
    instance = ElasticsearchSearchBackend.from_url(
        url, prefix=prefix, refresh="wait_for", number_of_replicas=0, initial_backoff=0.5
    )
    instance.ensure_schema()
    yield instance
    # Elasticsearch 8 refuses wildcard deletes (action.destructive_requires_name): name every index.
    leftovers = list(instance.client.indices.get(index=f"{prefix}-*"))
    if leftovers:
        instance.client.indices.delete(index=",".join(leftovers))
    for family in ("content", "discussion"):
        instance.client.indices.delete_index_template(name=f"{prefix}-{family}")
    instance.close()


@pytest.fixture
def loaded(backend):
    assert backend.upsert(corpus()) == len(corpus())
    return backend


def search(backend, **params):
    return backend.search(parse_search_params({key: str(value) for key, value in params.items()}))


def ids(result):
    return {hit.doc_id for hit in result.hits}


def test_an_upserted_document_is_found_by_a_word_of_its_title(backend):
    backend.upsert([make_doc(doc_id="article:new", title="地铁票价听证会召开", body="市民代表发言。")])
    result = search(backend, q="听证会")
    assert ids(result) == {"article:new"}
    assert result.total == 1
    hit = result.hits[0]
    assert hit.doc_type == "article"
    assert hit.url == "https://example.org/doc"
    assert hit.score > 0
    assert backend.count() == 1


def test_two_character_query_yibao_finds_every_document_mentioning_it(loaded):
    result = search(loaded, q="医保", per_page=50)
    assert {"article:a1", "article:a4", "comment:c1"} <= ids(result)
    assert "article:a2" not in ids(result)


def test_two_character_query_fangjia_finds_housing_price_news(loaded):
    assert ids(search(loaded, q="房价")) == {"article:a2", "article:a6"}


def test_mixed_chinese_and_english_query_needs_both_words(loaded):
    assert ids(search(loaded, q="AI 医保")) == {"article:a4"}


def test_english_query_matches_english_documents(loaded):
    assert ids(search(loaded, q="insurance reform")) == {"article:a3"}


def test_quoted_phrase_matches_only_adjacent_words(loaded):
    loose = ids(search(loaded, q="医疗 保障 改革"))
    phrase = ids(search(loaded, q='"医疗保障 改革"'))
    assert {"policy:1", "article:a5"} <= loose
    assert phrase == {"policy:1"}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"doc_type": "comment,reply"}, {"comment:c1", "reply:r1"}),
        ({"department": "国家医保局"}, {"policy:1", "clause:1:2", "reply:r1"}),
        ({"topic": "housing"}, {"article:a2", "article:a3", "article:a6"}),
        ({"outlet": "财新"}, {"article:a2", "article:a6"}),
        ({"language": "en"}, {"article:a3"}),
        ({"policy_id": "1", "doc_type": "clause"}, {"clause:1:2"}),
        ({"consultation_state": "open"}, {"policy:1", "clause:1:2"}),
        ({"date_from": "2026-01-12", "date_to": "2026-01-15"}, {"article:a2", "article:a4"}),
        ({"q": "医保", "outlet": "界面"}, {"article:a4"}),
    ],
)
def test_filters_narrow_the_results(loaded, params, expected):
    assert ids(search(loaded, per_page=50, **params)) == expected


def test_facets_count_every_match_not_just_the_page(loaded):
    result = search(loaded, q="医保", per_page=1)
    assert len(result.hits) == 1
    assert result.total == 3
    assert result.facet_counts("doc_type") == {"article": 2, "comment": 1}
    assert result.facet_counts("topic") == {"health": 3, "technology": 1}
    assert result.facet_counts("outlet") == {"人民日报": 1, "界面": 1}
    assert result.facet_counts("language") == {"zh": 3}


def test_facets_of_a_browse_cover_all_documents(loaded):
    result = search(loaded, per_page=5)
    assert result.total == 10
    assert result.facet_counts("doc_type") == {"article": 6, "policy": 1, "clause": 1, "comment": 1, "reply": 1}
    assert result.facet_counts("outlet")["财新"] == 2
    assert result.facet_counts("consultation_state") == {"open": 2}
    assert result.facet_counts("department") == {"国家医保局": 3}


def test_pages_do_not_overlap_and_together_cover_the_total(loaded):
    first = search(loaded, per_page=4, page=1, sort="date")
    second = search(loaded, per_page=4, page=2, sort="date")
    third = search(loaded, per_page=4, page=3, sort="date")
    assert first.total == second.total == third.total == 10
    assert first.pages == 3
    assert len(first.hits) == len(second.hits) == 4
    assert len(third.hits) == 2
    assert not ids(first) & ids(second)
    assert len(ids(first) | ids(second) | ids(third)) == 10


def test_date_sort_puts_newest_first(loaded):
    result = search(loaded, q="医保", sort="date", per_page=50)
    dates = [hit.source["published_at"] for hit in result.hits]
    assert dates == sorted(dates, reverse=True)
    assert result.hits[0].doc_id == "article:a4"


def test_relevance_ranks_a_title_match_above_a_body_match(backend):
    backend.upsert([
        make_doc(doc_id="article:body", title="城市新闻", body="文中顺带提到公积金一次。",
                 published_at=datetime(2026, 1, 2, tzinfo=UTC)),
        make_doc(doc_id="article:title", title="公积金新政解读", body="本文介绍新政。",
                 published_at=datetime(2026, 1, 1, tzinfo=UTC)),
    ])
    result = search(backend, q="公积金")
    assert [hit.doc_id for hit in result.hits] == ["article:title", "article:body"]


def test_an_older_version_never_overwrites_a_newer_one(backend):
    backend.upsert([make_doc(doc_id="article:v", version=2, title="新版标题 公交")])
    assert backend.upsert([make_doc(doc_id="article:v", version=1, title="旧版标题 地铁")]) == 0
    assert backend.upsert([make_doc(doc_id="article:v", version=2, title="重放 地铁")]) == 0
    assert ids(search(backend, q="公交")) == {"article:v"}
    assert ids(search(backend, q="地铁")) == set()
    assert backend.upsert([make_doc(doc_id="article:v", version=3, title="第三版 地铁")]) == 1
    assert ids(search(backend, q="地铁")) == {"article:v"}
    assert ids(search(backend, q="公交")) == set()


def test_a_deleted_document_is_no_longer_found(loaded):
    assert loaded.delete(["article:a2", "article:missing"]) == 1
    assert ids(search(loaded, q="房价")) == {"article:a6"}
    assert loaded.count() == 9


def test_reindex_rebuilds_the_index_and_keeps_results(loaded):
    rebuilt = corpus()[:-1] + [make_doc(doc_id="article:fresh", title="房价新闻 重建之后")]
    assert loaded.reindex(iter(rebuilt)) == 10
    assert loaded.count() == 10
    assert ids(search(loaded, q="房价")) == {"article:a2", "article:a6", "article:fresh"}
    assert ids(search(loaded, q="医保", doc_type="reply")) == set()
    # the rebuilt index is a normal index: versions still guard it
    assert loaded.upsert([make_doc(doc_id="article:fresh", version=0, title="旧的")]) == 0


def test_highlights_mark_matches_and_escape_the_html_around_them(loaded):
    result = search(loaded, q="房价", outlet="财新", sort="date")
    hit = result.hits[0]
    assert hit.doc_id == "article:a6"
    body = " ".join(hit.highlights["body"])
    title = " ".join(hit.highlights["title"])
    assert "<mark>房价</mark>" in body and "<mark>房价</mark>" in title
    for snippet in (body, title):
        without_marks = snippet.replace("<mark>", "").replace("</mark>", "")
        assert "<" not in without_marks and ">" not in without_marks
    assert "&lt;script&gt;" in body
    assert "&lt;script&gt;" in title


def test_a_hit_carries_its_public_source_fields(loaded):
    hit = search(loaded, q="报销", doc_type="comment").hits[0]
    assert hit.source["stance"] == "support"
    assert hit.source["policy_id"] == "1"
    assert hit.source["topics"] == ["health"]
    assert "body" not in hit.source
    assert hit.to_dict()["doc_id"] == "comment:c1"


def test_query_that_matches_nothing_returns_an_empty_page(loaded):
    result = search(loaded, q="火星殖民")
    assert result.total == 0 and result.hits == [] and result.pages == 0


def test_stored_documents_are_fetched_by_id_with_their_whole_body(loaded):
    long_body = "记者从市医保局获悉，门诊报销比例将提高。" + "各区同步推进经办服务改革。" * 300 + "文末的细节也在。"
    loaded.upsert([make_doc(doc_id="article:long", title="长篇报道 医保", body=long_body)])
    documents = loaded.get_documents(["article:long", "comment:c1", "policy:1", "article:missing", "nonsense:1"])
    assert set(documents) == {"article:long", "comment:c1", "policy:1"}
    article = documents["article:long"]
    assert (article.doc_id, article.doc_type, article.title, article.url) == (
        "article:long", "article", "长篇报道 医保", "https://example.org/doc"
    )
    assert article.body == long_body  # the whole text, not a snippet of it
    assert article.source["outlet"] == "新华社" and "body" not in article.source
    assert documents["comment:c1"].source["stance"] == "support"
    assert documents["policy:1"].body.startswith("第一条 为了深化医疗保障改革")


def test_fetched_documents_follow_updates_and_deletes(loaded):
    loaded.upsert([make_doc(doc_id="article:a2", version=2, title="北京房价企稳", body="新版正文。", outlet="财新")])
    assert loaded.get_documents(["article:a2"])["article:a2"].body == "新版正文。"
    loaded.delete(["article:a2"])
    assert loaded.get_documents(["article:a2"]) == {}
    assert loaded.get_documents([]) == {}


def test_fetching_more_documents_than_the_bound_is_refused(backend):
    with pytest.raises(ValueError, match="at most"):
        backend.get_documents(f"article:{number}" for number in range(MAX_FETCH_IDS + 1))


def test_anything_but_a_built_document_is_refused(backend):
    with pytest.raises(InvalidDocument):
        backend.upsert([{"doc_id": "article:raw", "title": "未经校验", "phone": "13912345678"}])
    assert backend.count() == 0


def test_backend_answers_ping(backend):
    assert backend.ping() is True
