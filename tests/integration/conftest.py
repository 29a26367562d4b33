"""Fixtures for integration tests: real databases (SQLite and PostgreSQL) and the real RabbitMQ broker."""
import os
import uuid

import pytest
from sqlalchemy import create_engine, text

from services.machine import ensure_postgres_running

POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def postgres_admin_url():
    ensure_postgres_running()
    return POSTGRES_ADMIN_URL


def _fresh_postgres_database(admin_url):
    name = f"tb_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    return admin, name, url


def _drop_postgres_database(admin, name):
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name})
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    """A URL to a new, empty database: a SQLite file, then the real PostgreSQL server. Dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.sqlite3'}"
        return
    admin_url = request.getfixturevalue("postgres_admin_url")
    admin, name, url = _fresh_postgres_database(admin_url)
    try:
        yield url
    finally:
        _drop_postgres_database(admin, name)
