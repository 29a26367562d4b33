"""The search service's own database: interest profiles of open policies and the outbox for links_suggested."""
from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, Integer, String, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from services.kernel.db import UtcDateTime, utcnow
from services.kernel.outbox import OutboxMixin


class Base(DeclarativeBase):
    pass


class OutboxMessage(OutboxMixin, Base):
    __tablename__ = "outbox"


class PolicyProfileRecord(Base):
    """A policy's interest profile and what an editor added to it (keywords, synonyms)."""

    __tablename__ = "policy_profile"

    policy_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(500))
    is_open: Mapped[bool] = mapped_column(Boolean, default=True)
    clauses: Mapped[list[Any]] = mapped_column(JSON, default=list)
    keywords: Mapped[list[Any]] = mapped_column(JSON, default=list)
    synonyms: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    profile: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[Any] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)
    # The profile revision (see ProfileRevision) that last changed this row: processes holding profiles in memory
    # read the rows changed since the revision they have seen.
    revision: Mapped[int] = mapped_column(Integer, default=0, index=True)


class ProfileRevision(Base):
    """One row counting profile changes. A change increments it in its own transaction, so the row lock orders
    changes: once a reader sees revision N, every change up to N is committed and readable."""

    __tablename__ = "profile_revision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


_REVISION_ROW = 1


def next_profile_revision(session: Session) -> int:
    """Increment the profile revision inside the caller's transaction and return the new value."""
    table = ProfileRevision.__table__
    dialect = session.get_bind().dialect.name
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}.get(dialect)
    if insert is None:
        raise NotImplementedError(f"profile revisions need SQLite or PostgreSQL, not {dialect}")
    statement = (
        insert(table)
        .values(id=_REVISION_ROW, value=1)
        .on_conflict_do_update(index_elements=[table.c.id], set_={"value": table.c.value + 1})
        .returning(table.c.value)
    )
    return int(session.execute(statement).scalar_one())


def current_profile_revision(session: Session) -> int:
    """The latest committed profile revision (0 before the first change)."""
    return int(session.scalar(select(ProfileRevision.value).where(ProfileRevision.id == _REVISION_ROW)) or 0)
