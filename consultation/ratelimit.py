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

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from .exceptions import RateLimited
from .model import SubmissionAttempt

MIN_INTERVAL = dt.timedelta(seconds=3)
HOURLY_WINDOW = dt.timedelta(hours=1)
HOURLY_LIMIT = 30

DEFAULT_HASH_SECRET = b"trial-balloon-development-secret"


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


def retry_after(session: Session, subject: str, policy_id: int, now: dt.datetime) -> int | None:
    """Seconds until `subject` may submit to `policy_id` again, or None when it may submit now."""
    last = session.scalar(
        select(func.max(SubmissionAttempt.at)).where(
            SubmissionAttempt.subject_hash == subject, SubmissionAttempt.at > now - MIN_INTERVAL
        )
    )
    waits = []
    if last is not None:
        waits.append(_seconds_until(last + MIN_INTERVAL, now))
    recent = (
        select(SubmissionAttempt.at)
        .where(
            SubmissionAttempt.subject_hash == subject,
            SubmissionAttempt.policy_id == policy_id,
            SubmissionAttempt.at > now - HOURLY_WINDOW,
        )
        .order_by(SubmissionAttempt.at.desc())
    )
    # The submission that must leave the hour window before another fits is the HOURLY_LIMIT-th newest.
    blocking = session.scalar(recent.offset(HOURLY_LIMIT - 1).limit(1))
    if blocking is not None:
        waits.append(_seconds_until(blocking + HOURLY_WINDOW, now))
    return max(waits) if waits else None


def check_and_record(session: Session, subjects: Iterable[str], policy_id: int, now: dt.datetime) -> None:
    """Raise RateLimited if any subject is over a limit; otherwise record this submission for each of them."""
    subjects = list(dict.fromkeys(subjects))
    waits = [w for s in subjects if (w := retry_after(session, s, policy_id, now)) is not None]
    if waits:
        raise RateLimited(max(waits))
    for subject in subjects:
        session.add(SubmissionAttempt(subject_hash=subject, policy_id=policy_id, at=now))


def prune(session: Session, now: dt.datetime) -> int:
    """Delete attempts older than any limit looks back; the service may call this from its timer."""
    result = session.execute(delete(SubmissionAttempt).where(SubmissionAttempt.at <= now - HOURLY_WINDOW))
    return result.rowcount or 0
