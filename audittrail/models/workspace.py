from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from audittrail.extensions import db
from audittrail.models.types import UTCDateTime
from audittrail.models.types import new_id
from audittrail_evidence.canonical import GENESIS_HASH  # noqa: F401 — the chain's first prev_hash, shared with the verifier

STATUS_COUNTER_COLUMNS = {
    "proposed": "actions_proposed",
    "approved": "actions_approved",
    "rejected": "actions_rejected",
    "executed": "actions_executed",
    "expired": "actions_expired",
}


class Workspace(db.Model):
    """The tenant. Also holds the head of its audit chain, so appends serialize on this row."""

    __tablename__ = "workspaces"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("ws"))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    audit_seq: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    audit_head_hash: Mapped[str] = mapped_column(String(64), default=GENESIS_HASH, server_default=GENESIS_HASH)
    # Actions per status, moved in the same UPDATE that appends each event (so in the same
    # transaction as the change): the summary reads them instead of counting every row.
    actions_proposed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    actions_approved: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    actions_rejected: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    actions_executed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    actions_expired: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The approval policy (policy.md §2) as {"1": rule, "2": rule, "3": rule}; null means the defaults.
    policy: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    policy_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    policy_updated_by_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
