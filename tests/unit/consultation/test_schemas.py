import datetime as dt
import pathlib
import re

import pytest

from consultation import commands as c
from consultation import i18n, schemas
from consultation.exceptions import ValidationFailed, WindowClosed

PACKAGE = pathlib.Path(schemas.__file__).parent
# Message ids appear as dict values, assignments and validator messages (audit action names look alike but are
# positional arguments, so they are not matched).
MESSAGE_ID = re.compile(
    r"(?::\s*|=\s*|return\s+)\"((?:field|text|title|window|draft|clause|policy|comment|moderation|password|username|roles|site_key|report|"
    r"datetime)\.[a-z_]+)\""
)


def test_a_comment_loads_into_a_submit_comment_command():
    command = schemas.load_command(schemas.SubmitCommentSchema(), {
        "policy_id": "7", "text": "支持", "stance": "support", "clause_number": 2, "contact": "13900001111",
        "contact_consent": True})
    assert command == c.SubmitComment(policy_id=7, text="支持", stance="support", clause_number=2,
                                      contact="13900001111", contact_consent=True)


def test_missing_and_unknown_fields_become_message_ids():
    with pytest.raises(ValidationFailed) as caught:
        schemas.load_command(schemas.SubmitCommentSchema(), {"policy_id": 1, "text": "", "hack": 1})
    assert caught.value.errors == {"text": "text.length", "stance": "field.required", "hack": "field.unknown"}


def test_field_messages_translate_to_chinese_by_default_and_to_english_on_request():
    errors = {"text": "text.length", "stance": "field.required"}
    assert i18n.translate_errors(errors) == {"text": "意见内容须为 1 至 5000 字。", "stance": "此项为必填项。"}
    assert i18n.translate_errors(errors, "en-GB")["text"] == "The text must be 1 to 5,000 characters."
    assert i18n.translate_errors({"clauses": {"0": {"number": "field.integer"}}}, "en") == {
        "clauses": {"0": {"number": "Must be a whole number."}}}


def test_marshmallow_default_messages_are_translated_too():
    assert i18n.translate("Missing data for required field.", "zh") == "此项为必填项。"
    assert i18n.translate("Must be one of: a, b.", "en") == "Not one of the allowed choices."
    assert i18n.translate("something unknown", "zh") == "something unknown"


def test_every_message_id_used_in_the_package_has_chinese_and_english_text():
    used = set()
    for path in sorted(set(PACKAGE.glob("*.py")) - {PACKAGE / "model.py"}):
        used |= set(MESSAGE_ID.findall(path.read_text(encoding="utf-8")))
    assert used, "the pattern should find the ids the handlers use"
    missing = sorted(used - set(i18n.CATALOGUE))
    assert missing == []
    assert all(set(text) == {"zh", "en"} for text in i18n.CATALOGUE.values())


def test_naive_datetimes_are_refused_with_a_clear_message():
    with pytest.raises(ValidationFailed) as caught:
        schemas.load_command(schemas.SchedulePolicySchema(), {"policy_id": 1, "open_at": "2026-03-01T09:00:00",
                                                              "close_at": "2026-04-01T09:00:00+08:00"})
    assert caught.value.errors == {"open_at": "datetime.naive"}


def test_query_string_values_are_coerced_and_unrelated_parameters_ignored():
    command = schemas.load_command(schemas.ListPoliciesSchema(), {"page": "2", "topic": "教育", "lang": "en"})
    assert command == c.ListPolicies(topic="教育", page=2)


def test_a_policy_with_explicit_clauses_loads_clause_inputs():
    command = schemas.load_command(schemas.CreatePolicySchema(), {
        "title": "t", "department": "d", "clauses": [{"number": 1, "text": "x"}], "topics": ["a"]})
    assert command.clauses == (c.ClauseInput(1, "x"),)
    assert command.topics == ("a",)


def test_report_entries_load_with_decisions_checked():
    with pytest.raises(ValidationFailed) as caught:
        schemas.load_command(schemas.SaveReportSchema(), {"policy_id": 1, "entries": [{"summary": "s",
                                                                                      "decision": "yes"}]})
    assert caught.value.errors == {"entries": {"0": {"decision": "field.choice"}}}


def test_a_non_object_body_is_a_clear_error():
    with pytest.raises(ValidationFailed):
        schemas.load_command(schemas.SubmitCommentSchema(), ["not", "an", "object"])


def test_output_schemas_dump_datetimes_as_iso_strings():
    moment = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)
    dumped = schemas.CommentReceiptSchema().dump({"comment_id": 1, "reference": "C1", "policy_id": 2, "version": 1,
                                                  "clause_number": None, "stance": "support", "state": "pending",
                                                  "created_at": moment})
    assert dumped["created_at"] == "2026-03-02T01:00:00+00:00"


def test_the_public_link_schema_hides_editorial_fields():
    dumped = schemas.PublicLinkSchema().dump({"link_id": 1, "decided_by": "editor", "score": 3.0,
                                              "article_title": "t"})
    assert dumped == {"link_id": 1, "article_title": "t"}


def test_window_closed_errors_are_worded_in_the_readers_language_with_local_times():
    from consultation import window

    closes = dt.datetime(2026, 4, 1, 1, 0, tzinfo=dt.UTC)
    with pytest.raises(WindowClosed) as caught:
        window.ensure_accepting("closed", closes - dt.timedelta(days=30), closes, closes, "Asia/Shanghai")
    assert i18n.window_closed_message(caught.value, "zh") == "本次征求意见已于 2026-04-01 09:00（Asia/Shanghai）截止。"
    assert i18n.window_closed_message(caught.value, "en") == "The consultation closed on 2026-04-01 09:00 (Asia/Shanghai)."
    with pytest.raises(WindowClosed) as caught:
        window.ensure_accepting("scheduled", closes, closes + dt.timedelta(days=1), closes - dt.timedelta(days=1))
    assert i18n.window_closed_message(caught.value, "zh").startswith("本次征求意见将于 2026-04-01 09:00")


def test_nul_characters_and_out_of_range_ids_are_field_errors_not_database_errors():
    with pytest.raises(ValidationFailed) as caught:
        schemas.load_command(schemas.SubmitCommentSchema(), {"policy_id": 2**40, "text": "a\x00b", "stance": "support"})
    assert caught.value.errors == {"policy_id": "field.range", "text": "field.invalid"}
