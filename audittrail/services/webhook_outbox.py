"""The audit log as the webhooks' outbox (webhooks.md §3): queue, claim, record.

Nothing is written twice to tell the worker something happened: the chain is the record, and
each webhook keeps a cursor on its `seq`. The worker turns the events past a cursor into
delivery rows (one per webhook and event, unique), claims due rows with a lease (a
compare-and-set that works the same on SQLite and PostgreSQL), sends, and records the outcome
only if it still holds the lease. A worker killed mid-attempt leaves a lease that runs out: the
row is claimed again, with the same id, so the receiver can tell the duplicate.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta

from sqlalchemy import insert
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update

from audittrail.domain.webhooks import FAILURES_BEFORE_DISABLING
from audittrail.domain.webhooks import MAX_ATTEMPTS
from audittrail.domain.webhooks import DeliveryState
from audittrail.domain.webhooks import delivery_type
from audittrail.domain.webhooks import parse_retry_after
from audittrail.domain.webhooks import retry_delay
from audittrail.extensions import db
from audittrail.models import AuditEvent
from audittrail.models import Webhook
from audittrail.models import WebhookDelivery
from audittrail.models import Workspace
from audittrail.models.types import new_id
from audittrail.services.audit import lock_workspace
from audittrail.services.unit_of_work import unit_of_work
from audittrail.services.webhook_http import AttemptResult

QUEUE_BATCH = 500
RETRY_AFTER_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class Claim:
    """A delivery this worker holds the lease of, with what it needs to send it."""

    delivery_id: str
    token: str
    attempts: int
    webhook_id: str
    workspace_id: str
    event_seq: int | None
    url: str
    secret: str
    format: str


def queue_new_events(now: datetime, batch: int = QUEUE_BATCH) -> int:
    """Give every enabled webhook a delivery for each subscribed event past its cursor; how many were queued.

    Read first, write briefly: the webhooks that are behind and their events are read with no
    write transaction open, the rows are built, and then one short transaction moves every cursor
    with a compare-and-set (`cursor_seq` still what was read) and inserts the rows of the webhooks
    whose cursor it moved. On SQLite every write holds the database's one write lock, which the
    requests wait for: it is held for two statements per webhook, not for the reading and building.
    A worker that lost a race (another queued the same events, or the webhook was disabled,
    deleted or re-enabled meanwhile) writes nothing for that webhook.
    """
    behind = db.session.execute(
        select(Webhook.id, Webhook.workspace_id, Webhook.cursor_seq, Webhook.event_types)
        .join(Workspace, Workspace.id == Webhook.workspace_id)
        .where(Webhook.deleted_at.is_(None), Webhook.disabled_at.is_(None), Webhook.cursor_seq < Workspace.audit_seq)
    ).all()
    plans = []
    for webhook_id, workspace_id, cursor, event_types in behind:
        events = db.session.execute(
            select(AuditEvent.seq, AuditEvent.type)
            .where(AuditEvent.workspace_id == workspace_id, AuditEvent.seq > cursor)
            .order_by(AuditEvent.seq)
            .limit(batch)
        ).all()
        if events:
            plans.append(
                (
                    webhook_id,
                    workspace_id,
                    cursor,
                    events[-1].seq,
                    _rows(webhook_id, workspace_id, event_types, events, now),
                )
            )
    db.session.rollback()
    if not plans:
        return 0
    queued = 0
    with unit_of_work():
        for webhook_id, _workspace_id, cursor, new_cursor, rows in plans:
            moved = db.session.execute(
                update(Webhook)
                .where(
                    Webhook.id == webhook_id,
                    Webhook.cursor_seq == cursor,
                    Webhook.deleted_at.is_(None),
                    Webhook.disabled_at.is_(None),
                )
                .values(cursor_seq=new_cursor)
                .execution_options(synchronize_session=False)
            ).rowcount
            if moved == 1 and rows:
                db.session.execute(insert(WebhookDelivery), rows)
                queued += len(rows)
    return queued


def _rows(webhook_id: str, workspace_id: str, event_types, events, now: datetime) -> list[dict]:
    """The delivery rows of the subscribed events among `events`, ready to insert."""
    subscribed = set(event_types)
    return [
        {
            "id": new_id("msg"),
            "webhook_id": webhook_id,
            "workspace_id": workspace_id,
            "event_seq": seq,
            "type": delivery_type(event_type),
            "state": DeliveryState.PENDING.value,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for seq, event_type in events
        if event_type in subscribed
    ]


def _queue_past_cursor(webhook: Webhook, now: datetime, batch: int | None) -> int:
    """Queue the webhook's events after its cursor (up to `batch` of them) and move the cursor on."""
    query = (
        select(AuditEvent.seq, AuditEvent.type)
        .where(AuditEvent.workspace_id == webhook.workspace_id, AuditEvent.seq > webhook.cursor_seq)
        .order_by(AuditEvent.seq)
    )
    if batch is not None:
        query = query.limit(batch)
    events = db.session.execute(query).all()
    if not events:
        return 0
    rows = _rows(webhook.id, webhook.workspace_id, webhook.event_types, events, now)
    if rows:
        db.session.execute(insert(WebhookDelivery), rows)
    webhook.cursor_seq = events[-1].seq
    db.session.flush()
    return len(rows)


def claim_due(now: datetime, limit: int, lease_seconds: float) -> list[Claim]:
    """Claim up to `limit` due deliveries of live webhooks, each with a lease of `lease_seconds`.

    One compare-and-set for the batch: a row another worker claimed meanwhile no longer matches
    the UPDATE's condition and is left to it. A disabled webhook's deliveries wait for it to be
    enabled; a ping goes even so (an admin asked for it). A deleted webhook's are never claimed.
    """
    if limit <= 0:
        return []
    candidates = [
        delivery_id
        for (delivery_id,) in db.session.execute(
            select(WebhookDelivery.id)
            .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
            .where(
                WebhookDelivery.state == DeliveryState.PENDING,
                WebhookDelivery.next_attempt_at <= now,
                or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until < now),
                Webhook.deleted_at.is_(None),
                or_(Webhook.disabled_at.is_(None), WebhookDelivery.event_seq.is_(None)),
            )
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(limit * 3)
        )
    ]
    db.session.rollback()
    if not candidates:
        return []
    # Several workers read the same candidates: each tries its own random share of them first.
    random.shuffle(candidates)
    token = secrets.token_hex(16)
    with unit_of_work():
        db.session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id.in_(candidates[:limit]),
                WebhookDelivery.state == DeliveryState.PENDING,
                or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until < now),
            )
            .values(lease_token=token, lease_until=now + timedelta(seconds=lease_seconds))
            .execution_options(synchronize_session=False)
        )
    # Read once the claim is committed (the write lock is not held for it): the rows carrying our
    # token are ours until the lease runs out.
    rows = db.session.execute(
        select(
            WebhookDelivery.id,
            WebhookDelivery.attempts,
            WebhookDelivery.event_seq,
            Webhook.id,
            Webhook.workspace_id,
            Webhook.url,
            Webhook.secret,
            Webhook.format,
        )
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .where(WebhookDelivery.lease_token == token)
    ).all()
    db.session.rollback()
    return [
        Claim(
            delivery_id=delivery_id,
            token=token,
            attempts=attempts,
            webhook_id=webhook_id,
            workspace_id=workspace_id,
            event_seq=event_seq,
            url=url,
            secret=secret,
            format=format_,
        )
        for delivery_id, attempts, event_seq, webhook_id, workspace_id, url, secret, format_ in rows
    ]


def release(claim: Claim, error: str, now: datetime) -> None:
    """Give a claimed delivery back untried (the worker could not build it): due again at once."""
    with unit_of_work():
        db.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == claim.delivery_id, WebhookDelivery.lease_token == claim.token)
            .values(lease_token=None, lease_until=None, last_error=error[:500])
            .execution_options(synchronize_session=False)
        )


def record_attempt(
    claim: Claim,
    result: AttemptResult,
    attempted_at: datetime,
    now: datetime,
    retry_scale: float,
    rng: random.Random | None = None,
) -> str | None:
    """Record one attempt's outcome if the lease is still ours; the delivery's new state, or None (lost).

    A 2xx delivers. A 410 fails the delivery and disables the webhook. Any other failure waits for
    the next try of the schedule (scaled), or for `Retry-After` on a 429 or 503 (as given), and ends
    `failed` after the last try; five `failed` in a row disable the webhook.
    """
    attempts = claim.attempts + 1
    values = {
        "attempts": attempts,
        "last_status_code": result.status_code,
        "last_error": result.error,
        "last_attempt_at": attempted_at,
        "lease_token": None,
        "lease_until": None,
    }
    disable_reason = None
    if result.succeeded:
        state = DeliveryState.DELIVERED
        values["next_attempt_at"] = None
    elif result.status_code == 410:
        state = DeliveryState.FAILED
        values["next_attempt_at"] = None
        disable_reason = "The receiver answered 410 Gone."
    else:
        delay = None
        if attempts < MAX_ATTEMPTS:
            delay = retry_delay(attempts, retry_scale, rng)
            if result.status_code in RETRY_AFTER_STATUSES:
                asked = parse_retry_after(result.retry_after)
                delay = asked if asked is not None else delay
        if delay is None:
            state = DeliveryState.FAILED
            values["next_attempt_at"] = None
        else:
            state = DeliveryState.PENDING
            values["next_attempt_at"] = now + timedelta(seconds=delay)
        if values["last_error"] is None and result.status_code is not None:
            values["last_error"] = f"The receiver answered {result.status_code}."
    values["state"] = state
    with unit_of_work():
        won = db.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == claim.delivery_id, WebhookDelivery.lease_token == claim.token)
            .values(**values)
            .execution_options(synchronize_session=False)
        ).rowcount
        if won != 1:
            # The lease ran out and another worker took the row: its outcome is the one kept.
            return None
        if state == DeliveryState.DELIVERED:
            db.session.execute(
                update(Webhook)
                .where(Webhook.id == claim.webhook_id)
                .values(failures_in_a_row=0)
                .execution_options(synchronize_session=False)
            )
        elif state == DeliveryState.FAILED:
            # The chain head before the webhook, the order enabling and deleting take them in.
            lock_workspace(claim.workspace_id)
            failures = db.session.execute(
                update(Webhook)
                .where(Webhook.id == claim.webhook_id)
                .values(failures_in_a_row=Webhook.failures_in_a_row + 1)
                .returning(Webhook.failures_in_a_row)
                .execution_options(synchronize_session=False)
            ).scalar_one()
            if disable_reason is None and failures >= FAILURES_BEFORE_DISABLING:
                disable_reason = f"{failures} deliveries in a row failed."
        if disable_reason is not None:
            _disable(claim, disable_reason, now)
    return state


def _disable(claim: Claim, reason: str, now: datetime) -> None:
    """Disable the webhook, first queueing every event committed while it was enabled.

    The chain head is locked, so the events up to it are queued (delivered once it is enabled
    again) and none committed from now on is: those are the events of the time it is disabled.
    """
    lock_workspace(claim.workspace_id)
    # And the webhook's row, which a worker queueing its events holds meanwhile.
    db.session.execute(
        update(Webhook)
        .where(Webhook.id == claim.webhook_id)
        .values(cursor_seq=Webhook.cursor_seq)
        .execution_options(synchronize_session=False)
    )
    webhook = db.session.scalars(
        select(Webhook).where(Webhook.id == claim.webhook_id).execution_options(populate_existing=True)
    ).one()
    if webhook.disabled_at is not None or webhook.deleted_at is not None:
        return
    _queue_past_cursor(webhook, now, batch=None)
    webhook.disabled_at = now
    webhook.disabled_reason = reason
    db.session.flush()
