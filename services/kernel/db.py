"""Database plumbing shared by every service's own database."""
from __future__ import annotations

import contextlib
import datetime as dt
import pathlib
import threading
import weakref

from sqlalchemy import DateTime, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import sessionmaker
from sqlalchemy.types import TypeDecorator


class DatabaseUnavailable(Exception):
    """The database connection was lost during a call and the call could not be completed (answered as a 503).

    If it was lost while committing, the change may or may not be stored: a client retries with the same
    idempotency key and gets the first receipt if it was.
    """

    retry_after_s = 1


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UtcDateTime(TypeDecorator):
    """Stores timezone-aware datetimes as UTC; always returns aware UTC datetimes.

    SQLite has no time zone type and hands back naive values, so the zone is normalised here rather than in every
    query.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an aware UTC datetime is required")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def _sqlite_pragmas(dbapi_connection, _record):
    cursor = dbapi_connection.cursor()
    # WAL lets the relay, the timer and request workers read while one writes; busy_timeout waits instead of failing.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_engine(url: str, **kwargs) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            pathlib.Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 10})
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    if parsed.get_driver_name() != "psycopg2":
        kwargs.setdefault("pool_pre_ping", True)
        return create_engine(url, **kwargs)
    engine = create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        event.listen(engine, "checkout", _refuse_connections_closed_by_the_server)
    return engine


def _refuse_connections_closed_by_the_server(dbapi_connection, _record, _proxy):
    """Pool checkout on psycopg2: a connection the server closed while it sat in the pool is replaced, at no round trip.

    pool_pre_ping would send a query per checkout, a tenth of a comment submission's round trips. An idle
    connection has nothing to read unless the server is closing it (pg_terminate_backend, shutdown, crash): then
    its farewell (a FATAL notice) and end-of-file are waiting in the socket, and two non-blocking reads (poll())
    find them. Raising DisconnectionError makes the pool discard the connection and check out a fresh one.
    A connection that dies while in use is the caller's to handle (services.dependencies.retry_if_connection_lost).
    """
    import psycopg2

    try:
        if not dbapi_connection.closed:
            dbapi_connection.poll()
            dbapi_connection.poll()
    except psycopg2.Error:
        pass
    notices = dbapi_connection.notices
    if dbapi_connection.closed or (notices and notices[-1].startswith("FATAL")):
        raise DisconnectionError("the server closed this pooled connection")


_SQLITE_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def transaction_lock(engine: Engine):
    """A per-process lock that units of work hold on SQLite (nothing elsewhere).

    SQLite has one writer; a second writer waits in SQLite's busy handler, which sleeps inside C. Under eventlet that
    sleep blocks every green thread, including the one that holds the lock, so concurrent writers stall for the whole
    busy timeout. Waiting on this lock instead is cooperative (eventlet greens it) and costs nothing more, since
    SQLite serialises writers anyway. PostgreSQL needs no such lock.
    """
    if engine.dialect.name != "sqlite":
        return contextlib.nullcontext()
    lock = _SQLITE_LOCKS.get(engine)
    if lock is None:
        lock = _SQLITE_LOCKS.setdefault(engine, threading.RLock())
    return lock


def make_session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(bind=engine, expire_on_commit=False, future=True)
