"""The transactional outbox: events are staged with the change, relayed in order, and never lost."""
import pytest
from marshmallow import fields
from sqlalchemy import String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.kernel.db import make_engine, make_session_factory
from services.kernel.events import EventSchema
from services.kernel.outbox import OutboxMixin, SqlUnitOfWork, UnknownEvent, relay_pending


class Base(DeclarativeBase):
    pass


class Thing(Base):
    __tablename__ = "thing"
    id: Mapped[str] = mapped_column(String(10), primary_key=True)


class OutboxMessage(OutboxMixin, Base):
    __tablename__ = "outbox"


class ThingMade(EventSchema):
    thing_id = fields.String(required=True)


@pytest.fixture
def factory(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'k.sqlite3'}")
    Base.metadata.create_all(engine)
    return make_session_factory(engine)


def make_things(factory, *ids):
    for thing_id in ids:
        with SqlUnitOfWork(factory, OutboxMessage, {"thing_made": ThingMade()}) as uow:
            uow.session.add(Thing(id=thing_id))
            uow.emit("thing_made", {"thing_id": thing_id})
            uow.commit()


def test_event_is_staged_with_its_envelope_and_committed_with_the_change(factory):
    make_things(factory, "a")
    published = []
    assert relay_pending(factory, OutboxMessage, lambda name, body: published.append((name, body))) == 1
    name, body = published[0]
    assert name == "thing_made" and body["thing_id"] == "a"
    assert body["event_id"] and body["occurred_at"] and body["schema_version"] == 1


def test_rolled_back_change_emits_nothing(factory):
    with SqlUnitOfWork(factory, OutboxMessage, {"thing_made": ThingMade()}) as uow:
        uow.session.add(Thing(id="b"))
        uow.emit("thing_made", {"thing_id": "b"})  # leaves without commit
    assert relay_pending(factory, OutboxMessage, lambda *a: None) == 0
    with factory() as session:
        assert session.scalar(select(Thing.id)) is None


def test_payload_that_breaks_its_schema_or_unknown_event_is_refused(factory):
    with SqlUnitOfWork(factory, OutboxMessage, {"thing_made": ThingMade()}) as uow:
        with pytest.raises(ValueError):
            uow.emit("thing_made", {"wrong": 1})
        with pytest.raises(UnknownEvent):
            uow.emit("nothing_happened", {})


def test_failure_part_way_keeps_the_rest_in_order_for_the_next_run(factory):
    make_things(factory, "1", "2", "3")
    seen, broker = [], {"down_at": "2"}

    def flaky(name, body):
        if body["thing_id"] == broker["down_at"]:
            broker["down_at"] = None
            raise ConnectionError("broker down")
        seen.append(body["thing_id"])

    with pytest.raises(ConnectionError):
        relay_pending(factory, OutboxMessage, flaky)
    assert seen == ["1"]
    assert relay_pending(factory, OutboxMessage, flaky) == 2
    assert seen == ["1", "2", "3"]
    assert relay_pending(factory, OutboxMessage, flaky) == 0


def test_events_of_one_transaction_are_relayed_in_the_order_they_were_emitted(factory):
    with SqlUnitOfWork(factory, OutboxMessage, {"thing_made": ThingMade()}) as uow:
        for thing_id in "zyxwvutsrq":
            uow.emit("thing_made", {"thing_id": thing_id})
        uow.commit()
    seen = []
    relay_pending(factory, OutboxMessage, lambda name, body: seen.append(body["thing_id"]))
    assert "".join(seen) == "zyxwvutsrq"
