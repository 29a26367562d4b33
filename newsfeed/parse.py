"""Turning the bytes of a fetched document into feed entries: RSS 0.9x/1.0/2.0 and Atom via feedparser, JSON Feed
1.0/1.1 via json.

Nothing here fetches anything and nothing here sanitises: feedparser gets bytes that we have already decoded (so a
mislabelled GBK or Latin-1 document does not turn into mojibake) with its own slow sanitiser and URI resolver turned
off; `normalise` sanitises with nh3. A document is rejected (FeedRejected with a short reason) only when it yields no
usable entry; feedparser's `bozo` flag alone is not a reason, it is kept as a warning.
"""
from __future__ import annotations

import calendar
import codecs
import datetime as dt
import html.entities
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urljoin

import charset_normalizer
import feedparser
from feedparser.datetimes import _parse_date as feedparser_parse_date

from .exceptions import FeedRejected

HTML_TYPE = "text/html"
PLAIN_TYPE = "text/plain"

# Labels that name a subset of an encoding browsers actually use to decode them (WHATWG Encoding Standard): GB2312
# and GBK pages routinely contain GB18030-only characters, Big5 pages HKSCS ones, "Latin-1" pages Windows-1252 quotes.
ENCODING_SUPERSETS = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "cp936": "gb18030",
    "euc_cn": "gb18030",
    "big5": "big5hkscs",
    "cp950": "big5hkscs",
    "latin_1": "cp1252",
    "iso8859_1": "cp1252",
    "ascii": "utf-8",
}
SINGLE_BYTE_FAMILY = {"cp1252", "latin_1", "iso8859_15", "cp1250", "cp1251", "koi8_r", "iso8859_2"}
# Statistical detectors cannot tell the Latin code pages apart on short Western text (Portuguese comes out as Baltic
# cp1257); Windows-1252 is what such undeclared pages almost always are, so any of these is read as it.
LATIN_CODE_PAGES = {
    "latin_1", "cp1250", "cp1252", "cp1254", "cp1257", "mac_roman", "mac_latin2",
    *(f"iso8859_{n}" for n in (2, 3, 4, 9, 10, 13, 14, 15, 16)),
}

_XML_DECLARATION = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._:-]+)[\"']", re.IGNORECASE)
_XML_DECLARATION_TEXT = re.compile(r"^(\s*<\?xml[^>]*?encoding\s*=\s*[\"'])([A-Za-z0-9._:-]+)([\"'])", re.IGNORECASE)
_HTML_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", re.IGNORECASE)
_CHARSET_PARAM = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", re.IGNORECASE)
# DOCTYPE handling is done with plain searches (no backtracking) because the input is hostile by assumption.
_DOCTYPE_START = re.compile(r"<!DOCTYPE\s+([\w:.-]+)", re.IGNORECASE)
_SUBSET_END = re.compile(r"\]\s*>")
_CHAR_REFERENCE = r"&#[0-9]{1,7};|&#x[0-9A-Fa-f]{1,6};"
_PLAIN_ENTITY = re.compile(
    rf"<!ENTITY\s+([A-Za-z_][\w.-]{{0,40}})\s+(\"(?:{_CHAR_REFERENCE}|[^\"&%<]){{0,64}}\"|'(?:{_CHAR_REFERENCE}|[^'&%<]){{0,64}}')\s*>"
)
DOCTYPE_SEARCH_CHARS = 100_000
# Repairs for the commonest reasons real feeds are not well-formed; each one otherwise sends feedparser to its slow,
# lossy fallback parser. CDATA sections are skipped (kept verbatim) so that nothing inside them is touched.
_XML_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_BARE_AMPERSAND = re.compile(
    r"&(?!(?:lt|gt|amp|quot|apos|#[0-9]{1,7}|#x[0-9A-Fa-f]{1,6});)([A-Za-z][A-Za-z0-9]{1,31};)?"
)
CDATA_START, CDATA_END = "<![CDATA[", "]]>"
# What an HTML page (rather than a feed) starts with, once the XML declaration, comments and whitespace are skipped.
_LEADING_JUNK = re.compile(r"^(?:\s+|<\?xml[^>]*>|<!--.*?-->)*", re.DOTALL)
_HTML_START = re.compile(r"<(?:!doctype\s+html|html[\s>]|head[\s>]|body[\s>])", re.IGNORECASE)
# A zone in a date string: "Z", "+0800", "+08:00", or a trailing alphabetic zone name such as GMT or EST.
_ZONE_SUFFIX = re.compile(r"(?:\d[Zz]|[+-]\d{2}:?\d{2}|\b[A-Za-z]{1,5})\s*$")
_NOT_ZONE_WORDS = {"am", "pm"}

MAX_TITLE_CHARS = 1_000
MAX_FIELD_CHARS = 1_000_000


@dataclass
class Text:
    """A text construct as published: its value and whether that value is HTML or plain text."""

    value: str
    type: str = HTML_TYPE

    @property
    def is_html(self) -> bool:
        return "html" in self.type


@dataclass
class RawEntry:
    """One entry as the publisher wrote it. Datetimes are aware when the source gave a zone, naive when it did not
    (the wall-clock time then belongs to the feed's default zone, which `normalise` applies)."""

    guid: str | None = None
    link: str | None = None
    title: Text | None = None
    author: str | None = None
    published: dt.datetime | None = None
    updated: dt.datetime | None = None
    summary: Text | None = None
    content: Text | None = None
    categories: list[str] = field(default_factory=list)
    language: str | None = None

    @property
    def is_usable(self) -> bool:
        has_body = self.summary is not None or self.content is not None
        return self.title is not None or (bool(self.link or self.guid) and has_body)


@dataclass
class ParsedFeed:
    format: str  # feedparser's version ("rss20", "atom10", ...) or "json1"/"json11"
    title: str = ""
    link: str | None = None
    language: str | None = None
    encoding: str = "utf-8"
    entries: list[RawEntry] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# -- decoding -------------------------------------------------------------------------------------------------------


def _codec_name(label: str | None) -> str | None:
    if not label:
        return None
    try:
        name = codecs.lookup(label.strip().lower()).name
    except LookupError:
        return None
    name = name.replace("-", "_")
    return ENCODING_SUPERSETS.get(name, name)


def declared_encoding(content: bytes, content_type: str | None) -> str | None:
    """The encoding a document claims: HTTP charset first (it wins over the document), then XML declaration or meta."""
    if content_type:
        match = _CHARSET_PARAM.search(content_type)
        if match:
            return match.group(1)
    head = content[:1024]
    match = _XML_DECLARATION.match(head) or _HTML_META_CHARSET.search(head)
    return match.group(1).decode("ascii") if match else None


def decode_document(content: bytes, content_type: str | None = None) -> tuple[str, str]:
    """(text, encoding used). Trusts a declared encoding only while the bytes agree with it.

    A document declared UTF-8 (or undeclared) that is not valid UTF-8 is re-detected with charset-normalizer; one
    declared Latin-1 that is valid, non-ASCII UTF-8 is read as UTF-8, since that never happens by accident.
    """
    for bom, name in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if content.startswith(bom):
            return content[len(bom):].decode(name, errors="replace"), name
    declared = _codec_name(declared_encoding(content, content_type))
    if declared in SINGLE_BYTE_FAMILY and not content.isascii():
        try:
            return content.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            pass
    if declared and declared not in ("utf_16", "utf_32"):
        try:
            return content.decode(declared), declared
        except UnicodeDecodeError:
            pass
    if declared != "utf_8":
        try:
            return content.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            pass
    best = charset_normalizer.from_bytes(content[:200_000]).best()
    detected = _codec_name(best.encoding) if best is not None else None
    if detected in LATIN_CODE_PAGES:
        detected = "cp1252"
    encoding = detected or declared or "utf-8"
    return content.decode(encoding, errors="replace"), encoding


# -- dates ----------------------------------------------------------------------------------------------------------


def _has_zone(raw: str) -> bool:
    match = _ZONE_SUFFIX.search(raw.strip())
    return bool(match) and match.group(0).strip().lower() not in _NOT_ZONE_WORDS


def _feedparser_date(raw: str):
    try:
        return feedparser_parse_date(raw)
    except (ValueError, OverflowError, TypeError, IndexError):
        return None


def parse_date(raw: str | None) -> dt.datetime | None:
    """Aware UTC datetime when `raw` names its zone, naive wall-clock time when it does not, None when unreadable.

    "CST" is read as unknown: Chinese feeds use it for China Standard Time, feedparser for US Central.
    """
    if not raw or not isinstance(raw, str):
        return None
    raw = raw.strip()[:100]
    zoned = _has_zone(raw)
    if zoned and raw.upper().endswith(" CST"):
        raw, zoned = raw[:-4], False
    parsed = _feedparser_date(raw)
    if parsed is None and not zoned:
        # feedparser's RFC 822 reader insists on a zone; a zoneless one is read as UTC and kept naive below.
        parsed = _feedparser_date(f"{raw} GMT")
    if parsed is None:
        return None
    try:
        # feedparser returns UTC for zoned strings and the unchanged wall clock for zoneless ones.
        value = dt.datetime.fromtimestamp(calendar.timegm(parsed), dt.UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return value if zoned else value.replace(tzinfo=None)


# -- feedparser documents -------------------------------------------------------------------------------------------


def _text(detail: Mapping | None, fallback_type: str = HTML_TYPE) -> Text | None:
    if not detail:
        return None
    value = detail.get("value")
    if not isinstance(value, str) or not value.strip():
        return None
    return Text(value[:MAX_FIELD_CHARS], (detail.get("type") or fallback_type).lower())


def _entry_from_feedparser(entry: Mapping) -> RawEntry:
    content = None
    for part in entry.get("content") or ():
        candidate = _text(part)
        # Atom may carry several alternatives; prefer the richest HTML one.
        if candidate and (content is None or (candidate.is_html and not content.is_html)):
            content = candidate
    summary = _text(entry.get("summary_detail"))
    if content is not None and summary is not None and summary.value == content.value:
        summary = None
    title = _text(entry.get("title_detail"), PLAIN_TYPE)
    if title is not None:
        title.value = title.value[:MAX_TITLE_CHARS * 4]
    link = entry.get("link") or None
    guid = entry.get("id") or None
    categories = []
    for tag in entry.get("tags") or ():
        term = (tag.get("term") or tag.get("label") or "").strip()
        if term and term not in categories:
            categories.append(term[:100])
    return RawEntry(
        guid=guid.strip()[:2000] if isinstance(guid, str) else None,
        link=link.strip()[:4000] if isinstance(link, str) else None,
        title=title,
        author=(entry.get("author") or None),
        published=parse_date(entry.get("published") or entry.get("created")),
        updated=parse_date(entry.get("updated")),
        summary=summary,
        content=content,
        categories=categories[:50],
        language=(entry.get("content") or [{}])[0].get("language") if entry.get("content") else None,
    )


def _utf8_for_feedparser(text: str) -> bytes:
    """The document as UTF-8 whose XML declaration says so, so feedparser does not re-guess the encoding.

    Whitespace before the declaration (common in PHP-generated feeds) would make the strict XML parser give up.
    """
    text, declared_entities = _defuse_doctype(text.lstrip())
    text = _repair_xml(text, declared_entities)
    if _XML_DECLARATION_TEXT.match(text):
        text = _XML_DECLARATION_TEXT.sub(r"\g<1>utf-8\g<3>", text, count=1)
    return text.encode("utf-8", errors="replace")


def _repair_xml(text: str, declared_entities: frozenset[str] = frozenset()) -> str:
    text = _XML_CONTROL_CHARS.sub("", text)
    if "&" not in text:
        return text

    def repair(match: re.Match) -> str:
        name = match.group(1)
        if name is None:
            return "&amp;"  # a bare ampersand, typically in a URL query
        if name[:-1] in declared_entities:
            return match.group(0)
        codepoint = html.entities.name2codepoint.get(name[:-1])
        # HTML entities (&nbsp;, &mdash;) are undefined in XML: give them as character references instead.
        return f"&#{codepoint};" if codepoint else "&amp;" + name

    # Walk CDATA sections with plain searches: a regex with a lazy CDATA branch goes quadratic on unclosed sections.
    parts = []
    position = 0
    while True:
        start = text.find(CDATA_START, position)
        if start == -1:
            parts.append(_BARE_AMPERSAND.sub(repair, text[position:]))
            return "".join(parts)
        parts.append(_BARE_AMPERSAND.sub(repair, text[position:start]))
        end = text.find(CDATA_END, start + len(CDATA_START))
        if end == -1:
            parts.append(text[start:])
            return "".join(parts)
        parts.append(text[start:end + len(CDATA_END)])
        position = end + len(CDATA_END)


def _defuse_doctype(text: str) -> tuple[str, frozenset[str]]:
    """Keep only short, reference-free internal entities (such as &nbsp;) and drop everything else in the DTD.

    Entities that reference entities (billion laughs), long ones repeated (quadratic blow-up), parameter entities and
    external ones (XXE) cannot survive, so expansion stays linear in the document size. expat's own amplification
    limit only starts at 8 MiB of output, and feedparser's DOCTYPE filter misses declarations on the DOCTYPE line.
    """
    match = _DOCTYPE_START.search(text, 0, DOCTYPE_SEARCH_CHARS)
    if match is None:
        return text, frozenset()
    bracket = text.find("[", match.end())
    close = text.find(">", match.end())
    if close == -1:
        return text[: match.start()] + text[match.end():], frozenset()
    if bracket == -1 or bracket > close:
        return text, frozenset()  # no internal subset: nothing to expand, and external DTDs are never fetched
    end = _SUBSET_END.search(text, bracket)
    if end is None:
        return text[: match.start()] + text[match.end():], frozenset()
    entities = _PLAIN_ENTITY.findall(text[bracket + 1: end.start()])
    # One declaration per line: feedparser's own DOCTYPE rewriting only recognises line-initial declarations.
    kept = "".join(f"\n<!ENTITY {name} {value}>" for name, value in entities)
    doctype = f"<!DOCTYPE {match.group(1)} [{kept}\n]>" if kept else f"<!DOCTYPE {match.group(1)}>"
    return text[: match.start()] + doctype + text[end.end():], frozenset(name for name, _ in entities)


def _absolute(link: str | None, base_url: str | None) -> str | None:
    if not link or not isinstance(link, str):
        return None
    try:
        return urljoin(base_url, link.strip()) if base_url else link.strip()
    except ValueError:
        return None


def _looks_like_html(text: str) -> bool:
    start = _LEADING_JUNK.match(text[:20_000]).end()
    return bool(_HTML_START.match(text, start))


def _parse_xml(text: str, encoding: str, headers: Mapping[str, str], base_url: str | None) -> ParsedFeed:
    # No content-location: feedparser would then urljoin every link of every entry, a large share of its time, while
    # normalise resolves the few URLs we keep (and nh3 the ones inside content) against the feed URL anyway.
    response_headers = {"content-type": "application/xml; charset=utf-8"}
    if headers.get("content-language"):
        response_headers["content-language"] = headers["content-language"]
    result = feedparser.parse(
        _utf8_for_feedparser(text),
        response_headers=response_headers,
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    version = result.get("version") or ""
    feed = result.get("feed") or {}
    warnings = []
    if result.get("bozo"):
        warnings.append(f"not well-formed: {result.get('bozo_exception')}"[:300])
    entries = [_entry_from_feedparser(entry) for entry in result.get("entries") or ()]
    usable = [entry for entry in entries if entry.is_usable]
    if not usable:
        if _looks_like_html(text) and not version:
            raise FeedRejected("HTML page, not a feed")
        if not version and result.get("bozo"):
            raise FeedRejected(f"not valid XML: {result.get('bozo_exception')}"[:300])
        if not version:
            raise FeedRejected("not a feed")
        raise FeedRejected("no entries" if not entries else "no usable entries")
    if len(usable) < len(entries):
        warnings.append(f"{len(entries) - len(usable)} entries without link, id or text skipped")
    language = feed.get("language") or headers.get("content-language")
    return ParsedFeed(
        format=version or "unknown",
        title=(feed.get("title") or "")[:MAX_TITLE_CHARS],
        link=_absolute(feed.get("link"), base_url),
        language=language[:16] if isinstance(language, str) else None,
        encoding=encoding,
        entries=usable,
        warnings=warnings,
    )


# -- JSON Feed ------------------------------------------------------------------------------------------------------


def _json_str(value) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _json_author(item: Mapping) -> str | None:
    authors = item.get("authors")
    if isinstance(authors, list) and authors and isinstance(authors[0], Mapping):
        return _json_str(authors[0].get("name"))
    author = item.get("author")
    if isinstance(author, Mapping):
        return _json_str(author.get("name"))
    return None


def _entry_from_json(item: Mapping) -> RawEntry:
    content = None
    if _json_str(item.get("content_html")):
        content = Text(item["content_html"][:MAX_FIELD_CHARS], HTML_TYPE)
    elif _json_str(item.get("content_text")):
        content = Text(item["content_text"][:MAX_FIELD_CHARS], PLAIN_TYPE)
    summary = _json_str(item.get("summary"))
    title = _json_str(item.get("title"))
    item_id = item.get("id")
    if isinstance(item_id, int | float) and not isinstance(item_id, bool):
        item_id = str(item_id)  # JSON Feed 1.0 allowed numbers; 1.1 says strings
    tags = item.get("tags") if isinstance(item.get("tags"), list) else []
    return RawEntry(
        guid=_json_str(item_id),
        link=_json_str(item.get("url")) or _json_str(item.get("external_url")),
        title=Text(title[:MAX_TITLE_CHARS * 4], PLAIN_TYPE) if title else None,
        author=_json_author(item),
        published=_json_date(item.get("date_published")),
        updated=_json_date(item.get("date_modified")),
        summary=Text(summary[:MAX_FIELD_CHARS], PLAIN_TYPE) if summary else None,
        content=content,
        categories=[tag.strip()[:100] for tag in tags if isinstance(tag, str) and tag.strip()][:50],
        language=_json_str(item.get("language")),
    )


def _json_date(value) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return parse_date(value)
    return parsed.astimezone(dt.UTC) if parsed.tzinfo else parsed


def _parse_json(text: str, encoding: str) -> ParsedFeed:
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise FeedRejected(f"not valid JSON: {exc}"[:300]) from None
    if not isinstance(document, dict):
        raise FeedRejected("not a JSON Feed: the document is not an object")
    version = document.get("version")
    items = document.get("items")
    if not isinstance(items, list):
        raise FeedRejected("not a JSON Feed: no items list")
    warnings = []
    if not (isinstance(version, str) and "jsonfeed.org/version/" in version):
        warnings.append("JSON Feed without a version URL")
    entries = [_entry_from_json(item) for item in items if isinstance(item, dict)]
    usable = [entry for entry in entries if entry.is_usable]
    if not usable:
        raise FeedRejected("no entries" if not items else "no usable entries")
    language = _json_str(document.get("language"))
    return ParsedFeed(
        format="json11" if isinstance(version, str) and version.rstrip("/").endswith("1.1") else "json1",
        title=(_json_str(document.get("title")) or "")[:MAX_TITLE_CHARS],
        link=_json_str(document.get("home_page_url")),
        language=language[:16] if language else None,
        encoding=encoding,
        entries=usable,
        warnings=warnings,
    )


# -- entry point ----------------------------------------------------------------------------------------------------


def parse_feed(content: bytes, headers: Mapping[str, str] | None = None, base_url: str | None = None) -> ParsedFeed:
    """Parse a fetched document. Raises FeedRejected (with a short reason) when it holds no usable entry.

    `headers` are the response headers with lower-cased names; `base_url` is the URL the document came from, used to
    resolve relative links.
    """
    headers = headers or {}
    if not content or not content.strip():
        raise FeedRejected("empty document")
    text, encoding = decode_document(content, headers.get("content-type"))
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped.startswith(("{", "[")):
        return _parse_json(stripped, encoding)
    if not stripped.startswith("<"):
        raise FeedRejected("not a feed: the document is neither XML nor JSON")
    return _parse_xml(text, encoding, headers, base_url)
