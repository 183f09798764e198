"""API keys: `sk-at-` secrets, stored as SHA-256 plus a display prefix."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from functools import lru_cache

from sqlalchemy import bindparam
from sqlalchemy import select
from sqlalchemy import update

from audittrail.domain import DEFAULT_KEY_SCOPES
from audittrail.domain import EventType
from audittrail.domain import Scope
from audittrail.domain.text import is_blank
from audittrail.extensions import db
from audittrail.models import ApiKey
from audittrail.models import User
from audittrail.models.types import is_valid_id
from audittrail.services.actors import Actor
from audittrail.services.actors import user_actor
from audittrail.services.audit import append_event
from audittrail.services.errors import ApiKeyNotFound
from audittrail.services.errors import ValidationFailed
from audittrail.services.loading import read
from audittrail.services.unit_of_work import unit_of_work

KEY_PREFIX = "sk-at-"
RANDOM_LENGTH = 43  # token_urlsafe(32) gives 43 URL-safe characters (256 bits)
DISPLAY_LENGTH = len(KEY_PREFIX) + 8
# last_used_at is a hint, not an audit record: write it at most once a minute per key,
# so reads authenticated by a key do not each become a write.
_SECRET_SHAPE = re.compile(r"^sk-at-[A-Za-z0-9_-]{32,200}$")
LAST_USED_RESOLUTION = timedelta(seconds=60)


def hash_key(secret: str) -> str:
    """The stored form of a secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def looks_like_api_key(value: str | None) -> bool:
    """Whether a credential is meant as an API key (so it is never tried as a JWT)."""
    return bool(value) and value.startswith(KEY_PREFIX)


def create_api_key(
    user: User, name: str, now: datetime, scopes: list[str] | None = None, actor: Actor | None = None
) -> tuple[ApiKey, str]:
    """Create a key for `user`, with an `api_key_created` event; returns the row and the secret.

    The secret is never stored, nor written to the event. `actor` is who asked (the user by
    default; the system from the command line). What the key may do is its scopes within its
    owner's role, read at each request. Without `scopes`, the four `actions:*` scopes: `runs:write`
    is only ever given by name (runs.md §1).
    Raises ValidationFailed for an unknown scope or a blank name.
    """
    if is_blank(name):
        raise ValidationFailed("The key needs a name.", {"name": ["Must not be blank."]})
    known = [scope.value for scope in Scope]
    # audit:read is opt-in (evidence.md §4): only the four actions:* scopes by default.
    chosen = [scope.value for scope in DEFAULT_KEY_SCOPES] if scopes is None else list(dict.fromkeys(scopes))
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
    with unit_of_work():
        db.session.add(key)
        db.session.flush()
        _append_key_event(key, EventType.API_KEY_CREATED, actor or user_actor(user), now)
    return key, secret


def _append_key_event(key: ApiKey, type: EventType, actor: Actor, now: datetime) -> None:
    append_event(
        workspace_id=key.workspace_id,
        action_id=None,
        type=type,
        actor=actor,
        at=now,
        data={"api_key_id": key.id, "name": key.name, "scopes": list(key.scopes)},
    )


def list_api_keys(user: User) -> list[ApiKey]:
    """The keys of the user's workspace owned by this user, newest first."""
    return list(
        db.session.scalars(
            select(ApiKey).where(ApiKey.user_id == user.id).order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
        )
    )


def revoke_api_key(user: User, key_id: str, now: datetime, actor: Actor | None = None) -> ApiKey:
    """Revoke one of the user's keys, with an `api_key_revoked` event the first time (idempotent).

    Raises ApiKeyNotFound.
    """
    if not is_valid_id(key_id, "key"):
        raise ApiKeyNotFound()
    with unit_of_work():
        won = db.session.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id, ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        key = db.session.scalars(
            select(ApiKey)
            .where(ApiKey.id == key_id, ApiKey.user_id == user.id)
            .execution_options(populate_existing=True)
        ).first()
        if key is None:
            raise ApiKeyNotFound()
        if won == 1:
            _append_key_event(key, EventType.API_KEY_REVOKED, actor or user_actor(user), now)
    return key


@dataclass(frozen=True)
class KeyOwner:
    """The user an API key acts as, as authentication reads it (not an ORM row)."""

    id: str
    workspace_id: str
    name: str
    role: str
    owner_id: str | None

    @property
    def person_id(self) -> str:
        """The human this user stands for: an agent's owner, else the user itself."""
        return self.owner_id or self.id


@dataclass(frozen=True)
class KeyCredentials:
    """A live key and its owner, read in one query: what a request authenticated by it needs."""

    id: str
    workspace_id: str
    user_id: str
    scopes: list[str]
    last_used_at: datetime | None
    user: KeyOwner
    revoked_at: None = None


def authenticate_api_key(secret: str) -> KeyCredentials | None:
    """The live key matching this secret, or None (unknown, malformed or revoked). Reads only.

    One Core select of the key's and its owner's columns by the indexed display prefix: every
    request made with a key runs it, and loading two ORM rows cost more than the query.
    """
    if not isinstance(secret, str) or not _SECRET_SHAPE.match(secret):
        return None
    digest = hash_key(secret)
    for row in read(_key_statement(), {"prefix": secret[:DISPLAY_LENGTH]}):
        if hmac.compare_digest(row.key_hash, digest) and row.revoked_at is None:
            owner = KeyOwner(row.user_id, row.user_workspace_id, row.user_name, row.user_role, row.user_owner_id)
            return KeyCredentials(row.id, row.workspace_id, row.user_id, list(row.scopes), row.last_used_at, owner)
    return None


@lru_cache(maxsize=1)
def _key_statement():
    return (
        select(
            ApiKey.id,
            ApiKey.workspace_id,
            ApiKey.user_id,
            ApiKey.key_hash,
            ApiKey.scopes,
            ApiKey.last_used_at,
            ApiKey.revoked_at,
            User.workspace_id.label("user_workspace_id"),
            User.name.label("user_name"),
            User.role.label("user_role"),
            User.owner_id.label("user_owner_id"),
        )
        .join(User, User.id == ApiKey.user_id)
        .where(ApiKey.prefix == bindparam("prefix"))
    )


def needs_use_recorded(key: KeyCredentials | ApiKey, now: datetime) -> bool:
    """Whether `last_used_at` is older than its resolution (a hint, written at most once a minute)."""
    return key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION


def record_use(key_id: str, now: datetime) -> None:
    """Move a key's `last_used_at` to `now`, in a unit of work of its own."""
    with unit_of_work():
        db.session.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id)
            .values(last_used_at=now)
            .execution_options(synchronize_session=False)
        )
