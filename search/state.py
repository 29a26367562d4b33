"""The search service's own database: interest profiles of open policies and the outbox for links_suggested."""
from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

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
