"""A per-process render cache for the widget: rendered pages keyed by what they show, dropped by events.

A news article can bring a million readers to one consultation, so the iframe page must not cost an RPC hop per view.
Each gateway process keeps the rendered HTML here; consultation events (received on a broadcast queue, so every
process hears them) drop the entries of the policy they concern, and a short TTL bounds staleness should an event be
missed (votes, for instance, announce nothing). Misses for the same key are single-flight: when a popular entry
expires, one request renders it while the others wait for that result instead of stampeding the backing services.

Per-reader values (voter token, CSRF token) never enter the cache: templates render placeholders that `Page.body`
replaces on the way out, which costs a string join, not a render.
"""
from __future__ import annotations

import struct
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

PLACEHOLDER_PREFIX = "\x00tb:"
PLACEHOLDER_SUFFIX = "\x00"


def placeholder(name: str) -> str:
    """The marker a template prints where a per-reader value goes (NUL never occurs in rendered text)."""
    return f"{PLACEHOLDER_PREFIX}{name}{PLACEHOLDER_SUFFIX}"


GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no name, no mtime, unknown OS


def _deflate(data: bytes, final: bool) -> bytes:
    # Each literal is compressed on its own and ends byte-aligned (sync flush) without the final-block bit, so the
    # pieces and the stored blocks between them concatenate into one valid deflate stream (the technique pigz uses).
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush(zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH)


def _stored_block(data: bytes) -> bytes:
    out = []
    for start in range(0, len(data), 65535):
        chunk = data[start:start + 65535]
        out.append(b"\x00" + struct.pack("<HH", len(chunk), len(chunk) ^ 0xFFFF) + chunk)
    return b"".join(out)


@dataclass(frozen=True)
class Page:
    """A rendered page split around its per-reader placeholders, plus the headers and status that go with it.

    The literal parts are also kept UTF-8 encoded and deflated once, so a reader's copy costs a join (and for gzip a
    CRC over the page), never a render or a compression."""

    parts: tuple[str, ...]  # literal, name, literal, name, …, literal
    headers: tuple[tuple[str, str], ...] = ()
    status: int = 200
    encoded: tuple[bytes, ...] = ()
    deflated: tuple[bytes, ...] = ()

    @classmethod
    def from_html(cls, html: str, headers: dict | None = None, status: int = 200) -> Page:
        parts: list[str] = []
        rest = html
        while (start := rest.find(PLACEHOLDER_PREFIX)) != -1:
            end = rest.find(PLACEHOLDER_SUFFIX, start + len(PLACEHOLDER_PREFIX))
            if end == -1:
                break
            parts.append(rest[:start])
            parts.append(rest[start + len(PLACEHOLDER_PREFIX):end])
            rest = rest[end + len(PLACEHOLDER_SUFFIX):]
        parts.append(rest)
        literals = [part.encode("utf-8") for part in parts[0::2]]
        deflated = tuple(_deflate(data, final=index == len(literals) - 1) for index, data in enumerate(literals))
        return cls(tuple(parts), tuple((headers or {}).items()), status, tuple(literals), deflated)

    @property
    def placeholders(self) -> tuple[str, ...]:
        return self.parts[1::2]

    def body(self, values: dict[str, str]) -> str:
        """The page with each placeholder replaced by `values[name]` (values must already be HTML-safe)."""
        if len(self.parts) == 1:
            return self.parts[0]
        out = []
        for index, part in enumerate(self.parts):
            out.append(values.get(part, "") if index % 2 else part)
        return "".join(out)

    def body_bytes(self, values: dict[str, str]) -> bytes:
        out = [self.encoded[0]]
        for index, name in enumerate(self.placeholders):
            out.append(values.get(name, "").encode("utf-8"))
            out.append(self.encoded[index + 1])
        return b"".join(out)

    def gzip_body(self, values: dict[str, str]) -> bytes:
        """The page gzip-compressed: the pre-deflated literals with this reader's values as stored blocks."""
        out = [GZIP_HEADER, self.deflated[0]]
        crc = zlib.crc32(self.encoded[0])
        size = len(self.encoded[0])
        for index, name in enumerate(self.placeholders):
            value = values.get(name, "").encode("utf-8")
            out.append(_stored_block(value))
            out.append(self.deflated[index + 1])
            crc = zlib.crc32(self.encoded[index + 1], zlib.crc32(value, crc))
            size += len(value) + len(self.encoded[index + 1])
        out.append(struct.pack("<II", crc & 0xFFFFFFFF, size & 0xFFFFFFFF))
        return b"".join(out)


@dataclass
class _Entry:
    value: Any
    expires_at: float
    scope: Hashable


@dataclass
class _Flight:
    done: threading.Event = field(default_factory=threading.Event)
    value: Any = None
    error: BaseException | None = None


class RenderCache:
    """An LRU of values with a TTL, grouped by scope (a policy id, an article URL) for invalidation.

    `get_or_render(key, scope, render)` returns the cached value or renders it once for all concurrent callers.
    `invalidate(scope)` drops that scope's entries and makes renders already in flight for it store nothing, so a
    render that read the data before an event cannot put the old state back after the event.
    """

    def __init__(self, ttl_s: float = 30.0, max_entries: int = 2000, clock: Callable[[], float] = time.monotonic):
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._by_scope: dict[Hashable, set[Hashable]] = {}
        self._generation: dict[Hashable, int] = {}
        self._epoch = 0  # bumped by clear(), so renders in flight for any scope are discarded too
        self._flights: dict[Hashable, _Flight] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable):
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry.expires_at <= self.clock():
                self._drop(key)
                return None
            self._entries.move_to_end(key)
            return entry.value

    def put(self, key: Hashable, scope: Hashable, value, *, generation: tuple[int, int] | None = None, ttl_s: float | None = None):
        with self._lock:
            if generation is not None and self._generation_of(scope) != generation:
                return  # invalidated while rendering: the value may predate the event
            self._drop(key)
            self._entries[key] = _Entry(value, self.clock() + (self.ttl_s if ttl_s is None else ttl_s), scope)
            self._by_scope.setdefault(scope, set()).add(key)
            while len(self._entries) > self.max_entries:
                self._drop(next(iter(self._entries)))

    def _generation_of(self, scope: Hashable) -> tuple[int, int]:
        return self._epoch, self._generation.get(scope, 0)

    def get_or_render(self, key: Hashable, scope: Hashable, render: Callable[[], Any], *, ttl_s: float | None = None,
                      cache_if: Callable[[Any], bool] = lambda value: True):
        value = self.get(key)
        if value is not None:
            self.hits += 1
            return value
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if leader:
                flight = self._flights[key] = _Flight()
                generation = self._generation_of(scope)
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            self.hits += 1
            return flight.value
        self.misses += 1
        try:
            flight.value = render()
            if flight.value is not None and cache_if(flight.value):
                self.put(key, scope, flight.value, generation=generation, ttl_s=ttl_s)
            return flight.value
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                self._flights.pop(key, None)
            flight.done.set()

    def invalidate(self, scope: Hashable) -> int:
        with self._lock:
            self._generation[scope] = self._generation.get(scope, 0) + 1
            keys = self._by_scope.pop(scope, set())
            for key in keys:
                self._entries.pop(key, None)
            return len(keys)

    def clear(self) -> None:
        with self._lock:
            self._epoch += 1
            self._entries.clear()
            self._by_scope.clear()

    def _drop(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            keys = self._by_scope.get(entry.scope)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_scope[entry.scope]
