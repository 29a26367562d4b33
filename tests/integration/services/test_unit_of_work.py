"""The unit of work on real databases: append-only rows staged with it are written at commit beside the outbox rows
(one statement on PostgreSQL), and the pool replaces connections the server closed, without a ping per checkout."""
import datetime as dt
import json

import pytest
from marshmallow import fields
from sqlalchemy import ForeignKey, Integer, String, create_engine, event, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.kernel.db import UtcDateTime, make_engine, make_session_factory
from services.kernel.events import EventSchema
from services.kernel.outbox import OutboxMixin, SqlUnitOfWork

NOW = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)


class Base(DeclarativeBase):
    pass


class Parcel(Base):
    __tablename__ = "parcel"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    label: Mapped[str] = mapped_column(String(20), unique=True)


class Scan(Base):
    __tablename__ = "scan"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    parcel_id: Mapped[int] = mapped_column(ForeignKey("parcel.id"))
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    place: Mapped[str] = mapped_column(String(20), default="depot")


class OutboxMessage(OutboxMixin, Base):
    __tablename__ = "outbox"


class ParcelScanned(EventSchema):
    parcel_id = fields.Integer(required=True)


SCHEMAS = {"parcel_scanned": ParcelScanned()}


@pytest.fixture
def engine(database_url):
    engine = make_engine(database_url)
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def uow(engine):
    return SqlUnitOfWork(make_session_factory(engine), OutboxMessage, SCHEMAS)


def stage_parcel_with_scans(uow, parcel_id: int, label: str, places=("dock", "van")) -> None:
    uow.add_rows(Parcel.__table__, [{"id": parcel_id, "label": label}])
    uow.add_rows(Scan.__table__, [{"parcel_id": parcel_id, "at": NOW, "place": place} for place in places])
    uow.add_rows(Scan.__table__, [{"parcel_id": parcel_id, "at": NOW}])  # place left to its Python default
    uow.emit("parcel_scanned", {"parcel_id": parcel_id})


def test_staged_rows_are_written_at_commit_beside_their_event(uow):
    with uow:
        stage_parcel_with_scans(uow, 7, "P-7")
        assert uow.session.scalar(select(func.count()).select_from(Parcel)) == 0  # nothing sent before commit
        uow.commit()
    with uow:
        assert uow.session.scalars(select(Parcel.label)).all() == ["P-7"]
        scans = uow.session.execute(select(Scan.parcel_id, Scan.place, Scan.at)).all()
        assert sorted((s.parcel_id, s.place, s.at) for s in scans) == [(7, "depot", NOW), (7, "dock", NOW),
                                                                       (7, "van", NOW)]
        outbox = uow.session.execute(select(OutboxMessage.event_type, OutboxMessage.created_at)).all()
        assert [row.event_type for row in outbox] == ["parcel_scanned"]
        assert outbox[0].created_at is not None  # the outbox's Python-side default applies in a combined insert


def test_staged_rows_are_dropped_by_a_rollback_or_by_leaving_without_commit(uow):
    with uow:
        stage_parcel_with_scans(uow, 1, "P-1")
        uow.rollback()
        stage_parcel_with_scans(uow, 2, "P-2")
        uow.commit()
    with uow:
        stage_parcel_with_scans(uow, 3, "P-3")  # leaves without commit
    with uow:
        assert uow.session.scalars(select(Parcel.id)).all() == [2]
        assert set(uow.session.scalars(select(Scan.parcel_id))) == {2}
        assert uow.session.scalar(select(func.count()).select_from(OutboxMessage)) == 1


def test_a_constraint_a_staged_row_breaks_surfaces_from_commit_and_nothing_of_it_is_written(uow):
    with uow:
        stage_parcel_with_scans(uow, 1, "same")
        uow.commit()
    with uow:
        stage_parcel_with_scans(uow, 2, "same")
        with pytest.raises(IntegrityError):
            uow.commit()
        uow.rollback()
    with uow:
        assert uow.session.scalars(select(Parcel.id)).all() == [1]
        assert set(uow.session.scalars(select(Scan.parcel_id))) == {1}
        assert uow.session.scalar(select(func.count()).select_from(OutboxMessage)) == 1


def test_commit_started_tells_whether_a_commit_was_sent(uow):
    with uow:
        stage_parcel_with_scans(uow, 1, "P-1")
        assert not uow.commit_started
        uow.commit()
    assert uow.commit_started


def test_several_events_staged_beside_rows_are_relayed_in_the_order_they_were_emitted(uow):
    with uow:
        stage_parcel_with_scans(uow, 1, "P-1")
        for parcel_id in (5, 4, 3, 2):
            uow.emit("parcel_scanned", {"parcel_id": parcel_id})
        uow.commit()
    with uow:
        rows = uow.session.scalars(select(OutboxMessage.payload).order_by(OutboxMessage.seq)).all()
    assert [json.loads(row)["parcel_id"] for row in rows] == [1, 5, 4, 3, 2]


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_on_postgresql_staged_rows_and_outbox_rows_reach_the_server_as_one_statement(engine, uow):
    statements = []
    event.listen(engine, "before_cursor_execute", lambda conn, cursor, statement, *args: statements.append(statement))
    with uow:
        stage_parcel_with_scans(uow, 5, "P-5")
        uow.commit()
    inserts = [s for s in statements if "INSERT" in s]
    assert len(inserts) == 1 and inserts[0].lstrip().startswith("WITH")
    with uow:
        assert uow.session.scalar(select(func.count()).select_from(Scan).where(Scan.parcel_id == 5)) == 3


def terminate_backends(admin_url: str, database: str) -> int:
    """Terminate every server process of `database` (as an operator or a restart would) and wait for them to exit."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            return conn.scalar(text(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) FROM pg_stat_activity"
                " WHERE datname = :database AND pid <> pg_backend_pid()"), {"database": database})
    finally:
        admin.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_pooled_connection_the_server_terminated_is_replaced_at_checkout_without_a_ping(engine, uow,
                                                                                        postgres_admin_url):
    assert not engine.pool._pre_ping  # liveness is checked without a round trip (services.kernel.db)
    with uow:
        first_pid = uow.session.scalar(text("SELECT pg_backend_pid()"))
    assert terminate_backends(postgres_admin_url, engine.url.database) >= 1
    statements = []
    event.listen(engine, "before_cursor_execute", lambda conn, cursor, statement, *args: statements.append(statement))
    with uow:
        assert uow.session.scalar(text("SELECT pg_backend_pid()")) != first_pid
        stage_parcel_with_scans(uow, 9, "P-9")
        uow.commit()
    assert statements[0] == "SELECT pg_backend_pid()"  # no failed attempt and no ping before it
