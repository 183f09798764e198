"""Limits per account and per user (issue 15): failed logins per account, API key creation per user.

The app here has the default per-account and per-user limits (5 failed logins per 15 minutes,
10 key creations per hour) and a per-address login limit too high to interfere.
"""

from __future__ import annotations

from http import HTTPStatus

import pytest

from audittrail import create_app
from audittrail.config import load_config
from audittrail.ratelimit import limiter
from tests.api.conftest import ACTIONS
from tests.api.conftest import API_KEYS
from tests.api.conftest import error_code
from tests.conftest import close_app
from tests.factories import make_team

LOGIN = "/api/v1/auth/login"
ACCOUNT_LIMIT = 5
API_KEY_LIMIT = 10


@pytest.fixture
def app(app_config):
    app = create_app(
        {
            **app_config,
            "AUDITTRAIL_LOGIN_ACCOUNT_RATE_LIMIT": f"{ACCOUNT_LIMIT}/15minutes",
            "AUDITTRAIL_API_KEY_RATE_LIMIT": f"{API_KEY_LIMIT}/hour",
        }
    )
    with app.app_context():
        yield app
        close_app(app)


@pytest.fixture
def team(app, clock):
    """Alice and Bob with passwords (the `alice` and `bob` callers of tests/api/conftest use them too)."""
    return make_team(clock(), name="Login", passwords=True)


def _login(client, email: str, password: str = "wrong-password", address: str = "10.0.0.1"):
    return client.post(LOGIN, json={"email": email, "password": password}, environ_base={"REMOTE_ADDR": address})


def _fail(client, email: str, times: int) -> list[int]:
    """`times` wrong passwords for `email`, each from another address (a distributed guess)."""
    return [_login(client, email, address=f"10.0.1.{n}").status_code for n in range(times)]


def _assert_throttled(response) -> None:
    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert error_code(response) == "rate_limited"
    assert response.get_json()["error"]["message"].startswith("Too many sign-in requests")
    assert 1 <= int(response.headers["Retry-After"]) <= 15 * 60


def test_five_failed_logins_for_one_account_from_five_addresses_throttle_the_sixth(client, team):
    failures = _fail(client, team.alice.email, ACCOUNT_LIMIT)

    throttled = _login(client, team.alice.email, "alice-password", address="10.0.2.1")

    assert failures == [HTTPStatus.UNAUTHORIZED] * ACCOUNT_LIMIT
    _assert_throttled(throttled)


def test_a_throttled_login_answers_alike_for_a_known_and_an_unknown_account(client, team):
    _fail(client, team.alice.email, ACCOUNT_LIMIT)
    _fail(client, "nobody@login.example.test", ACCOUNT_LIMIT)

    known = _login(client, team.alice.email)
    unknown = _login(client, "nobody@login.example.test")

    for response in (known, unknown):
        _assert_throttled(response)
    assert known.get_json()["error"]["details"]["limit"] == unknown.get_json()["error"]["details"]["limit"]
    assert known.headers["X-RateLimit-Limit"] == unknown.headers["X-RateLimit-Limit"] == str(ACCOUNT_LIMIT)
    assert set(known.headers.keys()) == set(unknown.headers.keys())


def test_a_successful_login_resets_the_failures_of_its_account(client, team):
    before = _fail(client, team.alice.email, ACCOUNT_LIMIT - 1)
    success = _login(client, team.alice.email, "alice-password")

    after = _fail(client, team.alice.email, ACCOUNT_LIMIT)

    assert before == [HTTPStatus.UNAUTHORIZED] * (ACCOUNT_LIMIT - 1)
    assert success.status_code == HTTPStatus.OK
    assert after == [HTTPStatus.UNAUTHORIZED] * ACCOUNT_LIMIT
    _assert_throttled(_login(client, team.alice.email, "alice-password"))


def test_the_account_is_counted_by_its_normalised_email(client, team):
    spellings = [team.alice.email.upper(), f"  {team.alice.email}", team.alice.email.title()]
    for spelling in spellings + [team.alice.email] * (ACCOUNT_LIMIT - len(spellings)):
        assert _login(client, spelling).status_code == HTTPStatus.UNAUTHORIZED

    _assert_throttled(_login(client, team.alice.email, "alice-password"))


def test_one_accounts_failures_do_not_throttle_another(client, team):
    _fail(client, team.alice.email, ACCOUNT_LIMIT)

    response = _login(client, team.bob.email, "bob-password")

    assert response.status_code == HTTPStatus.OK


def test_refused_bodies_do_not_count_against_an_account(client, team):
    for _ in range(ACCOUNT_LIMIT + 1):
        assert client.post(LOGIN, json={"email": team.alice.email}).status_code == HTTPStatus.UNPROCESSABLE_ENTITY

    assert _login(client, team.alice.email, "alice-password").status_code == HTTPStatus.OK


def test_the_limiter_storage_holds_no_email(client, team):
    _fail(client, team.alice.email, 2)

    keys = list(limiter.storage.storage)

    assert any("login-account" in key for key in keys), keys
    assert not any("@" in key or "alice" in key for key in keys), keys


# ----------------------------------------------------------------------------- API key creation


def test_a_user_may_create_ten_api_keys_an_hour_and_the_eleventh_is_refused(alice):
    created = [alice.post(API_KEYS, json={"name": f"key {n}"}).status_code for n in range(API_KEY_LIMIT)]

    refused = alice.post(API_KEYS, json={"name": "one too many"})

    assert created == [HTTPStatus.CREATED] * API_KEY_LIMIT
    assert refused.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert error_code(refused) == "rate_limited"
    assert refused.get_json()["error"]["message"].startswith("Too many API key creation requests")
    assert 1 <= int(refused.headers["Retry-After"]) <= 3600
    assert len(alice.get(API_KEYS).get_json()["items"]) == API_KEY_LIMIT


def test_another_user_creates_keys_from_their_own_bucket(alice, bob):
    for n in range(API_KEY_LIMIT):
        alice.post(API_KEYS, json={"name": f"key {n}"})

    assert bob.post(API_KEYS, json={"name": "bobs key"}).status_code == HTTPStatus.CREATED


def test_the_api_key_limit_leaves_reading_keys_and_transitions_alone(alice):
    for n in range(API_KEY_LIMIT + 1):
        alice.post(API_KEYS, json={"name": f"key {n}"})

    assert alice.get(API_KEYS).status_code == HTTPStatus.OK
    assert alice.propose()["status"] == "proposed"
    assert alice.get(ACTIONS).status_code == HTTPStatus.OK


def test_the_limits_default_to_five_failed_logins_per_account_and_ten_keys_per_user(tmp_path):
    config = load_config(str(tmp_path), {"SECRET_KEY": "s", "JWT_SECRET_KEY": "j"})

    assert config["AUDITTRAIL_LOGIN_ACCOUNT_RATE_LIMIT"] == "5/15minutes"
    assert config["AUDITTRAIL_API_KEY_RATE_LIMIT"] == "10/hour"
