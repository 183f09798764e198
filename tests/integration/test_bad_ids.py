"""Ids and secrets that could not have been made here are never sent to the database."""

from __future__ import annotations

import pytest

from audittrail.services import api_keys
from audittrail.services import deciding
from audittrail.services import proposing
from audittrail.services import querying
from audittrail.services import users
from audittrail.services.errors import ServiceError
from tests.factories import make_team
from tests.factories import propose

BAD_IDS = ["", "act_", "act_\x00" + "0" * 23, "ACT_" + "0" * 24, "act_" + "g" * 24, "key_" + "0" * 24, "x" * 5000]


@pytest.mark.parametrize("bad_id", BAD_IDS)
def test_malformed_action_ids_are_not_found(app, clock, bad_id):
    team = make_team(clock())
    for call in (
        lambda: querying.get_action(team.bob_actor, bad_id, clock()),
        lambda: deciding.approve_action(team.bob_actor, bad_id, clock()),
        lambda: deciding.reject_action(team.bob_actor, bad_id, clock()),
        lambda: deciding.mark_executed(team.bob_actor, bad_id, clock()),
    ):
        with pytest.raises(ServiceError) as raised:
            call()
        assert raised.value.code == "not_found"


@pytest.mark.parametrize("bad_id", ["key_\x00", "act_" + "0" * 24, "nope"])
def test_malformed_api_key_ids_are_not_found(app, clock, bad_id):
    team = make_team(clock())
    with pytest.raises(ServiceError) as raised:
        api_keys.revoke_api_key(team.alice, bad_id, clock())
    assert raised.value.code == "not_found"


@pytest.mark.parametrize(
    "secret", ["sk-at-", "sk-at-short", "sk-at-" + "\x00" * 40, "sk-at-" + "é" * 40, "sk-at-" + "a" * 201, "Bearer x"]
)
def test_malformed_api_key_secrets_do_not_authenticate(app, clock, secret):
    assert api_keys.authenticate_api_key(secret) is None


def test_cursor_with_a_forged_id_is_refused(app, clock):
    import base64
    import json

    team = make_team(clock())
    propose(team.alice_actor, clock())
    forged = base64.urlsafe_b64encode(json.dumps(["2026-11-30T12:00:00.000000", "act_\x00"]).encode()).decode()
    with pytest.raises(ServiceError) as raised:
        querying.list_actions(team.bob_actor, clock(), cursor=forged)
    assert raised.value.code == "validation_error" and "cursor" in raised.value.details


def test_login_with_a_nul_in_the_email_is_unauthorized(app):
    with pytest.raises(ServiceError) as raised:
        users.authenticate_password("a\x00@example.test", "pw")
    assert raised.value.code == "unauthorized"


@pytest.mark.parametrize(("field", "value"), [("action_type", "reboot"), ("mode", "yolo")])
def test_service_refuses_unknown_type_or_mode_even_without_the_schema(app, clock, field, value):
    team = make_team(clock())
    proposal = proposing.Proposal(**{"action_type": "alert", "target_ref": "x", "reason": "r", field: value})
    with pytest.raises(ServiceError) as raised:
        proposing.propose_action(team.alice_actor, proposal, clock())
    assert raised.value.code == "validation_error" and field in raised.value.details
