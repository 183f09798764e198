"""live.md §3 on the production path: gunicorn's gevent workers ×4, PostgreSQL LISTEN/NOTIFY, Redis.

Streams end after a few seconds here (AUDITTRAIL_STREAM_MAX_SECONDS) so that the clean end and the
resume with Last-Event-ID are exercised all along; nothing sleeps for long.
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.production import harness

pytestmark = pytest.mark.production

WORKERS = 4
LIVE_SETTINGS = {
    "AUDITTRAIL_TRANSITION_RATE_LIMIT": "100000/minute",
    "AUDITTRAIL_STREAM_MAX_SECONDS": "4",
    "AUDITTRAIL_STREAM_KEEPALIVE_SECONDS": "0.5",
}


@pytest.fixture(scope="module")
def server(database, log_dir):
    server = harness.GunicornServer(
        database, log_dir, workers=WORKERS, RATELIMIT_STORAGE_URI=harness.redis_url(), **LIVE_SETTINGS
    )
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def operator(server):
    operator = harness.demo_login(server.port)
    return operator, {"X-API-Key": operator.new_api_key("live")}


def head_seq(server, key) -> int:
    reply = server.call("GET", "/api/v1/events?after=0&limit=500", headers=key)
    assert reply.status == 200, reply.text
    items = reply.json["items"]
    assert len(items) < 500
    return items[-1]["seq"] if items else 0


def _arrivals(server, key, streams: int, proposals: int):
    """Open `streams` streams (each on a fresh connection, so on any worker), then propose; time each arrival."""
    opened = []
    for index in range(streams):
        stream = harness.EventStream(server.port, {**key, "X-Request-ID": f"stream-{uuid.uuid4().hex[:8]}-{index}"})
        assert stream.status == 200
        opened.append(stream)
    arrivals: dict[int, dict[str, float]] = {index: {} for index in range(streams)}

    def read(index, stream):
        try:
            for event in stream.events():
                arrivals[index][event.data["action_id"]] = event.received_at
        except OSError:
            pass

    readers = [threading.Thread(target=read, args=(i, s), daemon=True) for i, s in enumerate(opened)]
    for reader in readers:
        reader.start()
    time.sleep(0.3)  # every stream has sent `retry:` and subscribed before its first byte
    sent = []
    for _ in range(proposals):
        request_id = f"propose-{uuid.uuid4().hex}"
        started = time.monotonic()
        reply = server.call("POST", harness.ACTIONS, harness.proposal(), {**key, "X-Request-ID": request_id})
        assert reply.status == 201, reply.text
        sent.append((reply.json["id"], started, request_id))
        time.sleep(0.3)
    # Each stream ends by itself at its maximum life (a clean end), and its access-log line is written.
    for reader in readers:
        reader.join(timeout=15)
    assert not any(reader.is_alive() for reader in readers), "a stream did not end at its maximum life"
    for stream in opened:
        stream.kill()
    return opened, arrivals, sent


def test_an_event_committed_through_one_worker_reaches_streams_on_the_others_within_a_second(server, operator):
    _, key = operator
    opened, arrivals, sent = _arrivals(server, key, streams=8, proposals=3)

    for action_id, started, _ in sent:
        for index in arrivals:
            assert action_id in arrivals[index], f"stream {index} never got {action_id}"
            # From before the request that committed it: the latency is at most this.
            assert arrivals[index][action_id] - started < 1.0, (index, arrivals[index][action_id] - started)
    assert all(stream.retry == 3000 for stream in opened)
    # Which worker served what: the access log's pid (a stream's line is written when it ends).
    request_ids = {request_id for *_, request_id in sent}
    records = server.access_records_for(request_ids)
    proposing_pids = {records[request_id]["pid"] for request_id in request_ids}
    assert len(set(server.worker_pids())) == WORKERS
    assert proposing_pids, records
    stream_records = [r for r in server.access_records() if str(r.get("request_id", "")).startswith("stream-")]
    stream_pids = {record["pid"] for record in stream_records}
    assert stream_pids - proposing_pids or len(proposing_pids) > 1, (stream_pids, proposing_pids)


def test_with_no_notifications_streams_still_get_each_event_within_the_poll_interval(database, log_dir):
    """A lost notification (here: none at all) delays an event by the 1 s poll of the chain heads, no more."""
    quiet = harness.GunicornServer(
        database,
        log_dir,
        workers=2,
        RATELIMIT_STORAGE_URI=harness.redis_url(),
        AUDITTRAIL_STREAM_LISTEN="false",
        **LIVE_SETTINGS,
    )
    quiet.start()
    try:
        operator = harness.demo_login(quiet.port)
        key = {"X-API-Key": operator.new_api_key("quiet")}
        _, arrivals, sent = _arrivals(quiet, key, streams=4, proposals=2)
    finally:
        quiet.stop()

    for action_id, started, _ in sent:
        for index in arrivals:
            assert arrivals[index][action_id] - started < 1.5, (index, arrivals[index][action_id] - started)


def test_killed_and_resumed_streams_lose_and_repeat_nothing_while_200_events_are_written(server, operator):
    _, key = operator
    start = head_seq(server, key)
    created: list[str] = []

    def write(_):
        reply = server.call("POST", harness.ACTIONS, harness.proposal(), key)
        assert reply.status == 201, reply.text
        created.append(reply.json["id"])

    writer = threading.Thread(target=lambda: list(ThreadPoolExecutor(4).map(write, range(200))), daemon=True)
    writer.start()
    events, connections = harness.follow(
        server.port, key, until=lambda seen: len(seen) >= 200, after=start, kill_every=23, deadline=180
    )
    writer.join(timeout=180)

    seqs = [event.id for event in events]
    assert seqs == list(range(start + 1, start + 201)), "a gap or a repeat across reconnects"
    assert {event.data["action_id"] for event in events} == set(created)
    assert connections >= 200 // 23


@pytest.mark.skipif(shutil.which("pg_ctlcluster") is None, reason="needs a local PostgreSQL managed by pg_ctlcluster")
def test_a_postgresql_restart_mid_stream_loses_nothing(server, operator, database):
    _, key = operator
    start = head_seq(server, key)
    errors_before = len(server.error_text())
    acknowledged: list[str] = []
    stop_writing = threading.Event()

    def write():
        while not stop_writing.is_set():
            reply = server.call("POST", harness.ACTIONS, harness.proposal(), key, timeout=30)
            if reply.status == 201:
                acknowledged.append(reply.json["id"])
            else:
                assert reply.status == 503, reply.text
            time.sleep(0.1)

    def outage():
        time.sleep(1.5)
        try:
            harness.pg_ctlcluster("stop", "-m", "fast")
            time.sleep(3)
        finally:
            harness.pg_ctlcluster("start")
            deadline = time.monotonic() + 60
            while not harness.postgres_ready():
                assert time.monotonic() < deadline
                time.sleep(0.3)
        time.sleep(3)
        stop_writing.set()

    target: list[int] = []
    followed: dict = {}

    def read():
        followed["events"], followed["connections"] = harness.follow(
            server.port, key, until=lambda seen: bool(target) and len(seen) >= target[0], after=start, deadline=150
        )

    reader = threading.Thread(target=read, daemon=True)
    writer = threading.Thread(target=write, daemon=True)
    restarter = threading.Thread(target=outage, daemon=True)
    reader.start()
    writer.start()
    restarter.start()
    restarter.join(timeout=120)
    writer.join(timeout=60)
    target.append(head_seq(server, key) - start)
    total = target[0]
    reader.join(timeout=60)
    events = followed["events"]

    assert [event.id for event in events] == list(range(start + 1, start + total + 1))
    assert set(acknowledged) <= {event.data["action_id"] for event in events}
    assert len(acknowledged) > 10
    # No request (a stream's included) ended in an exception the app let reach gunicorn.
    assert "Error handling request" not in server.error_text()[errors_before:]
    harness.verify_audit_chain(database)
