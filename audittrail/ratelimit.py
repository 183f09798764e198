"""The limiter: one shared bucket for the four state transitions; logins per address and per account;
API key creation per user."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from http import HTTPStatus

from flask import current_app
from flask import request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from sqlalchemy.exc import InterfaceError
from sqlalchemy.exc import OperationalError

from audittrail.auth import rate_limit_client
from audittrail.extensions import db
from audittrail.services.users import normalize_email

log = logging.getLogger(__name__)
LOGIN_ACCOUNT_SCOPE = "login-account"


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


def _runs_write_limit() -> str:
    return current_app.config["AUDITTRAIL_RUNS_WRITE_RATE_LIMIT"]


def _login_limit() -> str:
    return current_app.config["AUDITTRAIL_LOGIN_RATE_LIMIT"]


def _login_account_limit() -> str:
    return current_app.config["AUDITTRAIL_LOGIN_ACCOUNT_RATE_LIMIT"]


def _api_key_limit() -> str:
    return current_app.config["AUDITTRAIL_API_KEY_RATE_LIMIT"]


def _login_account_key() -> str:
    """The account a login names, whether it exists or not, as an HMAC of its normalised email.

    Keyed with SECRET_KEY, so the limiter's storage holds no address and no guessable digest of one.
    Reads the body before the view validates it: a body without a usable email shares one key,
    never deducted, since only a 401 is (it cannot get past the schema).
    """
    try:
        body = json.loads(request.get_data(cache=True))
        email = body.get("email") if isinstance(body, dict) else None
    except Exception:  # noqa: BLE001 — the view refuses a bad body itself; a key function must not raise
        email = None
    if not isinstance(email, str):
        return "account:none"
    secret = current_app.config["SECRET_KEY"].encode()
    digest = hmac.new(secret, normalize_email(email).encode("utf-8", "surrogatepass"), hashlib.sha256)
    return f"account:{digest.hexdigest()[:32]}"


def _failed_login(response) -> bool:
    return response.status_code == HTTPStatus.UNAUTHORIZED


def clear_login_failures() -> None:
    """Forget the failed logins counted against this request's account (a successful login resets them)."""
    for applied in limiter.current_limits:
        if LOGIN_ACCOUNT_SCOPE not in applied.request_args:
            continue
        try:
            limiter.limiter.clear(applied.limit, *applied.request_args)
        except Exception:  # noqa: BLE001 — storage unreachable: the count then runs out with its window
            log.warning("could not reset the login failures of an account")


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
# Run writes (PUT and PATCH /runs/{id}) are not transitions: a bucket of their own per client (runs.md §1).
runs_write_limit = limiter.shared_limit(_runs_write_limit, scope="runs-write")
# Demo-login and login share one bucket per remote address.
login_limit = limiter.shared_limit(_login_limit, scope="login", key_func=get_remote_address)
# Login also counts the failures per account, wherever they come from, so a distributed guess is slowed.
# Only failures count (deduct_when); the check runs before the password is, so a throttled
# answer is the same whether the account exists or not.
login_account_limit = limiter.shared_limit(
    _login_account_limit, scope=LOGIN_ACCOUNT_SCOPE, key_func=_login_account_key, deduct_when=_failed_login
)
# Each key is a bucket of its own in the transition limit: minting keys must not multiply it.
api_key_limit = limiter.shared_limit(_api_key_limit, scope="api-keys")
