import datetime as dt

import pytest

from newsfeed.exceptions import FeedRejected
from newsfeed.parse import decode_document, parse_date, parse_feed

from .factories import atom, json_feed, make_item, rss


def test_rss2_feed_yields_entries_with_identity_title_and_body():
    parsed = parse_feed(rss([make_item(guid="a-1"), make_item(title="第二条", link="https://news.example.cn/2")]))

    assert parsed.format == "rss20"
    assert parsed.title == "示例日报"
    assert parsed.language == "zh-cn"
    assert [entry.title.value for entry in parsed.entries] == ["市医保局就门诊报销新规征求意见", "第二条"]
    assert parsed.entries[0].guid == "a-1"
    assert "60%" in parsed.entries[0].summary.value


def test_atom_feed_keeps_html_content_unsanitised_for_normalise_to_clean():
    parsed = parse_feed(atom([{"id": "urn:1", "link": "https://bikes.example.org/lanes",
                               "content": "<p>Protected <b>lanes</b></p><script>x()</script>"}]))

    entry = parsed.entries[0]
    assert parsed.format == "atom10"
    assert entry.link == "https://bikes.example.org/lanes"
    assert entry.content.is_html
    assert "<script>" in entry.content.value  # feedparser's sanitiser is off on purpose; nh3 runs later


def test_rss1_rdf_feed_is_parsed():
    document = b"""<?xml version="1.0"?>
    <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/">
      <channel rdf:about="https://example.org/"><title>RDF news</title><link>https://example.org/</link></channel>
      <item rdf:about="https://example.org/1"><title>One</title><link>https://example.org/1</link>
        <description>First item</description></item>
    </rdf:RDF>"""

    parsed = parse_feed(document)

    assert parsed.format == "rss10"
    assert parsed.entries[0].link == "https://example.org/1"


def test_json_feed_1_1_items_are_parsed_with_our_own_reader():
    parsed = parse_feed(json_feed([
        {"id": "1", "url": "https://example.org/1", "title": "Cycle lanes", "content_html": "<p>Paint is not</p>",
         "date_published": "2026-01-05T09:30:00+01:00", "authors": [{"name": "Desk"}], "tags": ["transport"]},
        {"id": 2, "url": "https://example.org/2", "content_text": "Plain body", "summary": "Short"},
    ], language="en"))

    first, second = parsed.entries
    assert parsed.format == "json11"
    assert parsed.language == "en"
    assert first.published == dt.datetime(2026, 1, 5, 8, 30, tzinfo=dt.UTC)
    assert first.author == "Desk" and first.categories == ["transport"]
    assert second.guid == "2"
    assert second.content.type == "text/plain"


def test_gbk_feed_that_declares_utf8_is_redecoded_not_mojibake():
    document = rss([make_item(title="住房租赁市场房价调控意见")], encoding="gbk", declared_encoding="utf-8")

    parsed = parse_feed(document, {"content-type": "application/rss+xml; charset=utf-8"})

    assert parsed.entries[0].title.value == "住房租赁市场房价调控意见"
    assert parsed.encoding == "gb18030"


@pytest.mark.parametrize("declared", ["gb2312", "gbk", "gb18030"])
def test_gb_family_feeds_are_read_with_the_gb18030_superset(declared):
    # 镕 is outside GB2312 but publishers labelled GB2312 use it anyway
    document = rss([make_item(title="朱镕基谈医保改革")], encoding="gb18030", declared_encoding=declared)

    assert parse_feed(document).entries[0].title.value == "朱镕基谈医保改革"


def test_big5_feed_is_decoded():
    item = make_item(title="臺北市自行車道規劃草案", description="市府公開徵求意見")
    document = rss([item], title="臺灣新聞", language="zh-tw", encoding="big5", declared_encoding="big5")

    assert parse_feed(document).entries[0].title.value == "臺北市自行車道規劃草案"


def test_undeclared_latin1_feed_is_detected_as_western_not_utf8():
    text = "Mãe de utente é a nova presidente da Associação de Saúde; pública, ação e educação."
    document = (f"<rss version='2.0'><channel><title>Notícias</title><item><title>{text}</title>"
                f"<link>https://exemplo.br/1</link><description>{text} {text}</description></item>"
                f"</channel></rss>").encode("latin-1")

    parsed = parse_feed(document)

    assert parsed.entries[0].title.value == text


def test_utf8_document_labelled_latin1_is_read_as_utf8():
    text, encoding = decode_document('<?xml version="1.0" encoding="ISO-8859-1"?><rss>医保</rss>'.encode())

    assert "医保" in text and encoding == "utf-8"


def test_malformed_but_readable_feed_is_accepted_with_a_warning():
    document = rss([make_item()]).replace(b"</channel></rss>", b"<broken></channel>")

    parsed = parse_feed(document)

    assert len(parsed.entries) == 1
    assert parsed.warnings and parsed.warnings[0].startswith("not well-formed")


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (b"<!DOCTYPE html><html><head><title>404</title></head><body>Not found</body></html>", "HTML page, not a feed"),
        (rss([]), "no entries"),
        (b"<?xml version='1.0'?><foo><bar>&undefined;</bar>", "not valid XML"),
        (b"", "empty document"),
        (b"{\"version\": \"https://jsonfeed.org/version/1.1\", \"items\": [", "not valid JSON"),
        (b"\x00\x01binary junk", "not a feed"),
    ],
)
def test_unusable_documents_are_rejected_with_a_reason(document, reason):
    with pytest.raises(FeedRejected) as rejected:
        parse_feed(document)

    assert rejected.value.reason.startswith(reason)


def test_gbk_html_page_served_as_feed_is_rejected_as_html():
    page = "<html><head><meta charset='gbk'><title>系统维护</title></head><body>网站维护中</body></html>"

    with pytest.raises(FeedRejected, match="HTML page"):
        parse_feed(page.encode("gbk"), {"content-type": "application/rss+xml"})


def test_billion_laughs_entity_expansion_is_bounded():
    levels = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10)
    ]
    document = (f'<?xml version="1.0"?><!DOCTYPE rss [{"".join(levels)}]>'
                '<rss version="2.0"><channel><title>t</title><item><title>&lol9;</title>'
                '<link>https://example.org/1</link><description>d</description></item></channel></rss>').encode()

    try:
        parsed = parse_feed(document)
    except FeedRejected:
        return
    assert len(parsed.entries[0].title.value if parsed.entries[0].title else "") < 10_000


def test_external_entities_are_never_read():
    document = (b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/hostname">]>'
                b'<rss version="2.0"><channel><title>t</title><item><title>x&xxe;y</title>'
                b'<link>https://example.org/1</link><description>d</description></item></channel></rss>')
    hostname = open("/etc/hostname", "rb").read().strip().decode()

    try:
        parsed = parse_feed(document)
    except FeedRejected:
        return
    assert hostname not in (parsed.entries[0].title.value if parsed.entries[0].title else "")


def test_date_with_zone_is_aware_utc():
    assert parse_date("Tue, 06 Jan 2026 10:00:00 +0800") == dt.datetime(2026, 1, 6, 2, 0, tzinfo=dt.UTC)


def test_date_without_zone_stays_naive_wall_clock_time():
    assert parse_date("2026-01-06 10:00:00") == dt.datetime(2026, 1, 6, 10, 0)


def test_cst_is_treated_as_an_unknown_zone_because_chinese_feeds_mean_china_time():
    assert parse_date("Tue, 06 Jan 2026 10:00:00 CST") == dt.datetime(2026, 1, 6, 10, 0)


def test_unreadable_date_is_none():
    assert parse_date("yesterday-ish") is None


def test_quadratic_blowup_entity_does_not_balloon_memory():
    import tracemalloc

    value = "A" * 50_000
    document = (f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "{value}">]><rss version="2.0"><channel>'
                f'<title>t</title><item><title>{"&a;" * 50_000}</title><link>https://example.org/1</link>'
                '<description>d</description></item></channel></rss>').encode()

    tracemalloc.start()
    try:
        try:
            parse_feed(document)
        except FeedRejected:
            pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # Full expansion would need 2.5 GB of text; what is allowed is a small multiple of the 0.2 MB document.
    assert peak < 100 * 1024 * 1024


def test_common_well_formedness_slips_are_repaired_so_the_strict_parser_succeeds():
    document = (b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title><item>'
                b'<title>Bike&nbsp;lanes &mdash; phase\x08 1 & 2</title>'
                b'<link>https://e.org/a?x=1&y=2</link>'
                b'<description><![CDATA[<p>Tom & Jerry &amp; friends</p>]]></description>'
                b'</item></channel></rss>')

    parsed = parse_feed(document)

    entry = parsed.entries[0]
    assert parsed.warnings == []
    assert entry.title.value == "Bike\xa0lanes — phase 1 & 2"
    assert entry.link == "https://e.org/a?x=1&y=2"
    assert entry.summary.value == "<p>Tom & Jerry &amp; friends</p>"
