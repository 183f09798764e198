"""Members of a workspace and their roles (policy.md §1–§2)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func
from sqlalchemy import select

from audittrail.domain import Capability
from audittrail.domain import EventType
from audittrail.domain import Role
from audittrail.domain import UserKind
from audittrail.domain import capability_refusal
from audittrail.extensions import db
from audittrail.models import User
from audittrail.models.types import is_valid_id
from audittrail.services.actors import Actor
from audittrail.services.audit import append_event
from audittrail.services.audit import lock_workspace
from audittrail.services.errors import LastAdmin
from audittrail.services.errors import MemberNotFound
from audittrail.services.errors import ValidationFailed
from audittrail.services.errors import error_for
from audittrail.services.unit_of_work import unit_of_work


def list_members(actor: Actor) -> list[User]:
    """Every member of the actor's workspace: people first, then agents, each by name."""
    people_first = (User.kind == UserKind.AGENT).asc()
    query = select(User).where(User.workspace_id == actor.workspace_id).order_by(people_first, User.name, User.id)
    return list(db.session.scalars(query))


def change_role(actor: Actor, member_id: str, role: str, now: datetime) -> User:
    """Give a member another role, with a `member_role_changed` event (none when it is the same).

    Raises Forbidden, ValidationFailed, MemberNotFound, LastAdmin (demoting the last admin).
    """
    refusal = capability_refusal(actor.caller, Capability.MANAGE_MEMBERS)
    if refusal is not None:
        raise error_for(refusal)
    if role not in Role.__members__.values():
        raise ValidationFailed("Unknown role.", {"role": [f"Choose from {', '.join(Role)}."]})
    new_role = Role(role)
    if not is_valid_id(member_id, "usr"):
        raise MemberNotFound()
    with unit_of_work():
        # Locked first, so that the admin count read below cannot change before this commits.
        lock_workspace(actor.workspace_id)
        member = db.session.scalars(
            select(User)
            .where(User.id == member_id, User.workspace_id == actor.workspace_id)
            .execution_options(populate_existing=True)
        ).first()
        if member is None:
            raise MemberNotFound()
        old_role = Role(member.role)
        if old_role is new_role:
            return member
        if old_role is Role.ADMIN:
            admins = db.session.scalar(
                select(func.count()).where(User.workspace_id == actor.workspace_id, User.role == Role.ADMIN)
            )
            if admins <= 1:
                raise LastAdmin(details={"member_id": member.id})
        member.role = new_role.value
        db.session.flush()
        append_event(
            workspace_id=actor.workspace_id,
            action_id=None,
            type=EventType.MEMBER_ROLE_CHANGED,
            actor=actor,
            at=now,
            data={"member_id": member.id, "from": old_role.value, "to": new_role.value},
        )
    return member
