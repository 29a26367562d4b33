import csv
import io

import pytest

from consultation import commands as c
from consultation import handlers, report
from consultation.exceptions import Conflict, InvalidTransition, NotFound, ValidationFailed

from .factories import OFFICER, approve, make_open_policy, outbox, submit

ENTRIES = (
    c.ReportEntryInput("多数意见支持", "adopted", "符合实际", None),
    c.ReportEntryInput("建议延长时间", "partly_adopted", "部分调整", 3),
)


@pytest.fixture
def closed_policy(uow, clock):
    pid = make_open_policy(uow, clock)["policy_id"]
    for n, clause in enumerate((3, 3, None)):
        receipt = submit(uow, clock, pid, clause_number=clause, text=f"意见{n}，电话13812345678",
                         contact=f"user{n}@example.com", contact_consent=True, stance="support")
        approve(uow, clock, receipt["comment_id"])
    submit(uow, clock, pid, text="未审核的意见")
    handlers.close_consultation(uow, c.CloseConsultation(pid), actor=OFFICER, clock=clock)
    return pid


def save(uow, clock, pid, entries=ENTRIES, summary="共收到意见3条"):
    return report.save_report(uow, c.SaveReport(pid, summary, entries), actor=OFFICER, clock=clock)


def test_a_report_is_written_after_closing_and_counts_comments_per_clause(uow, clock, closed_policy):
    saved = save(uow, clock, closed_policy)
    assert saved["state"] == "draft"
    assert [(e["clause_number"], e["clause_label"], e["decision"], e["comment_count"]) for e in saved["entries"]] == [
        (None, None, "adopted", 1), (3, "第三条", "partly_adopted", 2)]
    assert saved["comment_count"] == 3
    assert saved["stance_counts"] == {"support": 3}


def test_a_report_cannot_be_written_while_the_window_is_open(uow, clock):
    pid = make_open_policy(uow, clock)["policy_id"]
    with pytest.raises(InvalidTransition):
        save(uow, clock, pid)


def test_report_entries_are_validated(uow, clock, closed_policy):
    with pytest.raises(ValidationFailed) as caught:
        save(uow, clock, closed_policy, entries=(c.ReportEntryInput("x", "maybe"), c.ReportEntryInput("y", "noted", "",
                                                                                                      None)))
    assert caught.value.errors == {"entries": {"0": {"decision": "field.choice"},
                                               "1": {"clause_number": "report.duplicate_clause"}}}
    with pytest.raises(ValidationFailed):
        save(uow, clock, closed_policy, entries=(c.ReportEntryInput("x", "noted", "", 77),))


def test_publishing_ends_the_consultation_and_emits_report_published(uow, clock, closed_policy):
    with pytest.raises(Conflict):
        report.publish_report(uow, c.PublishReport(closed_policy), actor=OFFICER, clock=clock)
    with pytest.raises(NotFound):
        report.get_report(uow, c.GetReport(closed_policy), clock=clock)
    save(uow, clock, closed_policy)
    published = report.publish_report(uow, c.PublishReport(closed_policy), actor=OFFICER, clock=clock)
    assert published["published_at"] == clock()
    assert report.get_report(uow, c.GetReport(closed_policy), clock=clock)["state"] == "published"
    assert handlers.get_policy(uow, c.GetPolicy(closed_policy), clock=clock)["state"] == "report_published"
    event = outbox(uow, "report_published")[-1]
    assert [e["decision"] for e in event["entries"]] == ["adopted", "partly_adopted"]
    assert outbox(uow, "policy_updated")[-1]["state"] == "report_published"
    with pytest.raises(InvalidTransition):
        save(uow, clock, closed_policy)


def test_the_report_document_is_a_plain_structure_in_either_language(uow, clock, closed_policy):
    saved = save(uow, clock, closed_policy)
    zh = report.report_document(saved, "zh")
    assert zh["title"] == "《校外培训管理办法》意见采纳情况"
    assert zh["sections"][1]["table"]["rows"][1] == ["第三条", "建议延长时间", "部分采纳", "部分调整"]
    en = report.report_document(saved, "en")
    assert en["sections"][1]["table"]["columns"] == ["Clause", "What people said", "Decision", "Reason"]
    assert en["sections"][1]["table"]["rows"][0][:3] == ["General", "多数意见支持", "Adopted"]


def test_the_csv_export_streams_approved_redacted_comments_without_contact_data(uow, clock, closed_policy):
    lines = list(report.iter_approved_comments_csv(uow, closed_policy))
    rows = list(csv.reader(io.StringIO("".join(lines))))
    assert rows[0] == list(report.CSV_COLUMNS)
    assert len(rows) == 4
    assert all("13812345678" not in line and "example.com" not in line for line in lines)
    assert rows[1][1] == "2026-03-02T09:00:00+08:00"
    assert rows[1][6] == "意见0，电话[手机号已隐去]"


def test_csv_cells_that_look_like_formulas_are_defused(uow, clock):
    pid = make_open_policy(uow, clock)["policy_id"]
    approve(uow, clock, submit(uow, clock, pid, text="=HYPERLINK(\"http://evil\")")["comment_id"])
    rows = list(csv.reader(io.StringIO("".join(report.iter_approved_comments_csv(uow, pid)))))
    assert rows[1][6].startswith("'=")


def test_csv_export_of_a_missing_policy_is_not_found(uow):
    with pytest.raises(NotFound):
        next(report.iter_approved_comments_csv(uow, 404))
