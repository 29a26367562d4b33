"""The consultation window: a pure state machine over a policy's consultation, with no I/O.

draft → scheduled → open → closed → report_published; withdrawn from draft, scheduled or open.
Times are aware UTC datetimes; messages show them in the consultation's own time zone.
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .exceptions import InvalidTransition, WindowClosed

DRAFT = "draft"
SCHEDULED = "scheduled"
OPEN = "open"
CLOSED = "closed"
REPORT_PUBLISHED = "report_published"
WITHDRAWN = "withdrawn"

STATES = (DRAFT, SCHEDULED, OPEN, CLOSED, REPORT_PUBLISHED, WITHDRAWN)

SCHEDULE = "schedule"
OPEN_NOW = "open"
CLOSE = "close"
PUBLISH_REPORT = "publish_report"
WITHDRAW = "withdraw"

# action -> states it may start from, and the state it leads to
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    SCHEDULE: (frozenset({DRAFT, SCHEDULED}), SCHEDULED),
    OPEN_NOW: (frozenset({DRAFT, SCHEDULED}), OPEN),
    CLOSE: (frozenset({OPEN}), CLOSED),
    PUBLISH_REPORT: (frozenset({CLOSED}), REPORT_PUBLISHED),
    WITHDRAW: (frozenset({DRAFT, SCHEDULED, OPEN}), WITHDRAWN),
}

# A draft may still be edited in place; once people can see it, a change is a new version.
REVISABLE_STATES = frozenset({DRAFT, SCHEDULED, OPEN})

DEFAULT_TIME_ZONE = "Asia/Shanghai"


def next_state(state: str, action: str) -> str:
    """The state `action` leads to from `state`; InvalidTransition when the machine does not allow it."""
    allowed = TRANSITIONS.get(action)
    if allowed is None:
        raise InvalidTransition(f"unknown action {action!r}", state, action)
    sources, target = allowed
    if state not in sources:
        raise InvalidTransition(f"cannot {action} a consultation that is {state}", state, action)
    return target


def can(state: str, action: str) -> bool:
    allowed = TRANSITIONS.get(action)
    return allowed is not None and state in allowed[0]


def zone(time_zone: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(time_zone or DEFAULT_TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {time_zone!r}") from exc


def is_valid_time_zone(name: str) -> bool:
    try:
        zone(name)
    except ValueError:
        return False
    return True


def schedule_errors(open_at: dt.datetime | None, close_at: dt.datetime | None, now: dt.datetime) -> dict[str, str]:
    """Field errors (message ids) for a proposed window; empty when it is acceptable."""
    errors: dict[str, str] = {}
    for name, value in (("open_at", open_at), ("close_at", close_at)):
        if value is not None and value.tzinfo is None:
            errors[name] = "datetime.naive"
    if errors:
        return errors
    if close_at is None:
        errors["close_at"] = "field.required"
    elif close_at <= now:
        errors["close_at"] = "window.close_in_past"
    elif open_at is not None and close_at <= open_at:
        errors["close_at"] = "window.close_before_open"
    return errors


def due_action(state: str, open_at: dt.datetime | None, close_at: dt.datetime | None, now: dt.datetime) -> str | None:
    """What the timer must do now: OPEN_NOW, CLOSE, or None. Call again after acting (a late timer may need both)."""
    if state == SCHEDULED and open_at is not None and open_at <= now:
        return OPEN_NOW
    if state == OPEN and close_at is not None and close_at <= now:
        return CLOSE
    return None


def local_iso(value: dt.datetime | None, time_zone: str | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(zone(time_zone)).isoformat()


def _display(value: dt.datetime, time_zone: str | None) -> str:
    return f"{value.astimezone(zone(time_zone)):%Y-%m-%d %H:%M} ({time_zone or DEFAULT_TIME_ZONE})"


def ensure_accepting(
    state: str,
    open_at: dt.datetime | None,
    close_at: dt.datetime | None,
    now: dt.datetime,
    time_zone: str | None = DEFAULT_TIME_ZONE,
) -> None:
    """Raise WindowClosed unless comments and votes are accepted at `now`.

    The state is authoritative, but the scheduled times are checked as well because the timer that moves the state
    runs periodically: a comment one second after close_at is late even if the timer has not fired yet.
    """
    opened = local_iso(open_at, time_zone)
    closed = local_iso(close_at, time_zone)
    tz = time_zone or DEFAULT_TIME_ZONE
    if state in (DRAFT, SCHEDULED) or (state == OPEN and open_at is not None and now < open_at):
        if open_at is not None and state != DRAFT:
            raise WindowClosed(f"The consultation opens at {_display(open_at, time_zone)}.", opened, None, tz,
                               "opens_later")
        raise WindowClosed("The consultation is not open yet.", None, None, tz, "not_open_yet")
    if state == WITHDRAWN:
        raise WindowClosed("The consultation was withdrawn.", opened, closed, tz, "withdrawn")
    if state in (CLOSED, REPORT_PUBLISHED) or (close_at is not None and now >= close_at):
        if close_at is not None:
            raise WindowClosed(f"The consultation closed at {_display(close_at, time_zone)}.", opened, closed, tz,
                               "closed")
        raise WindowClosed("The consultation is closed.", opened, None, tz, "closed")
