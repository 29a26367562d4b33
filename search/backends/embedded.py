"""Embedded search backend: SQLite FTS5 over jieba-segmented text, for a single machine with no search server.

Layout. The index lives in "generations": a narrow table `docs_<n>` (one row per document, the filterable columns
derived from search.documents), `content_<n>` with what is only displayed (original title and body for snippets,
url, source fields), a `topics_<n>` side table for the multi-valued topics, and an FTS5 table `fts_<n>` holding the
segmented title and body, all under the same rowid. `search_meta` names the active generation.
Facets: each document points at its "facet combination" (doc type, department, outlet, language, consultation
state, topics) in a small shared table; counting the matches per combination is one integer GROUP BY, and the
per-field counts are summed from the few combinations in Python: far cheaper than a GROUP BY per field over
thousands of matches.

A reindex fills generation n+1 while n keeps serving (live writes go to both), then flips the pointer in one short
transaction, so readers never see a half-built index.

Several processes may share the file: WAL journal, a busy timeout, and short write transactions (segmentation, the
slow part, happens before the transaction opens). Every search reads the pointer and its rows inside one read
transaction, so a concurrent flip can't pull tables away mid-query.

User text never reaches FTS5 syntax: every term is a quoted string, and quotes inside it are doubled.
"""
from __future__ import annotations

import html
import itertools
import json
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from search.analysis import segment_for_index, segment_query
from search.backends.base import (
    FACET_NAMES,
    Hit,
    SearchBackend,
    SearchBackendError,
    SearchBackendUnavailable,
    SearchResult,
    StoredDocument,
    checked_fetch_ids,
    sorted_facets,
)
from search.documents import (
    ENVELOPE_FIELDS,
    FACET_FIELDS,
    FieldType,
    InvalidDocument,
    SearchDocument,
    format_datetime,
)
from search.queries import QueryText, SearchQuery

__all__ = ["EmbeddedSearchBackend", "fts5_match_expression", "highlight_pattern", "make_snippets"]

_SQL_TYPES = {
    FieldType.KEYWORD: "TEXT",
    FieldType.DATE: "TEXT",
    FieldType.INTEGER: "INTEGER",
    FieldType.FLOAT: "REAL",
    FieldType.BOOLEAN: "INTEGER",
}
# Single-valued envelope fields used to filter, sort and facet become columns of a narrow table, so that joining
# thousands of matches to it touches few pages; what is only shown (title, url, body, source) lives in content_<n>.
_COLUMNS: tuple[str, ...] = tuple(
    spec.name
    for spec in ENVELOPE_FIELDS
    if spec.type is not FieldType.TEXT and not spec.multi_valued and spec.name != "url"
)
_COLUMN_TYPES = {spec.name: _SQL_TYPES[spec.type] for spec in ENVELOPE_FIELDS if spec.name in _COLUMNS}
_INDEXED_COLUMNS = ("doc_type", "department", "policy_id", "consultation_state", "outlet", "language")
_FACET_COLUMNS = tuple(FACET_FIELDS[name] for name in FACET_NAMES if FACET_FIELDS[name] in _COLUMNS)
_FACET_OF_COLUMN = {field_name: name for name, field_name in FACET_FIELDS.items()}
_SOURCE_EXCLUDED = frozenset({"body"})
_STALE_BUILD_SECONDS = 600
# Bump when the table layout changes; ensure_schema() then starts a fresh, empty generation.
SCHEMA_VERSION = 2
log = logging.getLogger(__name__)


def _quote_fts(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def fts5_match_expression(parsed: QueryText) -> str | None:
    """The FTS5 MATCH expression for a query: every word and every phrase must occur (implicit AND).

    Words are cut like the query analyser cuts them; phrases are cut like the index so their token run (sub-words
    included) lines up with the indexed stream. Each part is a quoted FTS5 string, so no user input is syntax.
    """
    parts = [_quote_fts(token) for token in segment_query(parsed.words)]
    for phrase in parsed.phrases:
        tokens = segment_for_index(phrase).split()
        if tokens:
            parts.append(_quote_fts(" ".join(tokens)))
    return " AND ".join(dict.fromkeys(parts)) or None


def highlight_pattern(parsed: QueryText) -> re.Pattern[str] | None:
    """A regex finding the query's words and phrases in the original, unsegmented text."""
    alternatives: set[str] = set()
    for token in segment_query(parsed.words):
        alternatives.add(re.escape(token))
    for phrase in parsed.phrases:
        # A phrase typed with spaces ("医疗保障 改革") usually stands in the text without them.
        pieces = [re.escape(piece) for piece in phrase.split()]
        if pieces:
            alternatives.add(r"\s*".join(pieces))
            alternatives.update(pieces)
    if not alternatives:
        return None
    return re.compile("|".join(sorted(alternatives, key=len, reverse=True)), re.IGNORECASE)


_SPACE_RUN = re.compile(r"\s+")


def _mark(text: str, pattern: re.Pattern[str] | None) -> str:
    """Escape `text` and wrap the pattern's matches in <mark>; nothing of the text survives unescaped."""
    if pattern is None:
        return html.escape(text, quote=False)
    out: list[str] = []
    last = 0
    for match in pattern.finditer(text):
        if match.start() == match.end():
            continue
        out.append(html.escape(text[last:match.start()], quote=False))
        out.append("<mark>" + html.escape(match.group(), quote=False) + "</mark>")
        last = match.end()
    out.append(html.escape(text[last:], quote=False))
    # Words the segmenter split (医疗保障|改革) read as one match.
    return "".join(out).replace("</mark><mark>", "")


def make_snippets(
    text: str, pattern: re.Pattern[str] | None, *, size: int = 120, max_snippets: int = 2, no_match_size: int = 120
) -> list[str]:
    """Windows of the original text around the matches, escaped, with <mark> around each match.

    Without a match the start of the text is returned (like Elasticsearch's no_match_size), so a hit always shows
    some of its body.
    """
    if not text:
        return []
    windows: list[tuple[int, int]] = []
    if pattern is not None:
        position = 0
        while len(windows) < max_snippets:
            match = pattern.search(text, position)
            if match is None:
                break
            start = max(0, match.start() - size // 4)
            if start <= size // 8:
                start = 0  # a few characters of lead-in are not worth an ellipsis
            end = max(match.end(), min(len(text), start + size))
            # Never cut a later match in half at the window's end.
            crossing = pattern.search(text, max(start, end - 50))
            while crossing is not None and crossing.start() < end < crossing.end():
                end = crossing.end()
                crossing = pattern.search(text, end)
            windows.append((start, end))
            position = end
    snippets = []
    for start, end in windows:
        piece = _SPACE_RUN.sub(" ", text[start:end]).strip()
        snippet = _mark(piece, pattern)
        snippets.append(("…" if start > 0 else "") + snippet + ("…" if end < len(text) else ""))
    if not snippets:
        piece = _SPACE_RUN.sub(" ", text[:no_match_size]).strip()
        snippets.append(html.escape(piece, quote=False) + ("…" if len(text) > no_match_size else ""))
    return snippets


@dataclass(frozen=True)
class _Prepared:
    doc: SearchDocument
    columns: tuple[Any, ...]
    topics: tuple[str, ...]
    combination: str
    source_json: str
    title_tokens: str
    body_tokens: str


def _prepare(doc: SearchDocument) -> _Prepared:
    if not isinstance(doc, SearchDocument):
        raise InvalidDocument({"doc": "must be a SearchDocument made by search.documents.build_document"})
    source = doc.to_source()
    columns = tuple(source[name] for name in _COLUMNS)
    stored = {key: value for key, value in source.items() if key not in _SOURCE_EXCLUDED}
    combination = [source[name] for name in _FACET_COLUMNS] + [sorted(doc.topics)]
    return _Prepared(
        doc=doc,
        columns=columns,
        topics=doc.topics,
        combination=json.dumps(combination, ensure_ascii=False, separators=(",", ":")),
        source_json=json.dumps(stored, ensure_ascii=False, separators=(",", ":")),
        title_tokens=segment_for_index(doc.title),
        body_tokens=segment_for_index(doc.body),
    )


def _batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


class EmbeddedSearchBackend(SearchBackend):
    """SQLite FTS5 search over one database file (or ":memory:" for tests)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout_ms: int = 5000,
        batch_size: int = 500,
        title_weight: float = 5.0,
        body_weight: float = 1.0,
        snippet_size: int = 120,
        cache_size_kib: int = 65536,
        mmap_size_bytes: int = 256 * 1024 * 1024,
    ):
        self.path = os.fspath(path)
        self.busy_timeout_ms = busy_timeout_ms
        self.batch_size = batch_size
        self.title_weight = float(title_weight)
        self.body_weight = float(body_weight)
        self.snippet_size = snippet_size
        self.cache_size_kib = cache_size_kib
        self.mmap_size_bytes = mmap_size_bytes
        self._lock = threading.RLock()
        self._connection: sqlite3.Connection | None = None
        # Combinations never change once written, so both directions can be cached for the life of the backend.
        self._combination_id: dict[str, int] = {}
        self._combination_values: dict[int, list[Any]] = {}

    # -- connection and transactions ---------------------------------------------------------------------------

    @property
    def connection(self) -> sqlite3.Connection:
        if self._connection is None:
            if self.path != ":memory:":
                directory = os.path.dirname(os.path.abspath(self.path))
                os.makedirs(directory, exist_ok=True)
            try:
                connection = sqlite3.connect(
                    self.path,
                    timeout=self.busy_timeout_ms / 1000,
                    isolation_level=None,  # transactions are opened explicitly, and kept short
                    check_same_thread=False,  # one connection per backend, serialised by self._lock
                )
            except sqlite3.Error as exc:
                raise SearchBackendUnavailable(f"cannot open search database {self.path}: {exc}") from exc
            connection.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
            # The default 2 MB page cache is too small to keep a busy index's hot pages between queries.
            connection.execute(f"PRAGMA cache_size = {-int(self.cache_size_kib)}")
            connection.execute(f"PRAGMA mmap_size = {int(self.mmap_size_bytes)}")
            if self.path != ":memory:":
                connection.execute("PRAGMA journal_mode = WAL")
                connection.execute("PRAGMA synchronous = NORMAL")
            self._connection = connection
        return self._connection

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def _write(self) -> _Transaction:
        return _Transaction(self.connection, "BEGIN IMMEDIATE")

    def _read(self) -> _Transaction:
        return _Transaction(self.connection, "BEGIN")

    # -- schema -------------------------------------------------------------------------------------------------

    def ensure_schema(self) -> None:
        with self._lock, self._write() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS search_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            # Shared by all generations and only ever added to, so an id means the same combination for good.
            conn.execute(
                "CREATE TABLE IF NOT EXISTS facet_combinations (id INTEGER PRIMARY KEY, combination TEXT NOT NULL UNIQUE)"
            )
            active = self._meta(conn, "active_generation")
            if active is None:
                self._create_generation(conn, 1)
                self._set_meta(conn, "active_generation", 1)
                self._set_meta(conn, "schema_version", SCHEMA_VERSION)
            elif self._meta(conn, "schema_version") != str(SCHEMA_VERSION):
                # An index laid out by an older release: start an empty one in today's layout rather than fail on
                # every write; the documents come back with the next reindex.
                new = int(active) + 1
                self._create_generation(conn, new)
                self._set_meta(conn, "active_generation", new)
                self._set_meta(conn, "schema_version", SCHEMA_VERSION)
                self._drop_generation(conn, int(active))
                log.warning("search index schema was outdated; started an empty index: run a reindex")

    def _create_generation(self, conn: sqlite3.Connection, generation: int) -> None:
        g = int(generation)
        column_sql = ",\n".join(
            f"{name} {_COLUMN_TYPES[name]}{' NOT NULL UNIQUE' if name == 'doc_id' else ''}" for name in _COLUMNS
        )
        conn.execute(f"CREATE TABLE docs_{g} (rowid INTEGER PRIMARY KEY, {column_sql}, facets INTEGER NOT NULL)")
        conn.execute(
            f"CREATE TABLE content_{g} (rowid INTEGER PRIMARY KEY, title TEXT NOT NULL, url TEXT NOT NULL,"
            " body TEXT NOT NULL, source TEXT NOT NULL)"
        )
        conn.execute(f"CREATE INDEX docs_{g}_published_at ON docs_{g} (published_at)")
        for column in _INDEXED_COLUMNS:
            conn.execute(f"CREATE INDEX docs_{g}_{column} ON docs_{g} ({column}, published_at)")
        conn.execute(
            f"CREATE TABLE topics_{g} (rowid INTEGER NOT NULL, topic TEXT NOT NULL, PRIMARY KEY (rowid, topic))"
            " WITHOUT ROWID"
        )
        conn.execute(f"CREATE INDEX topics_{g}_topic ON topics_{g} (topic)")
        # unicode61 splits on the spaces the segmenter put in and keeps runs of Chinese characters whole.
        conn.execute(
            f"CREATE VIRTUAL TABLE fts_{g} USING fts5(title, body, tokenize = 'unicode61 remove_diacritics 2')"
        )

    def _drop_generation(self, conn: sqlite3.Connection, generation: int) -> None:
        g = int(generation)
        for table in (f"fts_{g}", f"topics_{g}", f"content_{g}", f"docs_{g}"):
            conn.execute(f"DROP TABLE IF EXISTS {table}")

    @staticmethod
    def _meta(conn: sqlite3.Connection, key: str) -> str | None:
        row = conn.execute("SELECT value FROM search_meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    @staticmethod
    def _set_meta(conn: sqlite3.Connection, key: str, value: Any) -> None:
        conn.execute(
            "INSERT INTO search_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, str(value)),
        )

    def _generations(self, conn: sqlite3.Connection) -> tuple[int, int | None]:
        try:
            active = self._meta(conn, "active_generation")
        except sqlite3.OperationalError as exc:
            raise SearchBackendError("search schema is missing: call ensure_schema() first") from exc
        if active is None:
            raise SearchBackendError("search schema is missing: call ensure_schema() first")
        building = self._meta(conn, "building_generation")
        return int(active), int(building) if building is not None else None

    # -- writing ------------------------------------------------------------------------------------------------

    def upsert(self, docs: Iterable[SearchDocument], *, refresh: bool | str | None = None) -> int:
        applied = 0
        for batch in _batched(docs, self.batch_size):
            prepared = [_prepare(doc) for doc in batch]
            with self._lock, self._write() as conn:
                active, building = self._generations(conn)
                combination_ids = self._combination_ids(conn, prepared)
                applied += self._apply(conn, active, prepared, combination_ids)
                if building is not None:
                    self._apply(conn, building, prepared, combination_ids)
            self._combination_id.update(combination_ids)  # committed now
        return applied

    def _apply(
        self, conn: sqlite3.Connection, generation: int, prepared: Sequence[_Prepared], combination_ids: dict[str, int]
    ) -> int:
        g = int(generation)
        applied = 0
        placeholders = ", ".join("?" for _ in _COLUMNS)
        assignments = ", ".join(f"{name} = ?" for name in _COLUMNS)
        for item in prepared:
            row = conn.execute(f"SELECT rowid, version FROM docs_{g} WHERE doc_id = ?", (item.doc.doc_id,)).fetchone()
            content = (item.doc.title, item.doc.url, item.doc.body, item.source_json)
            if row is None:
                cursor = conn.execute(
                    f"INSERT INTO docs_{g} ({', '.join(_COLUMNS)}, facets) VALUES ({placeholders}, ?)",
                    (*item.columns, combination_ids[item.combination]),
                )
                rowid = cursor.lastrowid
                conn.execute(
                    f"INSERT INTO content_{g} (rowid, title, url, body, source) VALUES (?, ?, ?, ?, ?)", (rowid, *content)
                )
            else:
                rowid, stored_version = row
                # At-least-once delivery: a replayed or late event must not overwrite newer content.
                if stored_version >= item.doc.version:
                    continue
                conn.execute(
                    f"UPDATE docs_{g} SET {assignments}, facets = ? WHERE rowid = ?",
                    (*item.columns, combination_ids[item.combination], rowid),
                )
                conn.execute(
                    f"UPDATE content_{g} SET title = ?, url = ?, body = ?, source = ? WHERE rowid = ?", (*content, rowid)
                )
                conn.execute(f"DELETE FROM fts_{g} WHERE rowid = ?", (rowid,))
                conn.execute(f"DELETE FROM topics_{g} WHERE rowid = ?", (rowid,))
            conn.execute(
                f"INSERT INTO fts_{g} (rowid, title, body) VALUES (?, ?, ?)",
                (rowid, item.title_tokens, item.body_tokens),
            )
            conn.executemany(
                f"INSERT OR IGNORE INTO topics_{g} (rowid, topic) VALUES (?, ?)",
                [(rowid, topic) for topic in item.topics],
            )
            applied += 1
        return applied

    def _combination_ids(self, conn: sqlite3.Connection, prepared: Sequence[_Prepared]) -> dict[str, int]:
        """Ids of the batch's facet combinations, adding new ones. Not cached here: the transaction may still roll
        back, and an id cached from a rolled-back insert could later name another combination."""
        combinations = {item.combination for item in prepared}
        ids = {c: self._combination_id[c] for c in combinations if c in self._combination_id}
        missing = [combination for combination in combinations if combination not in ids]
        if missing:
            conn.executemany(
                "INSERT OR IGNORE INTO facet_combinations (combination) VALUES (?)", [(c,) for c in missing]
            )
            for start in range(0, len(missing), 500):
                chunk = missing[start:start + 500]
                found = conn.execute(
                    "SELECT id, combination FROM facet_combinations"
                    f" WHERE combination IN ({', '.join('?' for _ in chunk)})",
                    chunk,
                )
                for combination_id, combination in found:
                    ids[combination] = combination_id
        return ids

    def _combinations(self, conn: sqlite3.Connection, ids: Iterable[int]) -> dict[int, list[Any]]:
        """Facet values of combination ids: [doc_type, department, outlet, language, consultation_state, topics]."""
        missing = [combination_id for combination_id in ids if combination_id not in self._combination_values]
        for start in range(0, len(missing), 500):
            chunk = missing[start:start + 500]
            found = conn.execute(
                f"SELECT id, combination FROM facet_combinations WHERE id IN ({', '.join('?' for _ in chunk)})", chunk
            )
            for combination_id, combination in found:
                self._combination_values[combination_id] = json.loads(combination)
        return self._combination_values

    def delete(self, doc_ids: Iterable[str], *, refresh: bool | str | None = None) -> int:
        removed = 0
        for batch in _batched(doc_ids, self.batch_size):
            with self._lock, self._write() as conn:
                active, building = self._generations(conn)
                removed += self._remove(conn, active, batch)
                if building is not None:
                    self._remove(conn, building, batch)
        return removed

    @staticmethod
    def _remove(conn: sqlite3.Connection, generation: int, doc_ids: Sequence[str]) -> int:
        g = int(generation)
        removed = 0
        for doc_id in doc_ids:
            row = conn.execute(f"SELECT rowid FROM docs_{g} WHERE doc_id = ?", (doc_id,)).fetchone()
            if row is None:
                continue
            for table in (f"fts_{g}", f"topics_{g}", f"content_{g}", f"docs_{g}"):
                conn.execute(f"DELETE FROM {table} WHERE rowid = ?", (row[0],))
            removed += 1
        return removed

    def reindex(self, source_iter: Iterable[SearchDocument]) -> int:
        """Fill a new generation in short batches, then switch to it in one transaction; the old one serves meanwhile.

        Writes arriving during the rebuild go to both generations and, being versioned, win over older source rows.
        """
        with self._lock, self._write() as conn:
            active, building = self._generations(conn)
            if building is not None:
                heartbeat = float(self._meta(conn, "building_heartbeat") or 0)
                if time.time() - heartbeat < _STALE_BUILD_SECONDS:
                    raise SearchBackendError(f"a reindex is already running (generation {building})")
                self._drop_generation(conn, building)  # left behind by a crashed rebuild
            new = max(active, building or 0) + 1
            self._create_generation(conn, new)
            self._set_meta(conn, "building_generation", new)
            self._set_meta(conn, "building_heartbeat", time.time())
        indexed = 0
        try:
            for batch in _batched(source_iter, self.batch_size):
                prepared = [_prepare(doc) for doc in batch]
                with self._lock, self._write() as conn:
                    combination_ids = self._combination_ids(conn, prepared)
                    self._apply(conn, new, prepared, combination_ids)
                    self._set_meta(conn, "building_heartbeat", time.time())
                self._combination_id.update(combination_ids)
                indexed += len(batch)
            self._merge_segments(new)
            with self._lock, self._write() as conn:
                old, _ = self._generations(conn)
                self._set_meta(conn, "active_generation", new)
                conn.execute("DELETE FROM search_meta WHERE key IN ('building_generation', 'building_heartbeat')")
        except BaseException:
            with self._lock, self._write() as conn:
                self._drop_generation(conn, new)
                conn.execute("DELETE FROM search_meta WHERE key IN ('building_generation', 'building_heartbeat')")
            raise
        with self._lock, self._write() as conn:
            self._drop_generation(conn, old)
        return indexed

    def optimize(self) -> None:
        """Merge the full-text index's segments after a large bulk load, so queries read fewer b-trees."""
        with self._lock, self._read() as conn:
            active, _ = self._generations(conn)
        self._merge_segments(active)

    def _merge_segments(self, generation: int, pages_per_step: int = 500, max_steps: int = 10_000) -> None:
        # FTS5's incremental 'merge' in many short transactions instead of one long 'optimize', which would hold
        # the write lock for seconds on a large index and make other processes' writes time out.
        g = int(generation)
        for _ in range(max_steps):
            with self._lock, self._write() as conn:
                before = conn.total_changes
                conn.execute(f"INSERT INTO fts_{g} (fts_{g}, rank) VALUES ('merge', ?)", (pages_per_step,))
                done = conn.total_changes - before < 2
            if done:
                return

    # -- reading ------------------------------------------------------------------------------------------------

    def ping(self) -> bool:
        try:
            with self._lock:
                self.connection.execute("SELECT 1").fetchone()
            return True
        except (sqlite3.Error, SearchBackendError):
            return False

    def count(self) -> int:
        with self._lock, self._read() as conn:
            active, _ = self._generations(conn)
            return conn.execute(f"SELECT count(*) FROM docs_{active}").fetchone()[0]

    def get_documents(self, doc_ids: Iterable[str]) -> dict[str, StoredDocument]:
        ids = checked_fetch_ids(doc_ids)
        documents: dict[str, StoredDocument] = {}
        if not ids:
            return documents
        try:
            with self._lock, self._read() as conn:
                g, _ = self._generations(conn)
                for chunk in _batched(ids, 500):
                    found = conn.execute(
                        f"SELECT d.doc_id, d.doc_type, c.title, c.url, c.body, c.source"
                        f" FROM docs_{g} d JOIN content_{g} c ON c.rowid = d.rowid"
                        f" WHERE d.doc_id IN ({', '.join('?' for _ in chunk)})",
                        chunk,
                    )
                    for doc_id, doc_type, title, url, body, source_json in found:
                        documents[doc_id] = StoredDocument(doc_id, doc_type, title, body, url, json.loads(source_json))
        except sqlite3.OperationalError as exc:
            raise SearchBackendUnavailable(f"search database is not answering: {exc}") from exc
        return documents

    def _filter_sql(self, query: SearchQuery, g: int) -> tuple[list[str], list[Any]]:
        filters = query.filters
        clauses: list[str] = []
        params: list[Any] = []
        if filters.doc_type:
            clauses.append(f"d.doc_type IN ({', '.join('?' for _ in filters.doc_type)})")
            params.extend(filters.doc_type)
        for name, value in filters.keyword_filters().items():
            if name == "topics":
                clauses.append(f"d.rowid IN (SELECT rowid FROM topics_{g} WHERE topic = ?)")
            else:
                clauses.append(f"d.{name} = ?")
            params.append(value)
        if filters.date_from is not None:
            clauses.append("d.published_at >= ?")
            params.append(format_datetime(filters.date_from))
        if filters.date_to is not None:
            clauses.append("d.published_at < ?")
            params.append(format_datetime(filters.date_to))
        return clauses, params

    def search(self, query: SearchQuery) -> SearchResult:
        parsed = query.parsed_text
        match = fts5_match_expression(parsed)
        if not parsed.is_empty and match is None:
            # Only punctuation was typed: nothing can match (as Elasticsearch's zero_terms_query "none").
            return SearchResult([], 0, {name: [] for name in FACET_NAMES}, query.page, query.per_page)
        by_date = query.effective_sort == "date"
        try:
            with self._lock, self._read() as conn:
                g, _ = self._generations(conn)
                rows, facets = self._run_search(conn, g, query, match, by_date)
                page = self._fetch_page(conn, g, [row[0] for row in rows])
        except sqlite3.OperationalError as exc:
            raise SearchBackendUnavailable(f"search database is not answering: {exc}") from exc

        pattern = highlight_pattern(parsed)
        hits = []
        for rowid, score in rows:
            doc_id, doc_type, title, url, body, source_json = page[rowid]
            source = json.loads(source_json)
            highlights: dict[str, list[str]] = {}
            if pattern is not None and pattern.search(title):
                highlights["title"] = [_mark(title, pattern)]
            body_snippets = make_snippets(body, pattern, size=self.snippet_size, no_match_size=self.snippet_size)
            if body_snippets:
                highlights["body"] = body_snippets
            hits.append(Hit(doc_id, doc_type, title, url, score, highlights, source))
        total = sum(facets["doc_type"].values())
        return SearchResult(
            hits=hits,
            total=total,
            facets={name: sorted_facets(facets[name], self.facet_size) for name in FACET_NAMES},
            page=query.page,
            per_page=query.per_page,
        )

    def _run_search(
        self, conn: sqlite3.Connection, g: int, query: SearchQuery, match: str | None, by_date: bool
    ) -> tuple[list[tuple[int, float]], dict[str, dict[str, int]]]:
        """One statement: the matching set is computed once, then both ranked for the page and counted for facets.

        Sorted by date, the page does not need the scores of every match, and bm25 is most of a query's cost: only
        the page's scores are computed, by a second statement.
        """
        clauses, params = self._filter_sql(query, g)
        score_page_later = by_date and match is not None
        if match is not None:
            # CROSS JOIN keeps FTS5 as the outer loop: otherwise SQLite may walk a filter index over every document
            # and probe the full-text index once per row, hundreds of times slower.
            source = f"fts_{g} CROSS JOIN docs_{g} d ON d.rowid = fts_{g}.rowid"
            clauses.insert(0, f"fts_{g} MATCH ?")
            params.insert(0, match)
            score = "0.0" if score_page_later else self._bm25(g)
        else:
            source = f"docs_{g} d"
            score = "0.0"
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        order = "published_at DESC, doc_id" if by_date else "score DESC, published_at DESC, doc_id"
        sql = (
            f"WITH matched AS MATERIALIZED ("
            f"SELECT d.rowid AS rowid, {score} AS score, d.published_at AS published_at, d.doc_id AS doc_id,"
            f" d.facets AS facets FROM {source} {where}) "
            f"SELECT * FROM (SELECT 'hit', rowid, score FROM matched ORDER BY {order} LIMIT ? OFFSET ?)"
            f" UNION ALL SELECT 'facets', facets, count(*) FROM matched GROUP BY facets"
        )
        params.extend([query.per_page, query.offset])
        rows: list[tuple[int, float]] = []
        combination_counts: dict[int, int] = {}
        for kind, key, value in conn.execute(sql, params):
            if kind == "hit":
                rows.append((key, float(value)))
            else:
                combination_counts[key] = value
        if score_page_later and rows:
            scores = self._page_scores(conn, g, match, [rowid for rowid, _ in rows])
            rows = [(rowid, scores[rowid]) for rowid, _ in rows]
        combinations = self._combinations(conn, combination_counts)
        facets: dict[str, dict[str, int]] = {name: {} for name in FACET_NAMES}
        column_facets = [facets[_FACET_OF_COLUMN[column]] for column in _FACET_COLUMNS]
        topic_facet = facets[_FACET_OF_COLUMN["topics"]]
        for combination_id, count in combination_counts.items():
            *values, topics = combinations[combination_id]
            for counts, value in zip(column_facets, values, strict=True):
                if value is not None:
                    counts[str(value)] = counts.get(str(value), 0) + count
            for topic in topics:
                topic_facet[topic] = topic_facet.get(topic, 0) + count
        return rows, facets

    def _bm25(self, g: int) -> str:
        return f"-bm25(fts_{g}, {self.title_weight!r}, {self.body_weight!r})"

    def _page_scores(self, conn: sqlite3.Connection, g: int, match: str, rowids: list[int]) -> dict[int, float]:
        """bm25 of a few matching rows. The unary plus keeps the rowid list out of FTS5's own constraints, which
        would run the match again per rowid; bm25 takes its statistics from the whole index, so these scores equal
        those a relevance query gives the same rows."""
        found = conn.execute(
            f"SELECT rowid, {self._bm25(g)} FROM fts_{g} WHERE fts_{g} MATCH ?"
            f" AND +rowid IN ({', '.join('?' for _ in rowids)})",
            [match, *rowids],
        )
        return {rowid: float(score) for rowid, score in found}

    @staticmethod
    def _fetch_page(conn: sqlite3.Connection, g: int, rowids: list[int]) -> dict[int, tuple[Any, ...]]:
        if not rowids:
            return {}
        found = conn.execute(
            f"SELECT d.rowid, d.doc_id, d.doc_type, c.title, c.url, c.body, c.source"
            f" FROM docs_{g} d JOIN content_{g} c ON c.rowid = d.rowid"
            f" WHERE d.rowid IN ({', '.join('?' for _ in rowids)})",
            rowids,
        )
        return {row[0]: row[1:] for row in found}


class _Transaction:
    """BEGIN … COMMIT, or ROLLBACK on error, on an autocommit connection."""

    def __init__(self, connection: sqlite3.Connection, begin: str):
        self.connection = connection
        self.begin = begin

    def __enter__(self) -> sqlite3.Connection:
        try:
            self.connection.execute(self.begin)
        except sqlite3.OperationalError as exc:
            raise SearchBackendUnavailable(f"search database is busy or unavailable: {exc}") from exc
        return self.connection

    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> None:
        if exc_type is None:
            self.connection.execute("COMMIT")
        elif self.connection.in_transaction:
            self.connection.execute("ROLLBACK")
