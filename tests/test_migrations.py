"""Migrations: one head, and `flask db upgrade` on an empty database builds exactly the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import upgrade

from audittrail.extensions import db


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
