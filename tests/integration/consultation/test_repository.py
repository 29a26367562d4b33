"""The consultation domain against real databases: every test runs on SQLite and on PostgreSQL."""
import csv
import datetime as dt
import io

import pytest
from sqlalchemy import event, insert, select
from sqlalchemy.exc import IntegrityError

from consultation import accounts, handlers, report
from consultation import commands as c
from consultation.events import EVENT_SCHEMAS
from consultation.exceptions import RateLimited, Unauthenticated, WindowClosed
from consultation.model import Comment, OutboxMessage, Policy, Vote
from services.kernel.db import make_session_factory
from services.kernel.outbox import SqlUnitOfWork
from tests.unit.consultation.factories import (
    ADMIN,
    EDITOR,
    MODERATOR,
    OFFICER,
    approve,
    make_open_policy,
    make_policy,
    new_token,
    outbox,
    submit,
)

DAY = dt.timedelta(days=1)


def test_a_whole_consultation_round_trips_through_the_database(uow, clock):
    pid = make_policy(uow, clock, topics=("教育", "校外培训"))["policy_id"]
    handlers.revise_draft(uow, c.ReviseDraft(pid, clauses=(c.ClauseInput(1, "第一条内容"), c.ClauseInput(2, "第二条内容"))),
                          actor=OFFICER, clock=clock)
    handlers.schedule_policy(uow, c.SchedulePolicy(pid, clock() + DAY, clock() + 5 * DAY), actor=OFFICER, clock=clock)
    assert handlers.advance_due(uow, clock.advance(days=1))[0]["action"] == "open"

    receipt = submit(uow, clock, pid, clause_number=2, text="支持，电话13812345678", contact="a@example.com",
                     contact_consent=True, stance="support")
    approve(uow, clock, receipt["comment_id"])
    handlers.post_reply(uow, c.PostReply(receipt["comment_id"], "谢谢"), actor=OFFICER, clock=clock)
    handlers.cast_vote(uow, c.CastVote(pid, "support", new_token(), 2), clock=clock)
    handlers.record_link_suggestions(uow, {"policy_id": pid, "article_id": "n1", "article_title": "报道",
                                           "article_url": "https://news.example.cn/n1", "score": 2.0,
                                           "matched_terms": ["校外培训"]}, clock=clock)

    detail = handlers.get_policy(uow, c.GetPolicy(pid), clock=clock)
    assert detail["version"] == 2 and detail["topics"] == ["教育", "校外培训"]
    assert detail["clauses"][1]["comment_count"] == 1
    assert detail["clauses"][1]["votes"]["support"] == 1
    assert detail["open_at"].tzinfo is not None
    [public] = handlers.list_public_comments(uow, c.ListPublicComments(pid), clock=clock)["items"]
    assert public["text"] == "支持，电话[手机号已隐去]" and public["replies"][0]["text"] == "谢谢"
    assert handlers.list_policies(uow, c.ListPolicies(topic="校外培训"), clock=clock)["total"] == 1

    assert handlers.advance_due(uow, clock.advance(days=5))[0]["action"] == "close"
    with pytest.raises(WindowClosed):
        submit(uow, clock, pid)
    report.save_report(uow, c.SaveReport(pid, "总结", (c.ReportEntryInput("支持为主", "adopted", "", 2),)),
                       actor=OFFICER, clock=clock)
    report.publish_report(uow, c.PublishReport(pid), actor=OFFICER, clock=clock)
    assert report.get_report(uow, c.GetReport(pid), clock=clock)["entries"][0]["comment_count"] == 1

    assert [e["type"] for e in outbox(uow)] == [
        "policy_published", "consultation_opened", "comment_submitted", "comment_moderated", "reply_posted",
        "consultation_closed", "report_published", "policy_updated"]


def test_a_rolled_back_handler_leaves_neither_state_nor_events(uow, clock):
    pid = make_open_policy(uow, clock)["policy_id"]
    before = len(outbox(uow))
    with pytest.raises(Exception):  # noqa: B017 - any failure inside the transaction must roll everything back
        with uow:
            handlers._announce_policy(uow, uow.session.get(Policy, pid), clock())
            raise RuntimeError("crash after staging an event")
    assert len(outbox(uow)) == before


def test_the_idempotency_key_and_one_vote_per_voter_are_enforced_by_the_database(uow, clock):
    pid = make_open_policy(uow, clock)["policy_id"]
    submit(uow, clock, pid, idempotency_key="same")
    handlers.cast_vote(uow, c.CastVote(pid, "support", "tok"), clock=clock)
    with uow:
        comment = uow.session.scalar(select(Comment))
        row = {col.name: getattr(comment, col.key) for col in Comment.__table__.columns if col.name != "id"}
        with pytest.raises(IntegrityError):
            uow.session.execute(insert(Comment).values(**{**row, "reference": "other"}))
    with uow:
        vote = uow.session.scalar(select(Vote))
        with pytest.raises(IntegrityError):
            uow.session.execute(insert(Vote).values(policy_id=pid, clause_number=vote.clause_number,
                                                    voter_hash=vote.voter_hash, stance="oppose",
                                                    created_at=clock(), updated_at=clock()))


def test_rate_limits_hold_across_separate_units_of_work(engine, uow, clock):
    pid = make_open_policy(uow, clock)["policy_id"]
    other_process = SqlUnitOfWork(make_session_factory(engine), OutboxMessage, EVENT_SCHEMAS)
    submit(uow, clock, pid, client_ip="198.51.100.4")
    with pytest.raises(RateLimited):
        submit(other_process, clock, pid, client_ip="198.51.100.4")


def test_the_moderation_queue_pages_stably_when_timestamps_tie(uow, clock):
    pid = make_open_policy(uow, clock)["policy_id"]
    ids = [submit(uow, clock, pid, text=f"意见{n}")["comment_id"] for n in range(7)]  # all at the same instant
    seen, cursor = [], None
    while True:
        page = handlers.list_moderation_queue(uow, c.ListModerationQueue(limit=3, cursor=cursor), actor=MODERATOR,
                                              clock=clock)
        seen += [item["comment_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids


def test_reading_a_policy_costs_the_same_number_of_queries_however_many_clauses_and_comments(engine, uow, clock):
    small = make_open_policy(uow, clock, text=None, clauses=(c.ClauseInput(1, "一"),))["policy_id"]
    large = make_open_policy(uow, clock, text=None,
                             clauses=tuple(c.ClauseInput(n, f"条款{n}") for n in range(1, 41)))["policy_id"]
    for policy_id, clauses in ((small, [1]), (large, range(1, 21))):
        for n in clauses:
            comment_id = submit(uow, clock, policy_id, clause_number=n, text=f"意见{n}")["comment_id"]
            approve(uow, clock, comment_id)
            handlers.post_reply(uow, c.PostReply(comment_id, "答复"), actor=OFFICER, clock=clock)
    statements = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        def count(call):
            statements.clear()
            call()
            return len(statements)

        policy_small = count(lambda: handlers.get_policy(uow, c.GetPolicy(small), clock=clock))
        policy_large = count(lambda: handlers.get_policy(uow, c.GetPolicy(large), clock=clock))
        comments_small = count(lambda: handlers.list_public_comments(uow, c.ListPublicComments(small), clock=clock))
        comments_large = count(lambda: handlers.list_public_comments(uow, c.ListPublicComments(large), clock=clock))
        queue = count(lambda: handlers.list_moderation_queue(uow, c.ListModerationQueue(queue="all"),
                                                            actor=MODERATOR, clock=clock))
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert policy_small == policy_large
    assert comments_small == comments_large
    assert queue <= 3


def test_the_csv_export_streams_a_large_policy(uow, engine, clock):
    pid = make_open_policy(uow, clock)["policy_id"]
    with uow:
        uow.session.execute(insert(Comment), [
            {"reference": f"R{n:05d}", "policy_id": pid, "version_number": 1, "stance": "support",
             "original_text": f"原文{n}", "public_text": f"公开{n}", "state": "approved", "flags": [],
             "flagged": False, "text_hash": str(n), "channel": "api", "created_at": clock() + dt.timedelta(seconds=n),
             "support_count": 0}
            for n in range(1500)
        ])
        uow.commit()
    lines = report.iter_approved_comments_csv(uow, pid, batch_size=100)
    header = next(lines)
    rows = list(csv.reader(io.StringIO("".join(lines))))
    assert header.startswith("reference,created_at")
    assert len(rows) == 1500 and rows[0][6] == "公开0" and rows[-1][0] == "R01499"


def test_staff_accounts_lock_out_and_audit_on_both_databases(uow, clock):
    user = accounts.create_user(uow, c.CreateUser("moderator1", "a long password", ("moderator",)), actor=ADMIN,
                                clock=clock)
    for _ in range(5):
        with pytest.raises(Unauthenticated):
            accounts.authenticate(uow, "moderator1", "wrong password", clock())
    with pytest.raises(Unauthenticated) as locked:
        accounts.authenticate(uow, "moderator1", "a long password", clock())
    assert locked.value.retry_after_s is not None
    clock.advance(minutes=16)
    assert accounts.authenticate(uow, "moderator1", "a long password", clock())["user_id"] == user["user_id"]
    actions = [e["action"] for e in accounts.list_audit_log(uow, actor=ADMIN, clock=clock)["items"]]
    assert actions == ["user.login", "user.locked", "user.create"]
    key = accounts.create_site_key(uow, c.CreateSiteKey("日报", ("https://news.example.cn",), {"--tb-accent": "#c00"}),
                                   actor=ADMIN, clock=clock)
    assert accounts.get_site_key(uow, c.GetSiteKey(key["key"]), clock=clock)["theme"] == {"--tb-accent": "#c00"}


def test_link_suggestions_are_idempotent_and_decisions_stick(uow, clock):
    pid = make_open_policy(uow, clock)["policy_id"]
    payload = {"policy_id": pid, "article_id": "x1", "article_title": "报道", "article_url": "https://n.example.cn/x1",
               "article_published_at": "2026-03-02T08:00:00+08:00", "score": 1.0, "matched_terms": ["培训"]}
    handlers.record_link_suggestions(uow, payload, clock=clock)
    [link] = handlers.list_policy_links(uow, c.ListPolicyLinks(pid), actor=EDITOR, clock=clock)
    handlers.decide_link(uow, c.DecideLink(link["link_id"], "confirm"), actor=EDITOR, clock=clock)
    handlers.record_link_suggestions(uow, {**payload, "score": 5.0}, clock=clock)
    [again] = handlers.list_policy_links(uow, c.ListPolicyLinks(pid), actor=EDITOR, clock=clock)
    assert (again["link_id"], again["state"], again["score"]) == (link["link_id"], "confirmed", 5.0)
    [public] = handlers.list_policy_links(uow, c.ListPolicyLinks(pid), clock=clock)
    assert public["link_id"] == link["link_id"] and "score" not in public and "decided_by" not in public
    found = handlers.list_links_for_article(uow, c.ListLinksForArticle("https://n.example.cn/x1"), clock=clock)
    assert [f["policy_id"] for f in found] == [pid]
