"""What every API view shares: parsing, the `operation` decorator and its OpenAPI metadata."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from dataclasses import field
from functools import wraps

from flask import make_response
from flask import request
from marshmallow import Schema
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import RequestEntityTooLarge

from audittrail.auth import require_auth
from audittrail.domain import Capability
from audittrail.errors import ApiError
from audittrail.services.errors import ValidationFailed


def _refuse_constant(name):
    raise ValueError(f"{name} is not valid JSON")


class _DuplicateKey(ValueError):
    """A JSON object gave one key twice."""


def _refuse_duplicate_keys(pairs: list) -> dict:
    # json.loads keeps the last value; a proxy or WAF that read the first would not see what we act on.
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        raise _DuplicateKey(next(name for index, name in enumerate(names) if name in names[:index]))
    return dict(pairs)


def _finite_float(text: str) -> float:
    # 1e400 is valid JSON syntax but no double: it would come back out as Infinity, which is
    # not JSON (and PostgreSQL's json type refuses it).
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text} does not fit in a double")
    return value


# Deep enough for any real payload or outcome, shallow enough that no encoder downstream (the
# schemas, the database driver, the audit hash) can run out of stack on it.
MAX_JSON_DEPTH = 64


def request_body() -> bytes:
    """The raw body; raises RequestEntityTooLarge (413) past MAX_CONTENT_LENGTH however it was sent,
    ApiError(malformed_json) when the server's stream fails.

    werkzeug refuses a Content-Length over the limit, but reads a chunked body (no Content-Length)
    only up to the limit and drops the rest: a valid JSON object followed by 200 KB of padding
    would pass as the object. One more byte read from the server's own stream tells whether the
    body went on.
    """
    limit = request.max_content_length
    try:
        raw = request.get_data(cache=True)
        cut_at_the_limit = request.content_length is None and limit is not None and len(raw) >= limit
        goes_on = cut_at_the_limit and request.environ["wsgi.input"].read(1)
    except HTTPException:
        raise
    except Exception:  # noqa: BLE001 — bad chunked framing (werkzeug raises OSError, gunicorn its
        # ParseException) or a client gone mid-body: the request's fault, so a 400, never a 500.
        raise ApiError("malformed_json", "The request body could not be read (malformed chunked encoding?).") from None
    if goes_on:
        raise RequestEntityTooLarge()
    return raw


def json_body(optional: bool = False) -> dict:
    """The request body as a JSON object; raises ApiError(malformed_json) or ValidationFailed otherwise."""
    raw = request_body()
    if not raw.strip():
        if optional:
            return {}
        raise ApiError("malformed_json", "The request body must be a JSON object.")
    try:
        value = json.loads(
            raw, parse_constant=_refuse_constant, parse_float=_finite_float, object_pairs_hook=_refuse_duplicate_keys
        )
    except _DuplicateKey as duplicate:
        raise ApiError(
            "malformed_json", "The request body gives the same key twice in one object.", {"key": str(duplicate)[:200]}
        ) from None
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ApiError("malformed_json", "The request body is not valid JSON.") from None
    if not isinstance(value, dict):
        raise ApiError("malformed_json", "The request body must be a JSON object.")
    problems = {name: problem for name, item in value.items() if (problem := _value_problem(name, item))}
    if _NOT_UNICODE in problems.values():
        # Like invalid UTF-8 bytes, which json.loads refuses above: the text is not Unicode.
        raise ApiError("malformed_json", "The request body holds a string that is not valid Unicode.")
    if problems:
        raise ValidationFailed("Some fields are invalid.", {name: [problem] for name, problem in problems.items()})
    return value


_NOT_UNICODE = "Must not contain an unpaired surrogate (not valid Unicode)."


def _value_problem(name: str, value) -> str | None:
    """What makes a field unstorable, if anything; walks iteratively since bodies may nest deeply.

    JSON may escape an unpaired surrogate ("\\ud800"), which has no UTF-8 form, and U+0000, which
    PostgreSQL text cannot hold; and very deep nesting exhausts the stack of the encoders further
    on (schemas, database driver, audit hash). Each would otherwise end as a 500.
    """
    pending = [(name, 0), (value, 1)]
    while pending:
        item, depth = pending.pop()
        if depth > MAX_JSON_DEPTH:
            return f"Must not nest deeper than {MAX_JSON_DEPTH} levels."
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return _NOT_UNICODE
            if "\x00" in item:
                return "Must not contain the NUL character (U+0000)."
        elif isinstance(item, dict):
            pending.extend((key, depth) for key in item)
            pending.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            pending.extend((child, depth + 1) for child in item)
    return None


def query_arguments() -> dict:
    """The query string as a dict; a parameter given twice is refused rather than half-read."""
    repeated = [name for name, values in request.args.lists() if len(values) > 1]
    if repeated:
        raise ValidationFailed(
            "A query parameter was given more than once.", {name: ["Give it once."] for name in repeated}
        )
    return request.args.to_dict(flat=True)


def load(schema: Schema, data: dict, dotted: bool = False) -> dict:
    """Load through the schema; a ValidationFailed names the fields (nested ones as `a.b.c` if `dotted`)."""
    try:
        return schema.load(data)
    except ValidationError as error:
        details = _dotted(error.messages) if dotted else _flatten(error.messages)
        raise ValidationFailed("Some fields are invalid.", details) from None


def _flatten(messages) -> dict:
    if isinstance(messages, dict):
        return {str(key): value for key, value in messages.items()}
    return {"_schema": messages}


def _dotted(messages, prefix: str = "") -> dict:
    if not isinstance(messages, dict):
        return {prefix or "_schema": messages}
    found: dict = {}
    for key, value in messages.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        found.update(_dotted(value, name) if isinstance(value, dict) else {name: value})
    return found


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
    capability: str | None = None
    dotted_errors: bool = False
    errors: list[str] = field(default_factory=list)
    rate_limited: bool = False
    headers: dict[str, dict] = field(default_factory=dict)
    response_headers: dict[int, dict[str, dict]] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    carries_secret: bool = False
    # Other media types a response may take, e.g. {200: {"application/x-ndjson": {"schema": …}}}.
    response_content: dict[int, dict[str, dict]] = field(default_factory=dict)
    max_body_bytes: int | None = None


def operation(
    *,
    responses: dict,
    body: type[Schema] | None = None,
    body_optional: bool = False,
    query: type[Schema] | None = None,
    auth: str = "any",
    scope: str | None = None,
    capability: Capability | None = None,
    dotted_errors: bool = False,
    errors: list[str] | None = None,
    rate_limited: bool = False,
    headers: dict | None = None,
    response_headers: dict | None = None,
    tags: list[str] | None = None,
    carries_secret: bool = False,
    response_content: dict | None = None,
    max_body_bytes: int | None = None,
):
    """Authenticate, check the scope, load the query and body through their schemas, then call the view.

    The view gets `body=` and/or `query=` keyword arguments. The same metadata documents
    the route in the OpenAPI document, so what is validated is what is documented.
    `carries_secret`: the answer holds a token or a key, which no cache may keep (Cache-Control: no-store).
    `max_body_bytes`: this route's body cap, in place of MAX_CONTENT_LENGTH (64 KiB) for this request only.
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
            capability=capability,
            dotted_errors=dotted_errors,
            errors=list(errors or []),
            rate_limited=rate_limited,
            headers=headers or {},
            response_headers=response_headers or {},
            tags=tags or [],
            carries_secret=carries_secret,
            response_content=response_content or {},
            max_body_bytes=max_body_bytes,
        )

        # One instance of each schema per route: building a marshmallow schema costs more than loading
        # a small body through it, and loading keeps no state on the instance.
        query_schema = query() if query is not None else None
        body_schema = body() if body is not None else None

        @wraps(view)
        def wrapper(*args, **kwargs):
            if query_schema is not None:
                kwargs["query"] = load(query_schema, query_arguments())
            elif request.args:
                # Like an unknown body field: a client that thinks a parameter does something must learn otherwise.
                raise ValidationFailed(
                    "This route takes no query parameters.",
                    {name: ["Unknown query parameter."] for name in request.args},
                )
            if max_body_bytes is not None:
                request.max_content_length = max_body_bytes
            if body_schema is not None:
                kwargs["body"] = load(body_schema, json_body(optional=body_optional), dotted=dotted_errors)
            if not carries_secret:
                return view(*args, **kwargs)
            response = make_response(view(*args, **kwargs))
            response.headers["Cache-Control"] = "no-store"
            return response

        wrapped = wrapper
        if auth != "none":
            wrapped = require_auth(scope=scope, jwt_only=auth == "jwt", capability=capability)(wrapper)
        wrapped.openapi = meta
        return wrapped

    return decorate
