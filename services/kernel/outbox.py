"""Transactional outbox: a state change and the event announcing it are committed together.

A handler stages events on the unit of work; they are written to the service's `outbox` table in the same
transaction as the change. A relay (see services/messaging.py) publishes unsent rows to the broker and marks them
sent, so an acknowledged change is never lost even when the broker is down; consumers are idempotent because a row
may be published more than once.
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from marshmallow import Schema
from sqlalchemy import Index, Integer, String, Text, select, update
from sqlalchemy.orm import Mapped, Session, declared_attr, mapped_column, sessionmaker

from .db import UtcDateTime, utcnow


class OutboxMixin:
    """Columns of a service's outbox table; mix into the service's own declarative Base."""

    # The sequence orders the relay: events of one transaction can share a timestamp, never a sequence number.
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True, default=lambda: str(uuid.uuid4()))
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[Any] = mapped_column(UtcDateTime, default=utcnow)
    sent_at: Mapped[Any] = mapped_column(UtcDateTime, nullable=True, default=None)

    @declared_attr.directive
    def __table_args__(cls):
        return (Index(f"ix_{cls.__tablename__}_unsent", "sent_at", "seq"),)


class UnknownEvent(LookupError):
    pass


class SqlUnitOfWork:
    """One transaction over a service's database, with staged outbox events.

    Use as `with uow: ...; uow.commit()`. Leaving the block without commit rolls back, events included.
    """

    def __init__(self, session_factory: sessionmaker, outbox_model: type, event_schemas: Mapping[str, Schema]):
        self._session_factory = session_factory
        self._outbox_model = outbox_model
        self._event_schemas = event_schemas
        self.session: Session | None = None
        self.committed_events: list[tuple[str, dict]] = []

    def __enter__(self):
        self.session = self._session_factory()
        self.committed_events = []
        return self

    def __exit__(self, *exc):
        try:
            self.session.rollback()
        finally:
            self.session.close()
            self.session = None

    def emit(self, event_type: str, payload: Mapping[str, Any]) -> dict:
        """Validate `payload` against the event's schema and stage it in the outbox of this transaction.

        The envelope (event_id, occurred_at, schema_version) is added here; the schema must derive from
        services.kernel.events.EventSchema.
        """
        schema = self._event_schemas.get(event_type)
        if schema is None:
            raise UnknownEvent(event_type)
        event_id = str(uuid.uuid4())
        envelope = {"event_id": event_id, "occurred_at": utcnow(), "schema_version": schema.SCHEMA_VERSION}
        body = schema.dump({**payload, **envelope})
        errors = schema.validate(body)
        if errors:
            raise ValueError(f"event {event_type} payload does not match its schema: {errors}")
        self.session.add(
            self._outbox_model(id=event_id, event_type=event_type, payload=json.dumps(body, ensure_ascii=False))
        )
        self.committed_events.append((event_type, body))
        return body

    def commit(self):
        self.session.commit()

    def rollback(self):
        self.session.rollback()
        self.committed_events = []


def relay_pending(
    session_factory: sessionmaker,
    outbox_model: type,
    publish: Callable[[str, dict], None],
    batch_size: int = 200,
) -> int:
    """Publish unsent outbox rows in creation order and mark them sent. Returns how many were published.

    Rows are marked in one statement per batch; if publishing fails part-way, the rows already published are marked
    and the rest wait for the next run, so ordering holds and nothing is lost (a crash between publishing and marking
    publishes a row twice, which consumers tolerate).
    """
    with session_factory() as session:
        rows = session.execute(
            select(outbox_model.seq, outbox_model.event_type, outbox_model.payload)
            .where(outbox_model.sent_at.is_(None))
            .order_by(outbox_model.seq)
            .limit(batch_size)
        ).all()
        published: list[int] = []
        try:
            for seq, event_type, payload in rows:
                publish(event_type, json.loads(payload))
                published.append(seq)
        finally:
            if published:
                session.execute(
                    update(outbox_model).where(outbox_model.seq.in_(published)).values(sent_at=utcnow())
                )
                session.commit()
    return len(published)
