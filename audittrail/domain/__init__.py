"""The rules of the contract (§2–§4) as plain data and functions; standard library only."""

from audittrail.domain.rules import ACTION_TYPES_BY_TIER
from audittrail.domain.rules import CONFIRMATION_LENGTH
from audittrail.domain.rules import FINAL_STATUSES
from audittrail.domain.rules import SCOPE_FOR_TRANSITION
from audittrail.domain.rules import TIER_BY_ACTION_TYPE
from audittrail.domain.rules import TRANSITIONS
from audittrail.domain.rules import ActionStatus
from audittrail.domain.rules import ActionType
from audittrail.domain.rules import EventType
from audittrail.domain.rules import Mode
from audittrail.domain.rules import Scope
from audittrail.domain.rules import Transition
from audittrail.domain.rules import TransitionRule
from audittrail.domain.rules import expected_confirmation
from audittrail.domain.rules import rule_for
from audittrail.domain.rules import tier_of

__all__ = [
    "ACTION_TYPES_BY_TIER",
    "CONFIRMATION_LENGTH",
    "FINAL_STATUSES",
    "SCOPE_FOR_TRANSITION",
    "TIER_BY_ACTION_TYPE",
    "TRANSITIONS",
    "ActionStatus",
    "ActionType",
    "EventType",
    "Mode",
    "Scope",
    "Transition",
    "TransitionRule",
    "expected_confirmation",
    "rule_for",
    "tier_of",
]
