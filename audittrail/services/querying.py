"""Reading actions: one action, a page of them, the summary, and each as one caller sees it.

Reads are where a due row becomes `expired` (§4): each read first flips the rows it would show.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import time
from functools import lru_cache
from zoneinfo import ZoneInfo
from zoneinfo import ZoneInfoNotFoundError
from zoneinfo import available_timezones

from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import bindparam
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import tuple_

from audittrail.domain import TIER_REQUIREMENTS
from audittrail.domain import ActionStatus
from audittrail.domain import Mode
from audittrail.domain import Scope
from audittrail.domain import expected_confirmation
from audittrail.domain import permission_refusal
from audittrail.domain import ttl_passed
from audittrail.extensions import db
from audittrail.models import AuditEvent
from audittrail.models import DeploymentAction
from audittrail.models import Workspace
from audittrail.models.types import UTCDateTime
from audittrail.models.types import is_valid_id
from audittrail.models.workspace import STATUS_COUNTER_COLUMNS
from audittrail.services import evidence
from audittrail.services.actors import Actor
from audittrail.services.actors import system_actor
from audittrail.services.deciding import allowed_transitions
from audittrail.services.errors import ValidationFailed
from audittrail.services.errors import error_for
from audittrail.services.expiry import expire_due
from audittrail.services.expiry import expire_one
from audittrail.services.loading import ActionRow
from audittrail.services.loading import action_rows
from audittrail.services.loading import action_select
from audittrail.services.loading import approval_rows_of
from audittrail.services.loading import load_action_row
from audittrail.services.loading import read
from audittrail.services.runs import run_ids_for_targets
from audittrail_evidence.jws import Keyring


@dataclass(frozen=True)
class UserRef:
    id: str
    name: str


@dataclass(frozen=True)
class ApprovalRef:
    user: UserRef
    at: datetime
    note: str | None


@dataclass(frozen=True)
class ActionSnapshot:
    """An action as one caller sees it at one moment: its fields, its approvals, what they may do."""

    id: str
    workspace_id: str
    tier: int
    action_type: str
    target_ref: str
    reason: str
    mode: str
    status: str
    payload: dict
    outcome: dict | None
    approver_note: str | None
    rejection_note: str | None
    ttl_seconds: int
    proposed_at: datetime
    expires_at: datetime
    approved_at: datetime | None
    rejected_at: datetime | None
    executed_at: datetime | None
    expired_at: datetime | None
    proposed_by: UserRef
    approved_by: UserRef | None
    rejected_by: UserRef | None
    executed_by: UserRef | None
    requires_confirmation: bool
    requires_second_approver: bool
    confirmation_text: str | None
    policy: dict
    approvals_required: int
    approvals_received: int
    approvals: list[ApprovalRef]
    allowed_transitions: list[str]
    version: int
    digest: str
    approval_receipt: str | None
    events: list | None = None  # audit_events rows (their columns as attributes), oldest first
    run_id: str | None = None  # the run its target_ref names (runs.md §2), for the drawer's link


def _ref(user) -> UserRef | None:
    return None if user is None else UserRef(user.id, user.name)


def snapshots(
    actions: list[DeploymentAction | ActionRow], actor: Actor, now: datetime, keyring: Keyring | None = None
) -> list[ActionSnapshot]:
    """Each action as this actor sees it now (approvals read in one query for all of them).

    `keyring` signs the approval receipts; without it they are null (the API always passes it).
    """
    approvals = approval_rows_of(action.id for action in actions)
    runs_by_target = run_ids_for_targets(actor.workspace_id, {action.target_ref for action in actions})
    result = []
    for action in actions:
        requirements = TIER_REQUIREMENTS[action.tier]
        recorded = approvals[action.id]
        digest = evidence.digest_of(action)
        result.append(
            ActionSnapshot(
                id=action.id,
                workspace_id=action.workspace_id,
                tier=action.tier,
                action_type=action.action_type,
                target_ref=action.target_ref,
                reason=action.reason,
                mode=action.mode,
                status=action.status,
                payload=action.payload,
                outcome=action.outcome,
                approver_note=action.approver_note,
                rejection_note=action.rejection_note,
                ttl_seconds=action.ttl_seconds,
                proposed_at=action.proposed_at,
                expires_at=action.expires_at,
                approved_at=action.approved_at,
                rejected_at=action.rejected_at,
                executed_at=action.executed_at,
                expired_at=action.expired_at,
                proposed_by=_ref(action.proposed_by),
                approved_by=_ref(action.approved_by),
                rejected_by=_ref(action.rejected_by),
                executed_by=_ref(action.executed_by),
                requires_confirmation=requirements.confirmation,
                requires_second_approver=not action.policy["allow_self_approval"],
                confirmation_text=expected_confirmation(action.target_ref) if requirements.confirmation else None,
                policy=dict(action.policy),
                approvals_required=action.policy["approvals_required"],
                approvals_received=action.approvals_received,
                approvals=[ApprovalRef(_ref(item.user), item.at, item.note) for item in recorded],
                allowed_transitions=allowed_transitions(action, actor, now, recorded),
                version=action.version,
                digest=digest,
                approval_receipt=evidence.approval_receipt(action, recorded, digest, keyring),
                run_id=runs_by_target.get(action.target_ref),
            )
        )
    return result


def snapshot(
    action: DeploymentAction, actor: Actor, now: datetime, with_events: bool = False, keyring: Keyring | None = None
) -> ActionSnapshot:
    """One action as this actor sees it now, with its audit events when asked."""
    (result,) = snapshots([action], actor, now, keyring)
    if not with_events:
        return result
    events = read(_events_statement(), {"action_id": action.id}).all()
    return ActionSnapshot(**{**result.__dict__, "events": events})


def _refuse_reading(actor: Actor) -> None:
    refusal = permission_refusal(actor.caller, Scope.READ)
    if refusal is not None:
        raise error_for(refusal)


def get_action(actor: Actor, action_id: str, now: datetime) -> ActionRow:
    """One action of the actor's workspace (as read for its representation), expired first if its TTL has passed.

    Raises Forbidden, ActionNotFound (also for another workspace's id).
    """
    _refuse_reading(actor)
    action = load_action_row(actor, action_id)
    if ttl_passed(ActionStatus(action.status), action.expires_at, now):
        expire_one(action.id, now, system_actor(actor.workspace_id, actor.request_id))
        action = load_action_row(actor, action_id)
    return action


@lru_cache(maxsize=1)
def _events_statement():
    """An action's events, oldest first, as the columns EventSchema reads (ix_audit_events_action)."""
    events = AuditEvent.__table__
    return select(events).where(events.c.action_id == bindparam("action_id")).order_by(events.c.seq)


def written_action(actor: Actor, action_id: str) -> ActionRow:
    """The action its writer just committed, read back for the answer (no read scope asked: a key
    that may only propose or decide still gets the action it wrote). Raises ActionNotFound."""
    return load_action_row(actor, action_id)


def current_version(action_id: str) -> int:
    """The action's version as committed now (a wait checks it on every wake-up of its workspace)."""
    version = db.session.scalar(select(DeploymentAction.version).where(DeploymentAction.id == action_id))
    db.session.rollback()
    return version or 0


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
) -> tuple[list[ActionRow], str | None]:
    """A page of the workspace's actions, newest first, and the cursor of the next page.

    Raises Forbidden, ValidationFailed (bad cursor).
    """
    _refuse_reading(actor)
    expire_due(now, workspace_id=actor.workspace_id, request_id=actor.request_id, in_read=True)
    parameters = {"workspace_id": actor.workspace_id, "limit": limit + 1}
    if status:
        parameters["status"] = ActionStatus(status).value
    if cursor:
        parameters["after_at"], parameters["after_id"] = decode_cursor(cursor)
    rows = action_rows(_page_statement(bool(status), bool(cursor)), parameters)
    next_cursor = encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return rows[:limit], next_cursor


@lru_cache(maxsize=4)
def _page_statement(by_status: bool, after_cursor: bool):
    """A page of a workspace's actions, newest first; built once per shape."""
    table = DeploymentAction.__table__
    query = action_select().where(table.c.workspace_id == bindparam("workspace_id"))
    if by_status:
        query = query.where(table.c.status == bindparam("status"))
    if after_cursor:
        # A row-value comparison: both databases turn it into one index range, where the
        # equivalent OR was filtered row by row (seconds, 1M rows deep).
        after = tuple_(bindparam("after_at", type_=UTCDateTime()), bindparam("after_id", type_=String()))
        query = query.where(tuple_(table.c.proposed_at, table.c.id) < after)
    return query.order_by(table.c.proposed_at.desc(), table.c.id.desc()).limit(bindparam("limit", type_=Integer()))


def summary(actor: Actor, now: datetime, tz: str = "UTC") -> dict:
    """KPI counts for the workspace; "today" starts at local midnight in `tz`.

    Raises Forbidden, ValidationFailed (unknown time zone).
    """
    _refuse_reading(actor)
    zone = time_zone(tz)
    expire_due(now, workspace_id=actor.workspace_id, request_id=actor.request_id, in_read=True)
    local_midnight = datetime.combine(now.astimezone(zone).date(), time(0), tzinfo=zone).astimezone(UTC)
    *counters, pending, executed_today, rejected_today = read(
        _summary_statement(), {"workspace_id": actor.workspace_id, "now": now, "midnight": local_midnight}
    ).one()
    by_status = dict(zip(STATUS_COUNTER_COLUMNS, counters, strict=True))
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
def _summary_statement():
    """One statement, built once: the per-status counters of the workspace row and three index-range counts."""
    workspace = DeploymentAction.workspace_id == bindparam("workspace_id")

    def count(*conditions):
        return select(func.count()).where(workspace, *conditions).scalar_subquery()

    return select(
        *(getattr(Workspace, column) for column in STATUS_COUNTER_COLUMNS.values()),
        count(
            DeploymentAction.status == ActionStatus.PROPOSED,
            DeploymentAction.mode != Mode.DRY_RUN,
            DeploymentAction.expires_at > bindparam("now"),
        ),
        count(DeploymentAction.status == ActionStatus.EXECUTED, DeploymentAction.executed_at >= bindparam("midnight")),
        count(DeploymentAction.status == ActionStatus.REJECTED, DeploymentAction.rejected_at >= bindparam("midnight")),
    ).where(Workspace.id == bindparam("workspace_id"))


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
