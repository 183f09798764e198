"""Migrations: one head, and `flask db upgrade` on an empty database builds exactly the models."""

from __future__ import annotations

import json
import secrets

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import upgrade
from sqlalchemy import create_engine
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from audittrail import create_app
from audittrail.extensions import db
from tests.conftest import BACKENDS
from tests.conftest import POSTGRES_URL
from tests.conftest import TEST_CONFIG


def test_there_is_a_single_alembic_head(app):
    config = app.extensions["migrate"].migrate.get_config(app.extensions["migrate"].directory)
    assert len(ScriptDirectory.from_config(config).get_heads()) == 1


def test_migrations_match_the_models(app):
    # The fixture's database was built by `upgrade()`; compare it with the models.
    with db.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), db.metadata)
    assert diff == []


def test_upgrade_is_idempotent_on_an_up_to_date_database(app):
    upgrade()
    with db.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), db.metadata) == []


def test_sqlite_is_configured_for_a_web_server(app):
    if db.engine.dialect.name != "sqlite":
        assert db.engine.pool._pre_ping
        return
    with db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


@pytest.fixture
def empty_database_url(request, tmp_path):
    """An empty database (no tables) on each backend."""
    if "postgresql" not in request.node.callspec.params.get("backend", "sqlite"):
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    server = make_url(POSTGRES_URL)
    name = f"test_{secrets.token_hex(6)}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield server.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_members_migration_makes_existing_users_admins_and_keeps_their_approvals(empty_database_url, backend):
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": empty_database_url})
    with app.app_context():
        upgrade(revision="0003_revoked_token_jti")
        at = "2026-11-30 12:00:00"
        rows = [
            "INSERT INTO workspaces (id, name, created_at) VALUES ('ws_1', 'Ops', :at)",
            "INSERT INTO users (id, workspace_id, email, name, created_at) VALUES "
            "('usr_a', 'ws_1', 'a@x.test', 'Ann', :at), ('usr_b', 'ws_1', 'b@x.test', 'Ben', :at)",
            "INSERT INTO deployment_actions (id, workspace_id, tier, action_type, target_ref, reason, mode, status, "
            "payload, ttl_seconds, proposed_at, expires_at, approved_at, proposed_by_id, approved_by_id, "
            "approver_note) "
            "VALUES ('act_1', 'ws_1', 3, 'kill_run', 'run_1', 'r', 'supervised', 'approved', '{}', 60, :at, :at, :at, "
            "'usr_a', 'usr_b', 'ok'), ('act_2', 'ws_1', 1, 'alert', 'p', 'r', 'supervised', 'proposed', '{}', 60, "
            ":at, :at, NULL, 'usr_a', NULL, NULL)",
        ]
        with db.engine.begin() as connection:
            for statement in rows:
                connection.execute(text(statement), {"at": at})
        upgrade()
        with db.engine.connect() as connection:
            roles = connection.execute(text("SELECT role, kind, owner_id FROM users ORDER BY id")).all()
            actions = connection.execute(
                text("SELECT id, policy, approvals_received FROM deployment_actions ORDER BY id")
            ).all()
            approvals = connection.execute(
                text("SELECT action_id, user_id, person_id, note FROM action_approvals")
            ).all()
            diff = compare_metadata(MigrationContext.configure(connection), db.metadata)
        db.engine.dispose()
    assert [tuple(row) for row in roles] == [("admin", "human", None), ("admin", "human", None)]
    policies = {row.id: (row.policy if isinstance(row.policy, dict) else json.loads(row.policy)) for row in actions}
    assert policies["act_1"] == {
        "approvals_required": 1,
        "approver_roles": ["approver", "admin"],
        "allow_self_approval": False,
    }
    assert policies["act_2"]["allow_self_approval"] is True
    assert {row.id: row.approvals_received for row in actions} == {"act_1": 1, "act_2": 0}
    assert [tuple(row) for row in approvals] == [("act_1", "usr_b", "usr_b", "ok")]
    assert diff == []


def test_a_user_created_after_the_migration_defaults_to_operator(app):
    with db.engine.begin() as connection:
        connection.execute(text("INSERT INTO workspaces (id, name, created_at) VALUES ('ws_2', 'W', '2026-11-30')"))
        connection.execute(
            text(
                "INSERT INTO users (id, workspace_id, email, name, created_at) "
                "VALUES ('usr_c', 'ws_2', 'c@x', 'C', '2026-11-30')"
            )
        )
        assert connection.execute(text("SELECT role, kind FROM users WHERE id = 'usr_c'")).one() == (
            "operator",
            "human",
        )
