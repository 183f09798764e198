"""Liveness and readiness, outside the versioned API."""

from __future__ import annotations

from http import HTTPStatus

from flask import Blueprint
from flask import jsonify
from sqlalchemy import text

from audittrail.extensions import db
from audittrail.ratelimit import limiter

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """The process is up."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    """Ready when the database answers; reports the rate limiter's storage too."""
    checks = {}
    status = HTTPStatus.OK
    try:
        db.session.execute(text("SELECT 1"))
        db.session.rollback()
        checks["database"] = "ok"
    except Exception:  # noqa: BLE001 — any failure means "not ready", never a 500
        db.session.rollback()
        checks["database"] = "unavailable"
        status = HTTPStatus.SERVICE_UNAVAILABLE
    try:
        checks["rate_limiter"] = "ok" if limiter.storage.check() else "degraded (in-memory fallback)"
    except Exception:  # noqa: BLE001
        checks["rate_limiter"] = "degraded (in-memory fallback)"
    return jsonify({"status": "ok" if status == HTTPStatus.OK else "unavailable", "checks": checks}), status
