from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from audittrail.extensions import db
from audittrail.models.types import UTCDateTime
from audittrail.models.types import new_id
from audittrail.models.user import User


class DeploymentAction(db.Model):
    """One proposed operational change and where it stands in the state machine."""

    __tablename__ = "deployment_actions"
    __table_args__ = (
        # The list order, and its keyset cursor.
        Index("ix_actions_workspace_order", "workspace_id", "proposed_at", "id"),
        # Status tabs, status-filtered pages and the summary's per-status counts.
        Index("ix_actions_workspace_status_order", "workspace_id", "status", "proposed_at", "id"),
        # The expiry sweep: proposed rows by deadline.
        Index("ix_actions_workspace_status_expires", "workspace_id", "status", "expires_at"),
        # The summary's "today" counts.
        Index("ix_actions_workspace_status_executed", "workspace_id", "status", "executed_at"),
        Index("ix_actions_workspace_status_rejected", "workspace_id", "status", "rejected_at"),
        # A run's actions: those whose target is the run or one of its node refs (runs.md §1).
        Index("ix_actions_workspace_target", "workspace_id", "target_ref"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("act"))
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    tier: Mapped[int] = mapped_column(Integer)
    action_type: Mapped[str] = mapped_column(String(32))
    target_ref: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    mode: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict] = mapped_column(JSON)
    outcome: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    approver_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    rejection_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    ttl_seconds: Mapped[int] = mapped_column(Integer)
    proposed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    rejected_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    executed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    expired_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    proposed_by_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    approved_by_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    rejected_by_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    executed_by_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    # The rule of its tier when it was proposed (TierRule.as_dict()): later policy changes never reach it.
    # Nullable only so SQLite could add it without rebuilding a table others reference; always set.
    policy: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    # Moved by the compare-and-set that records each approval; `approved` once it reaches the rule's N.
    approvals_received: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # How many audit events the action has (live.md §1): moved by append_event, in the same
    # transaction as each event, and checked by the transitions' compare-and-set on If-Match.
    version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    proposed_by: Mapped[User] = relationship(foreign_keys=[proposed_by_id], lazy="selectin")
    approved_by: Mapped[User | None] = relationship(foreign_keys=[approved_by_id], lazy="selectin")
    rejected_by: Mapped[User | None] = relationship(foreign_keys=[rejected_by_id], lazy="selectin")
    executed_by: Mapped[User | None] = relationship(foreign_keys=[executed_by_id], lazy="selectin")
