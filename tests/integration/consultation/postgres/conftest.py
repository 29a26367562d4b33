"""Re-run the consultation handler tests (tests/unit/consultation) on the real PostgreSQL server.

The unit suite runs them on SQLite. Creating a database per test would cost seconds each, so here one database is
made for the session and every table is emptied (ids restarted) before each test. DELETE is used rather than TRUNCATE
because TRUNCATE rewrites every table's files, which costs more than the tiny tables it empties; commits skip the
wait for the WAL flush (synchronous_commit off), which changes durability after a crash, not behaviour.
"""
import pytest
from sqlalchemy import text

from consultation.events import EVENT_SCHEMAS
from consultation.model import Base, OutboxMessage
from services.kernel.db import make_engine, make_session_factory
from services.kernel.outbox import SqlUnitOfWork
from tests.integration.conftest import _drop_postgres_database, _fresh_postgres_database


def pytest_collection_modifyitems(items):
    for item in items:
        if "consultation/postgres/" in item.path.as_posix():
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def consultation_postgres_engine(postgres_admin_url):
    admin, name, url = _fresh_postgres_database(postgres_admin_url)
    with admin.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    try:
        yield engine
    finally:
        engine.dispose()
        _drop_postgres_database(admin, name)


@pytest.fixture
def engine(consultation_postgres_engine):
    with consultation_postgres_engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
            if "id" in table.c and table.c.id.autoincrement is not False and table.c.id.type.python_type is int:
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), 1, false)"))
    return consultation_postgres_engine


@pytest.fixture
def uow(engine):
    return SqlUnitOfWork(make_session_factory(engine), OutboxMessage, EVENT_SCHEMAS)
