"""live.md §1–4 through the API: versions and If-Match, the event feed, waits, and the stream.

The stream is read through the test client (the generator runs in the test's thread); the
test configuration ends each stream after a second and polls every 50 ms, so nothing sleeps long.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC
from datetime import datetime
from http import HTTPStatus

import pytest

from tests.api.conftest import ACTIONS
from tests.api.conftest import Caller
from tests.api.conftest import bearer
from tests.api.conftest import error_code
from tests.api.conftest import jwt_for

EVENTS = "/api/v1/events"
SSE = {"Accept": "text/event-stream"}


def detail(caller, action_id, **kwargs):
    return caller.get(f"{ACTIONS}/{action_id}", **kwargs)


def decide(caller, action, transition="approve", if_match=None, **body):
    """A transition with If-Match (and, for tier 3 approvals, what they need)."""
    if action.get("tier") == 3 and transition == "approve":
        body.setdefault("confirmation", action["target_ref"][:8])
        body.setdefault("note", "Checked.")
    headers = {} if if_match is None else {"If-Match": if_match}
    return caller.post(f"{ACTIONS}/{action['id']}/{transition}", json=body, headers=headers)


# ----------------------------------------------------------------------------- §1 versions


def test_version_counts_the_events_of_an_action(alice, bob, app):
    action = alice.propose()
    assert action["version"] == 1

    approved = bob.approve(action).get_json()
    executed = alice.transition(action["id"], "mark-executed").get_json()

    assert (approved["version"], executed["version"]) == (2, 3)
    shown = detail(alice, action["id"])
    assert shown.get_json()["version"] == len(shown.get_json()["events"]) == 3
    assert shown.headers["ETag"] == '"3"'


def test_autonomous_tier1_is_born_at_version_two(alice):
    action = alice.propose(action_type="alert", target_ref="pager/sre", mode="autonomous")

    assert (action["status"], action["version"]) == ("executed", 2)


def test_each_recorded_approval_moves_the_version(alice, bob, client, team, clock):
    from tests.factories import add_member

    admin = Caller(client, bearer(jwt_for(add_member(team, clock(), "Ada", role="admin"))))
    document = admin.get("/api/v1/policy").get_json()
    document["tiers"]["2"]["approvals_required"] = 2
    assert admin.put("/api/v1/policy", json=document).status_code == HTTPStatus.OK
    carol = Caller(client, bearer(jwt_for(add_member(team, clock(), "Carol"))))
    action = alice.propose()

    first = decide(bob, action, "approve", '"1"')
    second = decide(carol, action, "approve", '"2"')

    assert first.status_code == second.status_code == HTTPStatus.OK
    assert (first.get_json()["version"], first.get_json()["status"]) == (2, "proposed")
    assert (second.get_json()["version"], second.get_json()["status"]) == (3, "approved")


@pytest.mark.parametrize("transition", ["approve", "reject"])
def test_a_stale_if_match_answers_412_with_the_current_version_and_changes_nothing(alice, bob, transition):
    action = alice.propose()
    bob.transition(action["id"], "reject", note="no") if transition == "approve" else bob.approve(action)

    response = decide(bob, action, transition, '"1"')

    assert response.status_code == HTTPStatus.PRECONDITION_FAILED
    assert error_code(response) == "version_mismatch"
    assert response.get_json()["error"]["details"] == {"current_version": 2}
    assert len(detail(alice, action["id"]).get_json()["events"]) == 2


def test_approve_racing_a_reject_can_no_longer_win_twice_with_if_match(alice, bob):
    """The issue's case: the rejecter meant to reject the proposal, not the approval that beat it."""
    action = alice.propose()
    seen = detail(bob, action["id"]).headers["ETag"]

    assert decide(bob, action, "approve", seen).status_code == HTTPStatus.OK
    late = decide(alice, action, "reject", seen)

    assert late.status_code == HTTPStatus.PRECONDITION_FAILED
    assert detail(alice, action["id"]).get_json()["status"] == "approved"


def test_a_matching_if_match_decides_and_without_one_nothing_changes(alice, bob):
    first, second = alice.propose(), alice.propose()

    assert decide(bob, first, "approve", '"1"').status_code == HTTPStatus.OK
    assert bob.approve(second).status_code == HTTPStatus.OK
    assert decide(alice, second, "mark-executed", "*").status_code == HTTPStatus.OK


def test_if_match_comes_after_not_found_and_before_the_state_rules(alice, bob):
    action = alice.propose()
    alice.transition(action["id"], "reject")

    unknown = decide(bob, {"id": f"act_{'0' * 26}"}, "approve", '"1"')
    stale_on_final = decide(bob, action, "approve", '"1"')
    current_on_final = decide(bob, action, "approve", '"2"')

    assert unknown.status_code == HTTPStatus.NOT_FOUND
    assert error_code(stale_on_final) == "version_mismatch"
    assert error_code(current_on_final) == "invalid_transition"


@pytest.mark.parametrize("value", ['"abc"', "W/", '"1", "2"', "-1", '"1234567890"'])
def test_a_malformed_if_match_is_a_validation_error(alice, bob, value):
    action = alice.propose()

    response = decide(bob, action, "approve", value)

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert "If-Match" in response.get_json()["error"]["details"]
    assert detail(alice, action["id"]).get_json()["status"] == "proposed"


# ----------------------------------------------------------------------------- §2 the feed


def test_the_feed_pages_by_seq_with_each_action_as_it_is_now(alice, bob):
    action = alice.propose()
    bob.approve(action)
    other = alice.propose()

    first = alice.get(f"{EVENTS}?limit=2").get_json()
    rest = alice.get(f"{EVENTS}?after={first['next_after']}").get_json()

    assert [(i["seq"], i["type"], i["action_id"]) for i in first["items"]] == [
        (1, "proposed", action["id"]),
        (2, "approved", action["id"]),
    ]
    assert first["next_after"] == 2
    assert [(i["seq"], i["type"], i["action_id"]) for i in rest["items"]] == [(3, "proposed", other["id"])]
    assert rest["next_after"] == 3
    # action_version: right after the event; action: the action now.
    assert [i["action_version"] for i in first["items"]] == [1, 2]
    assert [i["action"]["status"] for i in first["items"]] == ["approved", "approved"]
    assert first["items"][0]["action"]["version"] == 2
    item = first["items"][1]
    assert set(item) == {"seq", "type", "actor", "at", "request_id", "data", "action_id", "action_version", "action"}
    assert item["actor"]["name"] == "Bob"
    empty = alice.get(f"{EVENTS}?after=3").get_json()
    assert empty == {"items": [], "next_after": 3}


def test_workspace_events_are_in_the_feed_unless_an_action_is_asked_for(alice):
    action = alice.propose()
    alice.create_key(["actions:read"])

    everything = alice.get(EVENTS).get_json()["items"]
    one_action = alice.get(f"{EVENTS}?action_id={action['id']}").get_json()["items"]

    assert [(i["type"], i["action_id"], i["action"], i["action_version"]) for i in everything[1:]] == [
        ("api_key_created", None, None, None)
    ]
    assert [i["type"] for i in one_action] == ["proposed"]


def test_another_workspaces_events_are_never_in_the_feed(alice, rival):
    mine = alice.propose()
    theirs = rival.propose()

    seen = alice.get(EVENTS).get_json()["items"]
    asked_for_theirs = alice.get(f"{EVENTS}?action_id={theirs['id']}").get_json()

    assert [i["action_id"] for i in seen] == [mine["id"]]
    assert asked_for_theirs == {"items": [], "next_after": 0}


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=501", "limit=x", "after=-1", "after=1.5", "after=", "action_id=nope", "action_id=", "x=1",
     "after=1&after=2"],
)  # fmt: skip
def test_bad_feed_parameters_answer_422(alice, query):
    response = alice.get(f"{EVENTS}?{query}")

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert error_code(response) == "validation_error"


def test_the_feed_limit_bounds(alice):
    for _ in range(3):
        alice.propose()

    assert len(alice.get(f"{EVENTS}?limit=1").get_json()["items"]) == 1
    assert len(alice.get(f"{EVENTS}?limit=500").get_json()["items"]) == 3
    assert len(alice.get(EVENTS).get_json()["items"]) == 3


def test_the_feed_needs_the_read_scope(client, alice):
    secret = alice.create_key(["actions:propose"])

    response = client.get(EVENTS, headers={"X-API-Key": secret})

    assert response.status_code == HTTPStatus.FORBIDDEN


def test_the_feed_flips_due_rows_first(alice, clock):
    action = alice.propose(ttl_seconds=60)
    clock.advance(seconds=61)

    items = alice.get(EVENTS).get_json()["items"]

    assert [(i["type"], i["action"]["status"]) for i in items] == [("proposed", "expired"), ("expired", "expired")]
    assert items[0]["action_id"] == action["id"]


# ----------------------------------------------------------------------------- §4 waits


def test_a_wait_answers_at_its_timeout_with_the_unchanged_state(alice):
    action = alice.propose()

    started = time.monotonic()
    response = detail(alice, action["id"], query_string={"wait": 1, "version": 1})

    assert response.status_code == HTTPStatus.OK
    assert 0.9 <= time.monotonic() - started < 5
    assert response.get_json()["version"] == 1 and response.headers["ETag"] == '"1"'


def test_a_wait_answers_at_once_when_the_version_is_already_past(alice, bob):
    action = alice.propose()
    bob.approve(action)

    started = time.monotonic()
    response = detail(alice, action["id"], query_string={"wait": 30, "version": 1})

    assert time.monotonic() - started < 2
    assert response.get_json()["status"] == "approved"


def test_a_wait_answers_early_when_someone_decides(app, alice, team):
    action = alice.propose()
    bob_token = jwt_for(team.bob)

    def decide_soon():
        time.sleep(0.3)
        app.test_client().post(f"{ACTIONS}/{action['id']}/approve", json={}, headers=bearer(bob_token))

    thread = threading.Thread(target=decide_soon)
    started = time.monotonic()
    thread.start()
    response = detail(alice, action["id"], query_string={"wait": 20, "version": 1})
    thread.join()

    assert time.monotonic() - started < 5
    assert (response.get_json()["status"], response.get_json()["version"]) == ("approved", 2)


def test_expiry_during_a_wait_counts_as_a_change(app, alice):
    app.config["AUDITTRAIL_CLOCK"] = lambda: datetime.now(UTC)
    app.config["AUDITTRAIL_TTL_MIN_SECONDS"] = 1
    action = alice.propose(ttl_seconds=1)

    started = time.monotonic()
    response = detail(alice, action["id"], query_string={"wait": 20, "version": 1})

    assert time.monotonic() - started < 5
    body = response.get_json()
    assert (body["status"], body["version"], body["events"][-1]["type"]) == ("expired", 2, "expired")


@pytest.mark.parametrize("query", ["wait=5", "wait=0&version=1", "wait=61&version=1", "wait=1&version=-1",
                                   "wait=x&version=1", "version=x"])  # fmt: skip
def test_bad_wait_parameters_answer_422(alice, query):
    action = alice.propose()

    response = alice.get(f"{ACTIONS}/{action['id']}?{query}")

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert error_code(response) == "validation_error"


# ----------------------------------------------------------------------------- §3 the stream


def read_stream(caller, path=EVENTS, headers=None, query_string=None):
    """Open the stream, read it to its end (the test configuration ends it after a second), parse it."""
    response = caller.get(path, headers={**SSE, **(headers or {})}, query_string=query_string, buffered=False)
    try:
        assert response.status_code == HTTPStatus.OK, response.get_data(as_text=True)
        text = b"".join(response.response).decode()
    finally:
        response.close()
    return response, text, parse_events(text)


def parse_events(text: str) -> list[dict]:
    events = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":"))
        if "id" in fields:
            events.append({"id": int(fields["id"]), "event": fields["event"], "data": json.loads(fields["data"])})
    return events


def test_the_stream_replays_after_a_seq_and_starts_with_retry(alice, bob):
    action = alice.propose()
    bob.approve(action)

    response, text, events = read_stream(alice, query_string={"after": 1})

    assert response.mimetype == "text/event-stream"
    assert text.startswith("retry: 3000\n\n")
    assert [(e["id"], e["event"]) for e in events] == [(2, "approved")]
    assert events[0]["data"]["action"]["status"] == "approved"
    assert events[0]["data"]["seq"] == 2


def test_last_event_id_wins_over_after_and_resuming_repeats_nothing(alice, bob):
    ids = [alice.propose()["id"] for _ in range(3)]

    _, _, first = read_stream(alice, query_string={"after": 0})
    _, _, resumed = read_stream(alice, headers={"Last-Event-ID": str(first[1]["id"])}, query_string={"after": 0})

    assert [e["data"]["action_id"] for e in first] == ids
    assert [e["data"]["action_id"] for e in resumed] == ids[2:]


def test_without_a_cursor_the_stream_sends_what_is_committed_from_now_on(alice, bob):
    old = alice.propose()
    response = alice.get(EVENTS, headers=SSE, buffered=False)
    new = alice.propose()  # after the stream began, before it is read
    try:
        events = parse_events(b"".join(response.response).decode())
    finally:
        response.close()

    assert [e["data"]["action_id"] for e in events] == [new["id"]]
    assert old["id"] not in {e["data"]["action_id"] for e in events}


def test_the_stream_delivers_an_event_committed_while_it_waits(app, alice, team):
    app.config["AUDITTRAIL_STREAM_MAX_SECONDS"] = 3
    action = alice.propose()
    bob_token = jwt_for(team.bob)
    timings = {}

    def decide_soon():
        time.sleep(0.5)
        timings["decided"] = time.monotonic()
        app.test_client().post(f"{ACTIONS}/{action['id']}/approve", json={}, headers=bearer(bob_token))

    response = alice.get(EVENTS, headers=SSE, query_string={"after": 1}, buffered=False)
    thread = threading.Thread(target=decide_soon)
    thread.start()
    try:
        for chunk in response.response:
            if b"event: approved" in chunk:
                timings["seen"] = time.monotonic()
                break
    finally:
        response.close()
        thread.join()

    assert timings["seen"] - timings["decided"] < 1.0


def test_the_stream_sends_keep_alives_and_ends_at_its_maximum_life(app, alice):
    app.config.update(AUDITTRAIL_STREAM_MAX_SECONDS=1.2, AUDITTRAIL_STREAM_KEEPALIVE_SECONDS=0.1)

    started = time.monotonic()
    _, text, events = read_stream(alice)

    assert 1.1 <= time.monotonic() - started < 4
    assert events == []
    assert text.count(": keep-alive\n\n") >= 3  # 11 on an idle machine


def test_the_stream_filters_by_action(alice):
    first, second = alice.propose(), alice.propose()

    _, _, events = read_stream(alice, query_string={"after": 0, "action_id": second["id"]})

    assert [e["data"]["action_id"] for e in events] == [second["id"]]
    assert first["id"] != second["id"]


def test_the_stream_never_shows_another_workspace(alice, rival):
    alice.propose()
    rival.propose()

    _, _, events = read_stream(rival, query_string={"after": 0})

    assert len(events) == 1 and events[0]["data"]["action"]["proposed_by"]["name"] == "Alice"


def test_stopping_the_hub_ends_its_threads_before_the_engine_is_disposed(app, alice):
    hub = app.extensions["audittrail.live"]
    response = alice.get(EVENTS, headers=SSE, query_string={"after": 0}, buffered=False)
    try:
        b"".join(response.response)
    finally:
        response.close()
    poller = hub._poller
    assert poller is not None and poller.is_alive()  # it outlives the stream by a few idle seconds

    hub.stop()

    assert not poller.is_alive()
    assert alice.get(EVENTS, headers=SSE, query_string={"after": 0}).status_code == HTTPStatus.OK
    assert hub._poller is poller  # a stopped hub starts no thread again


def test_the_stream_works_with_the_cookie_and_no_csrf_header(client):
    client.post("/api/v1/auth/demo-login")  # sets the HttpOnly cookie

    response = client.get(EVENTS, headers=SSE, query_string={"after": 0}, buffered=False)
    try:
        assert response.status_code == HTTPStatus.OK
        events = parse_events(b"".join(response.response).decode())
    finally:
        response.close()

    assert len(events) >= 10  # the seeded rows' events


@pytest.mark.parametrize("value", ["x", "-1", "1.0", "99999999999"])
def test_a_bad_last_event_id_answers_422(alice, value):
    response = alice.get(EVENTS, headers={**SSE, "Last-Event-ID": value})

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert "Last-Event-ID" in response.get_json()["error"]["details"]


def test_a_client_holds_at_most_the_configured_streams_and_waits(app, alice, bob):
    app.extensions["audittrail.stream_slots"].limit = 2
    open_streams = [alice.get(EVENTS, headers=SSE, buffered=False) for _ in range(2)]
    try:
        refused = alice.get(EVENTS, headers=SSE)
        refused_wait = alice.get(f"{ACTIONS}/{alice.propose()['id']}?wait=1&version=1")
        other_client = bob.get(EVENTS, headers=SSE, buffered=False)
        other_client.close()
    finally:
        # Last opened, first closed: in one thread, the test client's streams nest their contexts.
        for response in reversed(open_streams):
            response.close()
    again = alice.get(EVENTS, headers=SSE, buffered=False)
    again.close()

    assert refused.status_code == refused_wait.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert error_code(refused) == "rate_limited" and refused.headers["Retry-After"]
    assert other_client.status_code == again.status_code == HTTPStatus.OK


def test_the_stream_needs_credentials(client):
    assert client.get(EVENTS, headers=SSE).status_code == HTTPStatus.UNAUTHORIZED
