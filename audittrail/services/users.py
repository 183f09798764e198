"""Workspaces, users, password login and demo workspaces."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import func
from sqlalchemy import select
from werkzeug.security import check_password_hash
from werkzeug.security import generate_password_hash

from audittrail.extensions import db
from audittrail.models import RevokedToken
from audittrail.models import User
from audittrail.models import Workspace
from audittrail.services.errors import Unauthorized
from audittrail.services.errors import ValidationFailed
from audittrail.services.unit_of_work import commit

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


def create_user(workspace: Workspace, email: str, name: str, now: datetime, password: str | None = None) -> User:
    """A member of `workspace` (flushed, not committed); raises ValidationFailed on a taken email."""
    email = normalize_email(email)
    if db.session.scalar(select(func.count()).where(User.email == email)):
        raise ValidationFailed("This email is taken.", {"email": ["Already registered."]})
    user = User(
        workspace_id=workspace.id,
        email=email,
        name=name,
        password_hash=generate_password_hash(password) if password else None,
        created_at=now,
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
    return db.session.get(User, user_id)


def revoke_token(jti: str, expires_at: datetime) -> None:
    """Put a JWT on the blocklist until it would have expired anyway."""
    if db.session.get(RevokedToken, jti) is None:
        db.session.add(RevokedToken(jti=jti, expires_at=expires_at))
        commit()


def is_token_revoked(jti: str) -> bool:
    return db.session.get(RevokedToken, jti) is not None
