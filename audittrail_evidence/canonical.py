"""The bytes that are hashed: canonical JSON, the audit chain's event hash, the action digest.

Standard library only. The server (audittrail.services) and the offline verifier both call these
functions, so what the server hashes and what an auditor recomputes are the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC
from datetime import datetime

GENESIS_HASH = "0" * 64

# An event's `at` as it is hashed (and exported): microseconds, so no two events round alike.
EVENT_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
# Times as the API writes them (RFC 3339 UTC, to the second): what the action digest covers.
API_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

# What an event's hash covers, besides the previous event's hash.
EVENT_BODY_FIELDS = (
    "workspace_id",
    "seq",
    "action_id",
    "type",
    "actor_kind",
    "actor_user_id",
    "actor_api_key_id",
    "actor_name",
    "at",
    "request_id",
    "data",
)
# One line of the audit export: the hashed fields, then the links.
EXPORT_FIELDS = (*EVENT_BODY_FIELDS, "prev_hash", "hash")

# An action's immutable fields (evidence.md §2), in the order the README lists them.
DIGEST_FIELDS = (
    "id",
    "workspace_id",
    "action_type",
    "tier",
    "target_ref",
    "reason",
    "mode",
    "payload",
    "ttl_seconds",
    "proposed_by",
    "proposed_at",
    "expires_at",
    "policy",
)
DIGEST_PREFIX = "sha256:"


def canonical_json(value) -> str:
    """The one JSON encoding that is hashed and signed: sorted keys, no whitespace, non-ASCII as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_time(at: datetime) -> str:
    """An event's time as it is hashed and exported."""
    return at.strftime(EVENT_TIME_FORMAT)


def api_time(at: datetime) -> str:
    """A time as the API writes it."""
    return at.astimezone(UTC).strftime(API_TIME_FORMAT)


def event_hash(prev_hash: str, event: Mapping) -> str:
    """SHA-256 over the previous hash, a newline, and the canonical JSON of the event's body fields.

    `event` holds EVENT_BODY_FIELDS as stored: `at` as event_time text, `data` as canonical JSON text.
    """
    body = canonical_json({name: event[name] for name in EVENT_BODY_FIELDS})
    return hashlib.sha256((prev_hash + "\n" + body).encode("utf-8")).hexdigest()


def action_digest(fields: Mapping) -> str:
    """`sha256:` and the hex SHA-256 of the canonical JSON of an action's DIGEST_FIELDS.

    `fields` holds them as the API serves them, except `proposed_by`, which is the proposer's id.
    """
    document = canonical_json({name: fields[name] for name in DIGEST_FIELDS})
    return DIGEST_PREFIX + hashlib.sha256(document.encode("utf-8")).hexdigest()


def digest_fields_of(action: Mapping) -> dict:
    """The digest's fields read from an action as the API serves it (detail or list item)."""
    fields = {name: action[name] for name in DIGEST_FIELDS}
    proposed_by = fields["proposed_by"]
    fields["proposed_by"] = proposed_by["id"] if isinstance(proposed_by, Mapping) else proposed_by
    return fields
