"""Proposing an action (§2, §3, §6 propose body): tier, mode, TTL, the rule fixed at proposal, idempotency."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta

from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import make_transient_to_detached

from audittrail.domain import ActionStatus
from audittrail.domain import ActionType
from audittrail.domain import EventType
from audittrail.domain import Mode
from audittrail.domain import Scope
from audittrail.domain import permission_refusal
from audittrail.domain import tier_of
from audittrail.extensions import db
from audittrail.models import DeploymentAction
from audittrail.models import IdempotencyRecord
from audittrail.models.types import new_id
from audittrail.services.actors import Actor
from audittrail.services.actors import system_actor
from audittrail.services.audit import append_event
from audittrail.services.audit import canonical_json
from audittrail.services.errors import IdempotencyKeyReused
from audittrail.services.errors import ValidationFailed
from audittrail.services.errors import error_for
from audittrail.services.policy import rule_for_new_action
from audittrail.services.unit_of_work import in_unit_of_work
from audittrail.services.unit_of_work import unit_of_work

TTL_MAX_SECONDS = 604800


@dataclass(frozen=True)
class ProposalSettings:
    """The configurable part of the proposal rules."""

    default_ttl_seconds: int = 3600
    ttl_min_seconds: int = 60
    ttl_max_seconds: int = TTL_MAX_SECONDS


@dataclass(frozen=True)
class Proposal:
    """A validated propose body (shapes already checked by the schema)."""

    action_type: str
    target_ref: str
    reason: str
    mode: str = Mode.SUPERVISED
    payload: dict | None = None
    ttl_seconds: int | None = None
    tier: int | None = None


@dataclass(frozen=True)
class IdempotencyRequest:
    """An Idempotency-Key with the client it belongs to and a fingerprint of the body."""

    client: str
    key: str
    fingerprint: str


@dataclass
class ProposeResult:
    action: DeploymentAction | None
    replayed_body: str | None = None
    # Read before the commit expired the row: an answer reads the action back by it in one query.
    action_id: str | None = None


def request_fingerprint(body: dict) -> str:
    """A stable digest of a request body, to tell a replay from a different request."""
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


def propose_action(
    actor: Actor,
    proposal: Proposal,
    now: datetime,
    settings: ProposalSettings = ProposalSettings(),
    idempotency: IdempotencyRequest | None = None,
    render=None,
) -> ProposeResult:
    """Create a proposal (and, for tier 1 autonomous, execute it) with its events.

    The action keeps the workspace's rule for its tier as it is now. With `idempotency`, a
    repeat of the same key and body returns the first answer's stored body (`render(action)` as
    it was) instead of creating a row.
    Raises Forbidden, ValidationFailed, IdempotencyKeyReused.
    """
    refusal = permission_refusal(actor.caller, Scope.PROPOSE)
    if refusal is not None:
        raise error_for(refusal)
    if idempotency is not None:
        replay = _idempotent_replay(idempotency)
        if replay is not None:
            return replay
    tier, mode, ttl = _validated(proposal, settings)
    try:
        with unit_of_work():
            action = _insert(actor, proposal, tier, mode, ttl, now)
            action_id = action.id
            if idempotency is not None:
                db.session.add(
                    IdempotencyRecord(
                        client=idempotency.client,
                        key=idempotency.key,
                        fingerprint=idempotency.fingerprint,
                        action_id=action.id,
                        response_body=render(action) if render else "",
                        created_at=now,
                    )
                )
                db.session.flush()
    except IntegrityError:
        # Another request with the same Idempotency-Key won the insert: answer as it did.
        if idempotency is None or in_unit_of_work():
            raise
        replay = _idempotent_replay(idempotency)
        if replay is not None:
            return replay
        raise
    return ProposeResult(action, action_id=action_id)


def _validated(proposal: Proposal, settings: ProposalSettings) -> tuple[int, Mode, int]:
    if proposal.action_type not in ActionType.__members__.values():
        raise ValidationFailed("Unknown action type.", {"action_type": ["Must be one of the nine action types."]})
    if (proposal.mode or Mode.SUPERVISED) not in Mode.__members__.values():
        raise ValidationFailed("Unknown mode.", {"mode": ["Must be dry_run, supervised or autonomous."]})
    errors: dict[str, list[str]] = {}
    tier = tier_of(proposal.action_type)
    if proposal.tier is not None and proposal.tier != tier:
        errors["tier"] = [f"`{proposal.action_type}` is tier {tier}; leave `tier` out or send {tier}."]
    ttl = settings.default_ttl_seconds if proposal.ttl_seconds is None else proposal.ttl_seconds
    if not settings.ttl_min_seconds <= ttl <= settings.ttl_max_seconds:
        errors["ttl_seconds"] = [f"Must be between {settings.ttl_min_seconds} and {settings.ttl_max_seconds} seconds."]
    if errors:
        raise ValidationFailed("The proposal has invalid fields.", errors)
    return tier, Mode(proposal.mode or Mode.SUPERVISED), ttl


_ACTION_COLUMNS = tuple(column.key for column in DeploymentAction.__table__.columns)
_INSERT_ACTION = insert(DeploymentAction.__table__)


def _insert(actor: Actor, proposal: Proposal, tier: int, mode: Mode, ttl: int, now: datetime) -> DeploymentAction:
    rule = rule_for_new_action(actor.workspace_id, tier)
    columns = dict.fromkeys(_ACTION_COLUMNS)
    columns.update(
        id=new_id("act"),
        workspace_id=actor.workspace_id,
        tier=tier,
        action_type=ActionType(proposal.action_type).value,
        target_ref=proposal.target_ref,
        reason=proposal.reason,
        mode=mode.value,
        status=ActionStatus.PROPOSED.value,
        payload=proposal.payload or {},
        ttl_seconds=ttl,
        proposed_at=now,
        expires_at=now + timedelta(seconds=ttl),
        proposed_by_id=actor.user_id,
        policy=rule.as_dict(),
        approvals_received=0,
        version=0,
    )
    # One prebuilt INSERT rather than an ORM flush; the row then joins the session as if loaded
    # (persistent, nothing pending), so callers get the ORM object as before.
    db.session.flush()
    db.session.connection().execute(_INSERT_ACTION, columns)
    action = DeploymentAction(**columns)
    make_transient_to_detached(action)
    db.session.add(action)
    append_event(
        workspace_id=action.workspace_id,
        action_id=action.id,
        type=EventType.PROPOSED,
        actor=actor,
        at=now,
        status_to=ActionStatus.PROPOSED,
        data={
            "tier": tier,
            "action_type": action.action_type,
            "target_ref": action.target_ref,
            "mode": action.mode,
            "ttl_seconds": ttl,
            "policy": rule.as_dict(),
        },
    )
    # Tier 1 in autonomous mode executes on creation, whatever its approvals_required (policy.md §3).
    if tier == 1 and mode is Mode.AUTONOMOUS:
        action.status = ActionStatus.EXECUTED.value
        action.executed_at = now
        db.session.flush()
        append_event(
            workspace_id=action.workspace_id,
            action_id=action.id,
            type=EventType.EXECUTED,
            actor=system_actor(actor.workspace_id, actor.request_id),
            at=now,
            status_from=ActionStatus.PROPOSED,
            status_to=ActionStatus.EXECUTED,
            data={"autonomous": True},
        )
    return action


def _idempotent_replay(idempotency: IdempotencyRequest) -> ProposeResult | None:
    record = db.session.scalars(
        select(IdempotencyRecord).where(
            IdempotencyRecord.client == idempotency.client, IdempotencyRecord.key == idempotency.key
        )
    ).first()
    if record is None:
        return None
    if record.fingerprint != idempotency.fingerprint:
        raise IdempotencyKeyReused()
    return ProposeResult(action=None, replayed_body=record.response_body)
