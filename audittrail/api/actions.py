"""Deployment actions: list, propose, detail, approve, reject, mark-executed, summary."""

from __future__ import annotations

import json
import re
import time
from http import HTTPStatus

from flask import current_app
from flask import jsonify
from flask import request
from flask import url_for

from audittrail import live
from audittrail.api import bp
from audittrail.api.common import json_body
from audittrail.api.common import operation
from audittrail.api.events import stream_slot
from audittrail.auth import clock_now
from audittrail.auth import current_principal
from audittrail.auth import idempotency_client
from audittrail.auth import now
from audittrail.domain import ActionStatus
from audittrail.domain import Scope
from audittrail.errors import ApiError
from audittrail.extensions import release_session
from audittrail.ratelimit import transition_limit
from audittrail.schemas import ActionApproveSchema
from audittrail.schemas import ActionDetailQuerySchema
from audittrail.schemas import ActionDetailSchema
from audittrail.schemas import ActionListQuerySchema
from audittrail.schemas import ActionListSchema
from audittrail.schemas import ActionMarkExecutedSchema
from audittrail.schemas import ActionProposeSchema
from audittrail.schemas import ActionRejectSchema
from audittrail.schemas import ActionSchema
from audittrail.schemas import SummaryQuerySchema
from audittrail.schemas import SummarySchema
from audittrail.schemas.compiled import dumper
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
    "version_mismatch",
]
_IDEMPOTENCY_HEADER = {
    "Idempotency-Key": {
        "description": "Optional, 1–255 characters: a repeat with the same body returns the first answer.",
        "schema": {"type": "string", "minLength": 1, "maxLength": 255},
        "required": False,
    }
}
_LOCATION_HEADER = {201: {"Location": {"description": "URL of the new action", "schema": {"type": "string"}}}}
_ETAG = {"ETag": {"description": 'The action\'s version in quotes ("3"): send it back as If-Match.',
                  "schema": {"type": "string"}}}  # fmt: skip
_IF_MATCH_HEADER = {
    "If-Match": {
        "description": 'The version you decide on, as the ETag gave it ("3"); another version answers 412 '
        "`version_mismatch` and changes nothing.",
        "schema": {"type": "string", "pattern": '^"?[0-9]{1,9}"?$|^\\*$'},
        "required": False,
    }
}
_IF_MATCH = re.compile(r'^"?([0-9]{1,9})"?$')


def _actor():
    return current_principal().actor


def _dump(action, status=HTTPStatus.OK, with_events=False, moment=None):
    dump = dumper(ActionDetailSchema if with_events else ActionSchema)
    seen = querying.snapshot(action, _actor(), moment or now(), with_events=with_events, keyring=current_keyring())
    response = jsonify(dump(seen))
    response.headers["ETag"] = f'"{seen.version}"'
    return response, status


def _if_match() -> int | None:
    """The version named by If-Match (live.md §1), or None without one (or with `*`)."""
    raw = request.headers.get("If-Match")
    if raw is None or raw.strip() == "*":
        return None
    match = _IF_MATCH.match(raw.strip())
    if match is None:
        raise ApiError(
            "validation_error",
            'If-Match must name one version of the action as its ETag does, e.g. "3".',
            {"If-Match": ['One version in quotes, e.g. "3".']},
        )
    return int(match.group(1))


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
    return jsonify(dumper(ActionListSchema)({"items": seen, "next_cursor": next_cursor}))


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
        return json.dumps(dumper(ActionSchema)(querying.snapshot(action, actor, moment, keyring=current_keyring())))

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
        action_id = result.action_id
        body_out = render(querying.written_action(actor, action_id))
    response = current_app.response_class(body_out, status=HTTPStatus.CREATED, mimetype="application/json")
    response.headers["Location"] = url_for("api.get_action", action_id=action_id)
    return response


@bp.get("/deployments/actions/<action_id>")
@operation(
    scope=Scope.READ,
    query=ActionDetailQuerySchema,
    responses={200: ActionDetailSchema},
    errors=[*_AUTH_ERRORS, "not_found", "validation_error", "rate_limited"],
    response_headers={200: _ETAG},
    tags=["deployments"],
)
def get_action(action_id, query):
    """One action with its audit events; `?wait=&version=` answers once its version passes `version`."""
    action = querying.get_action(_actor(), action_id, now())
    if "wait" not in query or action.version > query["version"]:
        return _dump(action, with_events=True)
    action = _wait_for_change(action, query["version"], query["wait"])
    return _dump(action, with_events=True, moment=clock_now())


def _wait_for_change(action, version: int, wait_seconds: int):
    """Hold the request until the action's version passes `version`, its TTL passes, or `wait` ends.

    Holds no database connection while it waits, only a stream-and-wait slot of the client.
    """
    actor, action_id = _actor(), action.id

    def current():
        return querying.current_version(action_id)

    deadline = time.monotonic() + min(wait_seconds, current_app.config["AUDITTRAIL_WAIT_MAX_SECONDS"])
    with stream_slot(), live.hub().subscribe(actor.workspace_id) as subscription:
        while True:
            # Expiry counts as a change (§4): wake when the TTL passes, and let the read flip it.
            expires_in = None
            if action.status == ActionStatus.PROPOSED:
                expires_in = (action.expires_at - clock_now()).total_seconds()
            release_session()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            expires_by = None if expires_in is None else time.monotonic() + expires_in
            woke = subscription.wait(remaining if expires_in is None else min(remaining, max(expires_in, 0) + 0.01))
            expiry_due = expires_by is not None and time.monotonic() >= expires_by
            # A wake-up is for any event of the workspace: look at this action's version alone first.
            shared = live.hub().shared_batch
            if woke and not expiry_due and shared(actor.workspace_id, ("version", action_id), current) <= version:
                continue
            action = querying.get_action(actor, action_id, clock_now())
            if action.version > version:
                return action
    return querying.get_action(actor, action_id, clock_now())


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
    headers=_IF_MATCH_HEADER,
    response_headers={200: _ETAG},
    tags=["deployments"],
)
def approve_action(action_id, body):
    """Record your approval; the N-th the policy asks for approves the action (tier 3: `confirmation` and `note`)."""
    action = deciding.approve_action(
        _actor(),
        action_id,
        now(),
        note=body.get("note"),
        confirmation=body.get("confirmation"),
        expected_version=_if_match(),
        reread=querying.written_action,
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
    headers=_IF_MATCH_HEADER,
    response_headers={200: _ETAG},
    tags=["deployments"],
)
def reject_action(action_id, body):
    """Reject a proposed or approved action: a veto by an approver, or a withdrawal by its proposer."""
    action = deciding.reject_action(
        _actor(), action_id, now(), note=body.get("note"), expected_version=_if_match(), reread=querying.written_action
    )
    return _dump(action)


@bp.post("/deployments/actions/<action_id>/mark-executed")
@transition_limit
@operation(
    scope=Scope.EXECUTE,
    body=ActionMarkExecutedSchema,
    body_optional=True,
    responses={200: ActionSchema},
    errors=[*_TRANSITION_ERRORS, "digest_mismatch"],
    headers=_IF_MATCH_HEADER,
    response_headers={200: _ETAG},
    tags=["deployments"],
)
def mark_executed(action_id, body):
    """Record that the external runner executed an approved action (with `digest`: only if it is this action's)."""
    action = deciding.mark_executed(
        _actor(),
        action_id,
        now(),
        outcome=body.get("outcome"),
        expected_version=_if_match(),
        digest=body.get("digest"),
        reread=querying.written_action,
    )
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
    return jsonify(dumper(SummarySchema)(querying.summary(_actor(), now(), tz=query["tz"])))
