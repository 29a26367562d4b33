import pytest

from consultation import commands as c
from consultation import handlers
from consultation.exceptions import Conflict, Forbidden, InvalidTransition, NotFound, ValidationFailed

from .factories import EDITOR, MODERATOR, make_open_policy, make_policy, outbox


def create(uow, clock, policy_id, **overrides):
    fields = {"policy_id": policy_id, "kind": "article", "title": "一图读懂校外培训新规",
              "body_html": "<p>要点<script>alert(1)</script><a href='javascript:x()'>链接</a></p>", **overrides}
    return handlers.create_explanation(uow, c.CreateExplanation(**fields), actor=EDITOR, clock=clock)


def test_an_article_body_is_sanitised_on_write(uow, clock):
    pid = make_open_policy(uow, clock)["policy_id"]
    explanation = create(uow, clock, pid, clause_numbers=(1, 3))
    assert "<script" not in explanation["body_html"] and "javascript:" not in explanation["body_html"]
    assert "要点" in explanation["body_html"]
    assert explanation["state"] == "draft"
    assert explanation["clause_numbers"] == [1, 3]


def test_drafts_are_hidden_from_the_public_until_published(uow, clock):
    pid = make_open_policy(uow, clock)["policy_id"]
    explanation = create(uow, clock, pid)
    assert handlers.list_explanations(uow, c.ListExplanations(pid), clock=clock) == []
    assert len(handlers.list_explanations(uow, c.ListExplanations(pid, include_drafts=True), actor=EDITOR,
                                          clock=clock)) == 1
    with pytest.raises(NotFound):
        handlers.get_explanation(uow, c.GetExplanation(explanation["explanation_id"]), clock=clock)
    handlers.publish_explanation(uow, c.PublishExplanation(explanation["explanation_id"]), actor=EDITOR, clock=clock)
    assert handlers.get_explanation(uow, c.GetExplanation(explanation["explanation_id"]), clock=clock)["title"]
    [public] = handlers.list_explanations(uow, c.ListExplanations(pid), clock=clock)
    assert public["state"] == "published"
    event = outbox(uow, "explanation_published")[-1]
    assert event["body"].startswith("要点") and "<" not in event["body"]
    assert event["department"] == "市教育局"


def test_a_link_explanation_needs_a_web_address(uow, clock):
    pid = make_open_policy(uow, clock)["policy_id"]
    with pytest.raises(ValidationFailed) as caught:
        create(uow, clock, pid, kind="link", body_html=None)
    assert caught.value.errors == {"url": "field.required"}
    link = create(uow, clock, pid, kind="link", body_html=None, url="https://news.example.cn/a/1", outlet="新华网")
    assert (link["url"], link["outlet"]) == ("https://news.example.cn/a/1", "新华网")


def test_explanations_attach_only_to_existing_clauses(uow, clock):
    pid = make_open_policy(uow, clock)["policy_id"]
    with pytest.raises(ValidationFailed):
        create(uow, clock, pid, clause_numbers=(9,))


def test_explanations_of_an_unpublished_policy_cannot_be_published(uow, clock):
    pid = make_policy(uow, clock)["policy_id"]
    explanation = create(uow, clock, pid)
    with pytest.raises(Conflict):
        handlers.publish_explanation(uow, c.PublishExplanation(explanation["explanation_id"]), actor=EDITOR,
                                     clock=clock)


def test_publishing_twice_is_an_invalid_transition_and_editing_republishes(uow, clock):
    pid = make_open_policy(uow, clock)["policy_id"]
    eid = create(uow, clock, pid)["explanation_id"]
    handlers.publish_explanation(uow, c.PublishExplanation(eid), actor=EDITOR, clock=clock)
    with pytest.raises(InvalidTransition):
        handlers.publish_explanation(uow, c.PublishExplanation(eid), actor=EDITOR, clock=clock)
    handlers.update_explanation(uow, c.UpdateExplanation(eid, title="新标题"), actor=EDITOR, clock=clock)
    assert [e["title"] for e in outbox(uow, "explanation_published")] == ["一图读懂校外培训新规", "新标题"]


def test_moderators_do_not_write_explanations(uow, clock):
    pid = make_open_policy(uow, clock)["policy_id"]
    with pytest.raises(Forbidden):
        handlers.create_explanation(uow, c.CreateExplanation(pid, "article", "t", body_html="<p>x</p>"),
                                    actor=MODERATOR, clock=clock)
