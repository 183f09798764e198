"""The error envelope, and the one place that maps exceptions to HTTP statuses."""

from __future__ import annotations

import logging
from http import HTTPStatus

from flask import Flask
from flask import g
from flask import jsonify
from sqlalchemy.exc import InterfaceError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from audittrail.services.errors import ServiceError

log = logging.getLogger(__name__)

STATUS_BY_CODE: dict[str, int] = {
    "malformed_json": HTTPStatus.BAD_REQUEST,
    "validation_error": HTTPStatus.UNPROCESSABLE_ENTITY,
    "unauthorized": HTTPStatus.UNAUTHORIZED,
    "forbidden": HTTPStatus.FORBIDDEN,
    "csrf_failed": HTTPStatus.UNAUTHORIZED,
    "not_found": HTTPStatus.NOT_FOUND,
    "invalid_transition": HTTPStatus.CONFLICT,
    "expired": HTTPStatus.BAD_REQUEST,
    "second_approver_required": HTTPStatus.FORBIDDEN,
    "confirmation_mismatch": HTTPStatus.BAD_REQUEST,
    "operator_reason_required": HTTPStatus.BAD_REQUEST,
    "already_approved": HTTPStatus.CONFLICT,
    "last_admin": HTTPStatus.CONFLICT,
    "idempotency_key_reused": HTTPStatus.UNPROCESSABLE_ENTITY,
    # evidence.md §3, §5
    "digest_mismatch": HTTPStatus.CONFLICT,
    "empty_chain": HTTPStatus.CONFLICT,
    "rate_limited": HTTPStatus.TOO_MANY_REQUESTS,
    "version_mismatch": HTTPStatus.PRECONDITION_FAILED,
    "method_not_allowed": HTTPStatus.METHOD_NOT_ALLOWED,
    "payload_too_large": HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    "service_unavailable": HTTPStatus.SERVICE_UNAVAILABLE,
    "internal_error": HTTPStatus.INTERNAL_SERVER_ERROR,
}

_CODE_BY_HTTP_STATUS = {
    400: "malformed_json",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "malformed_json",
    429: "rate_limited",
}


class ApiError(Exception):
    """An error raised by the HTTP layer itself (not by a service)."""

    def __init__(self, code: str, message: str, details: dict | None = None, headers: dict | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers or {}


def error_response(code: str, message: str, details: dict | None = None, headers: dict | None = None):
    response = jsonify({"error": {"code": code, "message": message, "details": details or {}}})
    response.status_code = STATUS_BY_CODE.get(code, HTTPStatus.INTERNAL_SERVER_ERROR)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ServiceError)
    def handle_service_error(error: ServiceError):
        return error_response(error.code, error.message, error.details)

    @app.errorhandler(ApiError)
    def handle_api_error(error: ApiError):
        return error_response(error.code, error.message, error.details, error.headers)

    @app.errorhandler(HTTPException)
    def handle_http_exception(error: HTTPException):
        status = error.code or 500
        code = _CODE_BY_HTTP_STATUS.get(status, "internal_error" if status >= 500 else "malformed_json")
        headers = {}
        if status == 429:
            retry_after = _retry_after_seconds()
            headers["Retry-After"] = str(retry_after)
            return error_response(
                code,
                f"Too many {_limited_kind()} requests; try again in {retry_after} s.",
                {"retry_after": retry_after, "limit": str(getattr(error, "description", ""))},
                headers,
            )
        if status == 405:
            headers["Allow"] = ", ".join(sorted(error.valid_methods or [])) if hasattr(error, "valid_methods") else ""
        messages = {
            404: "No such resource.",
            405: "This method is not allowed here.",
            413: "The request body is too large.",
        }
        return error_response(code, messages.get(status, error.description or "Bad request."), {}, headers)

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    def handle_database_unavailable(error):
        log.warning("database unavailable (request %s): %s", g.get("request_id"), error.__class__.__name__)
        return error_response(
            "service_unavailable",
            "The database is unavailable right now; try again shortly.",
            {},
            {"Retry-After": "5"},
        )

    @app.errorhandler(Exception)
    def handle_unexpected(error: Exception):
        log.exception("unexpected error (request %s)", g.get("request_id"))
        return error_response("internal_error", "Unexpected error; it has been logged with the request id.")


def _limited_kind() -> str:
    # Logins (per address, per account), API key creation (per user), the state transitions (per client).
    from flask import request

    if request.path.startswith("/api/v1/auth/"):
        return "sign-in"
    if request.path.startswith("/api/v1/runs"):
        return "run write"
    return "API key creation" if request.path.startswith("/api/v1/api-keys") else "state-changing"


def _retry_after_seconds() -> int:
    import math
    import time

    from audittrail.ratelimit import limiter

    limit = limiter.current_limit
    if limit is None:
        return 60
    try:
        # The window's exact end (RequestLimit.reset_at rounds it up by a second, past the window).
        reset_at = limit.window[0]
    except Exception:  # noqa: BLE001 — the limit storage failing here must not turn a 429 into a 500
        return 60
    return max(1, math.ceil(reset_at - time.time()))
