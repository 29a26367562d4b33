import datetime as dt

import pytest
from sqlalchemy import select

from consultation import handlers, ratelimit
from consultation.exceptions import RateLimited
from consultation.model import SubmissionAttempt

NOW = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)


def seconds(n):
    return dt.timedelta(seconds=n)


def submit(uow, subjects, policy_id, at):
    with uow:
        ratelimit.check_and_record(uow.session, subjects, policy_id, at)
        uow.commit()


def test_the_stored_subject_is_a_keyed_hash_never_the_raw_address(uow):
    subjects = ratelimit.submitter_hashes("token-1", "203.0.113.9")
    submit(uow, subjects, 1, NOW)
    with uow:
        stored = list(uow.session.scalars(select(SubmissionAttempt.subject_hash)))
    assert sorted(stored) == sorted(subjects)
    assert all("203.0.113.9" not in value and "token-1" not in value for value in stored)
    assert ratelimit.subject_hash("ip", "203.0.113.9", b"other secret") not in stored


def test_a_second_comment_within_three_seconds_is_refused_with_the_remaining_wait(uow):
    subjects = ratelimit.submitter_hashes(None, "203.0.113.9")
    submit(uow, subjects, 1, NOW)
    with pytest.raises(RateLimited) as caught:
        submit(uow, subjects, 2, NOW + seconds(1))
    assert caught.value.retry_after_s == 2


def test_a_comment_three_seconds_later_is_accepted(uow):
    subjects = ratelimit.submitter_hashes("token-1", None)
    submit(uow, subjects, 1, NOW)
    submit(uow, subjects, 1, NOW + seconds(3))


def test_a_token_is_limited_even_when_the_address_changes(uow):
    submit(uow, ratelimit.submitter_hashes("token-1", "198.51.100.1"), 1, NOW)
    with pytest.raises(RateLimited):
        submit(uow, ratelimit.submitter_hashes("token-1", "198.51.100.2"), 1, NOW + seconds(1))


def test_the_thirty_first_comment_in_an_hour_on_one_policy_is_refused_until_the_oldest_expires(uow):
    subjects = ratelimit.submitter_hashes("token-1", None)
    for n in range(30):
        submit(uow, subjects, 1, NOW + seconds(10 * n))
    late = NOW + seconds(10 * 30)
    with pytest.raises(RateLimited) as caught:
        submit(uow, subjects, 1, late)
    assert caught.value.retry_after_s == 3600 - 300
    submit(uow, subjects, 2, late)  # another policy has its own hourly budget
    submit(uow, subjects, 1, NOW + dt.timedelta(hours=1, seconds=4))


def test_refused_attempts_do_not_count_against_the_limit(uow):
    subjects = ratelimit.submitter_hashes("token-1", None)
    submit(uow, subjects, 1, NOW)
    for _ in range(5):
        with pytest.raises(RateLimited):
            submit(uow, subjects, 1, NOW + seconds(1))
    with uow:
        assert uow.session.scalar(select(SubmissionAttempt.id).where(SubmissionAttempt.id > 1)) is None


def test_prune_removes_attempts_older_than_an_hour(uow):
    subjects = ratelimit.submitter_hashes("token-1", None)
    submit(uow, subjects, 1, NOW)
    submit(uow, subjects, 1, NOW + dt.timedelta(minutes=59))
    assert handlers.prune_submission_attempts(uow, NOW + dt.timedelta(hours=1, minutes=1)) == 1
    with uow:
        assert len(uow.session.scalars(select(SubmissionAttempt)).all()) == 1


def test_a_comment_on_another_policy_within_three_seconds_is_refused(uow):
    subjects = ratelimit.submitter_hashes("token-1", None)
    submit(uow, subjects, 1, NOW)
    with pytest.raises(RateLimited) as caught:
        submit(uow, subjects, 2, NOW + seconds(2))
    assert caught.value.retry_after_s == 1


def test_the_longer_of_the_token_and_address_waits_is_the_one_reported(uow):
    token, address = ratelimit.submitter_hashes("token-1", None), ratelimit.submitter_hashes(None, "203.0.113.9")
    for n in range(30):
        submit(uow, token, 1, NOW + seconds(10 * n))  # the token's hourly budget on policy 1 is spent
    submit(uow, address, 2, NOW + seconds(299))  # the address submitted a second ago, elsewhere
    with pytest.raises(RateLimited) as caught:
        submit(uow, token + address, 1, NOW + seconds(300))
    assert caught.value.retry_after_s == 3600 - 300
    with pytest.raises(RateLimited) as caught:
        submit(uow, address, 1, NOW + seconds(300))
    assert caught.value.retry_after_s == 2
