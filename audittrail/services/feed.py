"""The event feed (live.md §2): the workspace's audit events in `seq` order, each with its action now.

The audit log is the one record of what happened: the feed, the stream and the waits all read it,
and the sequence number of the workspace's chain is the cursor.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from audittrail.domain import Scope
from audittrail.domain import permission_refusal
from audittrail.extensions import db
from audittrail.models import AuditEvent
from audittrail.models import DeploymentAction
from audittrail.models import Workspace
from audittrail.models.types import is_valid_id
from audittrail.services.actors import Actor
from audittrail.services.errors import ValidationFailed
from audittrail.services.errors import error_for
from audittrail.services.expiry import expire_due
from audittrail.services.querying import ActionSnapshot
from audittrail.services.querying import snapshots

MAX_PAGE = 500


@dataclass(frozen=True)
class FeedItem:
    """One audit event, the action's version right after it, and the action as the caller sees it now."""

    event: AuditEvent
    action_version: int | None
    action: ActionSnapshot | None


def _refuse_reading(actor: Actor) -> None:
    refusal = permission_refusal(actor.caller, Scope.READ)
    if refusal is not None:
        raise error_for(refusal)


def check_action_id(action_id: str | None) -> None:
    """Raise ValidationFailed for an `action_id` that no action could have."""
    if action_id is not None and not is_valid_id(action_id, "act"):
        raise ValidationFailed("Not an action id.", {"action_id": ["Not an action id."]})


def head(actor: Actor) -> int:
    """The seq of the workspace's last event (0 before any)."""
    _refuse_reading(actor)
    return db.session.scalar(select(Workspace.audit_seq).where(Workspace.id == actor.workspace_id)) or 0


def read_events(
    actor: Actor,
    now: datetime,
    after: int = 0,
    limit: int = 100,
    action_id: str | None = None,
    expire: bool = True,
    keyring=None,
) -> list[FeedItem]:
    """Up to `limit` events of the actor's workspace after seq `after`, oldest first.

    With `action_id`, only that action's (none for another workspace's id); without it, workspace
    events (action null) too. `expire` first flips the workspace's due rows, as every read does
    (streams leave that to the live hub's sweep). `keyring` signs the actions' approval receipts.
    Raises Forbidden, ValidationFailed.
    """
    _refuse_reading(actor)
    check_action_id(action_id)
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationFailed("Bad limit.", {"limit": [f"Must be between 1 and {MAX_PAGE}."]})
    if expire:
        expire_due(now, workspace_id=actor.workspace_id, request_id=actor.request_id)
    query = select(AuditEvent).where(AuditEvent.workspace_id == actor.workspace_id, AuditEvent.seq > after)
    if action_id is not None:
        query = query.where(AuditEvent.action_id == action_id)
    events = list(db.session.scalars(query.order_by(AuditEvent.seq).limit(limit)))
    action_ids = list(dict.fromkeys(event.action_id for event in events if event.action_id is not None))
    versions = _versions_after(action_ids, events[-1].seq if events else 0)
    actions = {}
    if action_ids:
        rows = db.session.scalars(select(DeploymentAction).where(DeploymentAction.id.in_(action_ids)))
        actions = {item.id: item for item in snapshots(list(rows), actor, now, keyring)}
    return [
        FeedItem(
            event=event,
            action_version=versions.get((event.action_id, event.seq)),
            action=actions.get(event.action_id),
        )
        for event in events
    ]


def _versions_after(action_ids: list[str], last_seq: int) -> dict[tuple[str, int], int]:
    """(action id, seq) → the action's version right after that event: its events counted up to it."""
    if not action_ids:
        return {}
    rows = db.session.execute(
        select(AuditEvent.action_id, AuditEvent.seq)
        .where(AuditEvent.action_id.in_(action_ids), AuditEvent.seq <= last_seq)
        .order_by(AuditEvent.action_id, AuditEvent.seq)
    )
    counted: dict[str, int] = defaultdict(int)
    versions = {}
    for action_id, seq in rows:
        counted[action_id] += 1
        versions[(action_id, seq)] = counted[action_id]
    return versions
