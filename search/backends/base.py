"""The search backend port: what the search service needs from any index, and the result types it gets back."""
from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from search.documents import FACET_FIELDS, SearchDocument
from search.queries import SearchQuery

__all__ = [
    "FACET_NAMES",
    "MAX_FETCH_IDS",
    "FacetCount",
    "Hit",
    "SearchBackend",
    "SearchBackendError",
    "SearchBackendUnavailable",
    "SearchResult",
    "StoredDocument",
    "checked_fetch_ids",
]

FACET_NAMES: tuple[str, ...] = tuple(FACET_FIELDS)
MAX_FETCH_IDS = 1000  # documents one get_documents call may ask for: callers fetch a bounded set of candidates


class SearchBackendError(RuntimeError):
    """The index failed to do what was asked (bad state, refused request)."""


class SearchBackendUnavailable(SearchBackendError):
    """The index cannot be reached right now; callers may retry later."""


@dataclass(frozen=True)
class Hit:
    doc_id: str
    doc_type: str
    title: str
    url: str
    score: float
    # Field name ("title", "body") → snippets: HTML-escaped text with <mark>…</mark> around the matches.
    highlights: Mapping[str, list[str]] = field(default_factory=dict)
    source: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "doc_id": self.doc_id,
            "doc_type": self.doc_type,
            "title": self.title,
            "url": self.url,
            "score": self.score,
            "highlights": {name: list(snippets) for name, snippets in self.highlights.items()},
            "source": dict(self.source),
        }


@dataclass(frozen=True)
class StoredDocument:
    """A document as the index stores it: the original title and whole body, and its other public fields."""

    doc_id: str
    doc_type: str
    title: str
    body: str
    url: str
    source: Mapping[str, Any] = field(default_factory=dict)  # public fields without the body


@dataclass(frozen=True)
class FacetCount:
    value: str
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "count": self.count}


@dataclass(frozen=True)
class SearchResult:
    hits: list[Hit]
    total: int
    # Facet name (see FACET_NAMES) → counts per value, largest first, over everything that matched.
    facets: Mapping[str, list[FacetCount]]
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return (self.total + self.per_page - 1) // self.per_page if self.per_page else 0

    def facet_counts(self, name: str) -> dict[str, int]:
        return {facet.value: facet.count for facet in self.facets.get(name, [])}

    def to_dict(self) -> dict[str, Any]:
        return {
            "hits": [hit.to_dict() for hit in self.hits],
            "total": self.total,
            "facets": {name: [facet.to_dict() for facet in counts] for name, counts in self.facets.items()},
            "page": self.page,
            "per_page": self.per_page,
            "pages": self.pages,
        }


def checked_fetch_ids(doc_ids: Iterable[str]) -> list[str]:
    """The distinct ids of a get_documents call, in order; refuses more than MAX_FETCH_IDS."""
    ids = list(dict.fromkeys(str(doc_id) for doc_id in doc_ids))
    if len(ids) > MAX_FETCH_IDS:
        raise ValueError(f"get_documents takes at most {MAX_FETCH_IDS} ids, not {len(ids)}")
    return ids


def sorted_facets(counts: Mapping[str, int], size: int) -> list[FacetCount]:
    """Largest count first, ties by value, so both backends order facets the same way."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [FacetCount(value, count) for value, count in ordered[:size]]


class SearchBackend(abc.ABC):
    """One index of public documents. Implementations: embedded (SQLite FTS5) and Elasticsearch."""

    facet_size = 20

    @abc.abstractmethod
    def ensure_schema(self) -> None:
        """Create whatever the index needs; safe to call on every start."""

    @abc.abstractmethod
    def upsert(self, docs: Iterable[SearchDocument], *, refresh: bool | str | None = None) -> int:
        """Store documents; one whose version is not newer than the stored one is ignored. Returns how many applied.

        `refresh` asks for read-your-writes ("wait_for") or throughput (False) where the backend distinguishes them;
        None keeps the backend's default. The embedded backend is always read-your-writes.
        """

    @abc.abstractmethod
    def delete(self, doc_ids: Iterable[str], *, refresh: bool | str | None = None) -> int:
        """Remove documents by id; unknown ids are ignored. Returns how many were removed."""

    @abc.abstractmethod
    def search(self, query: SearchQuery) -> SearchResult:
        """Run a query: hits for the requested page, the total, and facets over everything that matched."""

    @abc.abstractmethod
    def get_documents(self, doc_ids: Iterable[str]) -> dict[str, StoredDocument]:
        """The stored documents with these ids, by id; unknown ids are left out. At most MAX_FETCH_IDS ids (more is
        a ValueError): this reads whole bodies, for a bounded set such as a query's candidates."""

    @abc.abstractmethod
    def reindex(self, source_iter: Iterable[SearchDocument]) -> int:
        """Rebuild the whole index from `source_iter` while searches keep being served; returns documents indexed."""

    @abc.abstractmethod
    def ping(self) -> bool:
        """True when the index answers."""

    @abc.abstractmethod
    def count(self) -> int:
        """Number of documents searchable now."""

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing to release
        """Release connections."""
