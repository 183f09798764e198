"""API keys (§5, §6): created with a JWT, shown once, listed without secrets, revocable."""

from __future__ import annotations

import re
from http import HTTPStatus

import pytest

from tests.api.conftest import ACTIONS
from tests.api.conftest import ALL_SCOPES
from tests.api.conftest import API_KEYS
from tests.api.conftest import error_code
from tests.api.conftest import key_caller

KEY_FIELDS = {"id", "name", "prefix", "scopes", "created_at", "last_used_at", "revoked_at"}
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def test_creating_a_key_answers_201_with_the_secret_once(alice):
    response = alice.post(API_KEYS, json={"name": "fleet runner"})

    assert response.status_code == HTTPStatus.CREATED
    created = response.get_json()
    assert set(created) == KEY_FIELDS | {"key"}
    assert re.fullmatch(r"sk-at-[A-Za-z0-9_-]{32,}", created["key"])
    assert created["key"].startswith(created["prefix"]) and created["prefix"] != created["key"]
    assert created["name"] == "fleet runner"
    assert created["scopes"] == ALL_SCOPES
    assert RFC3339_UTC.match(created["created_at"])
    assert created["last_used_at"] is None and created["revoked_at"] is None


def test_the_list_never_shows_a_secret(alice):
    secret = alice.create_key(name="first")
    alice.create_key(name="second")

    response = alice.get(API_KEYS)

    assert response.status_code == HTTPStatus.OK
    items = response.get_json()["items"]
    assert sorted(item["name"] for item in items) == ["first", "second"]
    for item in items:
        assert set(item) == KEY_FIELDS
    assert secret not in response.get_data(as_text=True)
    assert secret[len("sk-at-") + 8 :] not in response.get_data(as_text=True)


def test_two_keys_have_different_secrets(alice):
    assert alice.create_key() != alice.create_key()


def test_a_key_is_created_with_only_the_scopes_asked_for(alice):
    response = alice.post(API_KEYS, json={"name": "reader", "scopes": ["actions:read"]})

    assert response.status_code == HTTPStatus.CREATED
    assert response.get_json()["scopes"] == ["actions:read"]


def test_using_a_key_records_when_it_was_last_used(client, alice, clock):
    secret = alice.create_key()

    assert key_caller(client, secret).get(ACTIONS).status_code == HTTPStatus.OK

    (item,) = alice.get(API_KEYS).get_json()["items"]
    assert item["last_used_at"] == clock().strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "   "},
        {"name": 7},
        {"name": "x" * 201},
        {"name": "runner", "scopes": []},
        {"name": "runner", "scopes": ["actions:admin"]},
        {"name": "runner", "scopes": "actions:read"},
        {"name": "runner", "expires_at": "2030-01-01T00:00:00Z"},
    ],
    ids=[
        "no-name",
        "empty-name",
        "blank-name",
        "name-not-a-string",
        "name-too-long",
        "no-scopes",
        "unknown-scope",
        "scopes-not-a-list",
        "unknown-field",
    ],
)
def test_an_invalid_key_request_is_a_validation_error_naming_the_field(alice, body):
    response = alice.post(API_KEYS, json=body)

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert error_code(response) == "validation_error"
    assert response.get_json()["error"]["details"]
    assert alice.get(API_KEYS).get_json()["items"] == []


@pytest.mark.parametrize("body", ["not json", "[]", '"name"', "null"])
def test_a_non_object_key_request_is_malformed(alice, body):
    response = alice.post(API_KEYS, data=body, content_type="application/json")

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == "malformed_json"


def test_revoking_a_key_answers_204_and_the_key_then_answers_401(client, alice):
    secret = alice.create_key()
    key_id = alice.get(API_KEYS).get_json()["items"][0]["id"]

    response = alice.delete(f"{API_KEYS}/{key_id}")

    assert response.status_code == HTTPStatus.NO_CONTENT
    assert response.get_data() == b""
    after = key_caller(client, secret).get(ACTIONS)
    assert after.status_code == HTTPStatus.UNAUTHORIZED
    assert error_code(after) == "unauthorized"
    (item,) = alice.get(API_KEYS).get_json()["items"]
    assert item["revoked_at"] is not None


def test_revoking_a_revoked_key_again_still_answers_204(alice):
    alice.create_key()
    key_id = alice.get(API_KEYS).get_json()["items"][0]["id"]
    alice.delete(f"{API_KEYS}/{key_id}")

    assert alice.delete(f"{API_KEYS}/{key_id}").status_code == HTTPStatus.NO_CONTENT


def test_revoking_one_key_leaves_the_others_working(client, alice):
    kept = alice.create_key(name="kept")
    alice.create_key(name="revoked")
    revoked_id = next(item["id"] for item in alice.get(API_KEYS).get_json()["items"] if item["name"] == "revoked")

    alice.delete(f"{API_KEYS}/{revoked_id}")

    assert key_caller(client, kept).get(ACTIONS).status_code == HTTPStatus.OK


def test_another_workspaces_key_answers_404_and_stays_live(client, alice, rival):
    rival_secret = rival.create_key()
    rival_key_id = rival.get(API_KEYS).get_json()["items"][0]["id"]

    response = alice.delete(f"{API_KEYS}/{rival_key_id}")

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert error_code(response) == "not_found"
    assert key_caller(client, rival_secret).get(ACTIONS).status_code == HTTPStatus.OK
    assert rival.get(API_KEYS).get_json()["items"][0]["revoked_at"] is None


def test_an_unknown_key_id_answers_404(alice):
    response = alice.delete(f"{API_KEYS}/key_000000000000000000000000")

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert error_code(response) == "not_found"


def test_another_workspaces_keys_are_not_listed(alice, rival):
    rival.create_key()

    assert alice.get(API_KEYS).get_json()["items"] == []


@pytest.mark.parametrize("header", ["X-API-Key", "Authorization"])
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("GET", API_KEYS, None), ("POST", API_KEYS, {"name": "minted by a key"}), ("DELETE", API_KEYS + "/{key}", None)],
)
def test_an_api_key_cannot_manage_api_keys(client, alice, header, method, path, body):
    secret = alice.create_key()
    key_id = alice.get(API_KEYS).get_json()["items"][0]["id"]
    caller = key_caller(client, secret, header=header)

    response = client.open(path.format(key=key_id), method=method, headers=caller.headers, json=body)

    assert response.status_code == HTTPStatus.FORBIDDEN
    assert error_code(response) == "forbidden"
    items = alice.get(API_KEYS).get_json()["items"]
    assert len(items) == 1 and items[0]["revoked_at"] is None
