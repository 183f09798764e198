"""Who is calling: a user, an API key acting as its user, or the system itself."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace

from audittrail.domain import Caller
from audittrail.domain import Role
from audittrail.domain import Scope

ALL_SCOPES: frozenset[str] = frozenset(scope.value for scope in Scope)


@dataclass(frozen=True)
class Actor:
    """The caller of a service function, with the request id its audit events record.

    `role` and `person_id` are the user's as read for this call (an API key acts with its
    owner's role); `person_id` is an agent's owner, else the user.
    """

    kind: str  # "user", "api_key" or "system"
    name: str
    workspace_id: str | None = None
    user_id: str | None = None
    api_key_id: str | None = None
    scopes: frozenset[str] = field(default=ALL_SCOPES)
    request_id: str | None = None
    role: str | None = None
    person_id: str | None = None

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def with_request_id(self, request_id: str | None) -> Actor:
        return replace(self, request_id=request_id)

    @property
    def caller(self) -> Caller:
        """This actor as the domain's decision function sees it."""
        return Caller(
            user_id=self.user_id,
            person_id=self.person_id,
            role=Role(self.role) if self.role else None,
            scopes=self.scopes,
        )


def system_actor(workspace_id: str | None = None, request_id: str | None = None) -> Actor:
    """The actor of expiries, autonomous executions and command-line changes."""
    return Actor(kind="system", name="system", workspace_id=workspace_id, request_id=request_id)


def user_actor(user, request_id: str | None = None) -> Actor:
    """A user acting with a JWT (all scopes; what it may do is its role's)."""
    return Actor(
        kind="user",
        name=user.name,
        workspace_id=user.workspace_id,
        user_id=user.id,
        request_id=request_id,
        role=user.role,
        person_id=user.person_id,
    )


def api_key_actor(api_key, request_id: str | None = None) -> Actor:
    """An API key acting as the user who owns it, limited to the key's scopes and the owner's role."""
    return Actor(
        kind="api_key",
        name=api_key.user.name,
        workspace_id=api_key.workspace_id,
        user_id=api_key.user_id,
        api_key_id=api_key.id,
        scopes=frozenset(api_key.scopes),
        request_id=request_id,
        role=api_key.user.role,
        person_id=api_key.user.person_id,
    )
