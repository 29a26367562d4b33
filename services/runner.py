"""Starting and stopping the whole stack as processes: used by `balloon run` and by the end-to-end tests."""
from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time
import uuid

import requests

SERVICES = {
    "consultation": "services.consultation_service:ConsultationService",
    "newsfeed": "services.newsfeed_service:NewsfeedService",
    "search": "services.search_service:SearchService",
    "gateway": "services.gateway.service:GatewayService",
}


def isolated_env(var_dir: pathlib.Path, port: int, amqp_uri: str, **overrides: str) -> dict:
    """Variables for a stack of its own (tests, benchmarks): its own SQLite files, gateway port and broker vhost."""
    var_dir = pathlib.Path(var_dir)
    return {
        "AMQP_URI": amqp_uri,
        "GATEWAY_ADDRESS": f"127.0.0.1:{port}",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "CONSULTATION_DATABASE_URL": f"sqlite:///{var_dir / 'consultation.sqlite3'}",
        "NEWSFEED_DATABASE_URL": f"sqlite:///{var_dir / 'newsfeed.sqlite3'}",
        "SEARCH_DATABASE_URL": f"sqlite:///{var_dir / 'search.sqlite3'}",
        "SEARCH_EMBEDDED_PATH": str(var_dir / "search-index.sqlite3"),
        "SEARCH_BACKEND": "embedded",
        "SECRET_KEY": uuid.uuid4().hex,
        **overrides,
    }


def migrate(env: dict) -> None:
    """Migrate the databases that `env` configures (its variables override the process environment meanwhile)."""
    from services.config import load_config
    from services.migrations import upgrade_all

    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        upgrade_all(load_config()["DATABASES"])
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class Stack:
    """The four nameko services as child processes sharing one environment (config comes from env variables)."""

    def __init__(self, env: dict, config_path: str | os.PathLike, log_dir: str | os.PathLike, cwd=None):
        self.env = {**os.environ, **env}
        self.config_path = str(config_path)
        self.log_dir = pathlib.Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.cwd = cwd
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, *names: str):
        for name in names or tuple(SERVICES):
            log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop()
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "nameko", "run", "--config", self.config_path, SERVICES[name]],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.cwd,
                start_new_session=True,  # Ctrl-C in a terminal reaches the runner, which stops children in order
            )
            self.processes[name]._tb_log = log

    def stop(self, *names: str, timeout: float = 15):
        for name in names or tuple(self.processes):
            process = self.processes.pop(name, None)
            if process is None:
                continue
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            process._tb_log.close()

    def kill(self, name: str):
        """Stop a service abruptly, as a crash would."""
        process = self.processes.pop(name)
        process.kill()
        process.wait()
        process._tb_log.close()

    def exited(self) -> dict[str, int]:
        return {name: p.returncode for name, p in self.processes.items() if p.poll() is not None}

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.log_dir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def wait_healthy(self, base_url: str, timeout: float = 90) -> dict:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            crashed = self.exited()
            if crashed:
                name = next(iter(crashed))
                raise RuntimeError(f"service {name} exited with {crashed[name]}:\n{self.log_tail(name)}")
            try:
                response = requests.get(f"{base_url}/healthz", timeout=5)
                last = response.json()
                if response.status_code == 200:
                    return last
            except (requests.RequestException, ValueError) as exc:
                last = str(exc)
            time.sleep(0.5)
        raise TimeoutError(f"the stack did not become healthy within {timeout:.0f}s: {last}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
