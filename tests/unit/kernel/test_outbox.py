"""The transactional outbox: events are staged with the change, relayed in order, and never lost."""
import pytest
from marshmallow import Schema, ValidationError, fields, validate, validates_schema
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


class Part(Schema):
    number = fields.Integer(required=True)


class ThingMeasured(EventSchema):
    thing_id = fields.String(required=True)
    size = fields.Integer(required=True, validate=validate.Range(min=1))
    colour = fields.String(allow_none=True, load_default=None)
    parts = fields.List(fields.Nested(Part), required=True)


class ThingsCompared(EventSchema):
    smaller = fields.Integer(required=True)
    larger = fields.Integer(required=True)

    @validates_schema
    def in_order(self, data, **kwargs):
        if data["smaller"] > data["larger"]:
            raise ValidationError("smaller is larger", "smaller")


SCHEMAS = {"thing_made": ThingMade(), "thing_measured": ThingMeasured(), "things_compared": ThingsCompared()}
MEASURED = {"thing_id": "a", "size": 3, "colour": None, "parts": [{"number": 1}]}


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


@pytest.mark.parametrize("broken", [
    {"thing_id": None},  # required and not nullable
    {"size": "three"},  # not an integer
    {"size": 0},  # fails the field's validator
    {"parts": [{"number": "x"}]},  # a nested payload that breaks its own schema
    {"parts": None},
])
def test_payload_with_a_wrong_type_value_or_nested_part_is_refused(factory, broken):
    with SqlUnitOfWork(factory, OutboxMessage, SCHEMAS) as uow:
        uow.emit("thing_measured", MEASURED)  # the valid payload passes
        with pytest.raises(ValueError):  # dump() itself refuses some, the schema check the rest
            uow.emit("thing_measured", {**MEASURED, **broken})


def test_payload_missing_a_required_field_is_refused(factory):
    with SqlUnitOfWork(factory, OutboxMessage, SCHEMAS) as uow:
        with pytest.raises(ValueError, match="size"):
            uow.emit("thing_measured", {k: v for k, v in MEASURED.items() if k != "size"})


def test_schema_level_validation_of_an_event_still_applies(factory):
    with SqlUnitOfWork(factory, OutboxMessage, SCHEMAS) as uow:
        uow.emit("things_compared", {"smaller": 1, "larger": 2})
        with pytest.raises(ValueError, match="smaller is larger"):
            uow.emit("things_compared", {"smaller": 3, "larger": 2})


def test_events_staged_before_a_rollback_are_not_written_by_a_later_commit(factory):
    with SqlUnitOfWork(factory, OutboxMessage, SCHEMAS) as uow:
        uow.emit("thing_made", {"thing_id": "dropped"})
        uow.rollback()
        uow.emit("thing_made", {"thing_id": "kept"})
        uow.commit()
    seen = []
    relay_pending(factory, OutboxMessage, lambda name, body: seen.append(body["thing_id"]))
    assert seen == ["kept"]


def test_with_a_broker_confirm_rows_are_marked_sent_only_once_the_broker_confirmed_them(factory):
    make_things(factory, "1", "2")
    sent = []

    def refuse():
        raise ConnectionError("no confirm from the broker")

    with pytest.raises(ConnectionError):
        relay_pending(factory, OutboxMessage, lambda name, body: sent.append(body["thing_id"]), confirm=refuse)
    assert sent == ["1", "2"]
    confirmed = []
    assert relay_pending(factory, OutboxMessage, lambda name, body: sent.append(body["thing_id"]),
                         confirm=lambda: confirmed.append(len(sent))) == 2  # published again, then confirmed once
    assert sent == ["1", "2", "1", "2"] and confirmed == [4]
    assert relay_pending(factory, OutboxMessage, lambda *a: None, confirm=lambda: None) == 0


def test_with_a_broker_confirm_a_failure_part_way_marks_only_what_the_broker_confirmed(factory):
    make_things(factory, "1", "2", "3")

    def flaky(name, body):
        if body["thing_id"] == "2":
            raise ConnectionError("broker down")

    with pytest.raises(ConnectionError):
        relay_pending(factory, OutboxMessage, flaky, confirm=lambda: None)
    seen = []
    assert relay_pending(factory, OutboxMessage, lambda name, body: seen.append(body["thing_id"])) == 2
    assert seen == ["2", "3"]
