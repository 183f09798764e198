"""examples/runner.py as a subprocess against the app served over a real socket (live.md §7).

The test configuration ends each stream after a second, so the runner also reconnects with
Last-Event-ID all along.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from http import HTTPStatus
from pathlib import Path

import pytest

from tests import factories
from tests.api.conftest import ACTIONS
from tests.api.conftest import jwt_for
from tests.api.test_live_server import _request
from tests.api.test_live_server import live_server  # noqa: F401 — the fixture

PROJECT = Path(__file__).resolve().parents[2]
RUNNER = PROJECT / "examples" / "runner.py"


@pytest.fixture
def runner_key(team, clock):
    _, secret = factories.key_actor(team.alice, clock(), scopes=["actions:read", "actions:execute"])
    return secret


def start_runner(url, key, state: Path, handler: str | None = None, **environ) -> subprocess.Popen:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AUDITTRAIL_")},
        "AUDITTRAIL_URL": url,
        "AUDITTRAIL_API_KEY": key,
        "AUDITTRAIL_RUNNER_STATE": str(state),
        **environ,
    }
    if handler:
        env["AUDITTRAIL_RUNNER_HANDLER"] = handler
    return subprocess.Popen(
        [sys.executable, str(RUNNER)], cwd=PROJECT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def stop(process: subprocess.Popen, sig=signal.SIGTERM) -> str:
    if process.poll() is None:
        process.send_signal(sig)
    try:
        _, err = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate(timeout=5)
    return err.decode(errors="replace")


def wait_until(predicate, timeout=20.0, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {message}")


def detail(url, token, action_id) -> dict:
    status, body = _request(f"{url}{ACTIONS}/{action_id}", token)
    assert status == HTTPStatus.OK, body
    return body


def executed_events(url, token, action_id) -> int:
    return sum(event["type"] == "executed" for event in detail(url, token, action_id)["events"])


def approve(url, token, action_id):
    status, body = _request(f"{url}{ACTIONS}/{action_id}/approve", token, {})
    assert status == HTTPStatus.OK, body


def test_help_lists_the_settings():
    result = subprocess.run([sys.executable, str(RUNNER), "--help"], capture_output=True, text=True, timeout=30)

    assert result.returncode == 0
    for flag in ("--url", "--api-key", "--state", "--handler", "AUDITTRAIL_RUNNER_STATE"):
        assert flag in result.stdout


def test_the_runner_executes_approved_actions_with_the_default_handler(
    live_server,  # noqa: F811
    team,
    clock,
    runner_key,
    tmp_path,
):
    token = jwt_for(team.bob)
    before = [factories.propose(team.alice_actor, clock()).id for _ in range(3)]
    for action_id in before[:2]:
        approve(live_server, token, action_id)
    state = tmp_path / "state.json"

    process = start_runner(live_server, runner_key, state)
    try:
        wait_until(lambda: all(detail(live_server, token, a)["status"] == "executed" for a in before[:2]),
                   message="the actions approved before the first start")  # fmt: skip
        approve(live_server, token, before[2])
        wait_until(lambda: detail(live_server, token, before[2])["status"] == "executed",
                   message="the action approved while it follows the stream")  # fmt: skip
        rejected = factories.propose(team.alice_actor, clock()).id
        _request(f"{live_server}{ACTIONS}/{rejected}/reject", token, {})
        time.sleep(1.5)
    finally:
        errors = stop(process)

    for action_id in before:
        shown = detail(live_server, token, action_id)
        assert shown["outcome"]["status"] == "logged" and shown["outcome"]["executed"] is False, errors
        assert executed_events(live_server, token, action_id) == 1
        assert shown["executed_by"]["id"] == team.alice.id
        # It checked the approval receipt and sent the digest it vouches for (evidence.md §3).
        (executed,) = [event for event in shown["events"] if event["type"] == "executed"]
        assert executed["data"]["digest_verified"] is True
    assert detail(live_server, token, rejected)["status"] == "rejected"
    assert state.exists() and '"last_seq"' in state.read_text()


def test_killed_and_restarted_the_runner_misses_none_and_marks_none_twice(
    live_server,  # noqa: F811
    team,
    clock,
    runner_key,
    tmp_path,
):  # noqa: F811
    token = jwt_for(team.bob)
    state, calls = tmp_path / "state.json", tmp_path / "calls.log"
    handler = "tests.api.runner_support.handlers:counting"
    env = {"RUNNER_TEST_LOG": str(calls), "RUNNER_TEST_DELAY": "0.05"}
    ids = [factories.propose(team.alice_actor, clock()).id for _ in range(12)]

    process = start_runner(live_server, runner_key, state, handler, **env)
    try:
        wait_until(state.exists, message="the runner's first start")
        for action_id in ids[:6]:
            approve(live_server, token, action_id)
        wait_until(lambda: calls.exists() and len(calls.read_text().split()) >= 3, message="some executions")
    finally:
        stop(process, signal.SIGKILL)  # no goodbye: mid-work, maybe between handler and report
    for action_id in ids[6:]:
        approve(live_server, token, action_id)  # while no runner runs

    process = start_runner(live_server, runner_key, state, handler, **env)
    try:
        wait_until(lambda: all(detail(live_server, token, a)["status"] == "executed" for a in ids), timeout=30,
                   message="every approved action executed")  # fmt: skip
        time.sleep(1.5)  # a late duplicate would show now
    finally:
        errors = stop(process)

    assert [executed_events(live_server, token, a) for a in ids] == [1] * len(ids), errors
    handled = Counter(calls.read_text().split())
    assert set(handled) == set(ids)
    # At most the one action caught between its handler and its report runs twice (README).
    assert sum(count - 1 for count in handled.values()) <= 1, handled
