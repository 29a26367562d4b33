"""Embedded search backend speed, beside raw SQLite FTS5 measured in the same run on the same data.

    .venv/bin/python bench/search.py                  # 100,000 documents (a few minutes, mostly segmentation)
    .venv/bin/python bench/search.py --docs 10000     # quick run

Corpus: the 1,223 Chinese news items of ../shared/data/news/zh repeated with distinct ids and dates until --docs is
reached, plus the 60 State Council documents as policies and the citizen messages of comments/zh/附件2.csv as
approved comments (those still carrying a phone number or e-mail are refused by the document builder, as they
would be in production; the count is printed).

Indexing: EmbeddedSearchBackend.upsert in batches, docs/s. Baseline: the floor of the same work — segmentation with
search.analysis.segment_for_index plus a plain INSERT into a bare FTS5 table, no metadata, versions or topics — on
the first --baseline-docs documents.

Queries: a mixed set (two-character Chinese words, several words, quoted phrases, English, with filters, newest
first), each run --rounds times through EmbeddedSearchBackend.search (ranking, total, six facets, page fetch,
snippets from the original text). Floor: the same FTS5 MATCH with the same filters as one hand-written SQL statement
returning the top page's rowids by bm25, or by date for the newest-first queries (no total, no facets, no snippets),
on the same tables. p50/p95 and their ratios.

Reads ../shared/data relative to the repository; says so and exits 2 when it is absent.
"""
from __future__ import annotations

import argparse
import csv
import html
import itertools
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import nh3  # noqa: E402

from search.analysis import segment_for_index  # noqa: E402
from search.backends.embedded import EmbeddedSearchBackend, fts5_match_expression  # noqa: E402
from search.documents import InvalidDocument, SearchDocument, build_document, format_datetime  # noqa: E402
from search.queries import SearchQuery, parse_search_params  # noqa: E402

DATA = REPO.parent / "shared" / "data"
NEWS = DATA / "news" / "zh"
POLICIES = DATA / "policies" / "zh" / "state_council_docs.jsonl"
COMMENTS = DATA / "comments" / "zh" / "附件2.csv"
OUTLETS = {
    "caixin-latest": "财新", "cctv": "央视", "guangming": "光明日报", "jiemian": "界面", "people-daily": "人民日报",
    "people-politics": "人民网", "xwlb": "新闻联播", "zaobao": "联合早报",
}
TOPICS = ("economy", "health", "housing", "education", "technology")
BASE_DATE = datetime(2026, 2, 1, tzinfo=UTC)

QUERIES: list[tuple[str, dict[str, str]]] = [
    ("two-char", {"q": "医保"}),
    ("two-char", {"q": "房价"}),
    ("two-char", {"q": "就业"}),
    ("two-char", {"q": "养老"}),
    ("two-char", {"q": "教育"}),
    ("multi-term", {"q": "医疗 改革"}),
    ("multi-term", {"q": "房地产 市场 调控"}),
    ("multi-term", {"q": "人工智能 产业 发展"}),
    ("multi-term", {"q": "个人所得税 专项附加扣除"}),
    ("phrase", {"q": '"高质量发展"'}),
    ("phrase", {"q": '"新质生产力"'}),
    ("phrase", {"q": '"营商环境" 优化'}),
    ("english", {"q": "AI"}),
    ("english", {"q": "GDP 增长"}),
    ("filtered", {"q": "医保", "doc_type": "article"}),
    ("filtered", {"q": "发展", "outlet": "财新"}),
    ("filtered", {"q": "改革", "topic": "health", "sort": "date"}),
    ("filtered", {"q": "就业", "doc_type": "policy,comment"}),
    ("filtered", {"q": "经济", "date_from": "2025-06-01", "date_to": "2025-12-31"}),
    ("filtered", {"q": "城市 建设", "language": "zh", "page": "3"}),
    ("date", {"q": "经济", "sort": "date"}),
    ("date", {"q": "发展", "doc_type": "article", "sort": "date"}),
]


def html_to_text(markup: str) -> str:
    # nh3 with no allowed tags keeps only text (dropping script/style content); it leaves entities escaped.
    return " ".join(html.unescape(nh3.clean(markup, tags=set())).split())


def load_news() -> list[dict]:
    items = []
    for path in sorted(NEWS.glob("*.jsonl")):
        outlet = OUTLETS.get(path.stem, path.stem)
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                item = json.loads(line)
                items.append({
                    "title": " ".join((item.get("title") or "").split()) or "(无标题)",
                    "body": html_to_text(item.get("content_html") or ""),
                    "url": item.get("url") or "https://example.org/",
                    "outlet": outlet,
                })
    return items


def policy_docs() -> list[SearchDocument]:
    docs = []
    with POLICIES.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            item = json.loads(line)
            docs.append(build_document("policy", {
                "policy_id": str(number),
                "version": 1,
                "title": item["title"],
                "body": " ".join(item.get("content_text", "").split()),
                "url": item.get("crawl_url") or f"https://example.org/policy/{number}",
                "department": item.get("release_office") or "国务院",
                "document_number": item.get("release_number") or None,
                "consultation_state": "closed",
                "topics": [TOPICS[number % len(TOPICS)]],
                "published_at": BASE_DATE - timedelta(days=number),
            }))
    return docs


def comment_docs() -> tuple[list[SearchDocument], int]:
    docs, refused = [], 0
    with COMMENTS.open(encoding="utf-8-sig", newline="") as handle:
        for number, row in enumerate(csv.DictReader(handle), 1):
            try:
                docs.append(build_document("comment", {
                    "doc_id": f"comment:{number}",
                    "status": "approved",
                    "version": 1,
                    "title": " ".join(row["留言主题"].split()) or "(无主题)",
                    "body": " ".join(row["留言详情"].split()),
                    "url": f"https://example.org/comments/{number}",
                    "policy_id": str(number % 60 + 1),
                    "topics": [row.get("一级分类") or "其他"],
                    "published_at": BASE_DATE - timedelta(hours=number),
                }))
            except InvalidDocument:
                refused += 1
    return docs, refused


def article_docs(news: list[dict], count: int) -> Iterator[SearchDocument]:
    for number in range(count):
        item = news[number % len(news)]
        repetition = number // len(news)
        yield build_document("article", {
            "doc_id": f"article:{repetition}-{number % len(news)}",
            "version": 1,
            "title": item["title"],
            "body": item["body"],
            "url": f"{item['url']}#r{repetition}",
            "outlet": item["outlet"],
            "topics": [TOPICS[number % len(TOPICS)]],
            "published_at": BASE_DATE - timedelta(minutes=7 * number),
        })


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def floor_sql(query: SearchQuery, generation: int, weights: tuple[float, float]) -> tuple[str, list]:
    """The hand-written FTS5 statement for the same match and filters: top page by bm25, nothing else."""
    g = generation
    clauses, params = [f"fts_{g} MATCH ?"], [fts5_match_expression(query.parsed_text)]
    filters = query.filters
    if filters.doc_type:
        clauses.append(f"d.doc_type IN ({', '.join('?' for _ in filters.doc_type)})")
        params += list(filters.doc_type)
    for name, value in filters.keyword_filters().items():
        if name == "topics":
            clauses.append(f"d.rowid IN (SELECT rowid FROM topics_{g} WHERE topic = ?)")
        else:
            clauses.append(f"d.{name} = ?")
        params.append(value)
    if filters.date_from:
        clauses.append("d.published_at >= ?")
        params.append(format_datetime(filters.date_from))
    if filters.date_to:
        clauses.append("d.published_at < ?")
        params.append(format_datetime(filters.date_to))
    order = "d.published_at DESC" if query.effective_sort == "date" else f"bm25(fts_{g}, {weights[0]}, {weights[1]})"
    sql = (
        f"SELECT d.rowid FROM fts_{g} CROSS JOIN docs_{g} d ON d.rowid = fts_{g}.rowid WHERE {' AND '.join(clauses)}"
        f" ORDER BY {order} LIMIT ? OFFSET ?"
    )
    return sql, params + [query.per_page, query.offset]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=100_000, help="documents to index in all (default 100000)")
    parser.add_argument("--rounds", type=int, default=5, help="times each query is run (default 5)")
    parser.add_argument("--baseline-docs", type=int, default=10_000, help="documents for the raw indexing floor")
    parser.add_argument("--batch", type=int, default=1000, help="documents per upsert call (default 1000)")
    parser.add_argument("--keep", type=Path, help="write the index to this file instead of a temporary one;"
                        " if it already holds an index, skip indexing and only time the queries")
    args = parser.parse_args()
    if not NEWS.is_dir() or not POLICIES.is_file() or not COMMENTS.is_file():
        print(f"search data not found under {DATA} (expected ../shared/data beside the repository)", file=sys.stderr)
        return 2
    if args.docs < 1000:
        parser.error("--docs must be at least 1000")

    news = load_news()
    policies = policy_docs()
    comments, refused = comment_docs()
    article_count = max(0, args.docs - len(policies) - len(comments))
    print(f"corpus: {article_count} articles ({len(news)} news items repeated), {len(policies)} policies, "
          f"{len(comments)} comments ({refused} refused by the builder for contact data)")

    with tempfile.TemporaryDirectory() as scratch:
        path = args.keep or Path(scratch) / "search.sqlite3"
        reuse = path.exists() and path.stat().st_size > 0
        backend = EmbeddedSearchBackend(path, batch_size=args.batch)
        backend.ensure_schema()
        if reuse:
            print(f"reusing the index in {path} ({backend.count()} documents): indexing not measured")

        if not reuse:
            all_docs = itertools.chain(policies, comments, article_docs(news, article_count))
            started = time.perf_counter()
            indexed = 0
            first_part: tuple[int, float] | None = None
            for batch in iter(lambda: list(itertools.islice(all_docs, args.batch)), []):
                indexed += backend.upsert(batch)
                if first_part is None and indexed >= args.baseline_docs:
                    first_part = (indexed, time.perf_counter() - started)
            index_seconds = time.perf_counter() - started
            backend_rate = indexed / index_seconds
            started = time.perf_counter()
            backend.optimize()  # what a reindex does at its end; an operator runs it after a bulk import
            optimize_seconds = time.perf_counter() - started
            first_count, first_seconds = first_part or (indexed, index_seconds)
            first_rate = first_count / first_seconds

            # Floor: segmentation + bare FTS5 insert of the same documents, nothing else.
            sample = list(itertools.islice(itertools.chain(policies, comments, article_docs(news, article_count)),
                                           min(args.baseline_docs, indexed)))
            raw = sqlite3.connect(Path(scratch) / "raw.sqlite3", isolation_level=None)
            raw.execute("PRAGMA journal_mode = WAL")
            raw.execute("PRAGMA synchronous = NORMAL")
            raw.execute("CREATE VIRTUAL TABLE raw_fts USING fts5(title, body, tokenize = 'unicode61 remove_diacritics 2')")
            started = time.perf_counter()
            for offset in range(0, len(sample), args.batch):
                batch = sample[offset:offset + args.batch]
                rows = [(segment_for_index(doc.title), segment_for_index(doc.body)) for doc in batch]
                raw.execute("BEGIN")
                raw.executemany("INSERT INTO raw_fts (title, body) VALUES (?, ?)", rows)
                raw.execute("COMMIT")
            raw_rate = len(sample) / (time.perf_counter() - started)
            raw.close()

            print(f"\nindexing, first {first_count} docs: backend {first_rate:,.0f} docs/s,"
                  f" floor (segment + bare FTS5 insert, same {len(sample)} docs) {raw_rate:,.0f} docs/s,"
                  f" ratio {raw_rate / first_rate:.2f}x")
            print(f"indexing, all {indexed} docs: backend {backend_rate:,.0f} docs/s ({index_seconds:.1f} s),"
                  f" then segment merge {optimize_seconds:.1f} s")
            size_mb = sum(p.stat().st_size for p in Path(path).parent.glob(Path(path).name + "*")) / 1e6
            print(f"index file: {size_mb:,.0f} MB for {backend.count()} documents")

        queries = [(kind, parse_search_params(params)) for kind, params in QUERIES]
        floor_connection = sqlite3.connect(path, isolation_level=None)
        # Same cache settings as the backend's connection, so the floor is not handicapped.
        floor_connection.execute(f"PRAGMA cache_size = {-backend.cache_size_kib}")
        floor_connection.execute(f"PRAGMA mmap_size = {backend.mmap_size_bytes}")
        generation = int(floor_connection.execute(
            "SELECT value FROM search_meta WHERE key = 'active_generation'").fetchone()[0])
        weights = (backend.title_weight, backend.body_weight)
        # Warm both paths once so the page cache is equally hot for each.
        for _, query in queries:
            backend.search(query)
            sql, params = floor_sql(query, generation, weights)
            floor_connection.execute(sql, params).fetchall()

        backend_times: dict[str, list[float]] = {}
        floor_times: dict[str, list[float]] = {}
        totals: dict[str, int] = {}
        for _ in range(args.rounds):
            for (kind, query), (_, params) in zip(queries, QUERIES, strict=True):
                label = f"{kind}: {json.dumps(params, ensure_ascii=False)}"
                sql, sql_params = floor_sql(query, generation, weights)
                started = time.perf_counter()
                floor_connection.execute(sql, sql_params).fetchall()
                floor_times.setdefault(label, []).append(time.perf_counter() - started)
                started = time.perf_counter()
                result = backend.search(query)
                backend_times.setdefault(label, []).append(time.perf_counter() - started)
                totals[label] = result.total
        floor_connection.close()
        backend.close()

    print(f"\nqueries ({args.rounds} rounds; median ms per query: backend / FTS5 floor, matches):")
    for label in backend_times:
        backend_ms = statistics.median(backend_times[label]) * 1000
        floor_ms = statistics.median(floor_times[label]) * 1000
        print(f"  {backend_ms:7.2f} / {floor_ms:7.2f}  {totals[label]:>7}  {label}")
    every_backend = [t * 1000 for times in backend_times.values() for t in times]
    every_floor = [t * 1000 for times in floor_times.values() for t in times]
    p50, p95 = percentile(every_backend, 0.5), percentile(every_backend, 0.95)
    f50, f95 = percentile(every_floor, 0.5), percentile(every_floor, 0.95)
    print(f"\nquery p50: backend {p50:.2f} ms, FTS5 floor {f50:.2f} ms, ratio {p50 / f50:.2f}x")
    print(f"query p95: backend {p95:.2f} ms, FTS5 floor {f95:.2f} ms, ratio {p95 / f95:.2f}x")
    print(f"targets: p95 < 50 ms: {'met' if p95 < 50 else 'NOT met'}; "
          f"within 2x of the floor at p95: {'met' if p95 / f95 <= 2 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
