"""Schemas of runs and their graphs (runs.md §1). Re-exported by audittrail.schemas."""

from __future__ import annotations

from marshmallow import Schema
from marshmallow import fields
from marshmallow import validate

from audittrail.domain import ActionStatus
from audittrail.domain import ActionType
from audittrail.domain.runs import MAX_EDGES
from audittrail.domain.runs import MAX_NODE_ID_LENGTH
from audittrail.domain.runs import MAX_NODES
from audittrail.domain.runs import MAX_REF_LENGTH
from audittrail.domain.runs import MenuTarget
from audittrail.domain.runs import NodeKind
from audittrail.domain.runs import NodeStatus
from audittrail.domain.runs import RunStatus
from audittrail.schemas import StrictSchema
from audittrail.schemas.custom_fields import BoundedJsonObject
from audittrail.schemas.custom_fields import CappedList
from audittrail.schemas.custom_fields import QueryInteger
from audittrail.schemas.custom_fields import RFC3339DateTime
from audittrail.schemas.custom_fields import UTCDateTime
from audittrail.schemas.custom_fields import printable

RUN_STATUSES = [status.value for status in RunStatus]
NODE_KINDS = [kind.value for kind in NodeKind]
NODE_STATUSES = [status.value for status in NodeStatus]
_NODE_ID = dict(validate=[validate.Length(1, MAX_NODE_ID_LENGTH), printable])
_TIME = {"description": "RFC 3339 with an offset (`Z` or `+hh:mm`); kept to the second, in UTC."}

# ----------------------------------------------------------------------------- requests


class RunNodeCreateSchema(StrictSchema):
    id = fields.String(required=True, **_NODE_ID, metadata={"description": "Unique within the run."})
    kind = fields.String(required=True, validate=validate.OneOf(NODE_KINDS))
    label = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))
    status = fields.String(required=True, validate=validate.OneOf(NODE_STATUSES))
    started_at = RFC3339DateTime(load_default=None, allow_none=True, metadata=_TIME)
    ended_at = RFC3339DateTime(load_default=None, allow_none=True, metadata=_TIME)
    ref = fields.String(
        load_default=None,
        allow_none=True,
        validate=[validate.Length(1, MAX_REF_LENGTH), printable],
        metadata={"description": "What the node stands for elsewhere, e.g. a trace id."},
    )
    attrs = BoundedJsonObject(load_default=dict, metadata={"description": "At most 8 KiB once serialized."})


class RunEdgeSchema(StrictSchema):
    source = fields.String(required=True, data_key="from", attribute="from", **_NODE_ID)
    target = fields.String(required=True, data_key="to", attribute="to", **_NODE_ID)


class RunReplaceSchema(StrictSchema):
    id = fields.String(metadata={"description": "Optional: if given, it must equal the id in the path."})
    agent = fields.String(required=True, validate=[validate.Length(1, 100), printable])
    title = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))
    status = fields.String(required=True, validate=validate.OneOf(RUN_STATUSES))
    started_at = RFC3339DateTime(required=True, metadata=_TIME)
    ended_at = RFC3339DateTime(load_default=None, allow_none=True, metadata=_TIME)
    nodes = CappedList(fields.Nested(RunNodeCreateSchema), MAX_NODES, load_default=list)
    edges = CappedList(fields.Nested(RunEdgeSchema), MAX_EDGES, load_default=list)


class RunNodeUpdateSchema(StrictSchema):
    id = fields.String(required=True, **_NODE_ID, metadata={"description": "An existing node of the run."})
    status = fields.String(validate=validate.OneOf(NODE_STATUSES))
    ended_at = RFC3339DateTime(allow_none=True, metadata=_TIME)
    attrs = BoundedJsonObject(metadata={"description": "Replaces the node's attrs; at most 8 KiB."})


class RunPatchSchema(StrictSchema):
    status = fields.String(
        validate=validate.OneOf(RUN_STATUSES),
        metadata={"description": "Set only when sent: a node that fails never changes the run's status."},
    )
    ended_at = RFC3339DateTime(allow_none=True, metadata=_TIME)
    nodes = CappedList(fields.Nested(RunNodeUpdateSchema), MAX_NODES)
    add_nodes = CappedList(fields.Nested(RunNodeCreateSchema), MAX_NODES)
    add_edges = CappedList(fields.Nested(RunEdgeSchema), MAX_EDGES)


class RunListQuerySchema(StrictSchema):
    status = fields.String(validate=validate.OneOf([*RUN_STATUSES, "", "all"]))
    agent = fields.String(validate=[validate.Length(1, 100), printable])
    limit = QueryInteger(load_default=50, validate=validate.Range(1, 200))
    cursor = fields.String(validate=validate.Length(1, 500))


# ----------------------------------------------------------------------------- responses


class RunNodeSchema(Schema):
    id = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(NODE_KINDS))
    label = fields.String(required=True, allow_none=True)
    status = fields.String(required=True, validate=validate.OneOf(NODE_STATUSES))
    started_at = fields.String(required=True, allow_none=True, metadata={"format": "date-time"})
    ended_at = fields.String(required=True, allow_none=True, metadata={"format": "date-time"})
    ref = fields.String(required=True, allow_none=True)
    attrs = fields.Dict(required=True)


class RunEdgeOutSchema(Schema):
    source = fields.String(required=True, data_key="from", attribute="from")
    target = fields.String(required=True, data_key="to", attribute="to")


class RunActionSchema(Schema):
    id = fields.String(required=True)
    action_type = fields.String(required=True, validate=validate.OneOf([t.value for t in ActionType]))
    tier = fields.Integer(required=True)
    status = fields.String(required=True, validate=validate.OneOf([s.value for s in ActionStatus]))
    target_ref = fields.String(required=True)
    proposed_at = UTCDateTime(required=True)


class RunMenuItemSchema(Schema):
    action_type = fields.String(required=True, validate=validate.OneOf([t.value for t in ActionType]))
    tier = fields.Integer(required=True)
    target = fields.String(
        required=True,
        validate=validate.OneOf([target.value for target in MenuTarget]),
        metadata={"description": "`node`: the node's `ref`, or the run id when it has none; `run`: the run id."},
    )
    confirmation_text = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "Tier 3 on the run: what the proposer types (the run id's first 8 characters)."},
    )


class RunSummarySchema(Schema):
    id = fields.String(required=True)
    agent = fields.String(required=True)
    title = fields.String(required=True, allow_none=True)
    status = fields.String(required=True, validate=validate.OneOf(RUN_STATUSES))
    started_at = UTCDateTime(required=True)
    ended_at = UTCDateTime(required=True, allow_none=True)
    node_count = fields.Integer(required=True)
    edge_count = fields.Integer(required=True)
    updated_at = UTCDateTime(required=True)


class RunSchema(RunSummarySchema):
    nodes = fields.List(fields.Nested(RunNodeSchema), required=True)
    edges = fields.List(fields.Nested(RunEdgeOutSchema), required=True)
    actions = fields.List(
        fields.Nested(RunActionSchema),
        required=True,
        metadata={"description": "Actions whose target_ref is the run id or one of its node refs, newest first."},
    )
    menu = fields.List(
        fields.Nested(RunMenuItemSchema),
        required=True,
        metadata={"description": "What the caller may propose from a node of this run (empty: no menu)."},
    )


class RunListSchema(Schema):
    items = fields.List(fields.Nested(RunSummarySchema), required=True)
    next_cursor = fields.String(required=True, allow_none=True)
