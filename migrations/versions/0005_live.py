"""the live control loop: a version on every action (live.md §1)

Revision ID: 0005_live
Revises: 0004_members_policy

`version` counts the action's audit events, so existing rows get exactly that count.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_live"
down_revision = "0004_members_policy"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("deployment_actions", sa.Column("version", sa.Integer(), server_default="0", nullable=False))
    op.execute(
        "UPDATE deployment_actions SET version = "
        "(SELECT count(*) FROM audit_events WHERE audit_events.action_id = deployment_actions.id)"
    )


def downgrade():
    with op.batch_alter_table("deployment_actions") as batch_op:
        batch_op.drop_column("version")
