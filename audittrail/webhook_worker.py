"""`flask webhooks worker`: delivers webhooks at least once (webhooks.md §2–§3).

One loop per process: queue the events past each webhook's cursor, claim due deliveries with a
lease, send them from a small thread pool (the threads only do HTTP; every database write is made
here, in the loop's thread), and record each outcome while the lease is still ours. Several
processes can run at once: the cursor and the claims are compare-and-sets. A process killed
mid-attempt loses nothing: its leases run out and another worker sends those deliveries again,
with the same `webhook-id`.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED
from concurrent.futures import Future
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait
from datetime import UTC
from datetime import datetime

from flask import Flask
from sqlalchemy.exc import SQLAlchemyError

from audittrail.domain import Role
from audittrail.domain.webhooks import USER_AGENT
from audittrail.domain.webhooks import WebhookFormat
from audittrail.domain.webhooks import delivery_type
from audittrail.domain.webhooks import signature
from audittrail.extensions import release_session
from audittrail.schemas import FeedItemSchema
from audittrail.services import feed
from audittrail.services import webhook_outbox
from audittrail.services.actors import Actor
from audittrail.services.unit_of_work import unit_of_work
from audittrail.services.webhook_http import AttemptResult
from audittrail.services.webhook_http import UrlRules
from audittrail.services.webhook_http import send
from audittrail.signing import current_keyring
from audittrail_evidence.canonical import api_time

log = logging.getLogger("audittrail.webhooks")


def url_rules(config) -> UrlRules:
    """§4's rules as this instance applies them: strict in production, unless ALLOW_PRIVATE."""
    strict = config["AUDITTRAIL_ENV"] == "production" and not config["AUDITTRAIL_WEBHOOK_ALLOW_PRIVATE"]
    return UrlRules(strict=strict)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _reader(workspace_id: str) -> Actor:
    # The action as a viewer of the workspace sees it: its fields, and no transition to offer.
    return Actor(kind="system", name="webhooks", workspace_id=workspace_id, role=Role.VIEWER.value)


class MessageGone(Exception):
    """The event a delivery names is not in the chain (it cannot be; nothing is ever invented)."""


def build_body(claim: webhook_outbox.Claim, now: datetime, public_url: str, read: dict | None = None) -> bytes:
    """The JSON body of a delivery, from the chain: the same event on every attempt.

    `read` holds the events already read and rendered in this pass, by (workspace, seq): every
    webhook subscribed to an event gets the same item, so it is read and rendered once.
    """
    if claim.event_seq is None:
        message = {"type": delivery_type(None), "timestamp": api_time(now), "data": {}}
        if claim.format == WebhookFormat.SLACK:
            message = {"text": "AuditTrail: webhook ping.", "blocks": [_section("*AuditTrail*: webhook ping.")]}
        return _encode(message)
    key = (claim.workspace_id, claim.event_seq)
    rendered = read.get(key) if read is not None else None
    if rendered is None:
        rendered = _read_item(claim, now)
        if read is not None:
            read[key] = rendered
    item = dict(rendered)
    action = item.pop("action")
    if claim.format == WebhookFormat.SLACK:
        return _encode(slack_message(item, action, public_url))
    return _encode(
        {
            "type": delivery_type(item["type"]),
            "timestamp": item["at"],
            "data": {"event": item, "action": action},
        }
    )


def _read_item(claim: webhook_outbox.Claim, now: datetime) -> dict:
    """The claim's event as the feed renders it, with its action as a viewer sees it now."""
    items = feed.read_events(
        _reader(claim.workspace_id),
        now,
        after=claim.event_seq - 1,
        limit=1,
        expire=False,
        keyring=current_keyring(),
    )
    if not items or items[0].event.seq != claim.event_seq:
        raise MessageGone(f"event seq {claim.event_seq} is not in the chain")
    return FeedItemSchema().dump(items[0])


def _encode(message: dict) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()


_WHAT = {
    "proposed": "proposed",
    "approval_recorded": "got an approval",
    "approved": "approved",
    "rejected": "rejected",
    "executed": "executed",
    "expired": "expired unapproved",
}


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _escape(text) -> str:
    # Slack's mrkdwn reads &, < and > as markup.
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(event: dict, action: dict | None, public_url: str) -> dict:
    """A Slack incoming-webhook message: what happened, tier, type, target, reason, who, a link."""
    who = _escape(event["actor"]["name"])
    if action is None:
        text = f"AuditTrail: {event['type'].replace('_', ' ')} by {who}."
        return {"text": text, "blocks": [_section(text)]}
    what = _WHAT.get(event["type"], event["type"])
    headline = (
        f"Tier {action['tier']} {_escape(action['action_type'])} on {_escape(action['target_ref'])} {what} by {who}"
    )
    fields = [
        f"*Tier*\n{action['tier']}",
        f"*Type*\n{_escape(action['action_type'])}",
        f"*Target*\n{_escape(action['target_ref'])}",
        f"*Who*\n{who}",
    ]
    blocks = [
        _section(f"*{headline}*"),
        {"type": "section", "fields": [{"type": "mrkdwn", "text": field} for field in fields]},
        _section(f"*Reason*\n{_escape(action['reason'])}"),
    ]
    if public_url:
        link = f"{public_url.rstrip('/')}/deployments#action={action['id']}"
        blocks.append(_section(f"<{link}|Open the action in AuditTrail>"))
    return {"text": headline + ".", "blocks": blocks}


def signed_headers(claim: webhook_outbox.Claim, body: bytes, timestamp: int) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt."""
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": claim.delivery_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(claim.secret, claim.delivery_id, timestamp, body),
    }


class Worker:
    """The delivery loop of one process; `stop()` lets the attempts in flight finish, then ends it."""

    def __init__(self, app: Flask, clock=_utcnow):
        config = app.config
        self.app = app
        self.clock = clock
        self.timeout = float(config["AUDITTRAIL_WEBHOOK_TIMEOUT_SECONDS"])
        self.retry_scale = float(config["AUDITTRAIL_WEBHOOK_RETRY_SCALE"])
        self.poll_seconds = float(config["AUDITTRAIL_WEBHOOK_POLL_SECONDS"])
        self.concurrency = int(config["AUDITTRAIL_WEBHOOK_CONCURRENCY"])
        # Longer than any attempt can take (the timeout is enforced), and short enough that a
        # killed worker's claims are tried again within 30 s (§3).
        self.lease_seconds = float(config["AUDITTRAIL_WEBHOOK_LEASE_SECONDS"])
        self.public_url = config["AUDITTRAIL_PUBLIC_URL"]
        self.rules = url_rules(config)
        self._stopping = threading.Event()
        self._queued_at = float("-inf")
        self._in_flight: dict[Future, tuple[webhook_outbox.Claim, datetime]] = {}

    def stop(self, *_ignored) -> None:
        self._stopping.set()

    def run(self) -> None:
        """Deliver until stopped."""
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="webhook") as pool:
            while not self._stopping.is_set():
                self._step(pool)
            self._finish()

    def _step(self, pool: ThreadPoolExecutor) -> None:
        with self.app.app_context():
            try:
                now = self.clock()
                # Once per poll interval: each pass is a write per webhook that is behind, and on
                # SQLite every write waits its turn with the requests' own.
                if time.monotonic() - self._queued_at >= self.poll_seconds:
                    self._queued_at = time.monotonic()
                    webhook_outbox.queue_new_events(now)
                free = self.concurrency - len(self._in_flight)
                # Claimed in batches: half the slots free, or none busy, before claiming again.
                if free >= max(1, self.concurrency // 2) or not self._in_flight:
                    read: dict = {}
                    for claim in webhook_outbox.claim_due(now, free, self.lease_seconds):
                        self._start(pool, claim, read)
            except SQLAlchemyError as error:
                # The database is away: what was claimed stays leased and is retried later.
                log.warning("webhooks: database unavailable (%s); retrying", error.__class__.__name__)
            finally:
                # Rolls back too; a rollback of its own here could raise on a dead connection and end the worker.
                release_session()
        if self._in_flight:
            done, _ = wait(list(self._in_flight), timeout=self.poll_seconds, return_when=FIRST_COMPLETED)
            self._record(done)
        else:
            self._stopping.wait(self.poll_seconds)

    def _start(self, pool: ThreadPoolExecutor, claim: webhook_outbox.Claim, read: dict) -> None:
        attempted_at = self.clock()
        try:
            body = build_body(claim, attempted_at, self.public_url, read)
        except (MessageGone, ValueError, KeyError) as error:
            log.error("webhooks: delivery %s could not be built: %s", claim.delivery_id, error)
            webhook_outbox.release(claim, f"Could not be built: {error}", attempted_at)
            return
        headers = signed_headers(claim, body, int(attempted_at.timestamp()))
        future = pool.submit(send, claim.url, body, headers, self.timeout, self.rules)
        self._in_flight[future] = (claim, attempted_at)

    def _record(self, done) -> None:
        """Record the finished attempts, all of them in one short transaction.

        One write transaction per batch rather than per attempt: on SQLite each one takes the
        database's single write lock, which proposals wait for.
        """
        if not done:
            return
        outcomes = []
        for future in done:
            claim, attempted_at = self._in_flight.pop(future)
            try:
                result = future.result()
            except Exception as error:  # noqa: BLE001 — a sender bug must not stop the loop
                result = AttemptResult(None, f"{error.__class__.__name__}: {error}"[:500])
            outcomes.append((claim, attempted_at, result))
        with self.app.app_context():
            try:
                recorded_at = self.clock()
                with unit_of_work():
                    states = [
                        webhook_outbox.record_attempt(claim, result, attempted_at, recorded_at, self.retry_scale)
                        for claim, attempted_at, result in outcomes
                    ]
            except SQLAlchemyError as error:
                # Not recorded: the leases run out and the deliveries are sent again (at least once).
                log.warning("webhooks: could not record %d attempts (%s)", len(outcomes), error.__class__.__name__)
                return
            finally:
                release_session()
        for (claim, _attempted_at, result), state in zip(outcomes, states, strict=True):
            log.info(
                "webhooks: %s to %s: %s (%s)",
                claim.delivery_id,
                claim.webhook_id,
                state or "lease lost",
                result.status_code if result.status_code is not None else result.error,
            )

    def _finish(self) -> None:
        deadline = time.monotonic() + self.timeout + 1
        while self._in_flight and time.monotonic() < deadline:
            done, _ = wait(list(self._in_flight), timeout=max(0.01, deadline - time.monotonic()))
            self._record(done)


def run_worker(app: Flask) -> None:
    """Run one worker until SIGTERM or SIGINT (the attempts in flight are finished and recorded)."""
    worker = Worker(app)
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
    log.info(
        "webhooks worker started (concurrency %s, timeout %g s, retry scale %g)",
        worker.concurrency,
        worker.timeout,
        worker.retry_scale,
    )
    worker.run()
    log.info("webhooks worker stopped")
