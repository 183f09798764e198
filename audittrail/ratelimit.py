"""The limiter: one shared bucket for the four state transitions, one for logins."""

from __future__ import annotations

from flask import current_app
from flask import request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from sqlalchemy.exc import InterfaceError
from sqlalchemy.exc import OperationalError

from audittrail.auth import rate_limit_client
from audittrail.extensions import db


def _client_key() -> str:
    """The caller's bucket key (see rate_limit_client); by address while the database is down.

    flask-limiter treats any exception raised while it evaluates a limit, the key function's
    included, as its storage failing: it would drop this worker to the in-memory fallback
    (per-process limits) although Redis is fine. The view answers 503 on its own anyway.
    """
    try:
        return rate_limit_client()
    except (OperationalError, InterfaceError):
        db.session.rollback()
        return f"addr:{request.remote_addr or 'unknown'}"


limiter = Limiter(key_func=_client_key)


def _transition_limit() -> str:
    return current_app.config["AUDITTRAIL_TRANSITION_RATE_LIMIT"]


def _login_limit() -> str:
    return current_app.config["AUDITTRAIL_LOGIN_RATE_LIMIT"]


def storage_status() -> str:
    """Return "ok", or "degraded (in-memory fallback)" while the shared storage is unreachable or
    this worker still counts in memory (flask-limiter retries the storage on later requests, backing
    off up to 32 s between tries).
    """
    try:
        reachable = limiter.storage.check()
    except Exception:  # noqa: BLE001 — a failing check means unreachable, never a 500
        reachable = False
    # flask-limiter has no public flag for "using the fallback"; this is the one it keeps.
    in_fallback = bool(getattr(limiter, "_storage_dead", False))
    return "ok" if reachable and not in_fallback else "degraded (in-memory fallback)"


# Propose, approve, reject and mark-executed draw from this one bucket per client.
transition_limit = limiter.shared_limit(_transition_limit, scope="transitions")
# Demo-login and login share one bucket per remote address.
login_limit = limiter.shared_limit(_login_limit, scope="login", key_func=get_remote_address)
