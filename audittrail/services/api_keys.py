"""API keys: `sk-at-` secrets, stored as SHA-256 plus a display prefix."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy import update

from audittrail.domain import Scope
from audittrail.domain.text import is_blank
from audittrail.extensions import db
from audittrail.models import ApiKey
from audittrail.models import User
from audittrail.models.types import is_valid_id
from audittrail.services.errors import ApiKeyNotFound
from audittrail.services.errors import ValidationFailed
from audittrail.services.unit_of_work import commit

KEY_PREFIX = "sk-at-"
RANDOM_LENGTH = 43  # token_urlsafe(32) gives 43 URL-safe characters (256 bits)
DISPLAY_LENGTH = len(KEY_PREFIX) + 8
# last_used_at is a hint, not an audit record: write it at most once a minute per key,
# so reads authenticated by a key do not each become a write.
_SECRET_SHAPE = re.compile(r"^sk-at-[A-Za-z0-9_-]{32,200}$")
LAST_USED_RESOLUTION = timedelta(seconds=60)


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def looks_like_api_key(value: str | None) -> bool:
    return bool(value) and value.startswith(KEY_PREFIX)


def create_api_key(user: User, name: str, now: datetime, scopes: list[str] | None = None) -> tuple[ApiKey, str]:
    """Create a key for `user`; returns the row and the secret, which is never stored.

    Raises ValidationFailed for an unknown scope or a blank name.
    """
    if is_blank(name):
        raise ValidationFailed("The key needs a name.", {"name": ["Must not be blank."]})
    known = [scope.value for scope in Scope]
    chosen = known if scopes is None else list(dict.fromkeys(scopes))
    unknown = [scope for scope in chosen if scope not in known]
    if unknown or not chosen:
        raise ValidationFailed("Unknown or empty scopes.", {"scopes": [f"Choose from {', '.join(known)}."]})
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        workspace_id=user.workspace_id,
        user_id=user.id,
        name=name.strip(),
        prefix=secret[:DISPLAY_LENGTH],
        key_hash=hash_key(secret),
        scopes=[scope for scope in known if scope in chosen],
        created_at=now,
    )
    db.session.add(key)
    commit()
    return key, secret


def list_api_keys(user: User) -> list[ApiKey]:
    """The keys of the user's workspace owned by this user, newest first."""
    return list(
        db.session.scalars(
            select(ApiKey).where(ApiKey.user_id == user.id).order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
        )
    )


def revoke_api_key(user: User, key_id: str, now: datetime) -> ApiKey:
    """Revoke one of the user's keys (idempotent); raises ApiKeyNotFound otherwise."""
    if not is_valid_id(key_id, "key"):
        raise ApiKeyNotFound()
    key = db.session.scalars(select(ApiKey).where(ApiKey.id == key_id, ApiKey.user_id == user.id)).first()
    if key is None:
        raise ApiKeyNotFound()
    if key.revoked_at is None:
        key.revoked_at = now
        commit()
    return key


def authenticate_api_key(secret: str, now: datetime) -> ApiKey | None:
    """The live key matching this secret, or None (unknown, malformed or revoked)."""
    if not isinstance(secret, str) or not _SECRET_SHAPE.match(secret):
        return None
    digest = hash_key(secret)
    candidates = db.session.scalars(select(ApiKey).where(ApiKey.prefix == secret[:DISPLAY_LENGTH]))
    for key in candidates:
        if hmac.compare_digest(key.key_hash, digest) and key.revoked_at is None:
            if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
                db.session.execute(
                    update(ApiKey)
                    .where(ApiKey.id == key.id)
                    .values(last_used_at=now)
                    .execution_options(synchronize_session=False)
                )
                db.session.commit()
                key = db.session.get(ApiKey, key.id)
            return key
    return None
