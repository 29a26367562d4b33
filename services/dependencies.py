"""Dependency providers: the only way external resources reach a nameko service (DESIGN.md convention 3)."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import TypeVar

import eventlet
from eventlet.event import Event
from kombu import Connection, Producer
from nameko.amqp.publish import UndeliverableMessage
from nameko.constants import AMQP_URI_CONFIG_KEY, PERSISTENT
from nameko.extensions import DependencyProvider
from nameko.standalone.events import get_event_exchange
from sqlalchemy.exc import DBAPIError

from services.kernel.db import DatabaseUnavailable, make_engine, make_session_factory, utcnow
from services.kernel.outbox import SqlUnitOfWork, relay_pending

log = logging.getLogger(__name__)
T = TypeVar("T")

RELAY_BATCH_SIZE = 200
# Under load every request worker emits an event; a relay run per worker would spend a query, an update and a commit
# on one or two rows each time. Runs start at most this often, so each one carries what accumulated meanwhile.
RELAY_MIN_GAP_S = 0.1


class ConfirmedBatchPublisher:
    """Publishes a batch of events on its own broker connection, then waits once for the broker to confirm them all.

    A publisher confirm per message (what nameko's Publisher does) costs a round trip and a wake-up per event; here
    a relay run sends its rows back to back and `confirm()` returns once the broker has acknowledged every one, or
    raises, in which case the run marks nothing and the rows are sent again later (consumers are idempotent).
    Messages are what nameko's event dispatcher sends: JSON, persistent, to the service's event exchange.
    """

    def __init__(self, amqp_uri: str, exchange, confirm_timeout: float = 30.0):
        self.amqp_uri = amqp_uri
        self.exchange = exchange
        self.confirm_timeout = confirm_timeout
        self._connection = None
        self._lost_unconfirmed = False

    def _open(self):
        connection = Connection(self.amqp_uri)
        try:
            channel = connection.channel()
            if not self.exchange.no_declare:
                self.exchange(channel).declare()
            channel.confirm_select()
            channel.events["basic_ack"].add(self._on_ack)
            channel.events["basic_nack"].add(self._on_nack)
        except Exception:
            connection.release()
            raise
        self._connection, self._producer = connection, Producer(channel, exchange=self.exchange, serializer="json")
        self._sent = 0  # delivery tags count from 1 on a channel in confirm mode
        self._unconfirmed: set[int] = set()
        self._refused = False

    def _on_ack(self, delivery_tag, multiple):
        # confirms may come out of order, singly or for every tag up to this one
        if multiple:
            self._unconfirmed = {tag for tag in self._unconfirmed if tag > delivery_tag}
        else:
            self._unconfirmed.discard(delivery_tag)

    def _on_nack(self, delivery_tag, multiple):
        self._refused = True
        self._on_ack(delivery_tag, multiple)

    def publish(self, event_type: str, payload: dict) -> None:
        if self._connection is None:
            self._open()
        try:
            self._producer.publish(payload, routing_key=event_type, delivery_mode=PERSISTENT)
        except Exception:
            self.close()
            raise
        self._sent += 1
        self._unconfirmed.add(self._sent)

    def confirm(self) -> None:
        """Wait until the broker has confirmed everything published so far; raise if it refused or went away."""
        if self._connection is None:
            if self._lost_unconfirmed:
                self._lost_unconfirmed = False
                raise ConnectionError("the broker connection closed before it confirmed the batch")
            return
        deadline = time.monotonic() + self.confirm_timeout
        try:
            while self._unconfirmed:
                self._connection.drain_events(timeout=max(0.01, deadline - time.monotonic()))
            if self._refused:
                raise UndeliverableMessage("the broker refused an event")
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            self._lost_unconfirmed = bool(self._unconfirmed)
            try:
                connection.release()
            except Exception:  # noqa: BLE001 - already broken: nothing left to release cleanly
                pass


def _patch_psycopg_for_eventlet(url: str):
    if url.startswith("postgresql"):
        from psycogreen.eventlet import patch_psycopg

        patch_psycopg()


class UnitOfWork(DependencyProvider):
    """Gives each worker a factory of units of work over the service's own database, and relays its outbox.

    The relay runs in a managed thread: it wakes after every worker that committed events (at most once per
    RELAY_MIN_GAP_S, so busy periods publish in batches) and every OUTBOX_RELAY_INTERVAL seconds, so an event staged
    while the broker was down is published once it is back.
    """

    def __init__(self, database_key: str, outbox_model: type, event_schemas: Mapping, metadata=None):
        self.database_key = database_key
        self.outbox_model = outbox_model
        self.event_schemas = event_schemas
        self.metadata = metadata
        self._wake = None
        self._running = False
        self._units_by_worker: dict = {}

    def setup(self):
        config = self.container.config
        url = config["DATABASES"][self.database_key]
        _patch_psycopg_for_eventlet(url)
        self.engine = make_engine(url)
        self.session_factory = make_session_factory(self.engine)
        self.relay_interval = float(config.get("OUTBOX_RELAY_INTERVAL", 1.0))
        self.publisher = ConfirmedBatchPublisher(config[AMQP_URI_CONFIG_KEY],
                                                 get_event_exchange(self.container.service_name, config))

    def start(self):
        self._running = True
        self._wake = Event()
        self.container.spawn_managed_thread(self._relay_forever, identifier=f"{self.database_key}-outbox-relay")

    def stop(self):
        self._running = False
        self._signal()
        self.engine.dispose()
        self.publisher.close()

    def kill(self):
        self.stop()

    def _signal(self):
        if self._wake is not None and not self._wake.ready():
            self._wake.send(True)

    def relay_once(self) -> int:
        return relay_pending(self.session_factory, self.outbox_model, self.publisher.publish,
                             batch_size=RELAY_BATCH_SIZE, confirm=self.publisher.confirm)

    def _relay_forever(self):
        failures = 0
        while self._running:
            started = time.monotonic()
            try:
                # a short batch means the outbox is drained: no need for another query to learn that
                while self.relay_once() >= RELAY_BATCH_SIZE:
                    pass
                failures = 0
            except Exception as exc:  # broker or database down: keep the rows, try again later
                failures += 1
                log.warning("outbox relay failed (%s); will retry", type(exc).__name__)
            delay = self.relay_interval if not failures else min(30.0, self.relay_interval * 2**failures)
            with eventlet.Timeout(delay, False):
                self._wake.wait()
            self._wake = Event()
            if self._running and not failures:
                eventlet.sleep(max(0.0, started + RELAY_MIN_GAP_S - time.monotonic()))

    def worker_teardown(self, worker_ctx):
        units = self._units_by_worker.pop(worker_ctx, ())
        if any(unit.committed_events for unit in units):
            self._signal()

    def get_dependency(self, worker_ctx):
        units = self._units_by_worker.setdefault(worker_ctx, [])

        def unit_of_work() -> SqlUnitOfWork:
            unit = SqlUnitOfWork(self.session_factory, self.outbox_model, self.event_schemas)
            units.append(unit)
            return unit

        unit_of_work.units = units  # this worker's units so far, for retry_if_connection_lost
        return unit_of_work


def retry_if_connection_lost(unit_of_work, call: Callable[[], T]) -> T:
    """`call()`, run once more if it failed because its database connection was lost before anything committed.

    The pool replaces connections the server closed while idle (services.kernel.db), but one can still die in use
    (the server restarts or its backend is terminated mid-transaction). Until a COMMIT was sent the server rolls
    the transaction back, so running the use case again from its start is safe, and the caller gets an answer
    instead of an error. Once a unit of work has sent COMMIT the outcome is unknown: DatabaseUnavailable (a 503 at
    the gateway) says so, as it does when the second run loses its connection too.
    `unit_of_work` is the factory this module's UnitOfWork provider gives the worker.
    """
    try:
        return call()
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        if any(unit.commit_started for unit in unit_of_work.units):
            raise DatabaseUnavailable("database connection lost while committing; the outcome is unknown") from exc
        log.warning("database connection lost before commit (%s); running the call again", type(exc.orig).__name__)
    try:
        return call()
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise DatabaseUnavailable("database connection lost twice in one call") from exc
        raise


class Clock(DependencyProvider):
    """The current time as an aware UTC datetime; replaceable in tests."""

    def get_dependency(self, worker_ctx):
        return utcnow
