"""Managing webhooks (webhooks.md §1): create, list, read, delete, ping, enable, deliveries.

Requests only ever write to the database: no request sends anything. The worker
(audittrail.webhook_worker) reads the audit chain as its outbox and delivers.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy import update

from audittrail.domain import Capability
from audittrail.domain import EventType
from audittrail.domain import capability_refusal
from audittrail.domain import is_blank
from audittrail.domain.webhooks import MAX_DELIVERIES_PAGE
from audittrail.domain.webhooks import WEBHOOK_EVENT_TYPES
from audittrail.domain.webhooks import DeliveryState
from audittrail.domain.webhooks import WebhookFormat
from audittrail.domain.webhooks import delivery_type
from audittrail.domain.webhooks import new_secret
from audittrail.extensions import db
from audittrail.models import Webhook
from audittrail.models import WebhookDelivery
from audittrail.models import Workspace
from audittrail.models.types import is_valid_id
from audittrail.services.actors import Actor
from audittrail.services.audit import append_event
from audittrail.services.audit import lock_workspace
from audittrail.services.errors import ValidationFailed
from audittrail.services.errors import WebhookNotFound
from audittrail.services.errors import error_for
from audittrail.services.unit_of_work import unit_of_work
from audittrail.services.webhook_http import UrlRules
from audittrail.services.webhook_http import check_url


def _refuse_managing(actor: Actor) -> None:
    refusal = capability_refusal(actor.caller, Capability.MANAGE_WEBHOOKS)
    if refusal is not None:
        raise error_for(refusal)


def create_webhook(
    actor: Actor,
    url: str,
    now: datetime,
    rules: UrlRules,
    description: str | None = None,
    event_types: list[str] | None = None,
    format: str = WebhookFormat.STANDARD,
) -> tuple[Webhook, str]:
    """Create a webhook with a `webhook_created` event; returns it and its secret (shown this once).

    It receives the events committed after that event. Raises Forbidden, ValidationFailed (a URL
    refused by `rules`, unknown or no event types, an unknown format).
    """
    _refuse_managing(actor)
    check_url(url, rules)
    chosen = list(WEBHOOK_EVENT_TYPES) if event_types is None else list(dict.fromkeys(event_types))
    unknown = [name for name in chosen if name not in WEBHOOK_EVENT_TYPES]
    if unknown or not chosen:
        raise ValidationFailed(
            "Unknown or empty event types.", {"event_types": [f"Choose from {', '.join(WEBHOOK_EVENT_TYPES)}."]}
        )
    if format not in WebhookFormat.__members__.values():
        raise ValidationFailed("Unknown format.", {"format": [f"Choose from {', '.join(WebhookFormat)}."]})
    secret = new_secret()
    webhook = Webhook(
        workspace_id=actor.workspace_id,
        url=url,
        # A blank description is none (README: blank means unreadable).
        description=None if is_blank(description) else description.strip(),
        # Kept in the chain's order, whatever order they were sent in.
        event_types=[name for name in WEBHOOK_EVENT_TYPES if name in chosen],
        format=str(format),
        secret=secret,
        created_at=now,
        created_by_id=actor.user_id,
        cursor_seq=0,
        failures_in_a_row=0,
    )
    with unit_of_work():
        db.session.add(webhook)
        db.session.flush()
        event = append_event(
            workspace_id=actor.workspace_id,
            action_id=None,
            type=EventType.WEBHOOK_CREATED,
            actor=actor,
            at=now,
            data={"webhook_id": webhook.id, "url": webhook.url},
        )
        # Its own creation is where it starts: every later event of a subscribed type is its.
        webhook.cursor_seq = event.seq
    return webhook, secret


def list_webhooks(actor: Actor) -> list[Webhook]:
    """The workspace's webhooks (not deleted), oldest first. Raises Forbidden."""
    _refuse_managing(actor)
    query = (
        select(Webhook)
        .where(Webhook.workspace_id == actor.workspace_id, Webhook.deleted_at.is_(None))
        .order_by(Webhook.created_at, Webhook.id)
    )
    return list(db.session.scalars(query))


def get_webhook(actor: Actor, webhook_id: str) -> Webhook:
    """One webhook of the actor's workspace. Raises Forbidden, WebhookNotFound."""
    _refuse_managing(actor)
    return _find(actor, webhook_id)


def _find(actor: Actor, webhook_id: str) -> Webhook:
    if not is_valid_id(webhook_id, "whk"):
        raise WebhookNotFound()
    webhook = db.session.scalars(
        select(Webhook)
        .where(Webhook.id == webhook_id, Webhook.workspace_id == actor.workspace_id, Webhook.deleted_at.is_(None))
        .execution_options(populate_existing=True)
    ).first()
    if webhook is None:
        raise WebhookNotFound()
    return webhook


def delete_webhook(actor: Actor, webhook_id: str, now: datetime) -> None:
    """Delete a webhook, with a `webhook_deleted` event; nothing more is sent to it.

    The row stays (its deliveries refer to it) but is hidden; the worker claims nothing of a
    deleted webhook. Raises Forbidden, WebhookNotFound (also for one already deleted).
    """
    _refuse_managing(actor)
    if not is_valid_id(webhook_id, "whk"):
        raise WebhookNotFound()
    with unit_of_work():
        # The chain head first, as enabling and the worker's disabling do: one lock order for all.
        lock_workspace(actor.workspace_id)
        won = db.session.execute(
            update(Webhook)
            .where(Webhook.id == webhook_id, Webhook.workspace_id == actor.workspace_id, Webhook.deleted_at.is_(None))
            .values(deleted_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if won != 1:
            raise WebhookNotFound()
        url = db.session.scalar(select(Webhook.url).where(Webhook.id == webhook_id))
        append_event(
            workspace_id=actor.workspace_id,
            action_id=None,
            type=EventType.WEBHOOK_DELETED,
            actor=actor,
            at=now,
            data={"webhook_id": webhook_id, "url": url},
        )


def ping_webhook(actor: Actor, webhook_id: str, now: datetime) -> WebhookDelivery:
    """Queue a `webhook.ping` delivery, due now. Raises Forbidden, WebhookNotFound."""
    _refuse_managing(actor)
    with unit_of_work():
        webhook = _find(actor, webhook_id)
        delivery = WebhookDelivery(
            webhook_id=webhook.id,
            workspace_id=webhook.workspace_id,
            event_seq=None,
            type=delivery_type(None),
            state=DeliveryState.PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        db.session.add(delivery)
    return delivery


def enable_webhook(actor: Actor, webhook_id: str, now: datetime) -> Webhook:
    """Re-enable a disabled webhook: it receives the events committed from now on (none of the gap).

    Clears `disabled_at` and `disabled_reason`; an enabled webhook is answered as it is.
    Raises Forbidden, WebhookNotFound.
    """
    _refuse_managing(actor)
    if not is_valid_id(webhook_id, "whk"):
        raise WebhookNotFound()
    with unit_of_work():
        # The chain head cannot move between reading it and this commit: events committed while it
        # was disabled stay unsent, and every event after this one is its again.
        lock_workspace(actor.workspace_id)
        head = db.session.scalar(select(Workspace.audit_seq).where(Workspace.id == actor.workspace_id))
        db.session.execute(
            update(Webhook)
            .where(
                Webhook.id == webhook_id,
                Webhook.workspace_id == actor.workspace_id,
                Webhook.deleted_at.is_(None),
                Webhook.disabled_at.is_not(None),
            )
            .values(disabled_at=None, disabled_reason=None, cursor_seq=head, failures_in_a_row=0)
            .execution_options(synchronize_session=False)
        )
        webhook = _find(actor, webhook_id)
    return webhook


def list_deliveries(actor: Actor, webhook_id: str, limit: int = 20) -> list[WebhookDelivery]:
    """A webhook's deliveries, the most recently created first. Raises Forbidden, WebhookNotFound, ValidationFailed."""
    _refuse_managing(actor)
    if not 1 <= limit <= MAX_DELIVERIES_PAGE:
        raise ValidationFailed("Bad limit.", {"limit": [f"Must be between 1 and {MAX_DELIVERIES_PAGE}."]})
    webhook = _find(actor, webhook_id)
    return latest_deliveries([webhook.id], limit)[webhook.id]


def latest_deliveries(webhook_ids: list[str], limit: int) -> dict[str, list[WebhookDelivery]]:
    """The latest `limit` deliveries of each webhook, newest first."""
    found: dict[str, list[WebhookDelivery]] = {webhook_id: [] for webhook_id in webhook_ids}
    for webhook_id in webhook_ids:
        query = (
            select(WebhookDelivery)
            .where(WebhookDelivery.webhook_id == webhook_id)
            .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
            .limit(limit)
            .execution_options(populate_existing=True)
        )
        found[webhook_id] = list(db.session.scalars(query))
    return found
