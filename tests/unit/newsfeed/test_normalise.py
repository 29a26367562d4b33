import datetime as dt

import pytest

from newsfeed.normalise import (
    FeedContext,
    article_id,
    canonical_url,
    clean_title,
    detect_language,
    html_to_text,
    normalise_entry,
    sanitise_html,
)
from newsfeed.parse import HTML_TYPE, PLAIN_TYPE, RawEntry, Text

NOW = dt.datetime(2026, 1, 10, 12, 0, tzinfo=dt.UTC)


def make_context(**overrides) -> FeedContext:
    fields = {"feed_id": 1, "feed_url": "https://news.example.cn/rss.xml", "outlet": "示例日报"}
    return FeedContext(**{**fields, **overrides})


def make_entry(**overrides) -> RawEntry:
    fields = {
        "guid": "urn:example:1",
        "link": "https://news.example.cn/a/1.html",
        "title": Text("医保门诊报销新规", PLAIN_TYPE),
        "summary": Text("<p>门诊报销比例拟提高。</p>"),
        "published": dt.datetime(2026, 1, 6, 10, 0, tzinfo=dt.UTC),
    }
    return RawEntry(**{**fields, **overrides})


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("HTTPS://News.Example.CN:443/a/1.html?utm_source=wx&utm_medium=share#top", "https://news.example.cn/a/1.html"),
        ("http://example.org:80/x?id=7&spm=a.b.c&from=timeline&fbclid=abc&gclid=z", "http://example.org/x?id=7"),
        ("https://example.org/x?b=2&a=1", "https://example.org/x?a=1&b=2"),
        ("https://example.org:8443/x", "https://example.org:8443/x"),
        ("https://example.org", "https://example.org/"),
        ("javascript:alert(1)", None),
        ("", None),
    ],
)
def test_canonical_url_drops_tracking_fragment_and_default_port(given, expected):
    assert canonical_url(given) == expected


def test_relative_link_is_resolved_against_the_feed():
    assert canonical_url("/a/2.html", "https://news.example.cn/rss.xml") == "https://news.example.cn/a/2.html"


def test_article_id_is_the_same_whichever_feed_carries_the_story():
    first = normalise_entry(make_entry(guid="feed-a-1"), make_context(feed_id=1), NOW)
    second = normalise_entry(make_entry(guid="other-guid", link="https://news.example.cn/a/1.html?utm_source=x"),
                             make_context(feed_id=2, feed_url="https://mirror.example.com/feed"), NOW)

    assert first.id == second.id
    assert article_id(None, "g", "x") != article_id(None, "h", "x")


def test_title_entities_are_decoded_and_whitespace_collapsed():
    assert clean_title(Text("  Bike&amp;Ride \n  lanes &#8220;now&#8221; ", PLAIN_TYPE)) == "Bike&Ride lanes “now”"
    assert clean_title(Text("<b>房价</b> 调控 &amp; 租赁", HTML_TYPE)) == "房价 调控 & 租赁"


def test_entry_without_zone_gets_the_feeds_default_zone():
    entry = make_entry(published=dt.datetime(2026, 1, 6, 10, 0))

    shanghai = normalise_entry(entry, make_context(), NOW)
    london = normalise_entry(entry, make_context(time_zone="Europe/London"), NOW)

    assert shanghai.published_at == dt.datetime(2026, 1, 6, 2, 0, tzinfo=dt.UTC)
    assert london.published_at == dt.datetime(2026, 1, 6, 10, 0, tzinfo=dt.UTC)


def test_missing_or_future_date_becomes_the_time_first_seen():
    undated = normalise_entry(make_entry(published=None), make_context(), NOW)
    future = normalise_entry(make_entry(published=NOW + dt.timedelta(days=30)), make_context(), NOW)

    assert undated.published_at == NOW and not undated.published_known
    assert future.published_at == NOW


def test_sanitiser_removes_scripts_handlers_and_foreign_schemes_and_resolves_relative_links():
    dirty = ('<p onclick="steal()">Hi<script>alert(1)</script><style>p{}</style>'
             '<a href="javascript:evil()">x</a><a href="/more">more</a><img src="pic.png" onerror="x()"></p>'
             '<iframe src="https://ads.example/"></iframe>')

    clean = sanitise_html(dirty, "https://news.example.cn/a/1.html")

    assert "script" not in clean and "onclick" not in clean and "onerror" not in clean
    assert "javascript" not in clean and "iframe" not in clean and "p{}" not in clean
    assert 'href="https://news.example.cn/more"' in clean
    assert 'src="https://news.example.cn/a/pic.png"' in clean


def test_plain_text_content_is_escaped_not_interpreted():
    article = normalise_entry(make_entry(content=Text("a <b>bold</b> claim\n\nsecond", PLAIN_TYPE)), make_context(), NOW)

    assert article.content_html == "<p>a &lt;b&gt;bold&lt;/b&gt; claim</p><p>second</p>"
    assert article.text == "a <b>bold</b> claim\nsecond"


def test_plain_text_keeps_chinese_words_whole_and_paragraphs_apart():
    assert html_to_text("<p><b>医</b>保&amp;门诊</p><p>第二段</p>") == "医保&门诊\n第二段"


@pytest.mark.parametrize(
    ("text", "declared", "expected"),
    [
        ("市医保局发布门诊报销新规征求意见稿，拟提高报销比例", None, "zh"),
        ("市医保局发布门诊报销新规征求意见稿，拟提高报销比例", "en-US", "zh"),  # WordPress default left on
        ("The city plans protected cycling lanes on five arterial roads", None, "en"),
        ("The city plans protected cycling lanes on five arterial roads", "zh-cn", "en"),
        ("Die Stadt plant geschützte Radwege", "de-DE", "de"),
        ("2026", "zh-CN", "zh"),
    ],
)
def test_language_comes_from_cjk_share_then_the_declaration(text, declared, expected):
    assert detect_language(text, declared) == expected


def test_normalised_article_carries_outlet_categories_and_a_content_hash():
    entry = make_entry(categories=["医保", "医保", " 政策 "], author="  Desk ")

    article = normalise_entry(entry, make_context(), NOW)
    changed = normalise_entry(make_entry(summary=Text("<p>门诊报销比例拟提高到七成。</p>")), make_context(), NOW)

    assert article.outlet == "示例日报"
    assert article.categories == ["医保", "政策"]
    assert article.author == "Desk"
    assert article.language == "zh"
    assert article.content_hash != changed.content_hash


def test_entry_without_title_borrows_the_start_of_its_text():
    article = normalise_entry(make_entry(title=None), make_context(), NOW)

    assert article.title == "门诊报销比例拟提高。"
