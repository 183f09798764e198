"""The hash-chained audit trail (§8): appending events and verifying the chain."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from sqlalchemy import bindparam
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm.attributes import set_committed_value

from audittrail.extensions import db
from audittrail.models import GENESIS_HASH
from audittrail.models import AuditEvent
from audittrail.models import DeploymentAction
from audittrail.models import Workspace
from audittrail.models.workspace import STATUS_COUNTER_COLUMNS
from audittrail.services.actors import Actor
from audittrail_evidence import canonical as evidence_canonical
from audittrail_evidence.canonical import canonical_json
from audittrail_evidence.canonical import event_time

__all__ = ["append_event", "canonical_json", "event_hash", "hashed_fields", "lock_workspace", "verify_chain"]


def event_hash(
    *,
    prev_hash: str,
    workspace_id: str,
    seq: int,
    action_id: str | None,
    type: str,
    actor_kind: str,
    actor_user_id: str | None,
    actor_api_key_id: str | None,
    actor_name: str,
    at: datetime,
    request_id: str | None,
    data: str,
) -> str:
    """SHA-256 over the previous hash and a canonical encoding of the event's fields.

    The encoding is audittrail_evidence.canonical's, which the offline verifier uses too.
    """
    return evidence_canonical.event_hash(
        prev_hash,
        {
            "workspace_id": workspace_id,
            "seq": seq,
            "action_id": action_id,
            "type": type,
            "actor_kind": actor_kind,
            "actor_user_id": actor_user_id,
            "actor_api_key_id": actor_api_key_id,
            "actor_name": actor_name,
            "at": event_time(at),
            "request_id": request_id,
            "data": data,
        },
    )


def lock_workspace(workspace_id: str) -> None:
    """Take the workspace's chain-head row lock now, before reading what a workspace event changes.

    Workspace changes (roles, policy) read the current value and then write it: holding the lock
    from the start serializes them, so two admins demoting each other cannot both succeed, and
    each event's `from` is what was really there.
    """
    db.session.execute(
        update(Workspace)
        .where(Workspace.id == workspace_id)
        .values(audit_seq=Workspace.audit_seq)
        .execution_options(synchronize_session=False)
    )


def append_event(
    *,
    workspace_id: str,
    action_id: str | None,
    type: str,
    actor: Actor,
    at: datetime,
    data: dict,
    status_from: str | None = None,
    status_to: str | None = None,
) -> AuditEvent:
    """Append one event to the workspace chain inside the caller's transaction (no commit).

    The workspace row is the chain head: bumping its sequence with UPDATE … RETURNING
    serializes appends per workspace on PostgreSQL (row lock) and on SQLite (write lock).
    Call it after the transaction's first write so the lock order is action, then workspace.
    `status_from`/`status_to` move the workspace's per-status counters in the same statement.
    An event of an action also moves that action's `version` (live.md §1), and on PostgreSQL
    every event sends a NOTIFY on NOTIFY_CHANNEL, which the database delivers only at commit.
    """
    # Statements built once, run on the session's connection; pending ORM changes go first, as
    # Session.execute's autoflush did (the lock order stays: the caller's write, then the workspace).
    db.session.flush()
    connection = db.session.connection()
    if action_id is not None:
        _bump_version(action_id)
    seq, prev_hash = connection.execute(
        _advance_head(status_from and str(status_from), status_to and str(status_to)), {"workspace_id": workspace_id}
    ).one()
    encoded = canonical_json(data)
    fields = dict(
        workspace_id=workspace_id,
        seq=seq,
        action_id=action_id,
        type=type,
        actor_kind=actor.kind,
        actor_user_id=actor.user_id,
        actor_api_key_id=actor.api_key_id,
        actor_name=actor.name,
        at=at,
        request_id=actor.request_id,
        data=encoded,
    )
    digest = event_hash(prev_hash=prev_hash, **fields)
    connection.execute(_SET_HEAD_HASH, {"workspace_id": workspace_id, "hash": digest})
    event_id = connection.execute(_INSERT_EVENT, {**fields, "prev_hash": prev_hash, "hash": digest}).scalar_one()
    _notify(workspace_id)
    # The stored event as an object (not added to the session: the row is already written).
    return AuditEvent(id=event_id, prev_hash=prev_hash, hash=digest, **fields)


@lru_cache(maxsize=64)
def _advance_head(status_from: str | None, status_to: str | None):
    """UPDATE … RETURNING that takes the next seq and moves the per-status counters; one per status pair."""
    values = {"audit_seq": Workspace.audit_seq + 1}
    if status_from is not None:
        column = STATUS_COUNTER_COLUMNS[status_from]
        values[column] = getattr(Workspace, column) - 1
    if status_to is not None:
        column = STATUS_COUNTER_COLUMNS[status_to]
        values[column] = getattr(Workspace, column) + 1
    return (
        update(Workspace.__table__)
        .where(Workspace.__table__.c.id == bindparam("workspace_id"))
        .values(**values)
        .returning(Workspace.__table__.c.audit_seq, Workspace.__table__.c.audit_head_hash)
    )


_workspaces = Workspace.__table__
_SET_HEAD_HASH = (
    update(_workspaces).where(_workspaces.c.id == bindparam("workspace_id")).values(audit_head_hash=bindparam("hash"))
)
_INSERT_EVENT = insert(AuditEvent.__table__).returning(AuditEvent.__table__.c.id)
_actions = DeploymentAction.__table__
_BUMP_VERSION = (
    update(_actions)
    .where(_actions.c.id == bindparam("action_id"))
    .values(version=_actions.c.version + 1)
    .returning(_actions.c.version)
)


# Streams in every process LISTEN here (audittrail.live); the payload is the workspace id. A wake-up
# only: what happened is read from audit_events, so a lost notification costs latency, not events.
NOTIFY_CHANNEL = "audittrail_events"


def _bump_version(action_id: str) -> None:
    version = db.session.connection().execute(_BUMP_VERSION, {"action_id": action_id}).scalar_one()
    # An action already loaded in this session (a proposal being rendered) shows the new version.
    loaded = db.session.identity_map.get(db.session.identity_key(DeploymentAction, action_id))
    if loaded is not None:
        set_committed_value(loaded, "version", version)


def _notify(workspace_id: str) -> None:
    if db.session.get_bind().dialect.name == "postgresql":
        # Delivered at commit, never for a rolled-back transaction; repeats within one are merged.
        db.session.execute(select(func.pg_notify(NOTIFY_CHANNEL, workspace_id)))


@dataclass(frozen=True)
class ChainProblem:
    workspace_id: str
    seq: int | None
    event_id: int | None
    reason: str

    def __str__(self) -> str:
        where = f"workspace {self.workspace_id}"
        if self.seq is not None:
            where += f", event seq {self.seq} (id {self.event_id})"
        return f"{where}: {self.reason}"


def verify_chain(workspace_id: str | None = None) -> ChainProblem | None:
    """Recompute every chain (or one); return the first broken event, or None when sound."""
    # populate_existing: a Workspace already in this session may hold a stale chain head.
    query = select(Workspace).order_by(Workspace.created_at, Workspace.id).execution_options(populate_existing=True)
    if workspace_id is not None:
        query = query.where(Workspace.id == workspace_id)
    for workspace in db.session.scalars(query):
        problem = _verify_workspace(workspace)
        if problem is not None:
            return problem
    return None


def _verify_workspace(workspace: Workspace) -> ChainProblem | None:
    expected_seq = 1
    prev_hash = GENESIS_HASH
    query = (
        select(AuditEvent)
        .where(AuditEvent.workspace_id == workspace.id)
        .order_by(AuditEvent.seq, AuditEvent.id)
        # The database's rows, not events this session loaded earlier.
        .execution_options(yield_per=1000, populate_existing=True)
    )
    # Closed explicitly: returning early must not leave a server-side cursor open.
    with db.session.scalars(query) as events:
        for event in events:
            problem = _check_event(event, expected_seq, prev_hash)
            if problem is not None:
                return ChainProblem(workspace.id, event.seq, event.id, problem)
            prev_hash = event.hash
            expected_seq += 1
    last_seq = expected_seq - 1
    if workspace.audit_seq != last_seq or workspace.audit_head_hash != prev_hash:
        return ChainProblem(
            workspace.id,
            last_seq + 1,
            None,
            f"chain head says seq {workspace.audit_seq} but the events end at seq {last_seq} "
            "(events removed from the end)",
        )
    return None


# The one list, shared with the offline verifier: every field event_hash covers.
HASHED_FIELDS = ("prev_hash", *evidence_canonical.EVENT_BODY_FIELDS)


def hashed_fields(event: AuditEvent) -> dict:
    """The stored values event_hash covers, read back from an event row."""
    return {name: getattr(event, name) for name in HASHED_FIELDS}


def _check_event(event: AuditEvent, expected_seq: int, prev_hash: str) -> str | None:
    if event.seq != expected_seq:
        return f"sequence gap: expected seq {expected_seq}, found {event.seq}"
    if event.prev_hash != prev_hash:
        return "prev_hash does not match the previous event's hash (reordered or removed)"
    recomputed = event_hash(**hashed_fields(event))
    if recomputed != event.hash:
        return "hash does not match the event's content (edited)"
    return None
