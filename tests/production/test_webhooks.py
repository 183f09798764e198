"""Webhooks under load on the production path: gunicorn, PostgreSQL, two `flask webhooks worker`
processes, 1 000 events written while one worker is SIGKILLed midway.

Every event reaches the receiver at least once, a duplicate carries the same `webhook-id`, and
nothing arrives that is not in the chain. Waits are the worker's own, scaled down by configuration.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict

import pytest
from sqlalchemy import create_engine
from sqlalchemy import text

from tests.production import harness
from tests.support.webhooks import Receiver
from tests.support.webhooks import Reply
from tests.support.webhooks import WorkerProcess
from tests.support.webhooks import verify_signature

pytestmark = pytest.mark.production

EVENTS = 1000
WRITERS = 4
WORKER_SETTINGS = {
    "AUDITTRAIL_WEBHOOK_ALLOW_PRIVATE": "true",  # the receiver is on loopback
    "AUDITTRAIL_WEBHOOK_RETRY_SCALE": "0.0001",
    "AUDITTRAIL_WEBHOOK_POLL_SECONDS": "0.1",
    "AUDITTRAIL_WEBHOOK_TIMEOUT_SECONDS": "2",
    "AUDITTRAIL_WEBHOOK_LEASE_SECONDS": "3",
}


@pytest.fixture(scope="module")
def server(database, log_dir):
    server = harness.GunicornServer(
        database,
        log_dir,
        workers=2,
        AUDITTRAIL_TRANSITION_RATE_LIMIT="100000/minute",
        AUDITTRAIL_WEBHOOK_ALLOW_PRIVATE="true",
    ).start()
    yield server
    server.stop()


def production_worker(database: str) -> WorkerProcess:
    worker = WorkerProcess(database)
    worker.environ = harness.app_environment(database, **WORKER_SETTINGS)
    return worker


def chain_after(database: str, workspace_id: str, after: int) -> dict[int, str]:
    engine = create_engine(database)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT seq, type FROM audit_events WHERE workspace_id = :w AND seq > :s"),
                {"w": workspace_id, "s": after},
            )
            return dict(rows.all())
    finally:
        engine.dispose()


def test_two_workers_one_killed_midway_deliver_every_event_at_least_once_and_invent_none(server, database):
    operator = harness.demo_login(server.port)
    key = operator.new_api_key("load")
    with Receiver() as receiver:
        receiver.default = Reply(200, delay=0.005)
        created = server.call("POST", "/api/v1/webhooks", {"url": receiver.url}, operator.jwt_headers)
        assert created.status == 201, created.text
        secret = created.json["secret"]
        created_seq = max(chain_after(database, operator.workspace_id, 0))

        first = production_worker(database).start()
        second = production_worker(database).start()
        failures = []

        def write(count: int):
            for _ in range(count):
                reply = server.call("POST", "/api/v1/deployments/actions", harness.proposal(tier=2),
                                    {"X-API-Key": key})  # fmt: skip
                if reply.status != 201:
                    failures.append(reply.status)

        writers = [threading.Thread(target=write, args=(EVENTS // WRITERS,)) for _ in range(WRITERS)]
        try:
            for writer in writers:
                writer.start()
            # Midway through the load, while it is sending: a kill -9, leases and all.
            receiver.wait_for(lambda requests: len(requests) >= EVENTS // 3, timeout=120, what="a third")
            first.kill()
            for writer in writers:
                writer.join(timeout=180)
            assert failures == []
            chain = chain_after(database, operator.workspace_id, created_seq)
            assert len(chain) == EVENTS

            def every_event_received(requests):
                return set(chain) <= {request.json["data"]["event"]["seq"] for request in requests}

            got = receiver.wait_for(every_event_received, timeout=120, what="every event")
        finally:
            first.stop()
            second.stop()
            first.log.close()
            second.log.close()

    ids_by_seq = defaultdict(set)
    for request in got:
        assert verify_signature(secret, request)
        event = request.json["data"]["event"]
        # Nothing invented: each body is an event of this workspace's chain, as the chain has it.
        assert chain.get(event["seq"]) == event["type"], json.dumps(request.json)[:300]
        assert request.json["data"]["action"]["id"] == event["action_id"]
        ids_by_seq[event["seq"]].add(request.id)
    assert set(ids_by_seq) == set(chain)
    # A duplicate (the killed worker's claim, sent again) carries the id it had.
    assert all(len(ids) == 1 for ids in ids_by_seq.values())
    assert len({next(iter(ids)) for ids in ids_by_seq.values()}) == EVENTS
