"""Fetching feeds (and the pages that advertise them) over HTTP, politely and defensively.

Built on httpx's synchronous client. The newsfeed service runs under eventlet, which greens the sockets and the
``threading`` primitives used here, so one ``Fetcher`` can be shared by many green threads.

What a caller gets from :meth:`Fetcher.fetch` is always a :class:`FetchResult`; network and HTTP failures are described
in ``FetchResult.error`` rather than raised, so one broken feed never stops a polling round.

Politeness and safety rules enforced here:

* conditional GET (``If-None-Match`` / ``If-Modified-Since``); a 304 comes back as ``not_modified``;
* redirects are followed by hand so that a chain of permanent redirects (301/308) can be reported and the caller can
  update the stored feed URL; a temporary hop (302/303/307) breaks the chain;
* bodies are capped while streaming (decompressed size), and a large ``Content-Length`` is refused before reading;
* at most ``per_host_concurrency`` requests run against one host name at a time;
* only ``http`` and ``https`` URLs are fetched.

SSRF guard: ``FetchPolicy.allow_private_addresses`` defaults to ``True`` because this deployment polls demo feeds served
from the same machine or private network. Set it to ``False`` wherever feed URLs come from people you do not fully
trust: the host name is then resolved first and refused if any address is loopback, private, link-local, reserved or
multicast, and the address actually connected to is checked again when the response arrives (defeating DNS answers
that change between the check and the connection) before any body is read. With the guard on, proxies from the
environment are ignored (``trust_env=False``) because the peer address would otherwise be the proxy's.
"""
from __future__ import annotations

import email.utils
import errno
import ipaddress
import math
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import httpx


def _import_httpcore_despite_eventlet() -> None:
    """Import httpcore now, with the real socket class visible, when eventlet has already greened ``socket``.

    httpx imports httpcore lazily (first client built), and httpcore probes for trio at import. trio's module body reads
    ``socket.socket.sendmsg``, which eventlet's GreenSocket lacks, so under ``nameko run`` (patched before any service
    code loads) building the first client fails with AttributeError when trio is installed (selenium brings it). Known:
    python-trio/trio#3015; the maintainers' advice is to import trio before patching, which is what this does, briefly
    showing trio the original class. Sync httpx never uses trio, and httpcore keeps using the green sockets.
    """
    if "httpcore" in sys.modules or "eventlet.patcher" not in sys.modules:
        return
    patcher = sys.modules["eventlet.patcher"]
    if not patcher.is_monkey_patched("socket"):
        return
    green_socket_class = socket.socket
    socket.socket = patcher.original("socket").socket
    try:
        import httpcore  # noqa: F401
    finally:
        socket.socket = green_socket_class


_import_httpcore_despite_eventlet()

ALLOWED_SCHEMES = frozenset({"http", "https"})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
PERMANENT_REDIRECT_STATUSES = frozenset({301, 308})

# Feeds first; HTML stays acceptable (at a lower weight) because a subscribed URL may be a page to discover feeds in.
FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/rdf+xml;q=0.9, application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, "
    "text/html;q=0.5, */*;q=0.1"
)
# Only what httpx can decode without optional packages; brotli/zstd would need extra wheels.
ACCEPT_ENCODING = "gzip, deflate"


@dataclass(frozen=True)
class FetchPolicy:
    """Limits and identity for fetching. Timeouts are in seconds."""

    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    max_body_bytes: int = 10 * 1024 * 1024
    user_agent: str = "TrialBalloon/0.1 (+https://github.com/trial-balloon; feed fetcher)"
    per_host_concurrency: int = 2
    max_redirects: int = 5
    # read_timeout bounds each wait for bytes; this bounds the whole fetch, so a server trickling one byte at a time
    # (or a long wait for a per-host slot) cannot hold a worker forever.
    total_timeout: float = 60.0
    # SSRF guard, see the module docstring. True here because the demo feeds are served locally.
    allow_private_addresses: bool = True


@dataclass(frozen=True)
class FetchResult:
    url: str  # the URL that was requested
    final_url: str  # after redirects (the last URL tried, on failure)
    # Set when an unbroken chain of 301/308 moved the feed and the fetch then succeeded (2xx or 304): the caller should
    # store this URL instead of ``url``. A temporary redirect anywhere earlier in the chain stops it moving further.
    permanent_redirect_to: str | None = None
    status: int | None = None  # final HTTP status; None when no response arrived
    not_modified: bool = False  # 304
    content: bytes | None = None  # decompressed body of a 2xx; None on 304 and on any error
    headers: dict[str, str] = field(default_factory=dict)  # final response headers, names lower-cased
    # Validators to store for the next conditional GET. On a 304 that omits them, the ones sent are echoed back.
    etag: str | None = None
    last_modified: str | None = None
    retry_after: float | None = None  # seconds, from Retry-After (delta-seconds or HTTP-date)
    error: str | None = None  # human-readable reason when the fetch failed
    elapsed: float = 0.0  # seconds, including redirects and waiting for a per-host slot

    @property
    def ok(self) -> bool:
        """A 2xx response whose body was read in full."""
        return self.error is None and self.status is not None and 200 <= self.status < 300 and self.content is not None


class _FetchFailure(Exception):
    """Ends a fetch with a reason; carries the response details known so far."""

    def __init__(self, reason: str, response: httpx.Response | None = None):
        super().__init__(reason)
        self.reason = reason
        self.response = response


@dataclass
class _Hop:
    """One request/response of a possibly redirected fetch."""

    response: httpx.Response
    content: bytes | None = None


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait according to a Retry-After value, or None when absent or unreadable.

    ``now`` is the reference for an HTTP-date; pass the response's ``Date`` when there is one so that a skewed local
    clock does not distort the wait. Dates in the past give 0.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        when = _parse_http_date(value)
        if when is None:
            return None
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
        return max(0.0, seconds)
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def _parse_http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when


def human_size(n_bytes: int) -> str:
    """``10 MB`` for 10 MiB, ``64 KB`` for 64 KiB, ``1000 bytes`` otherwise: readable in error messages."""
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n_bytes >= size and n_bytes % size == 0:
            return f"{n_bytes // size} {unit}"
    return f"{n_bytes} bytes"


def is_public_address(address: str) -> bool:
    """False for loopback, private, link-local, shared, reserved, multicast and unspecified addresses."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _resolve_host_addresses(host: str, port: int) -> list[str]:
    """Every address the host name resolves to (module-level so tests can stand in for DNS)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def _check_url(url: str) -> tuple[str, int]:
    """(host, port) of a fetchable URL, or _FetchFailure saying why it is not."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except (ValueError, TypeError, AttributeError) as exc:
        raise _FetchFailure(f"invalid URL: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        shown = scheme or "(none)"
        raise _FetchFailure(f"unsupported URL scheme '{shown}': only http and https are fetched")
    if not parts.hostname:
        raise _FetchFailure("invalid URL: no host")
    return parts.hostname.lower(), port or _default_port(scheme)


def _refuse_private_host(host: str, port: int) -> None:
    try:
        addresses = _resolve_host_addresses(host, port)
    except (OSError, UnicodeError) as exc:
        raise _FetchFailure("DNS lookup failed") from exc
    for address in addresses:
        if not is_public_address(address):
            raise _FetchFailure(f"refused: {host} resolves to non-public address {address}")


def _refuse_private_peer(response: httpx.Response) -> None:
    stream = response.extensions.get("network_stream")
    peer = stream.get_extra_info("server_addr") if stream is not None else None
    if not peer:
        # Without a peer address (e.g. a test transport) there is nothing more to check than the resolution above.
        return
    if not is_public_address(str(peer[0])):
        raise _FetchFailure(f"refused: connected to non-public address {peer[0]}")


def _caused_by(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    seen = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def describe_transport_error(exc: BaseException) -> str:
    """A short, stable, human-readable reason for a failed request ("timeout (reading)", "connection refused", ...)."""
    if isinstance(exc, httpx.ConnectTimeout):
        return "timeout (connecting)"
    if isinstance(exc, httpx.ReadTimeout):
        return "timeout (reading)"
    if isinstance(exc, httpx.WriteTimeout):
        return "timeout (sending)"
    if isinstance(exc, httpx.PoolTimeout):
        return "timeout (waiting for a pooled connection)"
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if _caused_by(exc, ConnectionRefusedError):
        return "connection refused"
    os_error = _caused_by(exc, OSError)
    if isinstance(os_error, OSError) and os_error.errno == errno.ECONNREFUSED:
        return "connection refused"
    if _caused_by(exc, socket.gaierror):
        return "DNS lookup failed"
    if _caused_by(exc, ssl.SSLError):
        return f"TLS error: {_caused_by(exc, ssl.SSLError)}"
    if _caused_by(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, httpx.DecodingError):
        return f"could not decode body: {exc}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"protocol error: {exc}" if str(exc) else "protocol error"
    if isinstance(exc, httpx.ConnectError):
        return f"connection failed: {exc}" if str(exc) else "connection failed"
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return f"invalid URL: {exc}"
    if isinstance(exc, TimeoutError):
        return "timeout"
    return f"network error: {exc}" if str(exc) else f"network error: {type(exc).__name__}"


class Fetcher:
    """Fetches URLs under a :class:`FetchPolicy`. Safe to share between (green) threads."""

    def __init__(
        self,
        policy: FetchPolicy = FetchPolicy(),
        client: httpx.Client | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        if policy.per_host_concurrency < 1:
            raise ValueError("per_host_concurrency must be at least 1")
        self.policy = policy
        self._clock = clock
        self._owns_client = client is None
        self._client = client if client is not None else httpx.Client(
            follow_redirects=False,
            trust_env=policy.allow_private_addresses,
            timeout=self._timeout(policy.read_timeout),
        )
        self._host_slots: dict[str, threading.BoundedSemaphore] = {}
        self._host_slots_lock = threading.Lock()

    def close(self) -> None:
        """Close the HTTP client if this fetcher created it (a client passed in belongs to the caller)."""
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def fetch(self, url: str, etag: str | None = None, last_modified: str | None = None) -> FetchResult:
        """GET ``url`` (conditionally when validators are given). Never raises for network or HTTP failures."""
        started = self._clock()
        deadline = started + self.policy.total_timeout
        request_headers = self._request_headers(etag, last_modified)
        current_url = url
        permanent_target: str | None = None
        chain_is_permanent = True
        response: httpx.Response | None = None
        try:
            for _ in range(self.policy.max_redirects + 1):
                hop = self._fetch_one(current_url, request_headers, deadline)
                response = hop.response
                location = response.headers.get("location")
                if response.status_code in REDIRECT_STATUSES and location:
                    next_url = urljoin(current_url, location.strip())
                    if chain_is_permanent and response.status_code in PERMANENT_REDIRECT_STATUSES:
                        permanent_target = next_url
                    else:
                        chain_is_permanent = False
                    current_url = next_url
                    continue
                return self._final_result(url, current_url, hop, permanent_target, etag, last_modified, started)
            raise _FetchFailure(f"too many redirects (more than {self.policy.max_redirects})", response)
        except _FetchFailure as failure:
            known = failure.response if failure.response is not None else response
            return self._failure(url, current_url, failure.reason, known, started)
        except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
            # No response to describe: an earlier hop's redirect status would only mislead.
            return self._failure(url, current_url, describe_transport_error(exc), None, started)
        except ValueError as exc:
            # e.g. a stored validator that cannot be sent as a header value
            return self._failure(url, current_url, f"invalid request: {exc}", None, started)

    # -- one request --------------------------------------------------------------------------------------------------

    def _fetch_one(self, url: str, headers: dict[str, str | bytes], deadline: float) -> _Hop:
        host, port = _check_url(url)
        if not self.policy.allow_private_addresses:
            _refuse_private_host(host, port)
        with self._host_slot(host, deadline):
            remaining = self._remaining(deadline)
            with self._client.stream(
                "GET",
                url,
                headers=headers,
                follow_redirects=False,
                timeout=self._timeout(min(self.policy.read_timeout, remaining), remaining),
            ) as response:
                if not self.policy.allow_private_addresses:
                    _refuse_private_peer(response)
                hop = _Hop(response)
                if 200 <= response.status_code < 300:
                    hop.content = self._read_capped(response, deadline)
                # Other statuses: the body is an error page or a redirect notice; leaving it unread closes the
                # connection, which is cheaper than downloading something nobody will parse.
                return hop

    def _read_capped(self, response: httpx.Response, deadline: float) -> bytes:
        cap = self.policy.max_body_bytes
        declared = response.headers.get("content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > cap:
            raise _FetchFailure(f"body exceeds {human_size(cap)} (Content-Length {declared.strip()})", response)
        body = bytearray()
        # iter_bytes yields decompressed data, so the cap also stops compression bombs. httpx inflates one network read
        # (up to 64 KiB compressed) at a time, which bounds the transient overshoot.
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > cap:
                raise _FetchFailure(f"body exceeds {human_size(cap)}", response)
            if self._clock() > deadline:
                raise _FetchFailure(f"timeout (whole fetch took over {self.policy.total_timeout:g} s)", response)
        return bytes(body)

    @contextmanager
    def _host_slot(self, host: str, deadline: float) -> Iterator[None]:
        with self._host_slots_lock:
            slot = self._host_slots.get(host)
            if slot is None:
                # Looked up at call time so that eventlet's monkey-patched (green) semaphore is the one used.
                slot = threading.BoundedSemaphore(self.policy.per_host_concurrency)
                self._host_slots[host] = slot
        if not slot.acquire(timeout=self._remaining(deadline)):
            raise _FetchFailure(f"timeout (waiting for a free slot for host {host})")
        try:
            yield
        finally:
            slot.release()

    def _remaining(self, deadline: float) -> float:
        remaining = deadline - self._clock()
        if remaining <= 0:
            raise _FetchFailure(f"timeout (whole fetch took over {self.policy.total_timeout:g} s)")
        return remaining

    def _timeout(self, read: float, remaining: float | None = None) -> httpx.Timeout:
        connect = self.policy.connect_timeout if remaining is None else min(self.policy.connect_timeout, remaining)
        return httpx.Timeout(connect=connect, read=read, write=read, pool=connect)

    def _request_headers(self, etag: str | None, last_modified: str | None) -> dict[str, str | bytes]:
        headers: dict[str, str | bytes] = {
            "User-Agent": self.policy.user_agent,
            "Accept": FEED_ACCEPT,
            "Accept-Encoding": ACCEPT_ENCODING,
        }
        for name, value in (("If-None-Match", etag), ("If-Modified-Since", last_modified)):
            sendable = _sendable_validator(value)
            if sendable is not None:
                headers[name] = sendable
        return headers

    # -- results ------------------------------------------------------------------------------------------------------

    def _final_result(
        self,
        url: str,
        final_url: str,
        hop: _Hop,
        permanent_target: str | None,
        sent_etag: str | None,
        sent_last_modified: str | None,
        started: float,
    ) -> FetchResult:
        response = hop.response
        status = response.status_code
        not_modified = status == 304
        succeeded = 200 <= status < 300 or not_modified
        error = None
        if not succeeded:
            error = f"HTTP {status} without Location" if status in REDIRECT_STATUSES else f"HTTP {status}"
        etag = response.headers.get("etag")
        last_modified = response.headers.get("last-modified")
        if not_modified:
            etag = etag or sent_etag
            last_modified = last_modified or sent_last_modified
        return FetchResult(
            url=url,
            final_url=final_url,
            permanent_redirect_to=permanent_target if succeeded and permanent_target != url else None,
            status=status,
            not_modified=not_modified,
            content=hop.content if 200 <= status < 300 else None,
            headers=_lower_cased(response),
            etag=etag,
            last_modified=last_modified,
            retry_after=_retry_after(response),
            error=error,
            elapsed=self._clock() - started,
        )

    def _failure(
        self, url: str, final_url: str, reason: str, response: httpx.Response | None, started: float
    ) -> FetchResult:
        return FetchResult(
            url=url,
            final_url=final_url,
            status=response.status_code if response is not None else None,
            headers=_lower_cased(response) if response is not None else {},
            etag=response.headers.get("etag") if response is not None else None,
            last_modified=response.headers.get("last-modified") if response is not None else None,
            retry_after=_retry_after(response) if response is not None else None,
            error=reason,
            elapsed=self._clock() - started,
        )


def _sendable_validator(value: str | None) -> bytes | None:
    """The validator as header bytes, or None when it cannot be sent.

    Servers may put obs-text (bytes 0x80-0xFF) in an ETag, which httpx hands us decoded as Latin-1, so Latin-1 sends it
    back unchanged. Anything else unsendable (control characters, other scripts) is dropped: an unconditional GET is
    always correct, whereas refusing to fetch would leave the feed failing until someone cleared the stored value.
    """
    if not value:
        return None
    try:
        encoded = value.encode("latin-1")
    except UnicodeEncodeError:
        return None
    if any((byte < 0x20 and byte != 0x09) or byte == 0x7F for byte in encoded):
        return None
    return encoded


def _lower_cased(response: httpx.Response) -> dict[str, str]:
    return {name.lower(): value for name, value in response.headers.items()}


def _retry_after(response: httpx.Response) -> float | None:
    return parse_retry_after(response.headers.get("retry-after"), _parse_http_date(response.headers.get("date")))
