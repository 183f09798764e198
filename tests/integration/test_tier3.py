"""Tier 3 approval: second approver, typed confirmation, operator reason, in the contract's order (§2, §4)."""

from __future__ import annotations

import pytest
from sqlalchemy import func
from sqlalchemy import select

from audittrail.extensions import db
from audittrail.models import AuditEvent
from audittrail.models import DeploymentAction
from audittrail.services import deciding
from audittrail.services import querying
from audittrail.services.errors import ServiceError
from tests.factories import key_actor
from tests.factories import make_team
from tests.factories import propose

TARGET = "run_8f3a2c91d4e7"


def refused(call, code):
    with pytest.raises(ServiceError) as raised:
        call()
    assert raised.value.code == code
    return raised.value


def assert_unchanged(action):
    db.session.expire_all()
    assert db.session.get(DeploymentAction, action.id).status == "proposed"
    count = db.session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action_id == action.id))
    assert count == 1


def test_tier3_approval_by_proposer_is_refused(app, clock):
    team = make_team(clock())
    action = propose(team.alice_actor, clock(), tier=3, target_ref=TARGET)
    refused(
        lambda: deciding.approve_action(team.alice_actor, action.id, clock(), note="me", confirmation="run_8f3a"),
        "second_approver_required",
    )
    assert_unchanged(action)


def test_tier3_approval_through_the_proposers_own_api_key_is_refused(app, clock):
    team = make_team(clock())
    action = propose(team.alice_actor, clock(), tier=3, target_ref=TARGET)
    alice_key, _ = key_actor(team.alice, clock())
    refused(
        lambda: deciding.approve_action(alice_key, action.id, clock(), note="me", confirmation="run_8f3a"),
        "second_approver_required",
    )
    assert "approve" not in deciding.allowed_transitions(action, alice_key, clock())
    assert_unchanged(action)


def test_tier3_proposed_by_a_key_cannot_be_approved_by_its_owner(app, clock):
    team = make_team(clock())
    alice_key, _ = key_actor(team.alice, clock())
    action = propose(alice_key, clock(), tier=3, target_ref=TARGET)
    refused(
        lambda: deciding.approve_action(team.alice_actor, action.id, clock(), note="me", confirmation="run_8f3a"),
        "second_approver_required",
    )


@pytest.mark.parametrize(
    "confirmation",
    [None, "", "run_8f3", "RUN_8F3A", "Run_8f3a", "run_8f3a2", " run_8f3a", "run_8f3b", TARGET],
    ids=["missing", "empty", "short", "upper", "case-changed", "too-long", "leading-space", "wrong", "whole-ref"],
)
def test_tier3_approval_needs_the_exact_first_eight_characters(app, clock, confirmation):
    team = make_team(clock())
    action = propose(team.alice_actor, clock(), tier=3, target_ref=TARGET)
    error = refused(
        lambda: deciding.approve_action(team.bob_actor, action.id, clock(), note="ok", confirmation=confirmation),
        "confirmation_mismatch",
    )
    assert "confirmation" in error.details
    assert_unchanged(action)


@pytest.mark.parametrize("note", [None, "", "   ", "\n\t"])
def test_tier3_approval_needs_a_non_blank_reason(app, clock, note):
    team = make_team(clock())
    action = propose(team.alice_actor, clock(), tier=3, target_ref=TARGET)
    refused(
        lambda: deciding.approve_action(team.bob_actor, action.id, clock(), note=note, confirmation="run_8f3a"),
        "operator_reason_required",
    )
    assert_unchanged(action)


def test_tier3_short_ref_is_typed_whole(app, clock):
    team = make_team(clock())
    action = propose(team.alice_actor, clock(), tier=3, target_ref="pod-7")
    refused(
        lambda: deciding.approve_action(team.bob_actor, action.id, clock(), note="ok", confirmation="pod-"),
        "confirmation_mismatch",
    )
    approved = deciding.approve_action(team.bob_actor, action.id, clock(), note="ok", confirmation="pod-7")
    assert approved.status == "approved"


def test_tier3_checks_run_in_contract_order(app, clock):
    team = make_team(clock())
    action = propose(team.alice_actor, clock(), tier=3, target_ref=TARGET)
    # Proposer, wrong confirmation, no note: the second-approver rule speaks first.
    refused(lambda: deciding.approve_action(team.alice_actor, action.id, clock()), "second_approver_required")
    # Another person, wrong confirmation, no note: the confirmation speaks before the reason.
    refused(
        lambda: deciding.approve_action(team.bob_actor, action.id, clock(), confirmation="nope"),
        "confirmation_mismatch",
    )


def test_dry_run_is_refused_before_tier3_rules(app, clock):
    team = make_team(clock())
    action = propose(team.alice_actor, clock(), tier=3, mode="dry_run", target_ref=TARGET)
    refused(lambda: deciding.approve_action(team.alice_actor, action.id, clock()), "invalid_transition")


def test_status_is_checked_first(app, clock):
    team = make_team(clock())
    action = propose(team.alice_actor, clock(), tier=3, target_ref=TARGET)
    deciding.reject_action(team.bob_actor, action.id, clock(), note="no")
    refused(lambda: deciding.approve_action(team.alice_actor, action.id, clock()), "invalid_transition")


def test_tier3_approval_with_everything_right(app, clock):
    team = make_team(clock())
    action = propose(team.alice_actor, clock(), tier=3, target_ref=TARGET)
    approved = deciding.approve_action(
        team.bob_actor, action.id, clock(), note="  runaway confirmed  ", confirmation="run_8f3a"
    )
    assert approved.status == "approved"
    assert approved.approved_by_id == team.bob.id
    assert approved.approver_note == "  runaway confirmed  "


def test_tier2_does_not_need_confirmation_or_note_and_may_be_self_approved(app, clock):
    team = make_team(clock())
    action = propose(team.alice_actor, clock(), tier=2)
    assert deciding.approve_action(team.alice_actor, action.id, clock()).status == "approved"


@pytest.mark.parametrize(
    ("scopes", "allowed"),
    [
        (["actions:read"], []),
        (["actions:read", "actions:propose"], []),
        (["actions:decide"], ["approve", "reject"]),
        (["actions:execute"], []),
    ],
)
def test_allowed_transitions_respect_key_scopes(app, clock, scopes, allowed):
    team = make_team(clock())
    action = propose(team.alice_actor, clock(), tier=3, target_ref=TARGET)
    bob_key, _ = key_actor(team.bob, clock(), scopes=scopes)
    assert deciding.allowed_transitions(action, bob_key, clock()) == allowed


def test_missing_scope_is_forbidden_at_the_service(app, clock):
    team = make_team(clock())
    action = propose(team.alice_actor, clock(), tier=2)
    runner, _ = key_actor(team.bob, clock(), scopes=["actions:execute"])
    refused(lambda: deciding.approve_action(runner, action.id, clock()), "forbidden")
    agent, _ = key_actor(team.bob, clock(), scopes=["actions:propose"])
    refused(lambda: querying.get_action(agent, action.id, clock()), "forbidden")
    assert_unchanged(action)


@pytest.mark.parametrize(
    ("tier", "target_ref", "text"), [(3, TARGET, "run_8f3a"), (3, "pod-7", "pod-7"), (2, TARGET, None)]
)
def test_view_tells_clients_what_to_type(app, clock, tier, target_ref, text):
    team = make_team(clock())
    action = propose(team.alice_actor, clock(), tier=tier, target_ref=target_ref)
    assert querying.snapshot(action, team.bob_actor, clock()).confirmation_text == text
