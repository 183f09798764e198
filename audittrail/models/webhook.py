from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON
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
from audittrail.models.types import new_id


class Webhook(db.Model):
    """A receiver of the workspace's events (webhooks.md), with its cursor on the audit chain.

    The audit log is the outbox: `cursor_seq` is the last seq of the workspace's chain this webhook
    has been given deliveries for. It starts at the seq of its own `webhook_created` event.
    """

    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("whk"))
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str | None] = mapped_column(String(500), nullable=True)
    event_types: Mapped[list[str]] = mapped_column(JSON)
    format: Mapped[str] = mapped_column(String(16))
    # Stored as given: the worker signs with it. Never shown after the creation answer.
    secret: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # Deleting keeps the row (deliveries refer to it; the app role deletes nothing): it is hidden.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    cursor_seq: Mapped[int] = mapped_column(Integer, default=0)
    # Deliveries in a row that ended `failed`; a delivered one resets it (§3: five disable).
    failures_in_a_row: Mapped[int] = mapped_column(Integer, default=0)


class WebhookDelivery(db.Model):
    """One message to one webhook: an event of the chain (by seq), or a ping (no event).

    Its id is the `webhook-id` header, the same on every attempt. A worker claims a due row by
    setting `lease_token` and `lease_until` with a compare-and-set; a worker killed mid-attempt
    leaves a lease that runs out, and the row is claimed again.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("webhook_id", "event_seq", name="uq_webhook_deliveries_event"),
        Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
        Index("ix_webhook_deliveries_webhook_created", "webhook_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("msg"))
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id"))
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    # Null for a ping. Two pings may coexist: NULLs are distinct in a unique constraint.
    event_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
    type: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_token: Mapped[str | None] = mapped_column(String(32), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
