"""Custom marshmallow fields."""

from __future__ import annotations

import json
from datetime import UTC
from datetime import datetime
from functools import lru_cache

from marshmallow import ValidationError
from marshmallow import fields
from marshmallow import validate

from audittrail.domain.text import blank_ranges
from audittrail.domain.text import code_point_ranges
from audittrail.domain.text import is_blank
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
    """A string that must hold something a person can read (see audittrail.domain.text)."""

    def _deserialize(self, value, attr, data, **kwargs):
        result = super()._deserialize(value, attr, data, **kwargs)
        if is_blank(result):
            raise ValidationError("Must not be blank: white space, format characters and fillers do not count.")
        return result


# Every string a request carries is refused with U+0000 in it (audittrail.api.common.json_body):
# PostgreSQL text cannot hold it.
NO_NUL_PATTERN = "^[^\\u0000]*$"


def _class_member(code_point: int) -> str:
    # \uXXXX in the BMP, read alike by ECMA-262, Python and Rust. Beyond it, the character itself:
    # ECMA-262 with the `u` flag, Python and Rust all read a class member as one code point, and
    # the served JSON escapes it anyway (as a surrogate pair, which its reader joins back).
    return f"\\u{code_point:04x}" if code_point <= 0xFFFF else chr(code_point)


def _character_class(ranges) -> str:
    return "".join(
        _class_member(low) if low == high else f"{_class_member(low)}-{_class_member(high)}" for low, high in ranges
    )


@lru_cache(maxsize=1)
def not_blank_pattern() -> str:
    """The OpenAPI `pattern` of a Text field: some character that is not blank, and no NUL anywhere.

    Generated from audittrail.domain.text.blank_ranges(), the set `is_blank` checks, and anchored.
    Leading blanks, the first non-blank, then anything but NUL: the first two classes are disjoint,
    so an engine never backtracks over the text.
    """
    blank = _character_class(blank_ranges())
    return f"^[{blank}]*[^{blank}\\u0000][^\\u0000]*$"


def printable(value: str) -> None:
    if not value.isprintable():
        raise ValidationError("Must contain printable characters only.")


@lru_cache(maxsize=1)
def printable_pattern() -> str:
    """The OpenAPI `pattern` of a field validated by `printable`: generated from str.isprintable itself."""
    return f"^[^{_character_class(code_point_ranges(lambda character: not character.isprintable()))}]*$"


class QueryInteger(fields.Integer):
    """An integer in a query string: ASCII digits only (no sign, space or full-width digit)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not value.isascii() or not value.isdigit() or len(value) > 9:
            raise ValidationError("Not a valid integer.")
        return super()._deserialize(value, attr, data, **kwargs)


class RFC3339DateTime(fields.Field):
    """An RFC 3339 time with its offset (`Z` or `+hh:mm`) in, an aware UTC datetime out; dumped with `Z`."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or len(value) > 40 or "T" not in value.upper():
            raise ValidationError("Must be an RFC 3339 date-time, like 2026-11-30T01:00:00Z.")
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValidationError("Must be an RFC 3339 date-time, like 2026-11-30T01:00:00Z.") from None
        if parsed.tzinfo is None:
            raise ValidationError("Must give its offset from UTC (`Z` or `+hh:mm`).")
        try:
            return parsed.astimezone(UTC)
        except (OverflowError, ValueError):
            raise ValidationError("Out of range.") from None

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class BoundedJsonObject(JsonObject):
    """A JSON object whose compact UTF-8 encoding is at most `max_bytes` (8 KiB: a run node's `attrs`)."""

    max_bytes = 8 * 1024

    def _deserialize(self, value, attr, data, **kwargs):
        result = fields.Dict._deserialize(self, value, attr, data, **kwargs)
        encoded = json.dumps(result, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass")
        if len(encoded) > self.max_bytes:
            raise ValidationError(f"Must be at most {self.max_bytes // 1024} KiB once serialized.")
        return result


class CappedList(fields.List):
    """A list refused by its length before any item is read (a 2 MiB body can hold 50 000 tiny items)."""

    def __init__(self, inner, max_items: int, **kwargs):
        self.max_items = max_items
        super().__init__(inner, validate=validate.Length(max=max_items), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, list) and len(value) > self.max_items:
            raise ValidationError(f"At most {self.max_items} items; this one has {len(value)}.")
        return super()._deserialize(value, attr, data, **kwargs)
