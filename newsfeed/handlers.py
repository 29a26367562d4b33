"""Use cases of the newsfeed domain. Services call these with a unit of work (services.kernel.outbox.SqlUnitOfWork
built over newsfeed.model with newsfeed.events.EVENT_SCHEMAS) and, where fetching is involved, a fetcher
(newsfeed.fetch.Fetcher or anything with the same `fetch`).

Each handler opens and commits its own transactions (`with uow:`), so the caller only builds the unit of work. Polling
never holds a transaction open across the network: it reads the feed, fetches, then writes articles, events and the
feed's health in one transaction.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import random
from dataclasses import dataclass, field
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete, func, or_, select
from sqlalchemy.exc import IntegrityError

from services.kernel.db import utcnow

from . import discovery, schedule
from .commands import MAX_POLL_INTERVAL_S, MIN_POLL_INTERVAL_S, AddFeed, ListArticles, UpdateFeed
from .exceptions import FeedAlreadyExists, FeedRejected, InvalidFeed, NotFound
from .model import Article, Feed, FeedStatus
from .normalise import canonical_url
from .pipeline import IngestCounts, event_payload, find_feed_by_url, parse_and_normalise, store_articles

LANGUAGES = ("zh", "en")
DUE_LEASE = dt.timedelta(minutes=10)  # a claimed feed is not handed out again while its poll may still be running
MAX_LIST_LIMIT = 500
_rng = random.Random()
logger = logging.getLogger(__name__)


@dataclass
class PollOutcome:
    feed_id: int
    status: str  # "ok", "not_modified", "failed", "skipped" (paused or removed)
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0
    syndicated: int = 0
    error: str | None = None
    next_poll_at: dt.datetime | None = None
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


# -- validation -----------------------------------------------------------------------------------------------------


def _feed_url_errors(url: str | None) -> list[str]:
    if not url or not isinstance(url, str):
        return ["a URL is required"]
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return ["not a valid URL"]
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return ["must be an http or https URL"]
    if len(url) > 2000:
        return ["longer than 2000 characters"]
    return []


def _settings_errors(command) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if command.url is not None or isinstance(command, AddFeed):
        messages = _feed_url_errors(command.url)
        if messages:
            errors["url"] = messages
    if command.language is not None and command.language not in LANGUAGES:
        errors["language"] = [f"must be one of {', '.join(LANGUAGES)}"]
    if command.time_zone is not None:
        try:
            ZoneInfo(command.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            errors["time_zone"] = ["not an IANA time zone name (e.g. Asia/Shanghai)"]
    if command.poll_interval_s is not None and not (
        isinstance(command.poll_interval_s, int) and MIN_POLL_INTERVAL_S <= command.poll_interval_s <= MAX_POLL_INTERVAL_S
    ):
        errors["poll_interval_s"] = [f"must be between {MIN_POLL_INTERVAL_S} and {MAX_POLL_INTERVAL_S} seconds"]
    for name, limit in (("title", 500), ("outlet", 200), ("category", 100)):
        value = getattr(command, name)
        if value is not None and len(value) > limit:
            errors[name] = [f"longer than {limit} characters"]
    return errors


def _raise_if(errors: dict[str, list[str]]) -> None:
    if errors:
        raise InvalidFeed(errors)


# -- views ----------------------------------------------------------------------------------------------------------


def feed_view(feed: Feed) -> dict:
    return {
        "id": feed.id,
        "url": feed.url,
        "site_url": feed.site_url,
        "title": feed.title,
        "outlet": feed.outlet,
        "language": feed.language,
        "time_zone": feed.time_zone,
        "poll_interval_s": feed.poll_interval_s,
        "category": feed.category,
        "paused": feed.paused,
        "created_at": feed.created_at,
        "updated_at": feed.updated_at,
        "articles_seen": feed.articles_seen,
        "health": {
            "status": feed.status,
            "last_polled_at": feed.last_polled_at,
            "last_success_at": feed.last_success_at,
            "last_error_at": feed.last_error_at,
            "last_error": feed.last_error,
            "consecutive_failures": feed.consecutive_failures,
            "next_poll_at": None if feed.paused else feed.next_poll_at,
        },
    }


def article_view(article: Article, with_html: bool = True) -> dict:
    view = event_payload(article)
    view["ingested_at"] = article.ingested_at
    view["changed_at"] = article.changed_at
    if with_html:
        view["summary_html"] = article.summary_html
        view["content_html"] = article.content_html
    return view


def _get_feed(session, feed_id: int) -> Feed:
    feed = session.get(Feed, feed_id)
    if feed is None:
        raise NotFound("feed", feed_id)
    return feed


# -- feed management ------------------------------------------------------------------------------------------------


def _resolve_feed_url(cmd: AddFeed, fetcher) -> tuple[str, str | None, str]:
    """(feed URL, site URL, feed title) for what the user gave: a feed, or a page that advertises one."""
    result = fetcher.fetch(cmd.url)
    if not result.ok:
        raise InvalidFeed({"url": [f"could not fetch it: {result.error or f'HTTP {result.status}'}"]})
    fetched_url = result.permanent_redirect_to or result.final_url or cmd.url
    content_type = result.headers.get("content-type")
    if discovery.looks_like_feed(result.content, content_type):
        return fetched_url, None, _feed_title(result.content, result.headers, fetched_url)
    candidates = discovery.discover_feeds(result.final_url or cmd.url, result.content, result.headers)
    reasons = []
    for candidate in candidates[:5]:
        feed_result = fetcher.fetch(candidate.url)
        if not feed_result.ok:
            reasons.append(f"{candidate.url}: {feed_result.error or feed_result.status}")
            continue
        feed_url = feed_result.permanent_redirect_to or feed_result.final_url or candidate.url
        try:
            title = _feed_title(feed_result.content, feed_result.headers, feed_url, strict=True)
        except FeedRejected as rejected:
            reasons.append(f"{candidate.url}: {rejected.reason}")
            continue
        return feed_url, fetched_url, title or candidate.title or ""
    if reasons:
        raise InvalidFeed({"url": ["the page advertises feeds but none could be read: " + "; ".join(reasons)][:1]})
    raise InvalidFeed({"url": ["no feed found at this address (neither a feed nor a page that links to one)"]})


def _feed_title(content: bytes, headers, url: str, strict: bool = False) -> str:
    from .parse import parse_feed

    try:
        return parse_feed(content, headers, base_url=url).title
    except FeedRejected:
        if strict:
            raise
        # Looks like a feed but is unusable right now; subscribing is still allowed and polling will report why.
        return ""


def add_feed(uow, cmd: AddFeed, fetcher, now: dt.datetime | None = None) -> dict:
    """Subscribe to a feed (given directly or via a page advertising it). Raises InvalidFeed, FeedAlreadyExists."""
    _raise_if(_settings_errors(cmd))
    now = now or utcnow()
    given_url = cmd.url.strip()
    with uow:
        existing = find_feed_by_url(uow.session, given_url, canonical_url(given_url))
        if existing is not None:
            raise FeedAlreadyExists(existing.url, existing.id)
    feed_url, site_url, title = _resolve_feed_url(dataclasses.replace(cmd, url=given_url), fetcher)
    with uow:
        existing = find_feed_by_url(uow.session, feed_url)
        if existing is not None:
            raise FeedAlreadyExists(existing.url, existing.id)
        feed = Feed(
            url=feed_url,
            site_url=site_url,
            title=(cmd.title or title or "")[:500],
            outlet=(cmd.outlet or cmd.title or title or urlsplit(feed_url).hostname or "")[:200],
            language=cmd.language,
            time_zone=cmd.time_zone,
            poll_interval_s=cmd.poll_interval_s,
            category=cmd.category or None,
            next_poll_at=now,  # due at once: the timer ingests it on its next tick
            created_at=now,
            updated_at=now,
        )
        uow.session.add(feed)
        try:
            uow.session.flush()
        except IntegrityError:
            raise FeedAlreadyExists(feed_url) from None
        view = feed_view(feed)
        uow.commit()
    return view


def update_feed(uow, cmd: UpdateFeed) -> dict:
    _raise_if(_settings_errors(cmd))
    with uow:
        feed = _get_feed(uow.session, cmd.feed_id)
        if cmd.url is not None and cmd.url.strip() != feed.url:
            other = find_feed_by_url(uow.session, cmd.url.strip())
            if other is not None and other.id != feed.id:
                raise FeedAlreadyExists(other.url, other.id)
            feed.url = cmd.url.strip()
            feed.etag = feed.last_modified = None  # validators belonged to the old URL
        for name in ("title", "outlet", "language", "time_zone", "poll_interval_s"):
            value = getattr(cmd, name)
            if value is not None:
                setattr(feed, name, value)
        if cmd.category is not None:
            feed.category = cmd.category or None
        uow.session.flush()
        view = feed_view(feed)
        uow.commit()
    return view


def pause_feed(uow, feed_id: int) -> dict:
    with uow:
        feed = _get_feed(uow.session, feed_id)
        feed.paused = True
        view = feed_view(feed)
        uow.commit()
    return view


def resume_feed(uow, feed_id: int, now: dt.datetime | None = None) -> dict:
    with uow:
        feed = _get_feed(uow.session, feed_id)
        if feed.paused:
            feed.paused = False
            feed.next_poll_at = now or utcnow()
        view = feed_view(feed)
        uow.commit()
    return view


def remove_feed(uow, feed_id: int) -> None:
    """Unsubscribe. Articles first brought by this feed go with it (other services keep what they indexed)."""
    with uow:
        feed = _get_feed(uow.session, feed_id)
        uow.session.execute(delete(Article).where(Article.feed_id == feed_id))
        uow.session.delete(feed)
        uow.commit()


def get_feed(uow, feed_id: int) -> dict:
    with uow:
        return feed_view(_get_feed(uow.session, feed_id))


def list_feeds(uow) -> list[dict]:
    """Every feed with its health (last success, last error and reason, consecutive failures, next poll)."""
    with uow:
        return [feed_view(feed) for feed in uow.session.scalars(select(Feed).order_by(Feed.id))]


# -- polling --------------------------------------------------------------------------------------------------------


def due_feeds(uow, now: dt.datetime | None = None, limit: int = 50) -> list[int]:
    """Claim up to `limit` unpaused feeds whose next poll is due, oldest first; claimed feeds are pushed back by a
    lease so a second timer tick does not poll them twice while the first poll runs."""
    now = now or utcnow()
    with uow:
        feeds = uow.session.scalars(
            select(Feed)
            .where(Feed.paused.is_(False), or_(Feed.next_poll_at.is_(None), Feed.next_poll_at <= now))
            .order_by(Feed.next_poll_at, Feed.id)
            .limit(limit)
            # Several pollers on one PostgreSQL database claim disjoint feeds; SQLite serialises writers anyway.
            .with_for_update(skip_locked=True)
        ).all()
        for feed in feeds:
            feed.next_poll_at = now + DUE_LEASE
        ids = [feed.id for feed in feeds]
        uow.commit()
    return ids


@dataclass
class _FeedSnapshot:
    url: str
    etag: str | None
    last_modified: str | None
    paused: bool


def _record_failure(feed: Feed, reason: str, now: dt.datetime, retry_after: float | None, rng) -> None:
    feed.status = FeedStatus.FAILING
    feed.last_polled_at = now
    feed.last_error = reason[: schedule.MAX_ERROR_LENGTH]
    feed.last_error_at = now
    feed.consecutive_failures += 1
    feed.next_poll_at = schedule.next_poll_at(
        now, feed.poll_interval_s, str(feed.id), feed.consecutive_failures, retry_after, rng
    )


def _record_success(feed: Feed, now: dt.datetime, retry_after: float | None, rng) -> None:
    feed.status = FeedStatus.OK
    feed.last_polled_at = now
    feed.last_success_at = now
    feed.consecutive_failures = 0
    feed.next_poll_at = schedule.next_poll_at(now, feed.poll_interval_s, str(feed.id), 0, retry_after, rng)


def _move_feed(session, feed: Feed, new_url: str | None) -> None:
    """Follow a permanent redirect unless another subscription already has that URL."""
    if not new_url or new_url == feed.url:
        return
    if find_feed_by_url(session, new_url) is None:
        feed.url = new_url


def poll_feed(uow, feed_id: int, fetcher, now: dt.datetime | None = None, rng=None) -> PollOutcome:
    """Fetch one feed and store what is new or changed, with article_ingested / article_updated events in the same
    transaction. Failures (network, HTTP, unusable document) are recorded on the feed, never raised."""
    now = now or utcnow()
    rng = rng or _rng
    with uow:
        feed = uow.session.get(Feed, feed_id)
        if feed is None:
            return PollOutcome(feed_id, "skipped", error="feed not found")
        snapshot = _FeedSnapshot(feed.url, feed.etag, feed.last_modified, feed.paused)
    if snapshot.paused:
        return PollOutcome(feed_id, "skipped", error="feed is paused")

    result = fetcher.fetch(snapshot.url, etag=snapshot.etag, last_modified=snapshot.last_modified)
    try:
        try:
            return _store_poll(uow, feed_id, result, now, rng)
        except IntegrityError:
            # A concurrent poll of another feed inserted the same story between our read and our write; the retry
            # sees it and counts it as a duplicate.
            return _store_poll(uow, feed_id, result, now, rng)
    except Exception as error:  # noqa: BLE001 - one feed's surprise must not stop the polling round
        logger.exception("storing poll of feed %s failed", feed_id)
        return _record_unexpected_failure(uow, feed_id, f"internal error while storing: {type(error).__name__}", now,
                                          rng)


def _record_unexpected_failure(uow, feed_id: int, reason: str, now: dt.datetime, rng) -> PollOutcome:
    with uow:
        feed = uow.session.get(Feed, feed_id)
        if feed is None:
            return PollOutcome(feed_id, "skipped", error="feed removed while polling")
        _record_failure(feed, reason, now, None, rng)
        outcome = PollOutcome(feed_id, "failed", error=feed.last_error, next_poll_at=feed.next_poll_at)
        uow.commit()
        return outcome


def _store_poll(uow, feed_id: int, result, now: dt.datetime, rng) -> PollOutcome:
    with uow:
        feed = uow.session.get(Feed, feed_id)
        if feed is None:
            return PollOutcome(feed_id, "skipped", error="feed removed while polling")
        if result.error is not None or not (result.ok or result.not_modified):
            reason = result.error or f"HTTP {result.status}"
            _record_failure(feed, reason, now, result.retry_after, rng)
            outcome = PollOutcome(feed_id, "failed", error=feed.last_error, next_poll_at=feed.next_poll_at)
            uow.commit()
            return outcome
        _move_feed(uow.session, feed, result.permanent_redirect_to)
        if result.not_modified:
            _record_success(feed, now, result.retry_after, rng)
            outcome = PollOutcome(feed_id, "not_modified", next_poll_at=feed.next_poll_at)
            uow.commit()
            return outcome
        try:
            parsed, articles = parse_and_normalise(result.content, result.headers, feed, now)
        except FeedRejected as rejected:
            _record_failure(feed, rejected.reason, now, None, rng)
            # Validators of an unusable document must not turn the next poll into a 304 that hides the problem.
            feed.etag = feed.last_modified = None
            outcome = PollOutcome(feed_id, "failed", error=feed.last_error, next_poll_at=feed.next_poll_at)
            uow.commit()
            return outcome
        counts: IngestCounts = store_articles(uow.session, feed, articles, uow.emit, now)
        if not feed.title and parsed.title:
            feed.title = parsed.title[:500]
        if not feed.outlet:
            feed.outlet = (parsed.title or feed.title)[:200]
        if not feed.site_url and parsed.link:
            feed.site_url = parsed.link[:2048]
        feed.etag = (result.etag or None) and result.etag[:1024]
        feed.last_modified = (result.last_modified or None) and result.last_modified[:200]
        feed.articles_seen += counts.new
        _record_success(feed, now, result.retry_after, rng)
        uow.session.flush()
        outcome = PollOutcome(
            feed_id, "ok", next_poll_at=feed.next_poll_at, warnings=parsed.warnings[:5], **counts.as_dict()
        )
        uow.commit()
        return outcome


# -- articles for other services ------------------------------------------------------------------------------------


def list_articles(uow, query: ListArticles | None = None) -> dict:
    """A page of articles in id order: {"items": [...], "next_after": id or None}. Used by reindexing."""
    query = query or ListArticles()
    limit = max(1, min(int(query.limit), MAX_LIST_LIMIT))
    statement = select(Article).order_by(Article.id).limit(limit + 1)
    if query.feed_id is not None:
        statement = statement.where(Article.feed_id == query.feed_id)
    if query.changed_since is not None:
        statement = statement.where(Article.changed_at >= query.changed_since)
    if query.after:
        statement = statement.where(Article.id > query.after)
    with uow:
        rows = uow.session.scalars(statement).all()
        items = [article_view(row, with_html=False) for row in rows[:limit]]
    return {"items": items, "next_after": items[-1]["id"] if len(rows) > limit else None}


def get_article(uow, article_id: str) -> dict:
    with uow:
        article = uow.session.get(Article, article_id)
        if article is None:
            raise NotFound("article", article_id)
        return article_view(article)


def count_articles(uow, feed_id: int | None = None) -> int:
    statement = select(func.count()).select_from(Article)
    if feed_id is not None:
        statement = statement.where(Article.feed_id == feed_id)
    with uow:
        return uow.session.scalar(statement)
