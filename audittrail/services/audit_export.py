"""The audit export (evidence.md §4): a workspace's stored events, as pages or as one stream.

Each item is the stored event: every hashed field as it was hashed (`at` to the microsecond,
`data` as its canonical JSON text), plus `prev_hash` and `hash`, so anyone can recompute the chain.
The audit log is read here, never copied.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import select

from audittrail.domain import Scope
from audittrail.domain import permission_refusal
from audittrail.extensions import db
from audittrail.models import AuditEvent
from audittrail.models import Workspace
from audittrail.services.actors import Actor
from audittrail.services.errors import error_for
from audittrail_evidence.canonical import EVENT_TIME_FORMAT
from audittrail_evidence.canonical import EXPORT_FIELDS

STREAM_BATCH = 2000
_COLUMNS = [getattr(AuditEvent, name) for name in EXPORT_FIELDS]
_AT = EXPORT_FIELDS.index("at")


@dataclass(frozen=True)
class ExportPage:
    items: list[dict]
    next_after: int


def _refuse_export(actor: Actor) -> None:
    # The role admin, through a JWT or an admin's key holding audit:read (opt-in).
    refusal = permission_refusal(actor.caller, Scope.AUDIT_READ)
    if refusal is not None:
        raise error_for(refusal)


def _item(row) -> dict:
    values = list(row)
    values[_AT] = values[_AT].strftime(EVENT_TIME_FORMAT)
    return dict(zip(EXPORT_FIELDS, values, strict=True))


def _batch(connection, workspace_id: str, after: int, up_to: int | None, limit: int) -> list[dict]:
    query = select(*_COLUMNS).where(AuditEvent.workspace_id == workspace_id, AuditEvent.seq > after)
    if up_to is not None:
        query = query.where(AuditEvent.seq <= up_to)
    return [_item(row) for row in connection.execute(query.order_by(AuditEvent.seq).limit(limit))]


def export_page(actor: Actor, after: int = 0, limit: int = 100) -> ExportPage:
    """The workspace's events after `after` (exclusive), oldest first; empty once the head is reached.

    Raises Forbidden.
    """
    _refuse_export(actor)
    items = _batch(db.session, actor.workspace_id, after, None, limit)
    return ExportPage(items, items[-1]["seq"] if items else after)


def export_stream(actor: Actor, after: int = 0, batch: int | None = None) -> Iterator[list[dict]]:
    """Every event after `after` up to the head as it is now, in batches (constant memory).

    The permission and the head are read at once (so a refusal is an answer, not a cut stream);
    each batch is then its own short read on a connection of its own, so a slow reader holds
    no transaction open. Raises Forbidden.
    """
    _refuse_export(actor)
    head = db.session.scalar(select(Workspace.audit_seq).where(Workspace.id == actor.workspace_id)) or 0
    workspace_id = actor.workspace_id
    engine = db.engine
    batch = batch or STREAM_BATCH

    def batches() -> Iterator[list[dict]]:
        last = after
        while last < head:
            with engine.connect() as connection:
                items = _batch(connection, workspace_id, last, head, batch)
            if not items:
                return
            yield items
            last = items[-1]["seq"]

    return batches()
