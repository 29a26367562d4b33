"""Mutated feeds never crash or hang parsing: each is ingested or rejected with a reason."""
import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsfeed.exceptions import FeedRejected
from newsfeed.normalise import FeedContext, normalise_entry
from newsfeed.parse import parse_feed

from .factories import atom, json_feed, make_item, rss

NOW = dt.datetime(2026, 1, 10, tzinfo=dt.UTC)
CONTEXT = FeedContext(feed_id=1, feed_url="https://feeds.example.org/feed", outlet="Fuzz")
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

BASES = [
    rss([make_item(guid="1"), make_item(guid="2", title="Cycle lanes & 房价", link="https://e.org/2")]),
    atom([{"id": "urn:1", "link": "https://e.org/1", "content": "<p>Bike lanes</p>", "author": "Desk"}]),
    json_feed([{"id": "1", "url": "https://e.org/1", "title": "医保", "content_html": "<p>门诊</p>"}]),
]


def ingest_or_reject(document: bytes, headers=None) -> str:
    try:
        parsed = parse_feed(document, headers or {})
    except FeedRejected as rejected:
        assert rejected.reason
        return "rejected"
    assert parsed.entries
    for entry in parsed.entries:
        article = normalise_entry(entry, CONTEXT, NOW, parsed.language)
        assert article.id and article.published_at.tzinfo is not None
    return "ingested"


@FUZZ
@given(base=st.sampled_from(BASES), cut=st.floats(0, 1))
def test_truncated_feeds_are_ingested_or_rejected(base, cut):
    ingest_or_reject(base[: int(len(base) * cut)])


@FUZZ
@given(base=st.sampled_from(BASES), position=st.floats(0, 1), junk=st.binary(min_size=1, max_size=64))
def test_feeds_with_random_bytes_spliced_in_are_ingested_or_rejected(base, position, junk):
    at = int(len(base) * position)
    ingest_or_reject(base[:at] + junk + base[at:])


@FUZZ
@given(
    title=st.text(min_size=1, max_size=200),
    encoding=st.sampled_from(["gbk", "big5", "utf-16", "latin-1", "shift_jis", "utf-8"]),
    declared=st.sampled_from(["utf-8", "gb2312", "iso-8859-1", "big5", "nonsense-charset"]),
)
def test_feeds_in_a_wrong_or_unknown_encoding_are_ingested_or_rejected(title, encoding, declared):
    try:
        document = rss([make_item(title=title, description="正文 body")], title="t", encoding=encoding,
                       declared_encoding=declared)
    except UnicodeEncodeError:
        document = rss([make_item(title=title)], declared_encoding=declared)
    ingest_or_reject(document, {"content-type": f"application/rss+xml; charset={declared}"})


@FUZZ
@given(text=st.text(max_size=500), content_type=st.sampled_from([None, "text/html", "application/json"]))
def test_arbitrary_text_is_rejected_or_ingested(text, content_type):
    ingest_or_reject(text.encode("utf-8", "surrogatepass"), {"content-type": content_type} if content_type else {})


def test_huge_fields_are_bounded():
    huge = "长" * 2_000_000
    document = rss([make_item(title=huge, description=f"<p>{huge}</p>")])

    parsed = parse_feed(document)
    article = normalise_entry(parsed.entries[0], CONTEXT, NOW, parsed.language)

    assert len(article.title) <= 1_000
    assert len(article.content_html) <= 600_000


def test_deeply_nested_json_and_xml_are_rejected_or_ingested():
    assert ingest_or_reject(b"[" * 200_000) == "rejected"
    assert ingest_or_reject(b'{"version": "https://jsonfeed.org/version/1", "items": ' + b"[" * 100_000) == "rejected"
    deep = b"<rss version='2.0'><channel><item><title>t</title><link>https://e.org/1</link><description>"
    ingest_or_reject(deep + b"<div>" * 50_000 + b"x" + b"</div>" * 50_000 + b"</description></item></channel></rss>")


@FUZZ
@given(depth=st.integers(2, 12), width=st.integers(2, 12))
def test_entity_bombs_of_any_shape_stay_small(depth, width):
    levels = ['<!ENTITY e0 "boom">'] + [
        f'<!ENTITY e{i} "{("&e" + str(i - 1) + ";") * width}">' for i in range(1, depth)
    ]
    document = (f'<?xml version="1.0"?><!DOCTYPE rss [{"".join(levels)}]><rss version="2.0"><channel><title>t</title>'
                f'<item><title>&e{depth - 1};</title><link>https://e.org/1</link><description>&e{depth - 1};'
                '</description></item></channel></rss>').encode()
    try:
        parsed = parse_feed(document)
    except FeedRejected:
        return
    entry = parsed.entries[0]
    total = sum(len(part.value) for part in (entry.title, entry.summary) if part is not None)
    assert total < 10_000  # values of surviving entities are short and reference-free
