"""When to poll each feed next: spread out, backing off on failure, honouring Retry-After.

Pure functions: time comes in as ``now`` and randomness as ``rng``, so the policy is tested without clocks or luck.
``now`` may be a timezone-aware ``datetime`` (as stored) or seconds since the epoch; the answer has the same type.

Normal polling puts each feed on its own fixed phase within the interval, derived from a stable hash of its key, so a
thousand feeds with a 30-minute interval are spread over those 30 minutes instead of all firing at the same second
after a restart, and each feed keeps its slot from one poll to the next. A little jitter on top avoids lock-step with
other pollers that use the same scheme.

After failures the wait grows exponentially with "full jitter" (a uniform draw between a floor and the current
ceiling), capped at ``MAX_BACKOFF_S``, so that many feeds failing together (a host down) do not retry together.
A server's Retry-After is a lower bound on the wait, capped at ``MAX_RETRY_AFTER_S`` so a hostile or broken value
cannot park a feed forever.
"""
from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TypeVar

MAX_BACKOFF_S = 6 * 3600.0
MAX_RETRY_AFTER_S = 24 * 3600.0
MIN_RETRY_S = 60.0  # a failing feed is never retried sooner than this (or its interval, if shorter)
MAX_JITTER_S = 60.0  # normal-case jitter is at most this, or 5 % of the interval if smaller
JITTER_FRACTION = 0.05
MAX_ERROR_LENGTH = 500

When = TypeVar("When", datetime, float)


def feed_phase(feed_key: str) -> float:
    """A stable fraction in [0, 1) for a feed, the same in every process (unlike ``hash``)."""
    digest = hashlib.blake2b(feed_key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def poll_delay(
    now_epoch_s: float,
    interval_s: float,
    feed_key: str,
    consecutive_failures: int,
    retry_after: float | None,
    rng=random,
) -> float:
    """Seconds from ``now_epoch_s`` until the next poll. See the module docstring for the policy."""
    if not (isinstance(interval_s, int | float) and math.isfinite(interval_s) and interval_s > 0):
        raise ValueError(f"interval_s must be a positive number of seconds, got {interval_s!r}")
    if consecutive_failures < 0:
        raise ValueError(f"consecutive_failures cannot be negative, got {consecutive_failures!r}")

    if consecutive_failures == 0:
        delay = _delay_to_next_slot(now_epoch_s, interval_s, feed_key)
        jitter = min(MAX_JITTER_S, JITTER_FRACTION * interval_s)
        delay = max(0.0, delay + rng.uniform(-jitter, jitter))
    else:
        floor = min(MIN_RETRY_S, interval_s)
        # Exponent capped so that 2**n stays a float; the ceiling has long reached MAX_BACKOFF_S by then.
        ceiling = min(MAX_BACKOFF_S, interval_s * 2.0 ** min(consecutive_failures - 1, 64))
        delay = rng.uniform(floor, max(floor, ceiling))

    if retry_after is not None and math.isfinite(retry_after) and retry_after > 0:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER_S))
    return delay


def next_poll_at(
    now: When,
    interval_s: float,
    feed_key: str,
    consecutive_failures: int,
    retry_after: float | None,
    rng=random,
) -> When:
    """When to poll the feed ``feed_key`` next.

    ``consecutive_failures`` counts failed polls since the last success (0 after a success or a 304); ``retry_after``
    is the server's Retry-After in seconds, if any. Raises ValueError for a non-positive interval or negative count.
    """
    if isinstance(now, datetime):
        delay = poll_delay(now.timestamp(), interval_s, feed_key, consecutive_failures, retry_after, rng)
        return now + timedelta(seconds=delay)
    return now + poll_delay(float(now), interval_s, feed_key, consecutive_failures, retry_after, rng)


def _delay_to_next_slot(now_epoch_s: float, interval_s: float, feed_key: str) -> float:
    phase_s = feed_phase(feed_key) * interval_s
    delay = (phase_s - now_epoch_s) % interval_s
    # A poll that ran late (or a newly added feed) may sit just before its next slot; waiting at least half an
    # interval keeps two polls from landing seconds apart. On time, the next slot is exactly one interval away.
    if delay < interval_s / 2:
        delay += interval_s
    return delay


@dataclass(frozen=True)
class FeedHealth:
    """Fetch health of one feed, kept beside it in storage and shown to operators."""

    last_success_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    consecutive_failures: int = 0
    next_poll_at: datetime | None = None

    def is_due(self, now: datetime) -> bool:
        return self.next_poll_at is None or self.next_poll_at <= now

    def record_success(
        self, now: datetime, interval_s: float, feed_key: str, retry_after: float | None = None, rng=random
    ) -> FeedHealth:
        """After a fetch that worked (new content or 304). The last error stays visible for operators."""
        return replace(
            self,
            last_success_at=now,
            consecutive_failures=0,
            next_poll_at=next_poll_at(now, interval_s, feed_key, 0, retry_after, rng),
        )

    def record_failure(
        self,
        now: datetime,
        error: str,
        interval_s: float,
        feed_key: str,
        retry_after: float | None = None,
        rng=random,
    ) -> FeedHealth:
        """After a failed fetch or an unparseable feed; ``error`` is the reason shown to operators."""
        failures = self.consecutive_failures + 1
        return replace(
            self,
            last_error=(error or "unknown error")[:MAX_ERROR_LENGTH],
            last_error_at=now,
            consecutive_failures=failures,
            next_poll_at=next_poll_at(now, interval_s, feed_key, failures, retry_after, rng),
        )
