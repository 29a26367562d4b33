"""From a published entry to the article we store: canonical URL and stable id, clean title, UTC dates, sanitised HTML,
plain text, language. Pure functions; no database, no network."""
from __future__ import annotations

import datetime as dt
import hashlib
import html
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import nh3

from .parse import RawEntry, Text

TRACKING_PARAMETERS = frozenset({
    "spm", "scm", "from", "fbclid", "gclid", "dclid", "gclsrc", "yclid", "msclkid", "mc_cid", "mc_eid", "igshid",
    "_hsenc", "_hsmi", "mkt_tok", "wt.mc_id", "ref_src", "share_token", "sharesource", "share_source", "share_medium",
    "isappinstalled", "vd_source", "xtor", "__twitter_impression", "ncid", "cmpid", "_ga",
})
TRACKING_PREFIXES = ("utm_", "pk_", "hmsr", "hmpl", "hmcu", "hmkw", "hmci")
DEFAULT_PORTS = {"http": 80, "https": 443}

ALLOWED_TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "dl", "dt", "em", "figcaption",
    "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "li", "mark", "ol", "p", "pre", "q", "s",
    "small", "span", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
})
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
    "blockquote": {"cite"},
    "q": {"cite"},
    "abbr": {"title"},
}
# Removed with everything inside them: their text is code, styling or a fallback nobody should read as the article.
DROPPED_WITH_CONTENT = frozenset({"script", "style", "iframe", "noscript", "template", "object", "svg", "math", "form"})
URL_SCHEMES = frozenset({"http", "https"})

MAX_TITLE_CHARS = 1_000
MAX_HTML_CHARS = 500_000
MAX_SUMMARY_TEXT_CHARS = 500
FUTURE_TOLERANCE = dt.timedelta(days=1)

_WHITESPACE = re.compile(r"\s+")
_BLOCK_TAG = re.compile(
    r"<(?:br|/?(?:p|div|li|h[1-6]|tr|blockquote|pre|table|ul|ol|dl|dt|dd|figure|figcaption|hr|caption))\b[^>]*>",
    re.IGNORECASE,
)
_ANY_TAG = re.compile(r"<[^>]*>")
_LEFTOVER_ENTITY = re.compile(r"&(?:[A-Za-z]{2,8}|#\d{2,7}|#x[0-9A-Fa-f]{2,6});")
_INLINE_SPACE = re.compile(r"[^\S\n]+")  # whitespace other than line breaks, incl. no-break and ideographic space
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_KANA = re.compile(r"[\u3040-\u30ff]+")
_HANGUL = re.compile(r"[\uac00-\ud7af]+")
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]+")


@dataclass
class FeedContext:
    """What normalising an entry needs to know about its feed."""

    feed_id: int
    feed_url: str
    outlet: str
    language: str | None = None  # as configured, else as the feed declares
    time_zone: str = "Asia/Shanghai"

    def zone(self) -> dt.tzinfo:
        try:
            return ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            return ZoneInfo("Asia/Shanghai")


@dataclass
class NormalisedArticle:
    id: str
    feed_id: int
    guid: str | None
    url: str | None
    title: str
    author: str | None
    published_at: dt.datetime
    published_known: bool  # False when the entry had no usable date and published_at is the time we first saw it
    updated_at: dt.datetime | None
    summary_html: str
    content_html: str
    text: str
    summary_text: str
    language: str
    outlet: str
    categories: list[str] = field(default_factory=list)
    content_hash: str = ""


# -- URLs and identity ----------------------------------------------------------------------------------------------


def _is_tracking(name: str) -> bool:
    lowered = name.lower()
    return lowered in TRACKING_PARAMETERS or lowered.startswith(TRACKING_PREFIXES)


def canonical_url(url: str | None, base: str | None = None) -> str | None:
    """The URL that identifies a story: tracking parameters, fragment and default port dropped, host lower-cased,
    query sorted. None when `url` is not an http(s) URL (even after resolving it against `base`)."""
    if not url or not isinstance(url, str):
        return None
    url = url.strip()
    if base:
        try:
            url = urljoin(base, url)
        except ValueError:
            return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower().rstrip(".")
    if ":" in host:
        host = f"[{host}]"  # IPv6 literal
    if port is not None and port != DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    query = ""
    if parts.query:
        pairs = [(name, value) for name, value in parse_qsl(parts.query, keep_blank_values=True) if not _is_tracking(name)]
        query = urlencode(sorted(pairs))
    return urlunsplit((scheme, host, parts.path or "/", query, ""))


def _digest(value: str, size: int = 40) -> str:
    return hashlib.sha1(value.encode("utf-8", errors="surrogatepass")).hexdigest()[:size]


def key_of(value: str | None) -> str | None:
    """Index key for a possibly long string (URL, GUID)."""
    return _digest(value) if value else None


def article_id(url: str | None, guid: str | None, fallback: str) -> str:
    """Stable id from what identifies the story independently of the feed carrying it."""
    if url:
        return _digest(f"url:{url}", 32)
    if guid:
        return _digest(f"guid:{guid}", 32)
    return _digest(f"entry:{fallback}", 32)


# -- text -----------------------------------------------------------------------------------------------------------


def collapse_whitespace(value: str) -> str:
    return _WHITESPACE.sub(" ", value).strip()


def clean_title(title: Text | None) -> str:
    """Plain, single-line title. HTML titles lose their tags; doubly escaped entities (common in Chinese WordPress
    feeds) are decoded once more."""
    if title is None:
        return ""
    value = title.value
    if title.is_html or "<" in value:
        value = html.unescape(_ANY_TAG.sub("", nh3.clean(value[: MAX_TITLE_CHARS * 4], tags=set())))
    if _LEFTOVER_ENTITY.search(value):
        value = html.unescape(value)
    return collapse_whitespace(value)[:MAX_TITLE_CHARS]


def sanitise_html(value: str, base_url: str | None = None) -> str:
    """A safe HTML subset: no scripts, styles, event handlers or foreign schemes; relative links made absolute."""
    if not value:
        return ""
    options = {}
    if base_url and base_url.startswith(("http://", "https://")):
        options["url_relative"] = ("rewrite_with_base", base_url)
    try:
        cleaned = nh3.clean(
            value[:MAX_HTML_CHARS],
            tags=set(ALLOWED_TAGS),
            clean_content_tags=set(DROPPED_WITH_CONTENT),
            attributes=ALLOWED_ATTRIBUTES,
            url_schemes=set(URL_SCHEMES),
            link_rel="noopener noreferrer nofollow",
            **options,
        )
    except ValueError:
        # nh3 refuses a base it cannot parse; relative links then stay relative rather than losing the content.
        cleaned = nh3.clean(
            value[:MAX_HTML_CHARS],
            tags=set(ALLOWED_TAGS),
            clean_content_tags=set(DROPPED_WITH_CONTENT),
            attributes=ALLOWED_ATTRIBUTES,
            url_schemes=set(URL_SCHEMES),
            link_rel="noopener noreferrer nofollow",
        )
    return cleaned.strip()


def text_to_html(value: str) -> str:
    """Plain text published as such: escaped, paragraphs kept."""
    paragraphs = [collapse_whitespace(part) for part in re.split(r"\n\s*\n", value[:MAX_HTML_CHARS])]
    return "".join(f"<p>{html.escape(part)}</p>" for part in paragraphs if part)


def html_to_text(sanitised: str) -> str:
    """Plain text of HTML that `sanitise_html` produced (so tags are well-formed and no script text remains).

    Inline tags vanish without a space so that Chinese words split by <b> stay whole; block tags become line breaks.
    """
    if not sanitised:
        return ""
    text = html.unescape(_ANY_TAG.sub("", _BLOCK_TAG.sub("\n", sanitised)))
    text = _INLINE_SPACE.sub(" ", text)
    return "\n".join(stripped for line in text.split("\n") if (stripped := line.strip()))


def _html_of(part: Text | None, base_url: str | None) -> str:
    if part is None:
        return ""
    if part.is_html:
        return sanitise_html(part.value, base_url)
    return text_to_html(part.value)


def detect_language(text: str, declared: str | None) -> str:
    """zh or en (or another declared language) from the share of Han characters, falling back on the declaration.

    Many Chinese WordPress blogs keep the default en-US, so a clearly Chinese text wins over what the feed says.
    """
    primary = declared.split("-")[0].split("_")[0].strip().lower()[:8] if declared else None
    sample = text[:1500]
    han = sum(len(run) for run in _HAN.findall(sample))
    latin_words = len(_LATIN.findall(sample))
    kana = sum(len(run) for run in _KANA.findall(sample))
    hangul = sum(len(run) for run in _HANGUL.findall(sample))
    if kana > 5 and kana * 5 > han:
        return "ja"
    if hangul > 5 and hangul > han:
        return "ko"
    # A Han character carries about as much as an English word, hence characters against words.
    if han >= 5 and han >= latin_words * 0.5:
        return "zh"
    if primary and primary not in ("zh", "ja", "ko") and primary.isalpha():
        return primary
    if han + latin_words < 5 and primary:
        return primary
    return "en"


def to_utc(value: dt.datetime | None, zone: dt.tzinfo) -> dt.datetime | None:
    """Aware UTC; a naive value is wall-clock time in the feed's zone."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    try:
        return value.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        return None


def content_hash(url: str | None, title: str, text: str, summary_text: str, categories: list[str]) -> str:
    """Digest of what readers see; a change of it is a real update (dates and markup-only changes are not)."""
    material = "\x1f".join([url or "", title, summary_text, text, "\x1e".join(categories)])
    return hashlib.sha256(material.encode("utf-8", errors="surrogatepass")).hexdigest()


# -- entries --------------------------------------------------------------------------------------------------------


def normalise_entry(entry: RawEntry, context: FeedContext, now: dt.datetime, feed_language: str | None = None
                    ) -> NormalisedArticle:
    """The article for one parsed entry. `now` stands in for a missing or future publication date."""
    url = canonical_url(entry.link, context.feed_url)
    base = url or context.feed_url
    if url is None and entry.guid and entry.guid.startswith(("http://", "https://")):
        url = canonical_url(entry.guid)
    title = clean_title(entry.title)
    summary_html = _html_of(entry.summary, base)
    content_html = _html_of(entry.content, base) or summary_html
    text = html_to_text(content_html)
    summary_text = html_to_text(summary_html) if summary_html else text
    summary_text = summary_text[:MAX_SUMMARY_TEXT_CHARS]
    if not title:
        title = collapse_whitespace(summary_text[:80]) or (url or "")[:200]
    zone = context.zone()
    published = to_utc(entry.published, zone)
    updated = to_utc(entry.updated, zone)
    published_known = published is not None or updated is not None
    published_at = published or updated or now
    if published_at > now + FUTURE_TOLERANCE:
        published_at = now
    categories = [collapse_whitespace(html.unescape(term)) for term in entry.categories]
    categories = list(dict.fromkeys(term for term in categories if term))
    language = detect_language(f"{title}\n{text}", entry.language or context.language or feed_language)
    guid = entry.guid
    return NormalisedArticle(
        id=article_id(url, guid, f"{context.feed_url}\x1f{title}\x1f{summary_text[:200]}"),
        feed_id=context.feed_id,
        guid=guid,
        url=url,
        title=title,
        author=collapse_whitespace(entry.author)[:200] if isinstance(entry.author, str) and entry.author.strip() else None,
        published_at=published_at,
        published_known=published_known,
        updated_at=updated,
        summary_html=summary_html,
        content_html=content_html,
        text=text,
        summary_text=summary_text,
        language=language,
        outlet=context.outlet,
        categories=categories,
        content_hash=content_hash(url, title, text, summary_text, categories),
    )
