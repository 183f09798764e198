"""The workspace's approval policy (policy.md §2): read it, replace it, and the rule a new action keeps."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam
from sqlalchemy import select

from audittrail.domain import DEFAULT_TIER_RULES
from audittrail.domain import TIERS
from audittrail.domain import Capability
from audittrail.domain import EventType
from audittrail.domain import TierRule
from audittrail.domain import capability_refusal
from audittrail.domain import policy_problems
from audittrail.extensions import db
from audittrail.models import User
from audittrail.models import Workspace
from audittrail.services.actors import Actor
from audittrail.services.audit import append_event
from audittrail.services.audit import lock_workspace
from audittrail.services.errors import ValidationFailed
from audittrail.services.errors import error_for
from audittrail.services.loading import read
from audittrail.services.unit_of_work import unit_of_work


@dataclass(frozen=True)
class PolicyDocument:
    """The policy as the API shows it."""

    tiers: dict[int, TierRule]
    updated_at: datetime | None
    updated_by: User | None


def tier_rules(workspace: Workspace) -> dict[int, TierRule]:
    """The rules in force in this workspace (the defaults until an admin changes them)."""
    if not workspace.policy:
        return dict(DEFAULT_TIER_RULES)
    return {tier: TierRule.from_dict(workspace.policy[str(tier)]) for tier in TIERS}


def _as_stored(tiers: dict[int, TierRule]) -> dict:
    return {str(tier): tiers[tier].as_dict() for tier in TIERS}


def _document(workspace: Workspace) -> PolicyDocument:
    updated_by = db.session.get(User, workspace.policy_updated_by_id) if workspace.policy_updated_by_id else None
    return PolicyDocument(tier_rules(workspace), workspace.policy_updated_at, updated_by)


def get_policy(actor: Actor) -> PolicyDocument:
    """The policy of the actor's workspace (any member may read it)."""
    return _document(db.session.get(Workspace, actor.workspace_id, populate_existing=True))


def replace_policy(actor: Actor, tiers: dict[int, TierRule], now: datetime) -> PolicyDocument:
    """Replace the whole policy, with a `policy_changed` event when it differs.

    Pending actions keep the rule they were proposed under. Raises Forbidden, ValidationFailed.
    """
    refusal = capability_refusal(actor.caller, Capability.MANAGE_POLICY)
    if refusal is not None:
        raise error_for(refusal)
    problems = policy_problems(tiers)
    if problems:
        raise ValidationFailed("The policy has invalid fields.", problems)
    with unit_of_work():
        lock_workspace(actor.workspace_id)
        workspace = db.session.get(Workspace, actor.workspace_id, populate_existing=True)
        before, after = _as_stored(tier_rules(workspace)), _as_stored(tiers)
        if before != after:
            workspace.policy = after
            workspace.policy_updated_at = now
            workspace.policy_updated_by_id = actor.user_id
            db.session.flush()
            append_event(
                workspace_id=workspace.id,
                action_id=None,
                type=EventType.POLICY_CHANGED,
                actor=actor,
                at=now,
                data={"from": before, "to": after},
            )
    return get_policy(actor)


def rule_for_new_action(workspace_id: str, tier: int) -> TierRule:
    """The rule a proposal of this tier is fixed to, now: the workspace's stored policy, read as it
    is committed (one column, one Core select; every proposal asks), else the defaults."""
    db.session.flush()  # a policy changed earlier in this unit of work counts, as a session read's autoflush did
    stored = read(_POLICY_STATEMENT, {"workspace_id": workspace_id}).scalar_one()
    return DEFAULT_TIER_RULES[tier] if not stored else TierRule.from_dict(stored[str(tier)])


_POLICY_STATEMENT = select(Workspace.__table__.c.policy).where(Workspace.__table__.c.id == bindparam("workspace_id"))
