"""runs and their graphs, the refs they answer to, and actions by target (runs.md)

Revision ID: 0007_runs
Revises: 0006_evidence
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_runs"
down_revision = "0006_evidence"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "runs",
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("id", sa.String(length=68), nullable=False),
        sa.Column("agent", sa.String(length=100), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("nodes", sa.JSON(), nullable=False),
        sa.Column("edges", sa.JSON(), nullable=False),
        sa.Column("node_count", sa.Integer(), nullable=False),
        sa.Column("edge_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"]),
        sa.PrimaryKeyConstraint("workspace_id", "id"),
    )
    op.create_index("ix_runs_workspace_order", "runs", ["workspace_id", "started_at", "id"])
    op.create_index("ix_runs_workspace_status_order", "runs", ["workspace_id", "status", "started_at", "id"])
    op.create_index("ix_runs_workspace_agent_order", "runs", ["workspace_id", "agent", "started_at", "id"])
    op.create_table(
        "run_refs",
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("run_id", sa.String(length=68), nullable=False),
        sa.Column("ref", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id", "run_id"], ["runs.workspace_id", "runs.id"]),
        sa.PrimaryKeyConstraint("workspace_id", "run_id", "ref"),
    )
    op.create_index("ix_run_refs_workspace_ref", "run_refs", ["workspace_id", "ref"])
    op.create_index("ix_actions_workspace_target", "deployment_actions", ["workspace_id", "target_ref"])


def downgrade():
    op.drop_index("ix_actions_workspace_target", table_name="deployment_actions")
    op.drop_index("ix_run_refs_workspace_ref", table_name="run_refs")
    op.drop_table("run_refs")
    op.drop_index("ix_runs_workspace_agent_order", table_name="runs")
    op.drop_index("ix_runs_workspace_status_order", table_name="runs")
    op.drop_index("ix_runs_workspace_order", table_name="runs")
    op.drop_table("runs")
