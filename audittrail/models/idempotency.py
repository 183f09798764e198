from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from audittrail.extensions import db
from audittrail.models.types import UTCDateTime


class IdempotencyRecord(db.Model):
    """The first answer to a propose call carrying an Idempotency-Key, per client."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("client", "key", name="uq_idempotency_client_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    action_id: Mapped[str] = mapped_column(String(32))
    response_body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
