"""Deployment actions: proposing, deciding, executing, expiring, listing, summarising.

Every rule of the contract §2–§4 lives here or in audittrail.domain. Functions take the
actor and the time (`now`, an aware UTC datetime) from the caller; none reads a request.
A state change and its audit event are committed together, by a compare-and-set on the
status, so concurrent callers get exactly one winner and the losers change nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import time
from datetime import timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo
from zoneinfo import ZoneInfoNotFoundError
from zoneinfo import available_timezones

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import tuple_
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from audittrail.domain import SCOPE_FOR_TRANSITION
from audittrail.domain import ActionStatus
from audittrail.domain import ActionType
from audittrail.domain import EventType
from audittrail.domain import Mode
from audittrail.domain import Scope
from audittrail.domain import Transition
from audittrail.domain import expected_confirmation
from audittrail.domain import rule_for
from audittrail.domain import tier_of
from audittrail.domain.text import is_blank
from audittrail.extensions import db
from audittrail.models import AuditEvent
from audittrail.models import DeploymentAction
from audittrail.models import IdempotencyRecord
from audittrail.models import Workspace
from audittrail.models.types import is_valid_id
from audittrail.models.workspace import STATUS_COUNTER_COLUMNS
from audittrail.services.actors import Actor
from audittrail.services.actors import system_actor
from audittrail.services.audit import append_event
from audittrail.services.audit import canonical_json
from audittrail.services.errors import ActionExpired
from audittrail.services.errors import ActionNotFound
from audittrail.services.errors import ConfirmationMismatch
from audittrail.services.errors import Forbidden
from audittrail.services.errors import IdempotencyKeyReused
from audittrail.services.errors import InvalidTransition
from audittrail.services.errors import OperatorReasonRequired
from audittrail.services.errors import SecondApproverRequired
from audittrail.services.errors import ValidationFailed
from audittrail.services.unit_of_work import commit

TTL_MAX_SECONDS = 604800


@dataclass(frozen=True)
class ProposalPolicy:
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


class ActionView:
    """An action as one caller sees it: the row plus what the service computed for them."""

    def __init__(self, action: DeploymentAction, allowed: list[str], events=None):
        self._action = action
        self.allowed_transitions = allowed
        self.events = events

    def __getattr__(self, name):
        return getattr(self._action, name)

    @property
    def requires_confirmation(self) -> bool:
        return self._action.tier == 3

    @property
    def requires_second_approver(self) -> bool:
        return self._action.tier == 3

    @property
    def confirmation_text(self) -> str | None:
        """What a tier 3 approver must type, so no client re-derives the rule."""
        return expected_confirmation(self._action.target_ref) if self._action.tier == 3 else None


def _require_scope(actor: Actor, scope: str) -> None:
    if not actor.has_scope(scope):
        raise Forbidden(f"These credentials lack the `{scope}` scope.", {"scope": scope})


def _ttl_passed(action: DeploymentAction, now: datetime) -> bool:
    return action.status == ActionStatus.PROPOSED and now >= action.expires_at


def allowed_transitions(action: DeploymentAction, actor: Actor, now: datetime) -> list[str]:
    """The transitions this actor could make on this action right now, in table order."""
    if _ttl_passed(action, now):
        return []
    allowed = []
    for transition in Transition:
        rule = rule_for(transition, ActionStatus(action.status))
        if rule is None or Mode(action.mode) in rule.refused_modes:
            continue
        if not actor.has_scope(SCOPE_FOR_TRANSITION[transition]):
            continue
        if transition is Transition.APPROVE and action.tier == 3 and actor.user_id == action.proposed_by_id:
            continue
        allowed.append(transition.value)
    return allowed


def view(action: DeploymentAction, actor: Actor, now: datetime, with_events: bool = False) -> ActionView:
    """Wrap an action with its allowed transitions (and events) for this actor."""
    events = None
    if with_events:
        events = list(
            db.session.scalars(select(AuditEvent).where(AuditEvent.action_id == action.id).order_by(AuditEvent.seq))
        )
    return ActionView(action, allowed_transitions(action, actor, now), events)


# --------------------------------------------------------------------------- propose


def request_fingerprint(body: dict) -> str:
    """A stable digest of a request body, to tell a replay from a different request."""
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


def propose_action(
    actor: Actor,
    proposal: Proposal,
    now: datetime,
    policy: ProposalPolicy = ProposalPolicy(),
    idempotency: IdempotencyRequest | None = None,
    render=None,
) -> ProposeResult:
    """Create a proposal (and, for tier 1 autonomous, execute it) with its events.

    With `idempotency`, a repeat of the same key and body returns the first answer's stored
    body (`render(action)` as it was) instead of creating a row.
    Raises Forbidden, ValidationFailed, IdempotencyKeyReused.
    """
    _require_scope(actor, Scope.PROPOSE)
    if idempotency is not None:
        replay = _idempotent_replay(idempotency)
        if replay is not None:
            return replay

    errors: dict[str, list[str]] = {}
    if proposal.action_type not in ActionType.__members__.values():
        raise ValidationFailed("Unknown action type.", {"action_type": ["Must be one of the nine action types."]})
    if (proposal.mode or Mode.SUPERVISED) not in Mode.__members__.values():
        raise ValidationFailed("Unknown mode.", {"mode": ["Must be dry_run, supervised or autonomous."]})
    tier = tier_of(proposal.action_type)
    if proposal.tier is not None and proposal.tier != tier:
        errors["tier"] = [f"`{proposal.action_type}` is tier {tier}; leave `tier` out or send {tier}."]
    ttl = policy.default_ttl_seconds if proposal.ttl_seconds is None else proposal.ttl_seconds
    if not policy.ttl_min_seconds <= ttl <= policy.ttl_max_seconds:
        errors["ttl_seconds"] = [f"Must be between {policy.ttl_min_seconds} and {policy.ttl_max_seconds} seconds."]
    if errors:
        raise ValidationFailed("The proposal has invalid fields.", errors)

    mode = Mode(proposal.mode or Mode.SUPERVISED)
    action = DeploymentAction(
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
    )
    try:
        db.session.add(action)
        db.session.flush()
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
            },
        )
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
        commit()
    except IntegrityError:
        # Another request with the same Idempotency-Key won the insert: answer as it did.
        db.session.rollback()
        if idempotency is not None:
            replay = _idempotent_replay(idempotency)
            if replay is not None:
                return replay
        raise
    except BaseException:
        db.session.rollback()
        raise
    return ProposeResult(action)


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


# --------------------------------------------------------------------------- read


def get_action(actor: Actor, action_id: str, now: datetime) -> DeploymentAction:
    """One action of the actor's workspace, expired first if its TTL has passed.

    Raises Forbidden, ActionNotFound (also for another workspace's id).
    """
    _require_scope(actor, Scope.READ)
    action = _load(actor, action_id)
    if _ttl_passed(action, now):
        _expire_one(action.id, now, system_actor(actor.workspace_id, actor.request_id))
        action = _load(actor, action_id)
    return action


def _load(actor: Actor, action_id: str) -> DeploymentAction:
    if not is_valid_id(action_id, "act"):
        raise ActionNotFound()
    action = db.session.scalars(
        select(DeploymentAction)
        .where(DeploymentAction.id == action_id, DeploymentAction.workspace_id == actor.workspace_id)
        .execution_options(populate_existing=True)
    ).first()
    if action is None:
        raise ActionNotFound()
    return action


def encode_cursor(action: DeploymentAction) -> str:
    raw = json.dumps([action.proposed_at.strftime("%Y-%m-%dT%H:%M:%S.%f"), action.id])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Parse a cursor made by encode_cursor; raises ValidationFailed for anything else."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        proposed_at_text, action_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        proposed_at = datetime.strptime(proposed_at_text, "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC)
        if not is_valid_id(action_id, "act"):
            raise ValueError("bad id")
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ValidationFailed("The cursor is not one this API gave out.", {"cursor": ["Invalid cursor."]}) from None
    return proposed_at, action_id


def list_actions(
    actor: Actor, now: datetime, status: str | None = None, limit: int = 50, cursor: str | None = None
) -> tuple[list[DeploymentAction], str | None]:
    """A page of the workspace's actions, newest first, and the cursor of the next page.

    Raises Forbidden, ValidationFailed (bad cursor).
    """
    _require_scope(actor, Scope.READ)
    expire_due(now, workspace_id=actor.workspace_id, request_id=actor.request_id)
    query = select(DeploymentAction).where(DeploymentAction.workspace_id == actor.workspace_id)
    if status:
        query = query.where(DeploymentAction.status == ActionStatus(status).value)
    if cursor:
        after_at, after_id = decode_cursor(cursor)
        # A row-value comparison: both databases turn it into one index range, where the
        # equivalent OR was filtered row by row (seconds, 1M rows deep).
        query = query.where(tuple_(DeploymentAction.proposed_at, DeploymentAction.id) < tuple_(after_at, after_id))
    query = query.order_by(DeploymentAction.proposed_at.desc(), DeploymentAction.id.desc()).limit(limit + 1)
    rows = list(db.session.scalars(query).unique())
    next_cursor = encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return rows[:limit], next_cursor


def summary(actor: Actor, now: datetime, tz: str = "UTC") -> dict:
    """KPI counts for the workspace; "today" starts at local midnight in `tz`.

    Raises Forbidden, ValidationFailed (unknown time zone).
    """
    _require_scope(actor, Scope.READ)
    zone = time_zone(tz)
    expire_due(now, workspace_id=actor.workspace_id, request_id=actor.request_id)
    local_midnight = datetime.combine(now.astimezone(zone).date(), time(0), tzinfo=zone).astimezone(UTC)
    workspace = DeploymentAction.workspace_id == actor.workspace_id
    counters = db.session.execute(
        select(*(getattr(Workspace, column) for column in STATUS_COUNTER_COLUMNS.values())).where(
            Workspace.id == actor.workspace_id
        )
    ).one()
    by_status = dict(zip(STATUS_COUNTER_COLUMNS, counters, strict=True))
    pending = db.session.scalar(
        select(func.count()).where(
            workspace,
            DeploymentAction.status == ActionStatus.PROPOSED,
            DeploymentAction.mode != Mode.DRY_RUN,
            DeploymentAction.expires_at > now,
        )
    )
    executed_today = db.session.scalar(
        select(func.count()).where(
            workspace,
            DeploymentAction.status == ActionStatus.EXECUTED,
            DeploymentAction.executed_at >= local_midnight,
        )
    )
    rejected_today = db.session.scalar(
        select(func.count()).where(
            workspace,
            DeploymentAction.status == ActionStatus.REJECTED,
            DeploymentAction.rejected_at >= local_midnight,
        )
    )
    return {
        "proposed": by_status[ActionStatus.PROPOSED],
        "pending_approval": pending,
        "executed_today": executed_today,
        "rejected_today": rejected_today,
        "by_status": {**by_status, "all": sum(by_status.values())},
        "tz": tz,
        "as_of": now,
    }


@lru_cache(maxsize=1)
def _iana_zone_names() -> frozenset[str]:
    # The system's zoneinfo directory also holds files that are not IANA names ("localtime",
    # "posix/…", "right/…"); `localtime` would mean "this server's zone", never what a client asks.
    return frozenset(available_timezones() - {"localtime", "posixrules"})


def time_zone(name: str) -> ZoneInfo:
    """An IANA zone by name; raises ValidationFailed for anything else."""
    if name not in _iana_zone_names():
        raise ValidationFailed("Unknown time zone.", {"tz": [f"`{name}` is not an IANA time zone name."]})
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValidationFailed("Unknown time zone.", {"tz": [f"`{name}` is not an IANA time zone name."]}) from None


# --------------------------------------------------------------------------- transitions


def approve_action(
    actor: Actor, action_id: str, now: datetime, note: str | None = None, confirmation: str | None = None
) -> DeploymentAction:
    """Approve a proposed action (checks in the contract's order, §4).

    Raises Forbidden, ActionNotFound, InvalidTransition, ActionExpired,
    SecondApproverRequired, ConfirmationMismatch, OperatorReasonRequired.
    """

    def tier3_checks(action: DeploymentAction) -> None:
        if action.tier != 3:
            return
        if actor.user_id == action.proposed_by_id:
            raise SecondApproverRequired()
        if confirmation != expected_confirmation(action.target_ref):
            raise ConfirmationMismatch(details={"confirmation": ["Does not match the target ref."]})
        if is_blank(note):
            raise OperatorReasonRequired(details={"note": ["Required for tier 3 approvals."]})

    return _transition(
        actor,
        action_id,
        Transition.APPROVE,
        now,
        extra_checks=tier3_checks,
        values={"approved_at": now, "approved_by_id": actor.user_id, "approver_note": _clean(note)},
        data={"note": _clean(note)},
    )


def reject_action(actor: Actor, action_id: str, now: datetime, note: str | None = None) -> DeploymentAction:
    """Reject a proposed or approved action.

    Raises Forbidden, ActionNotFound, InvalidTransition, ActionExpired.
    """
    return _transition(
        actor,
        action_id,
        Transition.REJECT,
        now,
        values={"rejected_at": now, "rejected_by_id": actor.user_id, "rejection_note": _clean(note)},
        data={"note": _clean(note)},
    )


def mark_executed(actor: Actor, action_id: str, now: datetime, outcome: dict | None = None) -> DeploymentAction:
    """Record the external runner's execution of an approved action.

    Raises Forbidden, ActionNotFound, InvalidTransition, ActionExpired.
    """
    return _transition(
        actor,
        action_id,
        Transition.MARK_EXECUTED,
        now,
        values={"executed_at": now, "executed_by_id": actor.user_id, "outcome": outcome},
        data={"outcome": outcome},
    )


def _clean(note: str | None) -> str | None:
    if is_blank(note):
        return None
    return note


def _transition(
    actor: Actor,
    action_id: str,
    transition: Transition,
    now: datetime,
    values: dict,
    data: dict,
    extra_checks=None,
) -> DeploymentAction:
    _require_scope(actor, SCOPE_FOR_TRANSITION[transition])
    action = _load(actor, action_id)
    status = ActionStatus(action.status)
    if _ttl_passed(action, now):
        if _expire_one(action.id, now, system_actor(actor.workspace_id, actor.request_id)):
            raise ActionExpired()
        raise InvalidTransition("Someone else changed this action first.")
    rule = rule_for(transition, status)
    if rule is None:
        raise InvalidTransition(
            f"Cannot {transition.value} an action that is {status.value}.",
            {"status": status.value, "transition": transition.value},
        )
    if Mode(action.mode) in rule.refused_modes:
        raise InvalidTransition(
            f"A {action.mode} action cannot be {rule.target.value}.",
            {"mode": action.mode, "transition": transition.value},
        )
    if extra_checks is not None:
        extra_checks(action)
    try:
        won = db.session.execute(
            update(DeploymentAction)
            .where(DeploymentAction.id == action.id, DeploymentAction.status == rule.source.value)
            .values(status=rule.target.value, **values)
            .execution_options(synchronize_session=False)
        ).rowcount
        if won != 1:
            db.session.rollback()
            raise InvalidTransition(
                "Someone else changed this action first; reload it.", {"transition": transition.value}
            )
        append_event(
            workspace_id=action.workspace_id,
            action_id=action.id,
            type=rule.event,
            actor=actor,
            at=now,
            status_from=rule.source,
            status_to=rule.target,
            data=data,
        )
        commit()
    except BaseException:
        db.session.rollback()
        raise
    return _load(actor, action_id)


# --------------------------------------------------------------------------- expiry


def _expire_one(action_id: str, now: datetime, actor: Actor) -> bool:
    """Flip one proposed, past-TTL action to expired with its event; False if someone else did."""
    try:
        action = db.session.get(DeploymentAction, action_id)
        expires_at = action.expires_at
        won = db.session.execute(
            update(DeploymentAction)
            .where(
                DeploymentAction.id == action_id,
                DeploymentAction.status == ActionStatus.PROPOSED,
                DeploymentAction.expires_at <= now,
            )
            .values(status=ActionStatus.EXPIRED, expired_at=expires_at)
            .execution_options(synchronize_session=False)
        ).rowcount
        if won != 1:
            db.session.rollback()
            return False
        append_event(
            workspace_id=action.workspace_id,
            action_id=action_id,
            type=EventType.EXPIRED,
            actor=actor,
            at=now,
            status_from=ActionStatus.PROPOSED,
            status_to=ActionStatus.EXPIRED,
            data={"expires_at": expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")},
        )
        commit()
    except BaseException:
        db.session.rollback()
        raise
    return True


def expire_due(now: datetime, workspace_id: str | None = None, request_id: str | None = None) -> int:
    """Expire every proposed action whose TTL has passed (one transaction each); returns how many.

    Safe to run from several processes at once: each row flips once, with one event.
    """
    query = select(DeploymentAction.id, DeploymentAction.workspace_id).where(
        DeploymentAction.status == ActionStatus.PROPOSED, DeploymentAction.expires_at <= now
    )
    if workspace_id is not None:
        query = query.where(DeploymentAction.workspace_id == workspace_id)
    due = db.session.execute(query.order_by(DeploymentAction.expires_at, DeploymentAction.id)).all()
    # End the read before writing: each flip starts its own transaction with its write.
    commit()
    expired = 0
    for action_id, action_workspace in due:
        if _expire_one(action_id, now, system_actor(action_workspace, request_id)):
            expired += 1
    return expired
