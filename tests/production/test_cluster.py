"""Four gunicorn workers on PostgreSQL and Redis: one shared transition bucket, one winner per race,
JSON access logs, and a Redis outage that leaves transitions limited and answering.
"""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import create_engine
from sqlalchemy import text

from tests.production import harness

pytestmark = pytest.mark.production

WORKERS = 4
LIMIT = 30


@pytest.fixture(scope="module")
def server(database, log_dir):
    server = harness.GunicornServer(
        database,
        log_dir,
        workers=WORKERS,
        RATELIMIT_STORAGE_URI=harness.redis_url(),
        AUDITTRAIL_TRANSITION_RATE_LIMIT=f"{LIMIT}/minute",
    )
    try:
        yield server.start()
    finally:
        server.stop()


def test_readyz_reports_the_database_and_the_shared_limiter(server):
    reply = server.call("GET", "/readyz")

    assert reply.status == 200
    assert reply.json == {"status": "ok", "checks": {"database": "ok", "rate_limiter": "ok"}}


def test_access_log_is_one_json_object_per_line_with_the_request_id(server):
    request_id = f"log-{uuid.uuid4().hex}"

    reply = server.call(
        "GET", "/healthz?probe=1", headers={"X-Request-ID": request_id, "User-Agent": 'a "quoted" agent'}
    )

    assert reply.headers["x-request-id"] == request_id
    record = server.access_records_for({request_id})[request_id]
    assert record["method"] == "GET"
    assert record["path"] == "/healthz"
    assert record["query"] == "probe=1"
    assert record["status"] == 200
    assert record["user_agent"] == 'a "quoted" agent'
    assert record["pid"] in server.worker_pids()
    assert record["time"].endswith("Z") and isinstance(record["duration_ms"], float)
    # Every line so far parses, and every one carries the request id the app answered with.
    assert all(r["request_id"] for r in server.access_records())


def test_31_transitions_from_one_client_across_the_workers_get_exactly_one_429(server, database):
    operator = harness.demo_login(server.port)
    marker = f"bucket-{uuid.uuid4().hex}"
    request_ids = [f"{marker}-{i}" for i in range(LIMIT + 1)]

    def propose(request_id):
        headers = {**operator.jwt_headers, "X-Request-ID": request_id}
        return server.call("POST", harness.ACTIONS, harness.proposal(reason=marker), headers)

    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(propose, request_ids))

    assert Counter(reply.status for reply in replies) == {201: LIMIT, 429: 1}
    refused = next(reply for reply in replies if reply.status == 429)
    harness.assert_error_envelope(refused, "rate_limited")
    assert int(refused.headers["retry-after"]) >= 1
    # The bucket really was shared: the requests were answered by more than one worker.
    pids = {record["pid"] for record in server.access_records_for(set(request_ids)).values()}
    assert len(pids) >= 2, f"all 31 requests went to one worker ({pids}); the test proves nothing"
    # The refused proposal left no row behind.
    engine = create_engine(database)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT count(*) FROM deployment_actions WHERE reason = :marker"), {"marker": marker}
        ).scalar()
    engine.dispose()
    assert rows == LIMIT


def test_50_concurrent_approvals_of_one_action_have_one_winner_and_one_event(server, database):
    operator = harness.demo_login(server.port)
    created = server.call("POST", harness.ACTIONS, harness.proposal(tier=2), operator.jwt_headers)
    assert created.status == 201, created.text
    action_id = created.json["id"]
    # One API key per approver: each has its own bucket, so the limit plays no part in the race.
    keys = [operator.new_api_key(f"approver {i}") for i in range(50)]
    start = threading.Barrier(len(keys))

    def approve(key):
        start.wait()
        return server.call("POST", f"{harness.ACTIONS}/{action_id}/approve", {"note": "race"}, {"X-API-Key": key})

    with ThreadPoolExecutor(max_workers=len(keys)) as pool:
        replies = list(pool.map(approve, keys))

    assert Counter(reply.status for reply in replies) == {200: 1, 409: 49}, Counter(r.text[:80] for r in replies)
    for reply in replies:
        if reply.status == 409:
            harness.assert_error_envelope(reply, "invalid_transition")
    detail = server.call("GET", f"{harness.ACTIONS}/{action_id}", headers=operator.jwt_headers).json
    assert detail["status"] == "approved"
    assert [event["type"] for event in detail["events"]] == ["proposed", "approved"]
    assert harness.status_problems(database, [operator.workspace_id]) == []
    harness.verify_audit_chain(database)


def _redis_cli(*args: str) -> subprocess.CompletedProcess:
    host, port = harness.redis_host_port()
    return subprocess.run(["redis-cli", "-h", host, "-p", str(port), *args], capture_output=True, text=True, timeout=10)


def _start_redis() -> None:
    host, port = harness.redis_host_port()
    if _redis_cli("ping").stdout.strip() != "PONG":
        subprocess.run(
            [
                "redis-server",
                "--daemonize",
                "yes",
                "--bind",
                host,
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            check=True,
            timeout=10,
        )
    deadline = time.monotonic() + 30
    while _redis_cli("ping").stdout.strip() != "PONG":
        assert time.monotonic() < deadline, "Redis did not come back"
        time.sleep(0.2)


def _remaining_after(server, key: str, count: int) -> list[int]:
    """X-RateLimit-Remaining seen by `count` proposals of a fresh key, spread over the workers."""
    remaining = []
    for _ in range(count):
        reply = server.call("POST", harness.ACTIONS, harness.proposal(tier=1), {"X-API-Key": key})
        assert reply.status == 201, reply.text
        remaining.append(int(reply.headers["x-ratelimit-remaining"]))
    return remaining


def test_redis_outage_keeps_transitions_limited_and_answering_then_recovers(server):
    operator = harness.demo_login(server.port)
    key = operator.new_api_key("during the outage")
    assert _redis_cli("ping").stdout.strip() == "PONG"

    try:
        _redis_cli("shutdown", "nosave")
        deadline = time.monotonic() + 10
        while _redis_cli("ping").stdout.strip() == "PONG":
            assert time.monotonic() < deadline, "Redis did not stop"
            time.sleep(0.1)

        ready = server.call("GET", "/readyz")
        assert ready.status == 200
        assert ready.json["checks"] == {"database": "ok", "rate_limiter": "degraded (in-memory fallback)"}

        # Each worker now counts in its own memory: at most LIMIT per worker, so among
        # WORKERS × LIMIT + 1 transitions at least one is refused, and none fails.
        statuses = Counter()
        for i in range(WORKERS * LIMIT + 1):
            reply = server.call("POST", harness.ACTIONS, harness.proposal(tier=1), {"X-API-Key": key})
            statuses[reply.status] += 1
            if reply.status == 429:
                harness.assert_error_envelope(reply, "rate_limited")
            if i % 20 == 0:
                listed = server.call("GET", f"{harness.ACTIONS}?limit=5", headers={"X-API-Key": key})
                assert listed.status == 200, listed.text
                summary = server.call("GET", "/api/v1/deployments/summary", headers={"X-API-Key": key})
                assert summary.status == 200, summary.text
        assert set(statuses) <= {201, 429}, statuses
        assert statuses[429] >= 1 and statuses[201] <= WORKERS * LIMIT, statuses
        assert "falling back to in-memory storage" in server.error_text()
    finally:
        _start_redis()

    # Every worker goes back to the shared bucket by itself (flask-limiter retries the storage with
    # a backoff of at most 32 s): a fresh key then sees one count, whichever worker answers.
    # /readyz says so too, from every worker that answers it.
    deadline = time.monotonic() + 90
    while True:
        remaining = _remaining_after(server, operator.new_api_key("after the outage"), 8)
        limiter_checks = [server.call("GET", "/readyz").json["checks"]["rate_limiter"] for _ in range(8)]
        if remaining == list(range(LIMIT - 1, LIMIT - 9, -1)) and set(limiter_checks) == {"ok"}:
            break
        assert time.monotonic() < deadline, f"the workers still count apart: {remaining}, {limiter_checks}"
        time.sleep(1)
