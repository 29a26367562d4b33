"""A real HTTP server on 127.0.0.1 for tests that fetch feeds.

Plain ``http.server.ThreadingHTTPServer`` in a ``threading.Thread``. tests/conftest.py monkey-patches eventlet before this
module is imported, so those threads are green threads and the server's sockets green sockets: the server and the code
under test take turns on one OS thread, and ``time.sleep`` in a handler yields instead of blocking everything.

Usage::

    def test_something(feed_server):
        feed_server.serve("/feed.xml", b"<rss/>", etag='"v1"')
        feed_server.redirect("/old", "/feed.xml", status=301)
        feed_server.error("/busy", 429, retry_after="120")
        result = fetcher.fetch(feed_server.url("/feed.xml"))
        assert feed_server.requests_to("/feed.xml")[0].headers["user-agent"] == ...

Every request is recorded (method, path, lower-cased headers). The server also counts requests in flight at once,
per ``Host`` header, and how many body bytes it managed to write per path, so tests can prove a client stopped early.
"""
from __future__ import annotations

import email.utils
import gzip
import http.server
import threading
import time
from dataclasses import dataclass, field

import pytest

RSS_CONTENT_TYPE = "application/rss+xml; charset=utf-8"
FILLER = b"x" * 65536
_ALL_HOSTS = "*"  # in-flight counter key for every host together


@dataclass
class Route:
    """How the server answers one path."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None  # sent, and a matching If-None-Match gets 304
    last_modified: str | None = None  # sent, and an If-Modified-Since at or after it gets 304
    gzip: bool = False  # send the body gzip-encoded (Content-Encoding: gzip)
    delay_before_headers: float = 0.0  # seconds of silence before the status line
    delay_between_chunks: float = 0.0  # seconds of silence between body chunks
    chunk_size: int = 65536
    send_content_length: bool = True  # False: close-delimited body, the client cannot know the size up front
    declared_length: int | None = None  # a Content-Length to announce instead of the real one
    filler_bytes: int = 0  # this many filler bytes after ``body``, generated on the fly (oversize bodies)
    hold_seconds: float = 0.0  # keep the request in flight this long before answering (concurrency tests)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]


class FeedServer:
    """Routes, recordings and counters of one running test server."""

    def __init__(self) -> None:
        self._routes: dict[str, Route] = {}
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._in_flight: dict[str, int] = {}
        self._max_in_flight: dict[str, int] = {}
        self._bytes_sent: dict[str, int] = {}
        self._httpd: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------------------------------

    def start(self) -> FeedServer:
        handler = type("BoundFeedRequestHandler", (_FeedRequestHandler,), {"feed_server": self})
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="feed-test-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    # -- routes -------------------------------------------------------------------------------------------------------

    def add(self, path: str, route: Route | None = None, **fields) -> Route:
        route = route if route is not None else Route(**fields)
        with self._lock:
            self._routes[path] = route
        return route

    def serve(self, path: str, body: bytes, content_type: str = RSS_CONTENT_TYPE, **fields) -> Route:
        headers = {"Content-Type": content_type, **fields.pop("headers", {})}
        return self.add(path, body=body, headers=headers, **fields)

    def redirect(self, path: str, location: str, status: int = 301) -> Route:
        return self.add(path, status=status, headers={"Location": location}, body=b"moved")

    def error(self, path: str, status: int, retry_after: str | None = None, body: bytes = b"error") -> Route:
        headers = {"Content-Type": "text/plain"}
        if retry_after is not None:
            headers["Retry-After"] = retry_after
        return self.add(path, status=status, headers=headers, body=body)

    def route(self, path: str) -> Route | None:
        with self._lock:
            return self._routes.get(path)

    # -- observations -------------------------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [request for request in self.requests if request.path == path]

    def max_in_flight(self, host: str | None = None) -> int:
        """Most requests in flight at once for one Host header (``127.0.0.1:<port>`` by default)."""
        with self._lock:
            return self._max_in_flight.get(host or f"127.0.0.1:{self.port}", 0)

    def max_in_flight_overall(self) -> int:
        """Most requests in flight at once, whatever the Host header."""
        with self._lock:
            return self._max_in_flight.get(_ALL_HOSTS, 0)

    def bytes_sent(self, path: str) -> int:
        """Body bytes the server wrote for ``path`` before finishing or the client hung up."""
        with self._lock:
            return self._bytes_sent.get(path, 0)

    # -- used by the handler ------------------------------------------------------------------------------------------

    def _entered(self, request: RecordedRequest) -> str:
        host = request.headers.get("host", "")
        with self._lock:
            self._requests.append(request)
            for key in (host, _ALL_HOSTS):
                self._in_flight[key] = self._in_flight.get(key, 0) + 1
                self._max_in_flight[key] = max(self._max_in_flight.get(key, 0), self._in_flight[key])
        return host

    def _left(self, host: str) -> None:
        with self._lock:
            for key in (host, _ALL_HOSTS):
                self._in_flight[key] -= 1

    def _sent(self, path: str, n_bytes: int) -> None:
        with self._lock:
            self._bytes_sent[path] = self._bytes_sent.get(path, 0) + n_bytes


class _FeedRequestHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like real feed servers
    feed_server: FeedServer

    def log_message(self, format, *args):  # noqa: A002 - signature fixed by the base class
        pass  # keep pytest output clean

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        recorded = RecordedRequest(self.command, path, {name.lower(): value for name, value in self.headers.items()})
        host = self.feed_server._entered(recorded)
        try:
            self._answer(path, self.feed_server.route(path))
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True  # the client hung up, as tests of early stops intend
        finally:
            self.feed_server._left(host)

    def _answer(self, path: str, route: Route | None) -> None:
        if route is None:
            self._send_simple(404, b"not found")
            return
        if route.hold_seconds:
            time.sleep(route.hold_seconds)
        if route.delay_before_headers:
            time.sleep(route.delay_before_headers)
        if self._is_not_modified(route):
            self.send_response(304)
            self._send_validators(route)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = gzip.compress(route.body) if route.gzip else route.body
        total = len(body) + route.filler_bytes
        self.send_response(route.status)
        for name, value in route.headers.items():
            self.send_header(name, value)
        self._send_validators(route)
        if route.gzip:
            self.send_header("Content-Encoding", "gzip")
        if route.declared_length is not None:
            self.send_header("Content-Length", str(route.declared_length))
        elif route.send_content_length:
            self.send_header("Content-Length", str(total))
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self._write_body(path, route, body)

    def _write_body(self, path: str, route: Route, body: bytes) -> None:
        for start in range(0, len(body), route.chunk_size):
            self._write_chunk(path, route, body[start : start + route.chunk_size])
        remaining = route.filler_bytes
        while remaining > 0:
            chunk = FILLER[: min(remaining, route.chunk_size, len(FILLER))]
            self._write_chunk(path, route, chunk)
            remaining -= len(chunk)

    def _write_chunk(self, path: str, route: Route, chunk: bytes) -> None:
        self.wfile.write(chunk)
        self.wfile.flush()
        self.feed_server._sent(path, len(chunk))
        if route.delay_between_chunks:
            time.sleep(route.delay_between_chunks)

    def _send_validators(self, route: Route) -> None:
        if route.etag is not None:
            self.send_header("ETag", route.etag)
        if route.last_modified is not None:
            self.send_header("Last-Modified", route.last_modified)

    def _is_not_modified(self, route: Route) -> bool:
        if_none_match = self.headers.get("If-None-Match")
        if route.etag is not None and if_none_match is not None:
            # If-None-Match takes precedence over If-Modified-Since (RFC 9110, 13.2.2).
            tags = {tag.strip() for tag in if_none_match.split(",")}
            return "*" in tags or route.etag in tags
        if_modified_since = self.headers.get("If-Modified-Since")
        if route.last_modified is not None and if_modified_since is not None:
            try:
                since = email.utils.parsedate_to_datetime(if_modified_since)
                modified = email.utils.parsedate_to_datetime(route.last_modified)
            except (TypeError, ValueError):
                return False
            return modified <= since
        return False

    def _send_simple(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def feed_server():
    """A running FeedServer with no routes; stopped after the test."""
    server = FeedServer().start()
    try:
        yield server
    finally:
        server.stop()
