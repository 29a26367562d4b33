import random
from datetime import UTC, datetime, timedelta

import pytest

from newsfeed.schedule import (
    MAX_BACKOFF_S,
    MAX_RETRY_AFTER_S,
    MIN_RETRY_S,
    FeedHealth,
    feed_phase,
    next_poll_at,
    poll_delay,
)

NOW = datetime(2026, 11, 26, 8, 0, 0, tzinfo=UTC)
HALF_HOUR = 1800.0


class FixedDraw:
    """Stands in for ``random``: ``uniform(a, b)`` returns the point ``fraction`` of the way from a to b."""

    def __init__(self, fraction: float):
        self.fraction = fraction

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self.fraction


NO_JITTER = FixedDraw(0.5)
LOWEST = FixedDraw(0.0)
HIGHEST = FixedDraw(1.0)


def delay_for(feed_key="https://example.org/feed.xml", failures=0, retry_after=None, rng=NO_JITTER, now=NOW,
              interval_s=HALF_HOUR) -> float:
    return (next_poll_at(now, interval_s, feed_key, failures, retry_after, rng) - now).total_seconds()


# -- normal polling ----------------------------------------------------------------------------------------------------


def test_feeds_are_spread_across_the_interval_rather_than_polled_together():
    next_polls = [next_poll_at(NOW, HALF_HOUR, f"https://site{i}.example/feed", 0, None, NO_JITTER) for i in range(200)]

    distinct_seconds = {moment.replace(microsecond=0) for moment in next_polls}
    span = (max(next_polls) - min(next_polls)).total_seconds()
    assert len(distinct_seconds) > 190
    assert span > 0.9 * HALF_HOUR


def test_the_same_feed_gets_the_same_slot_in_every_process():
    key = "https://news.example.cn/rss"

    assert feed_phase(key) == feed_phase(key)
    assert 0 <= feed_phase(key) < 1
    assert feed_phase(key) != feed_phase(key + "?page=2")
    assert next_poll_at(NOW, HALF_HOUR, key, 0, None, NO_JITTER) == next_poll_at(NOW, HALF_HOUR, key, 0, None, NO_JITTER)


def test_a_feed_polled_on_its_slot_is_polled_again_one_interval_later():
    key = "https://news.example.cn/rss"
    slot = next_poll_at(NOW, HALF_HOUR, key, 0, None, NO_JITTER)

    following = next_poll_at(slot, HALF_HOUR, key, 0, None, NO_JITTER)

    assert following - slot == timedelta(seconds=HALF_HOUR)


def test_a_late_poll_keeps_the_feed_on_its_slot_and_never_polls_again_within_half_an_interval():
    key = "https://news.example.cn/rss"
    slot = next_poll_at(NOW, HALF_HOUR, key, 0, None, NO_JITTER)

    for late_by in (1, 300, 899, 901, 1500, 1799):
        ran_at = slot + timedelta(seconds=late_by)
        following = next_poll_at(ran_at, HALF_HOUR, key, 0, None, NO_JITTER)
        assert following - ran_at >= timedelta(seconds=HALF_HOUR / 2)
        # Still on the feed's own grid: a whole number of intervals after the original slot.
        assert ((following - slot).total_seconds() / HALF_HOUR) % 1 == pytest.approx(0, abs=1e-6)


@pytest.mark.parametrize("rng", [LOWEST, HIGHEST])
def test_normal_jitter_is_small(rng):
    plain = delay_for(rng=NO_JITTER)

    assert abs(delay_for(rng=rng) - plain) == pytest.approx(60.0)
    assert abs(delay_for(rng=rng, interval_s=600) - delay_for(interval_s=600)) == pytest.approx(30.0)


def test_normal_delay_with_real_randomness_stays_between_half_and_one_and_a_half_intervals():
    rng = random.Random(20261126)
    for i in range(500):
        delay = delay_for(feed_key=f"feed-{i}", rng=rng)
        assert HALF_HOUR / 2 - 60 <= delay <= 1.5 * HALF_HOUR + 60


def test_epoch_seconds_work_as_well_as_datetimes():
    key = "https://news.example.cn/rss"

    as_float = next_poll_at(NOW.timestamp(), HALF_HOUR, key, 0, None, NO_JITTER)

    assert isinstance(as_float, float)
    assert as_float == pytest.approx(next_poll_at(NOW, HALF_HOUR, key, 0, None, NO_JITTER).timestamp())


# -- failures ----------------------------------------------------------------------------------------------------------


def test_backoff_ceiling_doubles_with_each_failure_up_to_six_hours():
    ceilings = [delay_for(failures=n, rng=HIGHEST) for n in range(1, 10)]

    assert ceilings[:4] == [HALF_HOUR, 2 * HALF_HOUR, 4 * HALF_HOUR, 8 * HALF_HOUR]
    assert ceilings[4:] == [MAX_BACKOFF_S] * 5
    assert MAX_BACKOFF_S == 6 * 3600


def test_backoff_uses_full_jitter_down_to_a_one_minute_floor():
    assert delay_for(failures=5, rng=LOWEST) == MIN_RETRY_S == 60
    assert delay_for(failures=5, rng=FixedDraw(0.25)) == pytest.approx(60 + (MAX_BACKOFF_S - 60) * 0.25)


def test_failing_feeds_retry_at_scattered_times():
    rng = random.Random(7)
    delays = [delay_for(feed_key="same-host-feed", failures=3, rng=rng) for _ in range(50)]

    assert len({round(delay) for delay in delays}) > 45
    assert all(MIN_RETRY_S <= delay <= 4 * HALF_HOUR for delay in delays)


def test_a_huge_failure_count_stays_capped():
    assert delay_for(failures=10_000, rng=HIGHEST) == MAX_BACKOFF_S


def test_a_short_interval_lowers_the_retry_floor():
    assert delay_for(failures=1, rng=LOWEST, interval_s=20) == 20


# -- Retry-After -------------------------------------------------------------------------------------------------------


def test_retry_after_is_a_lower_bound_on_the_wait():
    assert delay_for(failures=1, rng=LOWEST, retry_after=3 * 3600) == 3 * 3600
    assert delay_for(retry_after=3 * 3600) == 3 * 3600


def test_retry_after_shorter_than_the_backoff_does_not_shorten_it():
    assert delay_for(failures=6, rng=HIGHEST, retry_after=120) == MAX_BACKOFF_S


def test_retry_after_is_capped_at_a_day():
    assert delay_for(failures=1, rng=LOWEST, retry_after=30 * 24 * 3600) == MAX_RETRY_AFTER_S == 24 * 3600


@pytest.mark.parametrize("retry_after", [0.0, -10.0, float("nan"), None])
def test_meaningless_retry_after_is_ignored(retry_after):
    assert delay_for(failures=2, rng=LOWEST, retry_after=retry_after) == MIN_RETRY_S


# -- bad input ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("interval_s", [0, -60, float("nan"), float("inf")])
def test_interval_must_be_positive(interval_s):
    with pytest.raises(ValueError, match="interval_s"):
        poll_delay(NOW.timestamp(), interval_s, "feed", 0, None)


def test_failure_count_cannot_be_negative():
    with pytest.raises(ValueError, match="consecutive_failures"):
        poll_delay(NOW.timestamp(), HALF_HOUR, "feed", -1, None)


# -- FeedHealth --------------------------------------------------------------------------------------------------------


def test_failures_are_counted_and_the_reason_kept():
    health = FeedHealth()

    health = health.record_failure(NOW, "HTTP 500", HALF_HOUR, "feed", rng=HIGHEST)
    later = NOW + timedelta(hours=1)
    health = health.record_failure(later, "timeout (reading)", HALF_HOUR, "feed", rng=HIGHEST)

    assert health.consecutive_failures == 2
    assert health.last_error == "timeout (reading)"
    assert health.last_error_at == later
    assert health.last_success_at is None
    assert health.next_poll_at == later + timedelta(seconds=2 * HALF_HOUR)


def test_success_resets_the_failure_count_and_keeps_the_last_error_visible():
    failing = FeedHealth(consecutive_failures=4, last_error="HTTP 503", last_error_at=NOW - timedelta(hours=2))

    health = failing.record_success(NOW, HALF_HOUR, "feed", rng=NO_JITTER)

    assert health.consecutive_failures == 0
    assert health.last_success_at == NOW
    assert health.last_error == "HTTP 503"
    assert health.next_poll_at == next_poll_at(NOW, HALF_HOUR, "feed", 0, None, NO_JITTER)


def test_retry_after_on_failure_reaches_the_next_poll_time():
    health = FeedHealth().record_failure(NOW, "HTTP 429", HALF_HOUR, "feed", retry_after=7200, rng=LOWEST)

    assert health.next_poll_at == NOW + timedelta(seconds=7200)


def test_overlong_error_text_is_truncated():
    health = FeedHealth().record_failure(NOW, "x" * 5000, HALF_HOUR, "feed", rng=LOWEST)

    assert len(health.last_error) == 500


def test_a_new_feed_is_due_and_a_scheduled_one_only_when_its_time_comes():
    scheduled = FeedHealth(next_poll_at=NOW + timedelta(minutes=5))

    assert FeedHealth().is_due(NOW)
    assert not scheduled.is_due(NOW)
    assert scheduled.is_due(NOW + timedelta(minutes=5))
