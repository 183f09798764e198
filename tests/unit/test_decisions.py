"""The one decision function (policy.md §3), with no database: every rule, in its order."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest

from audittrail.domain import DEFAULT_TIER_RULES
from audittrail.domain import TIER_REQUIREMENTS
from audittrail.domain import TRANSITIONS
from audittrail.domain import ActionFacts
from audittrail.domain import ActionStatus
from audittrail.domain import Caller
from audittrail.domain import Capability
from audittrail.domain import DecisionInputs
from audittrail.domain import Mode
from audittrail.domain import Role
from audittrail.domain import Scope
from audittrail.domain import TierRule
from audittrail.domain import Transition
from audittrail.domain import allowed_transitions
from audittrail.domain import capabilities_of
from audittrail.domain import decide
from audittrail.domain import policy_problems
from audittrail.domain import rule_for

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
ALL_SCOPES = frozenset(scope.value for scope in Scope)
TARGET = "run_8f3a2c91d4e7"
GOOD = DecisionInputs(note="Runaway loop confirmed.", confirmation="run_8f3a")


def action(tier=2, status=ActionStatus.PROPOSED, mode=Mode.SUPERVISED, rule=None, approvers=(), proposer="p_ann"):
    return ActionFacts(
        status=status,
        mode=mode,
        tier=tier,
        target_ref=TARGET,
        expires_at=NOW + timedelta(hours=1),
        proposer_person_id=proposer,
        rule=rule or DEFAULT_TIER_RULES[tier],
        approver_person_ids=frozenset(approvers),
    )


def caller(role=Role.APPROVER, person="p_bob", scopes=ALL_SCOPES, user=None):
    return Caller(user_id=user or person, person_id=person, role=role, scopes=frozenset(scopes))


def code(refusal):
    return None if refusal is None else refusal.code


# ----------------------------------------------------------------------------- the table


@pytest.mark.parametrize("rule", TRANSITIONS, ids=lambda r: f"{r.transition}-from-{r.source}")
@pytest.mark.parametrize("tier", [1, 2, 3])
def test_every_table_edge_is_allowed_for_an_eligible_second_person(rule, tier):
    facts = action(tier=tier, status=rule.source)
    assert decide(facts, caller(), rule.transition, NOW, GOOD) is None
    assert rule.transition.value in allowed_transitions(facts, caller(), NOW)


MISSING_EDGES = [
    (transition, status) for transition in Transition for status in ActionStatus if rule_for(transition, status) is None
]


@pytest.mark.parametrize(("transition", "status"), MISSING_EDGES)
def test_a_transition_missing_from_the_table_is_an_invalid_transition(status, transition):
    assert code(decide(action(status=status), caller(), transition, NOW, GOOD)) == "invalid_transition"


@pytest.mark.parametrize("transition", [Transition.APPROVE, Transition.REJECT, Transition.MARK_EXECUTED])
def test_a_proposed_row_past_its_ttl_is_expired_for_every_transition(transition):
    late = NOW + timedelta(hours=1)  # exactly expires_at: the TTL has passed
    assert code(decide(action(), caller(), transition, late, GOOD)) == "expired"
    assert allowed_transitions(action(), caller(), late) == []


@pytest.mark.parametrize("tier", [1, 2, 3])
def test_dry_run_refuses_approve_and_mark_executed_but_not_reject(tier):
    proposed = action(tier=tier, mode=Mode.DRY_RUN)
    approved = action(tier=tier, mode=Mode.DRY_RUN, status=ActionStatus.APPROVED)
    assert code(decide(proposed, caller(), Transition.APPROVE, NOW, GOOD)) == "invalid_transition"
    assert code(decide(approved, caller(), Transition.MARK_EXECUTED, NOW)) == "invalid_transition"
    assert decide(proposed, caller(), Transition.REJECT, NOW) is None


# ----------------------------------------------------------------------------- roles and scopes


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (Role.VIEWER, []),
        # Tier 3's default approver roles are approver and admin; an operator who did not propose
        # it may neither approve nor reject it.
        (Role.OPERATOR, []),
        (Role.APPROVER, ["approve", "reject"]),
        (Role.ADMIN, ["approve", "reject"]),
    ],
)
def test_tier3_under_the_default_policy_follows_the_role(role, allowed):
    facts = action(tier=3)
    assert allowed_transitions(facts, caller(role=role), NOW) == allowed


def test_a_viewer_is_refused_with_the_roles_that_may_decide():
    refusal = decide(action(), caller(role=Role.VIEWER), Transition.APPROVE, NOW, GOOD)
    assert refusal.code == "forbidden"
    assert refusal.details["required_roles"] == ["operator", "approver", "admin"]


def test_a_role_outside_the_actions_approver_roles_is_forbidden_after_the_status_checks():
    facts = action(tier=3)
    operator = caller(role=Role.OPERATOR)
    refusal = decide(facts, operator, Transition.APPROVE, NOW, GOOD)
    assert (refusal.code, refusal.details) == ("forbidden", {"required_roles": ["approver", "admin"]})
    # Status comes first: on a rejected row the same operator hears invalid_transition.
    rejected = replace(facts, status=ActionStatus.REJECTED)
    assert code(decide(rejected, operator, Transition.APPROVE, NOW, GOOD)) == "invalid_transition"


def test_a_missing_scope_is_refused_before_the_role_and_the_status():
    key = caller(role=Role.VIEWER, scopes={"actions:read"})
    refusal = decide(action(status=ActionStatus.EXECUTED), key, Transition.APPROVE, NOW, GOOD)
    assert (refusal.code, refusal.details) == ("forbidden", {"scope": "actions:decide"})


def test_a_key_never_does_more_than_its_owners_role():
    viewer_key = caller(role=Role.VIEWER, scopes=ALL_SCOPES)
    assert allowed_transitions(action(status=ActionStatus.APPROVED), viewer_key, NOW) == []
    assert capabilities_of(viewer_key, via_api_key=True) == [Capability.READ]


def test_capabilities_of_a_jwt_follow_the_role_and_admin_work_is_jwt_only():
    assert capabilities_of(caller(role=Role.ADMIN), via_api_key=False) == list(Capability)
    assert Capability.MANAGE_POLICY not in capabilities_of(caller(role=Role.ADMIN), via_api_key=True)
    assert capabilities_of(caller(role=Role.OPERATOR), via_api_key=False) == [
        Capability.READ,
        Capability.PROPOSE,
        Capability.DECIDE,
        Capability.EXECUTE,
        Capability.WRITE_RUNS,  # runs.md §1: operator or higher
    ]
    assert Capability.WRITE_RUNS not in capabilities_of(caller(role=Role.VIEWER), via_api_key=False)


# ----------------------------------------------------------------------------- the two-person rule


def test_where_self_approval_is_off_the_proposers_own_person_is_refused():
    # The proposer, the proposer's owner (agent proposed), an agent owned by the proposer: one person.
    facts = action(tier=3, proposer="p_sam")
    for approver in (caller(person="p_sam", user="u_sam"), caller(person="p_sam", user="u_sams_agent")):
        assert code(decide(facts, approver, Transition.APPROVE, NOW, GOOD)) == "second_approver_required"
        assert "approve" not in allowed_transitions(facts, approver, NOW)


def test_where_self_approval_is_on_the_proposer_may_approve():
    assert decide(action(tier=2, proposer="p_bob"), caller(person="p_bob"), Transition.APPROVE, NOW) is None


def test_the_self_rule_is_about_approving_only_the_proposer_may_withdraw():
    facts = action(tier=3, proposer="p_op")
    proposer_as_operator = caller(role=Role.OPERATOR, person="p_op")
    assert decide(facts, proposer_as_operator, Transition.REJECT, NOW) is None
    assert allowed_transitions(facts, proposer_as_operator, NOW) == ["reject"]


# ----------------------------------------------------------------------------- N of M


def test_a_person_who_approved_already_is_refused_and_offered_no_approve():
    facts = action(tier=2, rule=replace(DEFAULT_TIER_RULES[2], approvals_required=2), approvers={"p_bob"})
    assert code(decide(facts, caller(), Transition.APPROVE, NOW, GOOD)) == "already_approved"
    assert allowed_transitions(facts, caller(), NOW) == ["reject"]
    assert decide(facts, caller(person="p_cat"), Transition.APPROVE, NOW, GOOD) is None


def test_reject_is_a_veto_whatever_the_count():
    facts = action(tier=2, rule=replace(DEFAULT_TIER_RULES[2], approvals_required=3), approvers={"p_x", "p_y"})
    assert decide(facts, caller(role=Role.OPERATOR, person="p_z"), Transition.REJECT, NOW) is None


# ----------------------------------------------------------------------------- the order of checks


def test_approve_checks_run_in_policy_order():
    # Every check fails at once; removing the first failure each time shows the next, in §3's order.
    facts = action(tier=3, proposer="p_bob", approvers={"p_bob"})
    bad = DecisionInputs(note="  ", confirmation="nope")
    me = caller(role=Role.OPERATOR, person="p_bob")
    seen = []
    steps = [
        ("invalid_transition", lambda f, c, i: (replace(f, status=ActionStatus.PROPOSED), c, i)),
        ("expired", lambda f, c, i: (replace(f, expires_at=NOW + timedelta(hours=1)), c, i)),
        ("invalid_transition", lambda f, c, i: (replace(f, mode=Mode.SUPERVISED), c, i)),
        ("forbidden", lambda f, c, i: (f, replace(c, role=Role.APPROVER), i)),
        ("second_approver_required", lambda f, c, i: (replace(f, proposer_person_id="p_ann"), c, i)),
        ("already_approved", lambda f, c, i: (replace(f, approver_person_ids=frozenset()), c, i)),
        ("confirmation_mismatch", lambda f, c, i: (f, c, replace(i, confirmation="run_8f3a"))),
        ("operator_reason_required", lambda f, c, i: (f, c, replace(i, note="Confirmed on the dashboard."))),
    ]
    # An approved row is never past its TTL (the TTL is for proposed rows): the first answer is 409.
    current = (
        replace(facts, status=ActionStatus.APPROVED, expires_at=NOW - timedelta(seconds=1), mode=Mode.DRY_RUN),
        me,
        bad,
    )
    for _, fix in steps:
        seen.append(code(decide(current[0], current[1], Transition.APPROVE, NOW, current[2])))
        current = fix(*current)
    assert seen == [expected for expected, _ in steps]
    assert decide(current[0], current[1], Transition.APPROVE, NOW, current[2]) is None


@pytest.mark.parametrize("tier", [1, 2, 3])
def test_the_input_checks_follow_the_tier_requirements_table(tier):
    requirements = TIER_REQUIREMENTS[tier]
    facts = action(tier=tier)
    no_confirmation = decide(facts, caller(), Transition.APPROVE, NOW, DecisionInputs(note="ok"))
    assert (code(no_confirmation) == "confirmation_mismatch") is requirements.confirmation
    no_note = decide(facts, caller(), Transition.APPROVE, NOW, DecisionInputs(confirmation="run_8f3a"))
    assert (code(no_note) == "operator_reason_required") is requirements.operator_reason


# ----------------------------------------------------------------------------- the policy document


def test_the_default_policy_is_valid():
    assert policy_problems(DEFAULT_TIER_RULES) == {}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({3: TierRule(1, (Role.APPROVER,), allow_self_approval=True)}, "tiers.3.allow_self_approval"),
        ({2: TierRule(0, (Role.APPROVER,), allow_self_approval=True)}, "tiers.2.approvals_required"),
        ({2: TierRule(6, (Role.APPROVER,), allow_self_approval=True)}, "tiers.2.approvals_required"),
        ({1: TierRule(1, (), allow_self_approval=True)}, "tiers.1.approver_roles"),
        ({1: TierRule(1, (Role.VIEWER,), allow_self_approval=True)}, "tiers.1.approver_roles"),
    ],
)
def test_a_broken_policy_names_the_field(change, field):
    assert list(policy_problems({**DEFAULT_TIER_RULES, **change})) == [field]


def test_a_policy_missing_a_tier_names_it():
    tiers = dict(DEFAULT_TIER_RULES)
    del tiers[2]
    assert list(policy_problems(tiers)) == ["tiers.2"]


def test_a_rule_is_stored_with_its_roles_in_table_order_whatever_order_they_came_in():
    mixed = TierRule(1, (Role.ADMIN, Role.APPROVER), allow_self_approval=False)
    assert mixed.as_dict() == DEFAULT_TIER_RULES[3].as_dict()
