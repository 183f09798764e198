"""Fixtures for the REST API tests: callers with credentials, and a client that refuses any 5xx.

Every response any API test receives goes through `ContractClient`, so "no request produces a
5xx", "every response carries X-Request-ID" and "every API error is the one envelope" are checked
on every call of every test, not only where a test remembers to.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from http import HTTPStatus

import pytest
from flask.testing import FlaskClient
from flask_jwt_extended import create_access_token

from tests.factories import Team
from tests.factories import make_team

ACTIONS = "/api/v1/deployments/actions"
SUMMARY = "/api/v1/deployments/summary"
API_KEYS = "/api/v1/api-keys"
MEMBERS = "/api/v1/members"
POLICY = "/api/v1/policy"
ALL_SCOPES = ["actions:read", "actions:propose", "actions:decide", "actions:execute"]


def assert_contract_response(response, path: str) -> None:
    """What holds for every answer: no 5xx, a request id, and the error envelope on API errors."""
    assert response.status_code < HTTPStatus.INTERNAL_SERVER_ERROR, (
        f"{path} answered {response.status_code}: {response.get_data(as_text=True)[:500]}"
    )
    assert response.headers.get("X-Request-ID"), f"{path} answered without X-Request-ID"
    if path.startswith("/api/") and response.status_code >= HTTPStatus.BAD_REQUEST:
        body = response.get_json(silent=True)
        assert isinstance(body, dict) and set(body) == {"error"}, f"{path}: not the error envelope: {body!r}"
        error = body["error"]
        assert set(error) == {"code", "message", "details"}
        assert isinstance(error["code"], str) and error["code"]
        assert isinstance(error["message"], str) and error["message"].strip()
        assert isinstance(error["details"], dict)


class ContractClient(FlaskClient):
    """Flask's test client, checking `assert_contract_response` on every response."""

    def open(self, *args, **kwargs):
        response = super().open(*args, **kwargs)
        path = args[0] if args and isinstance(args[0], str) else kwargs.get("path", "/")
        assert_contract_response(response, path)
        return response


@pytest.fixture
def client(app):
    app.test_client_class = ContractClient
    return app.test_client()


def jwt_for(user, **kwargs) -> str:
    """A JWT for `user`, minted the way login does (needs an app context)."""
    return create_access_token(identity=user.id, additional_claims={"ws": user.workspace_id}, **kwargs)


def error_code(response) -> str | None:
    body = response.get_json(silent=True) or {}
    return (body.get("error") or {}).get("code")


@dataclass
class Caller:
    """A test client with one caller's credentials on every request."""

    client: FlaskClient
    headers: dict[str, str]
    user: object = None
    extra: dict = field(default_factory=dict)

    def _merge(self, kwargs: dict) -> dict:
        kwargs["headers"] = {**self.headers, **(kwargs.get("headers") or {})}
        return kwargs

    def get(self, path, **kwargs):
        return self.client.get(path, **self._merge(kwargs))

    def post(self, path, **kwargs):
        return self.client.post(path, **self._merge(kwargs))

    def delete(self, path, **kwargs):
        return self.client.delete(path, **self._merge(kwargs))

    def patch(self, path, **kwargs):
        return self.client.patch(path, **self._merge(kwargs))

    def put(self, path, **kwargs):
        return self.client.put(path, **self._merge(kwargs))

    def propose(self, expected=HTTPStatus.CREATED, **fields) -> dict:
        """POST a proposal (a valid tier 2 one unless told otherwise) and return the action."""
        body = {"action_type": "throttle", "target_ref": "model/gpt-large@us-east-1", "reason": "Cost spike"}
        body.update(fields)
        response = self.post(ACTIONS, json=body)
        assert response.status_code == expected, response.get_json()
        return response.get_json()

    def transition(self, action_id: str, name: str, **body):
        return self.post(f"{ACTIONS}/{action_id}/{name}", json=body)

    def approve(self, action: dict, **body):
        """Approve with what tier 3 needs (confirmation and note) unless the test overrides it."""
        if action["tier"] == 3:
            body.setdefault("confirmation", action["target_ref"][:8])
            body.setdefault("note", "Checked the dashboard.")
        return self.transition(action["id"], "approve", **body)

    def create_key(self, scopes=None, name="runner") -> str:
        body = {"name": name} if scopes is None else {"name": name, "scopes": scopes}
        response = self.post(API_KEYS, json=body)
        assert response.status_code == HTTPStatus.CREATED, response.get_json()
        return response.get_json()["key"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def team(app, clock) -> Team:
    """Workspace "Ops" with Alice and Bob."""
    return make_team(clock())


@pytest.fixture
def rival_team(app, clock) -> Team:
    """Another workspace, whose rows must stay invisible to the first."""
    return make_team(clock(), name="Rivals")


@pytest.fixture
def alice(client, team) -> Caller:
    return Caller(client, bearer(jwt_for(team.alice)), team.alice)


@pytest.fixture
def bob(client, team) -> Caller:
    return Caller(client, bearer(jwt_for(team.bob)), team.bob)


@pytest.fixture
def rival(client, rival_team) -> Caller:
    return Caller(client, bearer(jwt_for(rival_team.alice)), rival_team.alice)


def key_caller(client, secret: str, user=None, header: str = "X-API-Key") -> Caller:
    headers = {"X-API-Key": secret} if header == "X-API-Key" else bearer(secret)
    return Caller(client, headers, user)
