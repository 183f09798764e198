"""What every API view shares: parsing, the `operation` decorator and its OpenAPI metadata."""

from __future__ import annotations

import json
from dataclasses import dataclass
from dataclasses import field
from functools import wraps

from flask import request
from marshmallow import Schema
from marshmallow import ValidationError

from audittrail.auth import require_auth
from audittrail.errors import ApiError
from audittrail.services.errors import ValidationFailed


def _refuse_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def json_body(optional: bool = False) -> dict:
    """The request body as a JSON object; raises ApiError(malformed_json) otherwise."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        if optional:
            return {}
        raise ApiError("malformed_json", "The request body must be a JSON object.")
    try:
        value = json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ApiError("malformed_json", "The request body is not valid JSON.") from None
    if not isinstance(value, dict):
        raise ApiError("malformed_json", "The request body must be a JSON object.")
    try:
        # JSON may escape an unpaired surrogate ("\ud800"); such a string has no UTF-8 form, so
        # the database, the audit hash and the idempotency fingerprint would all fail on it later.
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError("malformed_json", "The request body holds a string that is not valid Unicode.") from None
    return value


def load(schema: Schema, data: dict) -> dict:
    try:
        return schema.load(data)
    except ValidationError as error:
        raise ValidationFailed("Some fields are invalid.", _flatten(error.messages)) from None


def _flatten(messages) -> dict:
    if isinstance(messages, dict):
        return {str(key): value for key, value in messages.items()}
    return {"_schema": messages}


@dataclass
class Operation:
    """OpenAPI metadata of one view, read by audittrail.api.openapi."""

    summary: str
    responses: dict[int, type[Schema] | None]
    body: type[Schema] | None = None
    body_optional: bool = False
    query: type[Schema] | None = None
    auth: str = "any"  # "any", "jwt" or "none"
    scope: str | None = None
    errors: list[str] = field(default_factory=list)
    rate_limited: bool = False
    headers: dict[str, dict] = field(default_factory=dict)
    response_headers: dict[int, dict[str, dict]] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)


def operation(
    *,
    responses: dict,
    body: type[Schema] | None = None,
    body_optional: bool = False,
    query: type[Schema] | None = None,
    auth: str = "any",
    scope: str | None = None,
    errors: list[str] | None = None,
    rate_limited: bool = False,
    headers: dict | None = None,
    response_headers: dict | None = None,
    tags: list[str] | None = None,
):
    """Authenticate, check the scope, load the query and body through their schemas, then call the view.

    The view gets `body=` and/or `query=` keyword arguments. The same metadata documents
    the route in the OpenAPI document, so what is validated is what is documented.
    """

    def decorate(view):
        meta = Operation(
            summary=(view.__doc__ or view.__name__).strip().splitlines()[0],
            responses=responses,
            body=body,
            body_optional=body_optional,
            query=query,
            auth=auth,
            scope=scope,
            errors=list(errors or []),
            rate_limited=rate_limited,
            headers=headers or {},
            response_headers=response_headers or {},
            tags=tags or [],
        )

        @wraps(view)
        def wrapper(*args, **kwargs):
            if query is not None:
                kwargs["query"] = load(query(), request.args.to_dict(flat=True))
            if body is not None:
                kwargs["body"] = load(body(), json_body(optional=body_optional))
            return view(*args, **kwargs)

        wrapped = wrapper
        if auth != "none":
            wrapped = require_auth(scope=scope, jwt_only=auth == "jwt")(wrapper)
        wrapped.openapi = meta
        return wrapped

    return decorate
