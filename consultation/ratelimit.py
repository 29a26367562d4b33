"""Submission rate limits stored in the database, so every worker process sees the same counts.

A submitter (voter token or IP address) may send one comment per 3 seconds (across all policies) and 30 per hour per
policy. Only a keyed hash of the token or address is stored: a plain hash of an IPv4 address is trivially reversed
by trying all 2^32 of them, a keyed one is not without the service's secret.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math
from collections.abc import Iterable

from sqlalchemy import and_, bindparam, delete, insert, or_, select
from sqlalchemy.orm import Session

from .exceptions import RateLimited
from .model import SubmissionAttempt

MIN_INTERVAL = dt.timedelta(seconds=3)
HOURLY_WINDOW = dt.timedelta(hours=1)
HOURLY_LIMIT = 30

DEFAULT_HASH_SECRET = b"trial-balloon-development-secret"

_attempts = SubmissionAttempt.__table__


def recent_attempts_condition(policy_id):
    """Attempts any limit looks at, given the bind parameters of `recent_attempts_params`: those of the last
    MIN_INTERVAL on any policy and those of the last hour on `policy_id` (a value or a column to join on).

    Every check of every subject is one statement; the limits themselves keep the rows few, so the waits are
    worked out in Python by `waits_from_attempts`.
    """
    return and_(
        _attempts.c.subject_hash.in_(bindparam("subjects", expanding=True)),
        or_(
            _attempts.c.at > bindparam("interval_start", type_=_attempts.c.at.type),
            and_(_attempts.c.policy_id == policy_id, _attempts.c.at > bindparam("hour_start", type_=_attempts.c.at.type)),
        ),
    )


def recent_attempts_params(subjects: list[str], now: dt.datetime) -> dict:
    return {"subjects": subjects, "interval_start": now - MIN_INTERVAL, "hour_start": now - HOURLY_WINDOW}


# Built once: a statement object memoises its cache key, so each call skips building and keying it again.
_RECENT_ATTEMPTS = select(_attempts.c.subject_hash, _attempts.c.policy_id, _attempts.c.at).where(
    recent_attempts_condition(bindparam("policy_id"))
)
# Append-only rows: a Core insert skips the ORM's identity bookkeeping and fetching back ids nobody reads.
_RECORD_ATTEMPT = insert(_attempts)


def subject_hash(kind: str, value: str, secret: bytes = DEFAULT_HASH_SECRET) -> str:
    """A stable, keyed, non-reversible identifier for a token or IP; `kind` keeps the two name spaces apart."""
    return hmac.new(secret, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def submitter_hashes(voter_token: str | None, client_ip: str | None, secret: bytes = DEFAULT_HASH_SECRET) -> list[str]:
    hashes = []
    if voter_token:
        hashes.append(subject_hash("token", voter_token, secret))
    if client_ip:
        hashes.append(subject_hash("ip", client_ip.strip().lower(), secret))
    return hashes


def _seconds_until(moment: dt.datetime, now: dt.datetime) -> int:
    return max(1, math.ceil((moment - now).total_seconds()))


def waits_from_attempts(
    attempts: Iterable[tuple[str, int, dt.datetime]], subjects: Iterable[str], policy_id: int, now: dt.datetime
) -> dict[str, int]:
    """Seconds until each subject may submit to `policy_id` again, from its (subject, policy_id, at) attempts as
    selected by `recent_attempts_condition`; subjects that may submit now are left out."""
    interval_start, hour_start = now - MIN_INTERVAL, now - HOURLY_WINDOW
    last: dict[str, dt.datetime] = {}
    hourly: dict[str, list[dt.datetime]] = {}
    for subject, attempt_policy, at in attempts:
        if at > interval_start and (subject not in last or at > last[subject]):
            last[subject] = at
        if attempt_policy == policy_id and at > hour_start:
            hourly.setdefault(subject, []).append(at)
    waits = {}
    for subject in dict.fromkeys(subjects):
        subject_waits = []
        if subject in last:
            subject_waits.append(_seconds_until(last[subject] + MIN_INTERVAL, now))
        times = hourly.get(subject, ())
        if len(times) >= HOURLY_LIMIT:
            # The submission that must leave the hour window before another fits is the HOURLY_LIMIT-th newest.
            blocking = sorted(times, reverse=True)[HOURLY_LIMIT - 1]
            subject_waits.append(_seconds_until(blocking + HOURLY_WINDOW, now))
        if subject_waits:
            waits[subject] = max(subject_waits)
    return waits


def retry_waits(session: Session, subjects: Iterable[str], policy_id: int, now: dt.datetime) -> dict[str, int]:
    """Seconds until each subject may submit to `policy_id` again; subjects that may submit now are left out."""
    subjects = list(dict.fromkeys(subjects))
    if not subjects:
        return {}
    params = {**recent_attempts_params(subjects, now), "policy_id": policy_id}
    return waits_from_attempts(session.connection().execute(_RECENT_ATTEMPTS, params), subjects, policy_id, now)


def retry_after(session: Session, subject: str, policy_id: int, now: dt.datetime) -> int | None:
    """Seconds until `subject` may submit to `policy_id` again, or None when it may submit now."""
    return retry_waits(session, [subject], policy_id, now).get(subject)


def check_and_record(session: Session, subjects: Iterable[str], policy_id: int, now: dt.datetime) -> None:
    """Raise RateLimited if any subject is over a limit; otherwise record this submission for each of them."""
    subjects = list(dict.fromkeys(subjects))
    waits = retry_waits(session, subjects, policy_id, now)
    if waits:
        raise RateLimited(max(waits.values()))
    record(session, subjects, policy_id, now)


def attempt_rows(subjects: Iterable[str], policy_id: int, now: dt.datetime) -> list[dict]:
    """The rows that count a submission against each subject (for a caller that writes them with other rows)."""
    return [{"subject_hash": subject, "policy_id": policy_id, "at": now} for subject in dict.fromkeys(subjects)]


def record(session: Session, subjects: Iterable[str], policy_id: int, now: dt.datetime) -> None:
    """Count a submission against each subject (after its limits were checked with the same `now`)."""
    rows = attempt_rows(subjects, policy_id, now)
    if rows:
        session.connection().execute(_RECORD_ATTEMPT, rows)


def prune(session: Session, now: dt.datetime) -> int:
    """Delete attempts older than any limit looks back; the service may call this from its timer."""
    result = session.execute(delete(SubmissionAttempt).where(SubmissionAttempt.at <= now - HOURLY_WINDOW))
    return result.rowcount or 0
