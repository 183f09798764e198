"""Deciding on an action: approve (N of M), reject (a veto, or the proposer's withdrawal), mark-executed.

Every rule comes from one function, audittrail.domain.decide; this module reads the facts it
needs, raises what it refuses, and writes what it allows: a compare-and-set on the row, and the
audit event, in one unit of work, so that concurrent callers get exactly one winner per place
and the losers leave nothing. Each returns the action as committed, read back by `reread`: the
ORM row by default, a plain row (querying.written_action) for the API's answer.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from sqlalchemy import bindparam
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from audittrail.domain import SCOPE_FOR_TRANSITION
from audittrail.domain import ActionFacts
from audittrail.domain import ActionStatus
from audittrail.domain import DecisionInputs
from audittrail.domain import EventType
from audittrail.domain import Mode
from audittrail.domain import TierRule
from audittrail.domain import Transition
from audittrail.domain import decide
from audittrail.domain import is_blank
from audittrail.domain import permission_refusal
from audittrail.domain import rule_for
from audittrail.domain.decisions import allowed_transitions as allowed_for
from audittrail.extensions import db
from audittrail.models import ActionApproval
from audittrail.models import DeploymentAction
from audittrail.models.types import is_valid_id
from audittrail.services import evidence
from audittrail.services.actors import Actor
from audittrail.services.actors import system_actor
from audittrail.services.audit import append_event
from audittrail.services.errors import ActionExpired
from audittrail.services.errors import AlreadyApproved
from audittrail.services.errors import DigestMismatch
from audittrail.services.errors import InvalidTransition
from audittrail.services.errors import ServiceError
from audittrail.services.errors import VersionMismatch
from audittrail.services.errors import error_for
from audittrail.services.expiry import expire_one
from audittrail.services.loading import ActionRow
from audittrail.services.loading import ApprovalRow
from audittrail.services.loading import approval_rows_of
from audittrail.services.loading import approvals_of
from audittrail.services.loading import load_action
from audittrail.services.loading import load_action_row
from audittrail.services.unit_of_work import unit_of_work

_LOST_RACE = "Someone else changed this action first; reload it."


def action_facts(action: DeploymentAction, approvals: list[ActionApproval]) -> ActionFacts:
    """What the decision function needs to know about this action."""
    return ActionFacts(
        status=ActionStatus(action.status),
        mode=Mode(action.mode),
        tier=action.tier,
        target_ref=action.target_ref,
        expires_at=action.expires_at,
        proposer_person_id=action.proposed_by.person_id,
        rule=TierRule.from_dict(action.policy),
        approver_person_ids=frozenset(approval.person_id for approval in approvals),
    )


def allowed_transitions(
    action: DeploymentAction, actor: Actor, now: datetime, approvals: list[ActionApproval] | None = None
) -> list[str]:
    """The transitions this actor could make on this action right now, in table order."""
    if approvals is None:
        approvals = approvals_of([action.id])[action.id]
    return allowed_for(action_facts(action, approvals), actor.caller, now)


def _load_for_decision(actor: Actor, action_id: str) -> tuple[ActionRow, list[ApprovalRow]]:
    # Approvals first, then the row: an approval and the status it completes commit together, so
    # a caller who sees an approval also sees its status, and a loser of a race that completed the
    # action is told `invalid_transition`, never `already_approved` about an action now approved.
    # Both as plain rows (one Core select each): the decision reads them, the writes are statements.
    approvals = approval_rows_of([action_id])[action_id] if is_valid_id(action_id, "act") else []
    return load_action_row(actor, action_id), approvals


def _check_version(action: DeploymentAction, expected_version: int | None) -> None:
    # live.md §1: after the not-found check, before every other rule.
    if expected_version is not None and action.version != expected_version:
        raise VersionMismatch(action.version)


def _lost(action_id: str, transition: Transition, expected_version: int | None) -> ServiceError:
    """The error of a compare-and-set that found the row changed under it."""
    if expected_version is not None:
        # Every change moves the version, so a caller who named one learns the current one.
        current = db.session.scalar(select(DeploymentAction.version).where(DeploymentAction.id == action_id))
        if current != expected_version:
            return VersionMismatch(current)
    return InvalidTransition(_LOST_RACE, {"transition": transition.value})


def _version_guard(expected_version: int | None) -> list:
    return [] if expected_version is None else [DeploymentAction.version == expected_version]


def _check(actor: Actor, action, approvals, transition: Transition, now: datetime, inputs=None) -> None:
    """Raise the domain's first refusal; a row past its TTL is flipped to expired first."""
    refusal = decide(action_facts(action, approvals), actor.caller, transition, now, inputs)
    if refusal is None:
        return
    if refusal.code == ActionExpired.code:
        if expire_one(action.id, now, system_actor(actor.workspace_id, actor.request_id)):
            raise ActionExpired()
        raise InvalidTransition(_LOST_RACE)
    raise error_for(refusal)


def _refuse_before_reading(actor: Actor, transition: Transition) -> None:
    # Scope and role first: a caller who may never do this learns nothing about the row.
    refusal = permission_refusal(actor.caller, SCOPE_FOR_TRANSITION[transition])
    if refusal is not None:
        raise error_for(refusal)


def _clean(note: str | None) -> str | None:
    return None if is_blank(note) else note


def approve_action(
    actor: Actor,
    action_id: str,
    now: datetime,
    note: str | None = None,
    confirmation: str | None = None,
    expected_version: int | None = None,
    reread=load_action,
) -> DeploymentAction:
    """Record this person's approval; the N-th moves the action to `approved` (policy.md §3).

    Approvals before the N-th append `approval_recorded` and leave the status alone. With
    `expected_version` (If-Match), the action must still be at that version, in the same
    compare-and-set that takes the approval's place.
    Raises Forbidden, ActionNotFound, VersionMismatch, InvalidTransition, ActionExpired,
    SecondApproverRequired, AlreadyApproved, ConfirmationMismatch, OperatorReasonRequired.
    """
    _refuse_before_reading(actor, Transition.APPROVE)
    with unit_of_work():
        action, approvals = _load_for_decision(actor, action_id)
        _check_version(action, expected_version)
        _check(actor, action, approvals, Transition.APPROVE, now, DecisionInputs(note=note, confirmation=confirmation))
        required = TierRule.from_dict(action.policy).approvals_required
        # One statement takes the place: the count moves only while it is below N and the row is
        # still proposed, so racing approvers are counted one at a time and never past N. The row
        # stays locked (PostgreSQL) or the database write-locked (SQLite) until the commit.
        connection = db.session.connection()
        received = connection.execute(
            _count_approval(expected_version is not None),
            {"action_id": action.id, "required": required, "expected_version": expected_version},
        ).scalar()
        if received is None:
            raise _lost(action.id, Transition.APPROVE, expected_version)
        if received >= required:
            connection.execute(
                _SET_APPROVED,
                {"action_id": action.id, "at": now, "by": actor.user_id, "note": _clean(note)},
            )
        try:
            db.session.connection().execute(
                _INSERT_APPROVAL,
                {
                    "workspace_id": action.workspace_id,
                    "action_id": action.id,
                    "user_id": actor.user_id,
                    "person_id": actor.person_id,
                    "api_key_id": actor.api_key_id,
                    "at": now,
                    "note": _clean(note),
                },
            )
        except IntegrityError:
            # The same person (or their agent, or its owner) approved at the same moment; the
            # unit of work rolls the count back with it.
            raise AlreadyApproved() from None
        _record_approval_event(actor, action, now, note, received, required)
    return reread(actor, action_id)


# The approval's statements, built once (nothing reads their rows back as objects).
_INSERT_APPROVAL = insert(ActionApproval.__table__)
_actions = DeploymentAction.__table__
_SET_APPROVED = (
    update(_actions)
    .where(_actions.c.id == bindparam("action_id"))
    .values(
        status=ActionStatus.APPROVED.value,
        approved_at=bindparam("at", type_=_actions.c.approved_at.type),
        approved_by_id=bindparam("by", type_=_actions.c.approved_by_id.type),
        approver_note=bindparam("note", type_=_actions.c.approver_note.type),
    )
)


@lru_cache(maxsize=2)
def _count_approval(with_version: bool):
    """One statement takes an approval's place: the count moves only while it is below N and the row is
    still proposed (and, with If-Match, still at that version)."""
    guard = [_actions.c.version == bindparam("expected_version")] if with_version else []
    return (
        update(_actions)
        .where(
            _actions.c.id == bindparam("action_id"),
            _actions.c.status == ActionStatus.PROPOSED.value,
            _actions.c.approvals_received < bindparam("required"),
            *guard,
        )
        .values(approvals_received=_actions.c.approvals_received + 1)
        .returning(_actions.c.approvals_received)
    )


def _record_approval_event(actor, action, now, note, received: int, required: int) -> None:
    if received < required:
        append_event(
            workspace_id=action.workspace_id,
            action_id=action.id,
            type=EventType.APPROVAL_RECORDED,
            actor=actor,
            at=now,
            data={"note": _clean(note), "approvals_received": received, "approvals_required": required},
        )
        return
    approvers = [
        {"id": approval.user_id, "name": approval.user.name} for approval in approval_rows_of([action.id])[action.id]
    ]
    append_event(
        workspace_id=action.workspace_id,
        action_id=action.id,
        type=EventType.APPROVED,
        actor=actor,
        at=now,
        status_from=ActionStatus.PROPOSED,
        status_to=ActionStatus.APPROVED,
        data={"note": _clean(note), "approvers": approvers, "approvals_required": required},
    )


def reject_action(
    actor: Actor,
    action_id: str,
    now: datetime,
    note: str | None = None,
    expected_version: int | None = None,
    reread=load_action,
) -> DeploymentAction:
    """Reject a proposed or approved action: a veto by an approver, or a withdrawal by its proposer.

    Raises Forbidden, ActionNotFound, VersionMismatch, InvalidTransition, ActionExpired.
    """
    return _move(
        actor,
        action_id,
        Transition.REJECT,
        now,
        values={"rejected_at": now, "rejected_by_id": actor.user_id, "rejection_note": _clean(note)},
        data={"note": _clean(note)},
        expected_version=expected_version,
        reread=reread,
    )


def mark_executed(
    actor: Actor,
    action_id: str,
    now: datetime,
    outcome: dict | None = None,
    expected_version: int | None = None,
    digest: str | None = None,
    reread=load_action,
) -> DeploymentAction:
    """Record the external runner's execution of an approved action.

    With `digest` (what the runner verified in the receipt), the action's own digest must be it:
    the `executed` event then records `digest_verified`; otherwise nothing changes.
    Raises Forbidden, ActionNotFound, VersionMismatch, InvalidTransition, ActionExpired, DigestMismatch.
    """
    data = {"outcome": outcome}
    if digest is not None:
        data["digest_verified"] = True

    def same_digest(action: DeploymentAction) -> None:
        if digest is not None and digest != evidence.digest_of(action):
            raise DigestMismatch(details={"digest": digest, "expected": evidence.digest_of(action)})

    return _move(
        actor,
        action_id,
        Transition.MARK_EXECUTED,
        now,
        values={"executed_at": now, "executed_by_id": actor.user_id, "outcome": outcome},
        data=data,
        expected_version=expected_version,
        guard=same_digest,
        reread=reread,
    )


def _move(
    actor: Actor,
    action_id: str,
    transition: Transition,
    now: datetime,
    values: dict,
    data: dict,
    expected_version: int | None = None,
    guard=None,
    reread=load_action,
):
    _refuse_before_reading(actor, transition)
    with unit_of_work():
        action, approvals = _load_for_decision(actor, action_id)
        _check_version(action, expected_version)
        _check(actor, action, approvals, transition, now)
        if guard is not None:
            # After the contract's checks, before any write: a refusal here leaves nothing.
            guard(action)
        rule = rule_for(transition, ActionStatus(action.status))
        won = db.session.execute(
            update(DeploymentAction)
            .where(
                DeploymentAction.id == action.id,
                DeploymentAction.status == rule.source.value,
                *_version_guard(expected_version),
            )
            .values(status=rule.target.value, **values)
            .execution_options(synchronize_session=False)
        ).rowcount
        if won != 1:
            raise _lost(action.id, transition, expected_version)
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
    return reread(actor, action_id)
