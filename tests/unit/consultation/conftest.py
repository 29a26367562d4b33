import pytest

from .factories import Clock, make_uow


@pytest.fixture
def uow(tmp_path):
    """A unit of work on a fresh SQLite file (the embedded default database; PostgreSQL runs in integration)."""
    return make_uow(f"sqlite:///{tmp_path / 'consultation.sqlite3'}")


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture(autouse=True)
def cheap_password_hashing():
    """argon2 with production parameters costs ~0.4 s per hash here; the algorithm under test stays argon2id."""
    from argon2 import PasswordHasher

    from consultation import accounts

    original = accounts._hasher
    accounts.use_password_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    yield
    accounts.use_password_hasher(original)
