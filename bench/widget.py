"""Widget throughput: the iframe page and the comment POST under 50 concurrent clients, beside a bare nameko @http
endpoint that makes one RPC round trip and nothing else, measured in the same run on the same machine.

    .venv/bin/python bench/widget.py                    # 10 s per scenario, 50 clients
    .venv/bin/python bench/widget.py --seconds 5 --clients 50

What runs: the whole stack as processes (as `make run` does) on free ports with its own RabbitMQ vhost and SQLite
files in a temporary folder, plus two tiny extra nameko services started by this script: `bench_echo` (one @rpc
that returns a constant) and `bench_bare_http` (GET /bare calls bench_echo.ping once and returns; GET /bare-norpc
returns at once). The bare services get the same config (max_workers, RPC timeout) as the gateway.

Clients: `--clients` green threads in this process, each with its own keep-alive HTTP connection on loopback, sending
one request after another for `--seconds` (after a 1 s warm-up that is not counted). Requests/s counts completed
responses of any status; p50/p99 are over all of them.

Comment POST and rate limits: the consultation service limits a submitter (voter token AND client address) to one
comment per 3 s and 30 per hour per policy, and there is no configuration switch to turn that off (none exists, so
this bench does not invent one). Every comment therefore comes with its own voter token over its own connection from
its own loopback source address (Linux routes all of 127.0.0.0/8 to lo): the limiter still runs its queries and
records every attempt, as it does for real citizens, but readers do not throttle each other. Any 429 that still
happens is counted separately. Because that means one TCP connection per comment, the baseline is also measured that
way (a second baseline row), and the POST is compared with both. Each client first loads the iframe page once for
its form token (CSRF), as a browser does. Page requests ask for gzip, as browsers do.
"""
from __future__ import annotations

import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import http.client  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402
from urllib.parse import urlencode  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from nameko.rpc import rpc  # noqa: E402
from nameko.web.handlers import http as http_entrypoint  # noqa: E402

from services.messaging import TimedRpcProxy  # noqa: E402

RABBIT_API = os.environ.get("RABBIT_API_URI", "http://127.0.0.1:15672")
RABBIT_AUTH = ("guest", "guest")


# --- the bare baseline: two tiny nameko services ------------------------------------------------------------------


class EchoService:
    name = "bench_echo"

    @rpc
    def ping(self):
        return "pong"


class BareHttpService:
    name = "bench_bare_http"
    echo = TimedRpcProxy("bench_echo")

    @http_entrypoint("GET", "/bare")
    def bare(self, request):
        return self.echo.ping()

    @http_entrypoint("GET", "/bare-norpc")
    def bare_norpc(self, request):
        return "pong"


# --- load generation ----------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Client:
    """One reader: a keep-alive connection from its own loopback address."""

    def __init__(self, port: int, index: int):
        self.port = port
        self.source = f"127.0.0.{2 + index}"
        self.connection = None

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                source: str | None = None):
        if source is not None:  # one connection from this address for this request only
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30, source_address=(source, 0))
            try:
                connection.request(method, path, body=body, headers={**(headers or {}), "Connection": "close"})
                response = connection.getresponse()
                return response.status, response.read()
            finally:
                connection.close()
        for attempt in (1, 2):
            if self.connection is None:
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30,
                                                             source_address=(self.source, 0))
            try:
                self.connection.request(method, path, body=body, headers=headers or {})
                response = self.connection.getresponse()
                data = response.read()
                if response.getheader("Connection", "").lower() == "close":
                    self.connection.close()
                    self.connection = None
                return response.status, data
            except (ConnectionError, http.client.HTTPException, OSError):
                self.connection.close()
                self.connection = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


_next_address = iter(range(1, 2**24))


def fresh_address() -> str:
    """A loopback address no request of this run has used (127.1.0.1, 127.1.0.2, …)."""
    while True:
        n = (1 << 16) + next(_next_address)
        if n & 0xFF not in (0, 255):
            return f"127.{(n >> 16) & 0xFF}.{(n >> 8) & 0xFF}.{n & 0xFF}"


def run_load(clients: list[Client], make_request, seconds: float, warmup: float = 1.0):
    """Every client sends requests back to back; returns (latencies in s, statuses, measured seconds)."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    start = time.perf_counter()
    measure_from = start + warmup
    stop_at = measure_from + seconds

    def worker(client: Client, index: int):
        sequence = 0
        while True:
            now = time.perf_counter()
            if now >= stop_at:
                return
            method, path, body, headers, *fresh = make_request(index, sequence)
            sequence += 1
            try:
                status, _ = client.request(method, path, body, headers, source=fresh_address() if fresh else None)
            except Exception:  # noqa: BLE001 - counted as a failure, the run carries on
                status = 0
            done = time.perf_counter()
            if now >= measure_from and done <= stop_at:
                latencies.append(done - now)
                statuses[status] = statuses.get(status, 0) + 1

    pool = eventlet.GreenPool(len(clients))
    for index, client in enumerate(clients):
        pool.spawn(worker, client, index)
    pool.waitall()
    return latencies, statuses, seconds


def summarise(name: str, latencies, statuses, seconds) -> dict:
    ordered = sorted(latencies)

    def percentile(p):
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] * 1000

    return {"name": name, "rps": len(ordered) / seconds, "p50": percentile(50), "p99": percentile(99),
            "statuses": dict(sorted(statuses.items())), "count": len(ordered),
            "mean": statistics.fmean(ordered) * 1000 if ordered else float("nan")}


# --- the stack ----------------------------------------------------------------------------------------------------


def start_everything(workdir: Path):
    import requests

    from services.config import DEFAULT_CONFIG_PATH
    from services.machine import ensure_rabbitmq_management, ensure_rabbitmq_running
    from services.runner import Stack, isolated_env, migrate

    ensure_rabbitmq_running()
    ensure_rabbitmq_management()
    vhost = f"tb-bench-widget-{uuid.uuid4().hex[:8]}"
    requests.put(f"{RABBIT_API}/api/vhosts/{vhost}", auth=RABBIT_AUTH, timeout=10).raise_for_status()
    requests.put(f"{RABBIT_API}/api/permissions/{vhost}/guest", json={"configure": ".*", "write": ".*", "read": ".*"},
                 auth=RABBIT_AUTH, timeout=10).raise_for_status()
    port, bare_port = free_port(), free_port()
    env = isolated_env(workdir, port, f"amqp://guest:guest@127.0.0.1:5672/{vhost}", LOG_LEVEL="WARNING")
    migrate(env)
    stack = Stack(env=env, config_path=DEFAULT_CONFIG_PATH, log_dir=workdir / "log", cwd=str(REPO))
    stack.start()
    bare_env = {**os.environ, **env, "GATEWAY_ADDRESS": f"127.0.0.1:{bare_port}"}
    bare = [subprocess.Popen([sys.executable, "-m", "nameko", "run", "--config", str(DEFAULT_CONFIG_PATH),
                              f"bench.widget:{cls}"], env=bare_env, cwd=str(REPO), start_new_session=True,
                             stdout=open(workdir / f"{cls}.log", "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115
            for cls in ("EchoService", "BareHttpService")]

    def stop():
        for process in bare:
            process.terminate()
        for process in bare:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        stack.stop()
        requests.delete(f"{RABBIT_API}/api/vhosts/{vhost}", auth=RABBIT_AUTH, timeout=10)

    base_url = f"http://127.0.0.1:{port}"
    try:
        stack.wait_healthy(base_url, timeout=120)
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{bare_port}/bare", timeout=5).text == "pong":
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the bare baseline services did not start; see " + str(workdir))
            time.sleep(0.5)
    except BaseException:
        stop()
        raise
    return base_url, port, bare_port, env, stop


def prepare_content(base_url: str, env: dict) -> tuple[int, str]:
    """A staff user, one open Chinese draft and a site key for loopback, through the real API."""
    from consultation.events import EVENT_SCHEMAS
    from consultation.model import OutboxMessage
    from services.demo import DemoClient, ensure_demo_site_key, ensure_demo_user
    from services.kernel.db import make_engine, make_session_factory
    from services.kernel.outbox import SqlUnitOfWork

    factory = make_session_factory(make_engine(env["CONSULTATION_DATABASE_URL"]))
    ensure_demo_user(lambda: SqlUnitOfWork(factory, OutboxMessage, EVENT_SCHEMAS))
    client = DemoClient(base_url)
    client.login()
    text = (REPO / "deploy" / "demo" / "policies" / "outpatient-insurance.zh.txt").read_text(encoding="utf-8")
    policy = client.call("POST", "/api/v1/staff/policies", json={
        "title": "职工基本医疗保险门诊费用报销管理办法（征求意见稿）", "summary": "基准测试用草案。",
        "department": "市医疗保障局", "topics": ["医保"], "language": "zh", "text": text})
    close_at = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).isoformat()
    client.call("POST", f"/api/v1/staff/policies/{policy['policy_id']}/open", json={"close_at": close_at})
    site = ensure_demo_site_key(client)
    return policy["policy_id"], site["key"]


# --- main ---------------------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (at most 200)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per scenario (at most 60)")
    args = parser.parse_args(argv)
    clients_n = max(1, min(args.clients, 200))
    seconds = max(1.0, min(args.seconds, 60.0))

    with tempfile.TemporaryDirectory(prefix="tb-bench-widget-") as folder:
        workdir = Path(folder)
        print("starting the stack and the bare baseline services ...", flush=True)
        base_url, port, bare_port, env, stop = start_everything(workdir)
        try:
            policy_id, site_key = prepare_content(base_url, env)
            frame_path = "/widget/frame?" + urlencode({"site": site_key, "policy": policy_id, "lang": "zh-CN"})
            results = []

            bare_clients = [Client(bare_port, i) for i in range(clients_n)]
            results.append(summarise("bare @http, no RPC", *run_load(
                bare_clients, lambda i, n: ("GET", "/bare-norpc", None, None), seconds)))
            results.append(summarise("bare @http + 1 RPC (baseline)", *run_load(
                bare_clients, lambda i, n: ("GET", "/bare", None, None), seconds)))

            clients = [Client(port, i) for i in range(clients_n)]
            browser_like = {"Accept-Encoding": "gzip, deflate, br", "Accept-Language": "zh-CN,zh;q=0.9"}
            results.append(summarise("widget iframe page", *run_load(
                clients, lambda i, n: ("GET", frame_path, None, browser_like), seconds)))
            results.append(summarise("gateway floor: static widget.js", *run_load(
                clients, lambda i, n: ("GET", "/widget.js", None, {"Accept-Encoding": "gzip"}), seconds)))
            results.append(summarise("bare + 1 RPC, new connection", *run_load(
                bare_clients, lambda i, n: ("GET", "/bare", None, None, "fresh"), seconds)))

            tokens = []
            for client in clients:  # each reader loads the page once for its form token, as a browser would
                status, page = client.request("GET", frame_path)
                match = re.search(rb'name="csrf" value="([^"]+)"', page)
                if status != 200 or not match:
                    raise RuntimeError(f"iframe page without a form token (status {status})")
                tokens.append(match.group(1).decode())
            run_id = uuid.uuid4().hex[:6]
            post_path = f"/widget/policies/{policy_id}/comments?" + urlencode({"site": site_key, "lang": "zh-CN"})
            headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Requested-With": "tb-widget",
                       "Origin": f"http://127.0.0.1:{port}"}

            def comment(index, sequence):
                body = urlencode({
                    "csrf": tokens[index], "voter_token": f"bench-{run_id}-reader-{index:04d}-{sequence:06d}",
                    "submission_id": f"bench-{run_id}-{index:04d}-{sequence:06d}", "stance": "suggestion",
                    "clause_number": "", "website": "",
                    "text": f"建议提高门诊报销比例，简化异地就医备案手续。读者{index}第{sequence}条（{run_id}）",
                }).encode()
                return "POST", post_path, body, headers, "fresh"

            results.append(summarise("widget comment POST", *run_load(clients, comment, seconds)))
        finally:
            stop()

    baseline = results[1]
    print()
    print(f"{clients_n} concurrent clients, {seconds:.0f} s per scenario, loopback, {os.cpu_count()} CPUs "
          "shared by clients, services and RabbitMQ")
    print(f"{'scenario':<32}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'req/s ÷ base':>14}{'p99 ÷ base':>12}  statuses")
    for row in results:
        print(f"{row['name']:<32}{row['rps']:>9.0f}{row['p50']:>9.1f}{row['p99']:>9.1f}"
              f"{row['rps'] / baseline['rps']:>14.2f}{row['p99'] / baseline['p99']:>12.2f}  {row['statuses']}")
    frame_row, fresh_baseline, post_row = results[2], results[4], results[5]
    accepted = post_row["statuses"].get(200, 0)
    limited = post_row["statuses"].get(429, 0)
    print()
    print(f"comment POST: {accepted / seconds:.0f} accepted/s ({accepted} accepted, {limited} rate-limited 429, "
          f"{post_row['count'] - accepted - limited} other); against the new-connection baseline "
          f"{post_row['rps'] / fresh_baseline['rps']:.2f}x req/s, p99 {post_row['p99']:.1f} vs "
          f"{fresh_baseline['p99']:.1f} ms")
    print(f"target iframe page ≥ 2.0x baseline req/s with lower p99: "
          f"{frame_row['rps'] / baseline['rps']:.2f}x, p99 {frame_row['p99']:.1f} vs {baseline['p99']:.1f} ms → "
          f"{'met' if frame_row['rps'] >= 2 * baseline['rps'] and frame_row['p99'] < baseline['p99'] else 'NOT met'}")
    print(f"target comment POST ≥ 0.4x baseline req/s: {post_row['rps'] / baseline['rps']:.2f}x → "
          f"{'met' if post_row['rps'] >= 0.4 * baseline['rps'] else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
