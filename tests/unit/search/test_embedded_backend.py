"""The embedded SQLite FTS5 backend: what the shared contract does not cover (syntax safety, snippets, files
shared by several processes, rebuilding while serving)."""
import pathlib
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from search.backends.base import SearchBackendError
from search.backends.embedded import (
    EmbeddedSearchBackend,
    fts5_match_expression,
    highlight_pattern,
    make_snippets,
)
from search.documents import build_document
from search.queries import SearchQuery, parse_query_text, parse_search_params

REPO = pathlib.Path(__file__).resolve().parents[3]


def make_doc(number=1, **overrides):
    values = {
        "doc_id": f"article:{number}",
        "version": 1,
        "title": f"医保新闻 {number}",
        "body": "门诊报销比例提高，医保基金运行平稳。",
        "url": f"https://example.org/{number}",
        "outlet": "人民日报",
        "published_at": datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=number),
    }
    values.update(overrides)
    return build_document("article", values)


@pytest.fixture
def backend():
    instance = EmbeddedSearchBackend(":memory:")
    instance.ensure_schema()
    yield instance
    instance.close()


def search(backend, text, **params):
    return backend.search(parse_search_params({"q": text, **params}))


@pytest.mark.parametrize(
    "text",
    ['医保 NEAR(a b)', "医保*", 'title:医保', "医保 OR 房价", "医保 NOT 房价", '"', '""医保""', "^医保", "医保 +",
     "a AND", "(", "医保)", "{title body}: x", "-医保", "'; DROP TABLE docs_1; --"],
)
def test_fts5_syntax_in_user_input_is_never_interpreted(backend, text):
    backend.upsert([make_doc()])
    result = search(backend, text)
    assert result.total in (0, 1)
    assert backend.count() == 1


def test_every_term_of_the_match_expression_is_a_quoted_string():
    expression = fts5_match_expression(parse_query_text('医保 OR "改革 方案" x"y'))
    assert expression == '"医保" AND "or" AND "x" AND "y" AND "改革 方案 改革方案"'


def test_a_query_of_punctuation_only_matches_nothing(backend):
    backend.upsert([make_doc()])
    result = search(backend, "？！。")
    assert result.total == 0 and result.hits == []


def test_a_long_body_gives_windows_around_the_matches():
    text = "开头的内容。" * 50 + "这里提到医保改革。" + "中间的内容。" * 50 + "再次提到医保。" + "结尾。" * 30
    snippets = make_snippets(text, highlight_pattern(parse_query_text("医保")), size=40)
    assert len(snippets) == 2
    assert all("<mark>医保</mark>" in snippet for snippet in snippets)
    assert all(snippet.startswith("…") and snippet.endswith("…") for snippet in snippets)
    assert all(len(snippet) < 80 for snippet in snippets)


def test_a_snippet_escapes_everything_but_the_marks():
    snippets = make_snippets('<img src=x onerror="alert(1)"> 医保 & <b>', highlight_pattern(parse_query_text("医保")))
    assert snippets == ['&lt;img src=x onerror="alert(1)"&gt; <mark>医保</mark> &amp; &lt;b&gt;']


def test_a_match_in_english_ignores_case_and_keeps_the_original_spelling():
    snippets = make_snippets("New Health Insurance rules", highlight_pattern(parse_query_text("health")))
    assert snippets == ["New <mark>Health</mark> Insurance rules"]


def test_a_phrase_typed_with_a_space_is_highlighted_where_the_text_has_none():
    pattern = highlight_pattern(parse_query_text('"health insurance" "医疗保障 改革"'))
    assert "<mark>医疗保障改革</mark>" in make_snippets("深化医疗保障改革", pattern)[0]
    assert make_snippets("Health\n  insurance", pattern) == ["<mark>Health insurance</mark>"]


def test_adjacent_matches_are_marked_as_one():
    pattern = highlight_pattern(parse_query_text("医疗保障 改革"))
    assert make_snippets("深化医疗保障改革", pattern) == ["深化<mark>医疗保障改革</mark>"]


def test_a_body_without_a_match_shows_its_beginning():
    assert make_snippets("甲" * 300, None, no_match_size=10) == ["甲" * 10 + "…"]


def test_two_character_words_inside_longer_words_are_found(backend):
    backend.upsert([
        make_doc(1, title="城乡居民医保缴费开始", body="今年起缴费标准调整。"),
        make_doc(2, title="高房价下的年轻人", body="租房还是买房。"),
        make_doc(3, title="国家医保局召开发布会", body="介绍最新政策。"),
    ])
    assert {hit.doc_id for hit in search(backend, "医保").hits} == {"article:1", "article:3"}
    assert {hit.doc_id for hit in search(backend, "房价").hits} == {"article:2"}


def test_search_before_the_schema_exists_says_what_to_do():
    fresh = EmbeddedSearchBackend(":memory:")
    with pytest.raises(SearchBackendError, match="ensure_schema"):
        fresh.search(SearchQuery(text="医保"))


def test_ensure_schema_twice_keeps_the_documents(backend):
    backend.upsert([make_doc()])
    backend.ensure_schema()
    assert backend.count() == 1


def test_an_index_in_an_outdated_layout_is_replaced_by_an_empty_current_one(tmp_path):
    path = tmp_path / "search.sqlite3"
    backend = EmbeddedSearchBackend(path)
    backend.ensure_schema()
    backend.upsert([make_doc(1)])
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE search_meta SET value = '1' WHERE key = 'schema_version'")
    backend.ensure_schema()
    assert backend.count() == 0
    backend.upsert([make_doc(2)])
    assert search(backend, "医保").total == 1
    backend.close()


def test_a_file_database_uses_wal_and_is_shared_by_two_processes_worth_of_connections(tmp_path):
    path = tmp_path / "search.sqlite3"
    writer = EmbeddedSearchBackend(path)
    writer.ensure_schema()
    reader = EmbeddedSearchBackend(path)
    writer.upsert([make_doc(1)])
    assert reader.count() == 1
    reader.upsert([make_doc(2)])
    assert writer.count() == 2
    assert writer.connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert writer.connection.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
    writer.close()
    reader.close()


def test_searches_keep_working_while_another_process_reindexes(tmp_path):
    path = tmp_path / "search.sqlite3"
    rebuilder = EmbeddedSearchBackend(path, batch_size=2)
    rebuilder.ensure_schema()
    rebuilder.upsert([make_doc(number) for number in range(1, 6)])
    searcher = EmbeddedSearchBackend(path)
    seen_during_rebuild = []

    def source():
        for number in range(1, 8):
            if number == 4:
                # Half of the new generation exists: the serving one must still answer in full.
                seen_during_rebuild.append(searcher.search(SearchQuery(text="医保")).total)
                searcher.upsert([make_doc(99, title="重建期间写入的医保新闻")])
            yield make_doc(number, version=2)

    assert rebuilder.reindex(source()) == 7
    assert seen_during_rebuild == [5]
    assert searcher.search(SearchQuery(text="医保", per_page=50)).total == 8
    assert searcher.count() == 8
    rebuilder.close()
    searcher.close()


def test_a_failed_reindex_leaves_the_serving_index_untouched(backend):
    backend.upsert([make_doc(1), make_doc(2)])

    def broken_source():
        yield make_doc(3)
        raise RuntimeError("source database went away")

    with pytest.raises(RuntimeError):
        backend.reindex(broken_source())
    assert backend.count() == 2
    tables = {row[0] for row in backend.connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert not {name for name in tables if name.endswith("_2")}
    assert backend.reindex(iter([make_doc(5)])) == 1
    assert backend.count() == 1


def test_a_second_reindex_is_refused_while_one_is_running(tmp_path):
    path = tmp_path / "search.sqlite3"
    first = EmbeddedSearchBackend(path)
    first.ensure_schema()
    second = EmbeddedSearchBackend(path)
    refused = []

    def source():
        try:
            second.reindex(iter([]))
        except SearchBackendError as error:
            refused.append(str(error))
        yield make_doc(1)

    assert first.reindex(source()) == 1
    assert refused and "already running" in refused[0]
    first.close()
    second.close()


def test_a_rebuild_abandoned_by_a_crashed_process_is_taken_over(tmp_path):
    path = tmp_path / "search.sqlite3"
    backend = EmbeddedSearchBackend(path)
    backend.ensure_schema()
    with sqlite3.connect(path) as raw:
        raw.execute("INSERT INTO search_meta VALUES ('building_generation', '7'), ('building_heartbeat', '0')")
    assert backend.reindex(iter([make_doc(1)])) == 1
    assert backend.count() == 1
    backend.close()


def test_the_same_document_twice_in_one_batch_keeps_the_newer(backend):
    assert backend.upsert([make_doc(1, version=2, title="新 公交"), make_doc(1, version=1, title="旧 地铁")]) == 1
    assert search(backend, "公交").total == 1 and search(backend, "地铁").total == 0


def test_changing_topics_replaces_the_old_ones(backend):
    backend.upsert([make_doc(1, topics=["health", "pension"])])
    backend.upsert([make_doc(1, version=2, topics=["housing"])])
    assert search(backend, "", topic="health").total == 0
    assert search(backend, "", topic="housing").total == 1


def test_ping_is_true_for_a_working_database(backend):
    assert backend.ping() is True


def test_facets_follow_a_document_whose_outlet_and_topics_changed(backend):
    backend.upsert([make_doc(1, outlet="财新", topics=["health"]), make_doc(2, outlet="财新", topics=["health"])])
    backend.upsert([make_doc(1, version=2, outlet="界面", topics=["housing", "health"])])
    result = search(backend, "医保")
    assert result.facet_counts("outlet") == {"财新": 1, "界面": 1}
    assert result.facet_counts("topic") == {"health": 2, "housing": 1}
    assert result.total == 2


def test_a_second_backend_on_the_same_file_reads_combinations_written_by_the_first(tmp_path):
    path = tmp_path / "search.sqlite3"
    writer = EmbeddedSearchBackend(path)
    writer.ensure_schema()
    reader = EmbeddedSearchBackend(path)
    assert search(reader, "医保").total == 0
    writer.upsert([make_doc(1, outlet="光明日报", topics=["education"])])
    result = search(reader, "医保")
    assert result.facet_counts("outlet") == {"光明日报": 1}
    assert result.facet_counts("topic") == {"education": 1}
    writer.close()
    reader.close()


def test_merging_segments_after_many_small_writes_keeps_every_result(backend):
    for number in range(1, 41):
        backend.upsert([make_doc(number)])
    before = [hit.doc_id for hit in search(backend, "医保", per_page="50").hits]
    backend.optimize()
    assert [hit.doc_id for hit in search(backend, "医保", per_page="50").hits] == before
    assert len(before) == 40


WRITER_SCRIPT = """
import sys
from datetime import UTC, datetime
from search.backends.embedded import EmbeddedSearchBackend
from search.documents import build_document

path, name = sys.argv[1], sys.argv[2]
backend = EmbeddedSearchBackend(path, busy_timeout_ms=10000)
for number in range(30):
    backend.upsert([build_document("article", {
        "doc_id": f"article:{name}-{number}", "version": 1, "title": f"医保新闻 {name} {number}",
        "body": "并发写入。", "url": "https://example.org/", "outlet": name,
        "published_at": datetime(2026, 1, 1, tzinfo=UTC),
    })])
backend.close()
"""


def test_several_processes_write_the_same_index_file_at_once(tmp_path):
    path = tmp_path / "search.sqlite3"
    backend = EmbeddedSearchBackend(path)
    backend.ensure_schema()
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER_SCRIPT, str(path), name], cwd=REPO)
        for name in ("alpha", "beta", "gamma")
    ]
    while any(writer.poll() is None for writer in writers):
        search(backend, "医保")  # reads go on while the others write
    assert [writer.returncode for writer in writers] == [0, 0, 0]
    result = search(backend, "医保", per_page="10")
    assert result.total == 90
    assert result.facet_counts("outlet") == {"alpha": 30, "beta": 30, "gamma": 30}
    backend.close()


def test_a_date_sorted_page_carries_the_scores_a_relevance_search_gives_the_same_documents(backend):
    # Sorted by date, only the page is scored (by its own statement); the scores must not differ for that.
    backend.upsert([
        make_doc(number, title=f"医保新闻 {number}" if number % 3 else f"医保 医保 快讯 {number}",
                 body="门诊报销比例提高。" * (number % 4 + 1) + ("医保基金运行平稳。" if number % 2 else ""))
        for number in range(1, 41)
    ])
    by_relevance = {hit.doc_id: hit.score for hit in search(backend, "医保 门诊", per_page="100").hits}
    for page in ("1", "2", "3"):
        by_date = search(backend, "医保 门诊", sort="date", per_page="15", page=page)
        assert by_date.total == 40
        assert [hit.doc_id for hit in by_date.hits] == [
            f"article:{number}" for number in range(40 - 15 * (int(page) - 1), max(0, 25 - 15 * (int(page) - 1)), -1)
        ]
        assert {hit.doc_id: hit.score for hit in by_date.hits} == {
            hit.doc_id: by_relevance[hit.doc_id] for hit in by_date.hits
        }
    assert len(set(by_relevance.values())) > 1  # the scores do differ between documents
