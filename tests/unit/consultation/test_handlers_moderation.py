import pytest
from sqlalchemy import select

from consultation import commands as c
from consultation import handlers
from consultation.exceptions import Conflict, Forbidden, InvalidTransition, NotFound, ValidationFailed
from consultation.model import AuditEntry

from .factories import ADMIN, EDITOR, MODERATOR, OFFICER, approve, make_open_policy, outbox, submit


@pytest.fixture
def policy(uow, clock):
    return make_open_policy(uow, clock)


def moderate(uow, clock, comment_id, action, reason=None, note=None, actor=MODERATOR):
    return handlers.moderate_comment(uow, c.ModerateComment(comment_id, action, reason, note), actor=actor, clock=clock)


def test_approving_records_the_transition_and_announces_the_public_text(uow, clock, policy):
    receipt = submit(uow, clock, policy["policy_id"], text="支持，电话13812345678", display_name="李四")
    result = approve(uow, clock, receipt["comment_id"])
    assert result["state"] == "approved"
    event = outbox(uow, "comment_moderated")[-1]
    assert (event["status"], event["text"], event["display_name"]) == ("approved", "支持，电话[手机号已隐去]", "李四")
    history = handlers.comment_history(uow, c.GetCommentHistory(receipt["comment_id"]), actor=MODERATOR, clock=clock)
    assert [(t["from_state"], t["to_state"], t["actor_username"]) for t in history["transitions"]] == [
        (None, "pending", None), ("pending", "approved", "moderator")]


def test_rejecting_needs_a_reason_code_and_keeps_the_text_out_of_the_event(uow, clock, policy):
    receipt = submit(uow, clock, policy["policy_id"])
    with pytest.raises(ValidationFailed) as caught:
        moderate(uow, clock, receipt["comment_id"], "reject")
    assert caught.value.errors == {"reason_code": "moderation.reason_required"}
    moderate(uow, clock, receipt["comment_id"], "reject", "off_topic", "与本政策无关")
    event = outbox(uow, "comment_moderated")[-1]
    assert (event["status"], event["reason_code"], event["text"], event["display_name"]) == (
        "rejected", "off_topic", None, None)
    history = handlers.comment_history(uow, c.GetCommentHistory(receipt["comment_id"]), actor=MODERATOR, clock=clock)
    assert history["transitions"][-1]["note"] == "与本政策无关"


def test_an_approved_comment_can_later_be_hidden_but_never_returns_to_pending(uow, clock, policy):
    receipt = submit(uow, clock, policy["policy_id"])
    approve(uow, clock, receipt["comment_id"])
    assert moderate(uow, clock, receipt["comment_id"], "hide")["state"] == "hidden"
    with pytest.raises(InvalidTransition):
        moderate(uow, clock, receipt["comment_id"], "hide")


def test_only_moderators_and_admins_moderate(uow, clock, policy):
    receipt = submit(uow, clock, policy["policy_id"])
    with pytest.raises(Forbidden):
        moderate(uow, clock, receipt["comment_id"], "approve", actor=EDITOR)
    assert moderate(uow, clock, receipt["comment_id"], "approve", actor=ADMIN)["state"] == "approved"


def test_moderating_a_missing_comment_is_not_found(uow, clock, policy):
    with pytest.raises(NotFound):
        moderate(uow, clock, 999, "approve")


def test_bulk_actions_record_each_comment_and_report_failures_per_id(uow, clock, policy):
    ids = [submit(uow, clock, policy["policy_id"], text=f"垃圾{n}")["comment_id"] for n in range(3)]
    approve(uow, clock, ids[2])
    moderate(uow, clock, ids[2], "reject", "spam")
    result = handlers.bulk_moderate(uow, c.BulkModerate((*ids, 2**40), "reject", "spam"), actor=MODERATOR, clock=clock)
    assert [(r["comment_id"], r["ok"], r["error"]) for r in result["results"]] == [
        (ids[0], True, None), (ids[1], True, None), (ids[2], False, "invalid_transition"), (2**40, False, "not_found")]
    assert (result["succeeded"], result["failed"]) == (2, 2)
    assert len(outbox(uow, "comment_moderated")) == 4
    with uow:
        audited = uow.session.scalars(select(AuditEntry.object_id).where(AuditEntry.action == "comment.reject")).all()
    assert sorted(audited) == sorted(str(i) for i in (ids[2], ids[0], ids[1]))


def test_the_pending_queue_pages_oldest_first_with_a_stable_cursor(uow, clock, policy):
    ids = []
    for n in range(5):
        ids.append(submit(uow, clock, policy["policy_id"], text=f"意见{n}")["comment_id"])
        if n != 2:  # two comments share a timestamp: the id breaks the tie
            clock.advance(seconds=5)
    first = handlers.list_moderation_queue(uow, c.ListModerationQueue(limit=2), actor=MODERATOR, clock=clock)
    approve(uow, clock, ids[0])  # moderating between pages must not skip anything
    second = handlers.list_moderation_queue(uow, c.ListModerationQueue(limit=2, cursor=first["next_cursor"]),
                                            actor=MODERATOR, clock=clock)
    third = handlers.list_moderation_queue(uow, c.ListModerationQueue(limit=2, cursor=second["next_cursor"]),
                                           actor=MODERATOR, clock=clock)
    seen = [i["comment_id"] for page in (first, second, third) for i in page["items"]]
    assert seen == ids
    assert third["next_cursor"] is None


def test_the_flagged_queue_holds_pending_comments_with_personal_data_or_duplicates(uow, clock, policy):
    pid = policy["policy_id"]
    clean = submit(uow, clock, pid, text="干净的意见")
    personal = submit(uow, clock, pid, text="我的手机13812345678")
    duplicate = submit(uow, clock, pid, text="干净的意见")
    flagged = handlers.list_moderation_queue(uow, c.ListModerationQueue(queue="flagged"), actor=MODERATOR, clock=clock)
    assert [i["comment_id"] for i in flagged["items"]] == [personal["comment_id"], duplicate["comment_id"]]
    assert flagged["items"][0]["flags"] == ["personal_data"]
    assert clean["comment_id"] not in [i["comment_id"] for i in flagged["items"]]


def test_queue_filters_by_policy_clause_stance_channel_state_and_dates(uow, clock, policy):
    other = make_open_policy(uow, clock)
    a = submit(uow, clock, policy["policy_id"], clause_number=1, stance="support", channel="api")
    clock.advance(hours=1)
    b = submit(uow, clock, policy["policy_id"], clause_number=2, stance="oppose")
    submit(uow, clock, other["policy_id"])
    approve(uow, clock, b["comment_id"])

    def ids(**filters):
        page = handlers.list_moderation_queue(uow, c.ListModerationQueue(**filters), actor=MODERATOR, clock=clock)
        return [i["comment_id"] for i in page["items"]]

    assert ids(policy_id=policy["policy_id"]) == [a["comment_id"]]
    assert ids(queue="all", policy_id=policy["policy_id"]) == [b["comment_id"], a["comment_id"]]
    assert ids(queue="all", clause_number=2) == [b["comment_id"]]
    assert ids(queue="all", stance="support") == [a["comment_id"]]
    assert ids(queue="all", channel="api") == [a["comment_id"]]
    assert ids(queue="all", state="approved") == [b["comment_id"]]
    half_way = a["created_at"] + (b["created_at"] - a["created_at"]) / 2
    assert ids(queue="all", policy_id=policy["policy_id"], since=half_way) == [b["comment_id"]]
    assert ids(queue="all", policy_id=policy["policy_id"], until=b["created_at"]) == [a["comment_id"]]


def test_a_tampered_cursor_is_a_field_error(uow, clock, policy):
    with pytest.raises(ValidationFailed) as caught:
        handlers.list_moderation_queue(uow, c.ListModerationQueue(cursor="!!notacursor"), actor=MODERATOR, clock=clock)
    assert caught.value.errors == {"cursor": "field.cursor"}


def test_queue_items_never_carry_contact_or_original_text(uow, clock, policy):
    submit(uow, clock, policy["policy_id"], text="电话13812345678", contact="13900001111", contact_consent=True)
    [item] = handlers.list_moderation_queue(uow, c.ListModerationQueue(), actor=MODERATOR, clock=clock)["items"]
    assert item["has_contact"] is True
    assert "13812345678" not in str(item) and "13900001111" not in str(item)


def test_the_original_text_and_contact_are_shown_to_moderators_and_every_view_is_audited(uow, clock, policy):
    receipt = submit(uow, clock, policy["policy_id"], text="电话13812345678", contact="13900001111",
                     contact_consent=True)
    with pytest.raises(Forbidden):
        handlers.view_comment_original(uow, c.ViewCommentOriginal(receipt["comment_id"]), actor=OFFICER, clock=clock)
    original = handlers.view_comment_original(uow, c.ViewCommentOriginal(receipt["comment_id"]), actor=MODERATOR,
                                              clock=clock)
    assert original["original_text"] == "电话13812345678"
    assert original["contact"] == {"kind": "phone", "value": "13900001111", "consent": True}
    with uow:
        entry = uow.session.scalar(select(AuditEntry).where(AuditEntry.action == "comment.view_original"))
        assert (entry.actor_username, entry.object_id) == ("moderator", str(receipt["comment_id"]))
        assert "13900001111" not in str(entry.detail)


def test_replies_are_posted_by_policy_officers_and_marked_public_only_for_approved_comments(uow, clock, policy):
    receipt = submit(uow, clock, policy["policy_id"], clause_number=3)
    with pytest.raises(Forbidden):
        handlers.post_reply(uow, c.PostReply(receipt["comment_id"], "答复"), actor=MODERATOR, clock=clock)
    reply = handlers.post_reply(uow, c.PostReply(receipt["comment_id"], "答复", author_name="市教育局政策法规处"),
                                actor=OFFICER, clock=clock)
    assert reply["public"] is False
    event = outbox(uow, "reply_posted")[-1]
    assert (event["comment_public"], event["clause_number"], event["author_name"]) == (False, 3, "市教育局政策法规处")
    approve(uow, clock, receipt["comment_id"])
    assert [r["text"] for r in outbox(uow, "comment_moderated")[-1]["replies"]] == ["答复"]


def test_rejected_comments_get_no_reply(uow, clock, policy):
    receipt = submit(uow, clock, policy["policy_id"])
    moderate(uow, clock, receipt["comment_id"], "reject", "abuse")
    with pytest.raises(Conflict):
        handlers.post_reply(uow, c.PostReply(receipt["comment_id"], "答复"), actor=OFFICER, clock=clock)
