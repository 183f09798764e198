"""Checkpoints (evidence.md §5): signed statements of a workspace chain's head, stored append-only.

Making one writes no audit event: the checkpoint states the head, it does not move it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from audittrail.domain import Scope
from audittrail.domain import permission_refusal
from audittrail.extensions import db
from audittrail.models import AuditCheckpoint
from audittrail.models import Workspace
from audittrail.services.actors import Actor
from audittrail.services.errors import EmptyChain
from audittrail.services.errors import error_for
from audittrail.services.unit_of_work import unit_of_work
from audittrail_evidence.jws import CHECKPOINT_TYPE
from audittrail_evidence.jws import ISSUER
from audittrail_evidence.jws import Keyring


def _refuse(actor: Actor) -> None:
    refusal = permission_refusal(actor.caller, Scope.AUDIT_READ)
    if refusal is not None:
        raise error_for(refusal)


def _checkpoint(workspace_id: str, keyring: Keyring, now: datetime) -> AuditCheckpoint | None:
    seq, head = db.session.execute(
        select(Workspace.audit_seq, Workspace.audit_head_hash).where(Workspace.id == workspace_id)
    ).one()
    if seq == 0:
        return None
    claims = {"iss": ISSUER, "ws": workspace_id, "seq": seq, "hash": head, "iat": int(now.timestamp())}
    checkpoint = AuditCheckpoint(
        workspace_id=workspace_id,
        seq=seq,
        hash=head,
        kid=keyring.current_kid,
        token=keyring.sign(CHECKPOINT_TYPE, claims),
        created_at=now,
    )
    db.session.add(checkpoint)
    db.session.flush()
    return checkpoint


def make_checkpoint(actor: Actor, keyring: Keyring, now: datetime) -> AuditCheckpoint:
    """Sign and store the head of the actor's workspace chain.

    Raises Forbidden, EmptyChain (no event yet).
    """
    _refuse(actor)
    with unit_of_work():
        checkpoint = _checkpoint(actor.workspace_id, keyring, now)
        if checkpoint is None:
            raise EmptyChain()
    return checkpoint


def checkpoint_every_workspace(keyring: Keyring, now: datetime) -> list[AuditCheckpoint]:
    """One checkpoint per workspace that has events, each in its own unit of work (for cron)."""
    made = []
    for workspace_id in list(db.session.scalars(select(Workspace.id).order_by(Workspace.created_at, Workspace.id))):
        with unit_of_work():
            checkpoint = _checkpoint(workspace_id, keyring, now)
        if checkpoint is not None:
            made.append(checkpoint)
    return made


def list_checkpoints(actor: Actor, limit: int = 50) -> list[AuditCheckpoint]:
    """The workspace's stored checkpoints, newest first. Raises Forbidden."""
    _refuse(actor)
    return list(
        db.session.scalars(
            select(AuditCheckpoint)
            .where(AuditCheckpoint.workspace_id == actor.workspace_id)
            .order_by(AuditCheckpoint.id.desc())
            .limit(limit)
        )
    )
