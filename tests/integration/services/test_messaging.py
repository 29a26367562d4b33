"""The messaging rules of DESIGN.md §3 on the real broker: outbox relay, retries with back-off, dead-lettering,
RPC timeouts. A toy producer/consumer pair stands in for the real services so each rule is tested in isolation."""
import itertools
import time

import eventlet
import pytest
from kombu import Connection
from marshmallow import fields
from nameko.exceptions import RemoteError, RpcTimeout
from nameko.rpc import rpc
from nameko.standalone.rpc import ServiceRpcProxy
from sqlalchemy import String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.dependencies import UnitOfWork
from services.kernel.db import make_engine
from services.kernel.events import EventSchema
from services.kernel.outbox import OutboxMixin
from services.messaging import TimedRpcProxy, reliable_event_handler

pytestmark = pytest.mark.rabbit


class Base(DeclarativeBase):
    pass


class Note(Base):
    __tablename__ = "note"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)


class OutboxMessage(OutboxMixin, Base):
    __tablename__ = "outbox"


class NoteWritten(EventSchema):
    note_id = fields.String(required=True)


class Producer:
    name = "toy_producer"
    uow = UnitOfWork("toy", OutboxMessage, {"note_written": NoteWritten()})

    @rpc
    def write(self, note_id):
        with self.uow() as uow:
            uow.session.add(Note(id=note_id))
            uow.emit("note_written", {"note_id": note_id})
            uow.commit()
        return note_id

    @rpc
    def read(self, note_id):
        with self.uow() as uow:
            return uow.session.get(Note, note_id) is not None

    @rpc
    def slow(self, seconds):
        eventlet.sleep(seconds)
        return "late"


received = []
failures_left = {}


class Consumer:
    name = "toy_consumer"

    @reliable_event_handler("toy_producer", "note_written")
    def on_note(self, payload):
        note_id = payload["note_id"]
        if failures_left.get(note_id, 0) > 0:
            failures_left[note_id] -= 1
            raise RuntimeError("transient failure")
        received.append(payload)


class Caller:
    name = "toy_caller"
    producer = TimedRpcProxy("toy_producer", timeout=0.5)

    @rpc
    def call_slow(self):
        return self.producer.slow(3)


@pytest.fixture
def config(rabbit_config, tmp_path):
    received.clear()
    failures_left.clear()
    url = f"sqlite:///{tmp_path / 'toy.sqlite3'}"
    Base.metadata.create_all(make_engine(url))
    return {**rabbit_config, "DATABASES": {"toy": url}, "OUTBOX_RELAY_INTERVAL": 0.2, "EVENT_RETRY_DELAYS": [0.2, 0.2]}


def wait_until(predicate, seconds=10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        eventlet.sleep(0.05)
    return predicate()


counter = itertools.count()


def test_state_change_and_its_event_reach_the_consumer(config, container_factory):
    for cls in (Producer, Consumer):
        container_factory(cls, config).start()
    with ServiceRpcProxy("toy_producer", config, timeout=5) as producer:
        producer.write("n1")
    assert wait_until(lambda: [p["note_id"] for p in received] == ["n1"])
    assert received[0]["event_id"] and received[0]["schema_version"] == 1


def test_event_staged_while_nobody_listens_is_delivered_when_the_consumer_starts(config, container_factory):
    producer = container_factory(Producer, config)
    producer.start()
    consumer = container_factory(Consumer, config)
    consumer.start()
    consumer.stop()  # its durable queue exists but nobody consumes
    with ServiceRpcProxy("toy_producer", config, timeout=5) as proxy:
        proxy.write("late-reader")
    eventlet.sleep(0.5)
    assert received == []
    container_factory(Consumer, config).start()
    assert wait_until(lambda: [p["note_id"] for p in received] == ["late-reader"])


def test_outbox_keeps_events_while_the_broker_is_unreachable_and_relays_them_later(config, container_factory):
    container_factory(Consumer, config).start()
    producer = container_factory(Producer, config)
    producer.start()
    provider = next(ext for ext in producer.dependencies if isinstance(ext, UnitOfWork))
    real_publish = provider.publisher.publish

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker unreachable")

    provider.publisher.publish = broker_down
    with ServiceRpcProxy("toy_producer", config, timeout=5) as proxy:
        proxy.write("kept")  # acknowledged although the event cannot be published yet
    with provider.session_factory() as session:
        assert session.scalar(select(Note.id)) == "kept"
        assert session.scalars(select(OutboxMessage).where(OutboxMessage.sent_at.is_(None))).all()
    eventlet.sleep(0.5)
    assert received == []
    provider.publisher.publish = real_publish
    assert wait_until(lambda: [p["note_id"] for p in received] == ["kept"], seconds=40)


def relay_runs(container) -> list:
    """Count the relay's runs of a started producer (its real relay_once still does the work)."""
    provider = next(ext for ext in container.dependencies if isinstance(ext, UnitOfWork))
    runs, real_relay_once = [], provider.relay_once

    def counted():
        runs.append(1)
        return real_relay_once()

    provider.relay_once = counted
    return runs


def test_only_workers_that_committed_events_wake_the_relay(config, container_factory):
    quiet = {**config, "OUTBOX_RELAY_INTERVAL": 60}  # no timer-driven runs during the test
    container_factory(Consumer, quiet).start()
    producer = container_factory(Producer, quiet)
    producer.start()
    runs = relay_runs(producer)
    eventlet.sleep(0.3)  # the run at start-up is over
    runs.clear()
    with ServiceRpcProxy("toy_producer", quiet, timeout=5) as proxy:
        for _ in range(5):
            assert proxy.read("nothing") is False
        eventlet.sleep(0.3)
        assert runs == []
        proxy.write("woke")
    assert wait_until(lambda: [p["note_id"] for p in received] == ["woke"], seconds=5)
    assert runs


def test_a_burst_of_events_is_relayed_in_batches_and_none_is_lost(config, container_factory):
    quiet = {**config, "OUTBOX_RELAY_INTERVAL": 60}
    container_factory(Consumer, quiet).start()
    producer = container_factory(Producer, quiet)
    producer.start()
    runs = relay_runs(producer)
    eventlet.sleep(0.3)
    runs.clear()
    ids = [f"burst-{n}" for n in range(40)]
    with ServiceRpcProxy("toy_producer", quiet, timeout=10) as proxy:
        replies = [proxy.write.call_async(note_id) for note_id in ids]  # all in flight at once
        assert [reply.result() for reply in replies] == ids
    assert wait_until(lambda: sorted(p["note_id"] for p in received) == sorted(ids), seconds=10)
    assert len(runs) < len(ids)


def test_failing_handler_is_retried_with_back_off_until_it_succeeds(config, container_factory):
    for cls in (Producer, Consumer):
        container_factory(cls, config).start()
    failures_left["flaky"] = 2
    with ServiceRpcProxy("toy_producer", config, timeout=5) as producer:
        producer.write("flaky")
    assert wait_until(lambda: [p["note_id"] for p in received] == ["flaky"])
    assert failures_left["flaky"] == 0


def test_handler_that_keeps_failing_sends_the_message_to_the_dead_letter_queue(config, container_factory):
    for cls in (Producer, Consumer):
        container_factory(cls, config).start()
    failures_left["poison"] = 10**6
    with ServiceRpcProxy("toy_producer", config, timeout=5) as producer:
        producer.write("poison")
    queue = "evt-toy_producer-note_written--toy_consumer.on_note.dead"

    def dead_letters():
        with Connection(config["AMQP_URI"]) as connection:
            channel = connection.channel()
            return channel.queue_declare(queue, passive=True).message_count

    assert wait_until(lambda: dead_letters() == 1, seconds=15)
    assert received == []


def test_rpc_caller_gives_up_after_its_timeout(config, container_factory):
    for cls in (Producer, Caller):
        container_factory(cls, config).start()
    with ServiceRpcProxy("toy_caller", config, timeout=10) as caller:
        started = time.monotonic()
        with pytest.raises(RemoteError) as raised:
            caller.call_slow()
        assert raised.value.exc_type == RpcTimeout.__name__
        assert time.monotonic() - started < 2.5
