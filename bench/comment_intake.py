"""Comment intake over HTTP: citizens → gateway → consultation service (RPC) → database, beside a bare nameko baseline.

    .venv/bin/python bench/comment_intake.py                  # 32 clients, 10 s of each kind, SQLite then PostgreSQL
    .venv/bin/python bench/comment_intake.py --clients 50 --seconds 20 --databases sqlite
    .venv/bin/python bench/comment_intake.py --consultation-processes 2     # scale the service out

For each database the whole stack is started as processes (services.runner.Stack, as `balloon run` does) on free
loopback ports with its own RabbitMQ vhost and throw-away databases (a temporary SQLite file; a fresh PostgreSQL
database on the local server, dropped afterwards). N concurrent clients then POST comments to
/api/v1/policies/<id>/comments; the figure is acknowledged (201) comments per second of wall time with p50/p99
latency. Comment texts are the 495 real citizen messages of ../shared/data/comments/zh/附件2.csv (generated texts,
with a note, when the data folder is absent). Afterwards the stored comments are read back from the database and
compared with the acknowledged ones, id by id: any difference is a lost (or phantom) comment.

Baseline, measured in the same run: a bare nameko @http endpoint whose only work is one RPC round trip to a second
bare service (both started by this script as processes, same broker, same config and worker count), driven by the
same clients with the same bodies. Baseline and intake alternate in --rounds short rounds so a load spike from
elsewhere on a shared machine hits both alike. The CPU time each process used per accepted request (from /proc) is
printed too, to show where the cost goes, with that of the shared servers (every PostgreSQL and RabbitMQ process on
the machine, so other work running there shows up in them) and of this script's own client threads.

Rate limits stay ON. They allow one comment per 3 s per voter token *and* per client address, so a bench from one
address would measure the limiter saying 429, and there is no switch to turn them off (nor should a bench need one).
Instead every request comes from its own voter token and its own loopback source address (Linux routes all of
127.0.0.0/8 to lo): the limiter still runs its queries and records every attempt, as it does for real citizens.
The baseline connects the same way (one connection per request).
"""
from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import pathlib
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.client import HTTPConnection

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from nameko.rpc import RpcProxy, rpc  # noqa: E402
from nameko.web.handlers import http  # noqa: E402

POSTGRES_ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
RABBIT_API = os.environ.get("RABBIT_API_URI", "http://127.0.0.1:15672")
RABBIT_AUTH = ("guest", "guest")
BARE_PATH = "/bare/comments"
CITIZEN_MESSAGES = REPO.parent / "shared" / "data" / "comments" / "zh" / "附件2.csv"


# --- the baseline: a bare @http endpoint doing one RPC round trip ---------------------------------------------------


class BareEchoService:
    name = "bench_bare_echo"

    @rpc
    def echo(self, body):
        return body


class BareHttpService:
    name = "bench_bare_http"
    echo = RpcProxy("bench_bare_echo")

    @http("POST", BARE_PATH)
    def submit(self, request):
        return 201, self.echo.echo(request.get_data(as_text=True))


# --- load -----------------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SourceAddresses:
    """Distinct loopback source addresses, one per request: every request is a different citizen."""

    def __init__(self, second_octet: int):
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()
        self.second_octet = second_octet

    def next(self) -> str:
        with self._lock:
            n = next(self._numbers)
        return f"127.{self.second_octet}.{(n // 250) % 250}.{n % 250 + 1}"


def post(port: int, path: str, body: bytes, source: str, timeout: float = 30) -> tuple[int, bytes]:
    connection = HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=(source, 0))
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def load_texts() -> list[str]:
    """Real citizen messages from ../shared/data when present (redaction and duplicate checks see real text)."""
    if not CITIZEN_MESSAGES.is_file():
        print(f"note: {CITIZEN_MESSAGES} is absent; using generated comment texts")
        return [f"关于第{n % 3 + 1}条的第{n}号意见：建议在居民区周边增加夜间停车位，并公开收费标准。" for n in range(500)]
    with CITIZEN_MESSAGES.open(encoding="utf-8-sig", newline="") as handle:
        texts = [" ".join(row["留言详情"].split())[:5000] for row in csv.DictReader(handle)]
    return [text for text in texts if text]


TEXTS: list[str] = []


def comment_body(n: int) -> bytes:
    return json.dumps({
        "text": TEXTS[n % len(TEXTS)],
        "stance": ("support", "oppose", "neutral", "suggestion")[n % 4],
        "voter_token": uuid.uuid4().hex,
    }, ensure_ascii=False).encode()


def drive(port: int, path: str, clients: int, seconds: float, addresses: SourceAddresses) -> dict:
    """`clients` threads POST for `seconds`; returns throughput, latency percentiles and acknowledged bodies."""
    counter = itertools.count()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    acknowledged: list[bytes] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client():
        while time.monotonic() < deadline:
            n = next(counter)
            started = time.perf_counter()
            try:
                status, body = post(port, path, comment_body(n), addresses.next())
            except OSError:
                status, body = 0, b""
            elapsed = time.perf_counter() - started
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
                if status == 201:
                    latencies.append(elapsed)
                    acknowledged.append(body)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 60)
    return {"latencies": latencies, "wall": time.monotonic() - started, "statuses": statuses,
            "acknowledged": acknowledged}


def summarise(runs: list[dict]) -> dict:
    """Rounds of one kind merged: accepted per second of wall time, latency percentiles over every request."""
    latencies = sorted(value for run in runs for value in run["latencies"])
    wall = sum(run["wall"] for run in runs)
    statuses: dict[int, int] = {}
    for run in runs:
        for status, count in run["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    return {
        "accepted": len(latencies),
        "per_s": len(latencies) / wall if wall else 0.0,
        "p50_ms": 1000 * statistics.median(latencies) if latencies else float("nan"),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] if latencies else float("nan"),
        "statuses": statuses,
        "acknowledged": [body for run in runs for body in run["acknowledged"]],
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), to show where each comment's cost goes."""
    try:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# Shared servers and this script's own clients, by command name: their cost per request counts as much as ours.
MACHINE_PROCESSES = {"postgres": "postgres", "beam.smp": "rabbitmq"}


def machine_cpu() -> dict:
    """CPU seconds of the database server, the broker (all their processes) and this script's client threads."""
    totals = {name: 0.0 for name in MACHINE_PROCESSES.values()}
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if command in MACHINE_PROCESSES:
            totals[MACHINE_PROCESSES[command]] += cpu_seconds(int(entry.name))
    totals["clients"] = cpu_seconds(os.getpid())
    return totals


def cpu_of(processes: dict) -> dict:
    return {**{name: cpu_seconds(process.pid) for name, process in processes.items()}, **machine_cpu()}


# --- environment: broker vhost, databases, processes --------------------------------------------------------------


def make_vhost() -> str:
    import requests

    from services.machine import ensure_rabbitmq_management, ensure_rabbitmq_running

    ensure_rabbitmq_running()
    ensure_rabbitmq_management()
    name = f"tb-bench-{uuid.uuid4().hex[:8]}"
    requests.put(f"{RABBIT_API}/api/vhosts/{name}", auth=RABBIT_AUTH, timeout=10).raise_for_status()
    requests.put(f"{RABBIT_API}/api/permissions/{name}/guest", json={"configure": ".*", "write": ".*", "read": ".*"},
                 auth=RABBIT_AUTH, timeout=10).raise_for_status()
    return name


def drop_vhost(name: str) -> None:
    import requests

    requests.delete(f"{RABBIT_API}/api/vhosts/{name}", auth=RABBIT_AUTH, timeout=10)


class ThrowAwayPostgres:
    def __enter__(self) -> str:
        from sqlalchemy import create_engine, text

        from services.machine import ensure_postgres_running

        ensure_postgres_running()
        self.name = f"tb_bench_{uuid.uuid4().hex[:10]}"
        self.admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        return self.admin.url.set(database=self.name).render_as_string(hide_password=False)

    def __exit__(self, *exc):
        from sqlalchemy import text

        with self.admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                         {"n": self.name})
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}"'))
        self.admin.dispose()


def environment(vhost: str, var: pathlib.Path, consultation_url: str, port: int) -> dict:
    from services.runner import isolated_env

    return isolated_env(var, port, f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
                        CONSULTATION_DATABASE_URL=consultation_url, LOG_LEVEL="WARNING")


def start_bare_services(env: dict, port: int, log_dir: pathlib.Path) -> list[subprocess.Popen]:
    from services.config import DEFAULT_CONFIG_PATH

    bare_env = {**os.environ, **env, "GATEWAY_ADDRESS": f"127.0.0.1:{port}", "PYTHONPATH": str(REPO)}
    processes = []
    for service in ("BareEchoService", "BareHttpService"):
        log = open(log_dir / f"{service}.log", "ab")  # noqa: SIM115 - lives as long as the process
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "nameko", "run", "--config", str(DEFAULT_CONFIG_PATH), f"bench.comment_intake:{service}"],
            env=bare_env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
    return processes


def start_extra_consultation(env: dict, count: int, log_dir: pathlib.Path) -> dict[str, subprocess.Popen]:
    """More instances of the consultation service: nameko spreads RPC calls over every consumer of its queue."""
    from services.config import DEFAULT_CONFIG_PATH
    from services.runner import SERVICES

    extra = {}
    for index in range(2, count + 1):
        log = open(log_dir / f"consultation-{index}.log", "ab")  # noqa: SIM115 - lives as long as the process
        extra[f"consultation#{index}"] = subprocess.Popen(
            [sys.executable, "-m", "nameko", "run", "--config", str(DEFAULT_CONFIG_PATH), SERVICES["consultation"]],
            env={**os.environ, **env}, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return extra


def stop_processes(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for_bare(port: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if post(port, BARE_PATH, b"{}", "127.0.0.1", timeout=5)[0] == 201:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise TimeoutError("the bare baseline services did not answer")


def staff_session(base_url: str, consultation_url: str):
    import requests

    from consultation.events import EVENT_SCHEMAS
    from consultation.model import OutboxMessage
    from services.demo import DEMO_PASSWORD, DEMO_USER, ensure_demo_user
    from services.kernel.db import make_engine, make_session_factory
    from services.kernel.outbox import SqlUnitOfWork

    engine = make_engine(consultation_url)
    ensure_demo_user(lambda: SqlUnitOfWork(make_session_factory(engine), OutboxMessage, EVENT_SCHEMAS))
    engine.dispose()
    session = requests.Session()
    token = session.post(f"{base_url}/api/v1/auth/token", json={"username": DEMO_USER, "password": DEMO_PASSWORD},
                         timeout=30).json()["token"]
    session.headers["Authorization"] = f"Bearer {token}"
    return session


def open_policy(base_url: str, staff) -> int:
    import datetime as dt

    text = "第一条　为规范居民区停车管理，制定本办法。\n第二条　本办法适用于本市城区。\n第三条　夜间停车实行优惠。\n"
    created = staff.post(f"{base_url}/api/v1/staff/policies", json={
        "title": "居民区停车管理办法（征求意见稿）", "department": "市交通运输局", "text": text}, timeout=30)
    created.raise_for_status()
    policy_id = created.json()["policy_id"]
    close_at = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).isoformat()
    staff.post(f"{base_url}/api/v1/staff/policies/{policy_id}/open", json={"close_at": close_at},
               timeout=30).raise_for_status()
    return policy_id


def stored_comment_ids(consultation_url: str, policy_id: int) -> set[int]:
    from sqlalchemy import text

    from services.kernel.db import make_engine

    engine = make_engine(consultation_url)
    try:
        with engine.connect() as conn:
            return set(conn.scalars(text("SELECT id FROM comment WHERE policy_id = :p"), {"p": policy_id}))
    finally:
        engine.dispose()


# --- one database -------------------------------------------------------------------------------------------------


def run_on(database: str, consultation_url: str, args, second_octet: int) -> dict:
    from services.config import DEFAULT_CONFIG_PATH
    from services.runner import Stack

    vhost = make_vhost()
    var = pathlib.Path(tempfile.mkdtemp(prefix=f"tb-bench-{database}-"))
    gateway_port, bare_port = free_port(), free_port()
    env = environment(vhost, var, consultation_url, gateway_port)
    base_url = f"http://127.0.0.1:{gateway_port}"
    from services.runner import migrate

    migrate(env)
    stack = Stack(env=env, config_path=DEFAULT_CONFIG_PATH, log_dir=var / "log", cwd=REPO)
    bare = []
    try:
        stack.start()
        bare = start_bare_services(env, bare_port, var / "log")
        extra = start_extra_consultation(env, args.consultation_processes, var / "log")
        bare += list(extra.values())
        stack.wait_healthy(base_url, timeout=120)
        wait_for_bare(bare_port)
        staff = staff_session(base_url, consultation_url)
        policy_id = open_policy(base_url, staff)
        path = f"/api/v1/policies/{policy_id}/comments"
        addresses = SourceAddresses(second_octet)
        warm = min(args.clients, 8)
        warm_up = drive(gateway_port, path, warm, 1.0, addresses)  # lazy imports, first connections, caches
        drive(bare_port, BARE_PATH, warm, 1.0, addresses)
        services = {**stack.processes, **extra}
        processes = {**services, "bare_http": bare[1], "bare_echo": bare[0]}
        cpu = {name: 0.0 for name in cpu_of(processes)}
        shared = {"baseline": dict.fromkeys(machine_cpu(), 0.0), "intake": dict.fromkeys(machine_cpu(), 0.0)}
        baseline_runs, intake_runs = [], []
        # Alternate short rounds so a load spike from elsewhere on a shared machine hits both sides alike.
        for _ in range(args.rounds):
            for kind, runs, port, target, names in (
                    ("baseline", baseline_runs, bare_port, BARE_PATH, ("bare_http", "bare_echo")),
                    ("intake", intake_runs, gateway_port, path, tuple(services))):
                before = cpu_of(processes)
                runs.append(drive(port, target, args.clients, args.seconds / args.rounds, addresses))
                after = cpu_of(processes)
                for name in names:
                    cpu[name] += after[name] - before[name]
                for name in shared[kind]:
                    shared[kind][name] += after[name] - before[name]
        baseline, intake = summarise(baseline_runs), summarise(intake_runs)
        baseline["cpu_ms"] = {name: 1000 * cpu[name] / max(1, baseline["accepted"]) for name in ("bare_http",
                                                                                               "bare_echo")}
        intake["cpu_ms"] = {name: 1000 * cpu[name] / max(1, intake["accepted"]) for name in services}
        for kind, summary in (("baseline", baseline), ("intake", intake)):
            summary["shared_cpu_ms"] = {name: 1000 * seconds / max(1, summary["accepted"])
                                        for name, seconds in shared[kind].items()}
        time.sleep(0.5)
        stored = stored_comment_ids(consultation_url, policy_id)
        acknowledged_ids = {json.loads(body)["comment_id"] for body in intake["acknowledged"]}
        warm_ids = {json.loads(body)["comment_id"] for body in warm_up["acknowledged"]}
        return {"database": database, "consultation_processes": args.consultation_processes, "baseline": baseline, "intake": intake, "stored": stored,
                "acknowledged_ids": acknowledged_ids, "warm_ids": warm_ids}
    finally:
        stop_processes(bare)
        stack.stop()
        drop_vhost(vhost)
        shutil.rmtree(var, ignore_errors=True)


def report(result: dict, clients: int, seconds: float) -> bool:
    intake, baseline = result["intake"], result["baseline"]
    ratio = intake["per_s"] / baseline["per_s"] if baseline["per_s"] else float("nan")
    print(f"\n== {result['database']}: {clients} clients, {seconds:.0f} s of each kind in alternating rounds, "
          f"{result['consultation_processes']} consultation process(es) ==")
    print(f"{'':34}{'accepted/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'accepted':>10}")
    print(f"{'comment intake (gateway→service→db)':34}{intake['per_s']:12.1f}{intake['p50_ms']:10.1f}"
          f"{intake['p99_ms']:10.1f}{intake['accepted']:10d}")
    print(f"{'bare @http + one RPC (baseline)':34}{baseline['per_s']:12.1f}{baseline['p50_ms']:10.1f}"
          f"{baseline['p99_ms']:10.1f}{baseline['accepted']:10d}")
    print(f"ratio intake/baseline: throughput {ratio:.2f} (target ≥ 0.40), "
          f"p50 {intake['p50_ms'] / baseline['p50_ms']:.2f}x, p99 {intake['p99_ms'] / baseline['p99_ms']:.2f}x")
    print("CPU ms per accepted request: intake " + ", ".join(f"{k} {v:.1f}" for k, v in intake["cpu_ms"].items())
          + "; baseline " + ", ".join(f"{k} {v:.1f}" for k, v in baseline["cpu_ms"].items())
          + f"; machine has {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print("  shared servers and the bench's clients: intake "
          + ", ".join(f"{k} {v:.1f}" for k, v in intake["shared_cpu_ms"].items())
          + "; baseline " + ", ".join(f"{k} {v:.1f}" for k, v in baseline["shared_cpu_ms"].items()))
    other = {status: n for status, n in intake["statuses"].items() if status != 201}
    if other:
        print(f"non-201 answers during intake: {other}")
    # every 201 of the policy (warm-up included) must be a stored row, and every stored row an acknowledged one
    acknowledged = result["acknowledged_ids"] | result["warm_ids"]
    stored = result["stored"]
    lost, unacknowledged = acknowledged - stored, stored - acknowledged
    same = not lost and not unacknowledged
    print(f"stored comments {len(stored)} == acknowledged {len(acknowledged)} "
          f"({len(result['warm_ids'])} of them in the warm-up): {'yes' if same else 'NO'}; "
          f"lost {len(lost)}, stored but not acknowledged {len(unacknowledged)}")
    return same


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=32, help="concurrent HTTP clients (1..200, default 32)")
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="measured seconds of each kind, split over the rounds (1..120, default 10)")
    parser.add_argument("--rounds", type=int, default=4, help="alternating baseline/intake rounds (default 4)")
    parser.add_argument("--consultation-processes", type=int, default=1,
                        help="instances of the consultation service (default 1, as `balloon run` starts)")
    parser.add_argument("--databases", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= 200 or not 1 <= args.seconds <= 120 or not 1 <= args.rounds <= 20 \
            or not 1 <= args.consultation_processes <= 8:
        parser.error("--clients must be 1..200, --seconds 1..120, --rounds 1..20, --consultation-processes 1..8")
    TEXTS.extend(load_texts())
    ok = True
    for index, database in enumerate(d.strip() for d in args.databases.split(",") if d.strip()):
        second_octet = 100 + index
        if database == "sqlite":
            with tempfile.TemporaryDirectory(prefix="tb-bench-db-") as folder:
                result = run_on("sqlite", f"sqlite:///{pathlib.Path(folder) / 'consultation.sqlite3'}", args,
                                second_octet)
        elif database == "postgres":
            with ThrowAwayPostgres() as url:
                result = run_on("postgres", url, args, second_octet)
        else:
            parser.error(f"unknown database {database!r}")
        ok = report(result, args.clients, args.seconds) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
