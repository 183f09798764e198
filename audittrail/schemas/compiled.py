"""Compiled dumpers: a marshmallow schema's dump as one plain function, derived from its declared fields.

marshmallow dumps each field of each object through several method calls (serialize, get_value,
the accessor, _serialize); 50 actions of 36 fields make that the largest part of a list's
time. `dumper(ActionSchema)` reads the schema's own `dump_fields` once and builds a function
that does for each field what that field's `_serialize` does, for the field classes whose
dumping is known here exactly; any other field (or option: `dump_default`, dotted attributes,
`as_string`, key or value fields) is dumped by the field itself, and a schema with a `post_dump`
hook is dumped by the schema. The schema stays the one definition of the response: the
OpenAPI document is generated from it, and tests/unit/test_compiled_dumpers.py checks that
each compiled dumper gives what `Schema().dump` gives.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from marshmallow import Schema
from marshmallow import fields
from marshmallow.decorators import POST_DUMP
from marshmallow.decorators import PRE_DUMP
from marshmallow.utils import missing

from audittrail.schemas.custom_fields import UTCDateTime
from audittrail_evidence.canonical import api_time


def _same(value):
    return value


def _string(value):
    if value is None or type(value) is str:
        return value
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _integer(value):
    return None if value is None else int(value)


def _dict(value):
    return None if value is None else dict(value)


def _time(value):
    return None if value is None else api_time(value)


def _value_serializer(field: fields.Field) -> Callable | None:
    """What `field._serialize(value, …)` returns, as a function of the value; None when not known here."""
    kind = type(field)
    if kind is fields.String:
        return _string
    if kind is fields.Integer and not field.as_string:
        return _integer
    if kind in (fields.Boolean, fields.Raw):
        return _same
    if kind is fields.Dict and field.key_field is None and field.value_field is None:
        return _dict
    if kind is UTCDateTime:
        return _time
    if kind is fields.Nested:
        nested = _compile(field.schema)
        if field.many or field.schema.many:
            return lambda value: None if value is None else [nested(item) for item in value]
        return lambda value: None if value is None else nested(value)
    if kind is fields.List:
        inner = _value_serializer(field.inner)
        if inner is None:
            return None
        return lambda value: None if value is None else [inner(item) for item in value]
    return None


def _getter(key: str):
    # marshmallow's utils.get_value for a plain key: item access where the object has it, else the attribute.
    def get(obj):
        if type(obj) is dict:
            return obj.get(key, missing)
        if hasattr(obj, "__getitem__"):
            try:
                return obj[key]
            except (KeyError, IndexError, TypeError, AttributeError):
                pass
        return getattr(obj, key, missing)

    return get


def _field_dumper(name: str, field: fields.Field, schema: Schema):
    attribute = field.attribute or name
    serialize = _value_serializer(field)
    if serialize is None or field.dump_default is not missing or "." in attribute:
        # The field dumps itself, exactly as the schema would.
        return lambda obj: field.serialize(name, obj, accessor=schema.get_attribute)
    get = _getter(attribute)

    def dump_field(obj):
        value = get(obj)
        return missing if value is missing else serialize(value)

    return dump_field


def _compile(schema: Schema) -> Callable:
    if schema._hooks[POST_DUMP]:
        return schema.dump
    plan = [
        (field.data_key if field.data_key is not None else name, _field_dumper(name, field, schema))
        for name, field in schema.dump_fields.items()
    ]
    pre_dump = bool(schema._hooks[PRE_DUMP])

    def dump(obj):
        if pre_dump:
            obj = schema._invoke_dump_processors(PRE_DUMP, obj, many=False, original_data=obj)
        result = {}
        for key, dump_field in plan:
            value = dump_field(obj)
            if value is not missing:
                result[key] = value
        return result

    return dump


@cache
def dumper(schema_class: type[Schema]) -> Callable:
    """`schema_class().dump(obj)` for one object (not `many`), compiled once."""
    return _compile(schema_class())
