"""The limiter: one shared bucket for the four state transitions, one for logins."""

from __future__ import annotations

from flask import current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from audittrail.auth import rate_limit_client

limiter = Limiter(key_func=rate_limit_client)


def _transition_limit() -> str:
    return current_app.config["AUDITTRAIL_TRANSITION_RATE_LIMIT"]


def _login_limit() -> str:
    return current_app.config["AUDITTRAIL_LOGIN_RATE_LIMIT"]


# Propose, approve, reject and mark-executed draw from this one bucket per client.
transition_limit = limiter.shared_limit(_transition_limit, scope="transitions")
# Demo-login and login share one bucket per remote address.
login_limit = limiter.shared_limit(_login_limit, scope="login", key_func=get_remote_address)
