"""Dependency providers: the only way external resources reach a nameko service (DESIGN.md convention 3)."""
from __future__ import annotations

import logging
import time
from collections.abc import Mapping

import eventlet
from eventlet.event import Event
from nameko.amqp.publish import Publisher
from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.extensions import DependencyProvider
from nameko.standalone.events import get_event_exchange

from services.kernel.db import make_engine, make_session_factory, utcnow
from services.kernel.outbox import SqlUnitOfWork, relay_pending

log = logging.getLogger(__name__)

RELAY_BATCH_SIZE = 200
# Under load every request worker emits an event; a relay run per worker would spend a query, an update and a commit
# on one or two rows each time. Runs start at most this often, so each one carries what accumulated meanwhile.
RELAY_MIN_GAP_S = 0.1


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
        self.publisher = Publisher(config[AMQP_URI_CONFIG_KEY])
        self.exchange = get_event_exchange(self.container.service_name, config)

    def start(self):
        self._running = True
        self._wake = Event()
        self.container.spawn_managed_thread(self._relay_forever, identifier=f"{self.database_key}-outbox-relay")

    def stop(self):
        self._running = False
        self._signal()
        self.engine.dispose()

    def kill(self):
        self.stop()

    def _signal(self):
        if self._wake is not None and not self._wake.ready():
            self._wake.send(True)

    def _publish(self, event_type: str, payload: dict):
        self.publisher.publish(payload, exchange=self.exchange, routing_key=event_type)

    def relay_once(self) -> int:
        return relay_pending(self.session_factory, self.outbox_model, self._publish, batch_size=RELAY_BATCH_SIZE)

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

        return unit_of_work


class Clock(DependencyProvider):
    """The current time as an aware UTC datetime; replaceable in tests."""

    def get_dependency(self, worker_ctx):
        return utcnow
