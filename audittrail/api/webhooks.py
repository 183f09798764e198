"""Webhooks (webhooks.md §1): admins manage them with a JWT; the worker delivers them."""

from __future__ import annotations

from http import HTTPStatus

from flask import current_app
from flask import jsonify

from audittrail.api import bp
from audittrail.api.common import operation
from audittrail.auth import current_principal
from audittrail.auth import now
from audittrail.domain import Capability
from audittrail.schemas import DeliveryListQuerySchema
from audittrail.schemas import DeliveryListSchema
from audittrail.schemas import DeliverySchema
from audittrail.schemas import WebhookCreatedSchema
from audittrail.schemas import WebhookCreateSchema
from audittrail.schemas import WebhookListSchema
from audittrail.schemas import WebhookSchema
from audittrail.services import webhooks
from audittrail.webhook_worker import url_rules

_READ_ERRORS = ["unauthorized", "forbidden"]
_WRITE_ERRORS = ["unauthorized", "forbidden", "csrf_failed"]
_ADMIN = dict(auth="jwt", capability=Capability.MANAGE_WEBHOOKS, tags=["webhooks"])


@bp.get("/webhooks")
@operation(responses={200: WebhookListSchema}, errors=_READ_ERRORS, **_ADMIN)
def list_webhooks():
    """The workspace's webhooks (admins, with a JWT); no secrets."""
    items = webhooks.list_webhooks(current_principal().actor)
    return jsonify(WebhookListSchema().dump({"items": items}))


@bp.post("/webhooks")
@operation(
    body=WebhookCreateSchema,
    responses={201: WebhookCreatedSchema},
    errors=[*_WRITE_ERRORS, "malformed_json", "validation_error"],
    carries_secret=True,
    **_ADMIN,
)
def create_webhook(body):
    """Create a webhook; its signing `secret` is in this answer only."""
    webhook, secret = webhooks.create_webhook(
        current_principal().actor,
        body["url"],
        now(),
        url_rules(current_app.config),
        description=body.get("description"),
        event_types=body.get("event_types"),
        format=body["format"],
    )
    payload = WebhookSchema().dump(webhook)
    payload["secret"] = secret
    return jsonify(payload), HTTPStatus.CREATED


@bp.get("/webhooks/<webhook_id>")
@operation(responses={200: WebhookSchema}, errors=[*_READ_ERRORS, "not_found"], **_ADMIN)
def get_webhook(webhook_id):
    """One webhook."""
    return jsonify(WebhookSchema().dump(webhooks.get_webhook(current_principal().actor, webhook_id)))


@bp.delete("/webhooks/<webhook_id>")
@operation(responses={204: None}, errors=[*_WRITE_ERRORS, "not_found"], **_ADMIN)
def delete_webhook(webhook_id):
    """Delete a webhook: nothing more is delivered to it."""
    webhooks.delete_webhook(current_principal().actor, webhook_id, now())
    return current_app.response_class(status=HTTPStatus.NO_CONTENT)


@bp.post("/webhooks/<webhook_id>/ping")
@operation(responses={202: DeliverySchema}, errors=[*_WRITE_ERRORS, "not_found"], **_ADMIN)
def ping_webhook(webhook_id):
    """Queue a `webhook.ping` delivery; the answer is the queued delivery."""
    delivery = webhooks.ping_webhook(current_principal().actor, webhook_id, now())
    return jsonify(DeliverySchema().dump(delivery)), HTTPStatus.ACCEPTED


@bp.post("/webhooks/<webhook_id>/enable")
@operation(responses={200: WebhookSchema}, errors=[*_WRITE_ERRORS, "not_found"], **_ADMIN)
def enable_webhook(webhook_id):
    """Re-enable a disabled webhook: it receives the events committed from now on."""
    webhook = webhooks.enable_webhook(current_principal().actor, webhook_id, now())
    return jsonify(WebhookSchema().dump(webhook))


@bp.get("/webhooks/<webhook_id>/deliveries")
@operation(
    query=DeliveryListQuerySchema,
    responses={200: DeliveryListSchema},
    errors=[*_READ_ERRORS, "not_found", "validation_error"],
    **_ADMIN,
)
def list_deliveries(webhook_id, query):
    """A webhook's deliveries, the most recently created first."""
    items = webhooks.list_deliveries(current_principal().actor, webhook_id, query["limit"])
    return jsonify(DeliveryListSchema().dump({"items": items}))
