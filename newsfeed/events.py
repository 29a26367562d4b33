"""Wire contract of the events the newsfeed service emits. Producers and consumers import these schemas.

Events carry no personal data: no author names, and e-mail addresses, phone and ID numbers are masked in the text.
"""
from __future__ import annotations

from marshmallow import fields, validate

from services.kernel.events import EventSchema

ARTICLE_INGESTED = "article_ingested"
ARTICLE_UPDATED = "article_updated"

# Long enough for search and linking, short enough for a message broker.
EVENT_TEXT_MAX_CHARS = 20_000
EVENT_SUMMARY_MAX_CHARS = 2_000


class ArticleEventSchema(EventSchema):
    """An article as other services need it; consumers upsert by `id` and ignore versions older than stored."""

    id = fields.String(required=True)
    version = fields.Integer(required=True, validate=validate.Range(min=1))
    feed_id = fields.Integer(required=True)
    url = fields.String(required=True, allow_none=True)
    title = fields.String(required=True)
    summary = fields.String(required=True, validate=validate.Length(max=EVENT_SUMMARY_MAX_CHARS))
    text = fields.String(required=True, validate=validate.Length(max=EVENT_TEXT_MAX_CHARS))
    language = fields.String(required=True)
    outlet = fields.String(required=True)
    published_at = fields.AwareDateTime(required=True)
    updated_at = fields.AwareDateTime(required=True, allow_none=True)
    categories = fields.List(fields.String(), required=True)
    canonical_of = fields.String(required=True, allow_none=True)


class ArticleIngestedSchema(ArticleEventSchema):
    pass


class ArticleUpdatedSchema(ArticleEventSchema):
    pass


EVENT_SCHEMAS = {
    ARTICLE_INGESTED: ArticleIngestedSchema(),
    ARTICLE_UPDATED: ArticleUpdatedSchema(),
}
