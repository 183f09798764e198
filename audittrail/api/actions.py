"""Deployment actions: list, propose, detail, approve, reject, mark-executed, summary."""

from __future__ import annotations

import json
from http import HTTPStatus

from flask import current_app
from flask import jsonify
from flask import request
from flask import url_for

from audittrail.api import bp
from audittrail.api.common import json_body
from audittrail.api.common import operation
from audittrail.auth import current_principal
from audittrail.auth import idempotency_client
from audittrail.auth import now
from audittrail.domain import Scope
from audittrail.errors import ApiError
from audittrail.ratelimit import transition_limit
from audittrail.schemas import ActionApproveSchema
from audittrail.schemas import ActionDetailSchema
from audittrail.schemas import ActionListQuerySchema
from audittrail.schemas import ActionListSchema
from audittrail.schemas import ActionMarkExecutedSchema
from audittrail.schemas import ActionProposeSchema
from audittrail.schemas import ActionRejectSchema
from audittrail.schemas import ActionSchema
from audittrail.schemas import SummaryQuerySchema
from audittrail.schemas import SummarySchema
from audittrail.services import deciding
from audittrail.services import proposing
from audittrail.services import querying
from audittrail.signing import current_keyring

_AUTH_ERRORS = ["unauthorized", "forbidden", "csrf_failed"]
_TRANSITION_ERRORS = [
    *_AUTH_ERRORS,
    "malformed_json",
    "validation_error",
    "not_found",
    "invalid_transition",
    "expired",
    "rate_limited",
]
_IDEMPOTENCY_HEADER = {
    "Idempotency-Key": {
        "description": "Optional, 1–255 characters: a repeat with the same body returns the first answer.",
        "schema": {"type": "string", "minLength": 1, "maxLength": 255},
        "required": False,
    }
}
_LOCATION_HEADER = {201: {"Location": {"description": "URL of the new action", "schema": {"type": "string"}}}}


def _actor():
    return current_principal().actor


def _dump(action, status=HTTPStatus.OK, with_events=False):
    schema = ActionDetailSchema() if with_events else ActionSchema()
    seen = querying.snapshot(action, _actor(), now(), with_events=with_events, keyring=current_keyring())
    return jsonify(schema.dump(seen)), status


def _settings() -> proposing.ProposalSettings:
    config = current_app.config
    return proposing.ProposalSettings(
        default_ttl_seconds=config["AUDITTRAIL_DEFAULT_TTL_SECONDS"],
        ttl_min_seconds=config["AUDITTRAIL_TTL_MIN_SECONDS"],
    )


@bp.get("/deployments/actions")
@operation(
    scope=Scope.READ,
    query=ActionListQuerySchema,
    responses={200: ActionListSchema},
    errors=[*_AUTH_ERRORS, "validation_error"],
    tags=["deployments"],
)
def list_actions(query):
    """List actions, newest first (`proposed_at` desc, then `id` desc), a page at a time."""
    status = query.get("status")
    items, next_cursor = querying.list_actions(
        _actor(),
        now(),
        status=None if status in (None, "", "all") else status,
        limit=query["limit"],
        cursor=query.get("cursor"),
    )
    seen = querying.snapshots(items, _actor(), now(), keyring=current_keyring())
    return jsonify(ActionListSchema().dump({"items": seen, "next_cursor": next_cursor}))


@bp.post("/deployments/actions")
@transition_limit
@operation(
    scope=Scope.PROPOSE,
    body=ActionProposeSchema,
    responses={201: ActionSchema},
    errors=[*_AUTH_ERRORS, "malformed_json", "validation_error", "idempotency_key_reused", "rate_limited"],
    headers=_IDEMPOTENCY_HEADER,
    response_headers=_LOCATION_HEADER,
    tags=["deployments"],
)
def propose_action(body):
    """Propose an action; tier 1 in autonomous mode is executed at once."""
    key = request.headers.get("Idempotency-Key")
    idempotency = None
    if key is not None:
        if not 1 <= len(key) <= 255 or not key.isprintable():
            raise ApiError(
                "validation_error",
                "The Idempotency-Key header must be 1–255 printable characters.",
                {"Idempotency-Key": ["Must be 1–255 printable characters."]},
            )
        idempotency = proposing.IdempotencyRequest(
            client=idempotency_client(),
            key=key,
            fingerprint=proposing.request_fingerprint(json_body()),
        )
    actor, moment = _actor(), now()

    def render(action):
        return json.dumps(ActionSchema().dump(querying.snapshot(action, actor, moment, keyring=current_keyring())))

    result = proposing.propose_action(
        actor,
        proposing.Proposal(**body),
        moment,
        settings=_settings(),
        idempotency=idempotency,
        render=render,
    )
    if result.replayed_body is not None:
        body_out = result.replayed_body
        action_id = json.loads(body_out)["id"]
    else:
        body_out = render(result.action)
        action_id = result.action.id
    response = current_app.response_class(body_out, status=HTTPStatus.CREATED, mimetype="application/json")
    response.headers["Location"] = url_for("api.get_action", action_id=action_id)
    return response


@bp.get("/deployments/actions/<action_id>")
@operation(
    scope=Scope.READ,
    responses={200: ActionDetailSchema},
    errors=[*_AUTH_ERRORS, "not_found"],
    tags=["deployments"],
)
def get_action(action_id):
    """One action with its audit events."""
    return _dump(querying.get_action(_actor(), action_id, now()), with_events=True)


@bp.post("/deployments/actions/<action_id>/approve")
@transition_limit
@operation(
    scope=Scope.DECIDE,
    body=ActionApproveSchema,
    body_optional=True,
    responses={200: ActionSchema},
    errors=[
        *_TRANSITION_ERRORS,
        "second_approver_required",
        "already_approved",
        "confirmation_mismatch",
        "operator_reason_required",
    ],
    tags=["deployments"],
)
def approve_action(action_id, body):
    """Record your approval; the N-th the policy asks for approves the action (tier 3: `confirmation` and `note`)."""
    action = deciding.approve_action(
        _actor(), action_id, now(), note=body.get("note"), confirmation=body.get("confirmation")
    )
    return _dump(action)


@bp.post("/deployments/actions/<action_id>/reject")
@transition_limit
@operation(
    scope=Scope.DECIDE,
    body=ActionRejectSchema,
    body_optional=True,
    responses={200: ActionSchema},
    errors=_TRANSITION_ERRORS,
    tags=["deployments"],
)
def reject_action(action_id, body):
    """Reject a proposed or approved action: a veto by an approver, or a withdrawal by its proposer."""
    return _dump(deciding.reject_action(_actor(), action_id, now(), note=body.get("note")))


@bp.post("/deployments/actions/<action_id>/mark-executed")
@transition_limit
@operation(
    scope=Scope.EXECUTE,
    body=ActionMarkExecutedSchema,
    body_optional=True,
    responses={200: ActionSchema},
    errors=[*_TRANSITION_ERRORS, "digest_mismatch"],
    tags=["deployments"],
)
def mark_executed(action_id, body):
    """Record that the external runner executed an approved action (with `digest`: only if it is this action's)."""
    action = deciding.mark_executed(_actor(), action_id, now(), outcome=body.get("outcome"), digest=body.get("digest"))
    return _dump(action)


@bp.get("/deployments/summary")
@operation(
    scope=Scope.READ,
    query=SummaryQuerySchema,
    responses={200: SummarySchema},
    errors=[*_AUTH_ERRORS, "validation_error"],
    tags=["deployments"],
)
def summary(query):
    """KPI counts; "today" starts at local midnight in `tz` (IANA name, default UTC)."""
    return jsonify(SummarySchema().dump(querying.summary(_actor(), now(), tz=query["tz"])))
