"""The consultation service as it runs: RPC calls over the real RabbitMQ broker into a nameko container, and the events
it relays from its outbox, consumed by a recorder service. One or more tests per numbered item of the issue's Domain
section; the main flows run on SQLite and on the real PostgreSQL server (fixture `database_url`)."""
import datetime as dt
import itertools
import json
import time
import uuid

import eventlet
import pytest
from nameko.events import event_handler
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ServiceRpcProxy

from consultation import events as ev
from consultation.exceptions import InvalidTransition, NotFound, RateLimited, ValidationFailed, WindowClosed
from services.consultation_service import ConsultationService
from services.gateway.errors import register_remote_exceptions
from services.migrations import upgrade

pytestmark = pytest.mark.rabbit

# RPC errors come back as their domain types, exactly as the gateway sees them.
register_remote_exceptions()

OFFICER = {"user_id": 11, "username": "officer", "roles": ["policy_officer"]}
MODERATOR = {"user_id": 12, "username": "moderator", "roles": ["moderator"]}
EDITOR = {"user_id": 13, "username": "editor", "roles": ["editor"]}
ADMIN = {"user_id": 14, "username": "admin", "roles": ["admin"]}

ZH_DRAFT = """关于完善城市停车管理的办法（征求意见稿）
为缓解停车难，现公开征求意见。
第一章　总则
第一条　为规范本市停车管理，制定本办法。
第二条　本办法适用于本市城区道路停车泊位。
第二章　收费
第三条　路内停车实行差异化收费。
"""
ZH_DRAFT_V2 = """关于完善城市停车管理的办法（征求意见稿）
为缓解停车难，现公开征求意见。
第一章　总则
第一条　为规范本市停车管理，保障道路通行，制定本办法。
第二条　本办法适用于本市城区道路停车泊位。
第二章　收费
第三条　路内停车实行差异化收费。
第四条　夜间停车免费。
"""
EN_DRAFT = "Preamble for the cycling lanes draft.\n1. Purpose\nSafer lanes.\n2. Scope\nAll arterial roads.\n"

PHONE, EMAIL, ID_NUMBER = "13912345678", "citizen.zhang@example.cn", "11010519491231002X"

EVENT_TYPES = (ev.POLICY_PUBLISHED, ev.POLICY_UPDATED, ev.CONSULTATION_OPENED, ev.CONSULTATION_CLOSED,
               ev.COMMENT_SUBMITTED, ev.COMMENT_MODERATED, ev.REPLY_POSTED, ev.EXPLANATION_PUBLISHED,
               ev.LINK_CONFIRMED, ev.REPORT_PUBLISHED)

received: list[tuple[str, dict]] = []


class EventRecorder:
    """Stands in for every consumer of consultation events (search, insight): records what arrives."""

    name = "consultation_event_recorder"


def _recorder(event_type):
    def record(self, payload):
        received.append((event_type, payload))

    record.__name__ = f"on_{event_type}"
    return event_handler("consultation", event_type)(record)


for _event_type in EVENT_TYPES:
    setattr(EventRecorder, f"on_{_event_type}", _recorder(_event_type))

_submitters = itertools.count(1)


def submitter() -> dict:
    """A distinct voter token and client address, so the 1-per-3-s rate limit does not mix up unrelated tests."""
    n = next(_submitters)
    return {"voter_token": f"token-{uuid.uuid4().hex}", "client_ip": f"10.9.{n // 250}.{n % 250 + 1}"}


def start_service(container_factory, rabbit_config, database_url):
    upgrade("consultation", database_url)
    config = {**rabbit_config, "DATABASES": {"consultation": database_url}, "OUTBOX_RELAY_INTERVAL": 0.2,
              "EVENT_RETRY_DELAYS": [0.2, 0.2], "CONSULTATION": {"hash_secret": "integration-test-secret"}}
    received.clear()
    container_factory(EventRecorder, config).start()
    container_factory(ConsultationService, config).start()
    return config


@pytest.fixture
def service_config(container_factory, rabbit_config, tmp_path):
    return start_service(container_factory, rabbit_config, f"sqlite:///{tmp_path / 'consultation.sqlite3'}")


@pytest.fixture
def consultation(service_config):
    """An RPC proxy to the service on SQLite."""
    with ServiceRpcProxy("consultation", service_config, timeout=15) as proxy:
        yield proxy


@pytest.fixture
def config_on_each_database(container_factory, rabbit_config, database_url):
    return start_service(container_factory, rabbit_config, database_url)


@pytest.fixture
def consultation_on_each_database(config_on_each_database):
    """An RPC proxy to the service on SQLite, then on the real PostgreSQL server."""
    with ServiceRpcProxy("consultation", config_on_each_database, timeout=15) as proxy:
        yield proxy


def wait_for_events(event_type, count=1, seconds=10.0, **match) -> list[dict]:
    """Payloads of `event_type` matching `match`, once at least `count` of them have arrived."""

    def matching():
        return [p for t, p in received if t == event_type and all(p.get(k) == v for k, v in match.items())]

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and len(matching()) < count:
        eventlet.sleep(0.05)
    found = matching()
    assert len(found) >= count, f"expected {count} {event_type} {match}; received {[t for t, _ in received]}"
    return found


def later(**delta) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(**delta)).isoformat()


def open_policy(consultation, text=ZH_DRAFT, **overrides) -> dict:
    created = consultation.create_policy({"title": "城市停车管理办法", "department": "市交通运输局", "text": text,
                                          **overrides}, OFFICER)
    return consultation.open_consultation({"policy_id": created["policy_id"], "close_at": later(days=20)}, OFFICER)


def submit(consultation, policy_id, **overrides) -> dict:
    return consultation.submit_comment({"policy_id": policy_id, "text": "建议增加夜间泊位。", "stance": "suggestion",
                                        "channel": "api", **submitter(), **overrides})


# --- 1. draft policy ---------------------------------------------------------------------------------------------


def test_pasted_chinese_draft_is_split_into_chapters_and_clauses_and_published_on_open(
        consultation_on_each_database):
    consultation = consultation_on_each_database
    created = consultation.create_policy({"title": "城市停车管理办法", "department": "市交通运输局",
                                          "topics": ["交通"], "text": ZH_DRAFT}, OFFICER)
    assert created["state"] == "draft" and created["time_zone"] == "Asia/Shanghai"
    assert [c["number"] for c in created["clauses"]] == [1, 2, 3]
    assert created["clauses"][2]["chapter"].startswith("第二章")
    assert "缓解停车难" in created["preamble"]
    assert received == []  # a draft is not public yet
    consultation.open_consultation({"policy_id": created["policy_id"], "close_at": later(days=20)}, OFFICER)
    published = wait_for_events(ev.POLICY_PUBLISHED, policy_id=created["policy_id"])[0]
    assert [c["number"] for c in published["clauses"]] == [1, 2, 3] and published["schema_version"] >= 1
    wait_for_events(ev.CONSULTATION_OPENED, policy_id=created["policy_id"])


def test_english_draft_is_split_on_numbered_sections(consultation):
    created = consultation.create_policy({"title": "Cycling lanes", "department": "Transport", "text": EN_DRAFT},
                                         OFFICER)
    assert created["language"] == "en"
    assert [c["number"] for c in created["clauses"]] == [1, 2]


def test_creating_a_draft_without_a_title_lists_the_bad_fields(consultation):
    with pytest.raises(ValidationFailed) as raised:
        consultation.create_policy({"title": "", "text": ZH_DRAFT}, OFFICER)
    assert {"title", "department"} <= set(raised.value.errors)


def test_unknown_policy_is_not_found(consultation):
    with pytest.raises(NotFound):
        consultation.get_policy({"policy_id": 987654}, None)


# --- 2. versions -------------------------------------------------------------------------------------------------


def test_revised_draft_keeps_both_versions_and_the_diff_names_each_clause_change(consultation_on_each_database):
    consultation = consultation_on_each_database
    policy = open_policy(consultation)
    revised = consultation.revise_draft({"policy_id": policy["policy_id"], "text": ZH_DRAFT_V2,
                                         "change_note": "增加夜间免费条款"}, OFFICER)
    assert revised["current_version"] == 2
    first = consultation.get_policy({"policy_id": policy["policy_id"], "version": 1}, None)
    assert len(first["clauses"]) == 3
    diff = consultation.diff_versions({"policy_id": policy["policy_id"], "v_from": 1, "v_to": 2}, None)
    kinds = {change["new_number"] or change["old_number"]: change["kind"] for change in diff["changes"]}
    assert kinds[1] == "changed" and kinds[4] == "added" and kinds.get(2) in (None, "unchanged")
    changed = next(change for change in diff["changes"] if change["kind"] == "changed")
    assert any(segment["op"] == "insert" and "保障道路通行" in segment["text"] for segment in changed["text_diff"])
    updated = wait_for_events(ev.POLICY_UPDATED, policy_id=policy["policy_id"])[-1]
    assert updated["version"] == 2 and len(updated["clauses"]) == 4


# --- 3. consultation window ----------------------------------------------------------------------------------------


def test_scheduled_window_opens_and_closes_by_the_timer_and_late_comments_hear_when_it_closed(consultation):
    created = consultation.create_policy({"title": "城市停车管理办法", "department": "市交通运输局", "text": ZH_DRAFT},
                                         OFFICER)
    policy_id = created["policy_id"]
    close_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    consultation.schedule_policy({"policy_id": policy_id, "open_at": later(seconds=1),
                                  "close_at": close_at.isoformat()}, OFFICER)
    with pytest.raises(WindowClosed) as early:
        submit(consultation, policy_id)
    assert early.value.reason == "opens_later" and early.value.opened_at
    wait_for_events(ev.CONSULTATION_OPENED, policy_id=policy_id, seconds=15)
    wait_for_events(ev.CONSULTATION_CLOSED, policy_id=policy_id, seconds=15)
    assert consultation.get_policy({"policy_id": policy_id}, None)["state"] == "closed"
    with pytest.raises(WindowClosed) as late:
        submit(consultation, policy_id)
    assert late.value.reason == "closed"
    assert dt.datetime.fromisoformat(late.value.closed_at) == close_at
    assert close_at.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%H:%M") in late.value.message


def test_closing_twice_is_an_invalid_transition(consultation_on_each_database):
    consultation = consultation_on_each_database
    policy = open_policy(consultation)
    consultation.close_consultation({"policy_id": policy["policy_id"]}, OFFICER)
    wait_for_events(ev.CONSULTATION_CLOSED, policy_id=policy["policy_id"])
    with pytest.raises(InvalidTransition):
        consultation.close_consultation({"policy_id": policy["policy_id"]}, OFFICER)


# --- 4. comments ---------------------------------------------------------------------------------------------------


def test_comment_on_a_clause_is_pending_announced_and_recorded_with_its_provenance(consultation_on_each_database):
    consultation = consultation_on_each_database
    policy = open_policy(consultation)
    site_key = consultation.create_site_key({"name": "江城日报", "allowed_origins": ["https://news.example.cn"]},
                                            ADMIN)["key"]
    receipt = submit(consultation, policy["policy_id"], clause_number=2, stance="oppose", site_key=site_key,
                     source_url="https://news.example.cn/a/1", display_name="老王", channel="widget")
    assert receipt["state"] == "pending" and receipt["clause_number"] == 2 and receipt["reference"]
    event = wait_for_events(ev.COMMENT_SUBMITTED, comment_id=receipt["comment_id"])[0]
    assert event["channel"] == "widget" and event["site_key"] == site_key
    assert event["source_url"] == "https://news.example.cn/a/1" and event["stance"] == "oppose"
    history = consultation.comment_history({"comment_id": receipt["comment_id"]}, MODERATOR)
    assert [t["to_state"] for t in history["transitions"]] == ["pending"]


def test_retried_submission_with_the_same_idempotency_key_returns_the_first_receipt(consultation_on_each_database):
    consultation = consultation_on_each_database
    policy = open_policy(consultation)
    first = submit(consultation, policy["policy_id"], idempotency_key="retry-1")
    again = submit(consultation, policy["policy_id"], idempotency_key="retry-1")
    assert again == first
    queue = consultation.list_moderation_queue({"queue": "all", "policy_id": policy["policy_id"]}, MODERATOR)
    assert [c["comment_id"] for c in queue["items"]] == [first["comment_id"]]


def test_second_comment_from_the_same_voter_token_within_three_seconds_is_rate_limited(consultation):
    policy = open_policy(consultation)
    who = submitter()
    submit(consultation, policy["policy_id"], **who)
    with pytest.raises(RateLimited) as raised:
        submit(consultation, policy["policy_id"], **who, text="再补充一点。")
    assert 1 <= raised.value.retry_after_s <= 3


def test_comment_over_five_thousand_characters_is_refused_field_by_field(consultation):
    policy = open_policy(consultation)
    with pytest.raises(ValidationFailed) as raised:
        submit(consultation, policy["policy_id"], text="长" * 5001, stance="maybe")
    assert {"text", "stance"} <= set(raised.value.errors)


# --- 5. personal data ----------------------------------------------------------------------------------------------


def test_personal_data_is_redacted_in_events_and_contact_details_never_leave_the_service(
        consultation_on_each_database):
    consultation = consultation_on_each_database
    policy = open_policy(consultation)
    text = f"我的电话{PHONE}，邮箱{EMAIL}，身份证{ID_NUMBER}，请联系我。"
    receipt = submit(consultation, policy["policy_id"], text=text, contact=EMAIL, contact_consent=True)
    consultation.moderate_comment({"comment_id": receipt["comment_id"], "action": "approve"}, MODERATOR)
    wait_for_events(ev.COMMENT_MODERATED, comment_id=receipt["comment_id"])
    submitted = wait_for_events(ev.COMMENT_SUBMITTED, comment_id=receipt["comment_id"])[0]
    assert "personal_data" in submitted["flags"]
    everything_public = json.dumps([received, consultation.list_public_comments(
        {"policy_id": policy["policy_id"]}, None)], ensure_ascii=False, default=str)
    for secret in (PHONE, EMAIL, ID_NUMBER):
        assert secret not in everything_public
    original = consultation.view_comment_original({"comment_id": receipt["comment_id"]}, MODERATOR)
    assert original["original_text"] == text and original["contact"]["value"] == EMAIL


# --- 6. moderation -------------------------------------------------------------------------------------------------


def test_moderation_queue_actions_bulk_and_audit_trail(consultation_on_each_database):
    consultation = consultation_on_each_database
    policy = open_policy(consultation)
    ids = [submit(consultation, policy["policy_id"], text=f"第{n}条意见：建议延长收费时段。")["comment_id"]
           for n in range(4)]
    spam = submit(consultation, policy["policy_id"], text="买买买 http://a.cn http://b.cn http://c.cn")["comment_id"]
    pending = consultation.list_moderation_queue({"queue": "pending", "policy_id": policy["policy_id"]}, MODERATOR)
    assert {c["comment_id"] for c in pending["items"]} == {*ids, spam}
    flagged = consultation.list_moderation_queue({"queue": "flagged", "policy_id": policy["policy_id"]}, MODERATOR)
    assert [c["comment_id"] for c in flagged["items"]] == [spam]

    consultation.moderate_comment({"comment_id": spam, "action": "reject", "reason_code": "spam",
                                   "note": "广告"}, MODERATOR)
    consultation.moderate_comment({"comment_id": ids[0], "action": "hide", "note": "暂不展示"}, MODERATOR)
    bulk = consultation.bulk_moderate({"comment_ids": ids[1:], "action": "approve"}, MODERATOR)
    assert bulk["succeeded"] == 3 and bulk["failed"] == 0

    rejected = wait_for_events(ev.COMMENT_MODERATED, comment_id=spam)[0]
    assert rejected["status"] == "rejected" and rejected["reason_code"] == "spam"
    wait_for_events(ev.COMMENT_MODERATED, count=5, policy_id=policy["policy_id"])
    history = consultation.comment_history({"comment_id": spam}, MODERATOR)
    last = history["transitions"][-1]
    assert (last["from_state"], last["to_state"], last["reason_code"]) == ("pending", "rejected", "spam")
    assert last["actor_username"] == "moderator" and last["at"]
    public = consultation.list_public_comments({"policy_id": policy["policy_id"]}, None)
    assert {c["comment_id"] for c in public["items"]} == set(ids[1:])


def test_rejecting_without_a_reason_code_is_refused(consultation):
    policy = open_policy(consultation)
    comment_id = submit(consultation, policy["policy_id"])["comment_id"]
    with pytest.raises(ValidationFailed) as raised:
        consultation.moderate_comment({"comment_id": comment_id, "action": "reject"}, MODERATOR)
    assert "reason_code" in raised.value.errors


# --- 7. official replies -------------------------------------------------------------------------------------------


def test_official_reply_is_announced_and_public_once_the_comment_is_approved(consultation_on_each_database):
    consultation = consultation_on_each_database
    policy = open_policy(consultation)
    comment_id = submit(consultation, policy["policy_id"])["comment_id"]
    reply = consultation.post_reply({"comment_id": comment_id, "text": "感谢您的建议，我们将研究。"}, OFFICER)
    assert reply["public"] is False
    event = wait_for_events(ev.REPLY_POSTED, comment_id=comment_id)[0]
    assert event["comment_public"] is False and event["text"] == "感谢您的建议，我们将研究。"
    assert consultation.list_public_comments({"policy_id": policy["policy_id"]}, None)["items"] == []
    consultation.moderate_comment({"comment_id": comment_id, "action": "approve"}, MODERATOR)
    moderated = wait_for_events(ev.COMMENT_MODERATED, comment_id=comment_id)[0]
    assert [r["reply_id"] for r in moderated["replies"]] == [reply["reply_id"]]
    shown = consultation.list_public_comments({"policy_id": policy["policy_id"]}, None)["items"]
    assert [r["text"] for r in shown[0]["replies"]] == ["感谢您的建议，我们将研究。"]


# --- 8. poll -------------------------------------------------------------------------------------------------------


def test_one_vote_per_voter_token_changeable_while_open_counted_per_policy_and_clause(consultation_on_each_database):
    consultation = consultation_on_each_database
    policy = open_policy(consultation)
    policy_id = policy["policy_id"]
    consultation.cast_vote({"policy_id": policy_id, "stance": "support", "voter_token": "v1"})
    consultation.cast_vote({"policy_id": policy_id, "stance": "oppose", "voter_token": "v2"})
    changed = consultation.cast_vote({"policy_id": policy_id, "stance": "oppose", "voter_token": "v1"})
    assert changed["previous_stance"] == "support"
    consultation.cast_vote({"policy_id": policy_id, "stance": "support", "voter_token": "v1", "clause_number": 3})
    results = consultation.poll_results({"policy_id": policy_id})
    assert (results["policy"]["support"], results["policy"]["oppose"], results["policy"]["total"]) == (0, 2, 2)
    clause = next(c for c in results["clauses"] if c["clause_number"] == 3)
    assert clause["support"] == 1
    consultation.close_consultation({"policy_id": policy_id}, OFFICER)
    with pytest.raises(WindowClosed):
        consultation.cast_vote({"policy_id": policy_id, "stance": "support", "voter_token": "v1"})


# --- 9. explanations -----------------------------------------------------------------------------------------------


def test_explanation_article_is_sanitised_and_published_with_an_event(consultation_on_each_database):
    consultation = consultation_on_each_database
    policy = open_policy(consultation)
    draft = consultation.create_explanation({
        "policy_id": policy["policy_id"], "kind": "article", "title": "一图读懂停车新规",
        "body_html": "<p>差异化收费<script>alert(1)</script></p>", "clause_numbers": [3]}, EDITOR)
    assert "<script>" not in draft["body_html"] and draft["state"] == "draft"
    assert consultation.list_explanations({"policy_id": policy["policy_id"]}, None) == []
    consultation.publish_explanation({"explanation_id": draft["explanation_id"]}, EDITOR)
    event = wait_for_events(ev.EXPLANATION_PUBLISHED, explanation_id=draft["explanation_id"])[0]
    assert event["clause_numbers"] == [3] and "alert" not in (event["body"] or "")
    public = consultation.list_explanations({"policy_id": policy["policy_id"]}, None)
    assert [e["title"] for e in public] == ["一图读懂停车新规"]


def test_external_explanation_link_needs_a_url(consultation):
    policy = open_policy(consultation)
    with pytest.raises(ValidationFailed) as raised:
        consultation.create_explanation({"policy_id": policy["policy_id"], "kind": "link", "title": "解读"}, EDITOR)
    assert "url" in raised.value.errors


# --- 10. links to coverage -----------------------------------------------------------------------------------------


_suggested_at = itertools.count()


def suggestion(policy_id, score=0.8):
    """A links_suggested event as the search service sends it; later calls are later events (by occurred_at)."""
    occurred_at = (dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
                   + dt.timedelta(seconds=next(_suggested_at))).isoformat()
    return {"event_id": uuid.uuid4().hex, "schema_version": 1, "occurred_at": occurred_at, "links": [{
        "policy_id": policy_id, "article_id": "article-42", "article_title": "停车收费将分时段",
        "article_url": "https://news.example.cn/parking", "article_outlet": "江城日报",
        "article_published_at": "2026-11-20T08:00:00+08:00", "score": score, "clause_number": 3,
        "matched_terms": ["停车", "收费"]}]}


def test_links_suggested_twice_by_search_stay_one_link_that_an_editor_confirms(
        consultation_on_each_database, config_on_each_database):
    consultation = consultation_on_each_database
    policy = open_policy(consultation)
    policy_id = policy["policy_id"]
    dispatch = event_dispatcher(config_on_each_database)  # published as if by the search service
    dispatch("search", ev.LINKS_SUGGESTED, suggestion(policy_id, 0.6))
    dispatch("search", ev.LINKS_SUGGESTED, suggestion(policy_id, 0.9))

    def staff_links():
        return consultation.list_policy_links({"policy_id": policy_id}, EDITOR)

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (staff_links() and staff_links()[0]["score"] == 0.9):
        eventlet.sleep(0.1)
    links = staff_links()
    assert len(links) == 1 and links[0]["state"] == "suggested" and links[0]["score"] == 0.9
    assert links[0]["matched_terms"]
    assert consultation.list_policy_links({"policy_id": policy_id}, None) == []  # suggestions are not public
    consultation.decide_link({"link_id": links[0]["link_id"], "decision": "confirm"}, EDITOR)
    confirmed = wait_for_events(ev.LINK_CONFIRMED, link_id=links[0]["link_id"])[0]
    assert confirmed["article_url"] == "https://news.example.cn/parking"
    assert [link["article_id"] for link in consultation.list_policy_links({"policy_id": policy_id}, None)] == [
        "article-42"]
    by_article = consultation.list_links_for_article({"article_url": "https://news.example.cn/parking"})
    assert [item["policy_id"] for item in by_article] == [policy_id]
    assert staff_links()[0]["decided_by"] == "editor"


# --- 11. feedback report -------------------------------------------------------------------------------------------


def test_feedback_report_is_saved_after_closing_published_and_exported_as_csv(consultation_on_each_database):
    consultation = consultation_on_each_database
    policy = open_policy(consultation)
    policy_id = policy["policy_id"]
    approved = submit(consultation, policy_id, text=f"第三条收费太高，电话{PHONE}", clause_number=3, stance="oppose")
    pending = submit(consultation, policy_id, text="尚未审核的意见")
    consultation.moderate_comment({"comment_id": approved["comment_id"], "action": "approve"}, MODERATOR)
    entries = [{"clause_number": 3, "summary": "部分市民认为收费偏高", "decision": "partly_adopted",
                "reason": "下调夜间收费"}, {"summary": "总体支持", "decision": "noted"}]
    with pytest.raises(InvalidTransition):  # the window is still open
        consultation.save_report({"policy_id": policy_id, "entries": entries}, OFFICER)
        consultation.publish_report({"policy_id": policy_id}, OFFICER)
    consultation.close_consultation({"policy_id": policy_id}, OFFICER)
    consultation.save_report({"policy_id": policy_id, "summary": "感谢参与", "entries": entries}, OFFICER)
    with pytest.raises(NotFound):  # not public until published
        consultation.get_report({"policy_id": policy_id}, None)
    consultation.publish_report({"policy_id": policy_id}, OFFICER)
    event = wait_for_events(ev.REPORT_PUBLISHED, policy_id=policy_id)[0]
    assert event["schema_version"] >= 1
    report = consultation.get_report({"policy_id": policy_id}, None)
    assert report["state"] == "published"
    assert {(e["clause_number"], e["decision"]) for e in report["entries"]} == {(3, "partly_adopted"), (None, "noted")}
    csv_page = consultation.approved_comments_csv(policy_id, 0)
    body = "".join(csv_page["lines"])
    assert csv_page["next_offset"] is None and body.startswith("reference,")
    assert approved["reference"] in body and pending["reference"] not in body and PHONE not in body
