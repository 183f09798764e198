"""per-status action counters on workspaces, for the summary

Revision ID: 0002_status_counters
Revises: 0001_initial
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_status_counters"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

STATUSES = ["proposed", "approved", "rejected", "executed", "expired"]


def upgrade():
    with op.batch_alter_table("workspaces", schema=None) as batch_op:
        for status in STATUSES:
            batch_op.add_column(sa.Column(f"actions_{status}", sa.Integer(), server_default="0", nullable=False))
    # Existing rows: count them once; from now on every change moves the counters itself.
    for status in STATUSES:
        op.execute(
            f"UPDATE workspaces SET actions_{status} = (SELECT count(*) FROM deployment_actions "
            f"WHERE deployment_actions.workspace_id = workspaces.id AND deployment_actions.status = '{status}')"
        )


def downgrade():
    with op.batch_alter_table("workspaces", schema=None) as batch_op:
        for status in STATUSES:
            batch_op.drop_column(f"actions_{status}")
