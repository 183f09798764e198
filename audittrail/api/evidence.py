"""Signed evidence (evidence.md): the signing keys, the audit export, checkpoints."""

from __future__ import annotations

import json
from http import HTTPStatus

from flask import Response
from flask import jsonify
from flask import request
from flask import stream_with_context

from audittrail.api import bp
from audittrail.api.common import operation
from audittrail.auth import current_principal
from audittrail.auth import now
from audittrail.domain import Scope
from audittrail.schemas import AuditExportEventSchema
from audittrail.schemas import AuditExportPageSchema
from audittrail.schemas import AuditExportQuerySchema
from audittrail.schemas import CheckpointListQuerySchema
from audittrail.schemas import CheckpointListSchema
from audittrail.schemas import CheckpointSchema
from audittrail.schemas import JwkSetSchema
from audittrail.services import audit_export
from audittrail.services import checkpoints
from audittrail.signing import current_keyring

NDJSON = "application/x-ndjson"
_AUTH_ERRORS = ["unauthorized", "forbidden", "csrf_failed"]
_ACCEPT_HEADER = {
    "Accept": {
        "description": f"`{NDJSON}` streams every event after `after` up to the head, one per line.",
        "schema": {"type": "string"},
        "required": False,
    }
}


@bp.get("/signing-keys")
@operation(auth="none", responses={200: JwkSetSchema}, tags=["evidence"])
def signing_keys():
    """The public keys that sign receipts and checkpoints, as a JWK Set (the current key first)."""
    return jsonify(JwkSetSchema().dump(current_keyring().jwks()))


def _ndjson_lines(batches):
    for items in batches:
        # One chunk per batch: a write per line would cost a system call per event.
        yield "".join(json.dumps(item, ensure_ascii=False, separators=(",", ":")) + "\n" for item in items)


@bp.get("/audit/events")
@operation(
    scope=Scope.AUDIT_READ,
    query=AuditExportQuerySchema,
    responses={200: AuditExportPageSchema},
    response_content={200: {NDJSON: {"schema": AuditExportEventSchema}}},
    headers=_ACCEPT_HEADER,
    errors=[*_AUTH_ERRORS, "validation_error"],
    tags=["evidence"],
)
def export_audit_events(query):
    """The audit export: stored events after `after`, as JSON pages or (Accept: NDJSON) one stream to the head."""
    actor = current_principal().actor
    if request.accept_mimetypes.best_match(["application/json", NDJSON], default="application/json") == NDJSON:
        batches = audit_export.export_stream(actor, after=query["after"])
        return Response(stream_with_context(_ndjson_lines(batches)), mimetype=NDJSON)
    page = audit_export.export_page(actor, after=query["after"], limit=query["limit"])
    return jsonify(AuditExportPageSchema().dump(page))


@bp.post("/audit/checkpoints")
@operation(
    scope=Scope.AUDIT_READ,
    responses={201: CheckpointSchema},
    errors=[*_AUTH_ERRORS, "empty_chain"],
    tags=["evidence"],
)
def create_checkpoint():
    """Sign and store the head of your workspace's audit chain (admins)."""
    checkpoint = checkpoints.make_checkpoint(current_principal().actor, current_keyring(), now())
    return jsonify(CheckpointSchema().dump(checkpoint)), HTTPStatus.CREATED


@bp.get("/audit/checkpoints")
@operation(
    scope=Scope.AUDIT_READ,
    query=CheckpointListQuerySchema,
    responses={200: CheckpointListSchema},
    errors=[*_AUTH_ERRORS, "validation_error"],
    tags=["evidence"],
)
def list_checkpoints(query):
    """The stored checkpoints of your workspace, newest first."""
    items = checkpoints.list_checkpoints(current_principal().actor, limit=query["limit"])
    return jsonify(CheckpointListSchema().dump({"items": items}))
