"""Identity (§5): demo-login, login, logout, me; JWT and API-key credentials; scopes; CSRF on cookies."""

from __future__ import annotations

import base64
import json
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from http import HTTPStatus

import jwt as pyjwt
import pytest

from tests.api.conftest import ACTIONS
from tests.api.conftest import ALL_SCOPES
from tests.api.conftest import API_KEYS
from tests.api.conftest import SUMMARY
from tests.api.conftest import Caller
from tests.api.conftest import bearer
from tests.api.conftest import error_code
from tests.api.conftest import jwt_for
from tests.api.conftest import key_caller
from tests.factories import make_team

ME = "/api/v1/auth/me"
LOGIN = "/api/v1/auth/login"
DEMO_LOGIN = "/api/v1/auth/demo-login"
LOGOUT = "/api/v1/auth/logout"
PROPOSAL = {"action_type": "alert", "target_ref": "pager/sre-primary", "reason": "Latency degradation"}


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _claims(token: str) -> dict:
    return pyjwt.decode(token, options={"verify_signature": False})


# ----------------------------------------------------------------------------- demo-login, login, me


def test_demo_login_creates_a_workspace_with_ten_seeded_rows_and_sets_cookies(client):
    response = client.post(DEMO_LOGIN)

    assert response.status_code == HTTPStatus.OK
    body = response.get_json()
    assert set(body) == {"access_token", "user", "workspace", "capabilities"}
    cookies = response.headers.getlist("Set-Cookie")
    access_cookie = next(c for c in cookies if c.startswith("access_token_cookie="))
    assert "HttpOnly" in access_cookie
    assert any(c.startswith("csrf_access_token=") for c in cookies)
    listing = client.get(ACTIONS, headers=bearer(body["access_token"]))
    assert listing.status_code == HTTPStatus.OK
    assert len(listing.get_json()["items"]) == 10


def test_each_demo_login_gets_its_own_workspace(client):
    first = client.post(DEMO_LOGIN).get_json()
    second = client.post(DEMO_LOGIN).get_json()

    assert first["workspace"]["id"] != second["workspace"]["id"]
    first_ids = {item["id"] for item in client.get(ACTIONS, headers=bearer(first["access_token"])).get_json()["items"]}
    second_ids = {
        item["id"] for item in client.get(ACTIONS, headers=bearer(second["access_token"])).get_json()["items"]
    }
    assert first_ids.isdisjoint(second_ids)


def test_demo_login_answers_404_when_turned_off(app, client):
    app.config["DEMO_LOGIN_ENABLED"] = False

    response = client.post(DEMO_LOGIN)

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert error_code(response) == "not_found"


@pytest.fixture
def team_with_passwords(app, clock):
    return make_team(clock(), name="Login", passwords=True)


def test_login_with_the_right_password_returns_a_working_token(client, team_with_passwords):
    team = team_with_passwords
    response = client.post(LOGIN, json={"email": team.alice.email, "password": "alice-password"})

    assert response.status_code == HTTPStatus.OK
    body = response.get_json()
    assert body["user"]["id"] == team.alice.id
    assert body["workspace"]["id"] == team.workspace.id
    me = client.get(ME, headers=bearer(body["access_token"]))
    assert me.status_code == HTTPStatus.OK
    assert me.get_json()["user"]["email"] == team.alice.email


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("alice@login.example.test", "wrong-password"),
        ("nobody@login.example.test", "alice-password"),
        ("bob@login.example.test", "alice-password"),
        ("ALICE@login.example.test", "ALICE-PASSWORD"),
    ],
    ids=["wrong-password", "unknown-email", "someone-elses-password", "password-case-matters"],
)
def test_login_with_bad_credentials_is_unauthorized(client, team_with_passwords, email, password):
    response = client.post(LOGIN, json={"email": email, "password": password})

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert error_code(response) == "unauthorized"


@pytest.mark.parametrize(
    "body",
    [
        {"email": "alice@ops.example.test"},
        {"password": "x"},
        {"email": "", "password": "x"},
        {"email": "a@b.c", "password": "x", "remember": True},
        {"email": 5, "password": "x"},
    ],
    ids=["no-password", "no-email", "empty-email", "unknown-field", "email-not-a-string"],
)
def test_login_with_an_invalid_body_is_a_validation_error(client, body):
    response = client.post(LOGIN, json=body)

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert error_code(response) == "validation_error"


def test_login_with_a_non_json_body_is_malformed(client):
    response = client.post(LOGIN, data="email=a&password=b", content_type="application/x-www-form-urlencoded")

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == "malformed_json"


def test_me_returns_the_caller_and_their_workspace(alice, team):
    response = alice.get(ME)

    assert response.status_code == HTTPStatus.OK
    assert response.get_json() == {
        "user": {"id": team.alice.id, "name": "Alice", "email": team.alice.email, "role": "approver", "kind": "human"},
        "workspace": {"id": team.workspace.id, "name": team.workspace.name},
        # An approver's JWT: everything but administering the workspace.
        "capabilities": ["read", "propose", "decide", "execute", "write_runs"],
    }


# ----------------------------------------------------------------------------- logout


def test_logout_revokes_the_token_and_clears_the_cookies(alice):
    response = alice.post(LOGOUT)

    assert response.status_code == HTTPStatus.NO_CONTENT
    cleared = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("access_token_cookie=;")]
    assert cleared, response.headers.getlist("Set-Cookie")
    after = alice.get(ME)
    assert after.status_code == HTTPStatus.UNAUTHORIZED
    assert error_code(after) == "unauthorized"


def test_logout_with_an_api_key_is_forbidden(client, alice, team):
    secret = alice.create_key()

    response = key_caller(client, secret).post(LOGOUT)

    assert response.status_code == HTTPStatus.FORBIDDEN
    assert error_code(response) == "forbidden"


# ----------------------------------------------------------------------------- bad credentials


def _no_credentials(app, client, team):
    return {}


def _garbage_bearer(app, client, team):
    return bearer("not-a-jwt")


def _empty_bearer(app, client, team):
    return {"Authorization": "Bearer "}


def _basic_auth(app, client, team):
    return {"Authorization": "Basic " + base64.b64encode(b"alice:alice-password").decode()}


def _expired_jwt(app, client, team):
    return bearer(jwt_for(team.alice, expires_delta=timedelta(seconds=-30)))


def _hand_encoded_expired_jwt(app, client, team):
    past = datetime.now(UTC) - timedelta(hours=9)
    claims = {
        "sub": team.alice.id,
        "type": "access",
        "fresh": False,
        "jti": "old-token",
        "iat": past,
        "nbf": past,
        "exp": past + timedelta(hours=8),
    }
    return bearer(pyjwt.encode(claims, app.config["JWT_SECRET_KEY"], algorithm="HS256"))


def _logged_out_jwt(app, client, team):
    token = jwt_for(team.alice)
    assert client.post(LOGOUT, headers=bearer(token)).status_code == HTTPStatus.NO_CONTENT
    return bearer(token)


def _tampered_jwt(app, client, team):
    header, payload, signature = jwt_for(team.bob).split(".")
    claims = _claims(jwt_for(team.bob))
    claims["sub"] = team.alice.id
    return bearer(".".join([header, _b64(claims), signature]))


def _tampered_signature_jwt(app, client, team):
    header, payload, signature = jwt_for(team.alice).split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    return bearer(".".join([header, payload, flipped]))


def _alg_none_jwt(app, client, team):
    claims = _claims(jwt_for(team.alice))
    return bearer(_b64({"alg": "none", "typ": "JWT"}) + "." + _b64(claims) + ".")


def _jwt_signed_with_another_secret(app, client, team):
    claims = _claims(jwt_for(team.alice))
    return bearer(pyjwt.encode(claims, "some-other-secret-of-sufficient-length-0123456789", algorithm="HS256"))


def _revoked_api_key_header(app, client, team):
    alice = Caller(client, bearer(jwt_for(team.alice)))
    secret = alice.create_key()
    key_id = alice.get(API_KEYS).get_json()["items"][0]["id"]
    assert alice.delete(f"{API_KEYS}/{key_id}").status_code == HTTPStatus.NO_CONTENT
    return {"X-API-Key": secret}


def _revoked_api_key_bearer(app, client, team):
    return {"Authorization": "Bearer " + _revoked_api_key_header(app, client, team)["X-API-Key"]}


def _unknown_api_key(app, client, team):
    return {"X-API-Key": "sk-at-" + "x" * 43}


def _too_short_api_key(app, client, team):
    return bearer("sk-at-short")


def _empty_api_key_header(app, client, team):
    return {"X-API-Key": ""}


BAD_CREDENTIALS = [
    _no_credentials,
    _garbage_bearer,
    _empty_bearer,
    _basic_auth,
    _expired_jwt,
    _hand_encoded_expired_jwt,
    _logged_out_jwt,
    _tampered_jwt,
    _tampered_signature_jwt,
    _alg_none_jwt,
    _jwt_signed_with_another_secret,
    _revoked_api_key_header,
    _revoked_api_key_bearer,
    _unknown_api_key,
    _too_short_api_key,
    _empty_api_key_header,
]
PROTECTED_ROUTES = [
    ("GET", ME, None),
    ("GET", ACTIONS, None),
    ("POST", ACTIONS, PROPOSAL),
    ("GET", f"{ACTIONS}/act_doesnotmatter", None),
    ("POST", f"{ACTIONS}/act_doesnotmatter/approve", {}),
    ("POST", f"{ACTIONS}/act_doesnotmatter/reject", {}),
    ("POST", f"{ACTIONS}/act_doesnotmatter/mark-executed", {}),
    ("GET", SUMMARY, None),
    ("GET", API_KEYS, None),
    ("POST", API_KEYS, {"name": "x"}),
    ("DELETE", f"{API_KEYS}/key_doesnotmatter", None),
    ("POST", LOGOUT, None),
]


@pytest.mark.parametrize("credentials", BAD_CREDENTIALS, ids=lambda f: f.__name__.strip("_"))
def test_bad_credentials_are_unauthorized_on_every_protected_route(app, client, team, credentials):
    headers = credentials(app, client, team)
    for method, path, body in PROTECTED_ROUTES:
        response = client.open(path, method=method, headers=headers, json=body)

        assert response.status_code == HTTPStatus.UNAUTHORIZED, (method, path, response.get_json())
        assert error_code(response) == "unauthorized", (method, path)


def test_a_bad_credential_changes_nothing(app, client, team, alice):
    before = alice.get(ACTIONS).get_json()["items"]

    response = client.post(ACTIONS, json=PROPOSAL, headers=_alg_none_jwt(app, client, team))

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert alice.get(ACTIONS).get_json()["items"] == before


# ----------------------------------------------------------------------------- API keys as credentials


@pytest.mark.parametrize("header", ["X-API-Key", "Authorization"])
def test_an_api_key_works_in_either_header_and_acts_as_its_owner(client, alice, team, header):
    secret = alice.create_key()
    caller = key_caller(client, secret, header=header)

    me = caller.get(ME)
    created = caller.propose()

    assert me.status_code == HTTPStatus.OK
    assert me.get_json()["user"]["id"] == team.alice.id
    assert created["proposed_by"]["id"] == team.alice.id
    events = caller.get(f"{ACTIONS}/{created['id']}").get_json()["events"]
    assert events[0]["actor"]["kind"] == "api_key"
    assert events[0]["actor"]["id"] == team.alice.id


def test_an_api_key_of_the_proposer_cannot_be_the_second_approver(client, alice):
    action = alice.propose(action_type="kill_run", target_ref="run_8f3a2c91d4e7")
    alices_key = key_caller(client, alice.create_key())

    response = alices_key.approve(action)

    assert response.status_code == HTTPStatus.FORBIDDEN
    assert error_code(response) == "second_approver_required"


def _route_needing(scope: str, bob: Caller) -> tuple[str, str, dict | None]:
    """A request that needs exactly `scope` and succeeds with it, on a fresh action of Bob's."""
    action = bob.propose()
    if scope == "actions:execute":
        assert bob.approve(action).status_code == HTTPStatus.OK
    return {
        "actions:read": ("GET", f"{ACTIONS}/{action['id']}", None),
        "actions:propose": ("POST", ACTIONS, PROPOSAL),
        "actions:decide": ("POST", f"{ACTIONS}/{action['id']}/approve", {}),
        "actions:execute": ("POST", f"{ACTIONS}/{action['id']}/mark-executed", {}),
    }[scope]


READ_ROUTES = [("GET", ACTIONS), ("GET", SUMMARY)]


@pytest.mark.parametrize("missing", ALL_SCOPES)
def test_a_key_without_a_scope_is_forbidden_what_needs_it_and_allowed_the_rest(client, alice, bob, missing):
    secret = alice.create_key(scopes=[scope for scope in ALL_SCOPES if scope != missing])
    caller = key_caller(client, secret)

    method, path, body = _route_needing(missing, bob)
    refused = client.open(path, method=method, headers=caller.headers, json=body)

    assert refused.status_code == HTTPStatus.FORBIDDEN
    assert error_code(refused) == "forbidden"
    assert refused.get_json()["error"]["details"] == {"scope": missing}
    for scope in ALL_SCOPES:
        if scope != missing:
            method, path, body = _route_needing(scope, bob)
            allowed = client.open(path, method=method, headers=caller.headers, json=body)
            assert allowed.status_code in (HTTPStatus.OK, HTTPStatus.CREATED), (scope, allowed.get_json())


def test_a_read_only_key_reads_but_cannot_change_anything(client, alice, bob):
    action = bob.propose()
    reader = key_caller(client, alice.create_key(scopes=["actions:read"]))

    for method, path in READ_ROUTES:
        assert client.open(path, method=method, headers=reader.headers).status_code == HTTPStatus.OK
    detail = reader.get(f"{ACTIONS}/{action['id']}").get_json()
    assert detail["allowed_transitions"] == []
    for name in ("approve", "reject", "mark-executed"):
        response = reader.transition(action["id"], name)
        assert response.status_code == HTTPStatus.FORBIDDEN
        assert error_code(response) == "forbidden"
    assert bob.get(f"{ACTIONS}/{action['id']}").get_json()["status"] == "proposed"


def test_a_key_without_read_scope_cannot_list_or_summarise(client, alice):
    caller = key_caller(client, alice.create_key(scopes=["actions:propose"]))

    for method, path in READ_ROUTES:
        response = client.open(path, method=method, headers=caller.headers)
        assert response.status_code == HTTPStatus.FORBIDDEN
        assert error_code(response) == "forbidden"


# ----------------------------------------------------------------------------- cookies and CSRF


def test_demo_login_cookie_post_without_the_csrf_header_fails_and_with_it_succeeds(client):
    assert client.post(DEMO_LOGIN).status_code == HTTPStatus.OK

    refused = client.post(ACTIONS, json=PROPOSAL)
    accepted = client.post(
        ACTIONS, json=PROPOSAL, headers={"X-CSRF-TOKEN": client.get_cookie("csrf_access_token").value}
    )

    assert refused.status_code == HTTPStatus.UNAUTHORIZED
    assert error_code(refused) == "csrf_failed"
    assert accepted.status_code == HTTPStatus.CREATED


def test_a_cookie_read_needs_no_csrf_header(client):
    client.post(DEMO_LOGIN)

    assert client.get(ACTIONS).status_code == HTTPStatus.OK
    assert client.get(ME).status_code == HTTPStatus.OK


def test_a_wrong_csrf_header_fails(client):
    client.post(DEMO_LOGIN)

    response = client.post(ACTIONS, json=PROPOSAL, headers={"X-CSRF-TOKEN": "not-the-token"})

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert error_code(response) == "csrf_failed"


@pytest.mark.parametrize(
    ("method", "path_template", "body"),
    [
        ("POST", ACTIONS, PROPOSAL),
        ("POST", ACTIONS + "/{action}/approve", {}),
        ("POST", ACTIONS + "/{action}/reject", {}),
        ("POST", ACTIONS + "/{action}/mark-executed", {}),
        ("POST", API_KEYS, {"name": "from the page"}),
        ("DELETE", API_KEYS + "/{key}", None),
        ("POST", LOGOUT, None),
    ],
)
def test_every_state_changing_cookie_request_needs_the_csrf_header(client, team, bob, method, path_template, body):
    """A cookie set by hand (as a browser would hold it) is refused on every write without X-CSRF-TOKEN."""
    token = jwt_for(team.alice)
    alice = Caller(client, bearer(token))
    key_id = (alice.create_key(), alice.get(API_KEYS).get_json()["items"][0]["id"])[1]
    action = bob.propose()
    if path_template.endswith("mark-executed"):
        assert bob.approve(action).status_code == HTTPStatus.OK
    path = path_template.format(action=action["id"], key=key_id)
    client.set_cookie("access_token_cookie", token)
    client.set_cookie("csrf_access_token", _claims(token)["csrf"])

    refused = client.open(path, method=method, json=body)
    accepted = client.open(path, method=method, json=body, headers={"X-CSRF-TOKEN": _claims(token)["csrf"]})

    assert refused.status_code == HTTPStatus.UNAUTHORIZED
    assert error_code(refused) == "csrf_failed"
    assert accepted.status_code in (HTTPStatus.OK, HTTPStatus.CREATED, HTTPStatus.NO_CONTENT), accepted.get_json()
