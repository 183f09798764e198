"""AuditTrail Deployment Actions."""

from __future__ import annotations

import logging
import re
import uuid
from datetime import timedelta

from flask import Flask
from flask import g
from flask import request
from sqlalchemy import event
from sqlalchemy.engine import Engine

from audittrail.config import load_config
from audittrail.extensions import db
from audittrail.extensions import init_session_release
from audittrail.extensions import jwt
from audittrail.extensions import migrate

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def create_app(config: dict | None = None) -> Flask:
    """Build the app: settings from the environment, then `config` on top (tests)."""
    app = Flask(__name__, instance_relative_config=True, static_folder="../static", template_folder="../templates")
    app.config.update(load_config(app.instance_path))
    if config:
        app.config.update(config)
    # Fixed settings win over Flask's own defaults (MAX_CONTENT_LENGTH is None there);
    # only the caller's `config` may override them.
    fixed = _fixed_settings(app.config)
    app.config.update({key: value for key, value in fixed.items() if key not in (config or {})})

    app.json.sort_keys = False
    db.init_app(app)
    init_session_release(app)
    migrate.init_app(app, db, directory=str(_project_path(app, "migrations")))
    jwt.init_app(app)

    from audittrail import signing

    signing.init_app(app)

    from audittrail.ratelimit import limiter

    limiter.init_app(app)

    from audittrail import live

    live.init_app(app)

    from audittrail.errors import register_error_handlers

    register_error_handlers(app)
    _register_request_id(app)

    from audittrail import api
    from audittrail import health
    from audittrail import web

    app.register_blueprint(health.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(web.bp)

    from audittrail.cli import register_commands

    register_commands(app)
    _configure_proxies(app)
    logging.basicConfig(level=logging.INFO)
    return app


def _project_path(app: Flask, name: str):
    from pathlib import Path

    return Path(app.root_path).parent / name


def _fixed_settings(config: dict) -> dict:
    engine_options = {}
    if config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # A file has no server to drop the connection: a ping would be one wasted statement per request.
        engine_options["connect_args"] = {"timeout": 15, "check_same_thread": False}
    else:
        engine_options["pool_pre_ping"] = True
        engine_options.update({"pool_size": 10, "max_overflow": 10, "pool_timeout": 10, "pool_recycle": 1800})
        engine_options["connect_args"] = {"connect_timeout": 5}
    settings = {}
    if config.get("RATELIMIT_STORAGE_URI", "").startswith(("redis://", "rediss://", "redis+unix://")):
        # redis-py waits 5 s by default; an unreachable Redis must cost a request little, since
        # flask-limiter pings it again from any request (reads too) while it runs on the fallback.
        settings["RATELIMIT_STORAGE_OPTIONS"] = {"socket_connect_timeout": 1, "socket_timeout": 1}
    return settings | {
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options,
        "MAX_CONTENT_LENGTH": 64 * 1024,
        "JWT_TOKEN_LOCATION": ["headers", "cookies"],
        "JWT_ACCESS_TOKEN_EXPIRES": timedelta(hours=8),
        "JWT_COOKIE_CSRF_PROTECT": True,
        "JWT_COOKIE_SAMESITE": "Lax",
        "JWT_CSRF_CHECK_FORM": False,
        "JWT_SESSION_COOKIE": True,
        "RATELIMIT_HEADERS_ENABLED": True,
        # flask-limiter would write its window reset into Retry-After on every limited route's
        # answer, 201 and 503 included (a 503 saying "60" instead of "5"); the 429 handler sets
        # Retry-After itself, so the limiter's copy goes under its own name.
        "RATELIMIT_HEADER_RETRY_AFTER": "X-RateLimit-Retry-After",
        "RATELIMIT_STRATEGY": "fixed-window",
        "RATELIMIT_SWALLOW_ERRORS": True,
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_KEY_PREFIX": "audittrail",
    }


def _register_request_id(app: Flask) -> None:
    @app.before_request
    def assign_request_id():
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex

    @app.after_request
    def echo_request_id(response):
        response.headers["X-Request-ID"] = g.get("request_id") or uuid.uuid4().hex
        return response


def _configure_proxies(app: Flask) -> None:
    trusted = app.config.get("AUDITTRAIL_TRUSTED_PROXIES", 0)
    if trusted:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=trusted, x_proto=trusted, x_host=trusted)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):
    """WAL, a busy timeout and foreign keys for SQLite; nothing for other databases."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
