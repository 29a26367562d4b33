"""The profile matcher: open policies' interest profiles, matched against new articles, and existing coverage found for
a new policy. One port, two adapters, chosen with the search backend:

- ``EmbeddedProfileMatcher``: the in-process inverted index (``search.linking.ProfileIndex``). Every process holds
  its own copy; the search service's database says what is current. Each profile change takes the next value of a
  revision counter in the same transaction (search.state), so before matching a process reads one number and, only
  when it moved, the rows changed since: profiles added, changed or closed by another process are seen at once.
- ``ElasticsearchProfileMatcher``: a percolator index (its own alias) holding one stored query per open profile and
  the profile itself. The percolator only selects candidates; each is re-scored with ``score_article`` on its stored
  profile, so scores, thresholds, clauses and matched terms are those of the embedded matcher. Writes carry the
  revision as an external version, so a late write from another process never replaces a newer profile.

Existing coverage is found the same way on both: at most ``COVERAGE_CANDIDATES`` candidate articles from the search
index (on the embedded index a query per top profile term and name, their rankings fused; more-like-this on
Elasticsearch), each re-scored with the profile on its title and whole stored body.
"""
from __future__ import annotations

import abc
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from search.backends.base import SearchBackend, StoredDocument
from search.linking import (
    DEFAULT_AVERAGE_ARTICLE_LENGTH,
    AnalysedArticle,
    InterestProfile,
    LinkingError,
    LinkSuggestion,
    ProfileIndex,
    more_like_this_query,
    percolate_query,
    percolator_index_mapping,
    profile_to_percolator_document,
    rank_articles_for_policy,
    score_article,
)
from search.queries import InvalidSearchQuery, parse_search_params
from search.state import PolicyProfileRecord, current_profile_revision

__all__ = [
    "CoverageMatch",
    "ElasticsearchProfileMatcher",
    "EmbeddedProfileMatcher",
    "ProfileMatcher",
    "ProfileRow",
    "percolator_bulk_actions",
]

log = logging.getLogger(__name__)

PERCOLATE_CANDIDATES = 50  # stored profiles re-scored per article (the percolator's best)
COVERAGE_CANDIDATES = 100  # articles re-scored per new policy
PROFILE_QUERY_TERMS = 6  # embedded coverage: one search per top profile term
PROFILE_QUERY_PHRASES = 2  # … and per top phrase (the policy's names, editor keywords)
RANK_FUSION_K = 60  # reciprocal rank fusion: a hit at rank r of a query adds weight / (K + r)
_QUOTES = str.maketrans({quote: " " for quote in '"“”「」'})


@dataclass(frozen=True)
class CoverageMatch:
    """An existing article about a policy: the suggestion and what an editor sees of the article."""

    suggestion: LinkSuggestion
    title: str
    url: str
    outlet: str | None = None
    published_at: str | None = None


@dataclass(frozen=True)
class ProfileRow:
    """A profile as the database holds it: ``interest`` None when the policy no longer takes links."""

    policy_id: str
    revision: int
    interest: Mapping[str, Any] | None

    @classmethod
    def of(cls, policy_id: Any, revision: int | None, is_open: bool, stored: Mapping[str, Any] | None) -> ProfileRow:
        """The row of a PolicyProfileRecord's columns (policy_id, revision, is_open, profile)."""
        interest = (stored or {}).get("interest") if is_open else None
        return cls(str(policy_id), int(revision or 0), interest or None)


def _profile_rows(session, *, changed_after: int | None = None) -> list[ProfileRow]:
    """Open profiles (``changed_after`` None), or every row changed after that revision, open or not."""
    columns = select(
        PolicyProfileRecord.policy_id, PolicyProfileRecord.revision, PolicyProfileRecord.is_open,
        PolicyProfileRecord.profile,
    )
    if changed_after is None:
        query = columns.where(PolicyProfileRecord.is_open.is_(True))
    else:
        query = columns.where(PolicyProfileRecord.revision > changed_after)
    return [ProfileRow.of(*row) for row in session.execute(query.order_by(PolicyProfileRecord.revision))]


def _check_top_k(top_k: int | None) -> None:
    if top_k is not None and top_k < 1:
        raise LinkingError({"top_k": "must be at least 1"})


def _rank_coverage(
    profile: InterestProfile, documents: Iterable[StoredDocument], top_k: int | None, average_length: float
) -> list[CoverageMatch]:
    """Candidate articles re-scored with the profile on their title and whole body, best first, above the threshold."""
    by_id: dict[str, StoredDocument] = {}
    candidates = []
    for document in documents:
        article_id = document.doc_id.split(":", 1)[-1]
        if not article_id or article_id in by_id:
            continue
        by_id[article_id] = document
        candidates.append((article_id, document.title, document.body, document.source.get("published_at")))
    ranked = rank_articles_for_policy(
        profile, candidates, top_k=top_k, min_score=profile.threshold, average_length=average_length
    )
    return [
        CoverageMatch(
            match, title=by_id[match.article_id].title, url=by_id[match.article_id].url,
            outlet=by_id[match.article_id].source.get("outlet"),
            published_at=by_id[match.article_id].source.get("published_at"),
        )
        for match in ranked
    ]


def _best(suggestions: Iterable[LinkSuggestion], top_k: int | None, key: Callable) -> list[LinkSuggestion]:
    ordered = sorted(suggestions, key=key)
    return ordered if top_k is None else ordered[:top_k]


class ProfileMatcher(abc.ABC):
    """Where open policies' interest profiles live and how articles are matched against them.

    ``add`` and ``remove`` take the profile revision of the committed change (search.state); a change older than one
    already held is ignored. Call them after the change is committed.
    """

    average_article_length: float = DEFAULT_AVERAGE_ARTICLE_LENGTH

    def ensure_schema(self) -> None:  # noqa: B027 - only the Elasticsearch matcher has an index to create
        """Create what the matcher stores profiles in; safe to call on every start."""

    @abc.abstractmethod
    def add(self, profile: InterestProfile, revision: int | None = None) -> None:
        """Hold ``profile`` (replacing the policy's previous one) for matching."""

    @abc.abstractmethod
    def remove(self, policy_id: str, revision: int | None = None) -> None:
        """Stop matching articles against this policy; unknown ids are ignored."""

    def apply(self, row: ProfileRow) -> None:
        """Apply one committed profile change: hold its profile, or stop matching a policy that takes no links."""
        if row.interest is None:
            self.remove(row.policy_id, row.revision)
        else:
            self.add(InterestProfile.from_dict(row.interest), row.revision)

    @abc.abstractmethod
    def sync(self, unit_of_work: Callable) -> None:
        """Catch up with profile changes committed by other processes; cheap when nothing changed."""

    @abc.abstractmethod
    def reload(self, unit_of_work: Callable) -> int:
        """Rebuild from the database's open profiles; returns how many there are."""

    @abc.abstractmethod
    def match(
        self, article: AnalysedArticle, top_k: int | None = 10, min_score: float | None = None
    ) -> list[LinkSuggestion]:
        """Open policies this article is about, best first; ``min_score`` None means each profile's threshold."""

    def existing_coverage(self, profile: InterestProfile, top_k: int | None = 20) -> list[CoverageMatch]:
        """Indexed articles about this policy, best first, each scoring at least the profile's threshold."""
        _check_top_k(top_k)
        return _rank_coverage(profile, self.candidate_articles(profile), top_k, self.average_article_length)

    @abc.abstractmethod
    def candidate_articles(self, profile: InterestProfile) -> list[StoredDocument]:
        """At most COVERAGE_CANDIDATES indexed articles that may be about this policy, each with its whole body."""


# --- embedded --------------------------------------------------------------------------------------------------------


class EmbeddedProfileMatcher(ProfileMatcher):
    """``ProfileIndex`` in this process, kept current from the database by the profile revision."""

    def __init__(self, backend: SearchBackend, *, average_article_length: float = DEFAULT_AVERAGE_ARTICLE_LENGTH):
        self.backend = backend
        self.average_article_length = average_article_length
        self.index = ProfileIndex(average_article_length)
        self._seen: int | None = None  # the revision this process has caught up with; None: never loaded
        self._applied: dict[str, int] = {}  # policy id → revision of the change the index holds

    def __len__(self) -> int:
        return len(self.index)

    def add(self, profile: InterestProfile, revision: int | None = None) -> None:
        if revision is None:
            self.index.add(profile)  # no revision: ProfileIndex's own rule (an older version is ignored)
            return
        if self._apply(profile.policy_id, revision):
            self.index.remove(profile.policy_id)
            self.index.add(profile)

    def remove(self, policy_id: str, revision: int | None = None) -> None:
        if revision is None or self._apply(str(policy_id), revision):
            self.index.remove(str(policy_id))

    def _apply(self, policy_id: str, revision: int) -> bool:
        if revision <= self._applied.get(policy_id, -1):
            return False
        self._applied[policy_id] = revision
        return True

    def sync(self, unit_of_work: Callable) -> None:
        if self._seen is None:
            self.reload(unit_of_work)
            return
        seen = self._seen
        with unit_of_work() as uow:
            current = current_profile_revision(uow.session)
            if current <= seen:
                return
            # Read after the counter: every change up to `current` is committed; later ones may come too.
            rows = _profile_rows(uow.session, changed_after=seen)
        for row in rows:
            self.apply(row)
        self._seen = max(self._seen or 0, current)

    def reload(self, unit_of_work: Callable) -> int:
        with unit_of_work() as uow:
            current = current_profile_revision(uow.session)
            rows = _profile_rows(uow.session)
        index = ProfileIndex(self.average_article_length)
        applied = {}
        for row in rows:
            index.add(InterestProfile.from_dict(row.interest))
            applied[row.policy_id] = row.revision
        # One swap: matching never sees a half-built index.
        self.index, self._applied, self._seen = index, applied, current
        return len(index)

    def match(
        self, article: AnalysedArticle, top_k: int | None = 10, min_score: float | None = None
    ) -> list[LinkSuggestion]:
        _check_top_k(top_k)
        return self.index.match_analysed(article, top_k=top_k, min_score=min_score)

    def candidate_articles(self, profile: InterestProfile) -> list[StoredDocument]:
        """One article search per top profile term and top phrase; their rankings fused (each query weighted by its
        profile weight), the best COVERAGE_CANDIDATES fetched whole."""
        terms = sorted(profile.terms.items(), key=lambda item: (-item[1], item[0]))[:PROFILE_QUERY_TERMS]
        phrases = sorted(profile.phrases.items(), key=lambda item: (-item[1], item[0]))[:PROFILE_QUERY_PHRASES]
        queries = [(term, weight) for term, weight in terms]
        for phrase, weight in phrases:
            words = " ".join(phrase.translate(_QUOTES).split())
            if words:
                queries.append((f'"{words}"', weight))
        fused: dict[str, float] = {}
        for text, weight in queries:
            try:
                query = parse_search_params({"q": text, "doc_type": "article", "per_page": str(COVERAGE_CANDIDATES)})
            except InvalidSearchQuery:  # a profile term the query parser refuses must not stop indexing
                continue
            for rank, hit in enumerate(self.backend.search(query).hits):
                fused[hit.doc_id] = fused.get(hit.doc_id, 0.0) + weight / (RANK_FUSION_K + rank)
        best = sorted(fused, key=lambda doc_id: (-fused[doc_id], doc_id))[:COVERAGE_CANDIDATES]
        documents = self.backend.get_documents(best)
        return [documents[doc_id] for doc_id in best if doc_id in documents]


# --- Elasticsearch ---------------------------------------------------------------------------------------------------


def _versioned(revision: int | None) -> dict[str, Any]:
    # external_gte: the same revision again (a retried write) is accepted, an older one is a 409 and ignored.
    return {} if revision is None else {"version": revision, "version_type": "external_gte"}


def percolator_bulk_actions(rows: Iterable[ProfileRow], index: str) -> Iterable[dict[str, Any]]:
    """Bulk actions putting the percolator index in step with the database: open profiles stored, others deleted."""
    for row in rows:
        action = {"_index": index, "_id": row.policy_id, **_versioned(row.revision)}
        if row.interest is None:
            yield {"_op_type": "delete", **action}
        else:
            document = profile_to_percolator_document(InterestProfile.from_dict(row.interest))
            yield {"_op_type": "index", **action, "_source": document}


class ElasticsearchProfileMatcher(ProfileMatcher):
    """Profiles as stored percolator queries on the cluster of ``backend`` (an ElasticsearchSearchBackend).

    Profile writes wait for a refresh: an article arriving next must be matched against the change.
    """

    def __init__(
        self,
        backend: Any,
        *,
        candidates: int = PERCOLATE_CANDIDATES,
        coverage_candidates: int = COVERAGE_CANDIDATES,
        average_article_length: float = DEFAULT_AVERAGE_ARTICLE_LENGTH,
        refresh: bool | str = "wait_for",
    ):
        from search.backends.elasticsearch import alias_name, profile_alias_name

        self.backend = backend
        self.client = backend.client
        self.alias = profile_alias_name(backend.prefix)
        self.article_alias = alias_name("content", backend.prefix)
        self.candidates = candidates
        self.coverage_candidates = coverage_candidates
        self.average_article_length = average_article_length
        self.refresh = refresh
        self._reconciled = False

    def ensure_schema(self) -> None:
        """Create the percolator index behind its alias unless it exists (another process may create it too)."""
        from elasticsearch import BadRequestError

        from search.backends.base import SearchBackendError

        if self.backend.request("exists_alias", self.client.indices.exists_alias, name=self.alias):
            return
        body = percolator_index_mapping(number_of_replicas=self.backend.number_of_replicas)
        try:
            self.client.indices.create(
                index=f"{self.alias}-v1", aliases={self.alias: {"is_write_index": True}}, **body
            )
        except BadRequestError as exc:
            # Fine when another process created it meanwhile (resource_already_exists_exception with its alias).
            if not self.backend.request("exists_alias", self.client.indices.exists_alias, name=self.alias):
                raise SearchBackendError(f"cannot create the profile index {self.alias}-v1: {exc}") from exc

    def add(self, profile: InterestProfile, revision: int | None = None) -> None:
        self.backend.request(
            "store profile", self.client.index, index=self.alias, id=profile.policy_id,
            document=profile_to_percolator_document(profile), refresh=self.refresh, ignore_status=(409,),
            **_versioned(revision),
        )

    def remove(self, policy_id: str, revision: int | None = None) -> None:
        self.backend.request(
            "remove profile", self.client.delete, index=self.alias, id=str(policy_id), refresh=self.refresh,
            ignore_status=(404, 409), **_versioned(revision),
        )

    def sync(self, unit_of_work: Callable) -> None:
        """The percolator index is shared by every process; once per process it is reconciled with the database
        (it may have been created empty, or the service may have run on the embedded backend before)."""
        if not self._reconciled:
            self.reload(unit_of_work)

    def reload(self, unit_of_work: Callable) -> int:
        with unit_of_work() as uow:
            rows = _profile_rows(uow.session, changed_after=-1)
        self.backend.bulk(percolator_bulk_actions(rows, self.alias), refresh=self.refresh)
        self._reconciled = True
        return sum(1 for row in rows if row.interest is not None)

    def _search(self, what: str, index: str, body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        from search.backends.elasticsearch import search_kwargs

        response = self.backend.request(what, self.client.search, index=index, **search_kwargs(body))
        return list(getattr(response, "body", response)["hits"]["hits"])

    def match(
        self, article: AnalysedArticle, top_k: int | None = 10, min_score: float | None = None
    ) -> list[LinkSuggestion]:
        _check_top_k(top_k)
        hits = self._search("percolate", self.alias, percolate_query(article.title, article.body, self.candidates))
        suggestions = []
        for hit in hits:
            stored = (hit.get("_source") or {}).get("profile")
            if not stored:
                continue
            profile = InterestProfile.from_dict(stored)
            suggestion = score_article(profile, article, self.average_article_length)
            floor = profile.threshold if min_score is None else min_score
            if suggestion.evidence > 0 and suggestion.evidence >= floor:
                suggestions.append(suggestion)
        return _best(suggestions, top_k, key=lambda s: (-s.score, s.policy_id))

    def candidate_articles(self, profile: InterestProfile) -> list[StoredDocument]:
        """More-like-this over the articles; each hit carries its whole stored body."""
        from search.backends.elasticsearch import stored_document

        hits = self._search("more like this", self.article_alias, more_like_this_query(profile, self.coverage_candidates))
        return [stored_document(str(hit.get("_id") or ""), hit.get("_source") or {}) for hit in hits]
