"""The error table: a lost database connection is a 503 the client may retry, never a bare 500."""
from nameko.exceptions import deserialize, serialize

from services.gateway.errors import describe, register_remote_exceptions
from services.kernel.db import DatabaseUnavailable


def test_a_lost_database_connection_is_a_503_with_retry_after():
    status, body, headers = describe(DatabaseUnavailable("database connection lost while committing"), "en")
    assert status == 503
    assert body["error"]["code"] == "database_unavailable"
    assert headers["Retry-After"] == "1"


def test_the_remote_error_comes_back_as_its_own_type():
    register_remote_exceptions()
    rebuilt = deserialize(serialize(DatabaseUnavailable("database connection lost twice in one call")))
    assert isinstance(rebuilt, DatabaseUnavailable)
    assert describe(rebuilt)[0] == 503
