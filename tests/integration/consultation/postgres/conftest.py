"""Re-run the consultation handler tests (tests/unit/consultation) on the real PostgreSQL server.

The unit suite runs them on SQLite. Creating a database per test would cost seconds each, so here one database is
made for the session and every table is truncated (identities restarted) before each test.
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
        if "consultation/postgres/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def consultation_postgres_engine(postgres_admin_url):
    admin, name, url = _fresh_postgres_database(postgres_admin_url)
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    try:
        yield engine
    finally:
        engine.dispose()
        _drop_postgres_database(admin, name)


@pytest.fixture
def engine(consultation_postgres_engine):
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    with consultation_postgres_engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    return consultation_postgres_engine


@pytest.fixture
def uow(engine):
    return SqlUnitOfWork(make_session_factory(engine), OutboxMessage, EVENT_SCHEMAS)
