"""revoked_tokens.jti holds any jti the app accepts (up to 255 characters)

Revision ID: 0003_revoked_token_jti
Revises: 0002_status_counters
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_revoked_token_jti"
down_revision = "0002_status_counters"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("revoked_tokens", schema=None) as batch_op:
        batch_op.alter_column("jti", existing_type=sa.String(length=64), type_=sa.String(length=255))


def downgrade():
    with op.batch_alter_table("revoked_tokens", schema=None) as batch_op:
        batch_op.alter_column("jti", existing_type=sa.String(length=255), type_=sa.String(length=64))
