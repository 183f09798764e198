"""Real HTTP over a socket, concurrent requests: one winner per row, a sound audit chain.

The app is served by werkzeug's threaded server on a free port, against the test's file-backed
SQLite database (and PostgreSQL when TEST_DATABASE_URL is set), so each request runs in its own
thread with its own session and connection, as under a real server.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections import Counter
from http import HTTPStatus

import pytest
from werkzeug.serving import make_server

from audittrail.extensions import db
from audittrail.services import audit
from tests import factories
from tests.api.conftest import ACTIONS
from tests.api.conftest import jwt_for

CONCURRENCY = 20


@pytest.fixture
def live_server(app):
    """The app on 127.0.0.1:<free port>; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    # Request threads that server_close() joins: each has returned its connection to the pool
    # before the app fixture disposes the engine (a connection returned after it stays open).
    server.daemon_threads = False
    server.block_on_close = True
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def _request(url: str, token: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url,
        data=data,
        method="GET" if body is None else "POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def _all_at_once(calls) -> list[tuple[int, dict]]:
    """Run the calls in threads released together by a barrier; return their answers in order."""
    barrier = threading.Barrier(len(calls))
    answers: list = [None] * len(calls)

    def run(index, call):
        barrier.wait(timeout=30)
        try:
            answers[index] = call()
        except Exception as error:  # noqa: BLE001 — reported below as a failed answer
            answers[index] = (0, {"exception": repr(error)})

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(not thread.is_alive() for thread in threads), "a request never answered"
    return answers


def _verify(runner) -> None:
    """`flask audit verify`, as it runs in production: in a session of its own.

    The test's session may hold a Workspace loaded (through joined relationships) before the
    server's requests moved its chain head; ending it makes the command read the database.
    """
    db.session.remove()
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert audit.verify_chain() is None


def test_twenty_concurrent_approvals_of_one_row_have_exactly_one_winner(live_server, team, clock, runner):
    action_id = factories.propose(team.alice_actor, clock(), tier=3, target_ref="run_8f3a2c91d4e7").id
    token = jwt_for(team.bob)
    url = f"{live_server}{ACTIONS}/{action_id}/approve"
    body = {"confirmation": "run_8f3a", "note": "Runaway loop confirmed."}

    answers = _all_at_once([lambda: _request(url, token, body) for _ in range(CONCURRENCY)])

    statuses = Counter(status for status, _ in answers)
    assert statuses == {HTTPStatus.OK: 1, HTTPStatus.CONFLICT: CONCURRENCY - 1}, answers
    losers = [body for status, body in answers if status == HTTPStatus.CONFLICT]
    # One person racing themself: a loser saw either the approved row or its own approval.
    assert {body["error"]["code"] for body in losers} <= {"invalid_transition", "already_approved"}
    status, detail = _request(f"{live_server}{ACTIONS}/{action_id}", token)
    assert status == HTTPStatus.OK
    assert detail["status"] == "approved"
    assert [event["type"] for event in detail["events"]] == ["proposed", "approved"]
    assert detail["approvals_received"] == 1 and len(detail["approvals"]) == 1
    _verify(runner)


def test_concurrent_approvals_and_rejections_leave_a_legal_history(live_server, team, clock, runner):
    """Each kind of move wins at most once; a reject may still win after an approve (approved → rejected)."""
    action_id = factories.propose(team.alice_actor, clock(), tier=2).id
    token = jwt_for(team.bob)
    names = ["approve", "reject"] * (CONCURRENCY // 2)
    calls = [(lambda name=name: _request(f"{live_server}{ACTIONS}/{action_id}/{name}", token, {})) for name in names]

    answers = _all_at_once(calls)

    assert {status for status, _ in answers} <= {HTTPStatus.OK, HTTPStatus.CONFLICT}, answers
    # Listed in call order, not commit order: the order of what happened is read from the events.
    winners = sorted(name for name, (status, _) in zip(names, answers, strict=True) if status == HTTPStatus.OK)
    assert winners in (["reject"], ["approve", "reject"], ["approve"]), winners
    _, detail = _request(f"{live_server}{ACTIONS}/{action_id}", token)
    assert detail["status"] == ("rejected" if "reject" in winners else "approved")
    history = {
        ("reject",): ["proposed", "rejected"],
        ("approve",): ["proposed", "approved"],
        ("approve", "reject"): ["proposed", "approved", "rejected"],
    }[tuple(winners)]
    assert [event["type"] for event in detail["events"]] == history
    _verify(runner)


def test_concurrent_rejections_of_one_row_have_exactly_one_winner(live_server, team, clock, runner):
    action_id = factories.propose(team.alice_actor, clock(), tier=2).id
    token = jwt_for(team.bob)
    url = f"{live_server}{ACTIONS}/{action_id}/reject"

    answers = _all_at_once([lambda: _request(url, token, {"note": "no"}) for _ in range(CONCURRENCY)])

    assert Counter(status for status, _ in answers) == {HTTPStatus.OK: 1, HTTPStatus.CONFLICT: CONCURRENCY - 1}
    _, detail = _request(f"{live_server}{ACTIONS}/{action_id}", token)
    assert [event["type"] for event in detail["events"]] == ["proposed", "rejected"]
    _verify(runner)


def test_concurrent_proposals_chain_their_events_without_gaps(live_server, team, runner):
    tokens = [jwt_for(team.alice), jwt_for(team.bob)]
    body = {"action_type": "alert", "target_ref": "pager/sre", "reason": "Latency", "mode": "autonomous"}

    answers = _all_at_once(
        [lambda i=i: _request(f"{live_server}{ACTIONS}", tokens[i % 2], body) for i in range(CONCURRENCY)]
    )

    assert [status for status, _ in answers] == [HTTPStatus.CREATED] * CONCURRENCY, answers
    assert len({created["id"] for _, created in answers}) == CONCURRENCY
    seqs = []
    for _, created in answers:
        _, detail = _request(f"{live_server}{ACTIONS}/{created['id']}", tokens[0])
        seqs += [event["seq"] for event in detail["events"]]
    assert sorted(seqs) == list(range(1, 2 * CONCURRENCY + 1))
    _verify(runner)


def test_concurrent_repeats_of_one_idempotency_key_create_one_row(live_server, team, runner):
    token = jwt_for(team.alice)
    body = {"action_type": "throttle", "target_ref": "tenant/acme-corp", "reason": "Cost spike"}
    headers = {"Idempotency-Key": "agent-retry-7"}

    answers = _all_at_once(
        [lambda: _request(f"{live_server}{ACTIONS}", token, body, headers) for _ in range(CONCURRENCY)]
    )

    assert [status for status, _ in answers] == [HTTPStatus.CREATED] * CONCURRENCY, answers
    assert len({created["id"] for _, created in answers}) == 1
    _, listing = _request(f"{live_server}{ACTIONS}", token)
    assert len(listing["items"]) == 1
    _, detail = _request(f"{live_server}{ACTIONS}/{listing['items'][0]['id']}", token)
    assert [event["type"] for event in detail["events"]] == ["proposed"]
    _verify(runner)


# ----------------------------------------------------------------------------- If-Match (live.md §1)


@pytest.mark.parametrize("mix", ["approvals", "approvals_and_rejections"])
def test_twenty_racers_sending_if_match_have_exactly_one_winner(live_server, team, clock, runner, mix):
    """Each racer decides on the version it read: one 200, the others 412 (or 409), one new event."""
    action_id = factories.propose(team.alice_actor, clock(), tier=2).id
    token = jwt_for(team.bob)
    _, seen = _request(f"{live_server}{ACTIONS}/{action_id}", token)
    names = ["approve"] * CONCURRENCY if mix == "approvals" else ["approve", "reject"] * (CONCURRENCY // 2)
    headers = {"If-Match": f'"{seen["version"]}"'}
    calls = [
        (lambda name=name: _request(f"{live_server}{ACTIONS}/{action_id}/{name}", token, {}, headers)) for name in names
    ]

    answers = _all_at_once(calls)

    statuses = Counter(status for status, _ in answers)
    assert statuses[HTTPStatus.OK] == 1, answers
    assert set(statuses) <= {HTTPStatus.OK, HTTPStatus.PRECONDITION_FAILED, HTTPStatus.CONFLICT}, answers
    _, after = _request(f"{live_server}{ACTIONS}/{action_id}", token)
    assert after["version"] == 2 and len(after["events"]) == 2
    _verify(runner)


def test_twenty_distinct_approvers_with_if_match_on_two_of_m_record_one_approval(live_server, team, clock, runner):
    from dataclasses import replace

    from audittrail.domain import DEFAULT_TIER_RULES
    from audittrail.services import policy

    admin = factories.add_member(team, clock(), "Ada", role="admin")
    rules = {**DEFAULT_TIER_RULES, 2: replace(DEFAULT_TIER_RULES[2], approvals_required=2)}
    policy.replace_policy(factories.user_actor(admin), rules, clock())
    action_id = factories.propose(team.alice_actor, clock(), tier=2).id
    tokens = [jwt_for(factories.add_member(team, clock(), f"Racer{i}")) for i in range(CONCURRENCY)]
    url = f"{live_server}{ACTIONS}/{action_id}/approve"

    answers = _all_at_once([lambda t=t: _request(url, t, {}, {"If-Match": '"1"'}) for t in tokens])

    statuses = Counter(status for status, _ in answers)
    assert statuses == {HTTPStatus.OK: 1, HTTPStatus.PRECONDITION_FAILED: CONCURRENCY - 1}, answers
    _, after = _request(f"{live_server}{ACTIONS}/{action_id}", tokens[0])
    assert (after["status"], after["approvals_received"], after["version"]) == ("proposed", 1, 2)
    _verify(runner)
