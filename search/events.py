"""Events the search service emits."""
from __future__ import annotations

from marshmallow import Schema, fields

from services.kernel.events import EventSchema

LINKS_SUGGESTED = "links_suggested"


class SuggestedLink(Schema):
    policy_id = fields.Integer(required=True)
    article_id = fields.String(required=True)
    article_title = fields.String(required=True)
    article_url = fields.String(required=True)
    article_outlet = fields.String(allow_none=True, load_default=None)
    article_published_at = fields.AwareDateTime(allow_none=True, load_default=None)
    score = fields.Float(required=True)
    clause_number = fields.Integer(allow_none=True, load_default=None)
    # the terms (and phrases) that matched, strongest contribution first: what an editor reads to judge the link
    matched_terms = fields.List(fields.String(), required=True)


class LinksSuggestedEvent(EventSchema):
    """Suggested article ↔ policy links, each with its score and the terms that matched (so an editor sees why)."""

    links = fields.List(fields.Nested(SuggestedLink), required=True)


EVENT_SCHEMAS = {LINKS_SUGGESTED: LinksSuggestedEvent()}
