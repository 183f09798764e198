"""Fixtures: an app per test on a fresh database (SQLite always, PostgreSQL when TEST_DATABASE_URL is set)."""

from __future__ import annotations

import os
import secrets
import shutil
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from flask_migrate import upgrade
from sqlalchemy import create_engine
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from audittrail import create_app
from audittrail.extensions import db

POSTGRES_URL = os.environ.get("TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])
TABLES = [
    "webhook_deliveries",
    "webhooks",
    "audit_checkpoints",
    "run_refs",
    "runs",
    "audit_events",
    "idempotency_records",
    "revoked_tokens",
    "api_keys",
    "deployment_actions",
    "users",
    "workspaces",
]

TEST_CONFIG = {
    "TESTING": True,
    "SECRET_KEY": "test-secret-key-0123456789abcdef0123456789",
    "JWT_SECRET_KEY": "test-jwt-secret-key-0123456789abcdef0123456789",
    "AUDITTRAIL_TRANSITION_RATE_LIMIT": "100000/minute",
    "AUDITTRAIL_LOGIN_RATE_LIMIT": "100000/minute",
    "AUDITTRAIL_LOGIN_ACCOUNT_RATE_LIMIT": "100000/minute",
    "AUDITTRAIL_API_KEY_RATE_LIMIT": "100000/minute",
    "AUDITTRAIL_RUNS_WRITE_RATE_LIMIT": "100000/minute",
    "RATELIMIT_STORAGE_URI": "memory://",
    "DEMO_LOGIN_ENABLED": True,
    # live.md: streams end and poll quickly in tests, so no test sleeps long.
    "AUDITTRAIL_STREAM_MAX_SECONDS": 1.0,
    "AUDITTRAIL_STREAM_KEEPALIVE_SECONDS": 0.3,
    "AUDITTRAIL_STREAM_POLL_SECONDS": 0.05,
    "AUDITTRAIL_STREAM_EXPIRY_SECONDS": 0.2,
}


class FakeClock:
    """A clock the tests move by hand: no sleeping for TTLs."""

    def __init__(self, start: datetime | None = None):
        self.now = start or datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> datetime:
        self.now = self.now + timedelta(**delta)
        return self.now


def _migrate(url: str) -> None:
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade()
        db.engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("template") / "template.db"
    _migrate(f"sqlite:///{path}")
    return str(path)


@pytest.fixture(scope="session")
def postgres_migrated() -> str:
    """A database of our own on the TEST_DATABASE_URL server, so concurrent runs never collide."""
    server = make_url(POSTGRES_URL)
    name = f"test_{secrets.token_hex(6)}"
    # NullPool: a connection per use, since the production suite restarts the server mid-run.
    admin = create_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = server.set(database=name).render_as_string(hide_password=False)
    _migrate(url)
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


_reset_engines: dict = {}


def reset_postgres(url: str) -> None:
    """Empty every table; the append-only triggers are bypassed for this session only."""
    engine = _reset_engines.get(url)
    if engine is None:
        engine = _reset_engines[url] = create_engine(url, poolclass=NullPool)
    with engine.begin() as connection:
        connection.execute(text("SET LOCAL session_replication_role = replica"))
        connection.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path) -> str:
    """A fresh, migrated database for one test."""
    if request.param == "sqlite":
        path = tmp_path / "test.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_migrated")
    reset_postgres(url)
    return url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def app_config(database_url, clock) -> dict:
    return {**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url, "AUDITTRAIL_CLOCK": clock}


def close_app(app) -> None:
    """End an app's use of its database; call it inside the app's context.

    The live hub's threads first (a poll in flight would hand its connection back to the disposed
    pool, where nothing closes it), then the session, then every pooled connection.
    """
    app.extensions["audittrail.live"].stop()
    db.session.remove()
    db.engine.dispose()


@pytest.fixture
def app(app_config):
    app = create_app(app_config)
    with app.app_context():
        yield app
        close_app(app)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()
