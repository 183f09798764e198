from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from audittrail.extensions import db
from audittrail.models.types import UTCDateTime


class AuditEvent(db.Model):
    """One append-only, hash-chained event; the database refuses UPDATE and DELETE on this table."""

    __tablename__ = "audit_events"
    __table_args__ = (
        UniqueConstraint("workspace_id", "seq", name="uq_audit_events_workspace_seq"),
        Index("ix_audit_events_action", "action_id", "seq"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    seq: Mapped[int] = mapped_column(Integer)
    # Null for the workspace's own events (roles, policy, API keys).
    action_id: Mapped[str | None] = mapped_column(ForeignKey("deployment_actions.id"), nullable=True)
    type: Mapped[str] = mapped_column(String(32))
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_user_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    actor_api_key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    actor_name: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    request_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    # Canonical JSON text (sorted keys), so the hash can be recomputed byte for byte.
    data: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
