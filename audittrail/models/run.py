from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON
from sqlalchemy import ForeignKey
from sqlalchemy import ForeignKeyConstraint
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from audittrail.extensions import db
from audittrail.models.types import UTCDateTime


class Run(db.Model):
    """One execution of an agent, as its platform reports it, with its graph (runs.md §1).

    The id is the client's, unique in the workspace. Nodes and edges are kept as the JSON lists
    the API serves: a run is read and written whole, and a 2 000-node run is one row.
    """

    __tablename__ = "runs"
    __table_args__ = (
        # The list order (started_at desc, id desc) and its keyset cursor, unfiltered and filtered.
        Index("ix_runs_workspace_order", "workspace_id", "started_at", "id"),
        Index("ix_runs_workspace_status_order", "workspace_id", "status", "started_at", "id"),
        Index("ix_runs_workspace_agent_order", "workspace_id", "agent", "started_at", "id"),
    )

    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), primary_key=True)
    id: Mapped[str] = mapped_column(String(68), primary_key=True)
    agent: Mapped[str] = mapped_column(String(100))
    title: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    nodes: Mapped[list] = mapped_column(JSON)
    edges: Mapped[list] = mapped_column(JSON)
    node_count: Mapped[int] = mapped_column(Integer)
    edge_count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Bumped by every write: a PATCH is a compare-and-set on it, so two concurrent PATCHes never
    # both apply to the same stored graph (the loser reads again and reapplies).
    version: Mapped[int] = mapped_column(Integer, default=1)


class RunRef(db.Model):
    """A ref a run answers to: its own id and each node's `ref`, so an action's target finds its run."""

    __tablename__ = "run_refs"
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id", "run_id"], ["runs.workspace_id", "runs.id"]),
        Index("ix_run_refs_workspace_ref", "workspace_id", "ref"),
    )

    workspace_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(68), primary_key=True)
    ref: Mapped[str] = mapped_column(String(200), primary_key=True)
