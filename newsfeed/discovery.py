"""Finding feeds: telling a feed from an HTML page, and reading the feed links an HTML page advertises.

A subscriber (or an editor) often pastes the address of a news site's page rather than of its feed. After fetching it,
``looks_like_feed`` decides which of the two came back; for a page, ``discover_feeds`` lists the feeds it announces
with ``<link rel="alternate" type="application/rss+xml" href="...">`` and friends, best first.

Chinese news sites still serve GBK/GB2312 pages, often with a wrong or missing charset in the HTTP header, so decoding
tries the header charset, then the page's own ``<meta>`` declaration, then detection (bs4's UnicodeDammit with
charset-normalizer), treating the GB2312/GBK labels as GB18030, their superset, as browsers do.
"""
from __future__ import annotations

import codecs
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message
from urllib.parse import urljoin, urlsplit

from bs4 import BeautifulSoup, SoupStrainer
from bs4.dammit import EncodingDetector, UnicodeDammit

# Link types that announce a feed, most preferred first. Atom has well-defined ids and dates, so it goes before RSS.
FEED_LINK_TYPES = (
    "application/atom+xml",
    "application/rss+xml",
    "application/rdf+xml",
    "application/feed+json",
    "application/json",
)
# Content types a server may use for a feed body; only a tie-breaker, since servers mislabel feeds both ways.
FEED_CONTENT_TYPES = frozenset(
    {
        "application/atom+xml",
        "application/rss+xml",
        "application/rdf+xml",
        "application/feed+json",
        "application/x-rss+xml",
        "application/x-atom+xml",
    }
)
FEED_ROOT_ELEMENTS = frozenset({"rss", "feed", "rdf"})  # RSS 0.9x/2.0, Atom, RSS 1.0 (rdf:RDF)
# Superset decoders for labels that pages use loosely (a "gb2312" page routinely contains GBK-only characters).
ENCODING_SUPERSETS = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "gb_2312-80": "gb18030",
                      "iso-8859-1": "windows-1252", "latin-1": "windows-1252", "ascii": "windows-1252",
                      "us-ascii": "windows-1252"}

_SNIFF_BYTES = 4096
_PROLOGUE = re.compile(r"\s*(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>\[]*(?:\[.*?\])?\s*>)", re.DOTALL | re.IGNORECASE)
_FIRST_ELEMENT = re.compile(r"\s*<\s*([A-Za-z_][\w.:-]*)")
_COMMENTS_FEED = re.compile(r"comments?|评论|留言", re.IGNORECASE)


@dataclass(frozen=True)
class DiscoveredFeed:
    url: str  # absolute
    title: str | None  # the link's title attribute, if any
    type: str  # the advertised media type, lower-cased, without parameters


def discover_feeds(page_url: str, html: bytes | str, headers: Mapping[str, str] | None = None) -> list[DiscoveredFeed]:
    """Feeds an HTML page links to, best first: main feeds before comment feeds, then by FEED_LINK_TYPES order, then
    page order. Relative hrefs are resolved against ``<base href>`` or ``page_url``; duplicates and non-http(s) links
    are dropped. ``headers`` are the page's response headers (for the charset); an empty list means no feed link.
    """
    text = decode_html(html, _header(headers, "content-type"))
    soup = BeautifulSoup(text, "html.parser", parse_only=SoupStrainer(["link", "base"]))
    base_url = page_url
    base = soup.find("base", href=True)
    if base is not None:
        base_url = urljoin(page_url, str(base["href"]).strip())

    candidates: list[tuple[tuple[int, int, int], DiscoveredFeed]] = []
    seen: set[str] = set()
    for position, link in enumerate(soup.find_all("link")):
        rel = {value.lower() for value in _as_list(link.get("rel"))}
        media_type = _media_type(link.get("type"))
        href = str(link.get("href") or "").strip()
        if "alternate" not in rel or media_type not in FEED_LINK_TYPES or not href:
            continue
        url = urljoin(base_url, href)
        if urlsplit(url).scheme.lower() not in ("http", "https") or url in seen:
            continue
        seen.add(url)
        title = " ".join(str(link.get("title") or "").split()) or None
        is_comments = bool(_COMMENTS_FEED.search(title or "") or _COMMENTS_FEED.search(urlsplit(url).path))
        rank = (int(is_comments), FEED_LINK_TYPES.index(media_type), position)
        candidates.append((rank, DiscoveredFeed(url=url, title=title, type=media_type)))
    return [feed for _, feed in sorted(candidates, key=lambda candidate: candidate[0])]


def looks_like_feed(content: bytes, content_type: str | None) -> bool:
    """True when ``content`` is a feed (RSS, Atom, RDF or JSON Feed) rather than an HTML page or anything else.

    Decided by the document itself (its first element, or JSON Feed's version URL), because servers label feeds
    text/html or text/plain and HTML error pages application/rss+xml. The content type only decides when the start of
    the document says nothing either way.
    """
    if not content:
        return False
    head = _ascii_compatible_head(content)
    while True:
        prologue = _PROLOGUE.match(head)
        if prologue is None:
            break
        head = head[prologue.end() :]
    element = _FIRST_ELEMENT.match(head)
    if element is not None:
        local_name = element.group(1).rsplit(":", 1)[-1].lower()
        return local_name in FEED_ROOT_ELEMENTS
    if head.lstrip().startswith("{"):
        return b"jsonfeed.org/version" in content
    if head.lstrip().startswith("<"):
        return False  # markup we cannot read the start of: not something a feed parser will enjoy either
    return _media_type(content_type) in FEED_CONTENT_TYPES


def decode_html(html: bytes | str, content_type: str | None = None) -> str:
    """The page as text: header charset, then the page's declared charset, then detection; never raises."""
    if isinstance(html, str):
        return html
    candidates = []
    header_charset = _charset(content_type)
    if header_charset:
        candidates.append(_superset(header_charset))
    declared = EncodingDetector.find_declared_encoding(html[:_SNIFF_BYTES * 4], is_html=True)
    if declared:
        candidates.append(_superset(declared))
    dammit = UnicodeDammit(html, known_definite_encodings=candidates, is_html=True)
    if dammit.unicode_markup is not None:
        return dammit.unicode_markup
    return html.decode("utf-8", errors="replace")


def _ascii_compatible_head(content: bytes) -> str:
    head = content[:_SNIFF_BYTES]
    for bom, encoding in ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if head.startswith(bom):
            return head[len(bom) :].decode(encoding, errors="ignore")
    if head.startswith(codecs.BOM_UTF8):
        head = head[len(codecs.BOM_UTF8) :]
    # Tag names are ASCII in every encoding feeds use besides UTF-16, so latin-1 reads them without failing.
    return head.decode("latin-1")


def _superset(encoding: str) -> str:
    name = encoding.strip().lower()
    return ENCODING_SUPERSETS.get(name, name)


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _parsed_content_type(value: str | None) -> Message | None:
    if not value:
        return None
    message = Message()
    message["content-type"] = value
    return message


def _media_type(value) -> str:
    message = _parsed_content_type(str(value) if value else None)
    return message.get_content_type() if message is not None else ""


def _charset(content_type: str | None) -> str | None:
    message = _parsed_content_type(content_type)
    charset = message.get_param("charset") if message is not None else None
    if not isinstance(charset, str) or not charset.strip():
        return None
    try:
        codecs.lookup(_superset(charset))
    except LookupError:
        return None  # an unknown label is no better than none
    return charset.strip()


def _as_list(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return value.split()
    return [str(item) for item in value]
