"""Storing one polled document: parse, normalise, deduplicate, write articles and their events in one transaction."""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from . import dedupe
from .events import ARTICLE_INGESTED, ARTICLE_UPDATED, EVENT_SUMMARY_MAX_CHARS, EVENT_TEXT_MAX_CHARS
from .model import Article, Feed
from .normalise import FeedContext, NormalisedArticle, key_of, normalise_entry
from .parse import ParsedFeed, parse_feed

Emit = Callable[[str, Mapping], object]

IN_CHUNK = 400  # keeps IN (...) lists well under SQLite's and PostgreSQL's parameter limits

# Events must not carry personal data; news text sometimes quotes contact details, which are masked here.
_CONTACT_DETAILS = re.compile(
    r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"  # e-mail
    r"|(?<![\d])\d{17}[\dXx](?![\d])"  # PRC resident ID number
    r"|(?<![\d])1[3-9]\d{9}(?![\d])"  # PRC mobile number
    r"|(?<![\d])0\d{2,3}-?\d{7,8}(?![\d])"  # PRC landline with area code
    r"|\+\d{1,3}[\s-]?\(?\d{1,4}\)?(?:[\s-]?\d{2,4}){2,4}"  # international number
)
REDACTED = "[redacted]"


def redact_contact_details(text: str) -> str:
    return _CONTACT_DETAILS.sub(REDACTED, text)


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


def event_payload(article: Article) -> dict:
    """The article_ingested / article_updated payload: no author, bounded text, contact details masked."""
    summary = article_summary_text(article)
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
    ids = list({item.id for item in batch})
    guid_keys = list({key_of(item.guid) for item in batch if item.guid})
    url_keys = list({key_of(item.url) for item in batch if item.url})
    found: dict[str, Article] = {}
    for chunk in _chunks(ids):
        for row in session.scalars(select(Article).where(Article.id.in_(chunk))):
            found[row.id] = row
    for chunk in _chunks(guid_keys):
        for row in session.scalars(select(Article).where(Article.feed_id == feed_id, Article.guid_key.in_(chunk))):
            found[row.id] = row
    for chunk in _chunks(url_keys):
        for row in session.scalars(select(Article).where(Article.url_key.in_(chunk))):
            found[row.id] = row
    by_guid = {(row.feed_id, row.guid_key): row for row in found.values() if row.guid_key}
    by_url = {row.url_key: row for row in found.values() if row.url_key}
    return found, by_guid, by_url


def _lsh_columns():
    return [Article.lsh0, Article.lsh1, Article.lsh2, Article.lsh3, Article.lsh4]


def _canonical_candidates(session: Session, keys_of_new: list[tuple[int, ...]]) -> list[dedupe.Fingerprinted]:
    """Canonical articles sharing at least one LSH band key with any of the new articles."""
    if not keys_of_new:
        return []
    wanted = [sorted({keys[band] for keys in keys_of_new}) for band in range(dedupe.LSH_BANDS)]
    candidates: dict[str, dedupe.Fingerprinted] = {}
    for band, column in enumerate(_lsh_columns()):
        for chunk in _chunks(wanted[band]):
            rows = session.execute(
                select(Article.id, Article.sketch).where(Article.canonical_of.is_(None), column.in_(chunk))
            )
            for article_id, encoded in rows:
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
                emit(ARTICLE_UPDATED, event_payload(existing))
                counts.updated += 1
            continue
        if item.id in seen_in_batch or (url_key and url_key in by_url):
            counts.duplicates += 1
            continue
        seen_in_batch.add(item.id)
        value = dedupe.sketch(item.text)
        fresh.append((item, value, dedupe.band_keys(value) if value is not None else None))

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
        url_key = key_of(item.url)
        row = Article(
            id=item.id,
            feed_id=feed.id,
            guid=item.guid,
            guid_key=key_of(item.guid),
            url=item.url,
            url_key=url_key,
            title=item.title,
            author=item.author,
            published_at=item.published_at,
            updated_at=item.updated_at,
            summary_html=item.summary_html,
            content_html=item.content_html,
            text=item.text,
            language=item.language,
            outlet=item.outlet,
            categories=item.categories,
            content_hash=item.content_hash,
            version=1,
            canonical_of=canonical_of,
            sketch=dedupe.encode_sketch(value) if value is not None else None,
            lsh0=lsh[0],
            lsh1=lsh[1],
            lsh2=lsh[2],
            lsh3=lsh[3],
            lsh4=lsh[4],
            ingested_at=now,
            changed_at=now,
        )
        session.add(row)
        if url_key:
            by_url[url_key] = row
        emit(ARTICLE_INGESTED, event_payload(row))
        counts.new += 1
    return counts


def find_feed_by_url(session: Session, *urls: str | None) -> Feed | None:
    wanted = [url for url in urls if url]
    if not wanted:
        return None
    return session.scalars(select(Feed).where(or_(*(Feed.url == url for url in wanted)))).first()
