"""Persistence model of the consultation service (SQLAlchemy 2 declarative, portable across SQLite and PostgreSQL).

The service owns its own `Base`; Alembic migrations are generated from `Base.metadata`.
Clause numbers are stored as integers; "whole policy" targets use 0 in unique keys (NULLs never collide in a unique
index, so they cannot enforce "one vote per voter on the whole policy").
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from services.kernel.db import UtcDateTime, utcnow
from services.kernel.outbox import OutboxMixin

WHOLE_POLICY = 0  # clause_number stored for things aimed at the whole policy


# Deterministic constraint names, so Alembic migrations can refer to (and later drop) them on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UtcDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class OutboxMessage(OutboxMixin, Base):
    __tablename__ = "outbox"


class Policy(Base):
    __tablename__ = "policy"
    __table_args__ = (
        Index("ix_policy_state_published", "state", "published_at"),
        Index("ix_policy_department", "department"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    summary: Mapped[str] = mapped_column(Text, default="")
    department: Mapped[str] = mapped_column(String(200))
    topics: Mapped[list[Any]] = mapped_column(JSON, default=list)
    document_number: Mapped[str | None] = mapped_column(String(100), nullable=True)
    time_zone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    language: Mapped[str] = mapped_column(String(8), default="zh")
    state: Mapped[str] = mapped_column(String(20), default="draft")
    current_version: Mapped[int] = mapped_column(Integer, default=1)
    open_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    close_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    published_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    created_by: Mapped[int | None] = mapped_column(Integer, nullable=True)

    versions: Mapped[list[PolicyVersion]] = relationship(
        back_populates="policy", order_by="PolicyVersion.number", cascade="all, delete-orphan"
    )


class PolicyTopic(Base):
    """One row per topic of a policy, so listing by topic is an indexed lookup rather than a scan of JSON."""

    __tablename__ = "policy_topic"
    __table_args__ = (Index("ix_policy_topic_topic", "topic", "policy_id"),)

    policy_id: Mapped[int] = mapped_column(ForeignKey("policy.id", ondelete="CASCADE"), primary_key=True)
    topic: Mapped[str] = mapped_column(String(100), primary_key=True)


class PolicyVersion(Base):
    __tablename__ = "policy_version"
    __table_args__ = (UniqueConstraint("policy_id", "number", name="uq_policy_version_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    policy_id: Mapped[int] = mapped_column(ForeignKey("policy.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    preamble: Mapped[str] = mapped_column(Text, default="")
    chapters: Mapped[list[Any]] = mapped_column(JSON, default=list)
    change_note: Mapped[str] = mapped_column(Text, default="")
    parse_warnings: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    created_by: Mapped[int | None] = mapped_column(Integer, nullable=True)

    policy: Mapped[Policy] = relationship(back_populates="versions")
    clauses: Mapped[list[Clause]] = relationship(
        back_populates="version", order_by="Clause.position", cascade="all, delete-orphan"
    )


class Clause(Base):
    __tablename__ = "clause"
    __table_args__ = (
        UniqueConstraint("version_id", "number", name="uq_clause_version_number"),
        Index("ix_clause_policy_version", "policy_id", "version_number"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("policy_version.id", ondelete="CASCADE"))
    policy_id: Mapped[int] = mapped_column(ForeignKey("policy.id", ondelete="CASCADE"))
    version_number: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer)
    number: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(100), default="")
    chapter: Mapped[str | None] = mapped_column(String(300), nullable=True)
    text: Mapped[str] = mapped_column(Text)

    version: Mapped[PolicyVersion] = relationship(back_populates="clauses")


class Comment(Base):
    __tablename__ = "comment"
    __table_args__ = (
        UniqueConstraint("policy_id", "idempotency_key", name="uq_comment_idempotency"),
        Index("ix_comment_policy_state_created", "policy_id", "state", "created_at", "id"),
        Index("ix_comment_state_created", "state", "created_at", "id"),
        Index("ix_comment_policy_clause", "policy_id", "clause_number"),
        Index("ix_comment_policy_text_hash", "policy_id", "text_hash"),
        Index("ix_comment_flagged", "flagged", "state"),
        Index("ix_comment_created", "created_at", "id"),
        Index("ix_comment_policy_support", "policy_id", "state", "support_count"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    policy_id: Mapped[int] = mapped_column(ForeignKey("policy.id", ondelete="CASCADE"))
    version_number: Mapped[int] = mapped_column(Integer)
    clause_id: Mapped[int | None] = mapped_column(ForeignKey("clause.id"), nullable=True)
    clause_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    stance: Mapped[str] = mapped_column(String(16))
    original_text: Mapped[str] = mapped_column(Text)
    public_text: Mapped[str] = mapped_column(Text)
    display_name: Mapped[str | None] = mapped_column(String(80), nullable=True)
    language: Mapped[str | None] = mapped_column(String(8), nullable=True)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    reason_code: Mapped[str | None] = mapped_column(String(20), nullable=True)
    flags: Mapped[list[Any]] = mapped_column(JSON, default=list)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    text_hash: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(20))
    site_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    source_url: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(100), nullable=True)
    submitter_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    moderated_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # Denormalised count of endorsements so "most supported" ordering is an index scan, not an aggregate per page.
    support_count: Mapped[int] = mapped_column(Integer, default=0)

    contact: Mapped[CommentContact | None] = relationship(
        back_populates="comment", uselist=False, cascade="all, delete-orphan"
    )


class CommentContact(Base):
    """Contact details of a commenter: never in events, logs, search documents or public output."""

    __tablename__ = "comment_contact"

    comment_id: Mapped[int] = mapped_column(ForeignKey("comment.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))  # phone | email
    value: Mapped[str] = mapped_column(String(254))
    consent: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    comment: Mapped[Comment] = relationship(back_populates="contact")


class CommentEndorsement(Base):
    """A reader's "I support this comment", one per voter token (stored hashed)."""

    __tablename__ = "comment_endorsement"
    __table_args__ = (UniqueConstraint("comment_id", "voter_hash", name="uq_comment_endorsement_voter"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    comment_id: Mapped[int] = mapped_column(ForeignKey("comment.id", ondelete="CASCADE"))
    voter_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class CommentTransition(Base):
    __tablename__ = "comment_transition"
    __table_args__ = (Index("ix_comment_transition_comment", "comment_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    comment_id: Mapped[int] = mapped_column(ForeignKey("comment.id", ondelete="CASCADE"))
    actor_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor_username: Mapped[str | None] = mapped_column(String(80), nullable=True)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    from_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_state: Mapped[str] = mapped_column(String(16))
    reason_code: Mapped[str | None] = mapped_column(String(20), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)


class Reply(Base):
    __tablename__ = "reply"
    __table_args__ = (Index("ix_reply_comment", "comment_id"), Index("ix_reply_policy", "policy_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    comment_id: Mapped[int] = mapped_column(ForeignKey("comment.id", ondelete="CASCADE"))
    policy_id: Mapped[int] = mapped_column(ForeignKey("policy.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(Text)
    author_user_id: Mapped[int] = mapped_column(Integer)
    author_name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class Vote(Base):
    __tablename__ = "vote"
    __table_args__ = (
        UniqueConstraint("policy_id", "clause_number", "voter_hash", name="uq_vote_voter"),
        Index("ix_vote_policy_clause_stance", "policy_id", "clause_number", "stance"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    policy_id: Mapped[int] = mapped_column(ForeignKey("policy.id", ondelete="CASCADE"))
    clause_number: Mapped[int] = mapped_column(Integer, default=WHOLE_POLICY)
    voter_hash: Mapped[str] = mapped_column(String(64))
    stance: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class Explanation(Base):
    __tablename__ = "explanation"
    __table_args__ = (Index("ix_explanation_policy_state", "policy_id", "state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    policy_id: Mapped[int] = mapped_column(ForeignKey("policy.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(10))  # article | link
    title: Mapped[str] = mapped_column(String(300))
    body_html: Mapped[str | None] = mapped_column(Text, nullable=True)
    url: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    outlet: Mapped[str | None] = mapped_column(String(200), nullable=True)
    clause_numbers: Mapped[list[Any]] = mapped_column(JSON, default=list)
    language: Mapped[str] = mapped_column(String(8), default="zh")
    state: Mapped[str] = mapped_column(String(12), default="draft")
    author_user_id: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    published_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)


class CoverageLink(Base):
    """A link between a news article and a policy, suggested by search or made by an editor."""

    __tablename__ = "coverage_link"
    __table_args__ = (
        UniqueConstraint("policy_id", "article_id", name="uq_coverage_link_article"),
        Index("ix_coverage_link_policy_state", "policy_id", "state"),
        Index("ix_coverage_link_url_state", "article_url", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    policy_id: Mapped[int] = mapped_column(ForeignKey("policy.id", ondelete="CASCADE"))
    clause_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    article_id: Mapped[str] = mapped_column(String(200))
    article_title: Mapped[str] = mapped_column(String(500))
    article_url: Mapped[str] = mapped_column(String(1000))
    article_outlet: Mapped[str | None] = mapped_column(String(200), nullable=True)
    article_published_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    state: Mapped[str] = mapped_column(String(12), default="suggested")
    origin: Mapped[str] = mapped_column(String(12), default="suggested")  # suggested | manual
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    matched_terms: Mapped[list[Any]] = mapped_column(JSON, default=list)
    decided_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
    decided_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    # When a suggestion is applied this is the suggestion event's occurred_at (not the local clock), so an older
    # event arriving late is recognised and ignored; editor decisions set it to the decision time.
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class FeedbackReport(Base):
    __tablename__ = "feedback_report"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    policy_id: Mapped[int] = mapped_column(ForeignKey("policy.id", ondelete="CASCADE"), unique=True)
    summary: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(12), default="draft")
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    published_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    published_by: Mapped[str | None] = mapped_column(String(80), nullable=True)

    entries: Mapped[list[FeedbackEntry]] = relationship(
        back_populates="report", order_by="FeedbackEntry.clause_number", cascade="all, delete-orphan"
    )


class FeedbackEntry(Base):
    __tablename__ = "feedback_entry"
    __table_args__ = (UniqueConstraint("report_id", "clause_number", name="uq_feedback_entry_clause"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("feedback_report.id", ondelete="CASCADE"))
    clause_number: Mapped[int] = mapped_column(Integer)  # WHOLE_POLICY for general remarks
    summary: Mapped[str] = mapped_column(Text)
    decision: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text, default="")

    report: Mapped[FeedbackReport] = relationship(back_populates="entries")


class SubmissionAttempt(Base):
    """Accepted submissions per hashed submitter, for rate limiting across processes."""

    __tablename__ = "submission_attempt"
    __table_args__ = (Index("ix_submission_attempt_subject", "subject_hash", "policy_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_hash: Mapped[str] = mapped_column(String(64))
    policy_id: Mapped[int] = mapped_column(Integer)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class User(Base):
    __tablename__ = "staff_user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    roles: Mapped[list[Any]] = mapped_column(JSON, default=list)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_at", "at", "id"),
        Index("ix_audit_log_object", "object_type", "object_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    actor_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor_username: Mapped[str | None] = mapped_column(String(80), nullable=True)
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class SiteKey(Base):
    __tablename__ = "site_key"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    allowed_origins: Mapped[list[Any]] = mapped_column(JSON, default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    theme: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
