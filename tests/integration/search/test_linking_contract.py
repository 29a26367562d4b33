"""One linking contract for both profile matchers: the embedded inverted index and the Elasticsearch percolator.

Each test runs the search service's use cases as two "processes": two contexts, each with its own backend client and
matcher, sharing the search index and the state database, as two search-service processes do.

The embedded half always runs (SQLite files). The Elasticsearch half needs a real server and runs only when
ELASTICSEARCH_URL is set (e.g. `docker compose up -d elasticsearch`); nothing here fakes one.
"""
import json
import os
import uuid

import pytest

from search import handlers
from search.backends.embedded import EmbeddedSearchBackend
from search.events import EVENT_SCHEMAS, LINKS_SUGGESTED
from search.linking import InterestProfile, analyse_article, score_article
from search.matching import ElasticsearchProfileMatcher, EmbeddedProfileMatcher
from search.state import Base, OutboxMessage, PolicyProfileRecord
from services.kernel.db import make_engine, make_session_factory
from services.kernel.outbox import SqlUnitOfWork
from tests.integration.search.test_backend_contract import ES_SKIP_REASON
from tests.integration.search.test_search_handlers import (
    make_article_event,
    make_long_article_event,
    make_policy_event,
    occurred,
)

UNRELATED = {"title": "城市马拉松周末开跑", "summary": "赛事交通管制。", "text": "周末城市马拉松开跑，部分道路实行交通管制。"}


class Processes:
    """Builds search-service contexts over one index and one state database."""

    def __init__(self, kind, tmp_path):
        self.kind = kind
        self.engine = make_engine(f"sqlite:///{tmp_path / 'search-state.sqlite3'}")
        Base.metadata.create_all(self.engine)
        self.session_factory = make_session_factory(self.engine)
        self.index_path = tmp_path / "index.sqlite3"
        self.prefix = f"tbtest-{uuid.uuid4().hex[:8]}"
        self.backends = []

    def start(self):
        if self.kind == "embedded":
            backend = EmbeddedSearchBackend(self.index_path)
            backend.ensure_schema()
            matcher = EmbeddedProfileMatcher(backend)
        else:
            from search.backends.elasticsearch import ElasticsearchSearchBackend

            backend = ElasticsearchSearchBackend.from_url(
                os.environ["ELASTICSEARCH_URL"], prefix=self.prefix, refresh="wait_for", number_of_replicas=0,
                initial_backoff=0.5,
            )
            backend.ensure_schema()
            matcher = ElasticsearchProfileMatcher(backend)
            matcher.ensure_schema()
        self.backends.append(backend)
        return handlers.SearchContext(
            backend, matcher, lambda: SqlUnitOfWork(self.session_factory, OutboxMessage, EVENT_SCHEMAS)
        )

    def stored_profile(self, policy_id):
        with self.session_factory() as session:
            return InterestProfile.from_dict(session.get(PolicyProfileRecord, policy_id).profile["interest"])

    def close(self):
        if self.kind == "elasticsearch" and self.backends:
            client = self.backends[0].client
            leftovers = list(client.indices.get(index=f"{self.prefix}-*"))
            if leftovers:
                client.indices.delete(index=",".join(leftovers))
            for family in ("content", "discussion"):
                client.indices.delete_index_template(name=f"{self.prefix}-{family}")
        for backend in self.backends:
            backend.close()
        self.engine.dispose()


@pytest.fixture(params=["embedded", pytest.param("elasticsearch", marks=pytest.mark.elasticsearch)])
def processes(request, tmp_path):
    if request.param == "elasticsearch" and not os.environ.get("ELASTICSEARCH_URL"):
        pytest.skip(ES_SKIP_REASON)
    built = Processes(request.param, tmp_path)
    yield built
    built.close()


def linked_article_ids(processes, policy_id):
    with processes.session_factory() as session:
        rows = session.query(OutboxMessage).filter_by(event_type=LINKS_SUGGESTED).all()
    return [link["article_id"] for row in rows for link in json.loads(row.payload)["links"]
            if link["policy_id"] == policy_id]


def test_an_article_about_an_open_policy_is_suggested_with_the_stored_profile_s_score_clause_and_terms(processes):
    ctx = processes.start()
    handlers.index_policy(ctx, make_policy_event())
    event = make_article_event()
    (suggestion,) = handlers.index_article(ctx, event)
    expected = score_article(processes.stored_profile(7), analyse_article(event["title"], event["text"], "art-1"))
    assert suggestion["policy_id"] == 7 and suggestion["article_id"] == "art-1"
    assert suggestion["score"] == round(expected.score, 4)
    assert suggestion["matched_terms"] == [term for term, _ in sorted(expected.matched_terms.items(),
                                                                      key=lambda item: -item[1])]
    assert linked_article_ids(processes, 7) == ["art-1"]


def test_an_unrelated_article_is_not_suggested(processes):
    ctx = processes.start()
    handlers.index_policy(ctx, make_policy_event())
    assert handlers.index_article(ctx, make_article_event(id="art-2", **UNRELATED)) == []


def test_a_policy_published_after_its_coverage_finds_that_coverage_and_not_unrelated_news(processes):
    ctx = processes.start()
    handlers.index_article(ctx, make_article_event())
    handlers.index_article(ctx, make_article_event(id="art-2", **UNRELATED))
    suggestions = handlers.index_policy(ctx, make_policy_event())
    assert [s["article_id"] for s in suggestions] == ["art-1"]
    assert suggestions[0]["score"] >= processes.stored_profile(7).threshold
    assert suggestions[0]["matched_terms"] and suggestions[0]["article_url"] == "https://news.example/a/1"


def test_existing_coverage_is_scored_on_the_title_and_whole_body_of_a_long_article(processes):
    ctx = processes.start()
    event = make_long_article_event()
    handlers.index_article(ctx, event)
    handlers.index_article(ctx, make_article_event(id="art-2", **UNRELATED))
    (suggestion,) = handlers.index_policy(ctx, make_policy_event())
    whole = score_article(processes.stored_profile(7), analyse_article(event["title"], event["text"], "art-long"))
    assert suggestion["article_id"] == "art-long" and suggestion["score"] == round(whole.score, 4)
    assert suggestion["matched_terms"] == [term for term, _ in sorted(whole.matched_terms.items(),
                                                                      key=lambda item: -item[1])]


def test_a_profile_added_by_one_process_is_matched_by_another(processes):
    first, second = processes.start(), processes.start()
    assert handlers.index_article(second, make_article_event(id="art-0")) == []  # second has loaded: none open
    handlers.index_policy(first, make_policy_event())
    assert [s["policy_id"] for s in handlers.index_article(second, make_article_event())] == [7]


def test_a_consultation_closed_in_one_process_stops_linking_in_another(processes):
    first, second = processes.start(), processes.start()
    handlers.index_policy(first, make_policy_event())
    assert handlers.index_article(second, make_article_event(id="art-0"))
    handlers.update_window_state(first, {"policy_id": 7, "state": "closed", "occurred_at": occurred()})
    assert handlers.index_article(second, make_article_event()) == []


def test_editor_keywords_saved_in_one_process_are_matched_in_another(processes):
    first, second = processes.start(), processes.start()
    handlers.index_policy(first, make_policy_event())
    # Only the editor's keyword links this article to the policy.
    keyword_article = make_article_event(
        id="art-3", title="长护险试点扩围", summary="", text="多地扩大长护险试点范围，失能人员可申请长护险待遇。",
    )
    assert handlers.index_article(second, keyword_article) == []
    handlers.set_profile_terms(first, 7, ["长护险"], {})
    assert [s["policy_id"] for s in handlers.index_article(second, keyword_article)] == [7]


def test_a_restarted_process_loads_the_open_profiles(processes):
    ctx = processes.start()
    handlers.index_policy(ctx, make_policy_event())
    handlers.index_policy(ctx, make_policy_event(policy_id=9, state="withdrawn", url_path="/policies/9"))
    assert handlers.load_open_profiles(processes.start()) == 1
