import pytest

from consultation import commands as c
from consultation import handlers
from consultation.exceptions import Conflict, Forbidden, InvalidTransition, ValidationFailed

from .factories import EDITOR, MODERATOR, make_open_policy, outbox


def suggestion(policy_id, article_id="art-1", **overrides):
    return {
        "policy_id": policy_id,
        "article_id": article_id,
        "article_title": "校外培训新规征求意见",
        "article_url": f"https://news.example.cn/{article_id}.html",
        "article_outlet": "示例日报",
        "article_published_at": "2026-03-02T08:00:00+08:00",
        "score": 3.5,
        "clause_number": 3,
        "matched_terms": ["校外培训", "节假日"],
        **overrides,
    }


@pytest.fixture
def pid(uow, clock):
    return make_open_policy(uow, clock)["policy_id"]


def staff_links(uow, clock, pid, state=None):
    return handlers.list_policy_links(uow, c.ListPolicyLinks(pid, state), actor=EDITOR, clock=clock)


def test_a_suggestion_becomes_one_suggested_link_with_its_score_and_terms(uow, clock, pid):
    assert handlers.record_link_suggestions(uow, suggestion(pid), clock=clock) == {
        "created": 1, "updated": 0, "stale": 0, "skipped": 0}
    [link] = staff_links(uow, clock, pid)
    assert (link["state"], link["score"], link["matched_terms"], link["clause_number"]) == (
        "suggested", 3.5, ["校外培训", "节假日"], 3)
    assert link["article_published_at"].isoformat() == "2026-03-02T00:00:00+00:00"


def test_the_same_suggestion_twice_stays_one_link_with_the_new_score(uow, clock, pid):
    handlers.record_link_suggestions(uow, suggestion(pid), clock=clock)
    assert handlers.record_link_suggestions(uow, suggestion(pid, score=4.25), clock=clock)["updated"] == 1
    [link] = staff_links(uow, clock, pid)
    assert link["score"] == 4.25


def test_a_new_suggestion_does_not_reset_a_decided_link(uow, clock, pid):
    handlers.record_link_suggestions(uow, suggestion(pid), clock=clock)
    link_id = staff_links(uow, clock, pid)[0]["link_id"]
    handlers.decide_link(uow, c.DecideLink(link_id, "reject"), actor=EDITOR, clock=clock)
    handlers.record_link_suggestions(uow, suggestion(pid, score=9.0, clause_number=1), clock=clock)
    [link] = staff_links(uow, clock, pid)
    assert (link["state"], link["decided_by"], link["clause_number"]) == ("rejected", "editor", 3)


def test_a_batch_payload_is_accepted_and_bad_items_are_skipped(uow, clock, pid):
    payload = {"suggestions": [suggestion(pid, "a"), suggestion(pid, "b"), suggestion(999, "c"),
                               suggestion(pid, "d", article_url="ftp://x"), {"policy_id": "x"}]}
    assert handlers.record_link_suggestions(uow, payload, clock=clock) == {
        "created": 2, "updated": 0, "stale": 0, "skipped": 3}


def test_confirming_publishes_the_link_and_emits_link_confirmed(uow, clock, pid):
    handlers.record_link_suggestions(uow, suggestion(pid), clock=clock)
    assert handlers.list_policy_links(uow, c.ListPolicyLinks(pid), clock=clock) == []
    link_id = staff_links(uow, clock, pid)[0]["link_id"]
    handlers.decide_link(uow, c.DecideLink(link_id, "confirm"), actor=EDITOR, clock=clock)
    [public] = handlers.list_policy_links(uow, c.ListPolicyLinks(pid), clock=clock)
    assert public["article_url"] == "https://news.example.cn/art-1.html"
    event = outbox(uow, "link_confirmed")[-1]
    assert (event["link_id"], event["matched_terms"]) == (link_id, ["校外培训", "节假日"])
    with pytest.raises(InvalidTransition):
        handlers.decide_link(uow, c.DecideLink(link_id, "confirm"), actor=EDITOR, clock=clock)


def test_only_editors_decide_links(uow, clock, pid):
    handlers.record_link_suggestions(uow, suggestion(pid), clock=clock)
    link_id = staff_links(uow, clock, pid)[0]["link_id"]
    with pytest.raises(Forbidden):
        handlers.decide_link(uow, c.DecideLink(link_id, "confirm"), actor=MODERATOR, clock=clock)


def test_an_editor_links_an_article_by_hand(uow, clock, pid):
    link = handlers.create_link(
        uow, c.CreateLink(pid, "评论：校外培训该怎么管", "https://opinion.example.cn/1", article_outlet="观察"),
        actor=EDITOR, clock=clock)
    assert (link["state"], link["origin"]) == ("confirmed", "manual")
    with pytest.raises(Conflict):
        handlers.create_link(uow, c.CreateLink(pid, "again", "https://opinion.example.cn/1"), actor=EDITOR,
                             clock=clock)
    with pytest.raises(ValidationFailed):
        handlers.create_link(uow, c.CreateLink(pid, "bad", "not a url"), actor=EDITOR, clock=clock)


def test_the_widget_finds_confirmed_consultations_for_an_article_url(uow, clock, pid):
    other = make_open_policy(uow, clock, title="另一项政策")["policy_id"]
    for policy_id in (pid, other):
        handlers.record_link_suggestions(uow, suggestion(policy_id), clock=clock)
    first_link = staff_links(uow, clock, pid)[0]["link_id"]
    handlers.decide_link(uow, c.DecideLink(first_link, "confirm"), actor=EDITOR, clock=clock)
    found = handlers.list_links_for_article(uow, c.ListLinksForArticle("https://news.example.cn/art-1.html"),
                                            clock=clock)
    assert [(f["policy_id"], f["accepting_comments"]) for f in found] == [(pid, True)]
    assert handlers.list_links_for_article(uow, c.ListLinksForArticle("https://news.example.cn/none"),
                                           clock=clock) == []


def test_links_without_a_publication_date_come_last_on_every_database(uow, clock, pid):
    handlers.record_link_suggestions(uow, suggestion(pid, "undated", article_published_at=None), clock=clock)
    handlers.record_link_suggestions(uow, suggestion(pid, "dated"), clock=clock)
    assert [link["article_id"] for link in staff_links(uow, clock, pid)] == ["dated", "undated"]


def test_a_suggestion_event_older_than_the_one_applied_is_ignored(uow, clock, pid):
    newer = {"occurred_at": "2026-03-02T10:00:00+00:00", "links": [suggestion(pid, score=0.9)]}
    older = {"occurred_at": "2026-03-02T09:59:59+00:00", "links": [suggestion(pid, score=0.6)]}
    handlers.record_link_suggestions(uow, newer, clock=clock)
    assert handlers.record_link_suggestions(uow, older, clock=clock)["stale"] == 1
    assert staff_links(uow, clock, pid)[0]["score"] == 0.9


def test_weighted_matched_terms_are_reduced_to_their_text(uow, clock, pid):
    terms = [{"term": "停车", "weight": 2.0}, {"term": "收费", "weight": 1.0}, {"weight": 0.5}]
    handlers.record_link_suggestions(uow, suggestion(pid, matched_terms=terms), clock=clock)
    assert staff_links(uow, clock, pid)[0]["matched_terms"] == ["停车", "收费"]
