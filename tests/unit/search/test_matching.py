"""The profile matchers' ports and the Elasticsearch matcher's requests.

No Elasticsearch server can run here. The Elasticsearch matcher is driven through the real client against
`ScriptedEndpoint`: a local HTTP server that is NOT Elasticsearch; it records every request and answers with
responses scripted per test, so these tests check which calls are made and their bodies, and how answers are read.
The same behaviour against a real cluster is in tests/integration/search/test_linking_contract.py.
"""
import http.server
import json
import threading
import urllib.parse

import pytest

from search.backends.base import SearchBackendError, SearchBackendUnavailable
from search.backends.elasticsearch import ElasticsearchSearchBackend, search_kwargs
from search.backends.embedded import EmbeddedSearchBackend
from search.documents import build_document
from search.linking import (
    BackgroundStats,
    LinkingError,
    ProfileIndex,
    analyse_article,
    build_profile,
    more_like_this_query,
    percolate_query,
    percolator_index_mapping,
    profile_to_percolator_document,
    score_article,
)
from search.matching import (
    COVERAGE_CANDIDATES,
    ElasticsearchProfileMatcher,
    EmbeddedProfileMatcher,
    ProfileRow,
    percolator_bulk_actions,
)
from search.state import Base, OutboxMessage, PolicyProfileRecord, ProfileRevision
from services.kernel.db import make_engine, make_session_factory
from services.kernel.outbox import SqlUnitOfWork

BACKGROUND = BackgroundStats.from_documents([
    "国务院常务会议研究部署经济工作", "各地加强安全生产检查", "医保报销比例提高 群众看病负担减轻",
    "一线城市房价保持稳定 住房租赁市场平稳", "教育部部署秋季学期开学工作", "气象部门发布高温预警",
])


def medical(version=1, threshold=2.0):
    return build_profile(
        "7", version, "门诊医疗费用医保报销管理办法（征求意见稿）",
        [(1, "为提高医保门诊保障水平，规范普通门诊费用统筹支付，制定本办法。"),
         (2, "普通门诊统筹的起付标准为在职职工800元，退休人员600元。")],
        background=BACKGROUND, threshold=threshold,
    )


def housing(threshold=2.0):
    return build_profile(
        "8", 1, "城市住房租赁和房价管理办法",
        [(1, "城市人民政府应当保持房价基本稳定，增加保障性住房供给。"), (2, "住房租赁企业不得哄抬租金。")],
        background=BACKGROUND, threshold=threshold,
    )


ARTICLE = analyse_article(
    "本市拟提高医保门诊报销比例 普通门诊统筹起付标准公布",
    "市医疗保障局起草了门诊医疗费用医保报销管理办法，普通门诊统筹起付标准为在职职工800元。医保门诊报销比例提高。",
    article_id="art-1",
)


class ScriptedEndpoint:
    """Not Elasticsearch: a local HTTP server that records requests and answers what `answer` scripts.

    `answer(method, path, query, body)` returns (status, json body) or None for 200 {}."""

    def __init__(self, answer=None):
        self.requests = []
        self.answer = answer or (lambda *request: None)
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _handle(self):
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length).decode() if length else ""
                lines = [json.loads(line) for line in raw.splitlines() if line.strip()]
                body = lines if "_bulk" in self.path else (lines[0] if lines else None)
                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                endpoint.requests.append({"method": self.command, "path": url.path, "query": query, "body": body})
                status, payload = endpoint.answer(self.command, url.path, query, body) or (200, {})
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-Elastic-Product", "Elasticsearch")
                self.send_header("Content-Length", str(0 if self.command == "HEAD" else len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle  # noqa: N815 - http.server's naming

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint():
    return ScriptedEndpoint()


@pytest.fixture
def matcher(endpoint):
    with endpoint as url:
        backend = ElasticsearchSearchBackend.from_url(url, analyzer="cjk", prefix="tb", number_of_replicas=0)
        yield ElasticsearchProfileMatcher(backend)
        backend.close()


def error(status, kind):
    return status, {"error": {"type": kind, "reason": kind}, "status": status}


def percolator_hit(profile):
    return {"_index": "tb-profiles-v1", "_id": profile.policy_id, "_score": 1.0,
            "_source": {"policy_id": profile.policy_id, "version": profile.version, "profile": profile.to_dict()}}


# --- schema ---


def test_the_percolator_index_is_created_behind_its_alias_when_missing(endpoint, matcher):
    endpoint.answer = lambda method, path, query, body: (404, {}) if method == "HEAD" else None
    matcher.ensure_schema()
    head, create = endpoint.requests
    assert (head["method"], head["path"]) == ("HEAD", "/_alias/tb-profiles")
    assert (create["method"], create["path"]) == ("PUT", "/tb-profiles-v1")
    assert create["body"] == {"aliases": {"tb-profiles": {"is_write_index": True}},
                              **percolator_index_mapping(number_of_replicas=0)}


def test_an_existing_percolator_alias_is_left_alone(endpoint, matcher):
    matcher.ensure_schema()
    assert [(r["method"], r["path"]) for r in endpoint.requests] == [("HEAD", "/_alias/tb-profiles")]


def test_an_index_created_meanwhile_by_another_process_is_fine(endpoint, matcher):
    heads = iter([404, 200])

    def answer(method, path, query, body):
        if method == "HEAD":
            return next(heads), {}
        return error(400, "resource_already_exists_exception")

    endpoint.answer = answer
    matcher.ensure_schema()
    assert [r["method"] for r in endpoint.requests] == ["HEAD", "PUT", "HEAD"]


def test_a_refused_index_creation_is_an_error(endpoint, matcher):
    endpoint.answer = lambda method, path, query, body: (404, {}) if method == "HEAD" else error(400, "mapper_exception")
    with pytest.raises(SearchBackendError, match="tb-profiles-v1"):
        matcher.ensure_schema()


# --- writes ---


def test_a_profile_is_stored_under_its_policy_id_with_the_revision_as_external_version(endpoint, matcher):
    profile = medical()
    matcher.add(profile, revision=12)
    (request,) = endpoint.requests
    assert (request["method"], request["path"]) == ("PUT", "/tb-profiles/_doc/7")
    assert request["query"] == {"version": "12", "version_type": "external_gte", "refresh": "wait_for"}
    assert request["body"] == json.loads(json.dumps(profile_to_percolator_document(profile)))


def test_a_profile_older_than_the_stored_one_is_ignored(endpoint, matcher):
    endpoint.answer = lambda *request: error(409, "version_conflict_engine_exception")
    matcher.add(medical(), revision=3)  # no error: a newer revision is already stored


def test_a_refused_profile_write_is_an_error(endpoint, matcher):
    endpoint.answer = lambda *request: error(400, "document_parsing_exception")
    with pytest.raises(SearchBackendError):
        matcher.add(medical(), revision=3)


def test_an_unreachable_cluster_is_reported_as_unavailable():
    backend = ElasticsearchSearchBackend.from_url("http://127.0.0.1:9", analyzer="cjk", request_timeout=1)
    with pytest.raises(SearchBackendUnavailable):
        ElasticsearchProfileMatcher(backend).add(medical(), revision=1)
    backend.close()


def test_a_closed_policy_is_deleted_with_its_revision_and_a_missing_one_is_no_error(endpoint, matcher):
    endpoint.answer = lambda *request: (404, {"_index": "tb-profiles-v1", "_id": "7", "result": "not_found"})
    matcher.remove("7", revision=13)
    (request,) = endpoint.requests
    assert (request["method"], request["path"]) == ("DELETE", "/tb-profiles/_doc/7")
    assert request["query"] == {"version": "13", "version_type": "external_gte", "refresh": "wait_for"}


# --- matching ---


def test_an_article_is_percolated_and_the_candidates_re_scored_like_the_profile_index(endpoint, matcher):
    profiles = [medical(), housing()]
    endpoint.answer = lambda *request: (200, {"hits": {"hits": [percolator_hit(p) for p in reversed(profiles)]}})
    suggestions = matcher.match(ARTICLE, top_k=5)
    (request,) = endpoint.requests
    assert (request["method"], request["path"]) == ("POST", "/tb-profiles/_search")
    expected_body = search_kwargs(percolate_query(ARTICLE.title, ARTICLE.body, size=matcher.candidates))
    assert request["body"] == {"_source" if k == "source" else k: v for k, v in expected_body.items()}
    index = ProfileIndex()
    for profile in profiles:
        index.add(profile)
    assert suggestions == index.match_analysed(ARTICLE, top_k=5)
    assert [s.policy_id for s in suggestions] == ["7"]  # housing shares a word or two, below its threshold
    assert suggestions[0] == score_article(profiles[0], ARTICLE)


def test_the_threshold_of_each_stored_profile_applies_unless_a_minimum_is_given(endpoint, matcher):
    strict = medical(threshold=1000.0)
    endpoint.answer = lambda *request: (200, {"hits": {"hits": [percolator_hit(strict)]}})
    assert matcher.match(ARTICLE) == []
    assert [s.policy_id for s in matcher.match(ARTICLE, min_score=0.1)] == ["7"]


def test_top_k_must_be_positive(matcher):
    with pytest.raises(LinkingError):
        matcher.match(ARTICLE, top_k=0)


# --- existing coverage ---


def article_hit(doc_id, title, body):
    return {"_index": "tb-content-v1", "_id": doc_id, "_score": 2.0,
            "_source": {"doc_id": doc_id, "title": title, "body": body, "url": f"https://news.example/{doc_id}",
                        "outlet": "示例日报", "published_at": "2026-11-02T08:00:00.000000Z"}}


def test_existing_coverage_is_more_like_this_over_the_articles_re_scored_with_the_profile(endpoint, matcher):
    profile = medical()
    hits = [article_hit("article:art-2", "城市马拉松周末开跑", "部分道路实行交通管制。"),
            article_hit("article:art-1", "本市拟提高医保门诊报销比例 普通门诊统筹起付标准公布", ARTICLE.body)]
    endpoint.answer = lambda *request: (200, {"hits": {"hits": hits}})
    coverage = matcher.existing_coverage(profile, top_k=20)
    (request,) = endpoint.requests
    assert (request["method"], request["path"]) == ("POST", "/tb-content/_search")
    expected_body = search_kwargs(more_like_this_query(profile, size=matcher.coverage_candidates))
    assert request["body"] == {"_source" if k == "source" else k: v for k, v in expected_body.items()}
    assert [match.suggestion.article_id for match in coverage] == ["art-1"]
    match = coverage[0]
    analysed = analyse_article(hits[1]["_source"]["title"], ARTICLE.body, article_id="art-1")
    assert match.suggestion == score_article(profile, analysed)
    assert (match.title, match.url, match.outlet) == (hits[1]["_source"]["title"], "https://news.example/article:art-1",
                                                      "示例日报")


# --- reconciling with the database ---


@pytest.fixture
def unit_of_work(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'state.sqlite3'}")
    Base.metadata.create_all(engine)
    factory = make_session_factory(engine)
    with factory() as session:
        for policy_id, is_open, revision in ((7, True, 4), (8, False, 5)):
            session.add(PolicyProfileRecord(
                policy_id=policy_id, version=1, title="t", is_open=is_open, clauses=[], keywords=[], synonyms={},
                profile={"payload": {}, "interest": (medical() if policy_id == 7 else housing()).to_dict()},
                revision=revision,
            ))
        session.add(ProfileRevision(id=1, value=5))
        session.commit()
    yield lambda: SqlUnitOfWork(factory, OutboxMessage, {})
    engine.dispose()


def test_bulk_actions_store_open_profiles_and_delete_closed_ones_under_their_revisions():
    actions = list(percolator_bulk_actions([ProfileRow("7", 4, medical().to_dict()), ProfileRow("8", 5, None)],
                                           "tb-profiles"))
    assert actions == [
        {"_op_type": "index", "_index": "tb-profiles", "_id": "7", "version": 4, "version_type": "external_gte",
         "_source": profile_to_percolator_document(medical())},
        {"_op_type": "delete", "_index": "tb-profiles", "_id": "8", "version": 5, "version_type": "external_gte"},
    ]


def bulk_answer(method, path, query, body):
    if path == "/_bulk":
        items = []
        for line in body:
            op = next((name for name in ("index", "delete") if set(line) == {name}), None)
            if op:  # an action line (the others are the documents of index actions)
                items.append({op: {"_index": "tb-profiles-v1", "_id": line[op]["_id"],
                                   "status": 201 if op == "index" else 404,
                                   "result": "created" if op == "index" else "not_found"}})
        return 200, {"took": 1, "errors": False, "items": items}
    return None


def test_the_first_sync_of_a_process_reconciles_the_percolator_index_with_the_database_once(
    endpoint, matcher, unit_of_work
):
    endpoint.answer = bulk_answer
    matcher.sync(unit_of_work)
    matcher.sync(unit_of_work)
    (request,) = endpoint.requests
    assert request["path"] == "/_bulk" and request["query"] == {"refresh": "wait_for"}
    assert request["body"][0] == {"index": {"_index": "tb-profiles", "_id": "7", "version": 4,
                                            "version_type": "external_gte"}}
    assert request["body"][1]["policy_id"] == "7"
    assert request["body"][2] == {"delete": {"_index": "tb-profiles", "_id": "8", "version": 5,
                                             "version_type": "external_gte"}}
    assert matcher.reload(unit_of_work) == 1


# --- embedded existing coverage ---


class RecordingBackend(EmbeddedSearchBackend):
    """The real embedded backend, noting which ids each get_documents call asked for."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fetched = []

    def get_documents(self, doc_ids):
        doc_ids = list(doc_ids)
        self.fetched.append(doc_ids)
        return super().get_documents(doc_ids)


def test_embedded_coverage_re_scores_a_bounded_set_of_candidates_fetched_whole(tmp_path):
    backend = RecordingBackend(tmp_path / "index.sqlite3")
    backend.ensure_schema()
    weak = [build_document("article", {
        "doc_id": f"article:weak-{number}", "version": 1, "title": f"社区门诊第{number}期便民活动",
        "body": "社区医生上门服务。", "url": f"https://news.example/weak-{number}", "outlet": "示例日报",
        "published_at": "2026-11-01T08:00:00+00:00",
    }) for number in range(COVERAGE_CANDIDATES + 30)]
    strong = build_document("article", {
        "doc_id": "article:art-1", "version": 1, "title": ARTICLE.title, "body": ARTICLE.body,
        "url": "https://news.example/art-1", "outlet": "示例日报", "published_at": "2026-11-02T08:00:00+00:00",
    })
    backend.upsert([*weak, strong])
    coverage = EmbeddedProfileMatcher(backend).existing_coverage(medical(), top_k=20)
    (asked,) = backend.fetched
    assert len(asked) == COVERAGE_CANDIDATES
    assert asked[0] == "article:art-1"  # found by most of the profile's top terms
    assert [match.suggestion.article_id for match in coverage] == ["art-1"]
    assert coverage[0].suggestion == score_article(medical(), analyse_article(ARTICLE.title, ARTICLE.body, "art-1"))
    assert (coverage[0].url, coverage[0].outlet) == ("https://news.example/art-1", "示例日报")
    backend.close()
