"""`balloon run` (what `make run` starts) as a user meets it: it prints the URLs, the demo is searchable, Ctrl-C stops
every process it started, and a second run does not duplicate the demo content."""
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest
import requests

from services.config import DEFAULT_CONFIG_PATH
from tests.e2e.conftest import free_port, fresh_vhost

pytestmark = pytest.mark.rabbit
BALLOON = [sys.executable, "-m", "services.cli"]


def nameko_processes_in(folder: pathlib.Path) -> list[int]:
    pids = []
    for proc in pathlib.Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if b"nameko" in cmdline and cwd == str(folder):
            pids.append(int(proc.name))
    return pids


def start_run(folder, env, port):
    process = subprocess.Popen(
        [*BALLOON, "run", "--port", str(port)], cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "Press Ctrl-C" in line:
            return process, "".join(lines)
    process.kill()
    raise AssertionError("balloon run did not come up:\n" + "".join(lines))


def stop_run(process):
    process.send_signal(signal.SIGINT)
    process.wait(60)


@pytest.fixture
def run_env(tmp_path):
    with fresh_vhost() as vhost:
        env = {**os.environ, "AMQP_URI": f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
               "TRIAL_BALLOON_CONFIG": str(DEFAULT_CONFIG_PATH), "OUTBOX_RELAY_INTERVAL": "0.3"}
        env.pop("GATEWAY_ADDRESS", None)
        yield env


def test_balloon_run_serves_the_demo_and_stops_cleanly_and_is_idempotent(tmp_path, run_env):
    port = free_port()
    base = f"http://localhost:{port}"
    process, output = start_run(tmp_path, run_env, port)
    try:
        assert f"{base}/healthz" in output and "demo content: 2 policies" in output
        assert requests.get(f"{base}/healthz", timeout=30).status_code == 200

        def demo_found():
            hits = requests.get(f"{base}/api/v1/search", params={"q": "医保", "doc_type": "policy"}, timeout=30).json()
            return hits["total"] >= 1

        deadline = time.monotonic() + 60
        while not demo_found():
            assert time.monotonic() < deadline, "demo policy never became searchable"
            time.sleep(0.5)
        assert len(nameko_processes_in(tmp_path)) == 4
    finally:
        stop_run(process)
    assert process.returncode == 0
    assert nameko_processes_in(tmp_path) == []

    process, output = start_run(tmp_path, run_env, port)
    try:
        assert "0 policies and 0 feeds added (2 policies were there already)" in output
        policies = requests.get(f"{base}/api/v1/policies", timeout=30).json()
        assert policies["total"] == 2
    finally:
        stop_run(process)
    assert nameko_processes_in(tmp_path) == []
