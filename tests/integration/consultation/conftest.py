import pytest

from consultation.events import EVENT_SCHEMAS
from consultation.model import Base, OutboxMessage
from services.kernel.db import make_engine, make_session_factory
from services.kernel.outbox import SqlUnitOfWork
from tests.unit.consultation.factories import Clock


@pytest.fixture
def engine(database_url):
    """The consultation schema on a fresh SQLite file, then on a fresh real PostgreSQL database."""
    engine = make_engine(database_url)
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def uow(engine):
    return SqlUnitOfWork(make_session_factory(engine), OutboxMessage, EVENT_SCHEMAS)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture(autouse=True)
def cheap_password_hashing():
    """argon2id with small parameters: production ones cost ~0.4 s per hash on this machine."""
    from argon2 import PasswordHasher

    from consultation import accounts

    original = accounts._hasher
    accounts.use_password_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    yield
    accounts.use_password_hasher(original)
