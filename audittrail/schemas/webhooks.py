"""Schemas of webhooks and their deliveries (webhooks.md §1). Re-exported by audittrail.schemas."""

from __future__ import annotations

from marshmallow import Schema
from marshmallow import fields
from marshmallow import validate

from audittrail.domain.webhooks import MAX_DELIVERIES_PAGE
from audittrail.domain.webhooks import MAX_DESCRIPTION_LENGTH
from audittrail.domain.webhooks import MAX_URL_LENGTH
from audittrail.domain.webhooks import WEBHOOK_EVENT_TYPES
from audittrail.domain.webhooks import DeliveryState
from audittrail.domain.webhooks import WebhookFormat
from audittrail.schemas import StrictSchema
from audittrail.schemas.custom_fields import QueryInteger
from audittrail.schemas.custom_fields import UTCDateTime

FORMATS = [item.value for item in WebhookFormat]
DELIVERY_STATES = [item.value for item in DeliveryState]


class WebhookCreateSchema(StrictSchema):
    url = fields.String(
        required=True,
        validate=validate.Length(1, MAX_URL_LENGTH),
        metadata={"description": "http or https (https only in production, to a public address)."},
    )
    description = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=MAX_DESCRIPTION_LENGTH)
    )
    event_types = fields.List(
        fields.String(validate=validate.OneOf(WEBHOOK_EVENT_TYPES)),
        validate=validate.Length(min=1),
        load_default=None,
        metadata={"description": "Default: every event type."},
    )
    format = fields.String(load_default=WebhookFormat.STANDARD.value, validate=validate.OneOf(FORMATS))


class WebhookSchema(Schema):
    id = fields.String(required=True)
    url = fields.String(required=True)
    description = fields.String(required=True, allow_none=True)
    event_types = fields.List(fields.String(validate=validate.OneOf(WEBHOOK_EVENT_TYPES)), required=True)
    format = fields.String(required=True, validate=validate.OneOf(FORMATS))
    created_at = UTCDateTime(required=True)
    disabled_at = UTCDateTime(required=True, allow_none=True)
    disabled_reason = fields.String(required=True, allow_none=True)


class WebhookCreatedSchema(WebhookSchema):
    secret = fields.String(
        required=True, metadata={"description": "`whsec_` + base64 of 32 bytes: the signing key, shown this once."}
    )


class WebhookListSchema(Schema):
    items = fields.List(fields.Nested(WebhookSchema), required=True)


class DeliverySchema(Schema):
    id = fields.String(required=True, metadata={"description": "The `webhook-id` header, the same on every attempt."})
    event_seq = fields.Integer(required=True, allow_none=True, metadata={"description": "Null for a ping."})
    type = fields.String(required=True)
    state = fields.String(required=True, validate=validate.OneOf(DELIVERY_STATES))
    attempts = fields.Integer(required=True)
    last_status_code = fields.Integer(required=True, allow_none=True)
    last_error = fields.String(required=True, allow_none=True)
    last_attempt_at = UTCDateTime(required=True, allow_none=True)
    next_attempt_at = UTCDateTime(required=True, allow_none=True)


class DeliveryListSchema(Schema):
    items = fields.List(fields.Nested(DeliverySchema), required=True)


class DeliveryListQuerySchema(StrictSchema):
    limit = QueryInteger(load_default=20, validate=validate.Range(1, MAX_DELIVERIES_PAGE))


class PingSchema(Schema):
    delivery = fields.Nested(DeliverySchema, required=True)
