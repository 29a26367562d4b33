"""The feedback report (意见采纳情况): after the window closes, per clause a summary of what people said, a decision
and its reason; publishing it ends the consultation (state report_published).

Also the approved-comments CSV export, streamed with constant memory.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from sqlalchemy import func, select

from services.kernel.db import utcnow

from . import commands as c
from . import events as ev
from . import window
from .accounts import POLICY_OFFICER, Actor, record_audit, require_role
from .exceptions import Conflict, InvalidTransition, NotFound, ValidationFailed
from .handlers import (
    Clock,
    _announce_policy,
    _approved_comment_counts,
    _clauses_of,
    _get_policy,
    _is_staff,
)
from .model import WHOLE_POLICY, Comment, FeedbackEntry, FeedbackReport

ADOPTED = "adopted"
PARTLY_ADOPTED = "partly_adopted"
NOT_ADOPTED = "not_adopted"
NOTED = "noted"
DECISIONS = (ADOPTED, PARTLY_ADOPTED, NOT_ADOPTED, NOTED)

CSV_COLUMNS = ("reference", "created_at", "version", "clause_number", "stance", "display_name", "text",
               "support_count")


def _report_dict(session, policy, report: FeedbackReport | None) -> dict[str, Any]:
    clauses = {clause.number: clause for clause in _clauses_of(session, policy.id, policy.current_version)}
    counts = _approved_comment_counts(session, policy.id)
    stance_counts = dict(
        session.execute(
            select(Comment.stance, func.count())
            .where(Comment.policy_id == policy.id, Comment.state == "approved")
            .group_by(Comment.stance)
        ).all()
    )
    entries = []
    decision_counts = dict.fromkeys(DECISIONS, 0)
    for entry in report.entries if report else []:
        number = None if entry.clause_number == WHOLE_POLICY else entry.clause_number
        clause = clauses.get(number) if number is not None else None
        entries.append({
            "clause_number": number,
            "clause_label": clause.label if clause else None,
            "summary": entry.summary,
            "decision": entry.decision,
            "reason": entry.reason,
            "comment_count": counts.get(entry.clause_number, 0),
        })
        decision_counts[entry.decision] += 1
    # General remarks first, then clauses in reading order.
    entries.sort(key=lambda e: -1 if e["clause_number"] is None else e["clause_number"])
    return {
        "policy_id": policy.id,
        "title": policy.title,
        "department": policy.department,
        "version": policy.current_version,
        "state": report.state if report else "draft",
        "summary": report.summary if report else "",
        "entries": entries,
        "comment_count": sum(counts.values()),
        "stance_counts": stance_counts,
        "decision_counts": decision_counts,
        "updated_at": report.updated_at if report else policy.updated_at,
        "published_at": report.published_at if report else None,
    }


def save_report(uow, command: c.SaveReport, *, actor: Actor, clock: Clock = utcnow) -> dict:
    """Write (or rewrite) the draft report of a closed consultation; entries replace the previous ones."""
    require_role(actor, POLICY_OFFICER)
    errors: dict[str, Any] = {}
    if not command.entries:
        errors["entries"] = "report.entries_required"
    seen: set[int] = set()
    entry_errors: dict[str, Any] = {}
    for index, entry in enumerate(command.entries):
        key = WHOLE_POLICY if entry.clause_number is None else entry.clause_number
        if entry.decision not in DECISIONS:
            entry_errors[str(index)] = {"decision": "field.choice"}
        elif not (entry.summary or "").strip():
            entry_errors[str(index)] = {"summary": "field.required"}
        elif key in seen:
            entry_errors[str(index)] = {"clause_number": "report.duplicate_clause"}
        seen.add(key)
    if entry_errors:
        errors["entries"] = entry_errors
    if errors:
        raise ValidationFailed(errors)
    now = clock()
    with uow:
        policy = _get_policy(uow.session, command.policy_id, for_update=True)
        if policy.state != window.CLOSED:
            raise InvalidTransition(f"a report is written after closing; the consultation is {policy.state}",
                                    policy.state, "save_report")
        known = {clause.number for clause in _clauses_of(uow.session, policy.id, policy.current_version)}
        unknown = {
            str(i): {"clause_number": "clause.unknown"}
            for i, entry in enumerate(command.entries)
            if entry.clause_number not in (None, WHOLE_POLICY) and entry.clause_number not in known
        }
        if unknown:
            raise ValidationFailed({"entries": unknown})
        report = uow.session.scalar(select(FeedbackReport).where(FeedbackReport.policy_id == policy.id))
        if report is None:
            report = FeedbackReport(policy_id=policy.id, state="draft")
            uow.session.add(report)
        report.summary = (command.summary or "").strip()
        report.updated_at = now
        report.entries = [
            FeedbackEntry(
                clause_number=WHOLE_POLICY if entry.clause_number is None else entry.clause_number,
                summary=entry.summary.strip(),
                decision=entry.decision,
                reason=(entry.reason or "").strip(),
            )
            for entry in command.entries
        ]
        uow.session.flush()
        record_audit(uow.session, actor, "report.save", "policy", policy.id, now, {"entries": len(command.entries)})
        result = _report_dict(uow.session, policy, report)
        uow.commit()
        return result


def publish_report(uow, command: c.PublishReport, *, actor: Actor, clock: Clock = utcnow) -> dict:
    """Publish the saved report: state report_published, report_published and policy_updated events."""
    require_role(actor, POLICY_OFFICER)
    now = clock()
    with uow:
        policy = _get_policy(uow.session, command.policy_id, for_update=True)
        report = uow.session.scalar(select(FeedbackReport).where(FeedbackReport.policy_id == policy.id))
        if report is None or not report.entries:
            raise Conflict("save the report before publishing it")
        policy.state = window.next_state(policy.state, window.PUBLISH_REPORT)
        policy.updated_at = now
        report.state = "published"
        report.published_at = now
        report.published_by = actor.username
        uow.session.flush()
        result = _report_dict(uow.session, policy, report)
        uow.emit(
            ev.REPORT_PUBLISHED,
            {
                "policy_id": policy.id,
                "version": policy.current_version,
                "title": policy.title,
                "department": policy.department,
                "summary": report.summary,
                "entries": [
                    {"clause_number": e["clause_number"], "summary": e["summary"], "decision": e["decision"],
                     "reason": e["reason"]}
                    for e in result["entries"]
                ],
                "comment_count": result["comment_count"],
                "published_at": now,
                "url_path": f"{ev.policy_url_path(policy.id)}/report",
            },
        )
        _announce_policy(uow, policy, now)
        record_audit(uow.session, actor, "report.publish", "policy", policy.id, now)
        uow.commit()
        return result


def get_report(uow, command: c.GetReport, *, actor: Actor | None = None, clock: Clock = utcnow) -> dict:
    """The published report; staff also see a draft."""
    staff = _is_staff(actor)
    with uow:
        policy = _get_policy(uow.session, command.policy_id, public=not staff)
        report = uow.session.scalar(select(FeedbackReport).where(FeedbackReport.policy_id == policy.id))
        if report is None or (report.state != "published" and not staff):
            raise NotFound(f"no published report for policy {policy.id}")
        return _report_dict(uow.session, policy, report)


_LABELS = {
    "zh": {
        "title": "《{title}》意见采纳情况",
        "issued_by": "{department}",
        "overview": "总体情况",
        "received": "共收到公开意见 {count} 条。",
        "details": "逐条反馈",
        "columns": ("条款", "意见概述", "采纳情况", "理由"),
        "whole": "总体",
        "decisions": {ADOPTED: "采纳", PARTLY_ADOPTED: "部分采纳", NOT_ADOPTED: "未采纳", NOTED: "已知悉"},
    },
    "en": {
        "title": "Feedback report: {title}",
        "issued_by": "{department}",
        "overview": "Overview",
        "received": "{count} public comments were received.",
        "details": "Clause by clause",
        "columns": ("Clause", "What people said", "Decision", "Reason"),
        "whole": "General",
        "decisions": {ADOPTED: "Adopted", PARTLY_ADOPTED: "Partly adopted", NOT_ADOPTED: "Not adopted",
                      NOTED: "Noted"},
    },
}


def report_document(report: dict[str, Any], language: str = "zh") -> dict[str, Any]:
    """A template-free structure of the report (headings, paragraphs, one table) that the gateway renders as HTML.

    Every value is plain text; escaping is the renderer's job.
    """
    labels = _LABELS["en" if language == "en" else "zh"]
    overview = [labels["received"].format(count=report["comment_count"])]
    if report.get("summary"):
        overview.append(report["summary"])
    rows = [
        [
            entry.get("clause_label") or (labels["whole"] if entry["clause_number"] is None
                                          else str(entry["clause_number"])),
            entry["summary"],
            labels["decisions"].get(entry["decision"], entry["decision"]),
            entry["reason"],
        ]
        for entry in report["entries"]
    ]
    return {
        "title": labels["title"].format(title=report["title"]),
        "subtitle": labels["issued_by"].format(department=report["department"]),
        "published_at": report.get("published_at"),
        "sections": [
            {"heading": labels["overview"], "paragraphs": overview},
            {"heading": labels["details"], "table": {"columns": list(labels["columns"]), "rows": rows}},
        ],
    }


def _safe_cell(value: Any) -> Any:
    # Spreadsheets run cells starting with these as formulas (CSV injection); a leading quote keeps them text.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _csv_line(values) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow([_safe_cell(v) for v in values])
    return buffer.getvalue()


def iter_approved_comments_csv(uow, policy_id: int, *, batch_size: int = 500) -> Iterator[str]:
    """CSV lines (header first) of a policy's approved comments: redacted text only, never contact data.

    Rows are streamed (server-side cursor on PostgreSQL, yield_per everywhere) so memory stays flat however many
    comments there are. Raises NotFound before yielding anything when the policy does not exist.
    """
    with uow:
        policy = _get_policy(uow.session, policy_id, public=True)
        zone = window.zone(policy.time_zone)
        yield _csv_line(CSV_COLUMNS)
        rows = uow.session.execute(
            select(Comment.reference, Comment.created_at, Comment.version_number, Comment.clause_number,
                   Comment.stance, Comment.display_name, Comment.public_text, Comment.support_count)
            .where(Comment.policy_id == policy.id, Comment.state == "approved")
            .order_by(Comment.created_at, Comment.id)
            .execution_options(stream_results=True, yield_per=batch_size)
        )
        for reference, created_at, version, clause_number, stance, display_name, text, support in rows:
            yield _csv_line([reference, created_at.astimezone(zone).isoformat(), version,
                             "" if clause_number is None else clause_number, stance, display_name or "", text,
                             support])
