"""POST /deployments/actions (§2, §3, §6 "Propose body", Idempotency-Key)."""

from __future__ import annotations

import re
from datetime import datetime
from datetime import timedelta
from http import HTTPStatus

import pytest

from tests.api.conftest import ACTIONS
from tests.api.conftest import error_code
from tests.api.conftest import key_caller

ACTION_FIELDS = {
    "id", "tier", "action_type", "target_ref", "reason", "mode", "status", "payload", "outcome", "approver_note",
    "rejection_note", "ttl_seconds", "proposed_at", "expires_at", "approved_at", "rejected_at", "executed_at",
    "expired_at", "proposed_by", "approved_by", "rejected_by", "executed_by", "requires_confirmation",
    "requires_second_approver", "confirmation_text", "allowed_transitions",
    # policy.md §3
    "policy", "approvals_required", "approvals_received", "approvals",
    # live.md §1
    "version",
    # evidence.md §2, §3
    "workspace_id", "digest", "approval_receipt",
    # runs.md §2
    "run_id",
}  # fmt: skip
TIER_OF = {
    "alert": 1, "tag_trace": 1, "create_incident": 1,
    "throttle": 2, "switch_model": 2, "disable_flag": 2,
    "kill_run": 3, "rollback_deploy": 3, "scale_down": 3,
}  # fmt: skip
VALID = {"action_type": "throttle", "target_ref": "model/gpt-large@us-east-1", "reason": "Cost spike: 3.4x baseline"}
PAYLOAD_LIMIT = 16 * 1024
# {"blob":"…"} serializes to 11 bytes plus the string.
LARGEST_PAYLOAD = {"blob": "x" * (PAYLOAD_LIMIT - 11)}
SMALLEST_TOO_LARGE_PAYLOAD = {"blob": "x" * (PAYLOAD_LIMIT - 10)}


def _time(value: str) -> datetime:
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", value), value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _without(field: str) -> dict:
    return {key: value for key, value in VALID.items() if key != field}


# ----------------------------------------------------------------------------- the happy path


def test_a_proposal_answers_201_with_the_action_and_its_location(alice, team, clock):
    response = alice.post(ACTIONS, json=VALID)

    assert response.status_code == HTTPStatus.CREATED
    action = response.get_json()
    assert set(action) == ACTION_FIELDS
    assert response.headers["Location"].endswith(f"{ACTIONS}/{action['id']}")
    assert alice.get(response.headers["Location"]).get_json()["id"] == action["id"]
    assert action["tier"] == 2
    assert action["status"] == "proposed"
    assert action["mode"] == "supervised"
    assert action["payload"] == {}
    assert action["ttl_seconds"] == 3600
    assert _time(action["proposed_at"]) == clock()
    assert _time(action["expires_at"]) == clock() + timedelta(seconds=3600)
    assert action["proposed_by"] == {"id": team.alice.id, "name": "Alice"}
    assert action["allowed_transitions"] == ["approve", "reject"]
    for name in ("outcome", "approver_note", "rejection_note", "approved_at", "rejected_at", "executed_at",
                 "expired_at", "approved_by", "rejected_by", "executed_by"):  # fmt: skip
        assert action[name] is None, name


def test_a_proposal_keeps_every_field_it_was_given(alice, clock):
    body = {**VALID, "mode": "dry_run", "payload": {"max_rps": 40, "nested": {"a": [1, 2]}}, "ttl_seconds": 7200,
            "tier": 2}  # fmt: skip

    action = alice.propose(**body)

    assert {key: action[key] for key in body} == body
    assert _time(action["expires_at"]) == clock() + timedelta(seconds=7200)


@pytest.mark.parametrize(("action_type", "tier"), TIER_OF.items())
def test_the_tier_is_derived_from_the_action_type(alice, action_type, tier):
    action = alice.propose(action_type=action_type)

    assert action["tier"] == tier
    assert action["requires_confirmation"] is (tier == 3)
    assert action["requires_second_approver"] is (tier == 3)


@pytest.mark.parametrize("action_type", ["alert", "tag_trace", "create_incident"])
def test_tier1_autonomous_is_executed_on_creation_with_two_events(alice, clock, action_type):
    action = alice.propose(action_type=action_type, mode="autonomous")

    assert action["status"] == "executed"
    assert _time(action["executed_at"]) == clock()
    assert action["allowed_transitions"] == []
    events = alice.get(f"{ACTIONS}/{action['id']}").get_json()["events"]
    assert [event["type"] for event in events] == ["proposed", "executed"]
    assert events[1]["actor"]["kind"] == "system"


@pytest.mark.parametrize("action_type", ["throttle", "kill_run"])
def test_tier2_and_tier3_autonomous_wait_for_approval_like_supervised(alice, action_type):
    action = alice.propose(action_type=action_type, mode="autonomous")

    assert action["status"] == "proposed"
    assert action["executed_at"] is None


def test_a_dry_run_proposal_can_only_be_rejected(alice):
    action = alice.propose(action_type="alert", mode="dry_run")

    assert action["status"] == "proposed"
    assert action["allowed_transitions"] == ["reject"]


def test_the_proposal_event_records_the_request_id_sent(alice):
    response = alice.post(ACTIONS, json=VALID, headers={"X-Request-ID": "req-propose-0001"})

    assert response.headers["X-Request-ID"] == "req-propose-0001"
    (event,) = alice.get(f"{ACTIONS}/{response.get_json()['id']}").get_json()["events"]
    assert event["type"] == "proposed"
    assert event["request_id"] == "req-propose-0001"
    assert event["actor"]["id"] == alice.user.id


@pytest.mark.parametrize(
    "body",
    [
        {**VALID, "target_ref": "t" * 200},
        {**VALID, "target_ref": "räumen/ß-ünïcödé"},
        {**VALID, "reason": "r" * 2000},
        {**VALID, "payload": LARGEST_PAYLOAD},
        {**VALID, "ttl_seconds": 604800},
        {**VALID, "action_type": "kill_run", "tier": 3},
    ],
    ids=["target-200-chars", "target-unicode", "reason-2000-chars", "payload-16KiB", "ttl-max", "tier-matching"],
)
def test_values_at_the_limits_are_accepted(alice, body):
    assert alice.post(ACTIONS, json=body).status_code == HTTPStatus.CREATED


def test_the_lowest_ttl_is_accepted_and_configurable(app, alice):
    lowest = app.config["AUDITTRAIL_TTL_MIN_SECONDS"]
    assert alice.post(ACTIONS, json={**VALID, "ttl_seconds": lowest}).status_code == HTTPStatus.CREATED

    app.config["AUDITTRAIL_TTL_MIN_SECONDS"] = 5

    assert alice.post(ACTIONS, json={**VALID, "ttl_seconds": 5}).status_code == HTTPStatus.CREATED
    assert alice.post(ACTIONS, json={**VALID, "ttl_seconds": 4}).status_code == HTTPStatus.UNPROCESSABLE_ENTITY


def test_the_default_ttl_is_configurable(app, alice):
    app.config["AUDITTRAIL_DEFAULT_TTL_SECONDS"] = 900

    assert alice.propose()["ttl_seconds"] == 900


# ----------------------------------------------------------------------------- refusals

INVALID_BODIES = [
    ("action_type", _without("action_type")),
    ("action_type", {**VALID, "action_type": "reboot"}),
    ("action_type", {**VALID, "action_type": "THROTTLE"}),
    ("action_type", {**VALID, "action_type": 5}),
    ("action_type", {**VALID, "action_type": None}),
    ("target_ref", _without("target_ref")),
    ("target_ref", {**VALID, "target_ref": ""}),
    ("target_ref", {**VALID, "target_ref": "t" * 201}),
    ("target_ref", {**VALID, "target_ref": "run\nabc"}),
    ("target_ref", {**VALID, "target_ref": "run\x00abc"}),
    ("target_ref", {**VALID, "target_ref": ["run_1"]}),
    ("reason", _without("reason")),
    ("reason", {**VALID, "reason": ""}),
    ("reason", {**VALID, "reason": "   \n\t "}),
    ("reason", {**VALID, "reason": "r" * 2001}),
    ("reason", {**VALID, "reason": 42}),
    ("mode", {**VALID, "mode": "yolo"}),
    ("mode", {**VALID, "mode": ""}),
    ("mode", {**VALID, "mode": None}),
    ("payload", {**VALID, "payload": []}),
    ("payload", {**VALID, "payload": "{}"}),
    ("payload", {**VALID, "payload": None}),
    ("payload", {**VALID, "payload": SMALLEST_TOO_LARGE_PAYLOAD}),
    ("payload", {**VALID, "payload": {"rows": [{"k": "v" * 100}] * 200}}),
    ("ttl_seconds", {**VALID, "ttl_seconds": 604801}),
    ("ttl_seconds", {**VALID, "ttl_seconds": 0}),
    ("ttl_seconds", {**VALID, "ttl_seconds": -60}),
    ("ttl_seconds", {**VALID, "ttl_seconds": "3600"}),
    ("ttl_seconds", {**VALID, "ttl_seconds": 3600.5}),
    ("ttl_seconds", {**VALID, "ttl_seconds": True}),
    ("ttl_seconds", {**VALID, "ttl_seconds": None}),
    ("ttl_seconds", {**VALID, "ttl_seconds": 10**30}),
    ("tier", {**VALID, "tier": 1}),
    ("tier", {**VALID, "tier": 3}),
    ("tier", {**VALID, "action_type": "kill_run", "tier": 2}),
    ("tier", {**VALID, "tier": 4}),
    ("tier", {**VALID, "tier": "2"}),
    ("tier", {**VALID, "tier": True}),
    ("status", {**VALID, "status": "approved"}),
    ("id", {**VALID, "id": "act_mine"}),
    ("proposed_by", {**VALID, "proposed_by": "usr_someone"}),
    ("expires_at", {**VALID, "expires_at": "2030-01-01T00:00:00Z"}),
]


@pytest.mark.parametrize(
    ("field", "body"), INVALID_BODIES, ids=[f"{field}-{index}" for index, (field, _) in enumerate(INVALID_BODIES)]
)
def test_a_proposal_breaking_a_field_rule_is_refused_naming_the_field(alice, field, body):
    response = alice.post(ACTIONS, json=body)

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert error_code(response) == "validation_error"
    assert field in response.get_json()["error"]["details"]
    assert alice.get(ACTIONS).get_json()["items"] == []


def test_a_ttl_below_the_configured_minimum_is_refused(app, alice):
    response = alice.post(ACTIONS, json={**VALID, "ttl_seconds": app.config["AUDITTRAIL_TTL_MIN_SECONDS"] - 1})

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert error_code(response) == "validation_error"
    assert "ttl_seconds" in response.get_json()["error"]["details"]


def test_every_broken_field_is_named_at_once(alice):
    response = alice.post(ACTIONS, json={"action_type": "reboot", "reason": "", "colour": "red"})

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert {"action_type", "target_ref", "reason", "colour"} <= set(response.get_json()["error"]["details"])


MALFORMED = [
    ("not-json", b"action_type=alert", "application/x-www-form-urlencoded"),
    ("truncated-json", b'{"action_type": "alert"', "application/json"),
    ("json-array", b'[{"action_type": "alert"}]', "application/json"),
    ("json-string", b'"alert"', "application/json"),
    ("json-number", b"42", "application/json"),
    ("json-null", b"null", "application/json"),
    ("json-true", b"true", "application/json"),
    ("nan-constant", b'{"action_type": "alert", "ttl_seconds": NaN}', "application/json"),
    ("infinity-constant", b'{"ttl_seconds": Infinity}', "application/json"),
    ("empty-body", b"", "application/json"),
    ("whitespace-body", b"  \n ", "application/json"),
    ("invalid-utf8", b'{"reason": "\xff\xfe"}', "application/json"),
    # Under the 64 KiB body cap, yet deeper than the parser's recursion limit.
    ("deeply-nested", b"[" * 20_000 + b"]" * 20_000, "application/json"),
    ("no-content-type", b"hello", None),
]


@pytest.mark.parametrize(("body", "content_type"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_a_body_that_is_not_a_json_object_is_malformed(alice, body, content_type):
    response = alice.post(ACTIONS, data=body, content_type=content_type)

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == "malformed_json"


def test_a_valid_object_without_a_json_content_type_is_still_read(alice):
    """The body is what matters, so a client that forgets the header is not punished."""
    import json

    response = alice.post(ACTIONS, data=json.dumps(VALID), content_type="text/plain")

    assert response.status_code == HTTPStatus.CREATED


# ----------------------------------------------------------------------------- Idempotency-Key


def _count_events(caller, action_id) -> int:
    return len(caller.get(f"{ACTIONS}/{action_id}").get_json()["events"])


def test_a_repeat_with_the_same_key_and_body_returns_the_first_answer(alice):
    headers = {"Idempotency-Key": "deploy-42"}
    first = alice.post(ACTIONS, json=VALID, headers=headers)
    second = alice.post(ACTIONS, json=VALID, headers=headers)

    assert first.status_code == second.status_code == HTTPStatus.CREATED
    assert second.get_json() == first.get_json()
    assert second.headers["Location"] == first.headers["Location"]
    assert [item["id"] for item in alice.get(ACTIONS).get_json()["items"]] == [first.get_json()["id"]]
    assert _count_events(alice, first.get_json()["id"]) == 1


def test_a_repeat_matches_whatever_the_order_of_the_body_keys(alice):
    headers = {"Idempotency-Key": "deploy-43"}
    first = alice.post(ACTIONS, json=VALID, headers=headers)
    second = alice.post(ACTIONS, json=dict(reversed(list(VALID.items()))), headers=headers)

    assert second.status_code == HTTPStatus.CREATED
    assert second.get_json()["id"] == first.get_json()["id"]


def test_a_repeat_returns_the_first_answer_even_after_the_action_moved_on(alice, bob):
    headers = {"Idempotency-Key": "deploy-44"}
    first = alice.post(ACTIONS, json=VALID, headers=headers).get_json()
    assert bob.approve(first).status_code == HTTPStatus.OK

    replay = alice.post(ACTIONS, json=VALID, headers=headers)

    assert replay.status_code == HTTPStatus.CREATED
    assert replay.get_json() == first
    assert len(alice.get(ACTIONS).get_json()["items"]) == 1


def test_a_tier1_autonomous_repeat_executes_nothing_twice(alice):
    body = {**VALID, "action_type": "alert", "mode": "autonomous"}
    headers = {"Idempotency-Key": "alert-once"}
    first = alice.post(ACTIONS, json=body, headers=headers).get_json()
    alice.post(ACTIONS, json=body, headers=headers)

    assert _count_events(alice, first["id"]) == 2
    assert len(alice.get(ACTIONS).get_json()["items"]) == 1


def test_the_same_key_with_another_body_is_refused(alice):
    headers = {"Idempotency-Key": "deploy-45"}
    first = alice.post(ACTIONS, json=VALID, headers=headers)

    response = alice.post(ACTIONS, json={**VALID, "reason": "Another reason"}, headers=headers)

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert error_code(response) == "idempotency_key_reused"
    assert [item["id"] for item in alice.get(ACTIONS).get_json()["items"]] == [first.get_json()["id"]]


def test_keys_belong_to_their_client(client, alice, bob):
    headers = {"Idempotency-Key": "shared-key"}
    alices = alice.post(ACTIONS, json=VALID, headers=headers).get_json()
    bobs = bob.post(ACTIONS, json=VALID, headers=headers)
    alices_api_key = key_caller(client, alice.create_key()).post(ACTIONS, json=VALID, headers=headers)

    assert bobs.status_code == alices_api_key.status_code == HTTPStatus.CREATED
    assert len({alices["id"], bobs.get_json()["id"], alices_api_key.get_json()["id"]}) == 3
    assert len(alice.get(ACTIONS).get_json()["items"]) == 3


def test_another_client_with_the_same_key_and_another_body_is_not_refused(alice, bob):
    headers = {"Idempotency-Key": "shared-key-2"}
    alice.post(ACTIONS, json=VALID, headers=headers)

    response = bob.post(ACTIONS, json={**VALID, "reason": "Bob's own"}, headers=headers)

    assert response.status_code == HTTPStatus.CREATED


def test_a_refused_request_does_not_use_up_the_key(alice):
    headers = {"Idempotency-Key": "retry-after-fix"}
    refused = alice.post(ACTIONS, json={**VALID, "ttl_seconds": 1}, headers=headers)
    assert refused.status_code == HTTPStatus.UNPROCESSABLE_ENTITY

    response = alice.post(ACTIONS, json=VALID, headers=headers)

    assert response.status_code == HTTPStatus.CREATED


def test_without_a_key_every_request_creates_a_row(alice):
    alice.post(ACTIONS, json=VALID)
    alice.post(ACTIONS, json=VALID)

    assert len(alice.get(ACTIONS).get_json()["items"]) == 2


@pytest.mark.parametrize("key", ["", "k" * 256, "bad\x7fkey"], ids=["empty", "256-chars", "control-character"])
def test_an_invalid_idempotency_key_is_a_validation_error(alice, key):
    response = alice.post(ACTIONS, json=VALID, headers={"Idempotency-Key": key})

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert error_code(response) == "validation_error"
    assert "Idempotency-Key" in response.get_json()["error"]["details"]
    assert alice.get(ACTIONS).get_json()["items"] == []


def test_a_255_character_idempotency_key_is_accepted(alice):
    response = alice.post(ACTIONS, json=VALID, headers={"Idempotency-Key": "k" * 255})

    assert response.status_code == HTTPStatus.CREATED


@pytest.mark.parametrize("number", ["1e400", "-1e400", "1E999"])
@pytest.mark.parametrize("route", ["propose", "mark-executed"])
def test_a_number_too_large_for_a_double_is_malformed_json(alice, bob, route, number):
    # Parsed naively it would become Infinity: not JSON, and refused by PostgreSQL's json type.
    if route == "propose":
        path = ACTIONS
        raw = f'{{"action_type":"alert","target_ref":"x","reason":"r","payload":{{"a":{number}}}}}'
    else:
        action = alice.propose(action_type="throttle")
        bob.post(f"{ACTIONS}/{action['id']}/approve", json={})
        path = f"{ACTIONS}/{action['id']}/mark-executed"
        raw = f'{{"outcome":{{"a":[{number}]}}}}'
    response = bob.post(path, data=raw, content_type="application/json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.get_json()["error"]["code"] == "malformed_json"
    listed = alice.get(ACTIONS)
    assert "Infinity" not in listed.get_data(as_text=True)


def test_the_payload_limit_counts_utf8_bytes_not_escapes(alice):
    # 6 000 "é" are 12 000 UTF-8 bytes (well under 16 KiB) but 36 000 once \\u-escaped.
    action = alice.propose(payload={"note": "é" * 6000})
    assert action["payload"] == {"note": "é" * 6000}
    too_large = alice.post(ACTIONS, json={**VALID, "payload": {"note": "é" * 8200}})
    assert too_large.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert "payload" in too_large.get_json()["error"]["details"]
