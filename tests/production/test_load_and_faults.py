"""Load with a worker killed midway, then PostgreSQL stopped: nothing acknowledged is lost, nothing is
half-written, no 5xx but the 503 envelope, and the service comes back by itself.

The database outage stops the shared PostgreSQL server for a few seconds, so it runs last here.
"""

from __future__ import annotations

import http.client
import os
import random
import shutil
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass

import pytest

from tests.production import harness

pytestmark = pytest.mark.production

LOAD_SECONDS = 60
WORKSPACES = 4
CLIENTS_PER_WORKSPACE = 4  # 16 clients in all
OUTAGE_SECONDS = 5
TRANSITIONS = {"propose", "approve", "reject", "mark-executed"}
EVENT_OF = {"approve": "approved", "reject": "rejected", "mark-executed": "executed"}
# What a transition may answer under this load: acknowledged, or refused by the rules or a race.
TRANSITION_STATUSES = {200, 201, 400, 403, 409}


@pytest.fixture(scope="module")
def server(database, log_dir):
    server = harness.GunicornServer(
        database,
        log_dir,
        workers=4,
        threads=4,
        RATELIMIT_STORAGE_URI=harness.redis_url(),
        AUDITTRAIL_TRANSITION_RATE_LIMIT="100000/minute",
    )
    try:
        yield server.start()
    finally:
        server.stop()


@dataclass
class Sent:
    request_id: str
    op: str
    action_id: str | None
    started: float
    ended: float
    status: int | None  # None: the connection broke before an answer
    body: dict | None = None

    @property
    def error_code(self) -> str | None:
        return ((self.body or {}).get("error") or {}).get("code")


class Workspace:
    """The actions a workspace's clients know about, shared between them so they race."""

    def __init__(self, operator: harness.Operator):
        self.operator = operator
        self.lock = threading.Lock()
        self.target_refs: dict[str, str] = {}

    def remember(self, items) -> None:
        with self.lock:
            for item in items:
                self.target_refs[item["id"]] = item["target_ref"]

    def pick(self, rng: random.Random) -> tuple[str, str] | None:
        with self.lock:
            if not self.target_refs:
                return None
            action_id = rng.choice(list(self.target_refs))
            return action_id, self.target_refs[action_id]


def _client(server, workspace: Workspace, key: str, name: str, until: float, sent: list[Sent]) -> None:
    rng = random.Random(name)
    headers = {"X-API-Key": key}
    ops = ["list", "summary", "detail", "propose", "approve", "reject", "mark-executed"]
    weights = [20, 10, 20, 20, 14, 6, 10]
    n = 0
    while time.monotonic() < until:
        n += 1
        op = rng.choices(ops, weights)[0]
        request_id = f"load-{name}-{n}"
        picked = workspace.pick(rng)
        action_id, target_ref = picked if picked else (None, "")
        if op == "list":
            method, path, body = "GET", f"{harness.ACTIONS}?limit=20&status={rng.choice(['', 'proposed'])}", None
        elif op == "summary":
            method, path, body = "GET", "/api/v1/deployments/summary", None
        elif op == "propose":
            tier = rng.choice([1, 1, 2, 2, 3])
            mode = rng.choice(["supervised", "supervised", "autonomous", "dry_run"])
            ref = f"run_{rng.getrandbits(48):012x}"
            method, path, body = "POST", harness.ACTIONS, harness.proposal(tier=tier, mode=mode, target_ref=ref)
            action_id = None
        elif action_id is None:
            continue
        elif op == "detail":
            method, path, body = "GET", f"{harness.ACTIONS}/{action_id}", None
        elif op == "approve":
            body = {"note": "load test approval", "confirmation": target_ref[:8]}
            method, path = "POST", f"{harness.ACTIONS}/{action_id}/approve"
        else:
            method, path, body = "POST", f"{harness.ACTIONS}/{action_id}/{op}", {}
        started = time.monotonic()
        try:
            reply = server.call(method, path, body, {**headers, "X-Request-ID": request_id}, timeout=60)
        except (OSError, http.client.HTTPException):
            sent.append(Sent(request_id, op, action_id, started, time.monotonic(), None))
        else:
            parsed = reply.json if isinstance(reply.json, dict) else None
            sent.append(Sent(request_id, op, action_id, started, time.monotonic(), reply.status, parsed))
            if reply.status == 201:
                workspace.remember([parsed])
            elif op == "list" and reply.status == 200:
                workspace.remember(parsed["items"])
        time.sleep(rng.uniform(0.005, 0.025))  # a bounded load: leave the shared machine some air


def test_load_with_a_worker_killed_midway_loses_no_acknowledged_write(server, database):
    workspaces = []
    clients = []
    for w in range(WORKSPACES):
        operator = harness.demo_login(server.port)
        workspace = Workspace(operator)
        workspace.remember(
            server.call("GET", f"{harness.ACTIONS}?limit=50", headers=operator.jwt_headers).json["items"]
        )
        workspaces.append(workspace)
        for c in range(CLIENTS_PER_WORKSPACE):
            clients.append((workspace, operator.new_api_key(f"load {c}"), f"w{w}c{c}"))
    sent: list[Sent] = []
    until = time.monotonic() + LOAD_SECONDS
    threads = [
        threading.Thread(target=_client, args=(server, workspace, key, name, until, sent), daemon=True)
        for workspace, key, name in clients
    ]
    for thread in threads:
        thread.start()

    time.sleep(LOAD_SECONDS / 2)
    victim = server.worker_pids()[0]
    killed_at = time.monotonic()
    os.kill(victim, signal.SIGKILL)

    for thread in threads:
        thread.join(timeout=LOAD_SECONDS + 90)
    assert not any(thread.is_alive() for thread in threads)

    # Zero 5xx; a broken connection only for a request that was in flight on the killed worker.
    assert [s for s in sent if s.status is not None and s.status >= 500] == []
    broken = [s for s in sent if s.status is None]
    assert all(s.started <= killed_at + 0.5 for s in broken), [(s.request_id, s.started - killed_at) for s in broken]
    transitions = [s for s in sent if s.op in TRANSITIONS and s.status is not None]
    assert {s.status for s in transitions} <= TRANSITION_STATUSES, {s.status for s in transitions}
    assert {s.status for s in sent if s.op not in TRANSITIONS and s.status is not None} <= {200}
    acknowledged = [s for s in transitions if s.status in (200, 201)]
    print(  # shown with -rP: what the load did
        f"{len(sent)} requests, {len(transitions)} transitions answered, {len(acknowledged)} acknowledged, "
        f"{len(broken)} broken by the SIGKILL, statuses {sorted(Counter(s.status for s in sent).items(), key=str)}"
    )
    assert {s.op for s in acknowledged} == TRANSITIONS, "the load never completed some transition"
    # The master replaced the killed worker.
    deadline = time.monotonic() + 30
    while len(server.worker_pids()) != 4 or victim in server.worker_pids():
        assert time.monotonic() < deadline, server.worker_pids()
        time.sleep(0.2)

    # Every acknowledged transition is in the database with its event, exactly once.
    events = harness.events_by_request_id(database, [s.request_id for s in sent if s.op in TRANSITIONS])
    for s in acknowledged:
        if s.op == "propose":
            action_id = s.body["id"]
            expected = {(s.request_id, action_id, "proposed"): 1}
            if s.body["status"] == "executed":
                expected[(s.request_id, action_id, "executed")] = 1
        else:
            expected = {(s.request_id, s.action_id, EVENT_OF[s.op]): 1}
        found = {k: v for k, v in events.items() if k[0] == s.request_id}
        assert found == expected, (s, found)
    # A refused transition leaves no trace (an expiry it discovered is the system's own event).
    for s in transitions:
        if s.status not in (200, 201):
            found = {k: v for k, v in events.items() if k[0] == s.request_id}
            allowed = {(s.request_id, s.action_id, "expired"): 1} if s.error_code == "expired" else {}
            assert found == allowed, (s, found)
    # Nothing half-written, acknowledged or not: every status agrees with its events.
    assert harness.status_problems(database, [w.operator.workspace_id for w in workspaces]) == []
    harness.verify_audit_chain(database)


@pytest.mark.skipif(shutil.which("pg_ctlcluster") is None, reason="needs a local PostgreSQL managed by pg_ctlcluster")
def test_database_outage_answers_503_in_the_envelope_and_recovers_by_itself(server, database):
    operator = harness.demo_login(server.port)
    key = {"X-API-Key": operator.new_api_key("outage")}
    created = server.call("POST", harness.ACTIONS, harness.proposal(tier=2), key)
    assert created.status == 201
    action = f"{harness.ACTIONS}/{created.json['id']}"
    requests = [
        ("GET", f"{harness.ACTIONS}?limit=5", None, key),
        ("GET", action, None, key),
        ("GET", "/api/v1/deployments/summary", None, key),
        ("POST", harness.ACTIONS, harness.proposal(tier=1), key),
        ("POST", f"{action}/approve", {}, key),
        ("POST", f"{action}/reject", {}, {"Authorization": f"Bearer {operator.token}"}),
        ("POST", "/api/v1/auth/demo-login", None, {}),
    ]

    during, readiness = [], []
    try:
        harness.pg_ctlcluster("stop", "-m", "fast")
        assert not harness.postgres_ready()
        stopped_at = time.monotonic()
        while time.monotonic() - stopped_at < OUTAGE_SECONDS:
            for method, path, body, headers in requests:
                during.append((method, path, server.call(method, path, body, headers, timeout=30)))
            readiness.append(server.call("GET", "/readyz"))
            assert server.call("GET", "/healthz").status == 200
            time.sleep(0.2)
    finally:
        harness.pg_ctlcluster("start")
        deadline = time.monotonic() + 60
        while not harness.postgres_ready():
            assert time.monotonic() < deadline, "PostgreSQL did not come back"
            time.sleep(0.5)

    for method, path, reply in during:
        assert reply.status == 503, (method, path, reply.status, reply.text[:300])
        harness.assert_error_envelope(reply, "service_unavailable")
        assert reply.headers.get("retry-after") == "5"
    for reply in readiness:
        assert reply.status == 503
        assert reply.json == {
            "status": "unavailable",
            "checks": {"database": "unavailable", "rate_limiter": "ok"},
        }

    # Back by itself: every worker answers again, with no restart, and writes go through.
    deadline = time.monotonic() + 60
    while server.call("GET", f"{harness.ACTIONS}?limit=5", headers=key).status != 200:
        assert time.monotonic() < deadline, "the service did not recover"
        time.sleep(0.5)
    for _ in range(5):
        for method, path, body, headers in requests[:4]:
            reply = server.call(method, path, body, headers)
            assert reply.status in (200, 201), (method, path, reply.status, reply.text[:300])
    approved = server.call("POST", f"{action}/approve", {}, key)
    assert approved.status == 200, approved.text
    ready = server.call("GET", "/readyz")
    # The outage did not push the limiter onto its in-memory fallback either.
    assert ready.json == {"status": "ok", "checks": {"database": "ok", "rate_limiter": "ok"}}
    assert harness.status_problems(database, [operator.workspace_id]) == []
    harness.verify_audit_chain(database)
