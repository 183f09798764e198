"""Liveness and readiness, outside the versioned API."""

from __future__ import annotations

from http import HTTPStatus

from flask import Blueprint
from flask import jsonify
from sqlalchemy import text

from audittrail.extensions import db
from audittrail.ratelimit import storage_status as rate_limit_storage_status

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
    # A degraded limiter still limits (per process), so it does not make the instance unready.
    checks["rate_limiter"] = rate_limit_storage_status()
    return jsonify({"status": "ok" if status == HTTPStatus.OK else "unavailable", "checks": checks}), status
