"""Reading the rows a decision or a representation is made from."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from audittrail.extensions import db
from audittrail.models import ActionApproval
from audittrail.models import DeploymentAction
from audittrail.models.types import is_valid_id
from audittrail.services.actors import Actor
from audittrail.services.errors import ActionNotFound


def load_action(actor: Actor, action_id: str) -> DeploymentAction:
    """The row itself, fresh from the database; raises ActionNotFound (also for another workspace's)."""
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


def approvals_of(action_ids: Iterable[str]) -> dict[str, list[ActionApproval]]:
    """The recorded approvals of these actions, oldest first, in one query."""
    ids = list(action_ids)
    found: dict[str, list[ActionApproval]] = {action_id: [] for action_id in ids}
    if ids:
        query = select(ActionApproval).where(ActionApproval.action_id.in_(ids)).order_by(ActionApproval.id)
        for approval in db.session.scalars(query):
            found[approval.action_id].append(approval)
    return found
