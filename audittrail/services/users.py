"""Workspaces, users, password login and demo workspaces."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import func
from sqlalchemy import select
from werkzeug.security import check_password_hash
from werkzeug.security import generate_password_hash

from audittrail.domain import Role
from audittrail.domain import UserKind
from audittrail.extensions import db
from audittrail.models import RevokedToken
from audittrail.models import User
from audittrail.models import Workspace
from audittrail.services.errors import Unauthorized
from audittrail.services.errors import ValidationFailed
from audittrail.services.unit_of_work import unit_of_work

# Checked against when the email is unknown, so both failures take the same time.
_DUMMY_HASH = generate_password_hash(secrets.token_urlsafe(16))


def create_workspace(name: str, now: datetime) -> Workspace:
    """A new tenant (flushed, not committed)."""
    workspace = Workspace(name=name, created_at=now)
    db.session.add(workspace)
    db.session.flush()
    return workspace


def normalize_email(email: str) -> str:
    """The form an email is stored and looked up in."""
    return email.strip().lower()


def create_user(
    workspace: Workspace,
    email: str,
    name: str,
    now: datetime,
    password: str | None = None,
    role: str = Role.OPERATOR,
    kind: str = UserKind.HUMAN,
    owner: User | None = None,
) -> User:
    """A member of `workspace` (flushed, not committed: call it inside a unit of work).

    An agent needs an owner, a human of the same workspace; a human has none.
    Raises ValidationFailed on a taken email, an unknown role or kind, or a wrong owner.
    """
    email = normalize_email(email)
    if db.session.scalar(select(func.count()).where(User.email == email)):
        raise ValidationFailed("This email is taken.", {"email": ["Already registered."]})
    if role not in Role.__members__.values():
        raise ValidationFailed("Unknown role.", {"role": [f"Choose from {', '.join(Role)}."]})
    if kind not in UserKind.__members__.values():
        raise ValidationFailed("Unknown kind.", {"kind": ["Choose human or agent."]})
    if kind == UserKind.AGENT:
        if owner is None or owner.workspace_id != workspace.id or owner.kind != UserKind.HUMAN:
            raise ValidationFailed(
                "An agent needs an owner.", {"owner": ["Must be a human member of the same workspace."]}
            )
    elif owner is not None:
        raise ValidationFailed("Only agents have owners.", {"owner": ["Leave it out for a human."]})
    user = User(
        workspace_id=workspace.id,
        email=email,
        name=name,
        password_hash=generate_password_hash(password) if password else None,
        created_at=now,
        role=Role(role).value,
        kind=UserKind(kind).value,
        owner_id=owner.id if owner is not None else None,
    )
    db.session.add(user)
    db.session.flush()
    return user


def authenticate_password(email: str, password: str) -> User:
    """The user with this email and password; raises Unauthorized otherwise."""
    if "\x00" in email:  # PostgreSQL refuses NUL in text; such an email cannot exist
        raise Unauthorized("Wrong email or password.")
    user = db.session.scalars(select(User).where(User.email == normalize_email(email))).first()
    stored = user.password_hash if user is not None and user.password_hash else _DUMMY_HASH
    if not check_password_hash(stored, password) or user is None or not user.password_hash:
        raise Unauthorized("Wrong email or password.")
    return user


def get_user(user_id: str) -> User | None:
    """The user with this id, or None."""
    return db.session.get(User, user_id)


def revoke_token(jti: str, expires_at: datetime) -> None:
    """Put a JWT on the blocklist until it would have expired anyway."""
    with unit_of_work():
        if db.session.get(RevokedToken, jti) is None:
            db.session.add(RevokedToken(jti=jti, expires_at=expires_at))


def is_token_revoked(jti: str) -> bool:
    """Whether this JWT id was logged out."""
    return db.session.get(RevokedToken, jti) is not None
