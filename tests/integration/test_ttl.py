"""TTL: the approval window of proposed rows, with a fake clock (contract §4)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from audittrail.extensions import db
from audittrail.models import AuditEvent
from audittrail.models import DeploymentAction
from audittrail.services import deciding
from audittrail.services import expiry
from audittrail.services import proposing
from audittrail.services import querying
from audittrail.services.errors import ServiceError
from tests.factories import approve
from tests.factories import make_team
from tests.factories import propose


def events_of(action_id):
    return [
        e.type
        for e in db.session.scalars(
            select(AuditEvent).where(AuditEvent.action_id == action_id).order_by(AuditEvent.seq)
        )
    ]


def test_expires_at_is_proposed_at_plus_ttl(app, clock):
    team = make_team(clock())
    action = propose(team.alice_actor, clock(), ttl=900)
    assert (action.expires_at - action.proposed_at).total_seconds() == 900


def test_approval_one_second_before_expiry_succeeds(app, clock):
    team = make_team(clock())
    action = propose(team.alice_actor, clock(), ttl=60)
    clock.advance(seconds=59)
    assert approve(team.bob_actor, action, clock()).status == "approved"


@pytest.mark.parametrize("transition", ["approve", "reject", "mark-executed"])
def test_transition_on_a_proposed_row_past_ttl_flips_it_and_answers_expired(app, clock, transition):
    team = make_team(clock())
    action = propose(team.alice_actor, clock(), ttl=60)
    clock.advance(seconds=60)
    call = {
        "approve": lambda: approve(team.bob_actor, action, clock()),
        "reject": lambda: deciding.reject_action(team.bob_actor, action.id, clock()),
        "mark-executed": lambda: deciding.mark_executed(team.bob_actor, action.id, clock()),
    }[transition]
    with pytest.raises(ServiceError) as raised:
        call()
    assert raised.value.code == "expired"
    db.session.expire_all()
    row = db.session.get(DeploymentAction, action.id)
    assert row.status == "expired"
    assert row.expired_at == action.expires_at
    assert events_of(action.id) == ["proposed", "expired"]

    # Once flipped it is an ordinary final row: a second attempt is a plain 409 and writes nothing.
    with pytest.raises(ServiceError) as again:
        call()
    assert again.value.code == "invalid_transition"
    assert events_of(action.id) == ["proposed", "expired"]


def test_expiry_is_checked_before_mode(app, clock):
    team = make_team(clock())
    action = propose(team.alice_actor, clock(), mode="dry_run", ttl=60)
    clock.advance(hours=1)
    with pytest.raises(ServiceError) as raised:
        approve(team.bob_actor, action, clock())
    assert raised.value.code == "expired"


def test_expiry_is_checked_before_tier3_rules(app, clock):
    team = make_team(clock())
    action = propose(team.alice_actor, clock(), tier=3, ttl=60)
    clock.advance(hours=1)
    with pytest.raises(ServiceError) as raised:
        deciding.approve_action(team.alice_actor, action.id, clock())  # proposer, no confirmation
    assert raised.value.code == "expired"


def test_approved_rows_do_not_expire(app, clock):
    team = make_team(clock())
    action = propose(team.alice_actor, clock(), ttl=60)
    approve(team.bob_actor, action, clock())
    clock.advance(days=3)
    assert expiry.expire_due(clock()) == 0
    executed = deciding.mark_executed(team.bob_actor, action.id, clock())
    assert executed.status == "executed"


def test_sweep_expires_each_due_row_once_with_one_event(app, clock):
    team = make_team(clock())
    due = [propose(team.alice_actor, clock(), ttl=60) for _ in range(3)]
    fresh = propose(team.alice_actor, clock(), ttl=7200)
    clock.advance(minutes=5)
    assert expiry.expire_due(clock()) == 3
    assert expiry.expire_due(clock()) == 0
    for action in due:
        assert events_of(action.id) == ["proposed", "expired"]
    assert db.session.get(DeploymentAction, fresh.id).status == "proposed"


@pytest.mark.parametrize("read", ["detail", "list", "summary"])
def test_reads_show_a_past_ttl_row_as_expired(app, clock, read):
    team = make_team(clock())
    action = propose(team.alice_actor, clock(), ttl=60)
    clock.advance(seconds=61)
    actor = team.bob_actor
    if read == "detail":
        seen = querying.get_action(actor, action.id, clock())
        assert (seen.status, seen.expired_at) == ("expired", action.expires_at)
        assert deciding.allowed_transitions(seen, actor, clock()) == []
    elif read == "list":
        items, _ = querying.list_actions(actor, clock(), status="expired")
        assert [item.id for item in items] == [action.id]
        assert querying.list_actions(actor, clock(), status="proposed")[0] == []
    else:
        counts = querying.summary(actor, clock())
        assert counts["by_status"]["expired"] == 1
        assert counts["proposed"] == 0 and counts["pending_approval"] == 0
    assert events_of(action.id) == ["proposed", "expired"]


def test_allowed_transitions_are_empty_once_ttl_has_passed_even_before_the_flip(app, clock):
    team = make_team(clock())
    action = propose(team.alice_actor, clock(), ttl=60)
    assert deciding.allowed_transitions(action, team.bob_actor, clock()) == ["approve", "reject"]
    clock.advance(seconds=60)
    assert deciding.allowed_transitions(action, team.bob_actor, clock()) == []


@pytest.mark.parametrize(("ttl", "ok"), [(59, False), (60, True), (604800, True), (604801, False)])
def test_ttl_bounds_follow_policy(app, clock, ttl, ok):
    team = make_team(clock())
    proposal = proposing.Proposal(action_type="alert", target_ref="x", reason="r", ttl_seconds=ttl)
    if ok:
        assert proposing.propose_action(team.alice_actor, proposal, clock()).action.ttl_seconds == ttl
    else:
        with pytest.raises(ServiceError) as raised:
            proposing.propose_action(team.alice_actor, proposal, clock())
        assert raised.value.code == "validation_error"
        assert "ttl_seconds" in raised.value.details


def test_lowered_ttl_minimum_is_configurable(app, clock):
    team = make_team(clock())
    proposal = proposing.Proposal(action_type="alert", target_ref="x", reason="r", ttl_seconds=2)
    policy = proposing.ProposalSettings(ttl_min_seconds=1)
    assert proposing.propose_action(team.alice_actor, proposal, clock(), settings=policy).action.ttl_seconds == 2


def test_default_ttl_comes_from_policy(app, clock):
    team = make_team(clock())
    proposal = proposing.Proposal(action_type="alert", target_ref="x", reason="r")
    policy = proposing.ProposalSettings(default_ttl_seconds=1800)
    assert proposing.propose_action(team.alice_actor, proposal, clock(), settings=policy).action.ttl_seconds == 1800
