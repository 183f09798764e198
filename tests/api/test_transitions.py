"""Detail, approve, reject, mark-executed (§3, §4, §6): the state machine as HTTP sees it."""

from __future__ import annotations

from datetime import datetime
from http import HTTPStatus

import pytest

from tests.api.conftest import ACTIONS
from tests.api.conftest import error_code

TRANSITIONS = ["approve", "reject", "mark-executed"]


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _detail(caller, action_id) -> dict:
    response = caller.get(f"{ACTIONS}/{action_id}")
    assert response.status_code == HTTPStatus.OK
    return response.get_json()


def _event_types(caller, action_id) -> list[str]:
    return [event["type"] for event in _detail(caller, action_id)["events"]]


def _in_status(status: str, proposer, decider, **fields) -> dict:
    """An action of `proposer` brought to `status` through the API (not expired)."""
    action = proposer.propose(**fields)
    if status in ("approved", "executed"):
        assert decider.approve(action).status_code == HTTPStatus.OK
    if status == "executed":
        assert decider.transition(action["id"], "mark-executed").status_code == HTTPStatus.OK
    if status == "rejected":
        assert decider.transition(action["id"], "reject").status_code == HTTPStatus.OK
    return _detail(proposer, action["id"])


# ----------------------------------------------------------------------------- detail


def test_the_detail_has_the_action_and_its_events_in_order(alice, bob, clock, team):
    action = alice.propose()
    clock.advance(minutes=5)
    bob.approve(action, note="ok by me")
    clock.advance(minutes=5)
    bob.transition(action["id"], "mark-executed", outcome={"status": "succeeded"})

    detail = _detail(alice, action["id"])

    assert detail["status"] == "executed"
    events = detail["events"]
    assert [event["type"] for event in events] == ["proposed", "approved", "executed"]
    assert [event["seq"] for event in events] == sorted(event["seq"] for event in events)
    assert len({event["seq"] for event in events}) == 3
    for event in events:
        assert {"seq", "type", "actor", "at", "data"} <= set(event)
        assert {"id", "name", "kind"} <= set(event["actor"])
    assert events[0]["actor"] == {**events[0]["actor"], "id": team.alice.id, "name": "Alice", "kind": "user"}
    assert events[1]["actor"]["id"] == team.bob.id
    assert events[1]["data"]["note"] == "ok by me"
    assert events[2]["data"]["outcome"] == {"status": "succeeded"}
    assert [_at(event["at"]) for event in events] == [
        _at(detail["proposed_at"]), _at(detail["approved_at"]), _at(detail["executed_at"])
    ]  # fmt: skip


def test_an_unknown_id_answers_404(alice):
    response = alice.get(f"{ACTIONS}/act_000000000000000000000000")

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert error_code(response) == "not_found"


@pytest.mark.parametrize("route", ["", *TRANSITIONS])
def test_another_workspaces_action_answers_404_like_an_unknown_id(alice, rival, route):
    theirs = rival.propose()
    method, path = ("GET", f"{ACTIONS}/{theirs['id']}") if not route else ("POST", f"{ACTIONS}/{theirs['id']}/{route}")
    if route == "mark-executed":
        assert rival.approve(theirs).status_code == HTTPStatus.OK

    response = alice.client.open(path, method=method, headers=alice.headers, json={} if route else None)
    unknown = alice.client.open(
        path.replace(theirs["id"], "act_000000000000000000000000"), method=method, headers=alice.headers,
        json={} if route else None,
    )  # fmt: skip

    assert response.status_code == unknown.status_code == HTTPStatus.NOT_FOUND
    assert error_code(response) == error_code(unknown) == "not_found"
    assert response.get_json()["error"]["message"] == unknown.get_json()["error"]["message"]
    assert _detail(rival, theirs["id"])["status"] == ("approved" if route == "mark-executed" else "proposed")
    assert len(_detail(rival, theirs["id"])["events"]) == (2 if route == "mark-executed" else 1)


@pytest.mark.parametrize("route", TRANSITIONS)
def test_a_transition_on_an_unknown_id_answers_404(alice, route):
    response = alice.transition("act_000000000000000000000000", route)

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert error_code(response) == "not_found"


# ----------------------------------------------------------------------------- the allowed moves


@pytest.mark.parametrize("action_type", ["alert", "throttle"])
def test_approving_tier1_or_tier2_needs_no_confirmation(alice, bob, clock, team, action_type):
    action = alice.propose(action_type=action_type)

    response = bob.transition(action["id"], "approve", note="fine")

    assert response.status_code == HTTPStatus.OK
    approved = response.get_json()
    assert approved["status"] == "approved"
    assert approved["approved_by"] == {"id": team.bob.id, "name": "Bob"}
    assert _at(approved["approved_at"]) == clock()
    assert approved["approver_note"] == "fine"
    assert approved["allowed_transitions"] == ["reject", "mark-executed"]
    assert _event_types(alice, action["id"]) == ["proposed", "approved"]


def test_a_proposer_may_approve_their_own_tier2_action(alice):
    action = alice.propose()

    assert alice.transition(action["id"], "approve").get_json()["status"] == "approved"


def test_approving_with_no_body_at_all_is_allowed(alice):
    action = alice.propose()

    response = alice.post(f"{ACTIONS}/{action['id']}/approve")

    assert response.status_code == HTTPStatus.OK


def test_tier3_approval_by_another_person_with_confirmation_and_note_succeeds(alice, bob, team):
    action = alice.propose(action_type="kill_run", target_ref="run_8f3a2c91d4e7")

    response = bob.transition(action["id"], "approve", confirmation="run_8f3a", note="Runaway loop confirmed.")

    assert response.status_code == HTTPStatus.OK
    assert response.get_json()["status"] == "approved"
    assert response.get_json()["approver_note"] == "Runaway loop confirmed."
    assert _detail(alice, action["id"])["events"][1]["actor"]["id"] == team.bob.id


def test_tier3_confirmation_of_a_short_target_ref_is_the_whole_ref(alice, bob):
    action = alice.propose(action_type="scale_down", target_ref="pool_a1")

    response = bob.transition(action["id"], "approve", confirmation="pool_a1", note="Idle.")

    assert response.status_code == HTTPStatus.OK


@pytest.mark.parametrize("source", ["proposed", "approved"])
def test_rejecting_a_proposed_or_approved_action_records_the_note(alice, bob, clock, team, source):
    action = _in_status(source, alice, bob)

    response = bob.transition(action["id"], "reject", note="Planned load test.")

    assert response.status_code == HTTPStatus.OK
    rejected = response.get_json()
    assert rejected["status"] == "rejected"
    assert rejected["rejection_note"] == "Planned load test."
    assert rejected["rejected_by"]["id"] == team.bob.id
    assert _at(rejected["rejected_at"]) == clock()
    assert rejected["allowed_transitions"] == []
    assert _event_types(alice, action["id"])[-1] == "rejected"


def test_rejecting_a_dry_run_is_allowed(alice, bob):
    action = alice.propose(mode="dry_run")

    assert bob.transition(action["id"], "reject").get_json()["status"] == "rejected"


def test_mark_executed_records_the_outcome(alice, bob, team):
    action = _in_status("approved", alice, bob)

    response = bob.transition(action["id"], "mark-executed", outcome={"status": "succeeded", "duration_ms": 4120})

    assert response.status_code == HTTPStatus.OK
    executed = response.get_json()
    assert executed["status"] == "executed"
    assert executed["outcome"] == {"status": "succeeded", "duration_ms": 4120}
    assert executed["executed_by"]["id"] == team.bob.id
    assert _event_types(alice, action["id"]) == ["proposed", "approved", "executed"]


def test_the_proposal_fields_never_change_through_transitions(alice, bob):
    action = alice.propose(payload={"max_rps": 40}, ttl_seconds=600)
    fixed = ["action_type", "tier", "target_ref", "reason", "mode", "payload", "ttl_seconds", "proposed_by",
             "proposed_at", "expires_at"]  # fmt: skip

    bob.approve(action)
    bob.transition(action["id"], "mark-executed", outcome={"ok": True})

    after = _detail(alice, action["id"])
    assert {key: after[key] for key in fixed} == {key: action[key] for key in fixed}


def test_the_event_records_the_request_id_sent(alice, bob):
    action = alice.propose()

    bob.post(f"{ACTIONS}/{action['id']}/approve", json={}, headers={"X-Request-ID": "req-approve-77"})

    assert _detail(alice, action["id"])["events"][-1]["request_id"] == "req-approve-77"


# ----------------------------------------------------------------------------- refusals: 409

INVALID_TRANSITIONS = [
    ("approved", "approve"),
    ("rejected", "approve"),
    ("executed", "approve"),
    ("rejected", "reject"),
    ("executed", "reject"),
    ("proposed", "mark-executed"),
    ("rejected", "mark-executed"),
    ("executed", "mark-executed"),
]


@pytest.mark.parametrize(("status", "transition"), INVALID_TRANSITIONS)
def test_a_transition_not_allowed_from_the_status_is_a_conflict(alice, bob, status, transition):
    action = _in_status(status, alice, bob)
    events_before = _detail(alice, action["id"])["events"]

    response = bob.transition(action["id"], transition)

    assert response.status_code == HTTPStatus.CONFLICT
    assert error_code(response) == "invalid_transition"
    after = _detail(alice, action["id"])
    assert after["status"] == status
    assert after["events"] == events_before


def test_a_transition_on_an_expired_row_is_a_conflict(alice, bob, clock):
    action = alice.propose(ttl_seconds=60)
    clock.advance(seconds=61)
    assert _detail(alice, action["id"])["status"] == "expired"

    for transition in TRANSITIONS:
        response = bob.transition(action["id"], transition)
        assert response.status_code == HTTPStatus.CONFLICT, transition
        assert error_code(response) == "invalid_transition"


@pytest.mark.parametrize("action_type", ["alert", "throttle", "kill_run"])
def test_approving_a_dry_run_is_a_conflict(alice, bob, action_type):
    action = alice.propose(action_type=action_type, mode="dry_run")

    response = bob.approve(action)

    assert response.status_code == HTTPStatus.CONFLICT
    assert error_code(response) == "invalid_transition"
    assert _detail(alice, action["id"])["status"] == "proposed"


# ----------------------------------------------------------------------------- refusals: tier 3


def test_tier3_approval_by_the_proposer_is_refused_even_when_everything_else_is_right(alice):
    action = alice.propose(action_type="rollback_deploy", target_ref="deploy_2f9e7c1a0b44")

    response = alice.transition(action["id"], "approve", confirmation="deploy_2", note="I am sure.")

    assert response.status_code == HTTPStatus.FORBIDDEN
    assert error_code(response) == "second_approver_required"
    assert _detail(alice, action["id"])["status"] == "proposed"
    assert "approve" not in _detail(alice, action["id"])["allowed_transitions"]


@pytest.mark.parametrize(
    "confirmation",
    [None, "", "RUN_8F3A", "run_8f3", "run_8f3a2", "run_8f3a2c91d4e7", " run_8f3a", "run_8f3a "],
    ids=["missing", "empty", "wrong-case", "seven-chars", "nine-chars", "whole-ref", "leading-space", "trailing-space"],
)
def test_tier3_approval_without_the_exact_confirmation_is_refused(alice, bob, confirmation):
    action = alice.propose(action_type="kill_run", target_ref="run_8f3a2c91d4e7")
    body = {"note": "Runaway loop."}
    if confirmation is not None:
        body["confirmation"] = confirmation

    response = bob.transition(action["id"], "approve", **body)

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == "confirmation_mismatch"
    assert _detail(alice, action["id"])["status"] == "proposed"


@pytest.mark.parametrize("note", [None, "", "   ", "\n\t"], ids=["missing", "empty", "spaces", "whitespace"])
def test_tier3_approval_without_a_note_is_refused(alice, bob, note):
    action = alice.propose(action_type="kill_run", target_ref="run_8f3a2c91d4e7")
    body = {"confirmation": "run_8f3a"} if note is None else {"confirmation": "run_8f3a", "note": note}

    response = bob.transition(action["id"], "approve", **body)

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == "operator_reason_required"
    assert _detail(alice, action["id"])["status"] == "proposed"


def test_tier3_checks_come_in_the_contracts_order(alice, bob, clock):
    """status → TTL → mode → second approver → confirmation → note (§4)."""
    tier3 = {"action_type": "kill_run", "target_ref": "run_8f3a2c91d4e7"}
    by_proposer_no_confirmation = alice.propose(**tier3)
    no_confirmation_no_note = alice.propose(**tier3)
    dry_run_by_proposer = alice.propose(**tier3, mode="dry_run")
    expired_dry_run = alice.propose(**tier3, mode="dry_run", ttl_seconds=60)
    approved = _in_status("approved", alice, bob, **tier3)

    assert error_code(alice.transition(by_proposer_no_confirmation["id"], "approve")) == "second_approver_required"
    assert error_code(bob.transition(no_confirmation_no_note["id"], "approve")) == "confirmation_mismatch"
    assert error_code(alice.transition(dry_run_by_proposer["id"], "approve")) == "invalid_transition"
    assert error_code(alice.transition(approved["id"], "approve")) == "invalid_transition"
    clock.advance(seconds=61)
    assert error_code(alice.transition(expired_dry_run["id"], "approve")) == "expired"


# ----------------------------------------------------------------------------- refusals: TTL


@pytest.mark.parametrize("transition", TRANSITIONS)
def test_a_transition_past_the_ttl_flips_the_row_to_expired_and_answers_400(alice, bob, clock, transition):
    action = alice.propose(ttl_seconds=60)
    clock.advance(seconds=60)

    response = bob.transition(action["id"], transition)
    # Asked before any read, which would flip the row itself: the first attempt must have flipped it.
    again = bob.transition(action["id"], transition)

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == "expired"
    assert again.status_code == HTTPStatus.CONFLICT
    assert error_code(again) == "invalid_transition"
    detail = _detail(alice, action["id"])
    assert detail["status"] == "expired"
    assert detail["expired_at"] == action["expires_at"]
    assert detail["allowed_transitions"] == []
    assert [event["type"] for event in detail["events"]] == ["proposed", "expired"]
    assert detail["events"][1]["actor"]["kind"] == "system"
    assert detail["events"][1]["request_id"] == response.headers["X-Request-ID"]


def test_a_row_one_second_before_its_ttl_can_still_be_approved(alice, bob, clock):
    action = alice.propose(ttl_seconds=60)
    clock.advance(seconds=59)

    assert bob.approve(action).status_code == HTTPStatus.OK


def test_the_ttl_does_not_apply_once_approved(alice, bob, clock):
    action = _in_status("approved", alice, bob, ttl_seconds=60)
    clock.advance(days=2)

    response = bob.transition(action["id"], "mark-executed")

    assert response.status_code == HTTPStatus.OK


def test_an_expired_row_reads_as_expired_everywhere_without_a_transition(alice, clock):
    action = alice.propose(ttl_seconds=60)
    clock.advance(seconds=120)

    assert _detail(alice, action["id"])["status"] == "expired"
    (listed,) = alice.get(ACTIONS).get_json()["items"]
    assert listed["status"] == "expired"
    assert listed["expired_at"] == action["expires_at"]
    assert _event_types(alice, action["id"]) == ["proposed", "expired"]


# ----------------------------------------------------------------------------- bodies


@pytest.mark.parametrize("transition", TRANSITIONS)
@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"not json", "text/plain"),
        (b"[]", "application/json"),
        (b'"note"', "application/json"),
        (b"{", "application/json"),
    ],
    ids=["not-json", "array", "string", "truncated"],
)
def test_a_transition_body_that_is_not_an_object_is_malformed(alice, bob, transition, body, content_type):
    action = _in_status("approved" if transition == "mark-executed" else "proposed", alice, bob)

    response = bob.post(f"{ACTIONS}/{action['id']}/{transition}", data=body, content_type=content_type)

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == "malformed_json"


@pytest.mark.parametrize(
    ("transition", "body", "field"),
    [
        ("approve", {"note": 5}, "note"),
        ("approve", {"confirmation": ["run_8f3a"]}, "confirmation"),
        ("approve", {"note": "n" * 2001}, "note"),
        ("approve", {"approved_by": "usr_x"}, "approved_by"),
        ("reject", {"note": {"text": "no"}}, "note"),
        ("reject", {"confirmation": "x"}, "confirmation"),
        ("mark-executed", {"outcome": "succeeded"}, "outcome"),
        ("mark-executed", {"outcome": [1, 2]}, "outcome"),
        ("mark-executed", {"outcome": {"log": "x" * 17000}}, "outcome"),
        ("mark-executed", {"status": "executed"}, "status"),
    ],
)
def test_a_transition_body_breaking_a_rule_is_a_validation_error(alice, bob, transition, body, field):
    action = _in_status("approved" if transition == "mark-executed" else "proposed", alice, bob)

    response = bob.transition(action["id"], transition, **body)

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert error_code(response) == "validation_error"
    assert field in response.get_json()["error"]["details"]
    assert _detail(alice, action["id"])["status"] == ("approved" if transition == "mark-executed" else "proposed")


# ----------------------------------------------------------------------------- allowed_transitions


@pytest.mark.parametrize(
    ("status", "fields", "for_proposer", "for_other"),
    [
        ("proposed", {}, ["approve", "reject"], ["approve", "reject"]),
        ("proposed", {"action_type": "kill_run"}, ["reject"], ["approve", "reject"]),
        ("proposed", {"mode": "dry_run"}, ["reject"], ["reject"]),
        ("approved", {}, ["reject", "mark-executed"], ["reject", "mark-executed"]),
        ("rejected", {}, [], []),
        ("executed", {}, [], []),
    ],
)
def test_allowed_transitions_are_computed_for_the_caller(alice, bob, status, fields, for_proposer, for_other):
    action = _in_status(status, alice, bob, **fields)

    assert _detail(alice, action["id"])["allowed_transitions"] == for_proposer
    assert _detail(bob, action["id"])["allowed_transitions"] == for_other
    (listed,) = [item for item in bob.get(ACTIONS).get_json()["items"] if item["id"] == action["id"]]
    assert listed["allowed_transitions"] == for_other
