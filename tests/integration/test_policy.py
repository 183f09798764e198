"""Members, roles and N-of-M approvals through the service layer (policy.md), on every backend."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from sqlalchemy import func
from sqlalchemy import select

from audittrail.domain import DEFAULT_TIER_RULES
from audittrail.domain import Role
from audittrail.domain import TierRule
from audittrail.extensions import db
from audittrail.models import ActionApproval
from audittrail.models import ApiKey
from audittrail.models import AuditEvent
from audittrail.models import DeploymentAction
from audittrail.services import api_keys
from audittrail.services import audit
from audittrail.services import deciding
from audittrail.services import members
from audittrail.services import policy
from audittrail.services import querying
from audittrail.services.actors import user_actor
from audittrail.services.errors import ServiceError
from tests.factories import add_member
from tests.factories import approve
from tests.factories import key_actor
from tests.factories import make_team
from tests.factories import propose
from tests.integration.test_audit import tamper


def refused(call, code):
    with pytest.raises(ServiceError) as raised:
        call()
    assert raised.value.code == code, raised.value.message
    return raised.value


def two_of(tier: int, **changes) -> dict[int, TierRule]:
    return {**DEFAULT_TIER_RULES, tier: replace(DEFAULT_TIER_RULES[tier], approvals_required=2, **changes)}


def action_events(action_id):
    db.session.expire_all()
    query = select(AuditEvent).where(AuditEvent.action_id == action_id).order_by(AuditEvent.seq)
    return list(db.session.scalars(query))


def workspace_events(workspace_id):
    query = select(AuditEvent).where(AuditEvent.workspace_id == workspace_id, AuditEvent.action_id.is_(None))
    return list(db.session.scalars(query.order_by(AuditEvent.seq)))


@pytest.fixture
def team(app, clock):
    team = make_team(clock())
    team.admin = add_member(team, clock(), "Ada", role="admin")
    return team


# ----------------------------------------------------------------------------- roles


@pytest.mark.parametrize(
    "call",
    [
        lambda actor, action, now: propose(actor, now),
        lambda actor, action, now: approve(actor, action, now),
        lambda actor, action, now: deciding.reject_action(actor, action.id, now),
        lambda actor, action, now: deciding.mark_executed(actor, action.id, now),
    ],
    ids=["propose", "approve", "reject", "mark-executed"],
)
def test_a_viewer_may_only_read(team, clock, call):
    viewer = user_actor(add_member(team, clock(), "Vic", role="viewer"))
    action = propose(team.alice_actor, clock())
    error = refused(lambda: call(viewer, action, clock()), "forbidden")
    assert error.details["required_roles"] == ["operator", "approver", "admin"]
    assert querying.get_action(viewer, action.id, clock()).id == action.id


def test_an_operator_may_not_approve_tier3_under_the_default_policy_but_may_withdraw_its_own(team, clock):
    operator = user_actor(add_member(team, clock(), "Olu", role="operator"))
    others = propose(team.alice_actor, clock(), tier=3)
    error = refused(lambda: approve(operator, others, clock()), "forbidden")
    assert error.details == {"required_roles": ["approver", "admin"]}
    refused(lambda: deciding.reject_action(operator, others.id, clock()), "forbidden")

    own = propose(operator, clock(), tier=3)
    assert querying.snapshot(own, operator, clock()).allowed_transitions == ["reject"]
    assert deciding.reject_action(operator, own.id, clock(), note="Withdrawn: wrong run").status == "rejected"


def test_an_api_key_never_does_more_than_its_owners_role(team, clock):
    viewer = add_member(team, clock(), "Vic", role="viewer")
    key, _ = key_actor(viewer, clock())  # all four scopes
    refused(lambda: propose(key, clock()), "forbidden")
    action = propose(team.alice_actor, clock())
    assert querying.snapshot(action, key, clock()).allowed_transitions == []


def test_a_role_change_applies_to_the_next_call(team, clock):
    action = propose(team.alice_actor, clock(), tier=3)
    members.change_role(user_actor(team.admin), team.bob.id, "operator", clock())
    db.session.refresh(team.bob)
    refused(lambda: approve(user_actor(team.bob), action, clock()), "forbidden")


# ----------------------------------------------------------------------------- members


def test_changing_a_role_records_who_from_and_to_in_the_chain(team, clock):
    admin = user_actor(team.admin, "req-role")
    member = members.change_role(admin, team.bob.id, "viewer", clock())
    assert member.role == "viewer"
    (event,) = [e for e in workspace_events(team.workspace.id) if e.type == "member_role_changed"]
    assert json.loads(event.data) == {"member_id": team.bob.id, "from": "approver", "to": "viewer"}
    assert (event.actor_user_id, event.request_id) == (team.admin.id, "req-role")
    assert audit.verify_chain() is None


def test_setting_the_same_role_again_writes_nothing(team, clock):
    before = len(workspace_events(team.workspace.id))
    members.change_role(user_actor(team.admin), team.bob.id, "approver", clock())
    assert len(workspace_events(team.workspace.id)) == before


def test_only_an_admin_changes_roles(team, clock):
    error = refused(lambda: members.change_role(team.alice_actor, team.bob.id, "viewer", clock()), "forbidden")
    assert error.details == {"required_roles": ["admin"]}


def test_the_last_admin_cannot_be_demoted(team, clock):
    refused(lambda: members.change_role(user_actor(team.admin), team.admin.id, "approver", clock()), "last_admin")
    members.change_role(user_actor(team.admin), team.alice.id, "admin", clock())
    assert members.change_role(user_actor(team.admin), team.admin.id, "approver", clock()).role == "approver"


def test_another_workspaces_member_is_not_found(team, clock):
    other = make_team(clock(), name="Elsewhere")
    refused(lambda: members.change_role(user_actor(team.admin), other.bob.id, "viewer", clock()), "not_found")


# ----------------------------------------------------------------------------- the policy


def test_the_rule_is_fixed_at_proposal(team, clock):
    before = propose(team.alice_actor, clock(), tier=2)
    policy.replace_policy(user_actor(team.admin), two_of(2), clock())
    after = propose(team.alice_actor, clock(), tier=2)

    assert approve(team.bob_actor, before, clock()).status == "approved"
    assert approve(team.bob_actor, after, clock()).status == "proposed"
    assert db.session.get(DeploymentAction, after.id).policy["approvals_required"] == 2


def test_a_policy_change_is_an_event_with_from_and_to(team, clock):
    document = policy.replace_policy(user_actor(team.admin), two_of(3), clock())
    assert document.tiers[3].approvals_required == 2 and document.updated_by.id == team.admin.id
    (event,) = [e for e in workspace_events(team.workspace.id) if e.type == "policy_changed"]
    data = json.loads(event.data)
    assert data["from"]["3"]["approvals_required"] == 1 and data["to"]["3"]["approvals_required"] == 2
    # The same document again changes nothing and writes nothing.
    policy.replace_policy(user_actor(team.admin), two_of(3), clock())
    assert len([e for e in workspace_events(team.workspace.id) if e.type == "policy_changed"]) == 1


def test_only_an_admin_replaces_the_policy_and_tier3_always_needs_a_second_person(team, clock):
    refused(lambda: policy.replace_policy(team.alice_actor, two_of(2), clock()), "forbidden")
    error = refused(
        lambda: policy.replace_policy(user_actor(team.admin), two_of(3, allow_self_approval=True), clock()),
        "validation_error",
    )
    assert list(error.details) == ["tiers.3.allow_self_approval"]
    assert policy.get_policy(team.alice_actor).updated_at is None


# ----------------------------------------------------------------------------- N of M


def test_two_of_m_records_the_first_approval_and_approves_on_the_second(team, clock):
    policy.replace_policy(user_actor(team.admin), two_of(2), clock())
    action = propose(team.alice_actor, clock(), tier=2)

    first = deciding.approve_action(team.bob_actor, action.id, clock(), note="looks right")
    assert (first.status, first.approvals_received, first.approved_at, first.approved_by_id) == (
        "proposed",
        1,
        None,
        None,
    )
    second = deciding.approve_action(user_actor(team.admin), action.id, clock.advance(seconds=5), note="agreed")
    assert (second.status, second.approvals_received, second.approved_by_id) == ("approved", 2, team.admin.id)
    assert second.approver_note == "agreed"

    types = [e.type for e in action_events(action.id)]
    assert types == ["proposed", "approval_recorded", "approved"]
    approved = json.loads(action_events(action.id)[-1].data)
    assert approved["approvers"] == [{"id": team.bob.id, "name": "Bob"}, {"id": team.admin.id, "name": "Ada"}]
    seen = querying.snapshot(second, team.alice_actor, clock())
    assert [(a.user.name, a.note) for a in seen.approvals] == [("Bob", "looks right"), ("Ada", "agreed")]
    assert (seen.approvals_required, seen.approvals_received) == (2, 2)


def test_nobody_approves_twice(team, clock):
    policy.replace_policy(user_actor(team.admin), two_of(2), clock())
    action = propose(team.alice_actor, clock(), tier=2)
    approve(team.bob_actor, action, clock())
    bob_key, _ = key_actor(team.bob, clock())
    refused(lambda: approve(bob_key, action, clock()), "already_approved")
    assert "approve" not in querying.snapshot(action, team.bob_actor, clock()).allowed_transitions
    assert db.session.scalar(select(func.count()).select_from(ActionApproval)) == 1


def test_reject_is_a_veto_whatever_the_count(team, clock):
    policy.replace_policy(user_actor(team.admin), two_of(2), clock())
    action = propose(team.alice_actor, clock(), tier=2)
    approve(team.bob_actor, action, clock())
    rejected = deciding.reject_action(user_actor(team.admin), action.id, clock(), note="Not during the freeze")
    assert rejected.status == "rejected" and rejected.approvals_received == 1


def test_tier1_autonomous_executes_on_creation_whatever_its_approvals_required(team, clock):
    policy.replace_policy(user_actor(team.admin), two_of(1), clock())
    assert propose(team.alice_actor, clock(), tier=1, mode="autonomous").status == "executed"


# ----------------------------------------------------------------------------- identity lineage


@pytest.fixture
def agent(team, clock):
    """Bot, an agent of Bob's, with role approver (so only the two-person rule can refuse it)."""
    return add_member(team, clock(), "Bot", role="approver", kind="agent", owner=team.bob)


def test_the_owner_of_the_proposing_agent_cannot_approve_tier3(team, clock, agent):
    action = propose(user_actor(agent), clock(), tier=3)
    refused(lambda: approve(team.bob_actor, action, clock()), "second_approver_required")
    bob_key, _ = key_actor(team.bob, clock())
    refused(lambda: approve(bob_key, action, clock()), "second_approver_required")
    assert approve(team.alice_actor, action, clock()).status == "approved"


def test_an_agent_cannot_approve_its_owners_tier3_proposal(team, clock, agent):
    action = propose(team.bob_actor, clock(), tier=3)
    agent_key, _ = key_actor(agent, clock())
    refused(lambda: approve(agent_key, action, clock()), "second_approver_required")
    assert "approve" not in querying.snapshot(action, user_actor(agent), clock()).allowed_transitions


def test_an_agent_and_its_owner_count_as_one_approval(team, clock, agent):
    policy.replace_policy(user_actor(team.admin), two_of(2), clock())
    action = propose(team.alice_actor, clock(), tier=2)
    approve(team.bob_actor, action, clock())
    refused(lambda: approve(user_actor(agent), action, clock()), "already_approved")
    assert approve(user_actor(team.admin), action, clock()).status == "approved"


def test_the_owner_may_withdraw_the_agents_proposal(team, clock, agent):
    action = propose(user_actor(agent), clock(), tier=3)
    operator_owner = add_member(team, clock(), "Oona", role="operator")
    their_agent = add_member(team, clock(), "Scout", role="operator", kind="agent", owner=operator_owner)
    by_agent = propose(user_actor(their_agent), clock(), tier=3)
    assert deciding.reject_action(user_actor(operator_owner), by_agent.id, clock()).status == "rejected"
    assert action.status == "proposed"


# ----------------------------------------------------------------------------- workspace events


def test_api_key_events_carry_id_name_and_scopes_and_never_the_secret(team, clock):
    key, secret = api_keys.create_api_key(team.alice, "runner", clock(), ["actions:execute"])
    api_keys.revoke_api_key(team.alice, key.id, clock())
    api_keys.revoke_api_key(team.alice, key.id, clock())  # idempotent: no second event
    events = [e for e in workspace_events(team.workspace.id) if e.type.startswith("api_key_")]
    assert [e.type for e in events] == ["api_key_created", "api_key_revoked"]
    for event in events:
        assert json.loads(event.data) == {"api_key_id": key.id, "name": "runner", "scopes": ["actions:execute"]}
        assert secret not in event.data and secret[6:] not in event.data
    assert audit.verify_chain() is None


def test_verify_names_an_edited_workspace_event(team, clock):
    members.change_role(user_actor(team.admin), team.bob.id, "viewer", clock())
    (event,) = [e for e in workspace_events(team.workspace.id) if e.type == "member_role_changed"]
    tamper(
        "UPDATE audit_events SET data = :data WHERE id = :id",
        data=json.dumps({"member_id": team.bob.id, "from": "approver", "to": "admin"}),
        id=event.id,
    )
    problem = audit.verify_chain(team.workspace.id)
    assert (problem.seq, problem.event_id) == (event.seq, event.id)
    assert "edited" in problem.reason


def test_authenticating_a_key_writes_nothing(team, clock):
    key, secret = api_keys.create_api_key(team.alice, "reader", clock(), ["actions:read"])
    db.session.commit()
    assert api_keys.authenticate_api_key(secret).id == key.id
    assert not db.session.new and not db.session.dirty
    db.session.rollback()
    db.session.expire_all()
    assert db.session.get(ApiKey, key.id).last_used_at is None


def test_a_role_is_one_of_the_four(team, clock):
    refused(lambda: members.change_role(user_actor(team.admin), team.bob.id, "root", clock()), "validation_error")
    assert Role("admin") is Role.ADMIN
