"""Marshmallow schemas: input schemas load request data into commands; output schemas dump handler results.

Error messages are message ids from consultation.i18n (zh and en text); `load_command` raises ValidationFailed with
`{field: message_id}` and the gateway translates them with `i18n.translate_errors(errors, language)`.
"""
from __future__ import annotations

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, post_load, validate

from . import commands as c
from .exceptions import ValidationFailed
from .handlers import CHANNELS, EXPLANATION_KINDS, LINK_STATES, REJECT_REASONS, STANCES, VOTE_STANCES
from .i18n import to_message_ids
from .report import DECISIONS
from .window import STATES

MAX_ID = 2_147_483_647  # ids are 32-bit integer columns; larger numbers would be a database error, not a 404


def _no_nul(value: str) -> bool:
    # PostgreSQL cannot store NUL characters in text; refuse them as bad input instead of failing at commit.
    if "\x00" in value:
        raise ValidationError("field.invalid")
    return True


_BASE_MESSAGES = {
    "required": "field.required",
    "null": "field.null",
    "invalid": "field.invalid",
}


def _msgs(**extra):
    return {**_BASE_MESSAGES, **extra}


def Text(max_length: int, *, min_length: int = 1, required: bool = False, message: str = "field.length", **kw):
    if not required:
        kw.setdefault("load_default", None)
    return fields.String(
        required=required,
        validate=[validate.Length(min=min_length, max=max_length, error=message), _no_nul],
        error_messages=_msgs(invalid="field.string"),
        **kw,
    )


def Choice(choices, *, required: bool = False, **kw):
    if not required:
        kw.setdefault("load_default", None)
    return fields.String(required=required, validate=validate.OneOf(choices, error="field.choice"),
                         error_messages=_msgs(invalid="field.string"), **kw)


def Int(*, required: bool = False, minimum: int | None = 1, maximum: int | None = MAX_ID, **kw):
    if not required:
        kw.setdefault("load_default", None)
    return fields.Integer(required=required, strict=False, validate=validate.Range(min=minimum, max=maximum,
                          error="field.range"), error_messages=_msgs(invalid="field.integer"), **kw)


def When(*, required: bool = False, **kw):
    if not required:
        kw.setdefault("load_default", None)
    return fields.AwareDateTime(required=required, error_messages=_msgs(invalid="field.datetime",
                                invalid_awareness="datetime.naive"), **kw)


def Flag(*, load_default: bool = False, **kw):
    return fields.Boolean(load_default=load_default, error_messages=_msgs(invalid="field.boolean"), **kw)


def Url(*, required: bool = False, **kw):
    if not required:
        kw.setdefault("load_default", None)
    return fields.Url(required=required, schemes={"http", "https"}, require_tld=False,
                      validate=validate.Length(max=2000, error="field.length"),
                      error_messages=_msgs(invalid="field.url"), **kw)


def StrList(max_items: int, item_length: int, **kw):
    return fields.List(
        fields.String(validate=validate.Length(min=1, max=item_length, error="field.length"),
                      error_messages=_msgs(invalid="field.string")),
        validate=validate.Length(max=max_items, error="field.length"),
        error_messages=_msgs(invalid="field.list"),
        **kw,
    )


class CommandSchema(Schema):
    """Loads into `command_class`; lists become tuples because commands are frozen."""

    command_class: type | None = None

    class Meta:
        unknown = RAISE

    @post_load
    def make_command(self, data, **kwargs):
        data = {key: tuple(value) if isinstance(value, list) else value for key, value in data.items()}
        data = {key: value for key, value in data.items() if value is not None or key in self._keep_none()}
        return self.command_class(**data) if self.command_class else data

    def _keep_none(self) -> set[str]:
        return set()


def load_command(schema: Schema, data, *, partial=None):
    """`schema.load(data)` raising ValidationFailed({field: message_id}) instead of marshmallow's error."""
    if not isinstance(data, dict):
        raise ValidationFailed({"_schema": "field.dict"})
    try:
        return schema.load(data, partial=partial)
    except ValidationError as exc:
        raise ValidationFailed(to_message_ids(exc.messages)) from None


# --- input: policies ---------------------------------------------------------------------------------------------


class ClauseInputSchema(Schema):
    class Meta:
        unknown = RAISE

    number = Int(required=True)
    text = Text(20000, required=True)
    label = Text(100)
    chapter = Text(300)

    @post_load
    def make(self, data, **kwargs):
        return c.ClauseInput(**data)


class CreatePolicySchema(CommandSchema):
    command_class = c.CreatePolicy
    title = Text(300, required=True, message="title.length")
    department = Text(200, required=True)
    summary = Text(5000, min_length=0)
    topics = StrList(20, 100)
    time_zone = Text(64)
    language = Choice(("zh", "en"))
    document_number = Text(100)
    text = Text(1_000_000)
    clauses = fields.List(fields.Nested(ClauseInputSchema), load_default=None,
                          error_messages=_msgs(invalid="field.list"))
    preamble = Text(100_000, min_length=0)


class UpdatePolicyDetailsSchema(CommandSchema):
    command_class = c.UpdatePolicyDetails
    policy_id = Int(required=True)
    title = Text(300, message="title.length")
    summary = Text(5000, min_length=0)
    department = Text(200)
    topics = StrList(20, 100, load_default=None)
    time_zone = Text(64)
    document_number = Text(100)


class ReviseDraftSchema(CommandSchema):
    command_class = c.ReviseDraft
    policy_id = Int(required=True)
    text = Text(1_000_000)
    clauses = fields.List(fields.Nested(ClauseInputSchema), load_default=None,
                          error_messages=_msgs(invalid="field.list"))
    preamble = Text(100_000, min_length=0)
    change_note = Text(2000, min_length=0)


class SchedulePolicySchema(CommandSchema):
    command_class = c.SchedulePolicy
    policy_id = Int(required=True)
    open_at = When(required=True)
    close_at = When(required=True)


class OpenConsultationSchema(CommandSchema):
    command_class = c.OpenConsultation
    policy_id = Int(required=True)
    close_at = When()


class PolicyIdSchema(CommandSchema):
    """For commands that need only the policy: CloseConsultation, GetPollResults, PublishReport, GetReport."""

    policy_id = Int(required=True)

    def __init__(self, command_class=c.CloseConsultation, **kwargs):
        super().__init__(**kwargs)
        self.command_class = command_class


class WithdrawPolicySchema(CommandSchema):
    command_class = c.WithdrawPolicy
    policy_id = Int(required=True)
    reason = Text(500, min_length=0)


class GetPolicySchema(CommandSchema):
    command_class = c.GetPolicy
    policy_id = Int(required=True)
    version = Int()


class ListPoliciesSchema(CommandSchema):
    command_class = c.ListPolicies

    class Meta:
        unknown = EXCLUDE  # query strings carry unrelated parameters (lang, cache busters)

    state = Choice(STATES)
    department = Text(200)
    topic = Text(100)
    page = Int(load_default=1)
    page_size = Int(load_default=20, maximum=100)


class DiffVersionsSchema(CommandSchema):
    command_class = c.DiffVersions
    policy_id = Int(required=True)
    v_from = Int(required=True)
    v_to = Int(required=True)


# --- input: comments, moderation, replies, votes -----------------------------------------------------------------


class SubmitCommentSchema(CommandSchema):
    """What a citizen sends; voter_token, client_ip and channel are set by the gateway, not trusted from the body."""

    command_class = c.SubmitComment
    policy_id = Int(required=True)
    text = Text(5000, required=True, message="text.length")
    stance = Choice(STANCES, required=True)
    clause_number = Int()
    display_name = Text(80, min_length=0)
    contact = Text(254, min_length=0)
    contact_consent = Flag()
    channel = Choice(CHANNELS, load_default="widget")
    site_key = Text(64)
    source_url = Url()
    idempotency_key = Text(100)
    voter_token = Text(200)
    client_ip = Text(64)
    language = Choice(("zh", "en"))


class ModerateCommentSchema(CommandSchema):
    command_class = c.ModerateComment
    comment_id = Int(required=True)
    action = Choice(("approve", "reject", "hide"), required=True)
    reason_code = Choice(REJECT_REASONS)
    note = Text(2000, min_length=0)


class BulkModerateSchema(CommandSchema):
    command_class = c.BulkModerate
    comment_ids = fields.List(fields.Integer(error_messages=_msgs(invalid="field.integer")), required=True,
                              validate=validate.Length(min=1, max=500, error="field.length"),
                              error_messages=_msgs(invalid="field.list"))
    action = Choice(("approve", "reject", "hide"), required=True)
    reason_code = Choice(REJECT_REASONS)
    note = Text(2000, min_length=0)


class ListModerationQueueSchema(CommandSchema):
    command_class = c.ListModerationQueue

    class Meta:
        unknown = EXCLUDE

    queue = Choice(("pending", "flagged", "all"), load_default="pending")
    policy_id = Int()
    clause_number = Int()
    stance = Choice(STANCES)
    channel = Choice(CHANNELS)
    state = Choice(("pending", "approved", "rejected", "hidden"))
    since = When()
    until = When()
    cursor = Text(500)
    limit = Int(load_default=50, maximum=100)


class CommentIdSchema(CommandSchema):
    """GetCommentHistory / ViewCommentOriginal."""

    comment_id = Int(required=True)

    def __init__(self, command_class=c.GetCommentHistory, **kwargs):
        super().__init__(**kwargs)
        self.command_class = command_class


class ListPublicCommentsSchema(CommandSchema):
    command_class = c.ListPublicComments

    class Meta:
        unknown = EXCLUDE

    policy_id = Int(required=True)
    clause_number = Int()
    order = Choice(("newest", "most_supported"), load_default="newest")
    page = Int(load_default=1)
    page_size = Int(load_default=20, maximum=100)


class EndorseCommentSchema(CommandSchema):
    command_class = c.EndorseComment
    comment_id = Int(required=True)
    voter_token = Text(200, required=True)


class PostReplySchema(CommandSchema):
    command_class = c.PostReply
    comment_id = Int(required=True)
    text = Text(5000, required=True, message="text.length")
    author_name = Text(200)


class CastVoteSchema(CommandSchema):
    command_class = c.CastVote
    policy_id = Int(required=True)
    stance = Choice(VOTE_STANCES, required=True)
    voter_token = Text(200, required=True)
    clause_number = Int()


# --- input: explanations, links, report --------------------------------------------------------------------------


class CreateExplanationSchema(CommandSchema):
    command_class = c.CreateExplanation
    policy_id = Int(required=True)
    kind = Choice(EXPLANATION_KINDS, required=True)
    title = Text(300, required=True, message="title.length")
    body_html = Text(1_000_000)
    url = Url()
    outlet = Text(200)
    clause_numbers = fields.List(fields.Integer(validate=validate.Range(min=1, error="field.range")),
                                 load_default=list, error_messages=_msgs(invalid="field.list"))
    language = Choice(("zh", "en"), load_default="zh")


class UpdateExplanationSchema(CommandSchema):
    command_class = c.UpdateExplanation
    explanation_id = Int(required=True)
    title = Text(300, message="title.length")
    body_html = Text(1_000_000)
    url = Url()
    outlet = Text(200)
    clause_numbers = fields.List(fields.Integer(validate=validate.Range(min=1, error="field.range")),
                                 load_default=None, error_messages=_msgs(invalid="field.list"))


class PublishExplanationSchema(CommandSchema):
    command_class = c.PublishExplanation
    explanation_id = Int(required=True)


class GetExplanationSchema(CommandSchema):
    command_class = c.GetExplanation
    explanation_id = Int(required=True)


class ListExplanationsSchema(CommandSchema):
    command_class = c.ListExplanations
    policy_id = Int(required=True)
    include_drafts = Flag()


class DecideLinkSchema(CommandSchema):
    command_class = c.DecideLink
    link_id = Int(required=True)
    decision = Choice(("confirm", "reject"), required=True)


class CreateLinkSchema(CommandSchema):
    command_class = c.CreateLink
    policy_id = Int(required=True)
    article_title = Text(500, required=True)
    article_url = Url(required=True)
    article_id = Text(200)
    article_outlet = Text(200)
    article_published_at = When()
    clause_number = Int()


class ListPolicyLinksSchema(CommandSchema):
    command_class = c.ListPolicyLinks
    policy_id = Int(required=True)
    state = Choice(LINK_STATES)


class ListLinksForArticleSchema(CommandSchema):
    command_class = c.ListLinksForArticle

    class Meta:
        unknown = EXCLUDE

    article_url = Url(required=True)


class ReportEntryInputSchema(Schema):
    class Meta:
        unknown = RAISE

    clause_number = Int(minimum=0)
    summary = Text(5000, required=True)
    decision = Choice(DECISIONS, required=True)
    reason = Text(5000, min_length=0, load_default="")

    @post_load
    def make(self, data, **kwargs):
        return c.ReportEntryInput(**{k: v for k, v in data.items() if v is not None or k == "clause_number"})


class SaveReportSchema(CommandSchema):
    command_class = c.SaveReport
    policy_id = Int(required=True)
    summary = Text(20000, min_length=0, load_default="")
    entries = fields.List(fields.Nested(ReportEntryInputSchema), required=True,
                          validate=validate.Length(min=1, max=2000, error="report.entries_required"),
                          error_messages=_msgs(invalid="field.list"))


# --- input: accounts and site keys -------------------------------------------------------------------------------


class LoginSchema(Schema):
    class Meta:
        unknown = RAISE

    username = Text(80, required=True)
    password = Text(1024, required=True)


class CreateUserSchema(CommandSchema):
    command_class = c.CreateUser
    username = Text(80, required=True)
    password = Text(1024, required=True)
    roles = StrList(4, 20, required=True)
    display_name = Text(200, min_length=0)


class SetUserDisabledSchema(CommandSchema):
    command_class = c.SetUserDisabled
    user_id = Int(required=True)
    disabled = Flag(load_default=True)


class ResetPasswordSchema(CommandSchema):
    command_class = c.ResetPassword
    user_id = Int(required=True)
    new_password = Text(1024, required=True)


class SetUserRolesSchema(CommandSchema):
    command_class = c.SetUserRoles
    user_id = Int(required=True)
    roles = StrList(4, 20, required=True)


class ListAuditLogSchema(CommandSchema):
    command_class = c.ListAuditLog

    class Meta:
        unknown = EXCLUDE

    object_type = Text(40)
    object_id = Text(64)
    before_id = Int()
    limit = Int(load_default=100, maximum=500)


class CreateSiteKeySchema(CommandSchema):
    command_class = c.CreateSiteKey
    name = Text(200, required=True)
    allowed_origins = StrList(50, 300, load_default=list)
    theme = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict,
                        error_messages=_msgs(invalid="field.dict"))
    key = Text(64)


class UpdateSiteKeySchema(CommandSchema):
    command_class = c.UpdateSiteKey
    key = Text(64, required=True)
    name = Text(200)
    allowed_origins = StrList(50, 300, load_default=None)
    enabled = fields.Boolean(load_default=None, error_messages=_msgs(invalid="field.boolean"))
    theme = fields.Dict(keys=fields.String(), values=fields.String(), load_default=None,
                        error_messages=_msgs(invalid="field.dict"))


# --- output ------------------------------------------------------------------------------------------------------


class _Out(Schema):
    class Meta:
        ordered = True


class TallySchema(_Out):
    support = fields.Integer()
    oppose = fields.Integer()
    neutral = fields.Integer()
    total = fields.Integer()


class ClauseOutSchema(_Out):
    number = fields.Integer()
    label = fields.String()
    chapter = fields.String(allow_none=True)
    text = fields.String()
    comment_count = fields.Integer()
    votes = fields.Nested(TallySchema)


class VersionOutSchema(_Out):
    number = fields.Integer()
    created_at = fields.AwareDateTime()
    change_note = fields.String()


class PolicySummarySchema(_Out):
    policy_id = fields.Integer()
    title = fields.String()
    summary = fields.String()
    department = fields.String()
    topics = fields.List(fields.String())
    document_number = fields.String(allow_none=True)
    language = fields.String()
    time_zone = fields.String()
    state = fields.String()
    version = fields.Integer()
    open_at = fields.AwareDateTime(allow_none=True)
    close_at = fields.AwareDateTime(allow_none=True)
    open_at_local = fields.String(allow_none=True)
    close_at_local = fields.String(allow_none=True)
    published_at = fields.AwareDateTime(allow_none=True)
    updated_at = fields.AwareDateTime()
    url_path = fields.String()
    comment_count = fields.Integer()
    pending_count = fields.Integer()  # staff only
    accepting_comments = fields.Boolean()


class PolicyDetailSchema(PolicySummarySchema):
    current_version = fields.Integer()
    versions = fields.List(fields.Nested(VersionOutSchema))
    preamble = fields.String()
    chapters = fields.List(fields.Dict())
    clauses = fields.List(fields.Nested(ClauseOutSchema))
    votes = fields.Nested(TallySchema)
    parse_warnings = fields.List(fields.Dict())  # staff only


class PolicyPageSchema(_Out):
    items = fields.List(fields.Nested(PolicySummarySchema))
    page = fields.Integer()
    page_size = fields.Integer()
    total = fields.Integer()


class TextSegmentSchema(_Out):
    op = fields.String()
    text = fields.String()


class ClauseChangeSchema(_Out):
    kind = fields.String()
    old_number = fields.Integer(allow_none=True)
    new_number = fields.Integer(allow_none=True)
    old_label = fields.String(allow_none=True)
    new_label = fields.String(allow_none=True)
    old_text = fields.String(allow_none=True)
    new_text = fields.String(allow_none=True)
    similarity = fields.Float()
    text_diff = fields.List(fields.Nested(TextSegmentSchema))


class DiffSchema(_Out):
    policy_id = fields.Integer()
    v_from = fields.Integer()
    v_to = fields.Integer()
    changes = fields.List(fields.Nested(ClauseChangeSchema))


class CommentReceiptSchema(_Out):
    comment_id = fields.Integer()
    reference = fields.String()
    policy_id = fields.Integer()
    version = fields.Integer()
    clause_number = fields.Integer(allow_none=True)
    stance = fields.String()
    state = fields.String()
    created_at = fields.AwareDateTime()


class ReplyOutSchema(_Out):
    reply_id = fields.Integer()
    text = fields.String()
    author_name = fields.String()
    created_at = fields.AwareDateTime()


class PublicCommentSchema(_Out):
    comment_id = fields.Integer()
    reference = fields.String()
    policy_id = fields.Integer()
    version = fields.Integer()
    clause_number = fields.Integer(allow_none=True)
    stance = fields.String()
    text = fields.String()
    display_name = fields.String(allow_none=True)
    language = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()
    support_count = fields.Integer()
    replies = fields.List(fields.Nested(ReplyOutSchema))


class PublicCommentPageSchema(_Out):
    items = fields.List(fields.Nested(PublicCommentSchema))
    page = fields.Integer()
    page_size = fields.Integer()
    total = fields.Integer()


class StaffCommentSchema(CommentReceiptSchema):
    text = fields.String()
    display_name = fields.String(allow_none=True)
    language = fields.String(allow_none=True)
    reason_code = fields.String(allow_none=True)
    flags = fields.List(fields.String())
    channel = fields.String()
    site_key = fields.String(allow_none=True)
    source_url = fields.String(allow_none=True)
    has_contact = fields.Boolean()
    moderated_at = fields.AwareDateTime(allow_none=True)
    support_count = fields.Integer()


class ModerationPageSchema(_Out):
    items = fields.List(fields.Nested(StaffCommentSchema))
    next_cursor = fields.String(allow_none=True)


class BulkResultItemSchema(_Out):
    comment_id = fields.Integer()
    ok = fields.Boolean()
    error = fields.String(allow_none=True)
    state = fields.String(allow_none=True)


class BulkResultSchema(_Out):
    results = fields.List(fields.Nested(BulkResultItemSchema))
    succeeded = fields.Integer()
    failed = fields.Integer()


class TransitionSchema(_Out):
    at = fields.AwareDateTime()
    actor_user_id = fields.Integer(allow_none=True)
    actor_username = fields.String(allow_none=True)
    from_state = fields.String(allow_none=True)
    to_state = fields.String()
    reason_code = fields.String(allow_none=True)
    note = fields.String(allow_none=True)


class CommentHistorySchema(_Out):
    comment = fields.Nested(StaffCommentSchema)
    transitions = fields.List(fields.Nested(TransitionSchema))


class ContactOutSchema(_Out):
    kind = fields.String()
    value = fields.String()
    consent = fields.Boolean()


class CommentOriginalSchema(_Out):
    """Staff only (moderator/admin), audit-logged: never used by public endpoints."""

    comment_id = fields.Integer()
    reference = fields.String()
    original_text = fields.String()
    public_text = fields.String()
    contact = fields.Nested(ContactOutSchema, allow_none=True)


class ReplyResultSchema(_Out):
    reply_id = fields.Integer()
    comment_id = fields.Integer()
    text = fields.String()
    author_name = fields.String()
    created_at = fields.AwareDateTime()
    public = fields.Boolean()


class EndorsementResultSchema(_Out):
    comment_id = fields.Integer()
    support_count = fields.Integer()
    endorsed = fields.Boolean()


class ClauseTallySchema(TallySchema):
    clause_number = fields.Integer()


class PollResultsSchema(_Out):
    policy_id = fields.Integer()
    policy = fields.Nested(TallySchema)
    clauses = fields.List(fields.Nested(ClauseTallySchema))


class VoteResultSchema(_Out):
    policy_id = fields.Integer()
    clause_number = fields.Integer(allow_none=True)
    stance = fields.String()
    previous_stance = fields.String(allow_none=True)
    results = fields.Nested(PollResultsSchema)


class ExplanationSchema(_Out):
    explanation_id = fields.Integer()
    policy_id = fields.Integer()
    kind = fields.String()
    title = fields.String()
    body_html = fields.String(allow_none=True)  # sanitised on write
    url = fields.String(allow_none=True)
    outlet = fields.String(allow_none=True)
    clause_numbers = fields.List(fields.Integer())
    language = fields.String()
    state = fields.String()
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()
    published_at = fields.AwareDateTime(allow_none=True)


class LinkSchema(_Out):
    link_id = fields.Integer()
    policy_id = fields.Integer()
    clause_number = fields.Integer(allow_none=True)
    article_id = fields.String()
    article_title = fields.String()
    article_url = fields.String()
    article_outlet = fields.String(allow_none=True)
    article_published_at = fields.AwareDateTime(allow_none=True)
    state = fields.String()
    origin = fields.String()
    score = fields.Float(allow_none=True)
    matched_terms = fields.List(fields.String())
    decided_by = fields.String(allow_none=True)
    decided_at = fields.AwareDateTime(allow_none=True)
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()


class PublicLinkSchema(LinkSchema):
    class Meta:
        exclude = ("decided_by", "score", "matched_terms", "origin", "created_at", "updated_at", "decided_at")
        # keep in step with handlers._STAFF_ONLY_LINK_FIELDS


class ArticleConsultationSchema(PolicySummarySchema):
    link_id = fields.Integer()
    clause_number = fields.Integer(allow_none=True)


class ReportEntrySchema(_Out):
    clause_number = fields.Integer(allow_none=True)
    clause_label = fields.String(allow_none=True)
    summary = fields.String()
    decision = fields.String()
    reason = fields.String()
    comment_count = fields.Integer()


class ReportSchema(_Out):
    policy_id = fields.Integer()
    title = fields.String()
    department = fields.String()
    version = fields.Integer()
    state = fields.String()
    summary = fields.String()
    entries = fields.List(fields.Nested(ReportEntrySchema))
    comment_count = fields.Integer()
    stance_counts = fields.Dict(keys=fields.String(), values=fields.Integer())
    decision_counts = fields.Dict(keys=fields.String(), values=fields.Integer())
    updated_at = fields.AwareDateTime()
    published_at = fields.AwareDateTime(allow_none=True)


class UserSchema(_Out):
    user_id = fields.Integer()
    username = fields.String()
    display_name = fields.String()
    roles = fields.List(fields.String())
    disabled = fields.Boolean()
    locked_until = fields.AwareDateTime(allow_none=True)
    last_login_at = fields.AwareDateTime(allow_none=True)
    created_at = fields.AwareDateTime()


class AuditEntrySchema(_Out):
    id = fields.Integer()
    at = fields.AwareDateTime()
    actor_user_id = fields.Integer(allow_none=True)
    actor_username = fields.String(allow_none=True)
    action = fields.String()
    object_type = fields.String()
    object_id = fields.String(allow_none=True)
    detail = fields.Dict()


class AuditPageSchema(_Out):
    items = fields.List(fields.Nested(AuditEntrySchema))
    next_before_id = fields.Integer(allow_none=True)


class SiteKeySchema(_Out):
    key = fields.String()
    name = fields.String()
    allowed_origins = fields.List(fields.String())
    enabled = fields.Boolean()
    theme = fields.Dict(keys=fields.String(), values=fields.String())
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()
