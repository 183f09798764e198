"""Runs (runs.md §1): PUT and PATCH by the agents' platforms, GET for the DAG viewer."""

from __future__ import annotations

from http import HTTPStatus

from flask import jsonify
from flask import url_for

from audittrail.api import bp
from audittrail.api.common import operation
from audittrail.auth import current_principal
from audittrail.auth import now
from audittrail.domain import Scope
from audittrail.ratelimit import runs_write_limit
from audittrail.schemas import RunListQuerySchema
from audittrail.schemas import RunListSchema
from audittrail.schemas import RunPatchSchema
from audittrail.schemas import RunReplaceSchema
from audittrail.schemas import RunSchema
from audittrail.services import runs

# A legal 2 000-node run is about 200 KB; every other route keeps 64 KiB.
RUN_BODY_LIMIT = 2 * 1024 * 1024
_AUTH_ERRORS = ["unauthorized", "forbidden", "csrf_failed"]
_WRITE_ERRORS = [*_AUTH_ERRORS, "malformed_json", "validation_error", "rate_limited"]


def _actor():
    return current_principal().actor


def _dump(view: runs.RunView, status=HTTPStatus.OK):
    run = view.run
    body = {
        **{name: getattr(run, name) for name in RunSchema().fields if hasattr(run, name)},
        "actions": view.actions,
        "menu": [
            {
                "action_type": item.action_type,
                "tier": item.tier,
                "target": item.target,
                "confirmation_text": item.confirmation_text(run.id),
            }
            for item in view.menu
        ],
    }
    return jsonify(RunSchema().dump(body)), status


@bp.put("/runs/<run_id>")
@runs_write_limit
@operation(
    scope=Scope.RUNS_WRITE,
    body=RunReplaceSchema,
    dotted_errors=True,
    max_body_bytes=RUN_BODY_LIMIT,
    responses={200: RunSchema, 201: RunSchema},
    errors=_WRITE_ERRORS,
    response_headers={201: {"Location": {"description": "URL of the new run", "schema": {"type": "string"}}}},
    tags=["runs"],
)
def put_run(run_id, body):
    """Create (201) or replace (200) a run with its whole graph; needs the `runs:write` scope."""
    run, created = runs.put_run(_actor(), run_id, body, now())
    response, status = _dump(runs.view_of(_actor(), run, now()), HTTPStatus.CREATED if created else HTTPStatus.OK)
    if created:
        response.headers["Location"] = url_for("api.get_run", run_id=run_id)
    return response, status


@bp.patch("/runs/<run_id>")
@runs_write_limit
@operation(
    scope=Scope.RUNS_WRITE,
    body=RunPatchSchema,
    dotted_errors=True,
    max_body_bytes=RUN_BODY_LIMIT,
    responses={200: RunSchema},
    errors=[*_WRITE_ERRORS, "not_found"],
    tags=["runs"],
)
def patch_run(run_id, body):
    """Change a run's status or end, update nodes, add nodes and edges; needs the `runs:write` scope."""
    return _dump(runs.view_of(_actor(), runs.patch_run(_actor(), run_id, body, now()), now()))


@bp.get("/runs")
@operation(
    scope=Scope.READ,
    query=RunListQuerySchema,
    responses={200: RunListSchema},
    errors=[*_AUTH_ERRORS, "validation_error"],
    tags=["runs"],
)
def list_runs(query):
    """List runs, latest first (`started_at` desc, then `id` desc), without their graphs."""
    status = query.get("status")
    items, next_cursor = runs.list_runs(
        _actor(),
        status=None if status in (None, "", "all") else status,
        agent=query.get("agent"),
        limit=query["limit"],
        cursor=query.get("cursor"),
    )
    return jsonify(RunListSchema().dump({"items": items, "next_cursor": next_cursor}))


@bp.get("/runs/<run_id>")
@operation(scope=Scope.READ, responses={200: RunSchema}, errors=[*_AUTH_ERRORS, "not_found"], tags=["runs"])
def get_run(run_id):
    """One run with its nodes, edges, the actions that target it, and the menu this caller gets."""
    return _dump(runs.get_run(_actor(), run_id, now()))
