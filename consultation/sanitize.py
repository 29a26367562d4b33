"""Sanitising editor-written rich text (政策解读 explanation articles) before it is stored or shown.

Editors paste from word processors and web pages, so the input is untrusted HTML. It goes through nh3 (the Rust
`ammonia` sanitiser) with an allow-list: only a small set of formatting tags survives, links may only point to
http, https or mailto URLs, and every link gets ``rel="noopener noreferrer nofollow"``.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import nh3

ALLOWED_TAGS: frozenset[str] = frozenset(
    {
        "p", "br", "strong", "em", "b", "i", "u", "h2", "h3", "h4", "ul", "ol", "li", "blockquote", "a",
        "table", "caption", "thead", "tbody", "tfoot", "tr", "th", "td",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "a": {"href", "title"},
    "th": {"colspan", "rowspan"},
    "td": {"colspan", "rowspan"},
}
ALLOWED_URL_SCHEMES: frozenset[str] = frozenset({"http", "https", "mailto"})
LINK_REL = "noopener noreferrer nofollow"

# Their content is code or styling, never article text, so it goes together with the tag.
_CONTENT_DROPPING_TAGS = {"script", "style", "template", "noscript", "iframe", "object", "svg", "math", "textarea"}

_SPAN_VALUE = re.compile(r"^[1-9][0-9]{0,2}$")


def _keep_safe_attribute_values(element: str, attribute: str, value: str) -> str | None:
    # colspan/rowspan are echoed into table layout; a huge or non-numeric value is at best noise.
    if attribute in {"colspan", "rowspan"}:
        return value if _SPAN_VALUE.match(value.strip()) else None
    return value


_CLEANER = nh3.Cleaner(
    tags=set(ALLOWED_TAGS),
    clean_content_tags=set(_CONTENT_DROPPING_TAGS),
    attributes={tag: set(attrs) for tag, attrs in ALLOWED_ATTRIBUTES.items()},
    attribute_filter=_keep_safe_attribute_values,
    strip_comments=True,
    link_rel=LINK_REL,
    url_schemes=set(ALLOWED_URL_SCHEMES),
    # A relative link in an article embedded on a news site would resolve against the news site, not against us.
    url_relative="deny",
)


def sanitize_rich_text(html: str) -> str:
    """Return ``html`` reduced to the safe formatting subset; everything else is stripped."""
    if not isinstance(html, str):
        raise TypeError(f"sanitize_rich_text expects str, got {type(html).__name__}")
    return _CLEANER.clean(html)


_BLOCK_TAGS = {
    "p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "blockquote", "table", "caption",
    "thead", "tbody", "tfoot", "tr", "section", "article", "header", "footer", "pre",
}  # fmt: skip
_CELL_TAGS = {"td", "th"}
_LINE_TAGS = {"li", "tr"}
_HORIZONTAL_SPACE = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n{3,}")


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._row_has_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")
        elif tag in _CELL_TAGS:
            # Cells of one row stay on one line, separated so their words do not run together.
            if self._row_has_cell:
                self.parts.append("\t")
            self._row_has_cell = True
        elif tag in _BLOCK_TAGS:
            if tag == "tr":
                self._row_has_cell = False
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        # List items and table rows are lines, not paragraphs: no blank line between them.
        if tag in _BLOCK_TAGS and tag not in _LINE_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


# Text extraction keeps every block-level tag (without attributes) so paragraphs of disallowed tags such as <div>
# still end up on their own lines; the same content-dropping rules apply, so no script text leaks into search.
_TEXT_CLEANER = nh3.Cleaner(
    tags=(set(ALLOWED_TAGS) | _BLOCK_TAGS | _CELL_TAGS) - {"a"},
    clean_content_tags=set(_CONTENT_DROPPING_TAGS),
    attributes={},
    strip_comments=True,
    link_rel=None,
)


def html_to_text(html: str) -> str:
    """Plain text of ``html``: tags removed, entities decoded, one line per block, no script or style content."""
    if not isinstance(html, str):
        raise TypeError(f"html_to_text expects str, got {type(html).__name__}")
    collector = _TextCollector()
    collector.feed(_TEXT_CLEANER.clean(html))
    collector.close()
    raw = "".join(collector.parts)
    lines = [_HORIZONTAL_SPACE.sub(" ", line).strip() for line in raw.split("\n")]
    text = "\n".join(lines)
    return _BLANK_LINES.sub("\n\n", text).strip()
