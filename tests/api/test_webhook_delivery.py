"""Webhook deliveries end to end (webhooks.md §2–§3): the real worker, as a subprocess, against a real
receiver on loopback, on SQLite and (with TEST_DATABASE_URL) PostgreSQL.

Retry waits are scaled down by AUDITTRAIL_WEBHOOK_RETRY_SCALE; the tests wait on conditions, not on time.
"""

from __future__ import annotations

import json
import time
from datetime import UTC
from datetime import datetime

import pytest
from sqlalchemy import select

from audittrail.extensions import db
from audittrail.models import Webhook
from audittrail.models import WebhookDelivery
from audittrail.services import webhooks
from audittrail.services.actors import user_actor
from audittrail.services.webhook_http import UrlRules
from tests.conftest import FakeClock
from tests.factories import add_member
from tests.factories import approve
from tests.factories import make_team
from tests.factories import propose
from tests.support.webhooks import Receiver
from tests.support.webhooks import Reply
from tests.support.webhooks import WorkerProcess
from tests.support.webhooks import verify_signature

DEVELOPMENT = UrlRules(strict=False)


@pytest.fixture
def clock() -> FakeClock:
    # The worker runs on the real clock: the test's writes happen at the same time.
    return FakeClock(datetime.now(UTC))


@pytest.fixture
def admin(team, clock):
    return user_actor(add_member(team, clock(), "Ada", role="admin"))


@pytest.fixture
def receiver():
    with Receiver() as receiver:
        yield receiver


@pytest.fixture
def worker(database_url):
    with WorkerProcess(database_url) as process:
        yield process


def subscribe(admin, receiver, clock, **options):
    webhook, secret = webhooks.create_webhook(admin, receiver.url, clock(), DEVELOPMENT, **options)
    return webhook.id, secret


def deliveries(webhook_id: str) -> list[WebhookDelivery]:
    db.session.rollback()
    return list(db.session.scalars(select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)))


def wait_until(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_events_arrive_signed_with_the_standard_headers_and_body(team, admin, receiver, clock, worker):
    webhook_id, secret = subscribe(admin, receiver, clock)
    action = propose(team.alice_actor, clock(), tier=2)
    got = receiver.wait_for(lambda requests: len(requests) >= 1, what="the proposal")
    request = got[0]
    assert verify_signature(secret, request)
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == "AuditTrail-Webhooks/1"
    assert request.headers["webhook-signature"].startswith("v1,")
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 30
    body = request.json
    assert body["type"] == "deployment_action.proposed"
    assert body["timestamp"].endswith("Z")
    assert set(body["data"]) == {"event", "action"}
    assert body["data"]["event"]["type"] == "proposed" and "action" not in body["data"]["event"]
    assert body["data"]["event"]["action_id"] == action.id
    assert body["data"]["action"]["id"] == action.id and body["data"]["action"]["tier"] == 2
    # A tampered body does not verify with the same headers.
    request.body = request.body.replace(b"proposed", b"approved", 1)
    assert not verify_signature(secret, request)
    assert not verify_signature("whsec_" + "A" * 44, got[0])
    assert [d.id for d in deliveries(webhook_id)] == [got[0].id]


def test_only_subscribed_types_are_sent_and_its_own_creation_is_not(team, admin, receiver, clock, worker):
    subscribe(admin, receiver, clock, event_types=["approved", "webhook_created"])
    action = propose(team.alice_actor, clock(), tier=2)
    approve(team.bob_actor, action, clock())
    webhooks.create_webhook(admin, "http://127.0.0.1:9/other", clock(), DEVELOPMENT)
    got = receiver.wait_for(lambda requests: len(requests) >= 2, what="approved and the second webhook_created")
    time.sleep(0.3)  # nothing else comes: the proposal is not subscribed
    assert sorted(receiver.types()) == ["deployment_action.approved", "deployment_action.webhook_created"]
    created = next(r for r in got if r.json["type"] == "deployment_action.webhook_created")
    assert created.json["data"]["action"] is None and "secret" not in json.dumps(created.json)


def test_500_500_then_200_is_delivered_with_the_same_id_each_time(team, admin, receiver, clock, worker):
    receiver.script = [Reply(500), Reply(500), Reply(200)]
    webhook_id, _ = subscribe(admin, receiver, clock)
    propose(team.alice_actor, clock())
    got = receiver.wait_for(lambda requests: len(requests) >= 3, what="three attempts")
    assert len({request.id for request in got}) == 1
    delivery = wait_until(lambda: next((d for d in deliveries(webhook_id) if d.state == "delivered"), None))
    assert (delivery.id, delivery.attempts, delivery.last_status_code) == (got[0].id, 3, 200)


def test_a_410_disables_and_enabling_resumes_with_the_events_from_then_on(team, admin, receiver, clock, worker):
    receiver.script = [Reply(410)]
    webhook_id, _ = subscribe(admin, receiver, clock, event_types=["proposed"])
    propose(team.alice_actor, clock(), target_ref="first-one")

    def disabled():
        db.session.rollback()
        return db.session.get(Webhook, webhook_id).disabled_at is not None

    wait_until(disabled, what="the webhook disabled")
    assert "410" in db.session.get(Webhook, webhook_id).disabled_reason
    assert [d.state for d in deliveries(webhook_id)] == ["failed"]
    propose(team.alice_actor, clock(), target_ref="while-disabled")
    time.sleep(0.3)
    assert len(receiver.requests) == 1
    enabled = webhooks.enable_webhook(admin, webhook_id, clock())
    assert (enabled.disabled_at, enabled.disabled_reason) == (None, None)
    propose(team.alice_actor, clock(), target_ref="after-enabling")
    got = receiver.wait_for(lambda requests: len(requests) >= 2, what="the event after enabling")
    time.sleep(0.3)
    targets = [r.json["data"]["action"]["target_ref"] for r in receiver.requests]
    assert targets == ["first-one", "after-enabling"], got


def test_a_429_with_retry_after_waits_as_long_as_asked_unscaled(team, admin, receiver, clock, worker):
    receiver.script = [Reply(429, {"Retry-After": "1"})]
    webhook_id, _ = subscribe(admin, receiver, clock)
    propose(team.alice_actor, clock())
    got = receiver.wait_for(lambda requests: len(requests) >= 2, what="the retry after Retry-After")
    assert got[1].at - got[0].at >= 0.95  # the scaled schedule would have retried in microseconds
    assert got[0].id == got[1].id
    wait_until(lambda: [d.state for d in deliveries(webhook_id)] == ["delivered"])


def test_a_receiver_slower_than_the_timeout_is_a_failed_attempt_then_retried(
    team, admin, receiver, clock, database_url
):
    receiver.script = [Reply(200, delay=2.0)]
    with WorkerProcess(database_url, {"AUDITTRAIL_WEBHOOK_TIMEOUT_SECONDS": "0.5"}):
        webhook_id, _ = subscribe(admin, receiver, clock)
        propose(team.alice_actor, clock())
        got = receiver.wait_for(lambda requests: len(requests) >= 2, what="the retry after the timeout")
        assert got[1].at - got[0].at < 1.9  # the worker gave up at the timeout, not when the receiver answered
        delivery = wait_until(lambda: next((d for d in deliveries(webhook_id) if d.state == "delivered"), None))
        assert delivery.attempts == 2


def test_deleting_stops_deliveries(team, admin, receiver, clock, worker):
    webhook_id, _ = subscribe(admin, receiver, clock, event_types=["proposed"])
    propose(team.alice_actor, clock())
    receiver.wait_for(lambda requests: len(requests) >= 1)
    webhooks.delete_webhook(admin, webhook_id, clock())
    propose(team.alice_actor, clock())
    time.sleep(0.5)
    assert len(receiver.requests) == 1


def test_a_workspace_receives_only_its_own_events(team, admin, receiver, clock, worker):
    rivals = make_team(clock(), name="Rivals")
    subscribe(admin, receiver, clock)
    propose(rivals.alice_actor, clock(), target_ref="theirs")
    propose(team.alice_actor, clock(), target_ref="ours")
    receiver.wait_for(lambda requests: len(requests) >= 1)
    time.sleep(0.3)
    assert [r.json["data"]["action"]["target_ref"] for r in receiver.requests] == ["ours"]


def test_a_ping_is_delivered(team, admin, receiver, clock, worker):
    webhook_id, secret = subscribe(admin, receiver, clock)
    ping = webhooks.ping_webhook(admin, webhook_id, clock())
    got = receiver.wait_for(lambda requests: len(requests) >= 1)
    assert got[0].json["type"] == "webhook.ping" and got[0].json["data"] == {}
    assert got[0].id == ping.id and verify_signature(secret, got[0])


def test_slack_format_sends_a_message_with_a_link(team, admin, receiver, clock, database_url):
    with WorkerProcess(database_url, {"AUDITTRAIL_PUBLIC_URL": "https://audit.example.com"}):
        _, secret = subscribe(admin, receiver, clock, format="slack", event_types=["proposed"])
        action = propose(team.alice_actor, clock(), tier=3, target_ref="run_8f3a2c91d4e7")
        got = receiver.wait_for(lambda requests: len(requests) >= 1)
    message = got[0].json
    assert set(message) == {"text", "blocks"} and verify_signature(secret, got[0])
    text = json.dumps(message)
    for part in ("Tier 3", "kill_run", "run_8f3a2c91d4e7", "Cost spike", "Alice"):
        assert part in text
    assert f"https://audit.example.com/deployments#action={action.id}" in text


def test_five_failed_deliveries_in_a_row_disable_the_webhook(team, admin, receiver, clock, worker):
    receiver.default = Reply(500)
    webhook_id, _ = subscribe(admin, receiver, clock, event_types=["proposed"])
    for number in range(5):
        propose(team.alice_actor, clock(), target_ref=f"run-{number}")

    def disabled():
        db.session.rollback()
        return db.session.get(Webhook, webhook_id).disabled_reason

    reason = wait_until(disabled, timeout=20, what="five failed deliveries")
    assert reason.startswith("5 deliveries in a row failed")
    assert sorted(d.state for d in deliveries(webhook_id)) == ["failed"] * 5
    assert all(d.attempts == 10 for d in deliveries(webhook_id))


def test_a_worker_killed_mid_delivery_loses_nothing_and_the_retry_keeps_its_id(
    team, admin, receiver, clock, database_url
):
    receiver.hold.set()  # the first attempt hangs until the worker is dead
    first = WorkerProcess(database_url).start()
    try:
        webhook_id, _ = subscribe(admin, receiver, clock)
        propose(team.alice_actor, clock())
        receiver.wait_for(lambda requests: len(requests) >= 1, what="the first attempt")
        first.kill()
    finally:
        first.stop()
        first.log.close()
    receiver.hold.clear()
    with WorkerProcess(database_url):
        got = receiver.wait_for(lambda requests: len(requests) >= 2, timeout=15, what="the retry by another worker")
        assert got[0].id == got[1].id
        wait_until(lambda: [d.state for d in deliveries(webhook_id)] == ["delivered"])


def test_a_production_worker_refuses_a_private_address_at_the_attempt(team, admin, receiver, clock, database_url):
    # Created where the rule does not apply (development); sent by a production worker, where it does.
    production = {
        "AUDITTRAIL_ENV": "production",
        "AUDITTRAIL_SIGNING_KEY": "YmVuY2gtc2lnbmluZy1rZXktMDEyMzQ1Njc4OWFiY2Q=",
        "AUDITTRAIL_WEBHOOK_RETRY_SCALE": "1.0",  # one attempt within the test
    }
    webhook_id, _ = subscribe(admin, receiver, clock, event_types=["proposed"])
    https_loopback = receiver.url.replace("http://", "https://")
    other = webhooks.create_webhook(admin, https_loopback, clock(), DEVELOPMENT, event_types=["proposed"])[0]
    other_id = other.id
    with WorkerProcess(database_url, production):
        propose(team.alice_actor, clock())

        def attempted():
            found = deliveries(webhook_id) + deliveries(other_id)
            return found if len(found) == 2 and all(d.attempts == 1 for d in found) else None

        found = wait_until(attempted, what="one refused attempt each")
    assert receiver.requests == []
    errors = {d.webhook_id: d.last_error for d in found}
    assert "https" in errors[webhook_id] and errors[webhook_id].startswith("Refused")
    assert "loopback" in errors[other_id] and errors[other_id].startswith("Refused")
    assert all(d.state == "pending" and d.last_status_code is None for d in found)


@pytest.fixture
def commits():
    """How many transactions commit on the engine (reads end with a rollback and are not counted)."""
    from sqlalchemy import event

    seen = []

    def count(connection):
        seen.append(connection)

    event.listen(db.engine, "commit", count)
    yield seen
    event.remove(db.engine, "commit", count)


def test_queueing_for_several_webhooks_is_one_short_write_transaction(team, admin, receiver, clock, commits):
    # On SQLite every write transaction holds the one write lock that proposals wait for.
    from audittrail.services import webhook_outbox

    ids = [subscribe(admin, receiver, clock)[0] for _ in range(3)]
    propose(team.alice_actor, clock())
    db.session.commit()
    commits.clear()
    assert webhook_outbox.queue_new_events(datetime.now(UTC)) >= 3
    assert len(commits) == 1
    assert all(any(d.type == "deployment_action.proposed" for d in deliveries(webhook_id)) for webhook_id in ids)
    # Nothing is queued twice: a second pass finds every cursor moved and writes nothing.
    commits.clear()
    assert webhook_outbox.queue_new_events(datetime.now(UTC)) == 0
    assert commits == []


def test_a_queue_pass_that_lost_the_race_writes_nothing(team, admin, receiver, clock):
    from audittrail.services import webhook_outbox

    webhook_id, _ = subscribe(admin, receiver, clock)
    propose(team.alice_actor, clock())
    db.session.commit()
    real_rows = webhook_outbox._rows

    def another_worker_queues_first(*args, **kwargs):
        rows = real_rows(*args, **kwargs)
        # Between this pass's read and its write, another worker queues the same events.
        with db.engine.begin() as connection:
            connection.execute(
                Webhook.__table__.update().where(Webhook.id == webhook_id).values(cursor_seq=Webhook.cursor_seq + 1)
            )
        return rows

    webhook_outbox._rows = another_worker_queues_first
    try:
        assert webhook_outbox.queue_new_events(datetime.now(UTC)) == 0
    finally:
        webhook_outbox._rows = real_rows
    assert deliveries(webhook_id) == []


def test_finished_attempts_are_recorded_in_one_write_transaction(app, team, admin, receiver, clock, commits):
    from concurrent.futures import Future

    from audittrail.services import webhook_outbox
    from audittrail.services.webhook_http import AttemptResult
    from audittrail.webhook_worker import Worker

    webhook_id, _ = subscribe(admin, receiver, clock)
    for _ in range(3):
        webhooks.ping_webhook(admin, webhook_id, clock())
    now = datetime.now(UTC)
    claims = webhook_outbox.claim_due(now, 10, 30)
    assert len(claims) == 3
    worker = Worker(app)
    for claim in claims:
        future = Future()
        future.set_result(AttemptResult(200))
        worker._in_flight[future] = (claim, now)
    commits.clear()
    worker._record(list(worker._in_flight))
    assert len(commits) == 1
    assert sorted(d.state for d in deliveries(webhook_id)) == ["delivered"] * 3


def test_the_webhooks_of_one_event_share_one_read_of_it_in_a_pass(app, team, admin, receiver, clock):
    from sqlalchemy import event

    from audittrail.services import webhook_outbox
    from audittrail.webhook_worker import build_body

    plain_id, _ = subscribe(admin, receiver, clock)
    slack_id, _ = subscribe(admin, receiver, clock, format="slack")
    action = propose(team.bob_actor, clock())
    now = datetime.now(UTC)
    webhook_outbox.queue_new_events(now)
    claims = [c for c in webhook_outbox.claim_due(now, 10, 30) if c.event_seq is not None]
    last = max(c.event_seq for c in claims)  # the proposal's event, one delivery per webhook
    by_webhook = {c.webhook_id: c for c in claims if c.event_seq == last}
    assert set(by_webhook) == {plain_id, slack_id}

    statements = []

    def count(*_args):
        statements.append(1)

    read: dict = {}
    event.listen(db.engine, "before_cursor_execute", count)
    try:
        first = build_body(by_webhook[plain_id], now, "", read)
        after_first = len(statements)
        second = build_body(by_webhook[slack_id], now, "", read)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)

    assert after_first > 0 and len(statements) == after_first  # the second webhook read nothing
    assert first == build_body(by_webhook[plain_id], now, "")  # the same body as read on its own
    assert second == build_body(by_webhook[slack_id], now, "")
    assert json.loads(first)["data"]["action"]["id"] == action.id
    assert json.loads(second)["text"].startswith("Tier")
