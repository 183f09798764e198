"""Demo login, password login, logout, me."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from http import HTTPStatus

from flask import current_app
from flask import jsonify
from flask_jwt_extended import create_access_token
from flask_jwt_extended import get_jwt
from flask_jwt_extended import set_access_cookies
from flask_jwt_extended import unset_jwt_cookies

from audittrail.api import bp
from audittrail.api.common import operation
from audittrail.auth import current_principal
from audittrail.auth import now
from audittrail.domain import capabilities_of
from audittrail.ratelimit import clear_login_failures
from audittrail.ratelimit import login_account_limit
from audittrail.ratelimit import login_limit
from audittrail.schemas import LoginSchema
from audittrail.schemas import MeSchema
from audittrail.schemas import TokenSchema
from audittrail.services import demo
from audittrail.services import users
from audittrail.services.actors import user_actor
from audittrail.services.errors import DemoLoginDisabled


def _capabilities(actor, via_api_key: bool) -> list[str]:
    return [capability.value for capability in capabilities_of(actor.caller, via_api_key)]


def _token_response(user):
    token = create_access_token(identity=user.id, additional_claims={"ws": user.workspace_id})
    body = {
        "access_token": token,
        "user": user,
        "workspace": user.workspace,
        "capabilities": _capabilities(user_actor(user), via_api_key=False),
    }
    response = jsonify(TokenSchema().dump(body))
    set_access_cookies(response, token)
    return response


@bp.post("/auth/demo-login")
@login_limit
@operation(
    auth="none", responses={200: TokenSchema}, errors=["not_found", "rate_limited"], tags=["auth"], carries_secret=True
)
def demo_login():
    """Create a fresh demo workspace with seeded actions and sign in as its operator."""
    if not current_app.config["DEMO_LOGIN_ENABLED"]:
        raise DemoLoginDisabled()
    created = demo.create_demo_workspace(now())
    return _token_response(created.operator)


@bp.post("/auth/login")
@login_limit
@login_account_limit
@operation(
    auth="none",
    body=LoginSchema,
    responses={200: TokenSchema},
    errors=["malformed_json", "validation_error", "unauthorized", "rate_limited"],
    tags=["auth"],
    carries_secret=True,
)
def login(body):
    """Sign in with email and password."""
    user = users.authenticate_password(body["email"], body["password"])
    clear_login_failures()
    return _token_response(user)


@bp.post("/auth/logout")
@operation(auth="jwt", responses={204: None}, errors=["unauthorized", "forbidden", "csrf_failed"], tags=["auth"])
def logout():
    """Revoke the current JWT and clear the cookies."""
    claims = get_jwt()
    users.revoke_token(claims["jti"], datetime.fromtimestamp(claims["exp"], UTC))
    response = current_app.response_class(status=HTTPStatus.NO_CONTENT)
    unset_jwt_cookies(response)
    return response


@bp.get("/auth/me")
@operation(responses={200: MeSchema}, errors=["unauthorized"], tags=["auth"])
def me():
    """The caller and their workspace."""
    principal = current_principal()
    body = {
        "user": principal.user,
        "workspace": principal.user.workspace,
        "capabilities": _capabilities(principal.actor, principal.via_api_key),
    }
    return jsonify(MeSchema().dump(body))
