"""Column types shared by the models."""

from __future__ import annotations

import re
import secrets
from datetime import UTC

from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in Python, naive UTC in the database (the same on SQLite and PostgreSQL)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are refused; pass an aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


def new_id(prefix: str) -> str:
    """A random, URL-safe identifier with a readable prefix (e.g. act_3f9c…)."""
    return f"{prefix}_{secrets.token_hex(12)}"


_ID = re.compile(r"^[a-z]{2,4}_[0-9a-f]{24}$")


def is_valid_id(value: object, prefix: str) -> bool:
    """Whether `value` could be an id made by new_id(prefix); anything else is never looked up."""
    return isinstance(value, str) and value.startswith(prefix + "_") and _ID.match(value) is not None
