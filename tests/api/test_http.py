"""What every answer shares: X-Request-ID, the error envelope, no 5xx; health; the OpenAPI document."""

from __future__ import annotations

import re
from http import HTTPStatus

import pytest

from tests.api.conftest import ACTIONS
from tests.api.conftest import API_KEYS
from tests.api.conftest import SUMMARY
from tests.api.conftest import error_code

CONTRACT_ENDPOINTS = {
    ("post", "/api/v1/auth/demo-login"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/logout"),
    ("get", "/api/v1/auth/me"),
    ("get", "/api/v1/api-keys"),
    ("post", "/api/v1/api-keys"),
    ("delete", "/api/v1/api-keys/{key_id}"),
    ("get", "/api/v1/deployments/actions"),
    ("post", "/api/v1/deployments/actions"),
    ("get", "/api/v1/deployments/actions/{action_id}"),
    ("post", "/api/v1/deployments/actions/{action_id}/approve"),
    ("post", "/api/v1/deployments/actions/{action_id}/reject"),
    ("post", "/api/v1/deployments/actions/{action_id}/mark-executed"),
    ("get", "/api/v1/deployments/summary"),
    # policy.md §2
    ("get", "/api/v1/members"),
    ("patch", "/api/v1/members/{member_id}"),
    ("get", "/api/v1/policy"),
    ("put", "/api/v1/policy"),
    # live.md §2–3
    ("get", "/api/v1/events"),
    # evidence.md
    ("get", "/api/v1/signing-keys"),
    ("get", "/api/v1/audit/events"),
    ("get", "/api/v1/audit/checkpoints"),
    ("post", "/api/v1/audit/checkpoints"),
    # runs.md §1
    ("put", "/api/v1/runs/{run_id}"),
    ("patch", "/api/v1/runs/{run_id}"),
    ("get", "/api/v1/runs"),
    ("get", "/api/v1/runs/{run_id}"),
    # webhooks.md §1
    ("post", "/api/v1/webhooks"),
    ("get", "/api/v1/webhooks"),
    ("get", "/api/v1/webhooks/{webhook_id}"),
    ("delete", "/api/v1/webhooks/{webhook_id}"),
    ("post", "/api/v1/webhooks/{webhook_id}/ping"),
    ("post", "/api/v1/webhooks/{webhook_id}/enable"),
    ("get", "/api/v1/webhooks/{webhook_id}/deliveries"),
}


# ----------------------------------------------------------------------------- X-Request-ID


@pytest.mark.parametrize("request_id", ["req-1", "4b9f2c1e-7d0a-4c55-9d3e-000000000001", "a" * 128, "job:42.retry_1"])
def test_a_well_formed_request_id_is_echoed(alice, request_id):
    response = alice.get(ACTIONS, headers={"X-Request-ID": request_id})

    assert response.headers["X-Request-ID"] == request_id


@pytest.mark.parametrize("request_id", ["", "a" * 129, "has space", "semi;colon", "new\\nline", "ünï"])
def test_a_malformed_request_id_is_replaced_by_a_generated_one(alice, request_id):
    response = alice.get(ACTIONS, headers={"X-Request-ID": request_id})

    assert response.headers["X-Request-ID"] != request_id
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])


def test_each_request_without_an_id_gets_its_own(client):
    first = client.get("/healthz").headers["X-Request-ID"]
    second = client.get("/healthz").headers["X-Request-ID"]

    assert first != second


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", ACTIONS), ("POST", ACTIONS), ("GET", "/api/v1/nowhere"), ("PUT", ACTIONS), ("GET", "/healthz")],
)
def test_errors_carry_the_request_id_too(client, method, path):
    response = client.open(path, method=method, headers={"X-Request-ID": "req-error-1"})

    assert response.headers["X-Request-ID"] == "req-error-1"


# ----------------------------------------------------------------------------- routing errors, sizes


def test_an_unknown_api_path_is_a_404_envelope(alice):
    response = alice.get("/api/v1/deployments/nothing-here")

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert error_code(response) == "not_found"


@pytest.mark.parametrize(
    ("method", "path"),
    [("PUT", ACTIONS), ("DELETE", ACTIONS), ("GET", ACTIONS + "/act_1/approve"), ("PATCH", ACTIONS + "/act_1"),
     ("POST", SUMMARY), ("PUT", API_KEYS)],
)  # fmt: skip
def test_a_wrong_method_is_a_405_envelope_with_allow(alice, method, path):
    response = alice.client.open(path, method=method, headers=alice.headers)

    assert response.status_code == HTTPStatus.METHOD_NOT_ALLOWED
    assert error_code(response) == "method_not_allowed"
    assert response.headers["Allow"]


def test_a_body_over_the_request_size_limit_is_refused_without_a_5xx(alice):
    response = alice.post(ACTIONS, data=b'{"reason": "' + b"x" * (80 * 1024) + b'"}', content_type="application/json")

    assert response.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert error_code(response) == "payload_too_large"
    assert alice.get(ACTIONS).get_json()["items"] == []


ODD_REQUESTS = [
    ("GET", ACTIONS + "/" + "a" * 5000, {}),
    ("GET", ACTIONS + "/%00", {}),
    ("GET", ACTIONS + "/%C3%A9t%C3%A9", {}),
    ("GET", ACTIONS + "/..%2F..%2Fetc%2Fpasswd", {}),
    ("POST", ACTIONS + "/%ff/approve", {"json": {}}),
    ("GET", ACTIONS + "?status=%ff", {}),
    ("GET", ACTIONS + "?limit=99999999999999999999999999", {}),
    ("GET", ACTIONS + "?cursor=" + "A" * 500, {}),
    ("GET", ACTIONS + "?cursor=bnVsbA", {}),  # base64 of `null`
    ("GET", ACTIONS + "?cursor=WyIyMDI2LTExLTMwVDAwOjAwOjAwLjAwMDAwMCIsIDVd", {}),  # id not a string
    ("GET", SUMMARY + "?tz=%ff", {}),
    ("GET", SUMMARY + "?tz=Etc/GMT%2B99", {}),
    ("POST", ACTIONS, {"json": {"action_type": "alert", "target_ref": "x", "reason": "y", "payload": {"a": [[[]]]}}}),
    ("POST", ACTIONS, {"data": '{"action_type": "alert", "action_type": "kill_run"}'}),
    ("POST", ACTIONS, {"data": '{"reason": "\\ud800"}'}),
    ("POST", API_KEYS, {"data": b"\x00\x01\x02"}),
]


@pytest.mark.parametrize(("method", "path", "kwargs"), ODD_REQUESTS, ids=[f"odd-{i}" for i in range(len(ODD_REQUESTS))])
def test_odd_requests_get_a_4xx_envelope_or_success_never_a_5xx(alice, method, path, kwargs):
    response = alice.client.open(path, method=method, headers=alice.headers, **kwargs)

    assert response.status_code < HTTPStatus.INTERNAL_SERVER_ERROR


LONE_SURROGATE_BODIES = [
    ("propose", '{"action_type": "alert", "target_ref": "x", "reason": "cost \\ud800 spike"}', {}),
    ("propose", '{"action_type": "alert", "target_ref": "x", "reason": "r", "payload": {"k": "\\udfff"}}', {}),
    ("propose", '{"action_type": "alert", "target_ref": "x", "reason": "r", "payload": {"\\ud83d": 1}}', {}),
    ("propose", '{"action_type": "alert", "target_ref": "x", "reason": "\\ud800"}', {"Idempotency-Key": "k-1"}),
    ("approve", '{"note": "\\udc00"}', {}),
    ("reject", '{"note": "fine \\ud800"}', {}),
    ("mark-executed", '{"outcome": {"log": ["\\ud800"]}}', {}),
    ("api-keys", '{"name": "\\ud800"}', {}),
]


@pytest.mark.parametrize(
    ("route", "body", "headers"),
    LONE_SURROGATE_BODIES,
    ids=[f"{route}-{index}" for index, (route, _, _) in enumerate(LONE_SURROGATE_BODIES)],
)
def test_a_string_with_an_unpaired_surrogate_is_malformed_not_a_5xx(alice, bob, route, body, headers):
    """Valid JSON syntax, but no UTF-8 form: it could reach neither the database nor the audit hash."""
    action = bob.propose()
    if route == "mark-executed":
        assert bob.approve(action).status_code == HTTPStatus.OK
    path = {"propose": ACTIONS, "api-keys": API_KEYS}.get(route, f"{ACTIONS}/{action['id']}/{route}")

    response = alice.post(path, data=body, content_type="application/json", headers=headers)

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == "malformed_json"
    assert len(alice.get(ACTIONS).get_json()["items"]) == 1
    assert len(alice.get(f"{ACTIONS}/{action['id']}").get_json()["events"]) == (2 if route == "mark-executed" else 1)


NUL_BODIES = [
    ("propose", {"action_type": "alert", "target_ref": "x", "reason": "cost\x00spike"}, "reason"),
    ("propose", {"action_type": "alert", "target_ref": "x", "reason": "r", "payload": {"k": ["a\x00"]}}, "payload"),
    ("propose", {"action_type": "alert", "target_ref": "x", "reason": "r", "payload": {"\x00": 1}}, "payload"),
    ("propose", {"action_type": "alert", "target_ref": "x\x00", "reason": "r"}, "target_ref"),
    ("approve", {"note": "\x00"}, "note"),
    ("approve", {"confirmation": "run\x00"}, "confirmation"),
    ("reject", {"note": "no\x00"}, "note"),
    ("mark-executed", {"outcome": {"log": "\x00"}}, "outcome"),
    ("api-keys", {"name": "ci\x00"}, "name"),
    ("login", {"email": "a\x00@b.c", "password": "x"}, "email"),
]


@pytest.mark.parametrize(
    ("route", "body", "field"), NUL_BODIES, ids=[f"{route}-{field}" for route, _, field in NUL_BODIES]
)
def test_a_nul_character_in_a_body_is_a_validation_error_not_a_5xx(alice, bob, route, body, field):
    """U+0000 is valid JSON, but PostgreSQL text cannot hold it."""
    action = bob.propose()
    if route == "mark-executed":
        assert bob.approve(action).status_code == HTTPStatus.OK
    path = {"propose": ACTIONS, "api-keys": API_KEYS, "login": "/api/v1/auth/login"}.get(
        route, f"{ACTIONS}/{action['id']}/{route}"
    )

    response = alice.post(path, json=body)

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert error_code(response) == "validation_error"
    assert field in response.get_json()["error"]["details"]
    assert len(alice.get(ACTIONS).get_json()["items"]) == 1


def _nested(depth: int):
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize("depth", [2, 30, 63])
def test_a_payload_nested_up_to_the_limit_is_accepted(alice, depth):
    response = alice.post(ACTIONS, json={"action_type": "alert", "target_ref": "x", "reason": "r",
                                         "payload": {"k": _nested(depth)}})  # fmt: skip

    assert response.status_code == HTTPStatus.CREATED
    assert response.get_json()["payload"] == {"k": _nested(depth)}


@pytest.mark.parametrize("depth", [64, 200, 900, 940, 960])
@pytest.mark.parametrize("route", ["propose", "mark-executed"])
def test_a_body_nested_too_deeply_is_refused_not_a_5xx(alice, bob, route, depth):
    """Deep enough to pass the parser but exhaust a later encoder's stack, without the limit."""
    nested = "[" * depth + "]" * depth
    if route == "propose":
        path, body = ACTIONS, '{"action_type": "alert", "target_ref": "x", "reason": "r", "payload": {"k": %s}}'
    else:
        action = bob.propose()
        assert bob.approve(action).status_code == HTTPStatus.OK
        path, body = f"{ACTIONS}/{action['id']}/mark-executed", '{"outcome": {"k": %s}}'

    response = alice.post(path, data=body % nested, content_type="application/json")

    assert response.status_code in (HTTPStatus.BAD_REQUEST, HTTPStatus.UNPROCESSABLE_ENTITY)
    assert error_code(response) in ("malformed_json", "validation_error")


def test_a_surrogate_pair_escape_is_an_ordinary_character(alice):
    response = alice.post(
        ACTIONS,
        data='{"action_type": "alert", "target_ref": "x", "reason": "fire \\ud83d\\udd25"}',
        content_type="application/json",
    )

    assert response.status_code == HTTPStatus.CREATED
    assert response.get_json()["reason"] == "fire \U0001f525"


@pytest.mark.parametrize(
    "headers",
    [{"X-API-Key": "sk-at-" + "é" * 40}, {"Authorization": "Bearer sk-at-" + "x" * 500}, {"Authorization": "Bearer"},
     {"Authorization": "bearer " + "x.y.z"}, {"Authorization": "Bearer a.b"}, {"Cookie": "access_token_cookie=x.y.z"}],
    ids=["non-ascii-key", "very-long-key", "scheme-only", "lowercase-scheme-garbage", "two-part-jwt", "garbage-cookie"],
)  # fmt: skip
def test_odd_credentials_are_unauthorized_never_a_5xx(client, headers):
    response = client.get(ACTIONS, headers=headers)

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert error_code(response) == "unauthorized"


# ----------------------------------------------------------------------------- health and OpenAPI


def test_healthz_answers_ok(client):
    response = client.get("/healthz")

    assert response.status_code == HTTPStatus.OK
    assert response.get_json()["status"] == "ok"


def test_readyz_answers_ok_when_the_database_answers(client):
    response = client.get("/readyz")

    assert response.status_code == HTTPStatus.OK
    assert response.get_json()["checks"]["database"] == "ok"


def test_the_openapi_document_needs_no_credentials_and_documents_every_endpoint(client):
    response = client.get("/api/v1/openapi.json")

    assert response.status_code == HTTPStatus.OK
    document = response.get_json()
    assert document["openapi"].startswith("3.")
    documented = {(method, path) for path, operations in document["paths"].items() for method in operations}
    assert documented == CONTRACT_ENDPOINTS


def test_the_openapi_document_covers_every_api_route_of_the_app(app, client):
    document = client.get("/api/v1/openapi.json").get_json()
    routes = {
        (method.lower(), re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/") and rule.rule != "/api/v1/openapi.json"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }

    assert routes == {(method, path) for path, operations in document["paths"].items() for method in operations}


@pytest.mark.parametrize(
    ("method", "path", "codes"),
    [
        ("post", "/api/v1/deployments/actions", {"400", "401", "403", "422", "429"}),
        ("post", "/api/v1/deployments/actions/{action_id}/approve", {"400", "401", "403", "404", "409", "422", "429"}),
        ("post", "/api/v1/deployments/actions/{action_id}/reject", {"400", "401", "403", "404", "409", "422", "429"}),
        ("post", "/api/v1/deployments/actions/{action_id}/mark-executed", {"400", "401", "403", "404", "409", "429"}),
        ("get", "/api/v1/deployments/actions", {"401", "403", "422"}),
        ("get", "/api/v1/deployments/summary", {"401", "403", "422"}),
        ("delete", "/api/v1/api-keys/{key_id}", {"401", "403", "404"}),
    ],
)
def test_the_openapi_document_lists_the_error_statuses_of_each_route(client, method, path, codes):
    responses = client.get("/api/v1/openapi.json").get_json()["paths"][path][method]["responses"]

    assert codes <= set(responses)
    for status in codes:
        assert responses[status]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


def test_the_openapi_document_gives_this_apps_ttl_bounds(app, client):
    ttl = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]["ActionPropose"]["properties"]
    ttl = ttl["ttl_seconds"]

    assert (ttl["minimum"], ttl["maximum"]) == (app.config["AUDITTRAIL_TTL_MIN_SECONDS"], 604800)
    assert ttl["default"] == app.config["AUDITTRAIL_DEFAULT_TTL_SECONDS"]


def test_the_openapi_document_promises_an_x_request_id_on_every_response(client):
    document = client.get("/api/v1/openapi.json").get_json()

    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                assert response["headers"]["X-Request-ID"]["required"] is True, (method, path, status)


def test_the_openapi_document_describes_an_event_actor(client):
    schemas = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]

    actor = schemas["Event"]["properties"]["actor"]
    assert actor == {"$ref": "#/components/schemas/EventActor"}
    assert {"id", "name", "kind"} <= set(schemas["EventActor"]["required"])
