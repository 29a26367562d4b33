"""End-to-end fixtures: the whole stack started as processes (as `make run` does) on free ports, with its own
RabbitMQ vhost and its own SQLite files, driven over HTTP."""
import contextlib
import os
import socket
import uuid

import pytest
import requests

from services.config import DEFAULT_CONFIG_PATH
from services.machine import ensure_rabbitmq_management, ensure_rabbitmq_running
from services.runner import Stack, isolated_env, migrate

RABBIT_API = os.environ.get("RABBIT_API_URI", "http://127.0.0.1:15672")
RABBIT_AUTH = ("guest", "guest")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def fresh_vhost():
    """A RabbitMQ vhost of its own, so concurrent stacks never consume each other's messages."""
    ensure_rabbitmq_running()
    ensure_rabbitmq_management()
    name = f"tb-e2e-{uuid.uuid4().hex[:8]}"
    requests.put(f"{RABBIT_API}/api/vhosts/{name}", auth=RABBIT_AUTH, timeout=10).raise_for_status()
    requests.put(
        f"{RABBIT_API}/api/permissions/{name}/guest", json={"configure": ".*", "write": ".*", "read": ".*"},
        auth=RABBIT_AUTH, timeout=10,
    ).raise_for_status()
    try:
        yield name
    finally:
        requests.delete(f"{RABBIT_API}/api/vhosts/{name}", auth=RABBIT_AUTH, timeout=10)


@pytest.fixture(scope="session")
def vhost():
    with fresh_vhost() as name:
        yield name


@pytest.fixture(scope="session")
def stack_env(vhost, tmp_path_factory):
    var = tmp_path_factory.mktemp("var")
    port = free_port()
    env = isolated_env(var, port, f"amqp://guest:guest@127.0.0.1:5672/{vhost}", OUTBOX_RELAY_INTERVAL="0.3",
                       EVENT_RETRY_DELAYS="[0.5, 1, 2]", LOG_LEVEL="INFO")
    return {"env": env, "var": var, "base_url": f"http://127.0.0.1:{port}"}


@pytest.fixture(scope="session")
def stack(stack_env):
    env = stack_env["env"]
    migrate(env)
    running = Stack(env=env, config_path=DEFAULT_CONFIG_PATH, log_dir=stack_env["var"] / "log")
    running.base_url = stack_env["base_url"]
    running.start()
    try:
        running.wait_healthy(running.base_url, timeout=90)
        yield running
    finally:
        running.stop()


def consultation_unit_of_work(stack_env):
    """Direct access to the stack's consultation database, as an operator on the server has (`balloon users`)."""
    from consultation.events import EVENT_SCHEMAS
    from consultation.model import OutboxMessage
    from services.kernel.db import make_engine, make_session_factory
    from services.kernel.outbox import SqlUnitOfWork

    factory = make_session_factory(make_engine(stack_env["env"]["CONSULTATION_DATABASE_URL"]))
    return lambda: SqlUnitOfWork(factory, OutboxMessage, EVENT_SCHEMAS)


@pytest.fixture(scope="session")
def staff(stack, stack_env):
    """An HTTP session holding a bearer token of the demo user (all roles)."""
    from services.demo import DEMO_PASSWORD, DEMO_USER, ensure_demo_user

    ensure_demo_user(consultation_unit_of_work(stack_env))
    session = requests.Session()
    token = session.post(f"{stack.base_url}/api/v1/auth/token",
                         json={"username": DEMO_USER, "password": DEMO_PASSWORD}, timeout=30).json()["token"]
    session.headers["Authorization"] = f"Bearer {token}"
    return session
