"""Reading the rows a decision or a representation is made from."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from sqlalchemy import bindparam
from sqlalchemy import select
from sqlalchemy.orm import aliased

from audittrail.extensions import db
from audittrail.models import ActionApproval
from audittrail.models import DeploymentAction
from audittrail.models import User
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


# ----------------------------------------------------------------------------- reads for representations
#
# A representation needs the row's columns and four users' names, not ORM objects: building an
# identity-mapped object per row, and selectin-loading the users per page, cost the list more
# than its query. These read the same columns with one Core select each.


@dataclass(frozen=True, slots=True)
class UserSummary:
    """A user as an action shows it: id, name, and the owner that makes an agent one person with it."""

    id: str
    name: str
    owner_id: str | None = None

    @property
    def person_id(self) -> str:
        return self.owner_id or self.id


_ACTION_COLUMNS = tuple(column.key for column in DeploymentAction.__table__.columns)


class ActionRow:
    """An action's columns as attributes (the names DeploymentAction gives them) and its four users.

    What snapshots, the digest, the receipt and the decision rules read of an action; read-only.
    """

    __slots__ = (*_ACTION_COLUMNS, "proposed_by", "approved_by", "rejected_by", "executed_by")

    def __init__(self, row):
        for name in _ACTION_COLUMNS:
            setattr(self, name, getattr(row, name))
        self.proposed_by = UserSummary(row.proposed_by_id, row.proposed_by_name, row.proposed_by_owner_id)
        self.approved_by = _user(row.approved_by_id, row.approved_by_name)
        self.rejected_by = _user(row.rejected_by_id, row.rejected_by_name)
        self.executed_by = _user(row.executed_by_id, row.executed_by_name)


def _user(user_id: str | None, name: str | None) -> UserSummary | None:
    return None if user_id is None else UserSummary(user_id, name)


@dataclass(frozen=True, slots=True)
class ApprovalRow:
    """One recorded approval with its approver, as representations and decisions read it."""

    action_id: str
    user_id: str
    person_id: str
    at: datetime
    note: str | None
    user: UserSummary


def action_select():
    """SELECT the action columns and the users' names; LEFT JOINs keep the actions the driving table,
    so a page is still one backward range of (workspace_id, proposed_at, id) and one lookup per user."""
    proposer, approver, rejecter, executor = (aliased(User) for _ in range(4))
    table = DeploymentAction.__table__
    return select(
        table,
        proposer.name.label("proposed_by_name"),
        proposer.owner_id.label("proposed_by_owner_id"),
        approver.name.label("approved_by_name"),
        rejecter.name.label("rejected_by_name"),
        executor.name.label("executed_by_name"),
    ).select_from(
        table.outerjoin(proposer, proposer.id == table.c.proposed_by_id)
        .outerjoin(approver, approver.id == table.c.approved_by_id)
        .outerjoin(rejecter, rejecter.id == table.c.rejected_by_id)
        .outerjoin(executor, executor.id == table.c.executed_by_id)
    )


def read(statement, parameters: dict | None = None):
    """Run a Core select on the session's connection, in its transaction, and return its result.

    Through the connection rather than Session.execute: these statements load no ORM entity, and
    the session's ORM execution path (compile state, events, result adaptation) cost each read more
    than the database did.
    """
    return db.session.connection().execute(statement, parameters or {})


def action_rows(statement, parameters: dict | None = None) -> list[ActionRow]:
    return [ActionRow(row) for row in read(statement, parameters)]


@lru_cache(maxsize=1)
def _one_action_statement():
    table = DeploymentAction.__table__
    return action_select().where(table.c.id == bindparam("id"), table.c.workspace_id == bindparam("workspace_id"))


def load_action_row(actor: Actor, action_id: str) -> ActionRow:
    """The row as committed now, for its representation; raises ActionNotFound (also for another workspace's)."""
    if not is_valid_id(action_id, "act"):
        raise ActionNotFound()
    rows = action_rows(_one_action_statement(), {"id": action_id, "workspace_id": actor.workspace_id})
    if not rows:
        raise ActionNotFound()
    return rows[0]


@lru_cache(maxsize=1)
def _approvals_statement():
    approvals = ActionApproval.__table__
    users = User.__table__
    return (
        select(
            approvals.c.action_id,
            approvals.c.user_id,
            approvals.c.person_id,
            approvals.c.at,
            approvals.c.note,
            users.c.name,
            users.c.owner_id,
        )
        .join(users, users.c.id == approvals.c.user_id)
        .where(approvals.c.action_id.in_(bindparam("ids", expanding=True)))
        .order_by(approvals.c.id)
    )


def approval_rows_of(action_ids: Iterable[str]) -> dict[str, list[ApprovalRow]]:
    """approvals_of as plain rows, in one query: what a page of representations reads."""
    ids = list(action_ids)
    found: dict[str, list[ApprovalRow]] = {action_id: [] for action_id in ids}
    if ids:
        for row in read(_approvals_statement(), {"ids": ids}):
            user = UserSummary(row.user_id, row.name, row.owner_id)
            found[row.action_id].append(ApprovalRow(row.action_id, row.user_id, row.person_id, row.at, row.note, user))
    return found
