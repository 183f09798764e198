"""Marshmallow schemas: <Thing>Schema dumps, <Thing>…Schema with a verb loads. Unknown fields are refused."""

from __future__ import annotations

import json

from marshmallow import RAISE
from marshmallow import Schema
from marshmallow import ValidationError
from marshmallow import fields
from marshmallow import pre_dump
from marshmallow import validate
from marshmallow import validates_schema

from audittrail.domain import APPROVER_ROLE_CHOICES
from audittrail.domain import TIERS
from audittrail.domain import ActionStatus
from audittrail.domain import ActionType
from audittrail.domain import Capability
from audittrail.domain import EventType
from audittrail.domain import Mode
from audittrail.domain import Role
from audittrail.domain import Scope
from audittrail.domain import Transition
from audittrail.domain import UserKind
from audittrail.domain.policy import APPROVALS_REQUIRED_MAX
from audittrail.domain.policy import APPROVALS_REQUIRED_MIN
from audittrail.schemas.custom_fields import JsonObject
from audittrail.schemas.custom_fields import QueryInteger
from audittrail.schemas.custom_fields import StrictBoolean
from audittrail.schemas.custom_fields import StrictInteger
from audittrail.schemas.custom_fields import Text
from audittrail.schemas.custom_fields import UTCDateTime
from audittrail.schemas.custom_fields import printable

DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"
ACTION_TYPES = [t.value for t in ActionType]
MODES = [m.value for m in Mode]
STATUSES = [s.value for s in ActionStatus]
SCOPES = [s.value for s in Scope]
TRANSITIONS = [t.value for t in Transition]
ROLES = [r.value for r in Role]
APPROVER_ROLES = [r.value for r in APPROVER_ROLE_CHOICES]
KINDS = [k.value for k in UserKind]
EVENT_TYPES = [t.value for t in EventType]
CAPABILITIES = [c.value for c in Capability]


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


# ----------------------------------------------------------------------------- requests


class ActionProposeSchema(StrictSchema):
    action_type = fields.String(required=True, validate=validate.OneOf(ACTION_TYPES))
    target_ref = fields.String(
        required=True,
        validate=[validate.Length(1, 200), printable],
        metadata={"description": "Printable characters only (no control or format characters)."},
    )
    reason = Text(required=True, validate=validate.Length(1, 2000))
    mode = fields.String(load_default=Mode.SUPERVISED.value, validate=validate.OneOf(MODES))
    payload = JsonObject(load_default=dict, metadata={"description": "At most 16 KiB once serialized."})
    ttl_seconds = StrictInteger(
        validate=validate.Range(1, 604800),
        # The document's minimum and default come from the app's settings (audittrail.api.openapi).
        metadata={"description": "Approval window in seconds (default 3600; the lowest accepted is configurable)."},
    )
    tier = StrictInteger(
        validate=validate.OneOf([1, 2, 3]), metadata={"description": "If given, must equal the derived tier."}
    )


class ActionApproveSchema(StrictSchema):
    note = fields.String(allow_none=True, validate=validate.Length(max=2000))
    confirmation = fields.String(allow_none=True, validate=validate.Length(max=200))


class ActionRejectSchema(StrictSchema):
    note = fields.String(allow_none=True, validate=validate.Length(max=2000))


class ActionMarkExecutedSchema(StrictSchema):
    outcome = JsonObject(allow_none=True)
    digest = fields.String(
        allow_none=True,
        validate=validate.Regexp(DIGEST_PATTERN, error="Must be sha256: followed by 64 lowercase hex characters."),
        metadata={"description": "The digest the runner verified in the approval receipt; 409 if it is not this one."},
    )


class ActionListQuerySchema(StrictSchema):
    status = fields.String(validate=validate.OneOf([*STATUSES, "", "all"]))
    limit = QueryInteger(load_default=50, validate=validate.Range(1, 200))
    cursor = fields.String(validate=validate.Length(1, 500))


MAX_SEQ = 2**31 - 1


class ActionDetailQuerySchema(StrictSchema):
    """live.md §4: `?wait=&version=` turns the detail into a long poll."""

    wait = QueryInteger(
        validate=validate.Range(1, 60),
        metadata={"description": "Seconds to wait for a version greater than `version` (needs `version`)."},
    )
    version = QueryInteger(validate=validate.Range(0, MAX_SEQ), metadata={"description": "The version you have."})

    @validates_schema
    def _wait_needs_version(self, data, **kwargs):
        if "wait" in data and "version" not in data:
            raise ValidationError("Required with `wait`.", field_name="version")


class FeedQuerySchema(StrictSchema):
    """live.md §2–3: GET /events (JSON pages, or the stream with Accept: text/event-stream)."""

    after = QueryInteger(
        validate=validate.Range(0, MAX_SEQ),
        metadata={"description": "Start after this seq (default 0; the stream: from now on, or Last-Event-ID)."},
    )
    limit = QueryInteger(load_default=100, validate=validate.Range(1, 500))
    action_id = fields.String(validate=validate.Length(1, 64), metadata={"description": "Only this action's events."})


class SummaryQuerySchema(StrictSchema):
    tz = fields.String(load_default="UTC", validate=validate.Length(1, 64))


class LoginSchema(StrictSchema):
    email = fields.String(required=True, validate=validate.Length(1, 320))
    password = fields.String(required=True, validate=validate.Length(1, 1000))


class ApiKeyCreateSchema(StrictSchema):
    name = Text(required=True, validate=validate.Length(1, 200))
    scopes = fields.List(
        fields.String(validate=validate.OneOf(SCOPES)),
        validate=validate.Length(min=1),
        load_default=None,
        metadata={"description": "Default: the four `actions:*` scopes; `runs:write` is given only by name."},
    )


class MemberUpdateSchema(StrictSchema):
    role = fields.String(required=True, validate=validate.OneOf(ROLES))


class TierRuleSchema(StrictSchema):
    """The rule of one tier, as sent and as shown."""

    approvals_required = StrictInteger(
        required=True, validate=validate.Range(APPROVALS_REQUIRED_MIN, APPROVALS_REQUIRED_MAX)
    )
    approver_roles = fields.List(
        fields.String(validate=validate.OneOf(APPROVER_ROLES)), required=True, validate=validate.Length(min=1)
    )
    allow_self_approval = StrictBoolean(
        required=True, metadata={"description": "Tier 3 always needs a second person: must be false there."}
    )


PolicyTiersSchema = StrictSchema.from_dict(
    {str(tier): fields.Nested(TierRuleSchema, required=True) for tier in TIERS}, name="PolicyTiersSchema"
)


class PolicyReplaceSchema(StrictSchema):
    tiers = fields.Nested(PolicyTiersSchema, required=True)
    # What GET answers may be sent back as it is; the server sets these itself.
    updated_at = fields.Raw(allow_none=True, metadata={"description": "Ignored: set by the server."})
    updated_by = fields.Raw(allow_none=True, metadata={"description": "Ignored: set by the server."})


# ----------------------------------------------------------------------------- responses


class UserRefSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)


class ApprovalSchema(Schema):
    user = fields.Nested(UserRefSchema, required=True)
    at = UTCDateTime(required=True)
    note = fields.String(required=True, allow_none=True)


class ActionSchema(Schema):
    id = fields.String(required=True)
    workspace_id = fields.String(required=True)
    tier = fields.Integer(required=True)
    action_type = fields.String(required=True, validate=validate.OneOf(ACTION_TYPES))
    target_ref = fields.String(required=True)
    reason = fields.String(required=True)
    mode = fields.String(required=True, validate=validate.OneOf(MODES))
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    payload = fields.Dict(required=True)
    outcome = fields.Dict(required=True, allow_none=True)
    approver_note = fields.String(required=True, allow_none=True)
    rejection_note = fields.String(required=True, allow_none=True)
    ttl_seconds = fields.Integer(required=True)
    proposed_at = UTCDateTime(required=True)
    expires_at = UTCDateTime(required=True)
    approved_at = UTCDateTime(required=True, allow_none=True)
    rejected_at = UTCDateTime(required=True, allow_none=True)
    executed_at = UTCDateTime(required=True, allow_none=True)
    expired_at = UTCDateTime(required=True, allow_none=True)
    proposed_by = fields.Nested(UserRefSchema, required=True)
    approved_by = fields.Nested(UserRefSchema, required=True, allow_none=True)
    rejected_by = fields.Nested(UserRefSchema, required=True, allow_none=True)
    executed_by = fields.Nested(UserRefSchema, required=True, allow_none=True)
    requires_confirmation = fields.Boolean(required=True)
    requires_second_approver = fields.Boolean(required=True)
    confirmation_text = fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "Tier 3: the exact text to send as `confirmation` (first 8 characters of target_ref)."
        },
    )
    policy = fields.Nested(
        TierRuleSchema, required=True, metadata={"description": "The rule of its tier when it was proposed."}
    )
    approvals_required = fields.Integer(required=True)
    approvals_received = fields.Integer(required=True)
    approvals = fields.List(
        fields.Nested(ApprovalSchema), required=True, metadata={"description": "Every approval, oldest first."}
    )
    allowed_transitions = fields.List(fields.String(validate=validate.OneOf(TRANSITIONS)), required=True)
    version = fields.Integer(
        required=True,
        metadata={"description": "The number of the action's events; the ETag, and what If-Match names."},
    )
    # evidence.md §2, §3
    digest = fields.String(
        required=True,
        metadata={"description": "sha256: and the hex SHA-256 of the canonical JSON of the immutable fields."},
    )
    approval_receipt = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "A compact EdDSA JWS of the approval, once approved (kept after execution)."},
    )
    run_id = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "The run whose id, or one of whose node refs, is target_ref (runs.md §2)."},
    )


class EventActorSchema(Schema):
    id = fields.String(required=True, allow_none=True)
    name = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(["user", "api_key", "system"]))
    api_key_id = fields.String(required=True, allow_none=True)


class EventSchema(Schema):
    seq = fields.Integer(required=True)
    type = fields.String(required=True, validate=validate.OneOf(EVENT_TYPES))
    actor = fields.Nested(EventActorSchema, required=True)
    at = UTCDateTime(required=True)
    request_id = fields.String(required=True, allow_none=True)
    data = fields.Dict(required=True)

    @pre_dump
    def _from_event(self, event, **kwargs) -> dict:
        """An AuditEvent row as the shape above (the actor is spread over four columns)."""
        return event_fields(event)


def event_fields(event) -> dict:
    """An AuditEvent row as EventSchema shows it."""
    return {
        "seq": event.seq,
        "type": event.type,
        "actor": {
            "id": event.actor_user_id,
            "name": event.actor_name,
            "kind": event.actor_kind,
            "api_key_id": event.actor_api_key_id,
        },
        "at": event.at,
        "request_id": event.request_id,
        "data": json.loads(event.data),
    }


class FeedItemSchema(EventSchema):
    action_id = fields.String(required=True, allow_none=True)
    action_version = fields.Integer(
        required=True, allow_none=True, metadata={"description": "The action's version right after this event."}
    )
    action = fields.Nested(
        ActionSchema,
        required=True,
        allow_none=True,
        metadata={"description": "The action as it is now; null for a workspace event."},
    )

    @pre_dump
    def _from_event(self, item, **kwargs) -> dict:
        """A FeedItem: the event's fields, then its action."""
        return {
            **event_fields(item.event),
            "action_id": item.event.action_id,
            "action_version": item.action_version,
            "action": item.action,
        }


class FeedSchema(Schema):
    items = fields.List(fields.Nested(FeedItemSchema), required=True)
    next_after = fields.Integer(required=True, metadata={"description": "The seq of the last item, or `after`."})


class ActionDetailSchema(ActionSchema):
    events = fields.List(fields.Nested(EventSchema), required=True)


class ActionListSchema(Schema):
    items = fields.List(fields.Nested(ActionSchema), required=True)
    next_cursor = fields.String(required=True, allow_none=True)


class StatusCountsSchema(Schema):
    proposed = fields.Integer(required=True)
    approved = fields.Integer(required=True)
    executed = fields.Integer(required=True)
    rejected = fields.Integer(required=True)
    expired = fields.Integer(required=True)
    all = fields.Integer(required=True)


class SummarySchema(Schema):
    proposed = fields.Integer(required=True)
    pending_approval = fields.Integer(required=True)
    executed_today = fields.Integer(required=True)
    rejected_today = fields.Integer(required=True)
    by_status = fields.Nested(StatusCountsSchema, required=True)
    tz = fields.String(required=True)
    as_of = UTCDateTime(required=True)


class ApiKeySchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    prefix = fields.String(required=True)
    scopes = fields.List(fields.String(validate=validate.OneOf(SCOPES)), required=True)
    created_at = UTCDateTime(required=True)
    last_used_at = UTCDateTime(required=True, allow_none=True)
    revoked_at = UTCDateTime(required=True, allow_none=True)


class ApiKeyCreatedSchema(ApiKeySchema):
    key = fields.String(required=True, metadata={"description": "The secret, shown this once."})


class ApiKeyListSchema(Schema):
    items = fields.List(fields.Nested(ApiKeySchema), required=True)


class UserSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    email = fields.String(required=True)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))


class MemberSchema(UserSchema):
    owner = fields.Nested(UserRefSchema, required=True, allow_none=True)


class MemberListSchema(Schema):
    items = fields.List(fields.Nested(MemberSchema), required=True)


class PolicySchema(Schema):
    tiers = fields.Dict(
        keys=fields.String(validate=validate.OneOf([str(tier) for tier in TIERS])),
        values=fields.Nested(TierRuleSchema),
        required=True,
    )
    updated_at = UTCDateTime(required=True, allow_none=True)
    updated_by = fields.Nested(UserRefSchema, required=True, allow_none=True)

    @pre_dump
    def _from_document(self, document, **kwargs) -> dict:
        """A PolicyDocument as the shape above (tiers by their number as a string)."""
        return {
            "tiers": {str(tier): rule.as_dict() for tier, rule in document.tiers.items()},
            "updated_at": document.updated_at,
            "updated_by": document.updated_by,
        }


class WorkspaceSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)


class MeSchema(Schema):
    user = fields.Nested(UserSchema, required=True)
    workspace = fields.Nested(WorkspaceSchema, required=True)
    capabilities = fields.List(
        fields.String(validate=validate.OneOf(CAPABILITIES)),
        required=True,
        metadata={"description": "What these credentials may do: the role's capabilities within the key's scopes."},
    )


class TokenSchema(MeSchema):
    access_token = fields.String(required=True)


# ----------------------------------------------------------------------------- evidence (evidence.md)


class AuditExportQuerySchema(StrictSchema):
    after = QueryInteger(load_default=0, validate=validate.Range(min=0), metadata={"description": "Exclusive."})
    limit = QueryInteger(
        load_default=100, validate=validate.Range(1, 1000), metadata={"description": "JSON pages only."}
    )


class AuditExportEventSchema(Schema):
    """A stored event: every hashed field as hashed, and the links; the chain can be recomputed from these."""

    workspace_id = fields.String(required=True)
    seq = fields.Integer(required=True)
    action_id = fields.String(required=True, allow_none=True)
    type = fields.String(required=True)
    actor_kind = fields.String(required=True)
    actor_user_id = fields.String(required=True, allow_none=True)
    actor_api_key_id = fields.String(required=True, allow_none=True)
    actor_name = fields.String(required=True)
    at = fields.String(required=True, metadata={"description": "As hashed: RFC 3339 UTC to the microsecond."})
    request_id = fields.String(required=True, allow_none=True)
    data = fields.String(required=True, metadata={"description": "The event's data as its stored canonical JSON text."})
    prev_hash = fields.String(required=True)
    hash = fields.String(required=True)


class AuditExportPageSchema(Schema):
    items = fields.List(fields.Nested(AuditExportEventSchema), required=True)
    next_after = fields.Integer(required=True)


class CheckpointListQuerySchema(StrictSchema):
    limit = QueryInteger(load_default=50, validate=validate.Range(1, 200))


class CheckpointSchema(Schema):
    checkpoint = fields.String(required=True, attribute="token", metadata={"description": "The compact JWS."})
    seq = fields.Integer(required=True)
    hash = fields.String(required=True)
    at = UTCDateTime(required=True, attribute="created_at")


class CheckpointListSchema(Schema):
    items = fields.List(fields.Nested(CheckpointSchema), required=True)


class JwkSchema(Schema):
    kty = fields.String(required=True, validate=validate.OneOf(["OKP"]))
    crv = fields.String(required=True, validate=validate.OneOf(["Ed25519"]))
    x = fields.String(required=True, metadata={"description": "The raw public key, base64url."})
    kid = fields.String(required=True, metadata={"description": "First 16 hex characters of its SHA-256."})
    alg = fields.String(required=True, validate=validate.OneOf(["EdDSA"]))
    use = fields.String(required=True, validate=validate.OneOf(["sig"]))


class JwkSetSchema(Schema):
    keys = fields.List(fields.Nested(JwkSchema), required=True, metadata={"description": "The current key first."})


class ErrorBodySchema(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True)
    details = fields.Dict(required=True)


class ErrorSchema(Schema):
    error = fields.Nested(ErrorBodySchema, required=True)


class HealthSchema(Schema):
    status = fields.String(required=True)
    checks = fields.Dict(required=True)


# Runs and their graphs (runs.md) live in their own module; it builds on StrictSchema above.
from audittrail.schemas.runs import RunListQuerySchema  # noqa: E402,F401
from audittrail.schemas.runs import RunListSchema  # noqa: E402,F401
from audittrail.schemas.runs import RunPatchSchema  # noqa: E402,F401
from audittrail.schemas.runs import RunReplaceSchema  # noqa: E402,F401
from audittrail.schemas.runs import RunSchema  # noqa: E402,F401

# Webhooks (webhooks.md), likewise.
from audittrail.schemas.webhooks import DeliveryListQuerySchema  # noqa: E402,F401
from audittrail.schemas.webhooks import DeliveryListSchema  # noqa: E402,F401
from audittrail.schemas.webhooks import DeliverySchema  # noqa: E402,F401
from audittrail.schemas.webhooks import WebhookCreatedSchema  # noqa: E402,F401
from audittrail.schemas.webhooks import WebhookCreateSchema  # noqa: E402,F401
from audittrail.schemas.webhooks import WebhookListSchema  # noqa: E402,F401
from audittrail.schemas.webhooks import WebhookSchema  # noqa: E402,F401
