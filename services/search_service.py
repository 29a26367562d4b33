"""The search service: keeps the public index in step with events and suggests policy ↔ coverage links."""
from __future__ import annotations

from nameko.extensions import DependencyProvider
from nameko.rpc import rpc

from consultation import events as consultation_events
from newsfeed import events as newsfeed_events
from search import handlers
from search.events import EVENT_SCHEMAS
from search.matching import ElasticsearchProfileMatcher, EmbeddedProfileMatcher, ProfileMatcher
from search.sources import all_public_documents
from search.state import OutboxMessage
from services.dependencies import UnitOfWork
from services.health import database_ok
from services.kernel.db import utcnow
from services.messaging import reliable_event_handler


def build_backend(settings: dict):
    if settings.get("backend", "embedded") == "elasticsearch":
        from search.backends.elasticsearch import ElasticsearchBackend

        return ElasticsearchBackend.from_settings(settings)
    from search.backends.embedded import EmbeddedSearchBackend

    return EmbeddedSearchBackend(settings.get("embedded_path", "var/search-index.sqlite3"))


def build_matcher(settings: dict, backend) -> ProfileMatcher:
    """The profile matcher that goes with the configured backend: a percolator index on Elasticsearch, the
    in-process inverted index (kept current through the database) on the embedded backend."""
    if settings.get("backend", "embedded") == "elasticsearch":
        return ElasticsearchProfileMatcher(backend)
    return EmbeddedProfileMatcher(backend)


class SearchIndex(DependencyProvider):
    """The search backend chosen by configuration (SEARCH.backend: embedded | elasticsearch), one per process."""

    def setup(self):
        self.settings = dict(self.container.config.get("SEARCH", {}))
        self.backend = build_backend(self.settings)
        self.backend.ensure_schema()

    def get_dependency(self, worker_ctx):
        return self.backend


class Linking(DependencyProvider):
    """The profile matcher (one per process, shared by its workers; see build_matcher) and the configured
    suggestion threshold (SEARCH.link_threshold)."""

    def setup(self):
        self.settings = dict(self.container.config.get("SEARCH", {}))
        threshold = self.settings.get("link_threshold")
        self.threshold = float(threshold) if threshold not in (None, "") else None
        self.matcher = None

    def matcher_for(self, backend) -> ProfileMatcher:
        """Built on first use, over the process's search backend; profiles load from the database when it first
        matches (sync)."""
        if self.matcher is None:
            matcher = build_matcher(self.settings, backend)
            matcher.ensure_schema()
            self.matcher = matcher
        return self.matcher

    def get_dependency(self, worker_ctx):
        return self


class Reindexing(DependencyProvider):
    """Rebuilds the index from the owning services in the background (never inside a request) and reports progress.

    The backend builds a new index beside the live one and swaps it in, so searches keep working meanwhile."""

    def setup(self):
        self.status = {"state": "idle", "documents": 0}

    def start(self):
        self._runner = None

    def begin(self, backend) -> dict:
        if self.status["state"] == "running":
            return dict(self.status)
        self.status = {"state": "running", "documents": 0, "started_at": utcnow().isoformat()}
        self.container.spawn_managed_thread(lambda: self._run(backend), identifier="reindex")
        return dict(self.status)

    def _run(self, backend):
        from nameko.standalone.rpc import ClusterRpcProxy

        def counted(documents):
            for document in documents:
                self.status["documents"] += 1
                yield document

        try:
            with ClusterRpcProxy(self.container.config, timeout=120) as cluster:
                total = backend.reindex(counted(all_public_documents(cluster.consultation, cluster.newsfeed, utcnow())))
            self.status.update(state="done", documents=total, finished_at=utcnow().isoformat())
        except Exception as exc:  # noqa: BLE001 - reported to the operator through reindex_status
            self.status.update(state="failed", error=f"{type(exc).__name__}: {exc}"[:500],
                               finished_at=utcnow().isoformat())

    def get_dependency(self, worker_ctx):
        return self


class SearchService:
    name = "search"

    backend = SearchIndex()
    linking = Linking()
    reindexing = Reindexing()
    uow = UnitOfWork("search", OutboxMessage, EVENT_SCHEMAS)

    @property
    def ctx(self) -> handlers.SearchContext:
        return handlers.SearchContext(
            self.backend, self.linking.matcher_for(self.backend), self.uow, self.linking.threshold
        )

    @rpc
    def search(self, params):
        return handlers.search(self.ctx, params)

    @rpc
    def health(self):
        return {"database": database_ok(self.uow), "search_backend": "ok" if self.backend.ping() else "down"}

    @rpc
    def start_reindex(self):
        """Start rebuilding the whole index from the owning services; poll reindex_status for progress."""
        return self.reindexing.begin(self.backend)

    @rpc
    def reindex_status(self):
        return dict(self.reindexing.status)

    @rpc
    def load_profiles(self):
        return handlers.load_open_profiles(self.ctx)

    @rpc
    def get_profile(self, policy_id):
        return handlers.get_profile(self.ctx, int(policy_id))

    @rpc
    def set_profile_terms(self, policy_id, keywords, synonyms):
        return handlers.set_profile_terms(self.ctx, int(policy_id), keywords, synonyms)

    @reliable_event_handler("consultation", consultation_events.POLICY_PUBLISHED)
    def on_policy_published(self, payload):
        handlers.index_policy(self.ctx, payload)

    @reliable_event_handler("consultation", consultation_events.POLICY_UPDATED)
    def on_policy_updated(self, payload):
        handlers.index_policy(self.ctx, payload)

    @reliable_event_handler("consultation", consultation_events.CONSULTATION_OPENED)
    def on_consultation_opened(self, payload):
        handlers.update_window_state(self.ctx, payload)

    @reliable_event_handler("consultation", consultation_events.CONSULTATION_CLOSED)
    def on_consultation_closed(self, payload):
        handlers.update_window_state(self.ctx, payload)

    @reliable_event_handler("consultation", consultation_events.COMMENT_MODERATED)
    def on_comment_moderated(self, payload):
        handlers.index_comment(self.ctx, payload)

    @reliable_event_handler("consultation", consultation_events.REPLY_POSTED)
    def on_reply_posted(self, payload):
        handlers.index_reply(self.ctx, payload)

    @reliable_event_handler("consultation", consultation_events.EXPLANATION_PUBLISHED)
    def on_explanation_published(self, payload):
        handlers.index_explanation(self.ctx, payload)

    @reliable_event_handler("newsfeed", newsfeed_events.ARTICLE_INGESTED)
    def on_article_ingested(self, payload):
        handlers.index_article(self.ctx, payload)

    @reliable_event_handler("newsfeed", newsfeed_events.ARTICLE_UPDATED)
    def on_article_updated(self, payload):
        handlers.index_article(self.ctx, payload)
