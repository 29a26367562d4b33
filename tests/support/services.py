"""Start the machine's real services when they are installed but stopped, so tests run against real components."""
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
    if not _wait_for(host, port, 60):
        raise RuntimeError(f"RabbitMQ is not reachable on {host}:{port} and could not be started")
