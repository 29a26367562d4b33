"""Commands: immutable requests to the consultation domain, built by the schemas in consultation.schemas.

Staff commands do not name their actor; handlers take the authenticated `Actor` separately, so a command can never
claim an identity.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

# --- policies and versions -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClauseInput:
    number: int
    text: str
    label: str | None = None
    chapter: str | None = None


@dataclass(frozen=True)
class CreatePolicy:
    """Either `text` (pasted draft, parsed into clauses) or `clauses` must be given."""

    title: str
    department: str
    summary: str = ""
    topics: tuple[str, ...] = ()
    time_zone: str = "Asia/Shanghai"
    language: str | None = None
    document_number: str | None = None
    text: str | None = None
    clauses: tuple[ClauseInput, ...] | None = None
    preamble: str = ""


@dataclass(frozen=True)
class UpdatePolicyDetails:
    policy_id: int
    title: str | None = None
    summary: str | None = None
    department: str | None = None
    topics: tuple[str, ...] | None = None
    time_zone: str | None = None
    document_number: str | None = None


@dataclass(frozen=True)
class ReviseDraft:
    """A new version with its own clauses; from pasted `text` or an explicit `clauses` list."""

    policy_id: int
    text: str | None = None
    clauses: tuple[ClauseInput, ...] | None = None
    preamble: str | None = None
    change_note: str = ""


@dataclass(frozen=True)
class SchedulePolicy:
    policy_id: int
    open_at: dt.datetime
    close_at: dt.datetime


@dataclass(frozen=True)
class OpenConsultation:
    policy_id: int
    close_at: dt.datetime | None = None


@dataclass(frozen=True)
class CloseConsultation:
    policy_id: int


@dataclass(frozen=True)
class WithdrawPolicy:
    policy_id: int
    reason: str = ""


@dataclass(frozen=True)
class GetPolicy:
    policy_id: int
    version: int | None = None


@dataclass(frozen=True)
class ListPolicies:
    state: str | None = None
    department: str | None = None
    topic: str | None = None
    page: int = 1
    page_size: int = 20


@dataclass(frozen=True)
class DiffVersions:
    policy_id: int
    v_from: int
    v_to: int


# --- comments and moderation -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SubmitComment:
    policy_id: int
    text: str
    stance: str
    clause_number: int | None = None
    display_name: str | None = None
    contact: str | None = None
    contact_consent: bool = False
    channel: str = "widget"
    site_key: str | None = None
    source_url: str | None = None
    idempotency_key: str | None = None
    voter_token: str | None = None
    client_ip: str | None = None
    language: str | None = None


@dataclass(frozen=True)
class ModerateComment:
    comment_id: int
    action: str  # approve | reject | hide
    reason_code: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class BulkModerate:
    comment_ids: tuple[int, ...]
    action: str
    reason_code: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class ListModerationQueue:
    queue: str = "pending"  # pending | flagged | all
    policy_id: int | None = None
    clause_number: int | None = None
    stance: str | None = None
    channel: str | None = None
    state: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    cursor: str | None = None
    limit: int = 50


@dataclass(frozen=True)
class GetCommentHistory:
    comment_id: int


@dataclass(frozen=True)
class ViewCommentOriginal:
    comment_id: int


@dataclass(frozen=True)
class ListPublicComments:
    policy_id: int
    clause_number: int | None = None
    order: str = "newest"  # newest | most_supported
    page: int = 1
    page_size: int = 20


@dataclass(frozen=True)
class PostReply:
    comment_id: int
    text: str
    author_name: str | None = None


# --- poll --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CastVote:
    policy_id: int
    stance: str
    voter_token: str
    clause_number: int | None = None


@dataclass(frozen=True)
class GetPollResults:
    policy_id: int


# --- explanations ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateExplanation:
    policy_id: int
    kind: str  # article | link
    title: str
    body_html: str | None = None
    url: str | None = None
    outlet: str | None = None
    clause_numbers: tuple[int, ...] = ()
    language: str = "zh"


@dataclass(frozen=True)
class UpdateExplanation:
    explanation_id: int
    title: str | None = None
    body_html: str | None = None
    url: str | None = None
    outlet: str | None = None
    clause_numbers: tuple[int, ...] | None = None


@dataclass(frozen=True)
class PublishExplanation:
    explanation_id: int


@dataclass(frozen=True)
class ListExplanations:
    policy_id: int
    include_drafts: bool = False


# --- coverage links ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DecideLink:
    link_id: int
    decision: str  # confirm | reject


@dataclass(frozen=True)
class CreateLink:
    policy_id: int
    article_title: str
    article_url: str
    article_id: str | None = None
    article_outlet: str | None = None
    article_published_at: dt.datetime | None = None
    clause_number: int | None = None


@dataclass(frozen=True)
class ListPolicyLinks:
    policy_id: int
    state: str | None = None  # staff filter; public callers always get confirmed links only


@dataclass(frozen=True)
class ListLinksForArticle:
    article_url: str


# --- feedback report ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportEntryInput:
    summary: str
    decision: str  # adopted | partly_adopted | not_adopted | noted
    reason: str = ""
    clause_number: int | None = None


@dataclass(frozen=True)
class SaveReport:
    policy_id: int
    summary: str
    entries: tuple[ReportEntryInput, ...]


@dataclass(frozen=True)
class PublishReport:
    policy_id: int


@dataclass(frozen=True)
class GetReport:
    policy_id: int


# --- accounts, audit and site keys -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateUser:
    username: str
    password: str
    roles: tuple[str, ...]
    display_name: str = ""


@dataclass(frozen=True)
class SetUserDisabled:
    user_id: int
    disabled: bool = True


@dataclass(frozen=True)
class ResetPassword:
    user_id: int
    new_password: str


@dataclass(frozen=True)
class SetUserRoles:
    user_id: int
    roles: tuple[str, ...]


@dataclass(frozen=True)
class ListUsers:
    include_disabled: bool = True


@dataclass(frozen=True)
class ListAuditLog:
    object_type: str | None = None
    object_id: str | None = None
    before_id: int | None = None
    limit: int = 100


@dataclass(frozen=True)
class CreateSiteKey:
    name: str
    allowed_origins: tuple[str, ...] = ()
    theme: dict[str, Any] = field(default_factory=dict, hash=False)
    key: str | None = None


@dataclass(frozen=True)
class UpdateSiteKey:
    key: str
    name: str | None = None
    allowed_origins: tuple[str, ...] | None = None
    enabled: bool | None = None
    theme: dict[str, Any] | None = field(default=None, hash=False)


@dataclass(frozen=True)
class GetSiteKey:
    key: str


@dataclass(frozen=True)
class EndorseComment:
    comment_id: int
    voter_token: str


@dataclass(frozen=True)
class GetExplanation:
    explanation_id: int
