from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from audittrail.domain import Role
from audittrail.domain import UserKind
from audittrail.extensions import db
from audittrail.models.types import UTCDateTime
from audittrail.models.types import new_id
from audittrail.models.workspace import Workspace


class User(db.Model):
    """A member of exactly one workspace: a person, or an agent acting for its owner."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("usr"))
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), index=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(256), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # policy.md §1: every user has a role in its workspace and a kind; an agent has a human owner.
    role: Mapped[str] = mapped_column(String(16), default=Role.OPERATOR.value, server_default=Role.OPERATOR.value)
    kind: Mapped[str] = mapped_column(String(16), default=UserKind.HUMAN.value, server_default=UserKind.HUMAN.value)
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)

    workspace: Mapped[Workspace] = relationship(lazy="select")
    owner: Mapped[User | None] = relationship(remote_side=[id], lazy="selectin")

    @property
    def person_id(self) -> str:
        """The human this user stands for: an agent's owner, else the user itself."""
        return self.owner_id or self.id
