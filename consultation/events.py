"""Events the consultation service emits: names and payload schemas, shared by producers and consumers.

Payloads carry what the search service needs to index public content and nothing private: comment text is the
redacted public text, present only once a comment is approved; contact details never appear.
"""
from __future__ import annotations

from marshmallow import Schema, fields

from services.kernel.events import EventSchema

POLICY_PUBLISHED = "policy_published"
POLICY_UPDATED = "policy_updated"
CONSULTATION_OPENED = "consultation_opened"
CONSULTATION_CLOSED = "consultation_closed"
COMMENT_SUBMITTED = "comment_submitted"
COMMENT_MODERATED = "comment_moderated"
REPLY_POSTED = "reply_posted"
EXPLANATION_PUBLISHED = "explanation_published"
LINK_CONFIRMED = "link_confirmed"
REPORT_PUBLISHED = "report_published"

# Consumed from the search service.
LINKS_SUGGESTED = "links_suggested"


def policy_url_path(policy_id: int) -> str:
    return f"/policies/{policy_id}"


def comment_url_path(policy_id: int, comment_id: int) -> str:
    return f"/policies/{policy_id}#comment-{comment_id}"


class _Part(Schema):
    class Meta:
        ordered = True


class ClausePayload(_Part):
    number = fields.Integer(required=True)
    label = fields.String(required=True)
    chapter = fields.String(allow_none=True, load_default=None)
    text = fields.String(required=True)


class PolicyEvent(EventSchema):
    """policy_published / policy_updated: the whole public text of the current version."""

    policy_id = fields.Integer(required=True)
    version = fields.Integer(required=True)
    title = fields.String(required=True)
    summary = fields.String(required=True)
    department = fields.String(required=True)
    topics = fields.List(fields.String(), required=True)
    document_number = fields.String(allow_none=True, load_default=None)
    language = fields.String(required=True)
    state = fields.String(required=True)
    time_zone = fields.String(required=True)
    open_at = fields.AwareDateTime(allow_none=True, load_default=None)
    close_at = fields.AwareDateTime(allow_none=True, load_default=None)
    published_at = fields.AwareDateTime(required=True)
    updated_at = fields.AwareDateTime(required=True)
    preamble = fields.String(required=True)
    clauses = fields.List(fields.Nested(ClausePayload), required=True)
    url_path = fields.String(required=True)


class ConsultationWindowEvent(EventSchema):
    """consultation_opened / consultation_closed."""

    policy_id = fields.Integer(required=True)
    version = fields.Integer(required=True)
    title = fields.String(required=True)
    state = fields.String(required=True)
    time_zone = fields.String(required=True)
    open_at = fields.AwareDateTime(allow_none=True, load_default=None)
    close_at = fields.AwareDateTime(allow_none=True, load_default=None)
    url_path = fields.String(required=True)


class CommentSubmittedEvent(EventSchema):
    """A new comment (pending). Text is already redacted; search must not index it before comment_moderated."""

    comment_id = fields.Integer(required=True)
    reference = fields.String(required=True)
    policy_id = fields.Integer(required=True)
    version = fields.Integer(required=True)
    clause_number = fields.Integer(allow_none=True, load_default=None)
    stance = fields.String(required=True)
    status = fields.String(required=True)
    text = fields.String(required=True)
    display_name = fields.String(allow_none=True, load_default=None)
    language = fields.String(allow_none=True, load_default=None)
    channel = fields.String(required=True)
    site_key = fields.String(allow_none=True, load_default=None)
    source_url = fields.String(allow_none=True, load_default=None)
    flags = fields.List(fields.String(), required=True)
    created_at = fields.AwareDateTime(required=True)


class ReplyPayload(_Part):
    reply_id = fields.Integer(required=True)
    text = fields.String(required=True)
    author_name = fields.String(required=True)
    created_at = fields.AwareDateTime(required=True)


class CommentModeratedEvent(EventSchema):
    """A moderation decision. `text`, `display_name` and `replies` are filled only when status is approved."""

    comment_id = fields.Integer(required=True)
    reference = fields.String(required=True)
    policy_id = fields.Integer(required=True)
    version = fields.Integer(required=True)
    clause_number = fields.Integer(allow_none=True, load_default=None)
    stance = fields.String(required=True)
    status = fields.String(required=True)
    previous_status = fields.String(allow_none=True, load_default=None)
    reason_code = fields.String(allow_none=True, load_default=None)
    text = fields.String(allow_none=True, load_default=None)
    display_name = fields.String(allow_none=True, load_default=None)
    language = fields.String(allow_none=True, load_default=None)
    replies = fields.List(fields.Nested(ReplyPayload), required=True)
    created_at = fields.AwareDateTime(required=True)
    moderated_at = fields.AwareDateTime(required=True)
    url_path = fields.String(required=True)


class ReplyPostedEvent(EventSchema):
    """An official reply; it is public only when `comment_public` (the comment is approved)."""

    reply_id = fields.Integer(required=True)
    comment_id = fields.Integer(required=True)
    policy_id = fields.Integer(required=True)
    clause_number = fields.Integer(allow_none=True, load_default=None)
    text = fields.String(required=True)
    author_name = fields.String(required=True)
    comment_public = fields.Boolean(required=True)
    language = fields.String(allow_none=True, load_default=None)
    created_at = fields.AwareDateTime(required=True)
    url_path = fields.String(required=True)


class ExplanationPublishedEvent(EventSchema):
    explanation_id = fields.Integer(required=True)
    policy_id = fields.Integer(required=True)
    kind = fields.String(required=True)
    title = fields.String(required=True)
    body = fields.String(allow_none=True, load_default=None)  # plain text of the sanitised article
    url = fields.String(allow_none=True, load_default=None)
    outlet = fields.String(allow_none=True, load_default=None)
    clause_numbers = fields.List(fields.Integer(), required=True)
    language = fields.String(required=True)
    department = fields.String(required=True)
    topics = fields.List(fields.String(), required=True)
    published_at = fields.AwareDateTime(required=True)
    url_path = fields.String(required=True)


class LinkConfirmedEvent(EventSchema):
    link_id = fields.Integer(required=True)
    policy_id = fields.Integer(required=True)
    clause_number = fields.Integer(allow_none=True, load_default=None)
    article_id = fields.String(required=True)
    article_title = fields.String(required=True)
    article_url = fields.String(required=True)
    article_outlet = fields.String(allow_none=True, load_default=None)
    article_published_at = fields.AwareDateTime(allow_none=True, load_default=None)
    score = fields.Float(allow_none=True, load_default=None)
    matched_terms = fields.List(fields.String(), required=True)
    origin = fields.String(required=True)
    decided_at = fields.AwareDateTime(required=True)


class ReportEntryPayload(_Part):
    clause_number = fields.Integer(allow_none=True, load_default=None)
    summary = fields.String(required=True)
    decision = fields.String(required=True)
    reason = fields.String(required=True)


class ReportPublishedEvent(EventSchema):
    policy_id = fields.Integer(required=True)
    version = fields.Integer(required=True)
    title = fields.String(required=True)
    department = fields.String(required=True)
    summary = fields.String(required=True)
    entries = fields.List(fields.Nested(ReportEntryPayload), required=True)
    comment_count = fields.Integer(required=True)
    published_at = fields.AwareDateTime(required=True)
    url_path = fields.String(required=True)


EVENT_SCHEMAS: dict[str, EventSchema] = {
    POLICY_PUBLISHED: PolicyEvent(),
    POLICY_UPDATED: PolicyEvent(),
    CONSULTATION_OPENED: ConsultationWindowEvent(),
    CONSULTATION_CLOSED: ConsultationWindowEvent(),
    COMMENT_SUBMITTED: CommentSubmittedEvent(),
    COMMENT_MODERATED: CommentModeratedEvent(),
    REPLY_POSTED: ReplyPostedEvent(),
    EXPLANATION_PUBLISHED: ExplanationPublishedEvent(),
    LINK_CONFIRMED: LinkConfirmedEvent(),
    REPORT_PUBLISHED: ReportPublishedEvent(),
}
