import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consultation import window
from consultation.exceptions import InvalidTransition, WindowClosed

UTC = dt.UTC
NOW = dt.datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def hours(n):
    return dt.timedelta(hours=n)


@pytest.mark.parametrize(
    ("state", "action", "expected"),
    [
        ("draft", "schedule", "scheduled"),
        ("scheduled", "schedule", "scheduled"),
        ("draft", "open", "open"),
        ("scheduled", "open", "open"),
        ("open", "close", "closed"),
        ("closed", "publish_report", "report_published"),
        ("draft", "withdraw", "withdrawn"),
        ("scheduled", "withdraw", "withdrawn"),
        ("open", "withdraw", "withdrawn"),
    ],
)
def test_allowed_transitions_lead_to_the_next_state(state, action, expected):
    assert window.next_state(state, action) == expected


@pytest.mark.parametrize(
    ("state", "action"),
    [
        ("draft", "close"),
        ("open", "open"),
        ("closed", "open"),
        ("closed", "withdraw"),
        ("report_published", "withdraw"),
        ("withdrawn", "open"),
        ("open", "publish_report"),
        ("draft", "explode"),
    ],
)
def test_forbidden_transitions_raise_invalid_transition_naming_state_and_action(state, action):
    with pytest.raises(InvalidTransition) as caught:
        window.next_state(state, action)
    assert caught.value.from_state == state
    assert caught.value.action == action


def test_a_scheduled_consultation_is_due_to_open_once_open_at_has_passed():
    assert window.due_action("scheduled", NOW + hours(1), NOW + hours(5), NOW) is None
    assert window.due_action("scheduled", NOW, NOW + hours(5), NOW) == "open"


def test_an_open_consultation_is_due_to_close_once_close_at_has_passed():
    assert window.due_action("open", NOW - hours(5), NOW + hours(1), NOW) is None
    assert window.due_action("open", NOW - hours(5), NOW - hours(1), NOW) == "close"


def test_drafts_and_closed_consultations_are_never_due():
    assert window.due_action("draft", NOW - hours(2), NOW - hours(1), NOW) is None
    assert window.due_action("closed", NOW - hours(2), NOW - hours(1), NOW) is None


def test_an_open_window_accepts_comments():
    window.ensure_accepting("open", NOW - hours(1), NOW + hours(1), NOW)


def test_comment_before_opening_is_rejected_with_the_local_opening_time():
    with pytest.raises(WindowClosed) as caught:
        window.ensure_accepting("scheduled", NOW + hours(2), NOW + hours(48), NOW, "Asia/Shanghai")
    assert "2026-03-02 11:00 (Asia/Shanghai)" in caught.value.message
    assert caught.value.opened_at == "2026-03-02T11:00:00+08:00"
    assert caught.value.closed_at is None


def test_comment_after_closing_is_rejected_with_the_local_closing_time():
    with pytest.raises(WindowClosed) as caught:
        window.ensure_accepting("closed", NOW - hours(48), NOW - hours(1), NOW, "Europe/Berlin")
    assert "2026-03-02 01:00 (Europe/Berlin)" in caught.value.message
    assert caught.value.closed_at == "2026-03-02T01:00:00+01:00"


def test_comment_after_close_at_is_late_even_before_the_timer_closes_the_window():
    with pytest.raises(WindowClosed):
        window.ensure_accepting("open", NOW - hours(48), NOW - dt.timedelta(seconds=1), NOW)


@pytest.mark.parametrize("state", ["draft", "withdrawn", "report_published"])
def test_comments_are_refused_in_states_without_a_window(state):
    with pytest.raises(WindowClosed):
        window.ensure_accepting(state, None, None, NOW)


def test_schedule_must_close_after_it_opens_and_in_the_future():
    assert window.schedule_errors(NOW + hours(1), NOW + hours(2), NOW) == {}
    assert window.schedule_errors(NOW + hours(2), NOW + hours(1), NOW) == {"close_at": "window.close_before_open"}
    assert window.schedule_errors(NOW - hours(2), NOW - hours(1), NOW) == {"close_at": "window.close_in_past"}
    assert window.schedule_errors(NOW, None, NOW) == {"close_at": "field.required"}


def test_naive_times_are_refused():
    naive = dt.datetime(2026, 3, 3, 9, 0)
    assert window.schedule_errors(naive, NOW + hours(1), NOW) == {"open_at": "datetime.naive"}


def test_time_zone_names_are_checked_against_the_iana_database():
    assert window.is_valid_time_zone("Asia/Shanghai")
    assert not window.is_valid_time_zone("Mars/Olympus_Mons")
    assert not window.is_valid_time_zone("../../etc/passwd")


@given(
    state=st.sampled_from(window.STATES),
    open_offset=st.integers(-10_000, 10_000),
    length=st.integers(1, 10_000),
)
def test_comments_are_accepted_exactly_while_open_and_between_the_scheduled_times(state, open_offset, length):
    open_at = NOW + dt.timedelta(seconds=open_offset)
    close_at = open_at + dt.timedelta(seconds=length)
    expected = state == "open" and open_at <= NOW < close_at
    try:
        window.ensure_accepting(state, open_at, close_at, NOW)
        accepted = True
    except WindowClosed:
        accepted = False
    assert accepted == expected
