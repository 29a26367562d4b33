"""Commands the newsfeed domain accepts. Built by services from validated input (see schemas.py)."""
from __future__ import annotations

from dataclasses import dataclass

from .model import DEFAULT_POLL_INTERVAL_S, DEFAULT_TIME_ZONE

MIN_POLL_INTERVAL_S = 60
MAX_POLL_INTERVAL_S = 7 * 24 * 3600


@dataclass(frozen=True)
class AddFeed:
    """Subscribe to a feed. `url` may be the feed itself or a web page that advertises one."""

    url: str
    title: str | None = None
    outlet: str | None = None
    language: str | None = None  # "zh" or "en"; None: as the feed declares / as detected per article
    time_zone: str = DEFAULT_TIME_ZONE  # for dates the feed gives without a zone
    poll_interval_s: int = DEFAULT_POLL_INTERVAL_S
    category: str | None = None


@dataclass(frozen=True)
class UpdateFeed:
    """Change feed settings; a field left None stays as it is (an empty string clears category)."""

    feed_id: int
    url: str | None = None
    title: str | None = None
    outlet: str | None = None
    language: str | None = None
    time_zone: str | None = None
    poll_interval_s: int | None = None
    category: str | None = None


@dataclass(frozen=True)
class ListArticles:
    """Page through articles in id order (stable for reindexing); `after` is the last id of the previous page."""

    feed_id: int | None = None
    changed_since: object | None = None  # aware datetime
    after: str | None = None
    limit: int = 100
