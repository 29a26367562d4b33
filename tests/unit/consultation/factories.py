"""Small factories for consultation tests: a unit of work on a real database, a settable clock, actors and drafts."""
from __future__ import annotations

import datetime as dt
import itertools
import json
from dataclasses import replace

from sqlalchemy import select

from consultation import commands as c
from consultation import handlers
from consultation.accounts import Actor
from consultation.events import EVENT_SCHEMAS
from consultation.model import Base, OutboxMessage
from services.kernel.db import make_engine, make_session_factory
from services.kernel.outbox import SqlUnitOfWork

START = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)  # 09:00 in Shanghai

ADMIN = Actor(901, "admin", ("admin",))
OFFICER = Actor(902, "officer", ("policy_officer",))
EDITOR = Actor(903, "editor", ("editor",))
MODERATOR = Actor(904, "moderator", ("moderator",))

DRAFT_TEXT = """关于加强校外培训管理的办法（征求意见稿）
为规范校外培训行为，制定本办法。
第一章 总则
第一条 为了规范校外培训机构的办学行为，根据有关法律法规，制定本办法。
第二条 本办法适用于本市行政区域内面向中小学生的校外培训机构。
第二章 管理
第三条 校外培训机构不得在法定节假日组织学科类培训。
"""

_tokens = itertools.count(1)


class Clock:
    """A clock the test moves by hand; handlers call it to learn 'now'."""

    def __init__(self, now: dt.datetime = START):
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta) -> dt.datetime:
        self.now += dt.timedelta(**delta)
        return self.now


def make_uow(url: str) -> SqlUnitOfWork:
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    return SqlUnitOfWork(make_session_factory(engine), OutboxMessage, EVENT_SCHEMAS)


def outbox(uow: SqlUnitOfWork, event_type: str | None = None) -> list[dict]:
    """Events committed to the outbox in the order they were emitted, as dicts of type and payload.

    Sorted by the envelope's occurred_at: rows of one transaction share a flush, so their created_at may tie.
    """
    with uow:
        rows = uow.session.scalars(select(OutboxMessage)).all()
        events = [{"type": row.event_type, **json.loads(row.payload)} for row in rows]
    events.sort(key=lambda event: event["occurred_at"])
    return [e for e in events if event_type is None or e["type"] == event_type]


def make_policy(uow, clock, *, actor=OFFICER, **overrides) -> dict:
    command = c.CreatePolicy(title="校外培训管理办法", department="市教育局", summary="规范校外培训。",
                             topics=("教育",), text=DRAFT_TEXT)
    return handlers.create_policy(uow, replace(command, **overrides), actor=actor, clock=clock)


def make_open_policy(uow, clock, *, days_open: int = 30, **overrides) -> dict:
    policy = make_policy(uow, clock, **overrides)
    return handlers.open_consultation(
        uow, c.OpenConsultation(policy["policy_id"], close_at=clock() + dt.timedelta(days=days_open)),
        actor=OFFICER, clock=clock,
    )


def new_token() -> str:
    return f"voter-token-{next(_tokens):06d}"


def submit(uow, clock, policy_id: int, **overrides) -> dict:
    fields = {"policy_id": policy_id, "text": "建议增加对培训费用的监管。", "stance": "suggestion",
              "voter_token": new_token(), **overrides}
    return handlers.submit_comment(uow, c.SubmitComment(**fields), clock=clock)


def approve(uow, clock, comment_id: int, actor=MODERATOR) -> dict:
    return handlers.moderate_comment(uow, c.ModerateComment(comment_id, "approve"), actor=actor, clock=clock)
