"""Storing one polled document: parse, normalise, deduplicate, write articles and their events in one transaction."""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import SimpleNamespace

from sqlalchemy import and_, insert, or_, select
from sqlalchemy.orm import Session

from . import dedupe
from .events import ARTICLE_INGESTED, ARTICLE_UPDATED, EVENT_SUMMARY_MAX_CHARS, EVENT_TEXT_MAX_CHARS
from .model import Article, Feed
from .normalise import FeedContext, NormalisedArticle, key_of, normalise_entry
from .parse import ParsedFeed, parse_feed

Emit = Callable[[str, Mapping], object]

IN_CHUNK = 400  # keeps IN (...) lists well under SQLite's and PostgreSQL's parameter limits

# Events must not carry personal data; news text sometimes quotes contact details, which are masked here. The e-mail
# pattern is ASCII-only and bounded because \w also matches Han characters: an unbounded [\w.]+@ would rescan whole
# Chinese sentences from every position.
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})+")
_NUMBERS = re.compile(
    r"(?<!\d)(?:\d{17}[\dXx]"  # PRC resident ID number
    r"|1[3-9]\d{9}"  # PRC mobile number
    r"|0\d{2,3}-?\d{7,8})(?!\d)"  # PRC landline with area code
)
_INTERNATIONAL_PHONE = re.compile(r"\+\d{1,3}[\s-]?\(?\d{1,4}\)?(?:[\s-]?\d{2,4}){2,4}")
REDACTED = "[redacted]"


def redact_contact_details(text: str) -> str:
    if "@" in text:
        text = _EMAIL.sub(REDACTED, text)
    text = _NUMBERS.sub(REDACTED, text)
    if "+" in text:
        text = _INTERNATIONAL_PHONE.sub(REDACTED, text)
    return text


@dataclass
class IngestCounts:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0  # entries that are an article already stored from another feed, or repeated in this one
    syndicated: int = 0  # new articles recorded as copies of a near-identical canonical article

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def feed_context(feed: Feed) -> FeedContext:
    return FeedContext(
        feed_id=feed.id,
        feed_url=feed.url,
        outlet=feed.outlet or feed.title or "",
        language=feed.language,
        time_zone=feed.time_zone,
    )


def parse_and_normalise(
    content: bytes, headers: Mapping[str, str], feed: Feed, now: dt.datetime
) -> tuple[ParsedFeed, list[NormalisedArticle]]:
    """Raises FeedRejected when the document has no usable entry."""
    parsed = parse_feed(content, headers, base_url=feed.url)
    context = feed_context(feed)
    if not context.outlet:
        context.outlet = parsed.title[:200]
    return parsed, [normalise_entry(entry, context, now, parsed.language) for entry in parsed.entries]


def event_payload(article, summary_text: str | None = None) -> dict:
    """The article_ingested / article_updated payload: no author, bounded text, contact details masked."""
    summary = summary_text if summary_text is not None else article_summary_text(article)
    return {
        "id": article.id,
        "version": article.version,
        "feed_id": article.feed_id,
        "url": article.url,
        "title": redact_contact_details(article.title),
        "summary": redact_contact_details(summary)[:EVENT_SUMMARY_MAX_CHARS],
        "text": redact_contact_details(article.text[:EVENT_TEXT_MAX_CHARS])[:EVENT_TEXT_MAX_CHARS],
        "language": article.language,
        "outlet": article.outlet,
        "published_at": article.published_at,
        "updated_at": article.updated_at,
        "categories": list(article.categories or []),
        "canonical_of": article.canonical_of,
    }


def article_summary_text(article: Article) -> str:
    from .normalise import MAX_SUMMARY_TEXT_CHARS, html_to_text

    if article.summary_html:
        return html_to_text(article.summary_html)[:MAX_SUMMARY_TEXT_CHARS]
    return article.text[:MAX_SUMMARY_TEXT_CHARS]


def _chunks(values: Sequence, size: int = IN_CHUNK):
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _load_existing(session: Session, feed_id: int, batch: list[NormalisedArticle]):
    """Stored articles matching the batch by id, by this feed's GUID or by canonical URL (one query per chunk)."""
    found: dict[str, Article] = {}
    for chunk in _chunks(batch, IN_CHUNK // 3):
        conditions = [Article.id.in_({item.id for item in chunk})]
        guid_keys = {key_of(item.guid) for item in chunk if item.guid}
        url_keys = {key_of(item.url) for item in chunk if item.url}
        if guid_keys:
            conditions.append(and_(Article.feed_id == feed_id, Article.guid_key.in_(guid_keys)))
        if url_keys:
            conditions.append(Article.url_key.in_(url_keys))
        for row in session.scalars(select(Article).where(or_(*conditions))):
            found[row.id] = row
    by_guid = {(row.feed_id, row.guid_key): row for row in found.values() if row.guid_key}
    by_url = {row.url_key: row for row in found.values() if row.url_key}
    return found, by_guid, by_url


def _lsh_columns():
    return [Article.lsh0, Article.lsh1, Article.lsh2, Article.lsh3, Article.lsh4]


def _canonical_candidates(session: Session, keys_of_new: list[tuple[int, ...]]) -> list[dedupe.Fingerprinted]:
    """Canonical articles sharing at least one LSH band key with any of the new articles (one query per chunk: the
    databases answer an OR of indexed IN lists with an index union)."""
    candidates: dict[str, dedupe.Fingerprinted] = {}
    for chunk in _chunks(keys_of_new, IN_CHUNK // dedupe.LSH_BANDS):
        condition = or_(*(column.in_({keys[band] for keys in chunk}) for band, column in enumerate(_lsh_columns())))
        # canonical_of is filtered here rather than in SQL, where it could tempt the planner away from the band
        # indexes into scanning every canonical article.
        for article_id, encoded, canonical_of in session.execute(
            select(Article.id, Article.sketch, Article.canonical_of).where(condition)
        ):
            if canonical_of is not None or article_id in candidates:
                continue
            stored = dedupe.decode_sketch(encoded)
            if stored is not None:
                candidates[article_id] = dedupe.Fingerprinted(article_id, stored)
    return list(candidates.values())


def _apply_update(row: Article, item: NormalisedArticle, url_taken: bool, now: dt.datetime) -> None:
    if item.url and item.url != row.url and not url_taken:
        row.url, row.url_key = item.url, key_of(item.url)
    row.title = item.title
    row.author = item.author
    if item.published_known:
        row.published_at = item.published_at
    row.updated_at = item.updated_at or now
    row.summary_html = item.summary_html
    row.content_html = item.content_html
    row.text = item.text
    row.language = item.language
    row.categories = item.categories
    row.content_hash = item.content_hash
    value = dedupe.sketch(item.text)
    row.sketch = dedupe.encode_sketch(value) if value is not None else None
    row.lsh0, row.lsh1, row.lsh2, row.lsh3, row.lsh4 = (
        dedupe.band_keys(value) if value is not None else (None,) * dedupe.LSH_BANDS
    )
    row.version += 1
    row.changed_at = now


def store_articles(
    session: Session, feed: Feed, batch: list[NormalisedArticle], emit: Emit, now: dt.datetime
) -> IngestCounts:
    """Insert new articles, update really changed ones, group near-duplicates; stage one event per change."""
    counts = IngestCounts()
    found, by_guid, by_url = _load_existing(session, feed.id, batch)
    seen_in_batch: set[str] = set()
    fresh: list[tuple[NormalisedArticle, dedupe.Sketch | None, tuple[int, ...] | None]] = []
    for item in batch:
        guid_key = key_of(item.guid)
        url_key = key_of(item.url)
        existing = (by_guid.get((feed.id, guid_key)) if guid_key else None) or found.get(item.id) or (
            by_url.get(url_key) if url_key else None
        )
        if existing is not None:
            if existing.id in seen_in_batch:
                counts.duplicates += 1
                continue
            seen_in_batch.add(existing.id)
            if existing.feed_id != feed.id:
                # Another feed brought this story first and owns its content: no flip-flopping between versions.
                counts.duplicates += 1
            elif existing.content_hash == item.content_hash:
                counts.unchanged += 1
            else:
                holder = by_url.get(url_key) if url_key else None
                _apply_update(existing, item, url_taken=holder is not None and holder is not existing, now=now)
                if existing.url_key:
                    by_url[existing.url_key] = existing  # a later entry of this batch may not claim the new URL
                emit(ARTICLE_UPDATED, event_payload(existing, item.summary_text))
                counts.updated += 1
            continue
        if item.id in seen_in_batch or (url_key and url_key in by_url):
            counts.duplicates += 1
            continue
        seen_in_batch.add(item.id)
        value = dedupe.sketch(item.text)
        fresh.append((item, value, dedupe.band_keys(value) if value is not None else None))

    new_rows: list[dict] = []
    index = dedupe.NearDuplicateIndex(_canonical_candidates(session, [keys for _, _, keys in fresh if keys]))
    for item, value, keys in fresh:
        canonical_of = None
        if value is not None:
            nearest = index.nearest(value, keys)
            if nearest is not None:
                canonical_of = nearest.id
                counts.syndicated += 1
            else:
                index.add(dedupe.Fingerprinted(item.id, value))
        lsh = keys if keys is not None else (None,) * dedupe.LSH_BANDS
        values = {
            "id": item.id,
            "feed_id": feed.id,
            "guid": item.guid,
            "guid_key": key_of(item.guid),
            "url": item.url,
            "url_key": key_of(item.url),
            "title": item.title,
            "author": item.author,
            "published_at": item.published_at,
            "updated_at": item.updated_at,
            "summary_html": item.summary_html,
            "content_html": item.content_html,
            "text": item.text,
            "language": item.language,
            "outlet": item.outlet,
            "categories": item.categories,
            "content_hash": item.content_hash,
            "version": 1,
            "canonical_of": canonical_of,
            "sketch": dedupe.encode_sketch(value) if value is not None else None,
            "lsh0": lsh[0],
            "lsh1": lsh[1],
            "lsh2": lsh[2],
            "lsh3": lsh[3],
            "lsh4": lsh[4],
            "ingested_at": now,
            "changed_at": now,
        }
        new_rows.append(values)
        emit(ARTICLE_INGESTED, event_payload(SimpleNamespace(**values), item.summary_text))
        counts.new += 1
    if new_rows:
        # One multi-row INSERT instead of a unit-of-work flush per object: storage is a large share of ingest time.
        session.execute(insert(Article), new_rows)
    return counts


def find_feed_by_url(session: Session, *urls: str | None) -> Feed | None:
    wanted = [url for url in urls if url]
    if not wanted:
        return None
    return session.scalars(select(Feed).where(or_(*(Feed.url == url for url in wanted)))).first()
