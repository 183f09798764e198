"""members, roles and N-of-M approval policy (policy.md)

Revision ID: 0004_members_policy
Revises: 0003_revoked_token_jti

Every user that exists before this change becomes `admin`, so nobody loses what they could do;
users created later default to `operator`. Existing actions keep the default rule of their tier,
and each approval already given becomes one recorded approval.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_members_policy"
down_revision = "0003_revoked_token_jti"
branch_labels = None
depends_on = None

_ALL_DECIDERS = ["operator", "approver", "admin"]
DEFAULT_RULES = {
    1: {"approvals_required": 1, "approver_roles": _ALL_DECIDERS, "allow_self_approval": True},
    2: {"approvals_required": 1, "approver_roles": _ALL_DECIDERS, "allow_self_approval": True},
    3: {"approvals_required": 1, "approver_roles": ["approver", "admin"], "allow_self_approval": False},
}

# As in 0001: the database itself refuses UPDATE and DELETE on audit_events. SQLite loses its
# triggers when the table is rebuilt below, so they are made again.
_SQLITE_GUARDS = [
    """CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
       BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END""",
    """CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
       BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END""",
]


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade():
    op.add_column("users", sa.Column("role", sa.String(length=16), server_default="operator", nullable=False))
    op.add_column("users", sa.Column("kind", sa.String(length=16), server_default="human", nullable=False))
    if _sqlite():
        # SQLite adds a column with its reference in place; a rebuild of `users` would fail,
        # since other tables reference it.
        op.execute("ALTER TABLE users ADD COLUMN owner_id VARCHAR(32) REFERENCES users (id)")
    else:
        op.add_column("users", sa.Column("owner_id", sa.String(length=32), nullable=True))
        op.create_foreign_key("users_owner_id_fkey", "users", "users", ["owner_id"], ["id"])
    op.execute("UPDATE users SET role = 'admin'")

    op.add_column("workspaces", sa.Column("policy", sa.JSON(), nullable=True))
    op.add_column("workspaces", sa.Column("policy_updated_at", sa.DateTime(), nullable=True))
    op.add_column("workspaces", sa.Column("policy_updated_by_id", sa.String(length=32), nullable=True))

    op.add_column("deployment_actions", sa.Column("policy", sa.JSON(), nullable=True))
    op.add_column(
        "deployment_actions", sa.Column("approvals_received", sa.Integer(), server_default="0", nullable=False)
    )
    for tier, rule in DEFAULT_RULES.items():
        op.execute(
            sa.text("UPDATE deployment_actions SET policy = :rule WHERE tier = :tier").bindparams(
                sa.bindparam("rule", value=rule, type_=sa.JSON()), tier=tier
            )
        )

    op.create_table(
        "action_approvals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("action_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("person_id", sa.String(length=32), nullable=False),
        sa.Column("api_key_id", sa.String(length=32), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["action_id"], ["deployment_actions.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("action_id", "person_id", name="uq_action_approvals_action_person"),
    )
    op.create_index("ix_action_approvals_action_id", "action_approvals", ["action_id"], unique=False)
    op.execute(
        "INSERT INTO action_approvals (workspace_id, action_id, user_id, person_id, api_key_id, at, note) "
        "SELECT workspace_id, id, approved_by_id, approved_by_id, NULL, approved_at, approver_note "
        "FROM deployment_actions WHERE approved_by_id IS NOT NULL"
    )
    op.execute("UPDATE deployment_actions SET approvals_received = 1 WHERE approved_by_id IS NOT NULL")

    # Workspace events (roles, policy, API keys) have no action, and longer type names.
    if _sqlite():
        with op.batch_alter_table("audit_events", recreate="always") as batch_op:
            batch_op.alter_column("action_id", existing_type=sa.String(length=32), nullable=True)
            batch_op.alter_column("type", existing_type=sa.String(length=16), type_=sa.String(length=32))
        for statement in _SQLITE_GUARDS:
            op.execute(statement)
    else:
        op.alter_column("audit_events", "action_id", existing_type=sa.String(length=32), nullable=True)
        op.alter_column("audit_events", "type", existing_type=sa.String(length=16), type_=sa.String(length=32))


def downgrade():
    # Workspace events cannot be put back into a table whose action_id is NOT NULL: this
    # downgrade is for an instance that has recorded none (see the README).
    if _sqlite():
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_delete")
        with op.batch_alter_table("audit_events", recreate="always") as batch_op:
            batch_op.alter_column("type", existing_type=sa.String(length=32), type_=sa.String(length=16))
            batch_op.alter_column("action_id", existing_type=sa.String(length=32), nullable=False)
        for statement in _SQLITE_GUARDS:
            op.execute(statement)
    else:
        op.alter_column("audit_events", "type", existing_type=sa.String(length=32), type_=sa.String(length=16))
        op.alter_column("audit_events", "action_id", existing_type=sa.String(length=32), nullable=False)
    op.drop_index("ix_action_approvals_action_id", table_name="action_approvals")
    op.drop_table("action_approvals")
    with op.batch_alter_table("deployment_actions") as batch_op:
        batch_op.drop_column("approvals_received")
        batch_op.drop_column("policy")
    with op.batch_alter_table("workspaces") as batch_op:
        batch_op.drop_column("policy_updated_by_id")
        batch_op.drop_column("policy_updated_at")
        batch_op.drop_column("policy")
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("owner_id")
        batch_op.drop_column("kind")
        batch_op.drop_column("role")
