"""API keys, managed with a user's JWT only."""

from __future__ import annotations

from http import HTTPStatus

from flask import current_app
from flask import jsonify

from audittrail.api import bp
from audittrail.api.common import operation
from audittrail.auth import current_principal
from audittrail.auth import now
from audittrail.ratelimit import api_key_limit
from audittrail.schemas import ApiKeyCreatedSchema
from audittrail.schemas import ApiKeyCreateSchema
from audittrail.schemas import ApiKeyListSchema
from audittrail.schemas import ApiKeySchema
from audittrail.services import api_keys

_ERRORS = ["unauthorized", "forbidden", "csrf_failed"]


@bp.get("/api-keys")
@operation(auth="jwt", responses={200: ApiKeyListSchema}, errors=["unauthorized", "forbidden"], tags=["api-keys"])
def list_api_keys():
    """List your API keys (no secrets)."""
    keys = api_keys.list_api_keys(current_principal().user)
    return jsonify(ApiKeyListSchema().dump({"items": keys}))


@bp.post("/api-keys")
@api_key_limit
@operation(
    auth="jwt",
    body=ApiKeyCreateSchema,
    responses={201: ApiKeyCreatedSchema},
    errors=[*_ERRORS, "malformed_json", "validation_error", "rate_limited"],
    tags=["api-keys"],
    carries_secret=True,
)
def create_api_key(body):
    """Create an API key; the secret `key` is in this answer only."""
    principal = current_principal()
    key, secret = api_keys.create_api_key(principal.user, body["name"], now(), body.get("scopes"), principal.actor)
    payload = ApiKeySchema().dump(key)
    payload["key"] = secret
    return jsonify(payload), HTTPStatus.CREATED


@bp.delete("/api-keys/<key_id>")
@operation(auth="jwt", responses={204: None}, errors=[*_ERRORS, "not_found"], tags=["api-keys"])
def revoke_api_key(key_id):
    """Revoke an API key; it answers 401 from now on."""
    principal = current_principal()
    api_keys.revoke_api_key(principal.user, key_id, now(), principal.actor)
    return current_app.response_class(status=HTTPStatus.NO_CONTENT)
