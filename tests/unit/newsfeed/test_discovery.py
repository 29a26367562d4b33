import codecs
import json

import pytest

from newsfeed.discovery import DiscoveredFeed, decode_html, discover_feeds, looks_like_feed

PAGE_URL = "https://news.example.cn/policy/2026/11/article.html"


def make_page(head: str = "", body: str = "<p>正文</p>", charset_meta: str | None = "utf-8") -> str:
    meta = f'<meta charset="{charset_meta}">' if charset_meta else ""
    return f"<!DOCTYPE html><html><head>{meta}<title>新闻</title>{head}</head><body>{body}</body></html>"


def link(href: str, type_: str = "application/rss+xml", title: str | None = None, rel: str = "alternate") -> str:
    title_attr = f' title="{title}"' if title is not None else ""
    return f'<link rel="{rel}" type="{type_}" href="{href}"{title_attr}>'


# -- discover_feeds ----------------------------------------------------------------------------------------------------


def test_feed_link_is_found_and_resolved_against_the_page_url():
    page = make_page(link("../../feed.xml", title="政策新闻"))

    feeds = discover_feeds(PAGE_URL, page.encode("utf-8"), {"content-type": "text/html; charset=utf-8"})

    assert feeds == [DiscoveredFeed("https://news.example.cn/policy/feed.xml", "政策新闻", "application/rss+xml")]


def test_page_without_feed_links_gives_an_empty_list():
    page = make_page('<link rel="stylesheet" href="/site.css"><link rel="canonical" href="/a.html">',
                     body='<a href="/rss.xml">RSS</a>')

    assert discover_feeds(PAGE_URL, page.encode("utf-8"), {}) == []


def test_feeds_are_ordered_atom_rss_rdf_json_feed_json_with_comment_feeds_last():
    page = make_page(
        link("/comments/feed/", title="评论 Feed")
        + link("/feed.json", "application/json", "JSON")
        + link("/feed/", "application/rss+xml", "RSS 2.0")
        + link("/feed.jsonfeed", "application/feed+json", "JSON Feed")
        + link("/index.rdf", "application/rdf+xml", "RSS 1.0")
        + link("/feed/atom/", "application/atom+xml", "Atom")
    )

    feeds = discover_feeds(PAGE_URL, page.encode("utf-8"), None)

    assert [feed.url.removeprefix("https://news.example.cn") for feed in feeds] == [
        "/feed/atom/",
        "/feed/",
        "/index.rdf",
        "/feed.jsonfeed",
        "/feed.json",
        "/comments/feed/",
    ]


def test_links_of_the_same_type_keep_page_order():
    page = make_page(link("/news.xml", title="要闻") + link("/local.xml", title="本地"))

    assert [feed.title for feed in discover_feeds(PAGE_URL, page.encode(), None)] == ["要闻", "本地"]


def test_base_href_is_used_for_relative_links():
    page = make_page('<base href="https://static.example.cn/site/">' + link("rss/main.xml"))

    (feed,) = discover_feeds(PAGE_URL, page.encode(), None)

    assert feed.url == "https://static.example.cn/site/rss/main.xml"


def test_rel_type_case_and_parameters_and_extra_rel_values_are_tolerated():
    page = make_page(link("/a.xml", "Application/RSS+XML; charset=UTF-8", rel="ALTERNATE nofollow"))

    (feed,) = discover_feeds(PAGE_URL, page.encode(), None)

    assert (feed.url, feed.type, feed.title) == ("https://news.example.cn/a.xml", "application/rss+xml", None)


def test_non_feed_alternates_duplicates_and_unsafe_links_are_ignored():
    page = make_page(
        link("/en/article.html", "text/html", "English")
        + link("/print.css", "text/css", rel="alternate stylesheet")
        + link("javascript:alert(1)")
        + link("")
        + link("/feed.xml")
        + link("https://news.example.cn/feed.xml", title="duplicate")
        + '<link rel="alternate" href="/no-type.xml">'
    )

    feeds = discover_feeds(PAGE_URL, page.encode(), None)

    assert [feed.url for feed in feeds] == ["https://news.example.cn/feed.xml"]


def test_gbk_page_titles_are_decoded_from_the_meta_charset():
    page = make_page(link("/rss/jiaoyu.xml", title="教育部政策解读·双减"), charset_meta="gbk")

    feeds = discover_feeds(PAGE_URL, page.encode("gbk"), {"content-type": "text/html"})

    assert feeds[0].title == "教育部政策解读·双减"


def test_page_labelled_gb2312_but_using_gbk_characters_still_decodes():
    # 镕 and 喆 are outside GB2312; pages that say gb2312 use them anyway, and browsers decode them as GB18030.
    title = "朱镕基与陈喆谈医保"
    page = make_page(link("/rss.xml", title=title), charset_meta="gb2312")

    feeds = discover_feeds(PAGE_URL, page.encode("gbk"), {})

    assert feeds[0].title == title


def test_gbk_page_served_with_a_wrong_utf8_header_still_decodes():
    title = "住房公积金新政征求意见"
    page = make_page(link("/rss.xml", title=title), charset_meta="gbk")

    feeds = discover_feeds(PAGE_URL, page.encode("gbk"), {"Content-Type": "text/html; charset=utf-8"})

    assert feeds[0].title == title


def test_undeclared_gbk_page_is_detected():
    title = "关于进一步规范中小学课后服务的通知征求意见稿"
    page = make_page(link("/rss.xml", title=title) * 1, body="<p>" + "各地教育行政部门要加强统筹。" * 20 + "</p>",
                     charset_meta=None)

    feeds = discover_feeds(PAGE_URL, page.encode("gbk"), None)

    assert feeds[0].title == title


def test_garbage_bytes_do_not_raise():
    assert discover_feeds(PAGE_URL, bytes(range(256)) * 10, {"content-type": "text/html; charset=nonsense"}) == []
    assert discover_feeds(PAGE_URL, b"", None) == []


def test_header_charset_wins_over_a_meta_declaration_when_both_decode():
    # These Big5 bytes are also valid GB18030 (as different characters), so only the order of preference decides.
    page = b"<html><head><meta charset=gbk></head><body>" + "預算公告".encode("big5") + b"</body></html>"

    assert "預算公告" in decode_html(page, "text/html; charset=big5")
    assert "預算公告" not in decode_html(page, None)


# -- looks_like_feed ---------------------------------------------------------------------------------------------------

RSS = '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>t</title></channel></rss>'
ATOM = '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title></feed>'
RDF = '<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"></rdf:RDF>'
JSON_FEED = json.dumps({"title": "t", "version": "https://jsonfeed.org/version/1.1", "items": []})


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (RSS.encode(), "application/rss+xml"),
        (RSS.encode(), "text/html; charset=utf-8"),  # mislabelled by the server
        (ATOM.encode(), "application/atom+xml"),
        (ATOM.encode(), None),
        (RDF.encode(), "application/xml"),
        (JSON_FEED.encode(), "application/json"),
        (codecs.BOM_UTF8 + RSS.encode(), "text/xml"),
        (codecs.BOM_UTF16_LE + RSS.encode("utf-16-le"), "text/xml"),
        (RSS.replace("utf-8", "gbk").encode("gbk"), "text/xml"),
        (b'<?xml version="1.0"?>\n<?xml-stylesheet href="rss.xsl"?>\n<!-- generated -->\n' + RSS.split("\n")[1].encode(),
         None),
        (b"\n\n  " + RSS.encode(), "text/plain"),
    ],
)
def test_feeds_are_recognised_by_their_content(content, content_type):
    assert looks_like_feed(content, content_type) is True


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (make_page(link("/feed.xml")).encode(), "text/html"),
        (make_page().encode(), "application/rss+xml"),  # an HTML error page labelled as a feed
        (b"<html><head><title>404</title></head></html>", "application/atom+xml"),
        (b"<!-- cache --><!DOCTYPE html><html lang=zh>", None),
        (b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"/>', "application/xml"),
        (b'{"data": [1, 2, 3]}', "application/json"),
        (b"", "application/rss+xml"),
        (b"Service Unavailable", "text/plain"),
    ],
)
def test_html_pages_and_other_documents_are_not_feeds(content, content_type):
    assert looks_like_feed(content, content_type) is False


def test_content_type_decides_only_when_the_document_start_says_nothing():
    assert looks_like_feed(b"\x00\x01 binary noise", "application/rss+xml") is True
    assert looks_like_feed(b"\x00\x01 binary noise", "application/octet-stream") is False


def test_already_decoded_text_is_accepted():
    (feed,) = discover_feeds(PAGE_URL, make_page(link("/feed.xml", title="医保")), None)

    assert feed.title == "医保"


def test_xhtml_page_with_xml_declaration_and_doctype_is_not_a_feed():
    page = (
        b'<?xml version="1.0" encoding="utf-8"?>\n'
        b'<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">\n'
        b'<html xmlns="http://www.w3.org/1999/xhtml"><head><title>t</title></head></html>'
    )

    assert looks_like_feed(page, "application/xhtml+xml") is False


def test_rss_091_with_its_doctype_is_a_feed():
    rss = (
        b'<?xml version="1.0"?>\n<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN"\n'
        b' "http://my.netscape.com/publish/formats/rss-0.91.dtd">\n<rss version="0.91"><channel/></rss>'
    )

    assert looks_like_feed(rss, "text/xml") is True
