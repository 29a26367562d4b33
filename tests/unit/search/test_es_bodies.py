"""Elasticsearch request bodies, built by pure functions and checked as dicts; no cluster is involved."""
import http.server
import json
import threading
from datetime import UTC, datetime

import pytest

from search.backends.base import SearchBackendError
from search.backends.elasticsearch import (
    TEXT_ANALYZER,
    ElasticsearchBackend,
    ElasticsearchSearchBackend,
    alias_name,
    alias_swap_actions,
    analysis_settings,
    building_alias_name,
    building_indices_by_family,
    bulk_delete_actions,
    bulk_index_actions,
    choose_analyzer,
    index_mappings,
    index_template_body,
    installed_plugin_names,
    mget_body,
    next_index_name,
    parse_mget_response,
    parse_search_response,
    search_body,
    search_kwargs,
)
from search.documents import build_document
from search.queries import parse_search_params


def make_doc(doc_type="article", **overrides):
    values = {
        "version": 3,
        "title": "医保报销新规",
        "body": "门诊报销比例提高。",
        "url": "https://example.org/a",
        "published_at": datetime(2026, 1, 10, tzinfo=UTC),
    }
    if doc_type == "article":
        values.update(doc_id="article:a1", outlet="人民日报")
    if doc_type == "comment":
        values.update(doc_id="comment:c1", policy_id="12", status="approved", stance="support")
    values.update(overrides)
    return build_document(doc_type, values)


def body_for(**params):
    return search_body(parse_search_params({key: str(value) for key, value in params.items()}))


def filters_of(body):
    return body["query"]["bool"].get("filter", [])


# -- analysis -----------------------------------------------------------------------------------------------------


def test_auto_prefers_smartcn_then_icu_then_the_built_in_cjk():
    assert choose_analyzer("auto", {"analysis-icu", "analysis-smartcn"}) == "smartcn"
    assert choose_analyzer("auto", {"analysis-icu"}) == "icu"
    assert choose_analyzer("auto", set()) == "cjk"


def test_an_explicit_plugin_analyzer_needs_its_plugin():
    assert choose_analyzer("icu", {"analysis-icu"}) == "icu"
    with pytest.raises(SearchBackendError, match="analysis-smartcn"):
        choose_analyzer("smartcn", {"analysis-icu"})


def test_cjk_needs_no_plugin_and_unknown_choices_are_refused():
    assert choose_analyzer("cjk", set()) == "cjk"
    with pytest.raises(ValueError):
        choose_analyzer("ik", set())


def test_plugin_names_are_read_from_cat_plugins_json():
    response = [
        {"name": "node-1", "component": "analysis-smartcn", "version": "8.15.0"},
        {"name": "node-1", "component": "analysis-icu", "version": "8.15.0"},
    ]
    assert installed_plugin_names(response) == {"analysis-smartcn", "analysis-icu"}
    assert installed_plugin_names([]) == set()


def test_smartcn_settings_use_the_smartcn_tokenizer():
    analyzer = analysis_settings("smartcn")["analysis"]["analyzer"][TEXT_ANALYZER]
    assert analyzer["tokenizer"] == "smartcn_tokenizer"
    assert "lowercase" in analyzer["filter"]


def test_icu_settings_use_the_icu_tokenizer_and_normaliser():
    analyzer = analysis_settings("icu")["analysis"]["analyzer"][TEXT_ANALYZER]
    assert analyzer["tokenizer"] == "icu_tokenizer"
    assert analyzer["filter"][0] == "icu_normalizer"


def test_cjk_settings_build_bigrams_with_built_in_filters():
    analyzer = analysis_settings("cjk")["analysis"]["analyzer"][TEXT_ANALYZER]
    assert analyzer == {"type": "custom", "tokenizer": "standard", "filter": ["cjk_width", "lowercase", "cjk_bigram"]}


def test_no_settings_exist_for_an_unknown_analyzer():
    with pytest.raises(ValueError):
        analysis_settings("auto")


# -- templates and mappings ---------------------------------------------------------------------------------------


def test_each_family_template_matches_its_versioned_indices():
    body = index_template_body("content", "smartcn", number_of_replicas=0)
    assert body["index_patterns"] == ["tb-content-v*"]
    assert body["template"]["settings"]["number_of_replicas"] == 0
    assert body["template"]["settings"]["analysis"] == analysis_settings("smartcn")["analysis"]
    assert body["meta"]["analyzer"] == "smartcn"
    assert index_template_body("discussion", "cjk", prefix="x")["index_patterns"] == ["x-discussion-v*"]


def test_content_mapping_is_strict_and_analyses_title_and_body():
    mapping = index_mappings("content")
    properties = mapping["properties"]
    assert mapping["dynamic"] == "strict"
    assert properties["title"] == {"type": "text", "analyzer": TEXT_ANALYZER}
    assert properties["body"] == {"type": "text", "analyzer": TEXT_ANALYZER}
    assert properties["summary"] == {"type": "text", "analyzer": TEXT_ANALYZER}
    assert properties["topics"] == {"type": "keyword"}
    assert properties["published_at"] == {"type": "date"}
    assert properties["version"] == {"type": "long"}
    assert properties["outlet"] == {"type": "keyword"}
    assert "comment_id" not in properties


def test_discussion_mapping_has_comment_and_reply_fields_and_no_contact_data():
    properties = index_mappings("discussion")["properties"]
    assert {"stance", "comment_id", "support_count", "policy_id"} <= set(properties)
    assert not {name for name in properties if "phone" in name or "mail" in name or "contact" in name}


def test_mapping_of_an_unknown_family_is_refused():
    with pytest.raises(ValueError):
        index_mappings("secrets")


# -- search bodies ------------------------------------------------------------------------------------------------


def test_words_must_all_occur_in_title_or_body_with_the_title_boosted():
    must = body_for(q="AI 医保")["query"]["bool"]["must"]
    assert must == [{
        "multi_match": {
            "query": "AI 医保", "fields": ["title^3", "body^1"], "type": "cross_fields", "operator": "and",
        }
    }]


def test_a_quoted_phrase_becomes_match_phrase_on_title_or_body():
    must = body_for(q='"医疗保障 改革" 条例')["query"]["bool"]["must"]
    assert must[0]["multi_match"]["query"] == "条例"
    assert must[1] == {
        "bool": {
            "should": [
                {"match_phrase": {"title": {"query": "医疗保障改革", "boost": 3.0}}},
                {"match_phrase": {"body": {"query": "医疗保障改革", "boost": 1.0}}},
            ],
            "minimum_should_match": 1,
        }
    }


def test_a_browse_matches_everything_newest_first():
    body = body_for()
    assert body["query"] == {"bool": {"must": [{"match_all": {}}]}}
    assert body["sort"] == [{"published_at": {"order": "desc"}}, {"doc_id": {"order": "asc"}}]


@pytest.mark.parametrize(
    ("params", "clause"),
    [
        ({"doc_type": "policy,clause"}, {"terms": {"doc_type": ["policy", "clause"]}}),
        ({"department": "国家医保局"}, {"term": {"department": "国家医保局"}}),
        ({"topic": "health"}, {"term": {"topics": "health"}}),
        ({"policy_id": "12"}, {"term": {"policy_id": "12"}}),
        ({"consultation_state": "open"}, {"term": {"consultation_state": "open"}}),
        ({"outlet": "财新"}, {"term": {"outlet": "财新"}}),
        ({"language": "en"}, {"term": {"language": "en"}}),
        ({"date_from": "2026-01-12"}, {"range": {"published_at": {"gte": "2026-01-11T16:00:00.000000Z"}}}),
        ({"date_to": "2026-01-15"}, {"range": {"published_at": {"lt": "2026-01-15T16:00:00.000000Z"}}}),
    ],
)
def test_each_filter_is_a_bool_filter_clause(params, clause):
    assert filters_of(body_for(q="医保", **params)) == [clause]


def test_filters_combine_and_do_not_affect_scoring():
    body = body_for(q="医保", outlet="财新", date_from="2026-01-01", date_to="2026-01-31")
    assert len(filters_of(body)) == 2
    assert body["query"]["bool"]["must"][0]["multi_match"]["query"] == "医保"


def test_facets_are_terms_aggregations_over_the_facet_fields():
    aggs = search_body(parse_search_params({"q": "医保"}), facet_size=7)["aggs"]
    assert aggs == {
        "doc_type": {"terms": {"field": "doc_type", "size": 7}},
        "department": {"terms": {"field": "department", "size": 7}},
        "topic": {"terms": {"field": "topics", "size": 7}},
        "outlet": {"terms": {"field": "outlet", "size": 7}},
        "language": {"terms": {"field": "language", "size": 7}},
        "consultation_state": {"terms": {"field": "consultation_state", "size": 7}},
    }


def test_highlights_use_mark_tags_and_escape_the_rest():
    highlight = body_for(q="医保")["highlight"]
    assert highlight["pre_tags"] == ["<mark>"] and highlight["post_tags"] == ["</mark>"]
    assert highlight["encoder"] == "html"
    assert highlight["fields"]["title"] == {"number_of_fragments": 0}
    assert highlight["fields"]["body"]["no_match_size"] > 0


def test_relevance_sort_breaks_ties_by_date_then_id():
    assert body_for(q="医保")["sort"] == ["_score", {"published_at": {"order": "desc"}}, {"doc_id": {"order": "asc"}}]
    assert body_for(q="医保", sort="date")["sort"][0] == {"published_at": {"order": "desc"}}


def test_pagination_sets_from_and_size_and_counts_every_hit():
    body = body_for(q="医保", page=3, per_page=25)
    assert (body["from"], body["size"], body["track_total_hits"]) == (50, 25, True)
    assert body["_source"] == {"excludes": ["body"]}


def test_search_kwargs_rename_the_python_reserved_keys():
    kwargs = search_kwargs(body_for(q="医保"))
    assert "from" not in kwargs and kwargs["from_"] == 0
    assert kwargs["source"] == {"excludes": ["body"]}


def test_a_response_becomes_a_search_result():
    response = {
        "hits": {
            "total": {"value": 41, "relation": "eq"},
            "hits": [{
                "_id": "article:a1", "_score": 2.5,
                "_source": {"doc_type": "article", "title": "医保新规", "url": "https://example.org/a"},
                "highlight": {"title": ["<mark>医保</mark>新规"]},
            }],
        },
        "aggregations": {"doc_type": {"buckets": [{"key": "article", "doc_count": 41}]}},
    }
    result = parse_search_response(response, parse_search_params({"q": "医保", "per_page": "20"}))
    assert result.total == 41 and result.pages == 3
    assert result.hits[0].highlights == {"title": ["<mark>医保</mark>新规"]}
    assert result.facet_counts("doc_type") == {"article": 41}
    assert result.facets["outlet"] == []
    assert result.to_dict()["hits"][0]["score"] == 2.5


# -- fetching stored documents -----------------------------------------------------------------------------------


def test_documents_are_fetched_from_their_family_s_serving_alias():
    body = mget_body(["article:a1", "comment:c1", "policy:7", "nonsense:1", "no-type"], prefix="site1")
    assert body == {"docs": [
        {"_index": "site1-content", "_id": "article:a1"},
        {"_index": "site1-discussion", "_id": "comment:c1"},
        {"_index": "site1-content", "_id": "policy:7"},
    ]}


def test_an_mget_response_gives_the_found_documents_with_their_whole_body():
    response = {"docs": [
        {"_index": "tb-content-v2", "_id": "article:a1", "_version": 3, "found": True,
         "_source": {"doc_id": "article:a1", "doc_type": "article", "title": "医保新规", "body": "很长的正文……",
                     "url": "https://example.org/a", "outlet": "人民日报"}},
        {"_index": "tb-content-v2", "_id": "article:gone", "found": False},
    ]}
    (document,) = parse_mget_response(response).values()
    assert (document.doc_id, document.doc_type, document.title, document.body, document.url) == (
        "article:a1", "article", "医保新规", "很长的正文……", "https://example.org/a"
    )
    assert document.source == {"doc_id": "article:a1", "doc_type": "article", "title": "医保新规",
                               "url": "https://example.org/a", "outlet": "人民日报"}


def test_a_per_document_mget_error_is_raised_not_taken_for_missing():
    response = {"docs": [{"_index": "tb-content", "_id": "article:a1",
                          "error": {"type": "index_not_found_exception", "reason": "no such index [tb-content]"}}]}
    with pytest.raises(SearchBackendError, match="index_not_found_exception"):
        parse_mget_response(response)


def test_get_documents_sends_one_mget_and_reads_its_answer():
    from tests.unit.search.test_matching import ScriptedEndpoint

    answer = {"docs": [{"_index": "tb-content-v1", "_id": "article:a1", "found": True,
                        "_source": make_doc().to_source()}]}
    endpoint = ScriptedEndpoint(lambda *request: (200, answer))
    with endpoint as url:
        backend = ElasticsearchSearchBackend.from_url(url, analyzer="cjk")
        documents = backend.get_documents(["article:a1", "article:a1", "comment:c9"])
        assert backend.get_documents(["nonsense:1"]) == {}  # nothing to ask: no request
        backend.close()
    (request,) = endpoint.requests
    assert (request["method"], request["path"]) == ("POST", "/_mget")
    assert request["body"] == {"docs": [{"_index": "tb-content", "_id": "article:a1"},
                                        {"_index": "tb-discussion", "_id": "comment:c9"}]}
    assert documents["article:a1"].body == "门诊报销比例提高。"


# -- writes and reindex -------------------------------------------------------------------------------------------


def test_bulk_index_actions_carry_external_versions_per_family():
    docs = [make_doc(), make_doc("comment")]
    actions = list(bulk_index_actions(docs, {"content": ["tb-content"], "discussion": ["tb-discussion"]}))
    assert [(a["_index"], a["_id"], a["version"], a["version_type"], a["_op_type"]) for a in actions] == [
        ("tb-content", "article:a1", 3, "external", "index"),
        ("tb-discussion", "comment:c1", 3, "external", "index"),
    ]
    assert actions[1]["_source"]["stance"] == "support"
    assert "status" not in actions[1]["_source"]


def test_during_a_reindex_every_write_goes_to_both_indices():
    actions = list(bulk_index_actions([make_doc()], {"content": ["tb-content", "tb-content-v4"]}))
    assert [action["_index"] for action in actions] == ["tb-content", "tb-content-v4"]


def test_indices_under_rebuild_are_read_from_the_building_aliases():
    response = {
        "tb-content-v4": {"aliases": {"tb-content-building": {}}},
        "tb-discussion-v2": {"aliases": {"tb-discussion-building": {}, "other": {}}},
        "unrelated": {"aliases": {"other-building": {}}},
    }
    assert building_indices_by_family(response) == {"content": ["tb-content-v4"], "discussion": ["tb-discussion-v2"]}
    assert building_indices_by_family({}) == {"content": [], "discussion": []}
    assert building_alias_name("*") == "tb-*-building"


def test_bulk_delete_actions_name_each_document():
    assert list(bulk_delete_actions(["article:a1"], ["tb-content"])) == [
        {"_op_type": "delete", "_index": "tb-content", "_id": "article:a1"}
    ]


def test_alias_swap_moves_the_alias_in_one_list_of_actions():
    actions = alias_swap_actions("tb-content", "tb-content-v3", ["tb-content-v2"], "tb-content-building")
    assert actions == [
        {"remove": {"index": "tb-content-v2", "alias": "tb-content"}},
        {"add": {"index": "tb-content-v3", "alias": "tb-content", "is_write_index": True}},
        {"remove": {"index": "tb-content-v3", "alias": "tb-content-building"}},
    ]


def test_the_next_index_version_follows_the_highest_existing_one():
    existing = ["tb-content-v2", "tb-content-v10", "tb-discussion-v11", "tb-content-old"]
    assert next_index_name("content", existing) == "tb-content-v11"
    assert next_index_name("discussion", []) == "tb-discussion-v1"
    assert alias_name("content") == "tb-content"
    assert building_alias_name("content", "x") == "x-content-building"


class BulkEndpoint:
    """A real local HTTP server answering /_bulk the way Elasticsearch does (a cluster cannot run here):
    item statuses are scripted, e.g. 409 for a version conflict; the request lines are recorded."""

    def __init__(self, statuses):
        self.statuses = list(statuses)
        self.requests = []
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", 0))
                lines = [json.loads(line) for line in self.rfile.read(length).decode().splitlines() if line.strip()]
                endpoint.requests.append((self.path, lines))
                items = []
                for position, status in enumerate(endpoint.statuses):
                    result = {"_index": "tb-content-v1", "_id": lines[position * 2]["index"]["_id"], "status": status}
                    if status >= 300:
                        result["error"] = {"type": "version_conflict_engine_exception", "reason": "version is higher"}
                    items.append({"index": result})
                payload = json.dumps({"took": 1, "errors": any(s >= 300 for s in endpoint.statuses),
                                      "items": items}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-Elastic-Product", "Elasticsearch")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_PUT = do_POST  # noqa: N815 - the client sends _bulk as PUT

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


def two_article_actions():
    return bulk_index_actions([make_doc(doc_id="article:0"), make_doc(doc_id="article:1")],
                              {"content": ["tb-content"]})


def test_a_version_conflict_is_counted_as_ignored_not_as_an_error():
    endpoint = BulkEndpoint([201, 409])
    with endpoint as url:
        backend = ElasticsearchSearchBackend.from_url(url, analyzer="cjk")
        assert backend._bulk(two_article_actions(), "wait_for") == (1, 1)
        backend.close()
    path, lines = endpoint.requests[0]
    assert path.startswith("/_bulk") and "refresh=wait_for" in path
    assert lines[0] == {"index": {"_id": "article:0", "_index": "tb-content", "version": 3,
                                  "version_type": "external"}}
    assert lines[1]["title"] == "医保报销新规"


def test_any_other_bulk_failure_is_raised():
    with BulkEndpoint([201, 400]) as url:
        backend = ElasticsearchSearchBackend.from_url(url, analyzer="cjk")
        with pytest.raises(SearchBackendError, match="1 bulk actions failed"):
            backend._bulk(two_article_actions(), False)
        backend.close()


def test_the_backend_is_built_from_the_search_config_section():
    backend = ElasticsearchBackend.from_settings({
        "elasticsearch_url": "http://127.0.0.1:9", "analyzer": "cjk", "index_prefix": "site1",
        "number_of_replicas": "0", "refresh": "wait_for",
    })
    assert (backend.prefix, backend.configured_analyzer, backend.number_of_replicas, backend.refresh) == (
        "site1", "cjk", 0, "wait_for"
    )
    assert backend.aliases == ["site1-content", "site1-discussion"]
    assert backend.ping() is False  # nothing listens on port 9
    backend.close()


def test_the_backend_refuses_an_unknown_analyzer_choice():
    with pytest.raises(ValueError):
        ElasticsearchSearchBackend(object(), analyzer="ik")
