"""Start the machine's real services (RabbitMQ, PostgreSQL) when they are installed but stopped."""
import shutil
import socket
import subprocess
import time


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _wait_for(host, port, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if port_open(host, port):
            return True
        time.sleep(0.5)
    return False


def ensure_postgres_running(host="127.0.0.1", port=5432):
    if port_open(host, port):
        return
    if shutil.which("pg_ctlcluster") and shutil.which("pg_lsclusters"):
        versions = subprocess.run(["ls", "/etc/postgresql"], capture_output=True, text=True).stdout.split()
        for version in versions:
            subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], check=False)
    if not _wait_for(host, port, 30):
        raise RuntimeError(f"PostgreSQL is not reachable on {host}:{port} and could not be started")


def ensure_rabbitmq_running(host="127.0.0.1", port=5672):
    if port_open(host, port):
        return
    if shutil.which("rabbitmq-server"):
        subprocess.run(["rabbitmq-server", "-detached"], check=False)
    elif not port_open(host, port):
        raise RuntimeError(rabbitmq_hint(host, port))
    if not _wait_for(host, port, 60):
        raise RuntimeError(f"RabbitMQ is not reachable on {host}:{port} and could not be started")


def rabbitmq_hint(host: str, port: int) -> str:
    return (
        f"RabbitMQ is not reachable on {host}:{port} and no rabbitmq-server is installed here: install it "
        "(apt-get install rabbitmq-server) or start one with `docker compose up -d rabbitmq`, then run this again."
    )


def ensure_rabbitmq_management():
    """nameko's test fixtures make a vhost per test through the management API (port 15672)."""
    if port_open("127.0.0.1", 15672):
        return
    if shutil.which("rabbitmq-plugins"):
        subprocess.run(["rabbitmq-plugins", "enable", "rabbitmq_management"], check=False, capture_output=True)
    if not _wait_for("127.0.0.1", 15672, 60):
        raise RuntimeError("the RabbitMQ management API (port 15672) is not reachable")
