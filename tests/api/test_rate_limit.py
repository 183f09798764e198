"""Rate limits (§6): one bucket of 30/minute per client for the four transitions; logins per address.

The app here is built from tests/conftest's `app_config` with the contract's limits instead of the
test config's effectively-unlimited ones. Rows the tests act on are made through the service layer,
so that only the requests under test draw from the bucket. The limiter's fixed window starts at a
bucket's first hit, so a test finishing within the minute cannot straddle two windows.
"""

from __future__ import annotations

from http import HTTPStatus

import pytest

from audittrail import create_app
from tests import factories
from tests.api.conftest import ACTIONS
from tests.api.conftest import SUMMARY
from tests.api.conftest import error_code
from tests.api.conftest import key_caller
from tests.conftest import close_app

TRANSITION_LIMIT = 30
LOGIN_LIMIT = 5
PROPOSAL = {"action_type": "throttle", "target_ref": "tenant/acme-corp", "reason": "Cost spike"}


@pytest.fixture
def app(app_config):
    app = create_app(
        {
            **app_config,
            "AUDITTRAIL_TRANSITION_RATE_LIMIT": f"{TRANSITION_LIMIT}/minute",
            "AUDITTRAIL_LOGIN_RATE_LIMIT": f"{LOGIN_LIMIT}/minute",
        }
    )
    with app.app_context():
        yield app
        close_app(app)


@pytest.fixture
def rows(team, clock):
    """Rows of Bob's for the transitions: `proposed` ones to decide, `approved` ones to execute."""

    def make(proposed: int = 0, approved: int = 0) -> tuple[list[str], list[str]]:
        fresh = [factories.propose(team.bob_actor, clock()) for _ in range(proposed + approved)]
        for action in fresh[proposed:]:
            factories.approve(team.bob_actor, action, clock())
        return [action.id for action in fresh[:proposed]], [action.id for action in fresh[proposed:]]

    return make


def _mixed_transitions(caller, rows) -> list:
    """Thirty transitions across the four routes, interleaved: 8 proposals, 8 approvals, 7 rejections, 7 runs."""
    to_approve_or_reject, to_execute = rows(proposed=15, approved=7)
    requests = (
        [lambda: caller.post(ACTIONS, json=PROPOSAL)] * 8
        + [lambda i=i: caller.transition(i, "approve") for i in to_approve_or_reject[:8]]
        + [lambda i=i: caller.transition(i, "reject") for i in to_approve_or_reject[8:]]
        + [lambda i=i: caller.transition(i, "mark-executed") for i in to_execute]
    )
    order = [requests[index::4] for index in range(4)]
    return [request() for group in order for request in group]


def _assert_rate_limited(response) -> None:
    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert error_code(response) == "rate_limited"
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert response.get_json()["error"]["message"].startswith("Too many state-changing requests")
    assert response.headers["X-RateLimit-Limit"] == str(TRANSITION_LIMIT)
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert int(response.headers["X-RateLimit-Reset"]) > 0


@pytest.mark.parametrize("last_route", ["propose", "approve", "reject", "mark-executed"])
def test_thirty_mixed_transitions_pass_and_the_thirty_first_is_refused(alice, rows, last_route):
    answers = _mixed_transitions(alice, rows)
    proposed, approved = rows(proposed=1, approved=1)
    target = {"approve": proposed[0], "reject": proposed[0], "mark-executed": approved[0]}.get(last_route)

    over = alice.post(ACTIONS, json=PROPOSAL) if target is None else alice.transition(target, last_route)

    assert sorted(answer.status_code for answer in answers) == [HTTPStatus.OK] * 22 + [HTTPStatus.CREATED] * 8
    assert [answer.headers["X-RateLimit-Remaining"] for answer in answers] == [
        str(TRANSITION_LIMIT - n) for n in range(1, TRANSITION_LIMIT + 1)
    ]
    _assert_rate_limited(over)
    if target is not None:
        expected = "approved" if last_route == "mark-executed" else "proposed"
        detail = alice.get(f"{ACTIONS}/{target}").get_json()
        assert detail["status"] == expected
        assert len(detail["events"]) == (2 if expected == "approved" else 1)
    else:
        assert len(alice.get(ACTIONS, query_string={"limit": 200}).get_json()["items"]) == 8 + 15 + 7 + 2


def test_reads_are_never_limited_even_with_the_transition_bucket_empty(alice, rows):
    _mixed_transitions(alice, rows)
    _assert_rate_limited(alice.post(ACTIONS, json=PROPOSAL))
    some_id = alice.get(ACTIONS).get_json()["items"][0]["id"]

    for path in [ACTIONS] * 100 + [SUMMARY] * 10 + [f"{ACTIONS}/{some_id}"] * 10 + ["/api/v1/auth/me"] * 5:
        response = alice.get(path)
        assert response.status_code == HTTPStatus.OK, path
        assert "X-RateLimit-Remaining" not in response.headers


def test_a_second_api_key_of_the_same_user_has_its_own_bucket(client, alice, rows):
    first_key = key_caller(client, alice.create_key(name="first"))
    second_key = key_caller(client, alice.create_key(name="second"))
    _mixed_transitions(first_key, rows)
    _assert_rate_limited(first_key.post(ACTIONS, json=PROPOSAL))

    by_second_key = second_key.post(ACTIONS, json=PROPOSAL)
    by_the_users_jwt = alice.post(ACTIONS, json=PROPOSAL)

    assert by_second_key.status_code == HTTPStatus.CREATED
    assert by_second_key.headers["X-RateLimit-Remaining"] == str(TRANSITION_LIMIT - 1)
    assert by_the_users_jwt.status_code == HTTPStatus.CREATED
    _assert_rate_limited(first_key.post(ACTIONS, json=PROPOSAL))


def test_another_user_has_their_own_bucket(alice, bob, rows):
    _mixed_transitions(alice, rows)
    _assert_rate_limited(alice.post(ACTIONS, json=PROPOSAL))

    assert bob.post(ACTIONS, json=PROPOSAL).status_code == HTTPStatus.CREATED


def test_failed_credentials_draw_from_the_addresses_bucket_not_a_users(client, alice):
    for _ in range(TRANSITION_LIMIT):
        client.post(ACTIONS, json=PROPOSAL, headers={"Authorization": "Bearer nonsense"})

    refused = client.post(ACTIONS, json=PROPOSAL, headers={"Authorization": "Bearer nonsense"})

    _assert_rate_limited(refused)
    assert alice.post(ACTIONS, json=PROPOSAL).status_code == HTTPStatus.CREATED


# ----------------------------------------------------------------------------- logins


def _from(address: str) -> dict:
    return {"environ_base": {"REMOTE_ADDR": address}}


def test_demo_login_and_login_share_one_bucket_per_address(client, team):
    answers = [client.post("/api/v1/auth/demo-login", **_from("10.0.0.1")) for _ in range(3)]
    answers += [
        client.post("/api/v1/auth/login", json={"email": team.alice.email, "password": "wrong"}, **_from("10.0.0.1"))
        for _ in range(LOGIN_LIMIT - 3)
    ]

    over_demo = client.post("/api/v1/auth/demo-login", **_from("10.0.0.1"))
    over_login = client.post("/api/v1/auth/login", json={"email": "a@b.c", "password": "x"}, **_from("10.0.0.1"))
    elsewhere = client.post("/api/v1/auth/demo-login", **_from("10.0.0.2"))

    assert [answer.status_code for answer in answers] == [HTTPStatus.OK] * 3 + [HTTPStatus.UNAUTHORIZED] * 2
    for refused in (over_demo, over_login):
        assert refused.status_code == HTTPStatus.TOO_MANY_REQUESTS
        assert error_code(refused) == "rate_limited"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert refused.get_json()["error"]["message"].startswith("Too many sign-in requests")
    assert elsewhere.status_code == HTTPStatus.OK


def test_logins_do_not_draw_from_the_transition_bucket(client, alice):
    for _ in range(LOGIN_LIMIT):
        client.post("/api/v1/auth/demo-login")

    response = alice.post(ACTIONS, json=PROPOSAL)

    assert response.status_code == HTTPStatus.CREATED
    assert response.headers["X-RateLimit-Remaining"] == str(TRANSITION_LIMIT - 1)
