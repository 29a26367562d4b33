"""Domain handlers of the consultation service.

Each handler takes a unit of work (services.kernel.outbox.SqlUnitOfWork over this package's model and
consultation.events.EVENT_SCHEMAS), a command from consultation.commands and keyword ports: `clock` (returns aware
UTC now), `actor` for staff actions, `hash_secret` where voter tokens or IPs are hashed. A handler opens and commits its
own transaction, so the state change and the events it announces are stored together. Results are plain dicts ready
for the output schemas in consultation.schemas. Errors are the domain exceptions of consultation.exceptions.

Accounts and site keys live in consultation.accounts, the feedback report in consultation.report.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
import secrets
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import and_, bindparam, func, insert, literal_column, null, or_, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.kernel.db import utcnow

from . import commands as c
from . import events as ev
from . import window
from .accounts import EDITOR, MODERATOR, POLICY_OFFICER, Actor, record_audit, require_role
from .diff import diff_clauses
from .exceptions import (
    Conflict,
    InvalidTransition,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ValidationFailed,
    WindowClosed,
)
from .model import (
    WHOLE_POLICY,
    Clause,
    Comment,
    CommentContact,
    CommentEndorsement,
    CommentTransition,
    CoverageLink,
    Explanation,
    Policy,
    PolicyTopic,
    PolicyVersion,
    Reply,
    SubmissionAttempt,
    Vote,
)
from .parsing import detect_language, int_to_chinese_numeral, parse_draft
from .ratelimit import (
    DEFAULT_HASH_SECRET,
    attempt_rows,
    prune,
    recent_attempts_condition,
    recent_attempts_params,
    subject_hash,
    submitter_hashes,
    waits_from_attempts,
)
from .redaction import contains_personal_data, redact_personal_data
from .sanitize import html_to_text, sanitize_rich_text

Clock = Callable[[], dt.datetime]

LANGUAGES = ("zh", "en")
STANCES = ("support", "oppose", "neutral", "suggestion")
VOTE_STANCES = ("support", "oppose", "neutral")
CHANNELS = ("widget", "api", "console_import")
COMMENT_STATES = ("pending", "approved", "rejected", "hidden")
REJECT_REASONS = ("spam", "abuse", "off_topic", "personal_data", "duplicate", "other")
MODERATION_ACTIONS = {"approve": "approved", "reject": "rejected", "hide": "hidden"}
# Moderation may be revisited (an approved comment can later be hidden), but never returns to pending.
COMMENT_TRANSITIONS = {
    "pending": {"approved", "rejected", "hidden"},
    "approved": {"rejected", "hidden"},
    "hidden": {"approved", "rejected"},
    "rejected": {"approved", "hidden"},
}
FLAGS = ("personal_data", "spam", "duplicate")
EXPLANATION_KINDS = ("article", "link")
LINK_STATES = ("suggested", "confirmed", "rejected")

MAX_COMMENT_LENGTH = 5000
# Beyond this a submission is not a long comment but an abuse of the endpoint: 413 rather than a field error.
MAX_ACCEPTED_PAYLOAD = 50_000
MAX_DRAFT_LENGTH = 1_000_000
MAX_CLAUSES = 2000
MAX_BULK = 500
MAX_PAGE_SIZE = 100

_EMAIL = re.compile(r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)+$")
_PHONE = re.compile(r"^\+?[0-9][0-9\- ]{5,22}[0-9]$")
_URL_IN_TEXT = re.compile(r"https?://|www\.", re.IGNORECASE)
_REPEATED_CHAR = re.compile(r"(.)\1{19,}", re.DOTALL)
_WHITESPACE = re.compile(r"\s+")


# --- small helpers -------------------------------------------------------------------------------------------------


def _check_length(errors: dict, name: str, value: str | None, low: int, high: int, *, required: bool = True) -> None:
    if value is None or (not value.strip() and not required):
        if required:
            errors[name] = "field.required"
        return
    if not (low <= len(value.strip()) <= high):
        errors[name] = f"{name}.length" if name in ("text", "title") else "field.length"


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and len(value) <= 2000


def _page(page: int, page_size: int) -> tuple[int, int]:
    page = max(1, int(page or 1))
    page_size = max(1, min(int(page_size or 20), MAX_PAGE_SIZE))
    return page, page_size


MAX_ID = 2_147_483_647


def _get_policy(session: Session, policy_id: int, *, public: bool = False, for_update: bool = False) -> Policy:
    if not isinstance(policy_id, int) or not (0 < policy_id <= MAX_ID):
        raise NotFound(f"policy {policy_id} not found")
    query = select(Policy).where(Policy.id == policy_id)
    if for_update:
        query = query.with_for_update()
    policy = session.scalar(query)
    if policy is None or (public and policy.published_at is None):
        raise NotFound(f"policy {policy_id} not found")
    return policy


def _get_row(session: Session, model: type, row_id: Any, label: str, *, for_update: bool = False):
    """The row with this id, or NotFound; ids outside the integer column's range are simply not found."""
    if not isinstance(row_id, int) or not (0 < row_id <= MAX_ID):
        raise NotFound(f"{label} {row_id} not found")
    query = select(model).where(model.id == row_id)
    if for_update:
        query = query.with_for_update()
    row = session.scalar(query)
    if row is None:
        raise NotFound(f"{label} {row_id} not found")
    return row


def _is_staff(actor: Actor | None) -> bool:
    return actor is not None and actor.has_role(POLICY_OFFICER, EDITOR, MODERATOR)


def _get_version(session: Session, policy_id: int, number: int) -> PolicyVersion:
    version = session.scalar(
        select(PolicyVersion).where(PolicyVersion.policy_id == policy_id, PolicyVersion.number == number)
    )
    if version is None:
        raise NotFound(f"version {number} of policy {policy_id} not found")
    return version


def _clauses_of(session: Session, policy_id: int, version_number: int) -> list[Clause]:
    return list(
        session.scalars(
            select(Clause)
            .where(Clause.policy_id == policy_id, Clause.version_number == version_number)
            .order_by(Clause.position)
        )
    )


def _clause_label(number: int, language: str) -> str:
    return f"第{int_to_chinese_numeral(number)}条" if language == "zh" else f"Article {number}"


def _body_from_command(
    text: str | None, clauses: Sequence[c.ClauseInput] | None, preamble: str | None, language: str | None
) -> dict[str, Any]:
    """Preamble, chapters, clauses and language of a new version, from pasted text or an explicit clause list."""
    if (text is None) == (clauses is None):
        raise ValidationFailed({"text": "draft.text_or_clauses"})
    if text is not None:
        if len(text) > MAX_DRAFT_LENGTH:
            raise PayloadTooLarge("draft text too long", MAX_DRAFT_LENGTH)
        if not text.strip():
            raise ValidationFailed({"text": "draft.no_clauses"})
        parsed = parse_draft(text, language)
        if not parsed.clauses:
            raise ValidationFailed({"text": "draft.no_clauses"})
        numbers = [clause.number for clause in parsed.clauses]
        if len(set(numbers)) != len(numbers):
            raise ValidationFailed({"text": "draft.duplicate_clause_number"})
        return {
            "preamble": parsed.preamble.strip() if preamble is None else preamble,
            "chapters": [{"number": ch.number, "label": ch.label, "title": ch.title} for ch in parsed.chapters],
            "clauses": [
                {"number": cl.number, "label": cl.label, "chapter": cl.chapter, "text": cl.text}
                for cl in parsed.clauses
            ],
            "language": parsed.language,
            "warnings": [{"code": w.code, "message": w.message} for w in parsed.warnings],
        }
    language = language or "zh"
    if not clauses:
        raise ValidationFailed({"clauses": "draft.no_clauses"})
    if len(clauses) > MAX_CLAUSES:
        raise PayloadTooLarge("too many clauses", MAX_CLAUSES)
    errors: dict[str, Any] = {}
    seen: set[int] = set()
    for index, clause in enumerate(clauses):
        if not isinstance(clause.number, int) or clause.number < 1:
            errors[str(index)] = {"number": "clause.number_invalid"}
        elif clause.number in seen:
            errors[str(index)] = {"number": "draft.duplicate_clause_number"}
        elif not (clause.text or "").strip():
            errors[str(index)] = {"text": "field.required"}
        seen.add(clause.number)
    if errors:
        raise ValidationFailed({"clauses": errors})
    return {
        "preamble": preamble or "",
        "chapters": [],
        "clauses": [
            {
                "number": clause.number,
                "label": (clause.label or "").strip() or _clause_label(clause.number, language),
                "chapter": clause.chapter,
                "text": clause.text.strip(),
            }
            for clause in clauses
        ],
        "language": language,
        "warnings": [],
    }


def _add_version(
    session: Session, policy: Policy, number: int, body: dict[str, Any], actor: Actor, now: dt.datetime, note: str
) -> PolicyVersion:
    version = PolicyVersion(
        policy_id=policy.id,
        number=number,
        preamble=body["preamble"],
        chapters=body["chapters"],
        parse_warnings=body["warnings"],
        change_note=note,
        created_at=now,
        created_by=actor.user_id,
    )
    session.add(version)
    session.flush()
    for position, clause in enumerate(body["clauses"]):
        session.add(
            Clause(
                version_id=version.id,
                policy_id=policy.id,
                version_number=number,
                position=position,
                number=clause["number"],
                label=clause["label"][:100],
                chapter=(clause["chapter"] or None) and clause["chapter"][:300],
                text=clause["text"],
            )
        )
    session.flush()
    return version


def _clause_dict(clause: Clause) -> dict[str, Any]:
    return {"number": clause.number, "label": clause.label, "chapter": clause.chapter, "text": clause.text}


def _tally(rows: Iterable[tuple[int, str, int]]) -> dict[int, dict[str, int]]:
    """{clause_number: {support, oppose, neutral, total}} from (clause_number, stance, count) rows."""
    tallies: dict[int, dict[str, int]] = defaultdict(lambda: {"support": 0, "oppose": 0, "neutral": 0, "total": 0})
    for clause_number, stance, count in rows:
        tally = tallies[clause_number]
        if stance in tally:
            tally[stance] += count
        tally["total"] += count
    return tallies


def _empty_tally() -> dict[str, int]:
    return {"support": 0, "oppose": 0, "neutral": 0, "total": 0}


def _vote_tallies(session: Session, policy_id: int) -> dict[int, dict[str, int]]:
    rows = session.execute(
        select(Vote.clause_number, Vote.stance, func.count())
        .where(Vote.policy_id == policy_id)
        .group_by(Vote.clause_number, Vote.stance)
    )
    return _tally(rows)


def _approved_comment_counts(session: Session, policy_id: int, version_number: int | None = None) -> dict[int, int]:
    """Approved comments per clause number (WHOLE_POLICY for comments on the whole draft), in one query."""
    # A literal, not a bound parameter: PostgreSQL only sees GROUP BY and SELECT as the same expression then.
    clause_key = func.coalesce(Comment.clause_number, literal_column(str(WHOLE_POLICY)))
    query = select(clause_key, func.count()).where(Comment.policy_id == policy_id, Comment.state == "approved")
    if version_number is not None:
        query = query.where(or_(Comment.version_number == version_number, Comment.clause_number.is_(None)))
    query = query.group_by(clause_key)
    return {number: count for number, count in session.execute(query)}


def _policy_summary(policy: Policy) -> dict[str, Any]:
    return {
        "policy_id": policy.id,
        "title": policy.title,
        "summary": policy.summary,
        "department": policy.department,
        "topics": list(policy.topics or []),
        "document_number": policy.document_number,
        "language": policy.language,
        "time_zone": policy.time_zone,
        "state": policy.state,
        "version": policy.current_version,
        "open_at": policy.open_at,
        "close_at": policy.close_at,
        "open_at_local": window.local_iso(policy.open_at, policy.time_zone),
        "close_at_local": window.local_iso(policy.close_at, policy.time_zone),
        "published_at": policy.published_at,
        "updated_at": policy.updated_at,
        "url_path": ev.policy_url_path(policy.id),
    }


def _accepting(policy: Policy, now: dt.datetime) -> bool:
    try:
        window.ensure_accepting(policy.state, policy.open_at, policy.close_at, now, policy.time_zone)
    except WindowClosed:
        return False
    return True


def _policy_event_payload(session: Session, policy: Policy) -> dict[str, Any]:
    version = _get_version(session, policy.id, policy.current_version)
    return {
        **_policy_summary(policy),
        "published_at": policy.published_at,
        "preamble": version.preamble or "",
        "clauses": [_clause_dict(clause) for clause in _clauses_of(session, policy.id, policy.current_version)],
    }


def _window_event_payload(policy: Policy) -> dict[str, Any]:
    return {
        "policy_id": policy.id,
        "version": policy.current_version,
        "title": policy.title,
        "state": policy.state,
        "time_zone": policy.time_zone,
        "open_at": policy.open_at,
        "close_at": policy.close_at,
        "url_path": ev.policy_url_path(policy.id),
    }


def _announce_policy(uow, policy: Policy, now: dt.datetime) -> None:
    """policy_published the first time a policy becomes public, policy_updated afterwards."""
    if policy.published_at is None:
        policy.published_at = now
        uow.session.flush()
        uow.emit(ev.POLICY_PUBLISHED, _policy_event_payload(uow.session, policy))
    else:
        uow.session.flush()
        uow.emit(ev.POLICY_UPDATED, _policy_event_payload(uow.session, policy))


def _commit_staff_change(uow, policy: Policy, actor: Actor, action: str, now: dt.datetime, *,
                         detail: dict[str, Any] | None = None, version: int | None = None) -> dict:
    """Audit a staff change to a policy, commit it with its events, and answer with the staff view of the policy."""
    record_audit(uow.session, actor, action, "policy", policy.id, now, detail)
    result = _policy_detail(uow.session, policy, version or policy.current_version, now, staff=True)
    uow.commit()
    return result


def _set_topics(session: Session, policy: Policy, topics: Sequence[str]) -> None:
    cleaned = list(dict.fromkeys(t.strip() for t in topics if t and t.strip()))
    policy.topics = cleaned
    session.flush()
    existing = set(session.scalars(select(PolicyTopic.topic).where(PolicyTopic.policy_id == policy.id)))
    for topic in existing - set(cleaned):
        session.delete(session.get(PolicyTopic, (policy.id, topic)))
    for topic in set(cleaned) - existing:
        session.add(PolicyTopic(policy_id=policy.id, topic=topic))


def _policy_field_errors(
    title: str | None, department: str | None, summary: str | None, topics: Sequence[str] | None,
    time_zone: str | None, language: str | None, *, creating: bool,
) -> dict[str, Any]:
    errors: dict[str, Any] = {}
    if creating or title is not None:
        _check_length(errors, "title", title, 1, 300)
    if creating or department is not None:
        _check_length(errors, "department", department, 1, 200)
    if summary is not None and len(summary) > 5000:
        errors["summary"] = "field.length"
    if topics is not None and (len(topics) > 20 or any(len(t or "") > 100 for t in topics)):
        errors["topics"] = "policy.topics_invalid"
    if time_zone is not None and not window.is_valid_time_zone(time_zone):
        errors["time_zone"] = "policy.time_zone_invalid"
    if language is not None and language not in LANGUAGES:
        errors["language"] = "field.language"
    return errors


# --- policies, versions and the consultation window ------------------------------------------------------------------


def create_policy(uow, command: c.CreatePolicy, *, actor: Actor, clock: Clock = utcnow) -> dict:
    """A new draft policy (state draft, version 1) from pasted text or an explicit clause list."""
    require_role(actor, POLICY_OFFICER)
    errors = _policy_field_errors(
        command.title, command.department, command.summary, command.topics, command.time_zone, command.language,
        creating=True,
    )
    if errors:
        raise ValidationFailed(errors)
    body = _body_from_command(command.text, command.clauses, command.preamble or None, command.language)
    now = clock()
    with uow:
        policy = Policy(
            title=command.title.strip(),
            summary=(command.summary or "").strip(),
            department=command.department.strip(),
            document_number=command.document_number,
            time_zone=command.time_zone or window.DEFAULT_TIME_ZONE,
            language=command.language or body["language"],
            state=window.DRAFT,
            current_version=1,
            created_at=now,
            updated_at=now,
            created_by=actor.user_id,
            topics=[],
        )
        uow.session.add(policy)
        uow.session.flush()
        _set_topics(uow.session, policy, command.topics)
        _add_version(uow.session, policy, 1, body, actor, now, "")
        return _commit_staff_change(uow, policy, actor, "policy.create", now)


def update_policy_details(uow, command: c.UpdatePolicyDetails, *, actor: Actor, clock: Clock = utcnow) -> dict:
    """Edit title, summary, department, topics, time zone or document number (not the clauses: see revise_draft)."""
    require_role(actor, POLICY_OFFICER)
    errors = _policy_field_errors(
        command.title, command.department, command.summary, command.topics, command.time_zone, None, creating=False
    )
    if errors:
        raise ValidationFailed(errors)
    now = clock()
    with uow:
        policy = _get_policy(uow.session, command.policy_id, for_update=True)
        if policy.state == window.WITHDRAWN:
            raise InvalidTransition("a withdrawn policy cannot be edited", policy.state, "update")
        changed = []
        for name in ("title", "summary", "department", "time_zone", "document_number"):
            value = getattr(command, name)
            if value is not None:
                setattr(policy, name, value.strip() if isinstance(value, str) else value)
                changed.append(name)
        if command.topics is not None:
            _set_topics(uow.session, policy, command.topics)
            changed.append("topics")
        policy.updated_at = now
        if policy.published_at is not None and changed:
            uow.session.flush()
            uow.emit(ev.POLICY_UPDATED, _policy_event_payload(uow.session, policy))
        return _commit_staff_change(uow, policy, actor, "policy.update", now, detail={"changed": changed})


def revise_draft(uow, command: c.ReviseDraft, *, actor: Actor, clock: Clock = utcnow) -> dict:
    """A new version with its own clauses; earlier versions and the comments on them are kept."""
    require_role(actor, POLICY_OFFICER)
    now = clock()
    with uow:
        policy = _get_policy(uow.session, command.policy_id, for_update=True)
        if policy.state not in window.REVISABLE_STATES:
            raise InvalidTransition(f"cannot revise a policy that is {policy.state}", policy.state, "revise")
        body = _body_from_command(command.text, command.clauses, command.preamble, policy.language)
        number = policy.current_version + 1
        _add_version(uow.session, policy, number, body, actor, now, (command.change_note or "")[:2000])
        policy.current_version = number
        policy.updated_at = now
        if policy.published_at is not None:
            uow.session.flush()
            uow.emit(ev.POLICY_UPDATED, _policy_event_payload(uow.session, policy))
        return _commit_staff_change(uow, policy, actor, "policy.revise", now, detail={"version": number},
                                    version=number)


def _apply_due(uow, policy: Policy, now: dt.datetime) -> list[str]:
    """Open and/or close `policy` if its scheduled times have passed; returns the actions taken."""
    actions = []
    while (action := window.due_action(policy.state, policy.open_at, policy.close_at, now)) is not None:
        policy.state = window.next_state(policy.state, action)
        policy.updated_at = now
        uow.session.flush()
        if action == window.OPEN_NOW:
            uow.emit(ev.CONSULTATION_OPENED, _window_event_payload(policy))
        else:
            uow.emit(ev.CONSULTATION_CLOSED, _window_event_payload(policy))
        actions.append(action)
    return actions


def schedule_policy(uow, command: c.SchedulePolicy, *, actor: Actor, clock: Clock = utcnow) -> dict:
    """Publish the draft with a comment window; it opens (and closes) when advance_due runs past those times.

    If open_at is already past, the consultation opens at once.
    """
    require_role(actor, POLICY_OFFICER)
    now = clock()
    errors = window.schedule_errors(command.open_at, command.close_at, now)
    if command.open_at is None:
        errors["open_at"] = "field.required"
    if errors:
        raise ValidationFailed(errors)
    with uow:
        policy = _get_policy(uow.session, command.policy_id, for_update=True)
        policy.state = window.next_state(policy.state, window.SCHEDULE)
        policy.open_at, policy.close_at = command.open_at, command.close_at
        policy.updated_at = now
        _announce_policy(uow, policy, now)
        _apply_due(uow, policy, now)
        window_times = {"open_at": command.open_at.isoformat(), "close_at": command.close_at.isoformat()}
        return _commit_staff_change(uow, policy, actor, "policy.schedule", now, detail=window_times)


def open_consultation(uow, command: c.OpenConsultation, *, actor: Actor, clock: Clock = utcnow) -> dict:
    """Open the window now (from draft or scheduled); a close time must be known, given here or scheduled before."""
    require_role(actor, POLICY_OFFICER)
    now = clock()
    with uow:
        policy = _get_policy(uow.session, command.policy_id, for_update=True)
        close_at = command.close_at or policy.close_at
        errors = window.schedule_errors(now, close_at, now)
        if errors:
            raise ValidationFailed(errors)
        policy.state = window.next_state(policy.state, window.OPEN_NOW)
        policy.open_at, policy.close_at = now, close_at
        policy.updated_at = now
        _announce_policy(uow, policy, now)
        uow.emit(ev.CONSULTATION_OPENED, _window_event_payload(policy))
        return _commit_staff_change(uow, policy, actor, "policy.open", now)


def close_consultation(uow, command: c.CloseConsultation, *, actor: Actor, clock: Clock = utcnow) -> dict:
    """Close the window early (or exactly on time, if the timer has not run yet)."""
    require_role(actor, POLICY_OFFICER)
    now = clock()
    with uow:
        policy = _get_policy(uow.session, command.policy_id, for_update=True)
        policy.state = window.next_state(policy.state, window.CLOSE)
        if policy.close_at is None or policy.close_at > now:
            policy.close_at = now
        policy.updated_at = now
        uow.session.flush()
        uow.emit(ev.CONSULTATION_CLOSED, _window_event_payload(policy))
        return _commit_staff_change(uow, policy, actor, "policy.close", now)


def withdraw_policy(uow, command: c.WithdrawPolicy, *, actor: Actor, clock: Clock = utcnow) -> dict:
    require_role(actor, POLICY_OFFICER)
    now = clock()
    with uow:
        policy = _get_policy(uow.session, command.policy_id, for_update=True)
        policy.state = window.next_state(policy.state, window.WITHDRAW)
        policy.withdrawn_at = now
        policy.updated_at = now
        if policy.published_at is not None:
            uow.session.flush()
            uow.emit(ev.POLICY_UPDATED, _policy_event_payload(uow.session, policy))
        return _commit_staff_change(uow, policy, actor, "policy.withdraw", now,
                                    detail={"reason": (command.reason or "")[:500]})


def advance_due(uow, now: dt.datetime | None = None) -> list[dict]:
    """Open scheduled consultations whose open_at has passed and close open ones past close_at.

    The service calls this from a timer. Each policy is handled with a row lock (PostgreSQL), and the state is read
    again under the lock, so two timers running at once do not emit an event twice.
    """
    now = now or utcnow()
    done = []
    with uow:
        due_ids = list(
            uow.session.scalars(
                select(Policy.id)
                .where(
                    or_(
                        and_(Policy.state == window.SCHEDULED, Policy.open_at <= now),
                        and_(Policy.state == window.OPEN, Policy.close_at <= now),
                    )
                )
                .order_by(Policy.id)
            )
        )
        for policy_id in due_ids:
            policy = _get_policy(uow.session, policy_id, for_update=True)
            for action in _apply_due(uow, policy, now):
                done.append({"policy_id": policy.id, "action": action, "state": policy.state})
        uow.commit()
    return done


def prune_submission_attempts(uow, now: dt.datetime | None = None) -> int:
    """Delete rate-limit records older than any limit looks back (call it from the same timer as advance_due)."""
    now = now or utcnow()
    with uow:
        removed = prune(uow.session, now)
        uow.commit()
    return removed


def _policy_detail(
    session: Session, policy: Policy, version_number: int, now: dt.datetime, *, staff: bool = False
) -> dict[str, Any]:
    version = _get_version(session, policy.id, version_number)
    clauses = _clauses_of(session, policy.id, version_number)
    comment_counts = _approved_comment_counts(session, policy.id, version_number)
    votes = _vote_tallies(session, policy.id)
    versions = session.execute(
        select(PolicyVersion.number, PolicyVersion.created_at, PolicyVersion.change_note)
        .where(PolicyVersion.policy_id == policy.id)
        .order_by(PolicyVersion.number)
    ).all()
    detail = {
        **_policy_summary(policy),
        "version": version.number,
        "current_version": policy.current_version,
        "versions": [{"number": n, "created_at": at, "change_note": note} for n, at, note in versions],
        "preamble": version.preamble,
        "chapters": list(version.chapters or []),
        "clauses": [
            {
                **_clause_dict(clause),
                "comment_count": comment_counts.get(clause.number, 0),
                "votes": votes.get(clause.number, _empty_tally()),
            }
            for clause in clauses
        ],
        "comment_count": sum(comment_counts.values()),
        "votes": votes.get(WHOLE_POLICY, _empty_tally()),
        "accepting_comments": _accepting(policy, now),
    }
    if staff:
        detail["parse_warnings"] = list(version.parse_warnings or [])
    return detail


def get_policy(uow, command: c.GetPolicy, *, actor: Actor | None = None, clock: Clock = utcnow) -> dict:
    """The policy with one version's clauses (current by default), each with its approved comment count and votes.

    Unpublished drafts are visible to staff only.
    """
    now = clock()
    with uow:
        policy = _get_policy(uow.session, command.policy_id, public=not _is_staff(actor))
        return _policy_detail(uow.session, policy, command.version or policy.current_version, now,
                              staff=_is_staff(actor))


def list_policies(uow, command: c.ListPolicies = c.ListPolicies(), *, actor: Actor | None = None,
                  clock: Clock = utcnow) -> dict:
    """Published policies (staff also see drafts), newest first, filtered by state, department and topic."""
    page, page_size = _page(command.page, command.page_size)
    if command.state is not None and command.state not in window.STATES:
        raise ValidationFailed({"state": "field.choice"})
    now = clock()
    with uow:
        query = select(Policy)
        if not _is_staff(actor):
            query = query.where(Policy.published_at.is_not(None))
        if command.state:
            query = query.where(Policy.state == command.state)
        if command.department:
            query = query.where(Policy.department == command.department)
        if command.topic:
            query = query.where(
                Policy.id.in_(select(PolicyTopic.policy_id).where(PolicyTopic.topic == command.topic))
            )
        total = uow.session.scalar(select(func.count()).select_from(query.subquery()))
        policies = list(
            uow.session.scalars(
                query.order_by(func.coalesce(Policy.published_at, Policy.created_at).desc(), Policy.id.desc())
                .offset((page - 1) * page_size)
                .limit(page_size)
            )
        )
        ids = [p.id for p in policies]
        counts: dict[tuple[int, str], int] = {}
        if ids:
            # one aggregate for the page: approved counts for everyone, pending counts for staff
            counts = {
                (policy_id, state): n
                for policy_id, state, n in uow.session.execute(
                    select(Comment.policy_id, Comment.state, func.count())
                    .where(Comment.policy_id.in_(ids), Comment.state.in_(("approved", "pending")))
                    .group_by(Comment.policy_id, Comment.state)
                ).all()
            }
        staff = _is_staff(actor)
        items = []
        for p in policies:
            item = {**_policy_summary(p), "comment_count": counts.get((p.id, "approved"), 0),
                    "accepting_comments": _accepting(p, now)}
            if staff:
                item["pending_count"] = counts.get((p.id, "pending"), 0)
            items.append(item)
        return {"items": items, "page": page, "page_size": page_size, "total": total}


def diff_versions(uow, command: c.DiffVersions, *, actor: Actor | None = None, clock: Clock = utcnow) -> dict:
    """Clause-level changes between two versions (via consultation.diff.diff_clauses)."""
    with uow:
        policy = _get_policy(uow.session, command.policy_id, public=not _is_staff(actor))
        old = _get_version(uow.session, policy.id, command.v_from)
        new = _get_version(uow.session, policy.id, command.v_to)
        changes = diff_clauses(
            _clauses_of(uow.session, policy.id, old.number), _clauses_of(uow.session, policy.id, new.number),
            language=policy.language,
        )
        return {
            "policy_id": policy.id,
            "v_from": old.number,
            "v_to": new.number,
            "changes": [
                {
                    "kind": change.kind,
                    "old_number": change.old_number,
                    "new_number": change.new_number,
                    "old_label": change.old_label,
                    "new_label": change.new_label,
                    "old_text": change.old_text,
                    "new_text": change.new_text,
                    "similarity": change.similarity,
                    "text_diff": [{"op": seg.op, "text": seg.text} for seg in change.text_diff],
                }
                for change in changes
            ],
        }


# --- comments --------------------------------------------------------------------------------------------------------


def _contact_kind(contact: str) -> str | None:
    if _EMAIL.match(contact) and len(contact) <= 254:
        return "email"
    if _PHONE.match(contact) and 7 <= sum(ch.isdigit() for ch in contact) <= 20:
        return "phone"
    return None


def _submission_errors(command: c.SubmitComment) -> dict[str, str]:
    errors: dict[str, str] = {}
    text = command.text if isinstance(command.text, str) else None
    if text is None or not text.strip():
        errors["text"] = "field.required"
    elif "\x00" in text:
        errors["text"] = "field.invalid"
    elif len(text.strip()) > MAX_COMMENT_LENGTH:
        errors["text"] = "text.length"
    if command.stance not in STANCES:
        errors["stance"] = "field.choice"
    if command.channel not in CHANNELS:
        errors["channel"] = "field.choice"
    if command.display_name is not None and len(command.display_name.strip()) > 80:
        errors["display_name"] = "field.length"
    if command.contact:
        if _contact_kind(command.contact.strip()) is None:
            errors["contact"] = "comment.contact_invalid"
        elif not command.contact_consent:
            errors["contact_consent"] = "comment.contact_consent_required"
    if command.source_url and not _is_http_url(command.source_url):
        errors["source_url"] = "field.url"
    if command.idempotency_key is not None and not (1 <= len(command.idempotency_key) <= 100):
        errors["idempotency_key"] = "field.length"
    if command.language is not None and command.language not in LANGUAGES:
        errors["language"] = "field.language"
    if command.clause_number is not None and (not isinstance(command.clause_number, int) or command.clause_number < 1):
        errors["clause_number"] = "clause.unknown"
    return errors


def _text_hash(text: str) -> str:
    return hashlib.sha256(_WHITESPACE.sub("", text).lower().encode()).hexdigest()


def _spam_like(text: str) -> bool:
    return len(_URL_IN_TEXT.findall(text)) >= 3 or bool(_REPEATED_CHAR.search(text))


def _receipt(comment: Comment) -> dict[str, Any]:
    return {
        "comment_id": comment.id,
        "reference": comment.reference,
        "policy_id": comment.policy_id,
        "version": comment.version_number,
        "clause_number": comment.clause_number,
        "stance": comment.stance,
        "state": comment.state,
        "created_at": comment.created_at,
    }


def _existing_submission(session: Session, policy_id: int, key: str | None) -> Comment | None:
    if not key:
        return None
    return session.scalar(select(Comment).where(Comment.policy_id == policy_id, Comment.idempotency_key == key))


def _redacted_name(name: str | None, language: str) -> str | None:
    if name is None or not name.strip():
        return None
    return redact_personal_data(name.strip(), marker_language=language).text


# The comment intake path runs once per citizen submission, so it speaks SQLAlchemy Core with statements built once
# (each memoises its cache key): rows are append-only and nothing reads them back through the ORM in this transaction.
# Its writes are staged on the unit of work, which sends them at commit with the event's outbox row (on PostgreSQL as
# one statement): a submission is then four round trips to the server (BEGIN, this select, the writes, COMMIT).
_policies, _comments, _attempts = Policy.__table__, Comment.__table__, SubmissionAttempt.__table__
_SUBMISSION_COLUMNS = (
    _policies.c.id,
    _policies.c.state,
    _policies.c.current_version,
    _policies.c.open_at,
    _policies.c.close_at,
    _policies.c.published_at,
    _policies.c.time_zone,
    # The idempotency, duplicate-text and rate-limit lookups ride along: one round trip instead of four.
    select(_comments.c.id)
    .where(_comments.c.policy_id == _policies.c.id, _comments.c.idempotency_key == bindparam("idempotency_key"))
    .scalar_subquery()
    .label("first_submission"),
    select(_comments.c.id)
    .where(_comments.c.policy_id == _policies.c.id, _comments.c.text_hash == bindparam("text_hash"))
    .limit(1)
    .scalar_subquery()
    .label("duplicate_of"),
    _attempts.c.subject_hash.label("attempt_subject"),
    _attempts.c.policy_id.label("attempt_policy_id"),
    _attempts.c.at.label("attempt_at"),
)
# one row per recent attempt of the submitter (usually none: then one row with NULL attempt columns)
_SUBMISSION_FROM = _policies.outerjoin(_attempts, recent_attempts_condition(_policies.c.id))
_POLICY_FOR_SUBMISSION = (
    select(*_SUBMISSION_COLUMNS, null().label("new_comment_id"))
    .select_from(_SUBMISSION_FROM)
    .where(_policies.c.id == bindparam("policy_id"))
)
# PostgreSQL also hands out the new comment's id from its sequence, so the comment row, its transition and its event
# can be written together without waiting for an INSERT ... RETURNING. A CTE with a volatile function is materialised,
# so the id is drawn once per query, not once per attempt row. Submissions refused afterwards leave a gap in the ids,
# as a rolled-back insert would.
_NEW_COMMENT_ID = select(func.nextval(func.pg_get_serial_sequence(_comments.name, _comments.c.id.name))
                         .label("new_comment_id")).cte("new_comment")
_POLICY_FOR_SUBMISSION_WITH_ID = (
    select(*_SUBMISSION_COLUMNS, _NEW_COMMENT_ID.c.new_comment_id)
    .select_from(_NEW_COMMENT_ID.join(_SUBMISSION_FROM, true()))
    .where(_policies.c.id == bindparam("policy_id"))
)
_INSERT_COMMENT = insert(_comments)
_contacts, _transitions = CommentContact.__table__, CommentTransition.__table__


def _policy_for_submission(
    session: Session, policy_id: int, idempotency_key: str | None, text_hash: str, subjects: list[str], now: dt.datetime
):
    """The published policy's window fields, the comment already sent with this idempotency key (if any), whether
    its comments already hold this text, the submitters' recent attempts and (on PostgreSQL) the id for a new
    comment; NotFound when there is no such published policy."""
    if not isinstance(policy_id, int) or not (0 < policy_id <= MAX_ID):
        raise NotFound(f"policy {policy_id} not found")
    connection = session.connection()
    statement = _POLICY_FOR_SUBMISSION_WITH_ID if connection.dialect.name == "postgresql" else _POLICY_FOR_SUBMISSION
    rows = connection.execute(statement, {
        "policy_id": policy_id, "idempotency_key": idempotency_key or None, "text_hash": text_hash,
        **recent_attempts_params(subjects, now),
    }).all()
    if not rows or rows[0].published_at is None:
        raise NotFound(f"policy {policy_id} not found")
    attempts = [(row.attempt_subject, row.attempt_policy_id, row.attempt_at) for row in rows if row.attempt_subject]
    return rows[0], attempts


def submit_comment(
    uow, command: c.SubmitComment, *, clock: Clock = utcnow, hash_secret: bytes = DEFAULT_HASH_SECRET
) -> dict:
    """Accept a citizen's comment (state pending) on the whole policy or one clause of the current version.

    A retry with the same idempotency key returns the first receipt. The original text is kept for staff; public
    text and events carry the redacted text; contact details go to their own table only.
    """
    if isinstance(command.text, str) and len(command.text) > MAX_ACCEPTED_PAYLOAD:
        raise PayloadTooLarge("comment too long", MAX_COMMENT_LENGTH)
    errors = _submission_errors(command)
    if errors:
        raise ValidationFailed(errors)
    now = clock()
    text = command.text.strip()
    text_hash = _text_hash(text)
    subjects = list(dict.fromkeys(submitter_hashes(command.voter_token, command.client_ip, hash_secret)))
    with uow:
        policy, attempts = _policy_for_submission(
            uow.session, command.policy_id, command.idempotency_key, text_hash, subjects, now
        )
        if policy.first_submission is not None:
            return _receipt(uow.session.get(Comment, policy.first_submission))
        window.ensure_accepting(policy.state, policy.open_at, policy.close_at, now, policy.time_zone)
        clause = None
        if command.clause_number is not None:
            clause = uow.session.execute(
                select(Clause.id, Clause.number).where(
                    Clause.policy_id == policy.id,
                    Clause.version_number == policy.current_version,
                    Clause.number == command.clause_number,
                )
            ).first()
            if clause is None:
                raise ValidationFailed({"clause_number": "clause.unknown"})
        waits = waits_from_attempts(attempts, subjects, policy.id, now)
        if waits:
            raise RateLimited(max(waits.values()))
        uow.add_rows(_attempts, attempt_rows(subjects, policy.id, now))

        language = command.language or detect_language(text)
        redacted = redact_personal_data(text, marker_language=language)
        display_name = _redacted_name(command.display_name, language)
        flags = []
        if redacted.findings or (command.display_name and contains_personal_data(command.display_name)):
            flags.append("personal_data")
        if _spam_like(text):
            flags.append("spam")
        if policy.duplicate_of is not None:
            flags.append("duplicate")
        receipt = {
            "comment_id": policy.new_comment_id,
            "reference": f"C{now:%y%m%d}-{secrets.token_hex(4).upper()}",
            "policy_id": policy.id,
            "version": policy.current_version,
            "clause_number": clause.number if clause else None,
            "stance": command.stance,
            "state": "pending",
            "created_at": now,
        }
        comment_row = {
            "reference": receipt["reference"],
            "policy_id": policy.id,
            "version_number": policy.current_version,
            "clause_id": clause.id if clause else None,
            "clause_number": receipt["clause_number"],
            "stance": command.stance,
            "original_text": text,
            "public_text": redacted.text,
            "display_name": display_name,
            "language": language,
            "state": "pending",
            "flags": flags,
            "flagged": bool(flags),
            "text_hash": text_hash,
            "channel": command.channel,
            "site_key": command.site_key,
            "source_url": command.source_url,
            "idempotency_key": command.idempotency_key,
            "submitter_hash": subjects[0] if subjects else None,
            "created_at": now,
            "support_count": 0,
        }
        try:
            if receipt["comment_id"] is None:
                # no id handed out (SQLite): insert now to learn it; an in-process database costs no round trip
                inserted = uow.session.connection().execute(_INSERT_COMMENT, comment_row)
                receipt["comment_id"] = inserted.inserted_primary_key[0]
            else:
                uow.add_rows(_comments, [{"id": receipt["comment_id"], **comment_row}])
            comment_id = receipt["comment_id"]
            if command.contact:
                contact = command.contact.strip()
                uow.add_rows(_contacts, [{
                    "comment_id": comment_id, "kind": _contact_kind(contact), "value": contact,
                    "consent": bool(command.contact_consent), "created_at": now,
                }])
            uow.add_rows(_transitions, [{
                "comment_id": comment_id, "at": now, "from_state": None, "to_state": "pending",
            }])
            uow.emit(
                ev.COMMENT_SUBMITTED,
                {
                    "comment_id": comment_id,
                    "reference": receipt["reference"],
                    "policy_id": policy.id,
                    "version": receipt["version"],
                    "clause_number": receipt["clause_number"],
                    "stance": command.stance,
                    "status": "pending",
                    "text": redacted.text,
                    "display_name": display_name,
                    "language": language,
                    "channel": command.channel,
                    "site_key": command.site_key,
                    "source_url": command.source_url,
                    "flags": flags,
                    "created_at": now,
                },
            )
            uow.commit()
        except IntegrityError:
            # A concurrent retry with the same idempotency key won the race: answer with its receipt.
            uow.rollback()
            first = _existing_submission(uow.session, policy.id, command.idempotency_key)
            if first is None:
                raise
            return _receipt(first)
        return receipt


def _staff_comment_dict(comment: Comment) -> dict[str, Any]:
    """What moderators see in queues: redacted text, provenance and flags; never contact data."""
    return {
        **_receipt(comment),
        "text": comment.public_text,
        "display_name": comment.display_name,
        "language": comment.language,
        "reason_code": comment.reason_code,
        "flags": list(comment.flags or []),
        "channel": comment.channel,
        "site_key": comment.site_key,
        "source_url": comment.source_url,
        "has_contact": comment.contact is not None,
        "moderated_at": comment.moderated_at,
        "support_count": comment.support_count,
    }


def _replies_by_comment(session: Session, comment_ids: Sequence[int]) -> dict[int, list[dict]]:
    replies: dict[int, list[dict]] = defaultdict(list)
    if comment_ids:
        for reply in session.scalars(
            select(Reply).where(Reply.comment_id.in_(comment_ids)).order_by(Reply.created_at, Reply.id)
        ):
            replies[reply.comment_id].append(
                {"reply_id": reply.id, "text": reply.text, "author_name": reply.author_name,
                 "created_at": reply.created_at}
            )
    return replies


def _moderate_one(uow, comment: Comment, action: str, reason_code: str | None, note: str | None, actor: Actor,
                  now: dt.datetime) -> dict:
    target = MODERATION_ACTIONS[action]
    if target not in COMMENT_TRANSITIONS.get(comment.state, set()):
        raise InvalidTransition(f"cannot {action} a comment that is {comment.state}", comment.state, action)
    previous = comment.state
    comment.state = target
    comment.reason_code = reason_code if target != "approved" else None
    comment.moderated_at = now
    uow.session.add(
        CommentTransition(
            comment_id=comment.id, actor_user_id=actor.user_id, actor_username=actor.username, at=now,
            from_state=previous, to_state=target, reason_code=comment.reason_code, note=(note or None),
        )
    )
    record_audit(uow.session, actor, f"comment.{action}", "comment", comment.id, now,
                 {"from": previous, "to": target, "reason_code": comment.reason_code})
    approved = target == "approved"
    uow.session.flush()
    uow.emit(
        ev.COMMENT_MODERATED,
        {
            "comment_id": comment.id,
            "reference": comment.reference,
            "policy_id": comment.policy_id,
            "version": comment.version_number,
            "clause_number": comment.clause_number,
            "stance": comment.stance,
            "status": target,
            "previous_status": previous,
            "reason_code": comment.reason_code,
            "text": comment.public_text if approved else None,
            "display_name": comment.display_name if approved else None,
            "language": comment.language,
            "replies": _replies_by_comment(uow.session, [comment.id]).get(comment.id, []) if approved else [],
            "created_at": comment.created_at,
            "moderated_at": now,
            "url_path": ev.comment_url_path(comment.policy_id, comment.id),
        },
    )
    return _staff_comment_dict(comment)


def _moderation_input_errors(action: str, reason_code: str | None, note: str | None) -> dict[str, str]:
    errors = {}
    if action not in MODERATION_ACTIONS:
        errors["action"] = "field.choice"
    if action == "reject" and reason_code not in REJECT_REASONS:
        errors["reason_code"] = "moderation.reason_required"
    elif reason_code is not None and reason_code not in REJECT_REASONS:
        errors["reason_code"] = "field.choice"
    if note is not None and len(note) > 2000:
        errors["note"] = "field.length"
    return errors


def moderate_comment(uow, command: c.ModerateComment, *, actor: Actor, clock: Clock = utcnow) -> dict:
    """Approve, reject (with a reason code) or hide a comment; the transition is recorded and announced."""
    require_role(actor, MODERATOR)
    errors = _moderation_input_errors(command.action, command.reason_code, command.note)
    if errors:
        raise ValidationFailed(errors)
    now = clock()
    with uow:
        comment = _get_row(uow.session, Comment, command.comment_id, "comment", for_update=True)
        result = _moderate_one(uow, comment, command.action, command.reason_code, command.note, actor, now)
        uow.commit()
        return result


def bulk_moderate(uow, command: c.BulkModerate, *, actor: Actor, clock: Clock = utcnow) -> dict:
    """The same action on many comments in one transaction; each one is recorded. Comments that are missing or
    cannot take the action are reported per id and do not stop the others."""
    require_role(actor, MODERATOR)
    errors = _moderation_input_errors(command.action, command.reason_code, command.note)
    if not command.comment_ids:
        errors["comment_ids"] = "field.required"
    if errors:
        raise ValidationFailed(errors)
    if len(command.comment_ids) > MAX_BULK:
        raise PayloadTooLarge("too many comments in one bulk action", MAX_BULK)
    now = clock()
    results = []
    with uow:
        ids = list(dict.fromkeys(command.comment_ids))
        comments = {
            comment.id: comment
            for comment in uow.session.scalars(
                select(Comment).where(Comment.id.in_([i for i in ids if isinstance(i, int) and 0 < i <= MAX_ID]))
                .with_for_update()
            )
        }
        for comment_id in ids:
            comment = comments.get(comment_id)
            if comment is None:
                results.append({"comment_id": comment_id, "ok": False, "error": "not_found", "state": None})
                continue
            try:
                _moderate_one(uow, comment, command.action, command.reason_code, command.note, actor, now)
            except InvalidTransition:
                results.append({"comment_id": comment_id, "ok": False, "error": "invalid_transition",
                                "state": comment.state})
            else:
                results.append({"comment_id": comment_id, "ok": True, "error": None, "state": comment.state})
        uow.commit()
    return {"results": results, "succeeded": sum(r["ok"] for r in results), "failed": sum(not r["ok"] for r in results)}


def _encode_cursor(created_at: dt.datetime, comment_id: int) -> str:
    raw = json.dumps([created_at.isoformat(), comment_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[dt.datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, comment_id = json.loads(raw)
        moment = dt.datetime.fromisoformat(created_at)
        if moment.tzinfo is None or not isinstance(comment_id, int):
            raise ValueError
        return moment, comment_id
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        raise ValidationFailed({"cursor": "field.cursor"}) from exc


def list_moderation_queue(uow, command: c.ListModerationQueue, *, actor: Actor, clock: Clock = utcnow) -> dict:
    """A page of a moderation queue with keyset pagination on (created_at, id).

    pending and flagged (pending with flags) show oldest first, so nothing waits forever; all shows newest first.
    Policy officers read it too: they find the comments they answer here.
    """
    require_role(actor, MODERATOR, POLICY_OFFICER)
    errors = {}
    if command.queue not in ("pending", "flagged", "all"):
        errors["queue"] = "field.choice"
    if command.state is not None and command.state not in COMMENT_STATES:
        errors["state"] = "field.choice"
    if command.stance is not None and command.stance not in STANCES:
        errors["stance"] = "field.choice"
    if command.channel is not None and command.channel not in CHANNELS:
        errors["channel"] = "field.choice"
    if errors:
        raise ValidationFailed(errors)
    limit = max(1, min(command.limit or 50, MAX_PAGE_SIZE))
    ascending = command.queue != "all"
    with uow:
        query = select(Comment)
        if command.queue in ("pending", "flagged"):
            query = query.where(Comment.state == "pending")
        if command.queue == "flagged":
            query = query.where(Comment.flagged.is_(True))
        if command.state:
            query = query.where(Comment.state == command.state)
        if command.policy_id is not None:
            query = query.where(Comment.policy_id == command.policy_id)
        if command.clause_number is not None:
            query = query.where(Comment.clause_number == command.clause_number)
        if command.stance:
            query = query.where(Comment.stance == command.stance)
        if command.channel:
            query = query.where(Comment.channel == command.channel)
        if command.since:
            query = query.where(Comment.created_at >= command.since)
        if command.until:
            query = query.where(Comment.created_at < command.until)
        if command.cursor:
            at, last_id = _decode_cursor(command.cursor)
            if ascending:
                query = query.where(or_(Comment.created_at > at, and_(Comment.created_at == at, Comment.id > last_id)))
            else:
                query = query.where(or_(Comment.created_at < at, and_(Comment.created_at == at, Comment.id < last_id)))
        order = (Comment.created_at.asc(), Comment.id.asc()) if ascending else (Comment.created_at.desc(),
                                                                                 Comment.id.desc())
        rows = list(uow.session.scalars(query.order_by(*order).limit(limit + 1)))
        page = rows[:limit]
        contact_ids = set()
        if page:
            contact_ids = set(uow.session.scalars(
                select(CommentContact.comment_id).where(CommentContact.comment_id.in_([r.id for r in page]))
            ))
        items = []
        for comment in page:
            item = _staff_comment_dict_light(comment, comment.id in contact_ids)
            items.append(item)
        next_cursor = _encode_cursor(page[-1].created_at, page[-1].id) if len(rows) > limit else None
        return {"items": items, "next_cursor": next_cursor}


def _staff_comment_dict_light(comment: Comment, has_contact: bool) -> dict[str, Any]:
    # Same as _staff_comment_dict without touching the contact relationship (one query per row otherwise).
    return {
        **_receipt(comment),
        "text": comment.public_text,
        "display_name": comment.display_name,
        "language": comment.language,
        "reason_code": comment.reason_code,
        "flags": list(comment.flags or []),
        "channel": comment.channel,
        "site_key": comment.site_key,
        "source_url": comment.source_url,
        "has_contact": has_contact,
        "moderated_at": comment.moderated_at,
        "support_count": comment.support_count,
    }


def comment_history(uow, command: c.GetCommentHistory, *, actor: Actor, clock: Clock = utcnow) -> dict:
    """Every state transition of a comment, oldest first."""
    require_role(actor, MODERATOR, POLICY_OFFICER)
    with uow:
        comment = _get_row(uow.session, Comment, command.comment_id, "comment")
        transitions = uow.session.scalars(
            select(CommentTransition)
            .where(CommentTransition.comment_id == comment.id)
            .order_by(CommentTransition.at, CommentTransition.id)
        )
        return {
            "comment": _staff_comment_dict(comment),
            "transitions": [
                {"at": t.at, "actor_user_id": t.actor_user_id, "actor_username": t.actor_username,
                 "from_state": t.from_state, "to_state": t.to_state, "reason_code": t.reason_code, "note": t.note}
                for t in transitions
            ],
        }


def view_comment_original(uow, command: c.ViewCommentOriginal, *, actor: Actor, clock: Clock = utcnow) -> dict:
    """The unredacted text and contact of a comment, for moderators and admins only; every view is audit-logged."""
    require_role(actor, MODERATOR)
    now = clock()
    with uow:
        comment = _get_row(uow.session, Comment, command.comment_id, "comment")
        contact = comment.contact
        result = {
            "comment_id": comment.id,
            "reference": comment.reference,
            "original_text": comment.original_text,
            "public_text": comment.public_text,
            "contact": None if contact is None else
            {"kind": contact.kind, "value": contact.value, "consent": contact.consent},
        }
        record_audit(uow.session, actor, "comment.view_original", "comment", comment.id, now)
        uow.commit()
        return result


def list_public_comments(uow, command: c.ListPublicComments, *, clock: Clock = utcnow) -> dict:
    """Approved comments (redacted text) with their official replies; newest or most supported first."""
    if command.order not in ("newest", "most_supported"):
        raise ValidationFailed({"order": "field.choice"})
    page, page_size = _page(command.page, command.page_size)
    with uow:
        policy = _get_policy(uow.session, command.policy_id, public=True)
        query = select(Comment).where(Comment.policy_id == policy.id, Comment.state == "approved")
        if command.clause_number is not None:
            query = query.where(Comment.clause_number == command.clause_number)
        total = uow.session.scalar(select(func.count()).select_from(query.subquery()))
        if command.order == "newest":
            query = query.order_by(Comment.created_at.desc(), Comment.id.desc())
        else:
            query = query.order_by(Comment.support_count.desc(), Comment.created_at.desc(), Comment.id.desc())
        comments = list(uow.session.scalars(query.offset((page - 1) * page_size).limit(page_size)))
        replies = _replies_by_comment(uow.session, [comment.id for comment in comments])
        items = [
            {
                "comment_id": comment.id,
                "reference": comment.reference,
                "policy_id": comment.policy_id,
                "version": comment.version_number,
                "clause_number": comment.clause_number,
                "stance": comment.stance,
                "text": comment.public_text,
                "display_name": comment.display_name,
                "language": comment.language,
                "created_at": comment.created_at,
                "support_count": comment.support_count,
                "replies": replies.get(comment.id, []),
            }
            for comment in comments
        ]
        return {"items": items, "page": page, "page_size": page_size, "total": total}


def endorse_comment(
    uow, command: c.EndorseComment, *, clock: Clock = utcnow, hash_secret: bytes = DEFAULT_HASH_SECRET
) -> dict:
    """A reader supports an approved comment; once per voter token, repeat calls change nothing."""
    if not command.voter_token or len(command.voter_token) > 200:
        raise ValidationFailed({"voter_token": "field.required"})
    now = clock()
    voter = subject_hash("token", command.voter_token, hash_secret)
    with uow:
        comment = _get_row(uow.session, Comment, command.comment_id, "comment")
        if comment.state != "approved":
            raise NotFound(f"comment {command.comment_id} not found")
        policy = _get_policy(uow.session, comment.policy_id, public=True)
        window.ensure_accepting(policy.state, policy.open_at, policy.close_at, now, policy.time_zone)
        exists = uow.session.scalar(
            select(CommentEndorsement.id).where(
                CommentEndorsement.comment_id == comment.id, CommentEndorsement.voter_hash == voter
            )
        )
        if exists is None:
            uow.session.add(CommentEndorsement(comment_id=comment.id, voter_hash=voter, created_at=now))
            try:
                uow.session.flush()
            except IntegrityError:
                uow.rollback()
                return {"comment_id": command.comment_id, "support_count": uow.session.get(
                    Comment, command.comment_id).support_count, "endorsed": True}
            # An UPDATE with an expression, not read-modify-write, so concurrent endorsements are all counted.
            uow.session.execute(
                update(Comment).where(Comment.id == comment.id).values(support_count=Comment.support_count + 1)
            )
        uow.session.flush()
        uow.session.refresh(comment)
        result = {"comment_id": comment.id, "support_count": comment.support_count, "endorsed": True}
        uow.commit()
        return result


def post_reply(uow, command: c.PostReply, *, actor: Actor, clock: Clock = utcnow) -> dict:
    """An official reply to a comment; public once the comment is approved."""
    require_role(actor, POLICY_OFFICER)
    errors: dict[str, str] = {}
    _check_length(errors, "text", command.text, 1, MAX_COMMENT_LENGTH)
    if command.author_name is not None and len(command.author_name) > 200:
        errors["author_name"] = "field.length"
    if errors:
        raise ValidationFailed(errors)
    now = clock()
    with uow:
        comment = _get_row(uow.session, Comment, command.comment_id, "comment")
        if comment.state in ("rejected", "hidden"):
            raise Conflict(f"cannot reply to a comment that is {comment.state}")
        policy = _get_policy(uow.session, comment.policy_id)
        reply = Reply(
            comment_id=comment.id,
            policy_id=comment.policy_id,
            text=command.text.strip(),
            author_user_id=actor.user_id,
            author_name=(command.author_name or policy.department).strip(),
            created_at=now,
        )
        uow.session.add(reply)
        uow.session.flush()
        uow.emit(
            ev.REPLY_POSTED,
            {
                "reply_id": reply.id,
                "comment_id": comment.id,
                "policy_id": comment.policy_id,
                "clause_number": comment.clause_number,
                "text": reply.text,
                "author_name": reply.author_name,
                "comment_public": comment.state == "approved",
                "language": policy.language,
                "created_at": now,
                "url_path": ev.comment_url_path(comment.policy_id, comment.id),
            },
        )
        record_audit(uow.session, actor, "reply.post", "comment", comment.id, now, {"reply_id": reply.id})
        result = {"reply_id": reply.id, "comment_id": comment.id, "text": reply.text,
                  "author_name": reply.author_name, "created_at": now,
                  "public": comment.state == "approved"}
        uow.commit()
        return result


# --- poll ------------------------------------------------------------------------------------------------------------


def _poll_results(session: Session, policy: Policy) -> dict:
    tallies = _vote_tallies(session, policy.id)
    clause_numbers = [
        number for (number,) in session.execute(
            select(Clause.number).where(Clause.policy_id == policy.id,
                                        Clause.version_number == policy.current_version).order_by(Clause.position)
        )
    ]
    return {
        "policy_id": policy.id,
        "policy": tallies.get(WHOLE_POLICY, _empty_tally()),
        "clauses": [{"clause_number": n, **tallies.get(n, _empty_tally())} for n in clause_numbers],
    }


def cast_vote(uow, command: c.CastVote, *, clock: Clock = utcnow, hash_secret: bytes = DEFAULT_HASH_SECRET) -> dict:
    """One vote per voter token per policy (or clause); voting again changes the vote until the window closes."""
    errors = {}
    if command.stance not in VOTE_STANCES:
        errors["stance"] = "field.choice"
    if not command.voter_token or len(command.voter_token) > 200:
        errors["voter_token"] = "field.required"
    if errors:
        raise ValidationFailed(errors)
    now = clock()
    voter = subject_hash("token", command.voter_token, hash_secret)
    target = command.clause_number if command.clause_number is not None else WHOLE_POLICY
    with uow:
        policy = _get_policy(uow.session, command.policy_id, public=True)
        window.ensure_accepting(policy.state, policy.open_at, policy.close_at, now, policy.time_zone)
        if command.clause_number is not None:
            known = uow.session.scalar(
                select(Clause.id).where(Clause.policy_id == policy.id, Clause.version_number == policy.current_version,
                                        Clause.number == command.clause_number)
            )
            if known is None:
                raise ValidationFailed({"clause_number": "clause.unknown"})
        vote = uow.session.scalar(
            select(Vote).where(Vote.policy_id == policy.id, Vote.clause_number == target, Vote.voter_hash == voter)
        )
        previous = vote.stance if vote else None
        if vote is None:
            vote = Vote(policy_id=policy.id, clause_number=target, voter_hash=voter, stance=command.stance,
                        created_at=now, updated_at=now)
            uow.session.add(vote)
            try:
                uow.session.flush()
            except IntegrityError:
                # The same token voted concurrently; the later request updates that vote.
                uow.rollback()
                vote = uow.session.scalar(
                    select(Vote).where(Vote.policy_id == policy.id, Vote.clause_number == target,
                                       Vote.voter_hash == voter)
                )
                previous = vote.stance
        vote.stance = command.stance
        vote.updated_at = now
        uow.session.flush()
        results = _poll_results(uow.session, policy)
        uow.commit()
        return {"policy_id": policy.id, "clause_number": command.clause_number, "stance": command.stance,
                "previous_stance": previous, "results": results}


def poll_results(uow, command: c.GetPollResults, *, clock: Clock = utcnow) -> dict:
    """support/oppose/neutral counts for the policy and for every clause of the current version (one grouped query)."""
    with uow:
        policy = _get_policy(uow.session, command.policy_id, public=True)
        return _poll_results(uow.session, policy)


# --- explanations (政策解读) ------------------------------------------------------------------------------------------


def _explanation_dict(explanation: Explanation) -> dict[str, Any]:
    return {
        "explanation_id": explanation.id,
        "policy_id": explanation.policy_id,
        "kind": explanation.kind,
        "title": explanation.title,
        "body_html": explanation.body_html,
        "url": explanation.url,
        "outlet": explanation.outlet,
        "clause_numbers": list(explanation.clause_numbers or []),
        "language": explanation.language,
        "state": explanation.state,
        "created_at": explanation.created_at,
        "updated_at": explanation.updated_at,
        "published_at": explanation.published_at,
    }


def _explanation_errors(kind, title, body_html, url, outlet, clause_numbers, *, creating: bool) -> dict[str, str]:
    errors: dict[str, str] = {}
    if creating and kind not in EXPLANATION_KINDS:
        errors["kind"] = "field.choice"
    if creating or title is not None:
        _check_length(errors, "title", title, 1, 300)
    if kind == "article" and creating and not (body_html or "").strip():
        errors["body_html"] = "field.required"
    if kind == "link" and creating and not url:
        errors["url"] = "field.required"
    if url is not None and not _is_http_url(url):
        errors["url"] = "field.url"
    if outlet is not None and len(outlet) > 200:
        errors["outlet"] = "field.length"
    if body_html is not None and len(body_html) > MAX_DRAFT_LENGTH:
        raise PayloadTooLarge("explanation body too long", MAX_DRAFT_LENGTH)
    if clause_numbers is not None and any(not isinstance(n, int) or n < 1 for n in clause_numbers):
        errors["clause_numbers"] = "clause.unknown"
    return errors


def _check_clause_numbers(session: Session, policy: Policy, numbers: Iterable[int]) -> None:
    numbers = set(numbers)
    if not numbers:
        return
    known = set(session.scalars(
        select(Clause.number).where(Clause.policy_id == policy.id, Clause.version_number == policy.current_version,
                                    Clause.number.in_(numbers))
    ))
    if numbers - known:
        raise ValidationFailed({"clause_numbers": "clause.unknown"})


def create_explanation(uow, command: c.CreateExplanation, *, actor: Actor, clock: Clock = utcnow) -> dict:
    """A draft explanation: an editor-written article (sanitised HTML) or a link to an external one."""
    require_role(actor, EDITOR, POLICY_OFFICER)
    errors = _explanation_errors(command.kind, command.title, command.body_html, command.url, command.outlet,
                                 command.clause_numbers, creating=True)
    if command.language not in LANGUAGES:
        errors["language"] = "field.language"
    if errors:
        raise ValidationFailed(errors)
    now = clock()
    with uow:
        policy = _get_policy(uow.session, command.policy_id)
        _check_clause_numbers(uow.session, policy, command.clause_numbers)
        explanation = Explanation(
            policy_id=policy.id,
            kind=command.kind,
            title=command.title.strip(),
            body_html=sanitize_rich_text(command.body_html) if command.body_html else None,
            url=command.url,
            outlet=command.outlet,
            clause_numbers=sorted(set(command.clause_numbers)),
            language=command.language,
            state="draft",
            author_user_id=actor.user_id,
            created_at=now,
            updated_at=now,
        )
        uow.session.add(explanation)
        uow.session.flush()
        record_audit(uow.session, actor, "explanation.create", "explanation", explanation.id, now)
        result = _explanation_dict(explanation)
        uow.commit()
        return result


def update_explanation(uow, command: c.UpdateExplanation, *, actor: Actor, clock: Clock = utcnow) -> dict:
    require_role(actor, EDITOR, POLICY_OFFICER)
    errors = _explanation_errors(None, command.title, command.body_html, command.url, command.outlet,
                                 command.clause_numbers, creating=False)
    if errors:
        raise ValidationFailed(errors)
    now = clock()
    with uow:
        explanation = _get_row(uow.session, Explanation, command.explanation_id, "explanation")
        if command.clause_numbers is not None:
            _check_clause_numbers(uow.session, _get_policy(uow.session, explanation.policy_id), command.clause_numbers)
            explanation.clause_numbers = sorted(set(command.clause_numbers))
        if command.title is not None:
            explanation.title = command.title.strip()
        if command.body_html is not None:
            explanation.body_html = sanitize_rich_text(command.body_html)
        if command.url is not None:
            explanation.url = command.url
        if command.outlet is not None:
            explanation.outlet = command.outlet
        explanation.updated_at = now
        if explanation.state == "published":
            _emit_explanation(uow, explanation)
        record_audit(uow.session, actor, "explanation.update", "explanation", explanation.id, now)
        result = _explanation_dict(explanation)
        uow.commit()
        return result


def _emit_explanation(uow, explanation: Explanation) -> None:
    policy = _get_policy(uow.session, explanation.policy_id)
    uow.session.flush()
    uow.emit(
        ev.EXPLANATION_PUBLISHED,
        {
            "explanation_id": explanation.id,
            "policy_id": explanation.policy_id,
            "kind": explanation.kind,
            "title": explanation.title,
            "body": html_to_text(explanation.body_html) if explanation.body_html else None,
            "url": explanation.url,
            "outlet": explanation.outlet,
            "clause_numbers": list(explanation.clause_numbers or []),
            "language": explanation.language,
            "department": policy.department,
            "topics": list(policy.topics or []),
            "published_at": explanation.published_at,
            "url_path": f"{ev.policy_url_path(explanation.policy_id)}/explanations/{explanation.id}",
        },
    )


def publish_explanation(uow, command: c.PublishExplanation, *, actor: Actor, clock: Clock = utcnow) -> dict:
    """Make an explanation public (the policy must be public too); emits explanation_published."""
    require_role(actor, EDITOR, POLICY_OFFICER)
    now = clock()
    with uow:
        explanation = _get_row(uow.session, Explanation, command.explanation_id, "explanation")
        policy = _get_policy(uow.session, explanation.policy_id)
        if policy.published_at is None:
            raise Conflict("publish the policy before its explanations")
        if explanation.state == "published":
            raise InvalidTransition("explanation is published already", explanation.state, "publish")
        explanation.state = "published"
        explanation.published_at = now
        explanation.updated_at = now
        _emit_explanation(uow, explanation)
        record_audit(uow.session, actor, "explanation.publish", "explanation", explanation.id, now)
        result = _explanation_dict(explanation)
        uow.commit()
        return result


def list_explanations(uow, command: c.ListExplanations, *, actor: Actor | None = None, clock: Clock = utcnow) -> list:
    """Published explanations of a policy; staff asking with include_drafts also get drafts."""
    staff = _is_staff(actor)
    with uow:
        policy = _get_policy(uow.session, command.policy_id, public=not staff)
        query = select(Explanation).where(Explanation.policy_id == policy.id)
        if not (staff and command.include_drafts):
            query = query.where(Explanation.state == "published")
        query = query.order_by(func.coalesce(Explanation.published_at, Explanation.created_at).desc(),
                               Explanation.id.desc())
        return [_explanation_dict(e) for e in uow.session.scalars(query)]


def get_explanation(uow, command: c.GetExplanation, *, actor: Actor | None = None, clock: Clock = utcnow) -> dict:
    """One explanation: published ones for everybody, drafts for staff."""
    with uow:
        explanation = _get_row(uow.session, Explanation, command.explanation_id, "explanation")
        if explanation.state != "published" and not _is_staff(actor):
            raise NotFound(f"explanation {command.explanation_id} not found")
        return _explanation_dict(explanation)


# --- coverage links --------------------------------------------------------------------------------------------------


def _link_dict(link: CoverageLink) -> dict[str, Any]:
    return {
        "link_id": link.id,
        "policy_id": link.policy_id,
        "clause_number": link.clause_number,
        "article_id": link.article_id,
        "article_title": link.article_title,
        "article_url": link.article_url,
        "article_outlet": link.article_outlet,
        "article_published_at": link.article_published_at,
        "state": link.state,
        "origin": link.origin,
        "score": link.score,
        "matched_terms": list(link.matched_terms or []),
        "decided_by": link.decided_by,
        "decided_at": link.decided_at,
        "created_at": link.created_at,
        "updated_at": link.updated_at,
    }


# What the public sees of a link: the coverage itself, not who decided it or how the linker scored it.
_STAFF_ONLY_LINK_FIELDS = ("decided_by", "score", "matched_terms", "origin", "created_at", "updated_at", "decided_at")


def _public_link(link: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in link.items() if key not in _STAFF_ONLY_LINK_FIELDS}


def _parse_time(value: Any) -> dt.datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        moment = value
    else:
        moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _suggestions_of(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The search service may send one suggestion or a batch under "suggestions" / "links"."""
    for key in ("suggestions", "links"):
        if isinstance(payload.get(key), list):
            shared = {k: v for k, v in payload.items() if k not in ("suggestions", "links")}
            return [{**shared, **item} for item in payload[key] if isinstance(item, dict)]
    return [payload]


def _article_fields(item: dict[str, Any]) -> dict[str, Any]:
    article = item.get("article") if isinstance(item.get("article"), dict) else {}

    def pick(name):
        return item.get(f"article_{name}", article.get(name))

    return {
        "article_id": str(item.get("article_id") or article.get("id") or article.get("article_id") or ""),
        "title": pick("title"),
        "url": pick("url"),
        "outlet": pick("outlet"),
        "published_at": pick("published_at"),
    }


def _term_text(term: Any) -> str | None:
    # The search service sends terms as strings; a {"term": …, "weight": …} form is accepted as well.
    if isinstance(term, dict):
        term = term.get("term")
    return str(term)[:100] if term not in (None, "") else None


def record_link_suggestions(uow, payload: dict[str, Any], *, clock: Clock = utcnow) -> dict:
    """Consume a links_suggested event idempotently.

    The same (policy, article) stays one link; a repeated suggestion refreshes score, matched terms and article
    metadata but never resets a link an editor already confirmed or rejected. Events may arrive out of order
    (redelivery, retries, parallel workers): a suggestion whose envelope `occurred_at` is older than the one already
    applied is ignored. Unknown policies and malformed items are skipped and counted, so a redelivered or partly bad
    event never fails the consumer. Returns counts: created, updated, stale, skipped.
    """
    payload = payload if isinstance(payload, dict) else {}
    now = clock()
    try:
        suggested_at = _parse_time(payload.get("occurred_at")) or now
    except (TypeError, ValueError):
        suggested_at = now
    for attempt in range(2):
        try:
            return _apply_link_suggestions(uow, payload, suggested_at, now)
        except IntegrityError:
            # Another worker inserted the same (policy, article) link concurrently; run again to update it instead.
            if attempt:
                raise
    raise AssertionError("unreachable")


def _apply_link_suggestions(uow, payload: dict[str, Any], suggested_at: dt.datetime, now: dt.datetime) -> dict:
    counts = {"created": 0, "updated": 0, "stale": 0, "skipped": 0}
    with uow:
        for item in _suggestions_of(payload):
            article = _article_fields(item)
            try:
                policy_id = int(item.get("policy_id"))
                published_at = _parse_time(article["published_at"])
                score = None if item.get("score") is None else float(item["score"])
                clause_number = None if item.get("clause_number") is None else int(item["clause_number"])
            except (TypeError, ValueError):
                counts["skipped"] += 1
                continue
            if not article["article_id"] or not article["url"] or not _is_http_url(str(article["url"])):
                counts["skipped"] += 1
                continue
            if not (0 < policy_id <= MAX_ID) or uow.session.get(Policy, policy_id) is None:
                counts["skipped"] += 1
                continue
            raw_terms = item.get("matched_terms")
            terms = [t for t in map(_term_text, raw_terms) if t][:50] if isinstance(raw_terms, list) else []
            link = uow.session.scalar(
                select(CoverageLink).where(CoverageLink.policy_id == policy_id,
                                           CoverageLink.article_id == article["article_id"][:200])
            )
            if link is None:
                link = CoverageLink(policy_id=policy_id, article_id=article["article_id"][:200], state="suggested",
                                    origin="suggested", created_at=now)
                uow.session.add(link)
                counts["created"] += 1
            elif suggested_at < link.updated_at:
                counts["stale"] += 1
                continue
            else:
                counts["updated"] += 1
            link.article_title = str(article["title"] or article["url"])[:500]
            link.article_url = str(article["url"])[:1000]
            link.article_outlet = article["outlet"] and str(article["outlet"])[:200]
            link.article_published_at = published_at
            link.score = score
            link.matched_terms = terms
            if link.state == "suggested":
                link.clause_number = clause_number
            link.updated_at = suggested_at
            uow.session.flush()
        uow.commit()
    return counts


def _emit_link_confirmed(uow, link: CoverageLink) -> None:
    uow.session.flush()
    uow.emit(
        ev.LINK_CONFIRMED,
        {
            "link_id": link.id,
            "policy_id": link.policy_id,
            "clause_number": link.clause_number,
            "article_id": link.article_id,
            "article_title": link.article_title,
            "article_url": link.article_url,
            "article_outlet": link.article_outlet,
            "article_published_at": link.article_published_at,
            "score": link.score,
            "matched_terms": list(link.matched_terms or []),
            "origin": link.origin,
            "decided_at": link.decided_at,
        },
    )


def decide_link(uow, command: c.DecideLink, *, actor: Actor, clock: Clock = utcnow) -> dict:
    """An editor confirms or rejects a link; confirming emits link_confirmed."""
    require_role(actor, EDITOR)
    if command.decision not in ("confirm", "reject"):
        raise ValidationFailed({"decision": "field.choice"})
    now = clock()
    with uow:
        link = _get_row(uow.session, CoverageLink, command.link_id, "link", for_update=True)
        target = "confirmed" if command.decision == "confirm" else "rejected"
        if link.state == target:
            raise InvalidTransition(f"link is {target} already", link.state, command.decision)
        link.state = target
        link.decided_by = actor.username
        link.decided_at = now
        link.updated_at = now
        if target == "confirmed":
            _emit_link_confirmed(uow, link)
        record_audit(uow.session, actor, f"link.{command.decision}", "coverage_link", link.id, now)
        result = _link_dict(link)
        uow.commit()
        return result


def create_link(uow, command: c.CreateLink, *, actor: Actor, clock: Clock = utcnow) -> dict:
    """An editor links an article by hand; the link is confirmed at once (and emits link_confirmed)."""
    require_role(actor, EDITOR)
    errors: dict[str, str] = {}
    _check_length(errors, "article_title", command.article_title, 1, 500)
    if not command.article_url or not _is_http_url(command.article_url):
        errors["article_url"] = "field.url"
    if errors:
        raise ValidationFailed(errors)
    now = clock()
    article_id = command.article_id or "url:" + hashlib.sha256(command.article_url.encode()).hexdigest()[:40]
    with uow:
        policy = _get_policy(uow.session, command.policy_id)
        if command.clause_number is not None:
            _check_clause_numbers(uow.session, policy, [command.clause_number])
        link = uow.session.scalar(
            select(CoverageLink).where(CoverageLink.policy_id == policy.id, CoverageLink.article_id == article_id)
        )
        if link is not None and link.state == "confirmed":
            raise Conflict("this article is linked to the policy already")
        if link is None:
            link = CoverageLink(policy_id=policy.id, article_id=article_id, created_at=now, matched_terms=[])
            uow.session.add(link)
        link.origin = "manual"
        link.state = "confirmed"
        link.article_title = command.article_title.strip()
        link.article_url = command.article_url
        link.article_outlet = command.article_outlet
        link.article_published_at = command.article_published_at
        link.clause_number = command.clause_number
        link.decided_by = actor.username
        link.decided_at = now
        link.updated_at = now
        _emit_link_confirmed(uow, link)
        record_audit(uow.session, actor, "link.create", "coverage_link", link.id, now)
        result = _link_dict(link)
        uow.commit()
        return result


def list_policy_links(uow, command: c.ListPolicyLinks, *, actor: Actor | None = None, clock: Clock = utcnow) -> list:
    """Links of a policy: confirmed only for the public; editors may filter by state (best scores first)."""
    staff = actor is not None and actor.has_role(EDITOR)
    if command.state is not None and command.state not in LINK_STATES:
        raise ValidationFailed({"state": "field.choice"})
    with uow:
        policy = _get_policy(uow.session, command.policy_id, public=not _is_staff(actor))
        query = select(CoverageLink).where(CoverageLink.policy_id == policy.id)
        if not staff:
            query = query.where(CoverageLink.state == "confirmed")
        elif command.state:
            query = query.where(CoverageLink.state == command.state)
        if staff and command.state == "suggested":
            query = query.order_by(CoverageLink.score.desc().nulls_last(), CoverageLink.id)
        else:
            query = query.order_by(CoverageLink.article_published_at.desc().nulls_last(), CoverageLink.id.desc())
        links = [_link_dict(link) for link in uow.session.scalars(query)]
        return links if staff else [_public_link(link) for link in links]


def list_links_for_article(uow, command: c.ListLinksForArticle, *, clock: Clock = utcnow) -> list:
    """For the widget on a news page: the public consultations confirmed as linked to this article URL."""
    if not command.article_url or not _is_http_url(command.article_url):
        raise ValidationFailed({"article_url": "field.url"})
    now = clock()
    with uow:
        rows = uow.session.execute(
            select(CoverageLink, Policy)
            .join(Policy, Policy.id == CoverageLink.policy_id)
            .where(CoverageLink.article_url == command.article_url, CoverageLink.state == "confirmed",
                   Policy.published_at.is_not(None))
            .order_by(Policy.id)
        ).all()
        return [
            {**_policy_summary(policy), "accepting_comments": _accepting(policy, now), "link_id": link.id,
             "clause_number": link.clause_number}
            for link, policy in rows
        ]


__all__ = [
    "advance_due", "bulk_moderate", "cast_vote", "close_consultation", "comment_history", "create_explanation",
    "create_link", "create_policy", "decide_link", "diff_versions", "endorse_comment", "get_explanation", "get_policy",
    "list_explanations", "list_links_for_article", "list_moderation_queue", "list_policies", "list_policy_links",
    "list_public_comments", "moderate_comment", "open_consultation", "poll_results", "post_reply",
    "prune_submission_attempts", "publish_explanation", "record_link_suggestions", "revise_draft", "schedule_policy", "submit_comment",
    "update_explanation", "update_policy_details", "view_comment_original", "withdraw_policy",
]
