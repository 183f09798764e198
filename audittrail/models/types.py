"""Column types shared by the models."""

from __future__ import annotations

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
