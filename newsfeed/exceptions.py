"""Domain exceptions of the newsfeed package; the gateway maps them to HTTP statuses (404, 400, 409)."""
from __future__ import annotations


class NewsfeedError(Exception):
    """Base of every error the newsfeed domain raises on purpose."""


class NotFound(NewsfeedError):
    def __init__(self, kind: str, key: object):
        super().__init__(f"{kind} {key} not found")
        self.kind = kind
        self.key = key


class InvalidFeed(NewsfeedError):
    """Bad input for a feed command; `errors` maps field names to lists of messages, as marshmallow does."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{field}: {', '.join(messages)}" for field, messages in errors.items()))
        self.errors = errors


class FeedAlreadyExists(NewsfeedError):
    def __init__(self, url: str, feed_id: int | None = None):
        super().__init__(f"a feed with URL {url} already exists")
        self.url = url
        self.feed_id = feed_id


class FeedRejected(NewsfeedError):
    """A fetched document that cannot be ingested; `reason` is short and shown to staff as the feed's health."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
