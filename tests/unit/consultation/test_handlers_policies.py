import datetime as dt

import pytest

from consultation import commands as c
from consultation import handlers
from consultation.exceptions import Forbidden, InvalidTransition, NotFound, Unauthenticated, ValidationFailed

from .factories import DRAFT_TEXT, EDITOR, OFFICER, make_open_policy, make_policy, outbox, submit

DAY = dt.timedelta(days=1)


def test_a_draft_pasted_as_text_keeps_preamble_chapters_and_clauses(uow, clock):
    policy = make_policy(uow, clock)
    assert policy["state"] == "draft"
    assert policy["version"] == 1
    assert policy["preamble"].startswith("关于加强校外培训管理的办法")
    assert [ch["title"] for ch in policy["chapters"]] == ["总则", "管理"]
    assert [(cl["number"], cl["label"], cl["chapter"]) for cl in policy["clauses"]] == [
        (1, "第一条", "第一章 总则"), (2, "第二条", "第一章 总则"), (3, "第三条", "第二章 管理")]
    assert policy["language"] == "zh"
    assert policy["time_zone"] == "Asia/Shanghai"


def test_a_draft_can_be_given_as_an_explicit_clause_list_with_default_labels(uow, clock):
    clauses = (c.ClauseInput(1, "First rule."), c.ClauseInput(2, "Second rule.", label="Section 2"))
    policy = make_policy(uow, clock, text=None, clauses=clauses, language="en")
    assert [(cl["label"], cl["text"]) for cl in policy["clauses"]] == [("Article 1", "First rule."),
                                                                      ("Section 2", "Second rule.")]


def test_a_draft_without_numbered_clauses_becomes_one_clause_with_a_warning_for_staff(uow, clock):
    policy = make_policy(uow, clock, text="只有一段没有条款编号的文字。")
    assert [cl["text"] for cl in policy["clauses"]] == ["只有一段没有条款编号的文字。"]
    assert [w["code"] for w in policy["parse_warnings"]] == ["no_clauses"]


def test_blank_draft_text_is_a_field_error(uow, clock):
    with pytest.raises(ValidationFailed) as caught:
        make_policy(uow, clock, text="  \n ")
    assert caught.value.errors == {"text": "draft.no_clauses"}


def test_giving_both_text_and_clauses_is_a_field_error(uow, clock):
    with pytest.raises(ValidationFailed) as caught:
        make_policy(uow, clock, clauses=(c.ClauseInput(1, "x"),))
    assert caught.value.errors == {"text": "draft.text_or_clauses"}


def test_duplicate_clause_numbers_in_a_list_are_reported_per_clause(uow, clock):
    clauses = (c.ClauseInput(1, "a"), c.ClauseInput(1, "b"))
    with pytest.raises(ValidationFailed) as caught:
        make_policy(uow, clock, text=None, clauses=clauses)
    assert caught.value.errors == {"clauses": {"1": {"number": "draft.duplicate_clause_number"}}}


def test_bad_policy_fields_are_all_reported_at_once(uow, clock):
    with pytest.raises(ValidationFailed) as caught:
        make_policy(uow, clock, title="", department="", time_zone="Nowhere/City")
    assert set(caught.value.errors) == {"title", "department", "time_zone"}


def test_only_policy_officers_and_admins_create_policies(uow, clock):
    with pytest.raises(Forbidden):
        make_policy(uow, clock, actor=EDITOR)
    with pytest.raises(Unauthenticated):
        make_policy(uow, clock, actor=None)


def test_drafts_are_invisible_to_the_public_but_visible_to_staff(uow, clock):
    policy = make_policy(uow, clock)
    with pytest.raises(NotFound):
        handlers.get_policy(uow, c.GetPolicy(policy["policy_id"]), clock=clock)
    assert handlers.get_policy(uow, c.GetPolicy(policy["policy_id"]), actor=OFFICER, clock=clock)["state"] == "draft"
    assert handlers.list_policies(uow, c.ListPolicies(), clock=clock)["total"] == 0


def test_revising_creates_a_new_version_and_keeps_the_old_clauses(uow, clock):
    policy = make_policy(uow, clock)
    revised = handlers.revise_draft(
        uow, c.ReviseDraft(policy["policy_id"], text=DRAFT_TEXT.replace("法定节假日", "工作日晚间"), change_note="收紧时间"),
        actor=OFFICER, clock=clock,
    )
    assert revised["version"] == 2
    assert [v["number"] for v in revised["versions"]] == [1, 2]
    old = handlers.get_policy(uow, c.GetPolicy(policy["policy_id"], version=1), actor=OFFICER, clock=clock)
    assert "法定节假日" in old["clauses"][2]["text"]
    assert "工作日晚间" in revised["clauses"][2]["text"]


def test_diff_between_versions_reports_changed_and_added_clauses(uow, clock):
    policy = make_policy(uow, clock)
    handlers.revise_draft(
        uow,
        c.ReviseDraft(policy["policy_id"], text=DRAFT_TEXT.replace("法定节假日", "工作日晚间")
                      + "第四条 本办法自2027年1月1日起施行。\n"),
        actor=OFFICER, clock=clock,
    )
    diff = handlers.diff_versions(uow, c.DiffVersions(policy["policy_id"], 1, 2), actor=OFFICER, clock=clock)
    kinds = {(ch["kind"], ch["old_number"], ch["new_number"]) for ch in diff["changes"]}
    assert ("changed", 3, 3) in kinds
    assert ("added", None, 4) in kinds
    changed = next(ch for ch in diff["changes"] if ch["kind"] == "changed")
    assert {"op": "insert", "text": "工作日晚间"} in changed["text_diff"] or any(
        seg["op"] == "insert" for seg in changed["text_diff"])


def test_scheduling_publishes_the_policy_and_the_timer_opens_and_closes_it(uow, clock):
    policy = make_policy(uow, clock)
    pid = policy["policy_id"]
    scheduled = handlers.schedule_policy(
        uow, c.SchedulePolicy(pid, clock() + DAY, clock() + 10 * DAY), actor=OFFICER, clock=clock)
    assert scheduled["state"] == "scheduled"
    assert handlers.advance_due(uow, clock()) == []
    assert handlers.advance_due(uow, clock.advance(days=1)) == [{"policy_id": pid, "action": "open", "state": "open"}]
    assert handlers.advance_due(uow, clock.advance(days=10)) == [
        {"policy_id": pid, "action": "close", "state": "closed"}]
    assert [e["type"] for e in outbox(uow)] == ["policy_published", "consultation_opened", "consultation_closed"]


def test_a_late_timer_opens_and_closes_in_one_run(uow, clock):
    pid = make_policy(uow, clock)["policy_id"]
    handlers.schedule_policy(uow, c.SchedulePolicy(pid, clock() + DAY, clock() + 2 * DAY), actor=OFFICER, clock=clock)
    done = handlers.advance_due(uow, clock.advance(days=3))
    assert [d["action"] for d in done] == ["open", "close"]


def test_scheduling_with_an_opening_time_in_the_past_opens_at_once(uow, clock):
    pid = make_policy(uow, clock)["policy_id"]
    result = handlers.schedule_policy(
        uow, c.SchedulePolicy(pid, clock() - DAY, clock() + DAY), actor=OFFICER, clock=clock)
    assert result["state"] == "open"
    assert result["accepting_comments"] is True


def test_a_schedule_closing_before_it_opens_is_a_field_error(uow, clock):
    pid = make_policy(uow, clock)["policy_id"]
    with pytest.raises(ValidationFailed) as caught:
        handlers.schedule_policy(uow, c.SchedulePolicy(pid, clock() + 2 * DAY, clock() + DAY), actor=OFFICER,
                                 clock=clock)
    assert caught.value.errors == {"close_at": "window.close_before_open"}


def test_closing_early_moves_close_at_to_now_and_emits_consultation_closed(uow, clock):
    policy = make_open_policy(uow, clock)
    clock.advance(days=2)
    closed = handlers.close_consultation(uow, c.CloseConsultation(policy["policy_id"]), actor=OFFICER, clock=clock)
    assert closed["state"] == "closed"
    assert closed["close_at"] == clock()
    assert outbox(uow, "consultation_closed")[0]["close_at"] == clock().isoformat()


def test_a_closed_consultation_cannot_be_withdrawn_or_reopened(uow, clock):
    pid = make_open_policy(uow, clock)["policy_id"]
    handlers.close_consultation(uow, c.CloseConsultation(pid), actor=OFFICER, clock=clock)
    with pytest.raises(InvalidTransition):
        handlers.withdraw_policy(uow, c.WithdrawPolicy(pid), actor=OFFICER, clock=clock)
    with pytest.raises(InvalidTransition):
        handlers.open_consultation(uow, c.OpenConsultation(pid, clock() + DAY), actor=OFFICER, clock=clock)


def test_withdrawing_an_open_consultation_announces_the_new_state(uow, clock):
    pid = make_open_policy(uow, clock)["policy_id"]
    handlers.withdraw_policy(uow, c.WithdrawPolicy(pid, "政策调整"), actor=OFFICER, clock=clock)
    assert outbox(uow, "policy_updated")[-1]["state"] == "withdrawn"


def test_editing_details_of_a_published_policy_emits_policy_updated(uow, clock):
    pid = make_open_policy(uow, clock)["policy_id"]
    handlers.update_policy_details(uow, c.UpdatePolicyDetails(pid, title="新标题", topics=("教育", "培训")),
                                   actor=OFFICER, clock=clock)
    event = outbox(uow, "policy_updated")[-1]
    assert (event["title"], event["topics"]) == ("新标题", ["教育", "培训"])


def test_list_policies_filters_by_state_department_and_topic_and_pages(uow, clock):
    for n in range(3):
        make_open_policy(uow, clock, title=f"教育政策{n}", topics=("教育",))
        clock.advance(minutes=1)
    make_open_policy(uow, clock, title="住房政策", department="市住建局", topics=("住房", "民生"))
    make_policy(uow, clock, title="未发布")
    everything = handlers.list_policies(uow, c.ListPolicies(), clock=clock)
    assert everything["total"] == 4
    assert everything["items"][0]["title"] == "住房政策"  # newest first
    assert [p["title"] for p in handlers.list_policies(uow, c.ListPolicies(topic="民生"), clock=clock)["items"]] == [
        "住房政策"]
    assert handlers.list_policies(uow, c.ListPolicies(department="市教育局"), clock=clock)["total"] == 3
    page2 = handlers.list_policies(uow, c.ListPolicies(topic="教育", page=2, page_size=2), clock=clock)
    assert [p["title"] for p in page2["items"]] == ["教育政策0"]
    assert handlers.list_policies(uow, c.ListPolicies(state="draft"), actor=OFFICER, clock=clock)["total"] == 1


def test_unknown_state_filter_is_a_field_error(uow, clock):
    with pytest.raises(ValidationFailed):
        handlers.list_policies(uow, c.ListPolicies(state="bogus"), clock=clock)


def test_staff_policy_list_counts_pending_comments_and_the_public_list_does_not(uow, clock):
    policy = make_open_policy(uow, clock)
    submit(uow, clock, policy["policy_id"])
    staff_item = handlers.list_policies(uow, actor=OFFICER, clock=clock)["items"][0]
    public_item = handlers.list_policies(uow, clock=clock)["items"][0]
    assert staff_item["pending_count"] == 1 and staff_item["comment_count"] == 0
    assert "pending_count" not in public_item
