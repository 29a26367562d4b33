import json
import pickle

import pytest
from marshmallow import ValidationError

from consultation import commands as c
from consultation import events as ev
from consultation import exceptions, handlers, report
from services.kernel.events import EventSchema

from .factories import EDITOR, MODERATOR, OFFICER, approve, make_open_policy, outbox, submit

ALL_EVENTS = {
    "policy_published", "policy_updated", "consultation_opened", "consultation_closed", "comment_submitted",
    "comment_moderated", "reply_posted", "explanation_published", "link_confirmed", "report_published",
}

PHONE, EMAIL, CONTACT_PHONE, CONTACT_EMAIL = "13812345678", "zhang.san@example.com", "13900001111", "li@example.org"


def test_every_event_has_a_schema_derived_from_the_envelope():
    assert set(ev.EVENT_SCHEMAS) == ALL_EVENTS
    assert all(isinstance(schema, EventSchema) for schema in ev.EVENT_SCHEMAS.values())


def test_event_schemas_refuse_unknown_fields_so_nothing_private_slips_in():
    schema = ev.EVENT_SCHEMAS[ev.COMMENT_SUBMITTED]
    with pytest.raises(ValidationError) as caught:
        schema.load({"contact": CONTACT_PHONE})
    assert "contact" in caught.value.messages


def test_no_contact_value_reaches_any_event_payload(uow, clock):
    """Drive every event through the handlers with contact data given as contact and written into the text."""
    pid = make_open_policy(uow, clock)["policy_id"]
    written = f"我是张三，电话{PHONE}，邮箱{EMAIL}，欢迎联系"
    ids = [
        submit(uow, clock, pid, text=written, display_name=f"张三{PHONE}", contact=CONTACT_PHONE,
               contact_consent=True, clause_number=1)["comment_id"],
        submit(uow, clock, pid, text=written + "。", contact=CONTACT_EMAIL, contact_consent=True)["comment_id"],
    ]
    handlers.post_reply(uow, c.PostReply(ids[0], "感谢，已收到。"), actor=OFFICER, clock=clock)
    approve(uow, clock, ids[0])
    handlers.moderate_comment(uow, c.ModerateComment(ids[1], "reject", "personal_data"), actor=MODERATOR, clock=clock)
    handlers.bulk_moderate(uow, c.BulkModerate((ids[1],), "approve"), actor=MODERATOR, clock=clock)
    explanation = handlers.create_explanation(
        uow, c.CreateExplanation(pid, "article", "解读", body_html="<p>政策要点</p>"), actor=EDITOR, clock=clock)
    handlers.publish_explanation(uow, c.PublishExplanation(explanation["explanation_id"]), actor=EDITOR, clock=clock)
    link = handlers.create_link(uow, c.CreateLink(pid, "报道", "https://news.example.cn/1"), actor=EDITOR, clock=clock)
    assert link["state"] == "confirmed"
    handlers.update_policy_details(uow, c.UpdatePolicyDetails(pid, summary="更新"), actor=OFFICER, clock=clock)
    handlers.close_consultation(uow, c.CloseConsultation(pid), actor=OFFICER, clock=clock)
    report.save_report(uow, c.SaveReport(pid, "总结", (c.ReportEntryInput("概述", "noted"),)), actor=OFFICER,
                       clock=clock)
    report.publish_report(uow, c.PublishReport(pid), actor=OFFICER, clock=clock)

    events = outbox(uow)
    assert {e["type"] for e in events} == ALL_EVENTS
    serialised = json.dumps(events, ensure_ascii=False)
    for secret in (PHONE, EMAIL, CONTACT_PHONE, CONTACT_EMAIL):
        assert secret not in serialised
    approved = [e for e in events if e["type"] == "comment_moderated" and e["status"] == "approved"]
    assert approved and all("[手机号已隐去]" in e["text"] for e in approved)


def test_events_validate_against_their_schema_when_emitted(uow, clock):
    pid = make_open_policy(uow, clock)["policy_id"]
    submit(uow, clock, pid)
    for event in outbox(uow):
        body = {k: v for k, v in event.items() if k != "type"}
        assert ev.EVENT_SCHEMAS[event["type"]].validate(body) == {}
        assert body["schema_version"] == 1


@pytest.mark.parametrize(
    "error",
    [
        exceptions.NotFound("policy 3 not found"),
        exceptions.ValidationFailed({"text": "text.length", "clauses": {"0": {"number": "field.required"}}}),
        exceptions.Conflict("taken"),
        exceptions.WindowClosed("closed at …", "2026-03-01T09:00:00+08:00", "2026-04-01T09:00:00+08:00"),
        exceptions.InvalidTransition("cannot close", "draft", "close"),
        exceptions.Forbidden("no"),
        exceptions.Unauthenticated("locked", 900),
        exceptions.RateLimited(3),
        exceptions.PayloadTooLarge("too long", 5000),
    ],
)
def test_domain_exceptions_survive_pickling_and_json_args(error):
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is type(error) and clone.args == error.args and str(clone) == str(error)
    rebuilt = type(error)(*json.loads(json.dumps(error.args)))
    assert rebuilt.args == error.args


def test_exception_properties_read_from_args():
    assert exceptions.RateLimited(7).retry_after_s == 7
    assert exceptions.WindowClosed("m", None, "2026-04-01T09:00:00+08:00").closed_at == "2026-04-01T09:00:00+08:00"
    assert exceptions.ValidationFailed({"a": "field.required"}).errors == {"a": "field.required"}
