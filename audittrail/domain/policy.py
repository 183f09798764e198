"""The approval policy: per tier, how many approvals, from which roles, and whether self-approval counts."""

from __future__ import annotations

from dataclasses import dataclass

from audittrail.domain.rules import TIER_REQUIREMENTS
from audittrail.domain.rules import Role

TIERS = (1, 2, 3)
APPROVALS_REQUIRED_MIN = 1
APPROVALS_REQUIRED_MAX = 5
# Who a policy may name as approvers: a viewer only reads (policy.md §1).
APPROVER_ROLE_CHOICES = (Role.OPERATOR, Role.APPROVER, Role.ADMIN)


@dataclass(frozen=True)
class TierRule:
    """The rule of one tier; an action keeps the one in force when it was proposed."""

    approvals_required: int
    approver_roles: tuple[Role, ...]
    allow_self_approval: bool

    def as_dict(self) -> dict:
        return {
            "approvals_required": self.approvals_required,
            # In the table's order, so the same set of roles is always the same document.
            "approver_roles": [role.value for role in Role if role in self.approver_roles],
            "allow_self_approval": self.allow_self_approval,
        }

    @classmethod
    def from_dict(cls, value: dict) -> TierRule:
        """Read a rule back from its stored form (roles kept in the table's order)."""
        chosen = set(value["approver_roles"])
        return cls(
            approvals_required=int(value["approvals_required"]),
            approver_roles=tuple(role for role in Role if role.value in chosen),
            allow_self_approval=bool(value["allow_self_approval"]),
        )


DEFAULT_TIER_RULES: dict[int, TierRule] = {
    1: TierRule(1, APPROVER_ROLE_CHOICES, allow_self_approval=True),
    2: TierRule(1, APPROVER_ROLE_CHOICES, allow_self_approval=True),
    3: TierRule(1, (Role.APPROVER, Role.ADMIN), allow_self_approval=False),
}


def policy_problems(tiers: dict[int, TierRule]) -> dict[str, list[str]]:
    """What makes a whole policy unacceptable, by dotted field name; empty when it holds."""
    problems: dict[str, list[str]] = {}
    for tier in TIERS:
        rule = tiers.get(tier)
        if rule is None:
            problems[f"tiers.{tier}"] = ["All three tiers must be present."]
            continue
        if not APPROVALS_REQUIRED_MIN <= rule.approvals_required <= APPROVALS_REQUIRED_MAX:
            problems[f"tiers.{tier}.approvals_required"] = [
                f"Must be between {APPROVALS_REQUIRED_MIN} and {APPROVALS_REQUIRED_MAX}."
            ]
        if not rule.approver_roles or any(role not in APPROVER_ROLE_CHOICES for role in rule.approver_roles):
            problems[f"tiers.{tier}.approver_roles"] = ["Must be a non-empty subset of operator, approver, admin."]
        if rule.allow_self_approval and not TIER_REQUIREMENTS[tier].self_approval_permitted:
            problems[f"tiers.{tier}.allow_self_approval"] = [f"Tier {tier} always needs a second person: false."]
    return problems
