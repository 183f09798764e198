"""Every (status × transition × mode × tier) the state machine can reach, against the contract §3–§4."""

from __future__ import annotations

import pytest
from sqlalchemy import func
from sqlalchemy import select

from audittrail.extensions import db
from audittrail.models import AuditEvent
from audittrail.models import DeploymentAction
from audittrail.services import deciding
from audittrail.services import expiry
from audittrail.services import querying
from audittrail.services.errors import ServiceError
from tests.factories import approve
from tests.factories import make_team
from tests.factories import propose

MODES = ["dry_run", "supervised", "autonomous"]
TIERS = [1, 2, 3]
STATUSES = ["proposed", "approved", "rejected", "executed", "expired"]
TRANSITIONS = ["approve", "reject", "mark-executed"]

# The contract, written out by hand: what each transition does from each status.
# "ok" means the call succeeds; otherwise the error code it must answer.
EXPECTED = {
    ("proposed", "approve"): "ok",
    ("proposed", "reject"): "ok",
    ("proposed", "mark-executed"): "invalid_transition",
    ("approved", "approve"): "invalid_transition",
    ("approved", "reject"): "ok",
    ("approved", "mark-executed"): "ok",
    ("rejected", "approve"): "invalid_transition",
    ("rejected", "reject"): "invalid_transition",
    ("rejected", "mark-executed"): "invalid_transition",
    ("executed", "approve"): "invalid_transition",
    ("executed", "reject"): "invalid_transition",
    ("executed", "mark-executed"): "invalid_transition",
    ("expired", "approve"): "invalid_transition",
    ("expired", "reject"): "invalid_transition",
    ("expired", "mark-executed"): "invalid_transition",
}
TARGET_STATUS = {"approve": "approved", "reject": "rejected", "mark-executed": "executed"}


def reachable(status: str, mode: str, tier: int) -> bool:
    """Whether the rules let an action be in `status` with this mode and tier."""
    autonomous_tier1 = mode == "autonomous" and tier == 1
    if autonomous_tier1:
        return status == "executed"  # executed on creation, nothing else
    if mode == "dry_run":
        return status in {"proposed", "rejected", "expired"}
    return True


def expected_result(status: str, transition: str, mode: str) -> str:
    result = EXPECTED[(status, transition)]
    if result == "ok" and mode == "dry_run" and transition in {"approve", "mark-executed"}:
        return "invalid_transition"
    return result


CASES = [
    pytest.param(status, transition, mode, tier, id=f"{status}-{transition}-{mode}-tier{tier}")
    for status in STATUSES
    for transition in TRANSITIONS
    for mode in MODES
    for tier in TIERS
    if reachable(status, mode, tier)
]


def bring_to(status, mode, tier, team, clock):
    """Propose as Alice, then drive the action to `status` through the service layer."""
    action = propose(team.alice_actor, clock(), tier=tier, mode=mode, ttl=600)
    if status == "proposed" or action.status == status:
        return action
    if status == "expired":
        clock.advance(seconds=601)
        expiry.expire_due(clock())
        return db.session.get(DeploymentAction, action.id)
    if status == "rejected":
        return deciding.reject_action(team.bob_actor, action.id, clock(), note="no")
    approved = approve(team.bob_actor, action, clock())
    if status == "approved":
        return approved
    return deciding.mark_executed(team.bob_actor, action.id, clock(), outcome={"ok": True})


def call(transition, action, team, clock):
    actor = team.bob_actor  # never the proposer, with every scope
    if transition == "approve":
        return approve(actor, action, clock())
    if transition == "reject":
        return deciding.reject_action(actor, action.id, clock(), note="not now")
    return deciding.mark_executed(actor, action.id, clock(), outcome={"exit_code": 0})


def event_count(action_id):
    return db.session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action_id == action_id))


@pytest.mark.parametrize(("status", "transition", "mode", "tier"), CASES)
def test_transition_matrix(app, clock, status, transition, mode, tier):
    team = make_team(clock())
    action = bring_to(status, mode, tier, team, clock)
    assert action.status == status
    events_before = event_count(action.id)
    expected = expected_result(status, transition, mode)

    if expected == "ok":
        result = call(transition, action, team, clock)
        assert result.status == TARGET_STATUS[transition]
        assert event_count(action.id) == events_before + 1
    else:
        with pytest.raises(ServiceError) as raised:
            call(transition, action, team, clock)
        assert raised.value.code == expected
        db.session.expire_all()
        assert db.session.get(DeploymentAction, action.id).status == status
        assert event_count(action.id) == events_before


@pytest.mark.parametrize(("status", "transition", "mode", "tier"), CASES)
def test_allowed_transitions_match_the_matrix(app, clock, status, transition, mode, tier):
    team = make_team(clock())
    action = bring_to(status, mode, tier, team, clock)
    allowed = deciding.allowed_transitions(action, team.bob_actor, clock())
    assert (transition in allowed) == (expected_result(status, transition, mode) == "ok")


@pytest.mark.parametrize("tier", TIERS)
def test_autonomous_mode_executes_only_tier1_on_creation(app, clock, tier):
    team = make_team(clock())
    action = propose(team.alice_actor, clock(), tier=tier, mode="autonomous")
    if tier == 1:
        assert action.status == "executed"
        assert action.executed_at == clock()
        types = [e.type for e in db.session.scalars(select(AuditEvent).where(AuditEvent.action_id == action.id))]
        assert types == ["proposed", "executed"]
    else:
        assert action.status == "proposed"
        assert event_count(action.id) == 1


def test_dry_run_tier1_autonomous_is_not_possible_and_dry_run_never_executes(app, clock):
    team = make_team(clock())
    action = propose(team.alice_actor, clock(), tier=1, mode="dry_run")
    assert action.status == "proposed"
    assert deciding.allowed_transitions(action, team.bob_actor, clock()) == ["reject"]


def test_proposal_fields_never_change_after_transitions(app, clock):
    team = make_team(clock())
    action = propose(team.alice_actor, clock(), tier=3, payload={"signal": "SIGTERM"})
    fields = [
        "action_type",
        "tier",
        "target_ref",
        "reason",
        "mode",
        "payload",
        "ttl_seconds",
        "proposed_by_id",
        "proposed_at",
        "expires_at",
    ]
    before = {name: getattr(action, name) for name in fields}
    approve(team.bob_actor, action, clock.advance(seconds=5))
    after = deciding.mark_executed(team.bob_actor, action.id, clock.advance(seconds=5), outcome={"ok": True})
    assert {name: getattr(after, name) for name in fields} == before


def test_approval_records_who_when_and_note(app, clock):
    team = make_team(clock())
    action = propose(team.alice_actor, clock(), tier=2)
    approved = deciding.approve_action(team.bob_actor, action.id, clock.advance(seconds=30), note="go")
    assert (approved.approved_by_id, approved.approved_at, approved.approver_note) == (team.bob.id, clock(), "go")
    rejected = deciding.reject_action(team.alice_actor, action.id, clock.advance(seconds=30), note="changed my mind")
    assert (rejected.rejected_by_id, rejected.rejection_note) == (team.alice.id, "changed my mind")


def test_another_workspace_action_is_not_found(app, clock):
    ours = make_team(clock(), name="Ours")
    theirs = make_team(clock(), name="Theirs")
    action = propose(theirs.alice_actor, clock(), tier=2)
    for attempt in (
        lambda: querying.get_action(ours.alice_actor, action.id, clock()),
        lambda: approve(ours.bob_actor, action, clock()),
        lambda: deciding.reject_action(ours.bob_actor, action.id, clock()),
        lambda: deciding.mark_executed(ours.bob_actor, action.id, clock()),
    ):
        with pytest.raises(ServiceError) as raised:
            attempt()
        assert raised.value.code == "not_found"
    assert db.session.get(DeploymentAction, action.id).status == "proposed"
