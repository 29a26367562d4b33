"""Marshmallow schemas at the service boundary: loading commands from RPC/HTTP input, dumping views.

`load_*` helpers raise InvalidFeed with marshmallow's field messages, so callers see one domain exception type.
"""
from __future__ import annotations

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validate

from .commands import MAX_POLL_INTERVAL_S, MIN_POLL_INTERVAL_S, AddFeed, ListArticles, UpdateFeed
from .exceptions import InvalidFeed
from .model import DEFAULT_POLL_INTERVAL_S, DEFAULT_TIME_ZONE


def _time_zone(value: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError("Not an IANA time zone name (e.g. Asia/Shanghai).") from None


class _FeedSettings(Schema):
    class Meta:
        unknown = EXCLUDE

    title = fields.String(validate=validate.Length(max=500), allow_none=True)
    outlet = fields.String(validate=validate.Length(max=200), allow_none=True)
    language = fields.String(validate=validate.OneOf(["zh", "en"]), allow_none=True)
    category = fields.String(validate=validate.Length(max=100), allow_none=True)


class AddFeedSchema(_FeedSettings):
    url = fields.Url(required=True, schemes={"http", "https"}, require_tld=False, validate=validate.Length(max=2000))
    time_zone = fields.String(load_default=DEFAULT_TIME_ZONE, validate=_time_zone)
    poll_interval_s = fields.Integer(
        load_default=DEFAULT_POLL_INTERVAL_S, validate=validate.Range(MIN_POLL_INTERVAL_S, MAX_POLL_INTERVAL_S)
    )

    @post_load
    def to_command(self, data, **_):
        return AddFeed(**data)


class UpdateFeedSchema(_FeedSettings):
    feed_id = fields.Integer(required=True)
    url = fields.Url(schemes={"http", "https"}, require_tld=False, validate=validate.Length(max=2000))
    time_zone = fields.String(validate=_time_zone)
    poll_interval_s = fields.Integer(validate=validate.Range(MIN_POLL_INTERVAL_S, MAX_POLL_INTERVAL_S))

    @post_load
    def to_command(self, data, **_):
        return UpdateFeed(**data)


class ListArticlesSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    feed_id = fields.Integer(allow_none=True)
    changed_since = fields.AwareDateTime(allow_none=True)
    after = fields.String(allow_none=True, validate=validate.Length(max=64))
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 500))

    @post_load
    def to_command(self, data, **_):
        return ListArticles(**data)


class FeedHealthSchema(Schema):
    status = fields.String()
    last_polled_at = fields.AwareDateTime(allow_none=True)
    last_success_at = fields.AwareDateTime(allow_none=True)
    last_error_at = fields.AwareDateTime(allow_none=True)
    last_error = fields.String(allow_none=True)
    consecutive_failures = fields.Integer()
    next_poll_at = fields.AwareDateTime(allow_none=True)


class FeedSchema(Schema):
    id = fields.Integer()
    url = fields.String()
    site_url = fields.String(allow_none=True)
    title = fields.String()
    outlet = fields.String()
    language = fields.String(allow_none=True)
    time_zone = fields.String()
    poll_interval_s = fields.Integer()
    category = fields.String(allow_none=True)
    paused = fields.Boolean()
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()
    articles_seen = fields.Integer()
    health = fields.Nested(FeedHealthSchema)


class ArticleSchema(Schema):
    id = fields.String()
    version = fields.Integer()
    feed_id = fields.Integer()
    url = fields.String(allow_none=True)
    title = fields.String()
    summary = fields.String()
    text = fields.String()
    language = fields.String()
    outlet = fields.String()
    published_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime(allow_none=True)
    categories = fields.List(fields.String())
    canonical_of = fields.String(allow_none=True)
    ingested_at = fields.AwareDateTime()
    changed_at = fields.AwareDateTime()
    summary_html = fields.String()
    content_html = fields.String()


class ArticlePageSchema(Schema):
    items = fields.List(fields.Nested(ArticleSchema))
    next_after = fields.String(allow_none=True)


class PollOutcomeSchema(Schema):
    feed_id = fields.Integer()
    status = fields.String()
    new = fields.Integer()
    updated = fields.Integer()
    unchanged = fields.Integer()
    duplicates = fields.Integer()
    syndicated = fields.Integer()
    error = fields.String(allow_none=True)
    next_poll_at = fields.AwareDateTime(allow_none=True)
    warnings = fields.List(fields.String())


def _load(schema: Schema, data):
    try:
        return schema.load(data if data is not None else {})
    except ValidationError as error:
        messages = error.messages if isinstance(error.messages, dict) else {"_schema": error.messages}
        raise InvalidFeed({key: list(value) if isinstance(value, list) else [str(value)]
                           for key, value in messages.items()}) from None


def load_add_feed(data) -> AddFeed:
    return _load(AddFeedSchema(), data)


def load_update_feed(data) -> UpdateFeed:
    return _load(UpdateFeedSchema(), data)


def load_list_articles(data) -> ListArticles:
    return _load(ListArticlesSchema(), data)


