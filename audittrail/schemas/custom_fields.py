"""Custom marshmallow fields."""

from __future__ import annotations

import json

from marshmallow import ValidationError
from marshmallow import fields

from audittrail_evidence.canonical import api_time

MAX_JSON_BYTES = 16 * 1024


class UTCDateTime(fields.Field):
    """RFC 3339 UTC with `Z`, e.g. 2026-11-30T01:00:00Z (dump only)."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        # The same function the action digest uses: a served time and a hashed one never differ.
        return api_time(value)


class StrictInteger(fields.Integer):
    """An integer that refuses booleans, floats and numeric strings in a JSON body."""

    def __init__(self, **kwargs):
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            raise ValidationError("Not a valid integer.")
        return super()._deserialize(value, attr, data, **kwargs)


class StrictBoolean(fields.Boolean):
    """true or false in a JSON body; no strings or numbers standing for them."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise ValidationError("Not a valid boolean.")
        return value


class JsonObject(fields.Dict):
    """A JSON object whose compact UTF-8 encoding is at most 16 KiB."""

    def _deserialize(self, value, attr, data, **kwargs):
        result = super()._deserialize(value, attr, data, **kwargs)
        encoded = json.dumps(result, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass")
        if len(encoded) > MAX_JSON_BYTES:
            raise ValidationError("Must be at most 16 KiB once serialized.")
        return result


class Text(fields.String):
    """A string that must hold something other than white space."""

    def __init__(self, **kwargs):
        # Documents the rule: JSON Schema patterns are unanchored, so this means "some non-space".
        kwargs["metadata"] = {"pattern": r"\S", **kwargs.get("metadata", {})}
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        result = super()._deserialize(value, attr, data, **kwargs)
        if not result.strip():
            raise ValidationError("Must not be blank.")
        return result


def printable(value: str) -> None:
    if not value.isprintable():
        raise ValidationError("Must contain printable characters only.")


class QueryInteger(fields.Integer):
    """An integer in a query string: ASCII digits only (no sign, space or full-width digit)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not value.isascii() or not value.isdigit() or len(value) > 9:
            raise ValidationError("Not a valid integer.")
        return super()._deserialize(value, attr, data, **kwargs)
