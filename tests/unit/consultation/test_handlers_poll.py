import pytest
from sqlalchemy import select

from consultation import commands as c
from consultation import handlers
from consultation.exceptions import NotFound, ValidationFailed, WindowClosed
from consultation.model import Vote

from .factories import OFFICER, make_open_policy, make_policy, new_token


@pytest.fixture
def policy(uow, clock):
    return make_open_policy(uow, clock)


def vote(uow, clock, policy_id, stance, token, clause=None):
    return handlers.cast_vote(uow, c.CastVote(policy_id, stance, token, clause), clock=clock)


def test_votes_are_counted_per_policy_and_per_clause(uow, clock, policy):
    pid = policy["policy_id"]
    for stance in ("support", "support", "oppose"):
        vote(uow, clock, pid, stance, new_token())
    vote(uow, clock, pid, "neutral", new_token(), clause=2)
    results = handlers.poll_results(uow, c.GetPollResults(pid), clock=clock)
    assert results["policy"] == {"support": 2, "oppose": 1, "neutral": 0, "total": 3}
    assert results["clauses"][1] == {"clause_number": 2, "support": 0, "oppose": 0, "neutral": 1, "total": 1}
    assert results["clauses"][0]["total"] == 0
    detail = handlers.get_policy(uow, c.GetPolicy(pid), clock=clock)
    assert detail["votes"]["support"] == 2
    assert detail["clauses"][1]["votes"]["neutral"] == 1


def test_one_vote_per_token_which_can_be_changed_while_open(uow, clock, policy):
    pid = policy["policy_id"]
    token = new_token()
    vote(uow, clock, pid, "support", token)
    changed = vote(uow, clock, pid, "oppose", token)
    assert changed["previous_stance"] == "support"
    assert changed["results"]["policy"] == {"support": 0, "oppose": 1, "neutral": 0, "total": 1}


def test_the_voter_token_is_stored_hashed(uow, clock, policy):
    vote(uow, clock, policy["policy_id"], "support", "my-secret-token")
    with uow:
        stored = uow.session.scalar(select(Vote.voter_hash))
    assert stored != "my-secret-token" and len(stored) == 64


def test_votes_after_the_window_closes_are_refused(uow, clock, policy):
    token = new_token()
    vote(uow, clock, policy["policy_id"], "support", token)
    handlers.close_consultation(uow, c.CloseConsultation(policy["policy_id"]), actor=OFFICER, clock=clock)
    with pytest.raises(WindowClosed):
        vote(uow, clock, policy["policy_id"], "oppose", token)


def test_bad_votes_are_field_errors(uow, clock, policy):
    with pytest.raises(ValidationFailed) as caught:
        vote(uow, clock, policy["policy_id"], "suggestion", "")
    assert caught.value.errors == {"stance": "field.choice", "voter_token": "field.required"}
    with pytest.raises(ValidationFailed):
        vote(uow, clock, policy["policy_id"], "support", new_token(), clause=42)


def test_the_poll_of_an_unpublished_draft_is_not_found(uow, clock):
    with pytest.raises(NotFound):
        handlers.poll_results(uow, c.GetPollResults(make_policy(uow, clock)["policy_id"]), clock=clock)
