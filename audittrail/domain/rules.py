"""Tiers, modes, statuses and THE transition table of a deployment action."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ActionStatus(StrEnum):
    PROPOSED = "proposed"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXECUTED = "executed"
    EXPIRED = "expired"


FINAL_STATUSES = frozenset({ActionStatus.REJECTED, ActionStatus.EXECUTED, ActionStatus.EXPIRED})


class Mode(StrEnum):
    DRY_RUN = "dry_run"
    SUPERVISED = "supervised"
    AUTONOMOUS = "autonomous"


class ActionType(StrEnum):
    ALERT = "alert"
    TAG_TRACE = "tag_trace"
    CREATE_INCIDENT = "create_incident"
    THROTTLE = "throttle"
    SWITCH_MODEL = "switch_model"
    DISABLE_FLAG = "disable_flag"
    KILL_RUN = "kill_run"
    ROLLBACK_DEPLOY = "rollback_deploy"
    SCALE_DOWN = "scale_down"


ACTION_TYPES_BY_TIER: dict[int, tuple[ActionType, ...]] = {
    1: (ActionType.ALERT, ActionType.TAG_TRACE, ActionType.CREATE_INCIDENT),
    2: (ActionType.THROTTLE, ActionType.SWITCH_MODEL, ActionType.DISABLE_FLAG),
    3: (ActionType.KILL_RUN, ActionType.ROLLBACK_DEPLOY, ActionType.SCALE_DOWN),
}

TIER_BY_ACTION_TYPE: dict[ActionType, int] = {
    action_type: tier for tier, types in ACTION_TYPES_BY_TIER.items() for action_type in types
}


def tier_of(action_type: str) -> int:
    """The tier of an action type; raises KeyError for an unknown type."""
    return TIER_BY_ACTION_TYPE[ActionType(action_type)]


class Transition(StrEnum):
    """What a caller may ask of an action; the value is also the route's last path segment."""

    APPROVE = "approve"
    REJECT = "reject"
    MARK_EXECUTED = "mark-executed"


class EventType(StrEnum):
    # An action's history.
    PROPOSED = "proposed"
    APPROVAL_RECORDED = "approval_recorded"  # an approval before the N-th: the status stays `proposed`
    APPROVED = "approved"
    REJECTED = "rejected"
    EXECUTED = "executed"
    EXPIRED = "expired"
    # The workspace's own history (no action), in the same chain.
    MEMBER_ROLE_CHANGED = "member_role_changed"
    POLICY_CHANGED = "policy_changed"
    API_KEY_CREATED = "api_key_created"
    API_KEY_REVOKED = "api_key_revoked"
    WEBHOOK_CREATED = "webhook_created"  # webhooks.md §1
    WEBHOOK_DELETED = "webhook_deleted"


class Scope(StrEnum):
    READ = "actions:read"
    PROPOSE = "actions:propose"
    DECIDE = "actions:decide"
    EXECUTE = "actions:execute"
    # Opt-in, for admins (evidence.md §4): never among a new key's default scopes.
    AUDIT_READ = "audit:read"
    RUNS_WRITE = "runs:write"  # runs.md §1: opt-in, never among a new key's defaults


# What a new API key gets when its creator names no scopes: the four actions scopes.
DEFAULT_KEY_SCOPES: tuple[Scope, ...] = (Scope.READ, Scope.PROPOSE, Scope.DECIDE, Scope.EXECUTE)


class Role(StrEnum):
    """A member's role in its workspace, lowest first."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    APPROVER = "approver"
    ADMIN = "admin"


class UserKind(StrEnum):
    HUMAN = "human"
    AGENT = "agent"


class Capability(StrEnum):
    """What a role may do at all, whatever an API key's scopes say (policy.md §1)."""

    READ = "read"
    PROPOSE = "propose"
    DECIDE = "decide"  # approve and reject, where the action's policy names the role (policy.md §3)
    EXECUTE = "execute"
    MANAGE_MEMBERS = "manage_members"
    MANAGE_POLICY = "manage_policy"
    READ_AUDIT = "read_audit"  # the audit export and checkpoints (evidence.md §4, §5)
    WRITE_RUNS = "write_runs"  # report runs and their graphs (runs.md §1): operator or higher
    MANAGE_WEBHOOKS = "manage_webhooks"  # webhooks.md §1: admins, with a JWT


_ACT = frozenset({Capability.READ, Capability.PROPOSE, Capability.DECIDE, Capability.EXECUTE, Capability.WRITE_RUNS})

ROLE_CAPABILITIES: dict[Role, frozenset[Capability]] = {
    Role.VIEWER: frozenset({Capability.READ}),
    Role.OPERATOR: _ACT,
    Role.APPROVER: _ACT,
    Role.ADMIN: _ACT
    | {Capability.MANAGE_MEMBERS, Capability.MANAGE_POLICY, Capability.READ_AUDIT, Capability.MANAGE_WEBHOOKS},
}

# The capability each API key scope stands for: a key acts only where both allow.
CAPABILITY_FOR_SCOPE: dict[Scope, Capability] = {
    Scope.READ: Capability.READ,
    Scope.PROPOSE: Capability.PROPOSE,
    Scope.DECIDE: Capability.DECIDE,
    Scope.EXECUTE: Capability.EXECUTE,
    Scope.AUDIT_READ: Capability.READ_AUDIT,
    Scope.RUNS_WRITE: Capability.WRITE_RUNS,
}


def roles_with(capability: Capability) -> list[Role]:
    """The roles that have this capability, lowest first."""
    return [role for role in Role if capability in ROLE_CAPABILITIES[role]]


@dataclass(frozen=True)
class TierRequirements:
    """What an approval of a tier must carry, and whether a policy may let a proposer approve it."""

    confirmation: bool  # the typed first 8 characters of the target ref
    operator_reason: bool  # a `note` a person can read
    self_approval_permitted: bool


TIER_REQUIREMENTS: dict[int, TierRequirements] = {
    1: TierRequirements(confirmation=False, operator_reason=False, self_approval_permitted=True),
    2: TierRequirements(confirmation=False, operator_reason=False, self_approval_permitted=True),
    3: TierRequirements(confirmation=True, operator_reason=True, self_approval_permitted=False),
}


@dataclass(frozen=True)
class TransitionRule:
    transition: Transition
    source: ActionStatus
    target: ActionStatus
    event: EventType
    refused_modes: frozenset[Mode] = frozenset()


_NONE: frozenset[Mode] = frozenset()
_NOT_DRY_RUN = frozenset({Mode.DRY_RUN})

# The whole state machine a caller can drive. Expiry (proposed → expired once the TTL
# has passed) and tier-1 autonomous execution on creation are the system's own moves.
#
#   transition                source                   target                   event                 refused in
TRANSITIONS: tuple[TransitionRule, ...] = (
    TransitionRule(Transition.APPROVE, ActionStatus.PROPOSED, ActionStatus.APPROVED, EventType.APPROVED, _NOT_DRY_RUN),  # noqa: E241,E501
    TransitionRule(Transition.REJECT, ActionStatus.PROPOSED, ActionStatus.REJECTED, EventType.REJECTED, _NONE),  # noqa: E241,E501
    TransitionRule(Transition.REJECT, ActionStatus.APPROVED, ActionStatus.REJECTED, EventType.REJECTED, _NONE),  # noqa: E241,E501
    TransitionRule(
        Transition.MARK_EXECUTED, ActionStatus.APPROVED, ActionStatus.EXECUTED, EventType.EXECUTED, _NOT_DRY_RUN
    ),  # noqa: E241,E501
)

_RULES = {(rule.transition, rule.source): rule for rule in TRANSITIONS}

SCOPE_FOR_TRANSITION: dict[Transition, Scope] = {
    Transition.APPROVE: Scope.DECIDE,
    Transition.REJECT: Scope.DECIDE,
    Transition.MARK_EXECUTED: Scope.EXECUTE,
}


def rule_for(transition: Transition, status: ActionStatus) -> TransitionRule | None:
    """The table row for this transition from this status, or None when there is none."""
    return _RULES.get((transition, status))


CONFIRMATION_LENGTH = 8


def expected_confirmation(target_ref: str) -> str:
    """What a tier 3 approver types: the first 8 characters of the target ref, or all of it."""
    return target_ref[:CONFIRMATION_LENGTH]
