"""Persistent model of the newsfeed service: feeds with their fetch state and health, articles, the outbox."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.kernel.db import UtcDateTime, utcnow
from services.kernel.outbox import OutboxMixin

DEFAULT_TIME_ZONE = "Asia/Shanghai"
DEFAULT_POLL_INTERVAL_S = 900


class Base(DeclarativeBase):
    pass


class FeedStatus:
    NEW = "new"  # added, never polled
    OK = "ok"
    FAILING = "failing"  # the last poll failed (network, HTTP error or unusable document)


class Feed(Base):
    __tablename__ = "feed"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(String(2048), unique=True)
    # The page the feed was discovered from (or its <link>), so staff recognise it.
    site_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    title: Mapped[str] = mapped_column(String(500), default="")
    outlet: Mapped[str] = mapped_column(String(200), default="")
    language: Mapped[str | None] = mapped_column(String(16), nullable=True)
    time_zone: Mapped[str] = mapped_column(String(64), default=DEFAULT_TIME_ZONE)
    poll_interval_s: Mapped[int] = mapped_column(Integer, default=DEFAULT_POLL_INTERVAL_S)
    category: Mapped[str | None] = mapped_column(String(100), nullable=True)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)

    etag: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    last_modified: Mapped[str | None] = mapped_column(String(200), nullable=True)

    status: Mapped[str] = mapped_column(String(16), default=FeedStatus.NEW)
    last_polled_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_success_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_error_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    next_poll_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    articles_seen: Mapped[int] = mapped_column(Integer, default=0)

    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    # The timer asks "which unpaused feeds are due?" every tick.
    __table_args__ = (Index("ix_feed_due", "paused", "next_poll_at"),)


class Article(Base):
    __tablename__ = "article"

    # Hash of the feed-independent identity (canonical URL, else GUID): the same story from two feeds is one row.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feed.id", ondelete="CASCADE"))
    guid: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Digests stand in for long strings in indexes: a URL or GUID may exceed PostgreSQL's btree entry limit.
    guid_key: Mapped[str | None] = mapped_column(String(40), nullable=True)
    url: Mapped[str | None] = mapped_column(Text, nullable=True)
    url_key: Mapped[str | None] = mapped_column(String(40), nullable=True, unique=True)
    title: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str | None] = mapped_column(String(500), nullable=True)
    published_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    summary_html: Mapped[str] = mapped_column(Text, default="")
    content_html: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text, default="")
    language: Mapped[str] = mapped_column(String(16), default="en")
    outlet: Mapped[str] = mapped_column(String(200), default="")
    categories: Mapped[list] = mapped_column(JSON, default=list)
    content_hash: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1)
    # Id of the canonical article of a group of syndicated near-duplicates; None for canonical articles themselves.
    canonical_of: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # MinHash sketch (hex) and its locality-sensitive band keys; equal keys find near-duplicate candidates (dedupe.py).
    sketch: Mapped[str | None] = mapped_column(String(160), nullable=True)
    lsh0: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    lsh1: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    lsh2: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    lsh3: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    lsh4: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    ingested_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    changed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_article_feed_guid", "feed_id", "guid_key"),
        Index("ix_article_feed_published", "feed_id", "published_at"),
        Index("ix_article_changed", "changed_at", "id"),
        Index("ix_article_canonical_of", "canonical_of"),
        Index("ix_article_lsh0", "lsh0"),
        Index("ix_article_lsh1", "lsh1"),
        Index("ix_article_lsh2", "lsh2"),
        Index("ix_article_lsh3", "lsh3"),
        Index("ix_article_lsh4", "lsh4"),
    )


class OutboxMessage(OutboxMixin, Base):
    __tablename__ = "outbox"


def create_schema(engine) -> None:
    """Create the tables (tests, the embedded default); production uses Alembic migrations of the same model."""
    Base.metadata.create_all(engine)
