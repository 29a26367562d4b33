"""Feed ingestion speed: the whole newsfeed pipeline beside plain feedparser and the `reader` library, same run.

    .venv/bin/python bench/ingest.py                 # at least 20,000 items
    .venv/bin/python bench/ingest.py --items 3000    # quick run

Corpus: every feed file of ../shared/data/feeds (rss-parser and feedjira samples, rssant's Chinese feeds including its
failed and HTML-instead-of-feed cases, the charset samples, JSON Feeds) served by a local HTTP server, the whole set
repeated until --items entries are on offer. Each copy rewrites GUIDs, ids and links (a "/c<k>" suffix) so every item
has its own identity; the text stays the same, so copies after the first are found as syndicated near-duplicates.

Measured, each in a fresh child process so peak memory (ru_maxrss) belongs to that run alone:
  pipeline   newsfeed.handlers.poll_feed for every feed, --workers feeds at once (as the service polls): HTTP
             fetch, decoding, parse (feedparser, its sanitiser off), normalise, nh3 sanitising, dedupe (GUID/URL
             lookups and MinHash near-duplicates), SQLite storage and one outbox event per new article.
  feedparser plain feedparser.parse() with default settings (its sanitiser and URI resolver on) over the same
             bytes, already in memory (no HTTP, no storage): the parsing floor the pipeline has to beat.
  reader     reader.make_reader() on a temporary database, add_feed() for every URL, then
             update_feeds(workers=--workers) from the same server.
Items/s counts the entries each tool produced. Targets: pipeline >= 2x reader, pipeline >= feedparser.

Reads ../shared/data relative to the repository; says so and exits 2 when it is absent.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import queue
import re
import resource
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DATA = Path(os.environ.get("TRIAL_BALLOON_DATA", REPO.parent / "shared" / "data"))
FEEDS = DATA / "feeds"
NOT_FEEDS = ("output", "fulltext")  # rss-parser's expected JSON, and full-text web pages

_XML_IDENTITY = re.compile(rb"(<(guid|id|link)(?:\s[^>]*)?>)(\s*(?:<!\[CDATA\[)?\s*)([^<\]\s]+)")
_XML_HREF = re.compile(rb"(<link\b[^>]*?\bhref\s*=\s*)([\"'])([^\"']+)\2")
_RDF_ABOUT = re.compile(rb"(\brdf:about\s*=\s*)([\"'])([^\"']+)\2")
_JSON_IDENTITY = re.compile(rb"(\"(?:id|url|external_url)\"\s*:\s*\")([^\"]+)(\")")


def feed_files() -> list[Path]:
    return sorted(
        path for path in FEEDS.rglob("*")
        if path.is_file() and path.name != "SOURCE.txt" and not set(NOT_FEEDS) & set(path.relative_to(FEEDS).parts)
    )


def rewrite_identity(document: bytes, copy: int, is_json: bool) -> bytes:
    """The same feed with every GUID, id and link made unique to this copy."""
    suffix = f"/c{copy}".encode()
    if is_json:
        return _JSON_IDENTITY.sub(lambda m: m.group(1) + m.group(2) + suffix + m.group(3), document)
    document = _XML_IDENTITY.sub(lambda m: m.group(1) + m.group(3) + m.group(4) + suffix, document)
    document = _XML_HREF.sub(lambda m: m.group(1) + m.group(2) + m.group(3) + suffix + m.group(2), document)
    return _RDF_ABOUT.sub(lambda m: m.group(1) + m.group(2) + m.group(3) + suffix + m.group(2), document)


def count_entries(document: bytes) -> int:
    from newsfeed.exceptions import FeedRejected
    from newsfeed.parse import parse_feed

    try:
        return len(parse_feed(document).entries)
    except FeedRejected:
        return 0


def build_corpus(wanted_items: int) -> dict[str, tuple[bytes, str]]:
    """path → (body, content type), the whole set of files repeated until `wanted_items` entries are on offer."""
    sources = [(path, path.read_bytes()) for path in feed_files()]
    per_round = sum(count_entries(body) for _, body in sources)
    if per_round == 0:
        raise SystemExit("no usable entries in the feed files")
    copies = max(1, -(-wanted_items // per_round))
    corpus = {}
    for copy in range(copies):
        for path, body in sources:
            is_json = path.suffix == ".json"
            name = path.relative_to(FEEDS).as_posix().replace(":", "_")
            content_type = "application/feed+json" if is_json else "application/xml"
            corpus[f"/c{copy}/{name}"] = (rewrite_identity(body, copy, is_json), content_type)
    return corpus


class CorpusServer:
    """Serves the corpus on 127.0.0.1 from memory, with a thread per connection."""

    def __init__(self, corpus: dict[str, tuple[bytes, str]]):
        routes = corpus

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_):
                pass

            def do_GET(self):
                found = routes.get(self.path)
                body, content_type = found if found else (b"not found", "text/plain")
                self.send_response(200 if found else 404)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *_):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


# -- the three measured runs (each in its own process) ---------------------------------------------------------------


def run_pipeline(job: tuple[list[str], int], results) -> None:
    urls, workers = job
    import datetime as dt

    from sqlalchemy import func, select

    from newsfeed import handlers
    from newsfeed.events import EVENT_SCHEMAS
    from newsfeed.fetch import Fetcher, FetchPolicy
    from newsfeed.model import Feed, OutboxMessage, create_schema
    from services.kernel.db import make_engine, make_session_factory
    from services.kernel.outbox import SqlUnitOfWork

    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{folder}/newsfeed.sqlite3")
        create_schema(engine)
        session_factory = make_session_factory(engine)

        def uow_for():
            return SqlUnitOfWork(session_factory, OutboxMessage, EVENT_SCHEMAS)

        uow = uow_for()
        now = dt.datetime.now(dt.UTC)
        with uow:
            feeds = [Feed(url=url, title="", outlet="", next_poll_at=now) for url in urls]
            uow.session.add_all(feeds)
            uow.session.flush()
            feed_ids = [feed.id for feed in feeds]
            uow.commit()
        totals = {"new": 0, "updated": 0, "unchanged": 0, "duplicates": 0, "syndicated": 0, "failed": 0}
        with Fetcher(FetchPolicy(per_host_concurrency=workers)) as fetcher, ThreadPoolExecutor(workers) as pool:
            started, cpu_started = time.perf_counter(), time.process_time()
            # A few feeds in flight at once, as the service polls them (it uses green threads): fetching one overlaps
            # parsing another. Each poll has its own unit of work (session).
            outcomes = pool.map(lambda feed_id: handlers.poll_feed(uow_for(), feed_id, fetcher, now=now), feed_ids)
            for outcome in outcomes:
                if outcome.status == "failed":
                    totals["failed"] += 1
                for key in ("new", "updated", "unchanged", "duplicates", "syndicated"):
                    totals[key] += getattr(outcome, key)
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        with uow:
            events = uow.session.scalar(select(func.count()).select_from(OutboxMessage))
        engine.dispose()
    items = totals["new"] + totals["updated"] + totals["unchanged"] + totals["duplicates"]
    results.put({"items": items, "seconds": elapsed, "cpu": cpu, "peak_mb": peak_rss_mb(), "events": events, **totals})


def run_feedparser(documents: list[bytes], results) -> None:
    import feedparser

    started, cpu_started = time.perf_counter(), time.process_time()
    items = sum(len(feedparser.parse(document).entries) for document in documents)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    results.put({"items": items, "seconds": elapsed, "cpu": cpu, "peak_mb": peak_rss_mb()})


def run_reader(job: tuple[list[str], int], results) -> None:
    urls, workers = job
    import logging
    import warnings

    from reader import make_reader

    # The failed and HTML feeds are expected to fail, and reader warns about entries without ids; keep output readable.
    logging.getLogger("reader").setLevel(logging.CRITICAL)
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as folder:
        reader = make_reader(f"{folder}/reader.sqlite3")
        for url in urls:
            reader.add_feed(url)
        started, cpu_started = time.perf_counter(), time.process_time()
        reader.update_feeds(workers=workers)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        items = reader.get_entry_counts().total
        reader.close()
    results.put({"items": items, "seconds": elapsed, "cpu": cpu, "peak_mb": peak_rss_mb()})


def rate(run: dict, clock: str) -> float:
    return run["items"] / run[clock] if run[clock] else float("inf")


def report(name: str, run: dict, note: str = "") -> None:
    print(f"{name:10} {run['items']:>7} {run['seconds']:>8.2f} {rate(run, 'seconds'):>8.0f} {run['cpu']:>8.2f} "
          f"{rate(run, 'cpu'):>11.0f} {run['peak_mb']:>8.0f}  {note}", flush=True)


def measure(target, argument) -> dict:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    process = context.Process(target=target, args=(argument, results))
    process.start()
    while True:
        try:
            outcome = results.get(timeout=1)
            break
        except queue.Empty:
            if not process.is_alive():
                raise SystemExit(f"{target.__name__} failed (exit code {process.exitcode}); see its error above") from None
    process.join()
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=20_000, help="entries on offer (default 20,000)")
    parser.add_argument("--workers", type=int, default=4, help="feeds fetched at once, pipeline and reader alike")
    parser.add_argument("--skip-reader", action="store_true", help="leave out the reader library run")
    args = parser.parse_args(argv)
    if not FEEDS.is_dir():
        print(f"bench/ingest.py: the feed data folder {FEEDS} is absent (expected ../shared/data beside the "
              "repository, or TRIAL_BALLOON_DATA)", file=sys.stderr)
        return 2

    corpus = build_corpus(args.items)
    paths = sorted(corpus)
    print(f"corpus: {len(paths)} feed documents, {sum(len(body) for body, _ in corpus.values()) / 1e6:.1f} MB, "
          f"served from 127.0.0.1; load average before: {os.getloadavg()[0]:.1f}", flush=True)
    print(f"{'':10} {'items':>7} {'wall s':>8} {'items/s':>8} {'cpu s':>8} {'items/cpu-s':>11} {'peak MB':>8}")
    runs = {}
    with CorpusServer(corpus) as server:
        urls = [server.url(path) for path in paths]
        runs["pipeline"] = measure(run_pipeline, (urls, args.workers))
        report("pipeline", runs["pipeline"])
        pipeline = runs["pipeline"]
        print(f"{'':10} new {pipeline['new']} (syndicated copies {pipeline['syndicated']}), duplicates "
              f"{pipeline['duplicates']}, feeds rejected {pipeline['failed']}, outbox events {pipeline['events']}")
        runs["feedparser"] = measure(run_feedparser, [corpus[path][0] for path in paths])
        report("feedparser", runs["feedparser"], "parse only, default settings, bytes already in memory")
        if not args.skip_reader:
            runs["reader"] = measure(run_reader, (urls, args.workers))
            report("reader", runs["reader"], f"update_feeds(workers={args.workers}) into its own SQLite")
    print(f"load average after: {os.getloadavg()[0]:.1f} (2 cores; wall-clock rates suffer when it is high, "
          "CPU-time rates much less)")
    for baseline, target in (("feedparser", 1.0), ("reader", 2.0)):
        if baseline not in runs:
            continue
        wall = rate(pipeline, "seconds") / rate(runs[baseline], "seconds")
        cpu = rate(pipeline, "cpu") / rate(runs[baseline], "cpu")
        print(f"ratio pipeline / {baseline:10}  wall {wall:5.2f}x   cpu {cpu:5.2f}x   (target >= {target:g}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
