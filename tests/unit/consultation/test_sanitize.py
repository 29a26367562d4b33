import pytest

from consultation.sanitize import html_to_text, sanitize_rich_text

XSS_PAYLOADS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=https://evil.example/x.js></SCRIPT>",
    '<img src=x onerror="alert(1)">',
    '<a href="javascript:alert(1)">click</a>',
    '<a href="JaVaScRiPt:alert(1)">click</a>',
    '<a href="jav&#x09;ascript:alert(1)">click</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">click</a>',
    "<svg onload=alert(1)><script>alert(1)</script></svg>",
    '<svg><a xlink:href="javascript:alert(1)"><text>x</text></a></svg>',
    "<style>body{background:url(javascript:alert(1))}</style>",
    '<p style="background:url(javascript:alert(1))">styled</p>',
    '<iframe src="https://evil.example"></iframe>',
    "<p onmouseover=alert(1)>hover</p>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<<script>alert(1);//<</script>",
    '<p>unclosed <b onclick="x()">bold',
    '"><img src=x onerror=alert(1)>',
    "<!--<script>alert(1)</script>-->",
    '<form action="https://evil.example"><input name=q><button>go</button></form>',
    '<object data="javascript:alert(1)"></object>',
]

FORBIDDEN_FRAGMENTS = ["<script", "onerror", "onload", "onclick", "onmouseover", "javascript:", "<svg", "<style",
                       "style=", "<iframe", "<img", "data:", "<form", "<input", "<object", "<math", "alert("]  # fmt: skip


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_xss_payload_is_neutralised(payload):
    cleaned = sanitize_rich_text(payload).lower()

    for fragment in FORBIDDEN_FRAGMENTS:
        assert fragment not in cleaned


def test_allowed_formatting_is_kept():
    html = (
        "<h2>解读</h2><p>第一条<strong>明确</strong>了<em>适用范围</em>，<b>b</b><i>i</i><u>u</u><br>"
        "</p><ul><li>一</li></ul><ol><li>二</li></ol><blockquote>引用</blockquote><h3>三</h3><h4>四</h4>"
    )

    assert sanitize_rich_text(html) == html


def test_disallowed_tags_are_stripped_but_their_text_kept():
    assert sanitize_rich_text("<h1>标题</h1><div><span class=x>正文</span></div>") == "标题正文"


def test_link_keeps_href_and_title_and_gets_a_safe_rel():
    cleaned = sanitize_rich_text(
        '<a href="https://www.gov.cn/a.htm" title="原文" target="_blank" rel="opener">原文</a>'
    )

    assert cleaned == ('<a href="https://www.gov.cn/a.htm" title="原文" rel="noopener noreferrer nofollow">原文</a>')


@pytest.mark.parametrize("href", ["http://example.com/", "https://example.com/", "mailto:office@example.gov.cn"])
def test_links_with_allowed_schemes_keep_their_target(href):
    assert f'href="{href}"' in sanitize_rich_text(f'<a href="{href}">x</a>')


@pytest.mark.parametrize("href", ["ftp://example.com/", "/relative/path", "//evil.example/", "vbscript:msgbox(1)"])
def test_links_with_other_schemes_or_relative_urls_lose_their_target(href):
    assert "href" not in sanitize_rich_text(f'<a href="{href}">x</a>')


def test_basic_tables_are_kept_with_sane_spans_only():
    html = '<table><caption>补贴标准</caption><tr><th colspan="2">标准</th><td rowspan="99999" class="x">1000元</td></tr></table>'

    assert sanitize_rich_text(html) == (
        '<table><caption>补贴标准</caption><tbody><tr><th colspan="2">标准</th><td>1000元</td></tr></tbody></table>'
    )


def test_non_text_input_is_rejected_with_a_clear_error():
    with pytest.raises(TypeError):
        sanitize_rich_text(None)


def test_html_to_text_puts_blocks_on_their_own_lines_and_decodes_entities():
    html = "<h2>政策解读</h2><p>第一条&nbsp;明确了<strong>范围</strong>。</p><div>A &amp; B<br>第二行</div>"

    assert html_to_text(html) == "政策解读\n\n第一条 明确了范围。\n\nA & B\n第二行"


def test_html_to_text_drops_script_and_style_content():
    assert html_to_text("<style>p{color:red}</style><p>正文</p><script>alert('x')</script>") == "正文"


def test_html_to_text_keeps_escaped_markup_as_plain_text():
    assert html_to_text("<p>1 &lt; 2 &lt;script&gt;</p>") == "1 < 2 <script>"


def test_html_to_text_survives_broken_markup():
    assert html_to_text("<p>未闭合<b>粗体<p>第二段</i></table>") == "未闭合粗体\n\n第二段"


def test_html_to_text_keeps_table_cells_of_a_row_together():
    assert html_to_text(
        "<table><tr><td>项目</td><td>标准</td></tr><tr><td>子女教育</td><td>1000元</td></tr></table>"
    ) == ("项目 标准\n子女教育 1000元")


def test_html_to_text_puts_list_items_on_consecutive_lines():
    assert html_to_text("<p>要点：</p><ul><li>子女教育</li><li>继续教育</li></ul><p>完。</p>") == (
        "要点：\n\n子女教育\n继续教育\n\n完。"
    )
