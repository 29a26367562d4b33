import datetime as dt

import pytest
from sqlalchemy import select

from consultation import commands as c
from consultation import handlers
from consultation.events import EVENT_SCHEMAS
from consultation.exceptions import NotFound, PayloadTooLarge, RateLimited, ValidationFailed, WindowClosed
from consultation.model import Clause, Comment, CommentContact, CommentTransition, OutboxMessage, SubmissionAttempt
from services.kernel.outbox import SqlUnitOfWork

from .factories import OFFICER, approve, make_open_policy, make_policy, new_token, outbox, submit


@pytest.fixture
def policy(uow, clock):
    return make_open_policy(uow, clock)


def test_a_comment_on_a_clause_is_accepted_as_pending_with_a_public_reference(uow, clock, policy):
    receipt = submit(uow, clock, policy["policy_id"], clause_number=2, stance="support")
    assert receipt["state"] == "pending"
    assert receipt["clause_number"] == 2
    assert receipt["version"] == 1
    assert receipt["reference"].startswith("C260302-")
    assert outbox(uow, "comment_submitted")[0]["comment_id"] == receipt["comment_id"]


def test_a_comment_on_the_whole_policy_has_no_clause(uow, clock, policy):
    assert submit(uow, clock, policy["policy_id"])["clause_number"] is None


def test_a_comment_on_a_clause_that_does_not_exist_is_a_field_error(uow, clock, policy):
    with pytest.raises(ValidationFailed) as caught:
        submit(uow, clock, policy["policy_id"], clause_number=99)
    assert caught.value.errors == {"clause_number": "clause.unknown"}


def test_comments_attach_to_the_clause_of_the_current_version(uow, clock, policy):
    handlers.revise_draft(uow, c.ReviseDraft(policy["policy_id"], clauses=(c.ClauseInput(1, "只有一条。"),)),
                          actor=OFFICER, clock=clock)
    assert submit(uow, clock, policy["policy_id"], clause_number=1)["version"] == 2
    with pytest.raises(ValidationFailed):
        submit(uow, clock, policy["policy_id"], clause_number=3)


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"text": ""}, "text", "field.required"),
        ({"text": "长" * 5001}, "text", "text.length"),
        ({"stance": "maybe"}, "stance", "field.choice"),
        ({"channel": "fax"}, "channel", "field.choice"),
        ({"contact": "not a contact"}, "contact", "comment.contact_invalid"),
        ({"contact": "13812345678"}, "contact_consent", "comment.contact_consent_required"),
        ({"source_url": "javascript:alert(1)"}, "source_url", "field.url"),
        ({"display_name": "名" * 81}, "display_name", "field.length"),
    ],
)
def test_bad_submissions_get_a_message_id_per_field(uow, clock, policy, overrides, field, message):
    with pytest.raises(ValidationFailed) as caught:
        submit(uow, clock, policy["policy_id"], **overrides)
    assert caught.value.errors[field] == message


def test_an_absurdly_long_comment_is_payload_too_large(uow, clock, policy):
    with pytest.raises(PayloadTooLarge):
        submit(uow, clock, policy["policy_id"], text="x" * 60_000)


def test_comment_outside_window_is_rejected_with_the_local_closing_time(uow, clock, policy):
    clock.advance(days=31)
    with pytest.raises(WindowClosed) as caught:
        submit(uow, clock, policy["policy_id"])
    assert "2026-04-01 09:00 (Asia/Shanghai)" in caught.value.message
    assert caught.value.closed_at == "2026-04-01T09:00:00+08:00"


def test_comment_before_the_window_opens_is_rejected_with_the_opening_time(uow, clock):
    pid = make_policy(uow, clock)["policy_id"]
    handlers.schedule_policy(uow, c.SchedulePolicy(pid, clock() + dt.timedelta(hours=3), clock() + dt.timedelta(days=3)),
                             actor=OFFICER, clock=clock)
    with pytest.raises(WindowClosed) as caught:
        submit(uow, clock, pid)
    assert caught.value.opened_at == "2026-03-02T12:00:00+08:00"


def test_comments_on_unpublished_drafts_are_not_found(uow, clock):
    pid = make_policy(uow, clock)["policy_id"]
    with pytest.raises(NotFound):
        submit(uow, clock, pid)


def test_a_retried_submission_with_the_same_idempotency_key_returns_the_first_result(uow, clock, policy):
    token = new_token()
    first = submit(uow, clock, policy["policy_id"], idempotency_key="abc-123", voter_token=token)
    again = submit(uow, clock, policy["policy_id"], idempotency_key="abc-123", voter_token=token, text="改过的文字")
    assert again == first
    with uow:
        assert uow.session.query(Comment).count() == 1
    assert len(outbox(uow, "comment_submitted")) == 1


def test_a_retry_that_races_the_first_submission_returns_the_first_receipt(uow, clock, policy, monkeypatch):
    """The retry's lookup finds no first submission; the first commits before the retry writes: one comment."""
    rival = SqlUnitOfWork(uow._session_factory, OutboxMessage, EVENT_SCHEMAS)
    first, raced = {}, []
    real_detect_language = handlers.detect_language

    def first_submission_commits_meanwhile(text):
        if not raced:
            raced.append(True)
            first.update(submit(rival, clock, policy["policy_id"], idempotency_key="race-1", text="先到的意见"))
        return real_detect_language(text)

    monkeypatch.setattr(handlers, "detect_language", first_submission_commits_meanwhile)
    retry = submit(uow, clock, policy["policy_id"], idempotency_key="race-1", text="先到的意见")
    assert first and retry == first
    with uow:
        assert uow.session.scalars(select(Comment.id)).all() == [first["comment_id"]]
        assert uow.session.query(CommentTransition).count() == 1
        assert uow.session.query(SubmissionAttempt).count() == 1  # the retry's attempt rolled back with it
    assert [event["comment_id"] for event in outbox(uow, "comment_submitted")] == [first["comment_id"]]


def test_a_regular_commenter_s_recent_submissions_do_not_use_up_comment_ids(uow, clock, policy):
    token = new_token()
    ids = []
    for _ in range(4):  # each submission finds the earlier ones among the token's recent attempts
        ids.append(submit(uow, clock, policy["policy_id"], voter_token=token)["comment_id"])
        clock.advance(seconds=4)
    assert ids == list(range(ids[0], ids[0] + 4))


def test_the_same_idempotency_key_on_another_policy_is_a_new_comment(uow, clock, policy):
    other = make_open_policy(uow, clock)
    a = submit(uow, clock, policy["policy_id"], idempotency_key="k")
    b = submit(uow, clock, other["policy_id"], idempotency_key="k")
    assert a["comment_id"] != b["comment_id"]


def test_contact_lives_in_its_own_table_and_personal_data_is_redacted_from_public_text(uow, clock, policy):
    receipt = submit(uow, clock, policy["policy_id"], text="请致电13812345678或写信 zhang@example.com",
                     display_name="张三 13812345678", contact="wang@example.org", contact_consent=True)
    with uow:
        comment = uow.session.get(Comment, receipt["comment_id"])
        assert "13812345678" in comment.original_text
        assert "13812345678" not in comment.public_text and "zhang@example.com" not in comment.public_text
        assert "13812345678" not in comment.display_name
        assert comment.flags == ["personal_data"] and comment.flagged
        contact = uow.session.scalar(select(CommentContact))
        assert (contact.kind, contact.value, contact.consent) == ("email", "wang@example.org", True)


def test_the_same_text_twice_is_flagged_as_duplicate(uow, clock, policy):
    submit(uow, clock, policy["policy_id"], text="坚决反对 本条")
    second = submit(uow, clock, policy["policy_id"], text="坚决反对本条")
    with uow:
        assert uow.session.get(Comment, second["comment_id"]).flags == ["duplicate"]


def test_the_same_text_on_another_policy_is_not_a_duplicate(uow, clock, policy):
    other = make_open_policy(uow, clock)
    submit(uow, clock, policy["policy_id"], text="坚决反对本条")
    receipt = submit(uow, clock, other["policy_id"], text="坚决反对本条")
    with uow:
        assert uow.session.get(Comment, receipt["comment_id"]).flags == []


def test_the_stored_comment_its_first_transition_and_its_event_agree_with_the_receipt(uow, clock, policy):
    receipt = submit(uow, clock, policy["policy_id"], clause_number=2, stance="oppose", text=" 建议删除本条。 ",
                     display_name="老王", client_ip="198.51.100.7", channel="widget", site_key="site-1",
                     source_url="https://news.example/a")
    with uow:
        comment = uow.session.get(Comment, receipt["comment_id"])
        clause = uow.session.get(Clause, comment.clause_id)
        transitions = uow.session.scalars(select(CommentTransition).where(CommentTransition.comment_id == comment.id))
        assert [(t.from_state, t.to_state, t.at) for t in transitions] == [(None, "pending", clock())]
        attempts = uow.session.scalars(select(SubmissionAttempt.subject_hash)).all()
        assert comment.submitter_hash in attempts and len(attempts) == 2  # the token and the address
        assert (comment.reference, comment.policy_id, comment.version_number, comment.clause_number,
                comment.state) == (receipt["reference"], policy["policy_id"], 1, 2, "pending")
        assert (clause.policy_id, clause.number) == (policy["policy_id"], 2)
        assert (comment.original_text, comment.public_text, comment.display_name) == ("建议删除本条。",) * 2 + ("老王",)
        assert (comment.channel, comment.site_key, comment.source_url) == ("widget", "site-1", "https://news.example/a")
        assert comment.created_at == receipt["created_at"] == clock()
        assert comment.support_count == 0 and comment.flags == [] and not comment.flagged
    event = outbox(uow, "comment_submitted")[0]
    assert {k: event[k] for k in ("comment_id", "reference", "clause_number", "stance", "status", "channel")} == {
        "comment_id": receipt["comment_id"], "reference": receipt["reference"], "clause_number": 2, "stance": "oppose",
        "status": "pending", "channel": "widget"}


def test_link_spam_is_flagged(uow, clock, policy):
    receipt = submit(uow, clock, policy["policy_id"], text="看这里 http://a.example http://b.example www.c.example")
    with uow:
        assert "spam" in uow.session.get(Comment, receipt["comment_id"]).flags


def test_a_second_comment_from_the_same_address_within_three_seconds_is_rate_limited(uow, clock, policy):
    submit(uow, clock, policy["policy_id"], client_ip="203.0.113.7")
    clock.advance(seconds=1)
    with pytest.raises(RateLimited) as caught:
        submit(uow, clock, policy["policy_id"], client_ip="203.0.113.7")
    assert caught.value.retry_after_s == 2
    clock.advance(seconds=2)
    submit(uow, clock, policy["policy_id"], client_ip="203.0.113.7")


def test_public_comments_show_only_approved_redacted_text_with_replies(uow, clock, policy):
    pid = policy["policy_id"]
    shown = submit(uow, clock, pid, text="电话13812345678，支持", stance="support", clause_number=1)
    submit(uow, clock, pid, text="还在审核")
    approve(uow, clock, shown["comment_id"])
    handlers.post_reply(uow, c.PostReply(shown["comment_id"], "感谢您的意见。"), actor=OFFICER, clock=clock)
    page = handlers.list_public_comments(uow, c.ListPublicComments(pid), clock=clock)
    assert page["total"] == 1
    [item] = page["items"]
    assert item["text"] == "电话[手机号已隐去]，支持"
    assert [r["text"] for r in item["replies"]] == ["感谢您的意见。"]
    assert item["replies"][0]["author_name"] == "市教育局"
    assert "contact" not in item and "original_text" not in item


def test_public_comments_filter_by_clause_and_order_by_support(uow, clock, policy):
    pid = policy["policy_id"]
    ids = [submit(uow, clock, pid, text=f"意见{n}", clause_number=1)["comment_id"] for n in range(3)]
    for comment_id in ids:
        approve(uow, clock, comment_id)
        clock.advance(minutes=1)
    for _ in range(2):
        handlers.endorse_comment(uow, c.EndorseComment(ids[0], new_token()), clock=clock)
    token = new_token()
    handlers.endorse_comment(uow, c.EndorseComment(ids[1], token), clock=clock)
    assert handlers.endorse_comment(uow, c.EndorseComment(ids[1], token), clock=clock)["support_count"] == 1
    newest = handlers.list_public_comments(uow, c.ListPublicComments(pid, clause_number=1), clock=clock)
    assert [i["comment_id"] for i in newest["items"]] == ids[::-1]
    supported = handlers.list_public_comments(uow, c.ListPublicComments(pid, order="most_supported"), clock=clock)
    assert [i["comment_id"] for i in supported["items"]] == [ids[0], ids[1], ids[2]]
    assert handlers.list_public_comments(uow, c.ListPublicComments(pid, clause_number=2), clock=clock)["total"] == 0


def test_pending_comments_cannot_be_endorsed(uow, clock, policy):
    receipt = submit(uow, clock, policy["policy_id"])
    with pytest.raises(NotFound):
        handlers.endorse_comment(uow, c.EndorseComment(receipt["comment_id"], new_token()), clock=clock)


def test_get_policy_counts_approved_comments_per_clause(uow, clock, policy):
    pid = policy["policy_id"]
    for clause in (1, 1, 2, None):
        approve(uow, clock, submit(uow, clock, pid, clause_number=clause)["comment_id"])
    submit(uow, clock, pid, clause_number=3)  # pending: not counted
    detail = handlers.get_policy(uow, c.GetPolicy(pid), clock=clock)
    assert [cl["comment_count"] for cl in detail["clauses"]] == [2, 1, 0]
    assert detail["comment_count"] == 4


def test_a_nul_character_in_the_text_is_a_field_error(uow, clock, policy):
    with pytest.raises(ValidationFailed) as caught:
        submit(uow, clock, policy["policy_id"], text="坏\x00字符")
    assert caught.value.errors == {"text": "field.invalid"}


def test_an_out_of_range_policy_id_is_not_found(uow, clock):
    with pytest.raises(NotFound):
        submit(uow, clock, 2**40)


def test_the_comment_language_is_detected_when_not_given(uow, clock, policy):
    receipt = submit(uow, clock, policy["policy_id"], text="Please extend the deadline for small schools.")
    with uow:
        assert uow.session.get(Comment, receipt["comment_id"]).language == "en"
