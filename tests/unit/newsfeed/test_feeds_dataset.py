"""Every third-party feed in ../shared/data/feeds is either ingested or rejected with a reason, never a crash."""
import datetime as dt

import pytest

from newsfeed.exceptions import FeedRejected
from newsfeed.normalise import FeedContext, normalise_entry
from newsfeed.parse import decode_document, parse_feed

pytestmark = pytest.mark.dataset

NOW = dt.datetime(2026, 1, 10, tzinfo=dt.UTC)
NOT_FEEDS = ("output", "fulltext")  # rss-parser's expected JSON and full-text HTML pages are not feeds


@pytest.fixture(scope="module")
def feed_files(shared_data):
    root = shared_data / "feeds"
    files = sorted(
        path for path in root.rglob("*")
        if path.is_file() and path.name != "SOURCE.txt" and not set(NOT_FEEDS) & set(path.relative_to(root).parts)
    )
    if not files:
        pytest.skip(f"no feed files under {root}")
    return root, files


def ingest(path):
    parsed = parse_feed(path.read_bytes(), {}, base_url="https://feeds.example.org/feed")
    context = FeedContext(feed_id=1, feed_url="https://feeds.example.org/feed", outlet=parsed.title or "outlet")
    return parsed, [normalise_entry(entry, context, NOW, parsed.language) for entry in parsed.entries]


def test_every_feed_file_is_ingested_or_rejected_with_a_reason(feed_files):
    root, files = feed_files
    ingested, rejected = {}, {}
    for path in files:
        name = str(path.relative_to(root))
        try:
            _, articles = ingest(path)
        except FeedRejected as error:
            assert error.reason.strip(), name
            rejected[name] = error.reason
            continue
        assert articles, name
        for article in articles:
            assert article.title or article.text, name
            assert article.published_at.tzinfo is dt.UTC, name
            assert "<script" not in article.content_html.lower(), name
            assert article.language, name
        ingested[name] = len(articles)

    assert len(ingested) + len(rejected) == len(files)
    assert sum(ingested.values()) > 3000  # the set holds ~3,500 usable items
    for name in [n for n in files if "parser/well" in str(n)]:
        assert str(name.relative_to(root)) in ingested


def test_html_pages_instead_of_feeds_are_rejected_as_html(feed_files):
    root, files = feed_files
    html_pages = [path for path in files if "feed_type/html" in str(path)]
    assert html_pages

    for path in html_pages:
        with pytest.raises(FeedRejected, match="HTML page, not a feed"):
            ingest(path)


def test_gbk_html_maintenance_page_is_rejected_not_garbled(feed_files):
    root, _ = feed_files
    path = root / "zh/rssant/feedlib/testdata/feed_type/html/http-blog-hexun-com-group-getrssresouce-aspx-classid-74.xml"

    text, encoding = decode_document(path.read_bytes())

    assert encoding == "gb18030" and "\ufffd" not in text
    with pytest.raises(FeedRejected, match="HTML"):
        ingest(path)


def test_undeclared_iso_8859_1_feed_reads_as_portuguese(feed_files):
    root, _ = feed_files

    parsed, articles = ingest(root / "en/rss-parser/input/uolNoticias.rss")

    assert parsed.encoding == "cp1252"
    assert any("ã" in article.text or "ç" in article.text for article in articles)
    assert not any("Ã" in article.text for article in articles)


@pytest.mark.parametrize(
    ("sample", "expected"),
    [("big5.xml", "《11月的蕭邦》"), ("gb2312:gb18030.xml", "信息交换用汉字编码字符集"),
     ("gbk:gb18030.json", "中国国家标准简体中文字符集")],
)
def test_chinese_charset_samples_decode_to_chinese(feed_files, sample, expected):
    root, _ = feed_files

    text, _ = decode_document((root / "zh/rssant/feedlib/testdata/encoding/chardet" / sample).read_bytes())

    assert expected in text


def test_chinese_news_feed_is_ingested_as_chinese(feed_files):
    root, _ = feed_files

    _, articles = ingest(root / "zh/rssant/feedlib/testdata/parser/warn/https-www-oschina-net-news-rss-show-industry.xml")

    assert len(articles) == 50
    assert sum(article.language == "zh" for article in articles) >= 45


def test_json_feeds_are_ingested(feed_files):
    root, _ = feed_files

    parsed, articles = ingest(root / "en/feedjira/sample_feeds/json_feed.json")

    assert parsed.format.startswith("json") and len(articles) == 20
