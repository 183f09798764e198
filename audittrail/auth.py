"""Who is calling: JWT (header or cookie + CSRF) or `sk-at-` API key; scopes; the limiter's client key."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from functools import cached_property
from functools import wraps

from flask import after_this_request
from flask import current_app
from flask import g
from flask import has_request_context
from flask import request
from flask_jwt_extended import get_jwt
from flask_jwt_extended import verify_jwt_in_request
from flask_jwt_extended.config import config as jwt_config
from flask_jwt_extended.exceptions import CSRFError
from flask_jwt_extended.exceptions import JWTDecodeError
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt import PyJWTError
from sqlalchemy.exc import SQLAlchemyError

from audittrail.domain import Capability
from audittrail.domain import capability_refusal
from audittrail.domain import permission_refusal
from audittrail.extensions import jwt
from audittrail.models import User
from audittrail.services import api_keys
from audittrail.services import users
from audittrail.services.actors import Actor
from audittrail.services.actors import api_key_actor
from audittrail.services.actors import user_actor
from audittrail.services.api_keys import KeyCredentials
from audittrail.services.errors import CsrfFailed
from audittrail.services.errors import Forbidden
from audittrail.services.errors import ServiceError
from audittrail.services.errors import Unauthorized
from audittrail.services.errors import error_for

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of this request.

    `user` is the caller's User row. With a JWT it is the row authentication read; with an API
    key it is read when a view first asks (the actor already holds what most answers need).
    """

    actor: Actor
    loaded_user: User | None = None
    api_key: KeyCredentials | None = None

    @cached_property
    def user(self) -> User:
        return self.loaded_user if self.loaded_user is not None else users.get_user(self.actor.user_id)

    @property
    def via_api_key(self) -> bool:
        return self.api_key is not None


def now() -> datetime:
    """The time of this request: read once from the app's clock (tests replace AUDITTRAIL_CLOCK).

    One value per request, so a TTL cannot pass between the expiry sweep of a read and the
    `allowed_transitions` computed for its answer.
    """
    clock = current_app.config.get("AUDITTRAIL_CLOCK", _utcnow)
    if not has_request_context():
        return clock()
    if "audittrail.now" not in request.environ:
        request.environ["audittrail.now"] = clock()
    return request.environ["audittrail.now"]


def clock_now() -> datetime:
    """The app's clock read afresh: a stream or a wait outlives the moment its request began."""
    return current_app.config.get("AUDITTRAIL_CLOCK", _utcnow)()


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def _resolve() -> Principal:
    api_key_secret = request.headers.get("X-API-Key")
    bearer = _bearer_token()
    if api_key_secret is None and api_keys.looks_like_api_key(bearer):
        api_key_secret = bearer
    if api_key_secret is not None:
        key = api_keys.authenticate_api_key(api_key_secret.strip())
        if key is None:
            raise Unauthorized("Unknown or revoked API key.")
        if api_keys.needs_use_recorded(key, now()):
            _record_key_use_after_this_request(key.id, now())
        return Principal(api_key_actor(key, g.get("request_id")), api_key=key)
    if bearer is not None:
        # RFC 7235: the scheme is case-insensitive; flask-jwt-extended only reads "Bearer" as written.
        request.environ["HTTP_AUTHORIZATION"] = f"Bearer {bearer}"
    try:
        verify_jwt_in_request()
        user_id = get_jwt()["sub"]
    except CSRFError:
        raise CsrfFailed() from None
    except (JWTExtendedException, PyJWTError, KeyError):
        raise Unauthorized() from None
    user = users.get_user(user_id)
    if user is None:
        raise Unauthorized("This account no longer exists.")
    return Principal(user_actor(user, g.get("request_id")), user)


def _record_key_use_after_this_request(key_id: str, moment: datetime) -> None:
    """Move the key's `last_used_at` once the request is answered, in a unit of work of its own.

    Authentication also runs as the limiter's key function, before the view: writing there would
    commit behind the caller's back. A hint may be lost (the database is down): never an error.
    """

    @after_this_request
    def record(response):
        try:
            api_keys.record_use(key_id, moment)
        except SQLAlchemyError:
            log.warning("could not record the use of API key %s", key_id)
        return response


# Cached in the WSGI environ, which lives exactly as long as one request. Not on `g`: `g` belongs
# to the app context, and Flask reuses an already pushed app context (tests, scripts) for every
# request made inside it, so a cache on `g` would hand one request the previous request's caller.
_PRINCIPAL_KEY = "audittrail.principal"


def current_principal() -> Principal:
    """Authenticate once per request; raises Unauthorized or CsrfFailed."""
    if _PRINCIPAL_KEY not in request.environ:
        try:
            request.environ[_PRINCIPAL_KEY] = _resolve()
        except ServiceError as error:
            request.environ[_PRINCIPAL_KEY] = error
    principal = request.environ[_PRINCIPAL_KEY]
    if isinstance(principal, ServiceError):
        raise principal
    return principal


def require_auth(scope: str | None = None, jwt_only: bool = False, capability: Capability | None = None):
    """Authenticate the caller, then refuse (403) an API key where a JWT is needed, a missing scope,
    or a role without the capability the scope (or `capability`) stands for: all before the body.
    """

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            principal = current_principal()
            if jwt_only and principal.via_api_key:
                raise Forbidden("This is done with a user's JWT, not with an API key.")
            caller = principal.actor.caller
            refusal = permission_refusal(caller, scope) if scope is not None else None
            if refusal is None and capability is not None:
                refusal = capability_refusal(caller, capability)
            if refusal is not None:
                raise error_for(refusal)
            return view(*args, **kwargs)

        return wrapper

    return decorate


def rate_limit_client() -> str:
    """The limiter's key: the API key, else the user, else the remote address.

    Runs before the view's own authentication, so it authenticates the caller itself;
    a caller whose credentials fail is counted by address.
    """
    try:
        principal = current_principal()
    except ServiceError:
        return f"addr:{request.remote_addr or 'unknown'}"
    if principal.api_key is not None:
        return f"key:{principal.api_key.id}"
    return f"user:{principal.user.id}"


def idempotency_client() -> str:
    """Who an Idempotency-Key belongs to (same notion of client as the rate limit)."""
    return rate_limit_client()


@jwt.token_in_blocklist_loader
def _token_revoked(jwt_header, jwt_payload) -> bool:
    return users.is_token_revoked(jwt_payload["jti"])


# Logout stores the jti (revoked_tokens.jti holds 255 characters) until `exp`; a token without
# either could never be revoked, and flask-jwt-extended fills in a missing `type` or `jti` itself.
REQUIRED_CLAIMS = ("exp", "jti", "sub", "type")
MAX_JTI_LENGTH = 255
# Clock skew allowed between the host that signed a token and the one reading it.
EXP_SKEW_SECONDS = 60


def token_claims_problem(claims: dict, now_timestamp: float, lifetime: timedelta) -> str | None:
    """Why these claims cannot be accepted, or None: each required claim present, of its type, in range.

    `exp` may lie at most one token lifetime (plus skew) ahead: this app never signs a longer one, and
    a larger value would be a token that never expires (and overflow a datetime on logout).
    """
    missing = [name for name in REQUIRED_CLAIMS if name not in claims]
    if missing:
        return f"Missing claim: {', '.join(missing)}"
    exp, jti = claims["exp"], claims["jti"]
    if isinstance(exp, bool) or not isinstance(exp, int):
        return "The exp claim must be an integer."
    if exp > now_timestamp + lifetime.total_seconds() + EXP_SKEW_SECONDS:
        return "The exp claim lies further ahead than any token this app signs."
    if not isinstance(jti, str) or not 1 <= len(jti) <= MAX_JTI_LENGTH:
        return f"The jti claim must be a string of 1 to {MAX_JTI_LENGTH} characters."
    if not isinstance(claims["sub"], str) or not isinstance(claims["type"], str):
        return "The sub and type claims must be strings."
    return None


@jwt.decode_key_loader
def _decode_key(jwt_header, unverified_claims) -> str:
    """The key to verify a token with, once its claims have the shape logout and the blocklist need.

    flask-jwt-extended hands this loader the claims as sent, before it fills in defaults; PyJWT
    then verifies the signature and `exp` of the very same claims. Raises JWTDecodeError (401).
    """
    problem = token_claims_problem(unverified_claims, time.time(), current_app.config["JWT_ACCESS_TOKEN_EXPIRES"])
    if problem is not None:
        raise JWTDecodeError(problem)
    return jwt_config.decode_key
