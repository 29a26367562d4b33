"""Search backends behind one port: the embedded SQLite FTS5 index and Elasticsearch."""
from search.backends.base import (
    FacetCount,
    Hit,
    SearchBackend,
    SearchBackendError,
    SearchBackendUnavailable,
    SearchResult,
)

__all__ = [
    "FacetCount",
    "Hit",
    "SearchBackend",
    "SearchBackendError",
    "SearchBackendUnavailable",
    "SearchResult",
]
