"""Expiry (§4): a proposed action past its TTL becomes `expired`, once, with its event."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from sqlalchemy import bindparam
from sqlalchemy import select
from sqlalchemy import update

from audittrail.domain import ActionStatus
from audittrail.domain import EventType
from audittrail.extensions import db
from audittrail.models import DeploymentAction
from audittrail.services.actors import Actor
from audittrail.services.actors import system_actor
from audittrail.services.audit import append_event
from audittrail.services.loading import read
from audittrail.services.unit_of_work import unit_of_work


def expire_one(action_id: str, now: datetime, actor: Actor) -> bool:
    """Flip one proposed, past-TTL action to expired with its event; False if someone else did.

    Writes in the caller's unit of work when there is one, else in its own.
    """
    with unit_of_work():
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
    return True


def expire_due(
    now: datetime, workspace_id: str | None = None, request_id: str | None = None, in_read: bool = False
) -> int:
    """Expire every proposed action whose TTL has passed (one unit of work each); returns how many.

    Safe to run from several processes at once: each row flips once, with one event. One unit
    per row keeps the lock order of a transition (action, then workspace), so a sweep and a
    decision never deadlock.

    Every read calls this first (`in_read`: the caller goes on reading in this transaction), so
    when nothing is due it costs one probe of the (workspace_id, status, expires_at) index in the
    read's own transaction, and nothing else. Without `in_read` (the sweep, the live hub) the
    probe's transaction is always ended, so no connection is held after it.
    """
    due = read(_due_statement(workspace_id is not None), {"now": now, "workspace_id": workspace_id}).all()
    if not due and in_read:
        return 0
    with unit_of_work():  # ends the read before the writes begin (or joins the caller's unit)
        pass
    expired = 0
    for action_id, action_workspace in due:
        if expire_one(action_id, now, system_actor(action_workspace, request_id)):
            expired += 1
    return expired


@lru_cache(maxsize=2)
def _due_statement(in_workspace: bool):
    """The proposed rows past their TTL (in one workspace), oldest deadline first; built once."""
    query = select(DeploymentAction.id, DeploymentAction.workspace_id).where(
        DeploymentAction.status == ActionStatus.PROPOSED, DeploymentAction.expires_at <= bindparam("now")
    )
    if in_workspace:
        query = query.where(DeploymentAction.workspace_id == bindparam("workspace_id"))
    return query.order_by(DeploymentAction.expires_at, DeploymentAction.id)
