from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from audittrail.extensions import db
from audittrail.models.types import UTCDateTime
from audittrail.models.user import User


class ActionApproval(db.Model):
    """One person's approval of one action (N-of-M, policy.md §3).

    `person_id` is the human behind the approver (an agent's owner, else the approver), and it is
    unique per action: an agent and its owner count once, and nobody is ever counted twice.
    """

    __tablename__ = "action_approvals"
    __table_args__ = (UniqueConstraint("action_id", "person_id", name="uq_action_approvals_action_person"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    action_id: Mapped[str] = mapped_column(ForeignKey("deployment_actions.id"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    person_id: Mapped[str] = mapped_column(String(32))
    api_key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    note: Mapped[str | None] = mapped_column(Text, nullable=True)

    user: Mapped[User] = relationship(lazy="joined")
