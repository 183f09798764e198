"""The rules of the contract (§2–§4) as plain data and functions; standard library only."""

from audittrail.domain.decisions import ActionFacts
from audittrail.domain.decisions import Caller
from audittrail.domain.decisions import DecisionInputs
from audittrail.domain.decisions import Refusal
from audittrail.domain.decisions import allowed_transitions
from audittrail.domain.decisions import capabilities_of
from audittrail.domain.decisions import capability_refusal
from audittrail.domain.decisions import decide
from audittrail.domain.decisions import permission_refusal
from audittrail.domain.decisions import ttl_passed
from audittrail.domain.policy import APPROVER_ROLE_CHOICES
from audittrail.domain.policy import DEFAULT_TIER_RULES
from audittrail.domain.policy import TIERS
from audittrail.domain.policy import TierRule
from audittrail.domain.policy import policy_problems
from audittrail.domain.rules import ACTION_TYPES_BY_TIER
from audittrail.domain.rules import CAPABILITY_FOR_SCOPE
from audittrail.domain.rules import CONFIRMATION_LENGTH
from audittrail.domain.rules import DEFAULT_KEY_SCOPES
from audittrail.domain.rules import FINAL_STATUSES
from audittrail.domain.rules import ROLE_CAPABILITIES
from audittrail.domain.rules import SCOPE_FOR_TRANSITION
from audittrail.domain.rules import TIER_BY_ACTION_TYPE
from audittrail.domain.rules import TIER_REQUIREMENTS
from audittrail.domain.rules import TRANSITIONS
from audittrail.domain.rules import ActionStatus
from audittrail.domain.rules import ActionType
from audittrail.domain.rules import Capability
from audittrail.domain.rules import EventType
from audittrail.domain.rules import Mode
from audittrail.domain.rules import Role
from audittrail.domain.rules import Scope
from audittrail.domain.rules import TierRequirements
from audittrail.domain.rules import Transition
from audittrail.domain.rules import TransitionRule
from audittrail.domain.rules import UserKind
from audittrail.domain.rules import expected_confirmation
from audittrail.domain.rules import roles_with
from audittrail.domain.rules import rule_for
from audittrail.domain.rules import tier_of
from audittrail.domain.text import is_blank

__all__ = [
    "ACTION_TYPES_BY_TIER",
    "APPROVER_ROLE_CHOICES",
    "CAPABILITY_FOR_SCOPE",
    "CONFIRMATION_LENGTH",
    "DEFAULT_KEY_SCOPES",
    "DEFAULT_TIER_RULES",
    "FINAL_STATUSES",
    "ROLE_CAPABILITIES",
    "SCOPE_FOR_TRANSITION",
    "TIERS",
    "TIER_BY_ACTION_TYPE",
    "TIER_REQUIREMENTS",
    "TRANSITIONS",
    "ActionFacts",
    "ActionStatus",
    "ActionType",
    "Caller",
    "Capability",
    "DecisionInputs",
    "EventType",
    "Mode",
    "Refusal",
    "Role",
    "Scope",
    "TierRequirements",
    "TierRule",
    "Transition",
    "TransitionRule",
    "UserKind",
    "allowed_transitions",
    "capabilities_of",
    "capability_refusal",
    "decide",
    "expected_confirmation",
    "is_blank",
    "permission_refusal",
    "policy_problems",
    "roles_with",
    "rule_for",
    "tier_of",
    "ttl_passed",
]
