"""The one decision function: may this caller make this transition on this action, now, with these inputs?

`decide` returns None ("allowed") or the first refusal, checking in the order of policy.md §3.
`allowed_transitions` asks it without inputs; enforcement asks it with them and raises what it
refuses. Standard library only: the facts come in as plain values.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from datetime import datetime

from audittrail.domain.policy import TierRule
from audittrail.domain.rules import CAPABILITY_FOR_SCOPE
from audittrail.domain.rules import ROLE_CAPABILITIES
from audittrail.domain.rules import SCOPE_FOR_TRANSITION
from audittrail.domain.rules import TIER_REQUIREMENTS
from audittrail.domain.rules import ActionStatus
from audittrail.domain.rules import Capability
from audittrail.domain.rules import Mode
from audittrail.domain.rules import Role
from audittrail.domain.rules import Scope
from audittrail.domain.rules import Transition
from audittrail.domain.rules import expected_confirmation
from audittrail.domain.rules import roles_with
from audittrail.domain.rules import rule_for
from audittrail.domain.text import is_blank


@dataclass(frozen=True)
class Caller:
    """Who asks: their role, their key's scopes, and the person they stand for.

    `person_id` is the human behind the caller: an agent's owner, else the user itself. An agent
    and its owner are one person for the two-person rule and for counting approvals.
    """

    user_id: str | None
    person_id: str | None
    role: Role | None
    scopes: frozenset[str]


@dataclass(frozen=True)
class ActionFacts:
    """What a decision needs to know about an action."""

    status: ActionStatus
    mode: Mode
    tier: int
    target_ref: str
    expires_at: datetime
    proposer_person_id: str
    rule: TierRule  # fixed at proposal
    approver_person_ids: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class DecisionInputs:
    """What the caller sent with an approval."""

    note: str | None = None
    confirmation: str | None = None


@dataclass(frozen=True)
class Refusal:
    """Why not: the contract's error code, a message for a person, and details naming what."""

    code: str
    message: str
    details: dict = field(default_factory=dict)


def permission_refusal(caller: Caller, scope: Scope | str) -> Refusal | None:
    """The first refusal of a scope and of the capability it stands for, before any action is read."""
    if scope not in caller.scopes:
        return Refusal("forbidden", f"These credentials lack the `{scope}` scope.", {"scope": str(scope)})
    return capability_refusal(caller, CAPABILITY_FOR_SCOPE[Scope(scope)])


def capability_refusal(caller: Caller, capability: Capability) -> Refusal | None:
    """Refuse a caller whose role does not have this capability at all."""
    if caller.role is not None and capability in ROLE_CAPABILITIES[caller.role]:
        return None
    required = [role.value for role in roles_with(capability)]
    return Refusal(
        "forbidden",
        f"Your role ({caller.role or 'none'}) may not do this; it needs one of: {', '.join(required)}.",
        {"required_roles": required},
    )


def capabilities_of(caller: Caller, via_api_key: bool) -> list[Capability]:
    """What this caller may do at all: its role's capabilities, within its key's scopes.

    Managing members, the policy and webhooks is for a user's JWT only, never an API key.
    """
    granted = ROLE_CAPABILITIES.get(caller.role, frozenset()) if caller.role else frozenset()
    reachable = {CAPABILITY_FOR_SCOPE[Scope(scope)] for scope in caller.scopes if scope in CAPABILITY_FOR_SCOPE}
    if not via_api_key:
        reachable |= {Capability.MANAGE_MEMBERS, Capability.MANAGE_POLICY, Capability.MANAGE_WEBHOOKS}
    return [capability for capability in Capability if capability in granted and capability in reachable]


def ttl_passed(status: ActionStatus, expires_at: datetime, now: datetime) -> bool:
    """A proposed action whose approval window has closed (the TTL applies to `proposed` only)."""
    return status is ActionStatus.PROPOSED and now >= expires_at


def decide(
    action: ActionFacts,
    caller: Caller,
    transition: Transition,
    now: datetime,
    inputs: DecisionInputs | None = None,
) -> Refusal | None:
    """None when the caller may make this transition now, else the first refusal (policy.md §3).

    With `inputs=None` the checks of what is sent (confirmation, note) are left out, as for
    `allowed_transitions`. A refusal with code `expired` means the row must be flipped.
    """
    refusal = permission_refusal(caller, SCOPE_FOR_TRANSITION[transition])
    if refusal is not None:
        return refusal
    # A proposed row past its TTL is expired for every transition (deployment-actions.md §4); for
    # approve this is policy.md's step 2, since such a row passes step 1 (it is `proposed`).
    if ttl_passed(action.status, action.expires_at, now):
        return Refusal("expired", "The approval window of this action has passed; it is now expired.")
    table_rule = rule_for(transition, action.status)
    if table_rule is None:
        return Refusal(
            "invalid_transition",
            f"Cannot {transition.value} an action that is {action.status.value}.",
            {"status": action.status.value, "transition": transition.value},
        )
    if action.mode in table_rule.refused_modes:
        return Refusal(
            "invalid_transition",
            f"A {action.mode.value} action cannot be {table_rule.target.value}.",
            {"mode": action.mode.value, "transition": transition.value},
        )
    for check in _CHECKS[transition]:
        refusal = check(action, caller, inputs)
        if refusal is not None:
            return refusal
    return None


def allowed_transitions(action: ActionFacts, caller: Caller, now: datetime) -> list[str]:
    """The transitions this caller could make now, in table order."""
    return [transition.value for transition in Transition if decide(action, caller, transition, now) is None]


# ----------------------------------------------------------------------------- per-transition checks


def _approver_role(action: ActionFacts, caller: Caller, inputs: DecisionInputs | None) -> Refusal | None:
    if caller.role in action.rule.approver_roles:
        return None
    required = [role.value for role in action.rule.approver_roles]
    return Refusal(
        "forbidden",
        f"Tier {action.tier} approvals need one of these roles: {', '.join(required)}.",
        {"required_roles": required},
    )


def _self_approval(action: ActionFacts, caller: Caller, inputs: DecisionInputs | None) -> Refusal | None:
    if action.rule.allow_self_approval or caller.person_id != action.proposer_person_id:
        return None
    return Refusal(
        "second_approver_required",
        "This action needs an approver other than its proposer, the proposer's owner or the proposer's agent.",
    )


def _not_approved_yet(action: ActionFacts, caller: Caller, inputs: DecisionInputs | None) -> Refusal | None:
    if caller.person_id not in action.approver_person_ids:
        return None
    return Refusal("already_approved", "You (or your agent, or its owner) have already approved this action.")


def _confirmation(action: ActionFacts, caller: Caller, inputs: DecisionInputs | None) -> Refusal | None:
    if inputs is None or not TIER_REQUIREMENTS[action.tier].confirmation:
        return None
    if inputs.confirmation == expected_confirmation(action.target_ref):
        return None
    return Refusal(
        "confirmation_mismatch",
        "Type the first 8 characters of the target ref exactly to approve a tier 3 action.",
        {"confirmation": ["Does not match the target ref."]},
    )


def _operator_reason(action: ActionFacts, caller: Caller, inputs: DecisionInputs | None) -> Refusal | None:
    if inputs is None or not TIER_REQUIREMENTS[action.tier].operator_reason or not is_blank(inputs.note):
        return None
    return Refusal(
        "operator_reason_required",
        f"A tier {action.tier} approval needs a reason in `note`.",
        {"note": [f"Required for tier {action.tier} approvals."]},
    )


def _decider_role(action: ActionFacts, caller: Caller, inputs: DecisionInputs | None) -> Refusal | None:
    # Reject is a veto open to the action's approvers, and a withdrawal open to its proposer.
    if caller.role in action.rule.approver_roles or caller.person_id == action.proposer_person_id:
        return None
    required = [role.value for role in action.rule.approver_roles]
    return Refusal(
        "forbidden",
        f"Only the proposer or a member with one of these roles may reject it: {', '.join(required)}.",
        {"required_roles": required},
    )


# After status, TTL and mode (in `decide`), in this order.
_CHECKS = {
    Transition.APPROVE: (_approver_role, _self_approval, _not_approved_yet, _confirmation, _operator_reason),
    Transition.REJECT: (_decider_role,),
    Transition.MARK_EXECUTED: (),
}
