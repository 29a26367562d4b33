"""Transactional outbox: a state change and the event announcing it are committed together.

A handler stages events on the unit of work; they are written to the service's `outbox` table in the same
transaction as the change. A relay (see services/messaging.py) publishes unsent rows to the broker and marks them
sent, so an acknowledged change is never lost even when the broker is down; consumers are idempotent because a row
may be published more than once.
"""
from __future__ import annotations

import json
import uuid
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from marshmallow import Schema, ValidationError
from marshmallow.utils import missing
from sqlalchemy import Index, Integer, String, Table, Text, bindparam, insert, select, update
from sqlalchemy.orm import Mapped, Session, declared_attr, mapped_column, sessionmaker

from .db import UtcDateTime, transaction_lock, utcnow
from .events import EventSchema


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


_ENVELOPE_FIELDS = frozenset(EventSchema().fields)
# Per schema instance: its payload fields, or None when the schema has hooks of its own and needs a full validate().
_payload_fields: weakref.WeakKeyDictionary[Schema, list | None] = weakref.WeakKeyDictionary()


def _payload_errors(schema: Schema, body: dict) -> dict:
    """Field messages for a dumped event body that its schema would refuse on load; empty when it is valid.

    Each payload field is loaded by its own marshmallow field (required, allow_none, type, validators, nested
    schemas): what schema.validate() does, minus its per-call machinery and the envelope this module wrote itself.
    Schemas with hooks of their own (@validates, @validates_schema, ...) get the full schema.validate().
    """
    if schema not in _payload_fields:
        hooked = any(getattr(type(schema), "_hooks", {}).values())
        _payload_fields[schema] = None if hooked else [
            (field.data_key or name, name, field) for name, field in schema.load_fields.items()
            if name not in _ENVELOPE_FIELDS
        ]
    fields = _payload_fields[schema]
    if fields is None:
        return schema.validate(body)
    errors = {}
    for key, name, field in fields:
        try:
            field.deserialize(body.get(key, missing), name, body)
        except ValidationError as exc:
            errors[key] = exc.messages
    return errors


_PLAIN_INSERTS: dict[Table, Any] = {}


def _plain_insert(table: Table):
    # Built once per table: a statement object memoises its cache key.
    statement = _PLAIN_INSERTS.get(table)
    if statement is None:
        statement = _PLAIN_INSERTS[table] = insert(table)
    return statement


# Combined insert statements by shape (each row's table and columns): a handful of shapes recur, each built once.
_COMBINED_INSERTS: dict[tuple, Any] = {}
_COMBINED_INSERTS_MAX = 256


def _with_python_defaults(table: Table, rows: list[dict]) -> list[dict]:
    """Rows with the column defaults computed in Python (default=...) filled in, as an executemany would.

    A multi-row VALUES of bound parameters leaves them out; server-side defaults still apply to absent columns.
    """
    defaults = [column for column in table.c if column.name not in rows[0] and column.default is not None
                and (column.default.is_scalar or column.default.is_callable)]
    if not defaults:
        return rows
    filled = []
    for row in rows:
        row = dict(row)
        for column in defaults:
            default = column.default
            row[column.name] = default.arg if default.is_scalar else default.arg(None)
        filled.append(row)
    return filled


def _combined_insert(writes: list[tuple[Table, list[dict]]]) -> tuple[Any, dict]:
    """One INSERT statement for rows of several tables (PostgreSQL's data-modifying CTEs) and its parameters.

    Sub-statements in WITH all run, in one snapshot, whether or not the main statement refers to them; foreign keys
    between the rows are checked at the end of the statement, so a child row may sit beside its parent. Each row is
    a single-row INSERT of its own: SQLAlchemy caches the compiled form of those, not of multi-row VALUES.
    """
    rows = [(table, row) for table, table_rows in writes for row in _with_python_defaults(table, table_rows)]
    shape = tuple((table, tuple(row)) for table, row in rows)
    params = {f"r{index}_{column}": value for index, (_, row) in enumerate(rows) for column, value in row.items()}
    statement = _COMBINED_INSERTS.get(shape)
    if statement is None:
        inserts = [
            insert(table).values({column: bindparam(f"r{index}_{column}", type_=table.c[column].type)
                                  for column in columns})
            for index, (table, columns) in enumerate(shape)
        ]
        statement = inserts[-1].add_cte(*(ins.cte(f"r{index}") for index, ins in enumerate(inserts[:-1])))
        if len(_COMBINED_INSERTS) >= _COMBINED_INSERTS_MAX:
            _COMBINED_INSERTS.clear()
        _COMBINED_INSERTS[shape] = statement
    return statement, params


class SqlUnitOfWork:
    """One transaction over a service's database, with staged outbox events and staged append-only rows.

    Use as `with uow: ...; uow.commit()`. Leaving the block without commit rolls back, events included. Staged events
    and rows are written when `commit()` runs, so commit through the unit of work, not its session.

    `commit_started` turns true when a COMMIT was sent: from then on a lost connection leaves the outcome unknown,
    before it the server has rolled the transaction back (see services.dependencies.retry_if_connection_lost).
    """

    def __init__(self, session_factory: sessionmaker, outbox_model: type, event_schemas: Mapping[str, Schema]):
        self._session_factory = session_factory
        self._outbox_model = outbox_model
        self._outbox_table = outbox_model.__table__
        self._event_schemas = event_schemas
        self._staged_rows: list[dict] = []
        self._staged_inserts: list[tuple[Table, list[dict]]] = []
        self.session: Session | None = None
        self.committed_events: list[tuple[str, dict]] = []
        self.commit_started = False

    def __enter__(self):
        self._lock = transaction_lock(self._session_factory.kw["bind"])
        self._lock.__enter__()
        self.session = self._session_factory()
        self.committed_events = []
        self._staged_rows = []
        self._staged_inserts = []
        return self

    def __exit__(self, *exc):
        try:
            self._staged_rows = []
            self._staged_inserts = []
            self.session.rollback()
        finally:
            self.session.close()
            self.session = None
            self._lock.__exit__(None, None, None)

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
        # dump() only formats; loading the formatted body back is what checks required fields, types and validators.
        # The envelope is ours and well-formed, so only the payload's own fields are checked.
        errors = _payload_errors(schema, body)
        if errors:
            raise ValueError(f"event {event_type} payload does not match its schema: {errors}")
        self._staged_rows.append({"id": event_id, "event_type": event_type,
                                  "payload": json.dumps(body, ensure_ascii=False)})
        self.committed_events.append((event_type, body))
        return body

    def add_rows(self, table: Table, rows: list[dict]) -> None:
        """Stage append-only rows of `table` (every row with the same keys), inserted when `commit()` runs.

        For rows nothing reads back in this transaction. They go after the rows added through the ORM; on PostgreSQL
        all staged rows, with the outbox row when there is one event, reach the server as one statement whose parts
        run in no set order (ids drawn from sequences need not follow the staging order); elsewhere each staged batch
        is one executemany (an in-process database has no round trips to save). Constraint errors (IntegrityError)
        therefore surface from `commit()`.
        """
        if rows:
            self._staged_inserts.append((table, rows))

    def commit(self):
        # Core inserts: the rows are append-only and the relay reads the outbox back, so the ORM's identity map and
        # per-row primary key fetches would be pure overhead.
        writes, self._staged_inserts = self._staged_inserts, []
        events, self._staged_rows = self._staged_rows, []
        if writes:
            self.session.flush()  # rows added through the ORM go first: staged rows may refer to them
            connection = self.session.connection()
            if connection.dialect.name == "postgresql":
                # Several events keep their own statement: the relay publishes in sequence order, which one
                # statement's parts would not keep.
                if len(events) == 1:
                    writes.append((self._outbox_table, events))
                    events = []
                connection.execute(*_combined_insert(writes))
            else:
                for table, rows in writes:
                    connection.execute(_plain_insert(table), rows)
        if events:
            self.session.connection().execute(_plain_insert(self._outbox_table), events)
        self.commit_started = True
        self.session.commit()

    def rollback(self):
        self._staged_rows = []
        self._staged_inserts = []
        self.session.rollback()
        self.committed_events = []


def relay_pending(
    session_factory: sessionmaker,
    outbox_model: type,
    publish: Callable[[str, dict], None],
    batch_size: int = 200,
    confirm: Callable[[], None] | None = None,
) -> int:
    """Publish unsent outbox rows in creation order and mark them sent. Returns how many were published.

    Rows are marked in one statement per batch; if publishing fails part-way, the rows already published are marked
    and the rest wait for the next run, so ordering holds and nothing is lost (a crash between publishing and marking
    publishes a row twice, which consumers tolerate). With `confirm` (waits until the broker has accepted everything
    `publish` sent, or raises), rows are marked only once it returns; if it raises, none of the run's rows are.
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
            if published and confirm is not None:
                confirm()  # raises when the broker did not accept them all: none of this run's rows are marked
            _mark_sent(session, outbox_model, published)
    return len(published)


def _mark_sent(session: Session, outbox_model: type, seqs: list[int]) -> None:
    if seqs:
        with transaction_lock(session.get_bind()):
            session.execute(update(outbox_model).where(outbox_model.seq.in_(seqs)).values(sent_at=utcnow()))
            session.commit()
