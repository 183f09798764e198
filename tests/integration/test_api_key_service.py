"""The API key service without HTTP: a revoked key authenticates no more, and revoking is the owner's."""

from __future__ import annotations

import pytest

from audittrail.extensions import db
from audittrail.models import ApiKey
from audittrail.services import api_keys
from audittrail.services.errors import ApiKeyNotFound
from audittrail.services.errors import ValidationFailed
from tests.factories import make_team


def test_a_live_key_authenticates_as_its_row(app, clock):
    team = make_team(clock())
    key, secret = api_keys.create_api_key(team.alice, "runner", clock())

    assert api_keys.authenticate_api_key(secret).id == key.id


def test_a_revoked_key_no_longer_authenticates(app, clock):
    team = make_team(clock())
    key, secret = api_keys.create_api_key(team.alice, "runner", clock())

    revoked = api_keys.revoke_api_key(team.alice, key.id, clock.advance(seconds=5))

    assert revoked.revoked_at is not None
    assert api_keys.authenticate_api_key(secret) is None


def test_a_revoked_key_is_not_marked_as_used(app, clock):
    team = make_team(clock())
    key, secret = api_keys.create_api_key(team.alice, "runner", clock())
    api_keys.revoke_api_key(team.alice, key.id, clock())

    api_keys.authenticate_api_key(secret)

    db.session.expire_all()
    assert db.session.get(ApiKey, key.id).last_used_at is None


def test_revoking_twice_keeps_the_first_revocation_time(app, clock):
    team = make_team(clock())
    key, _ = api_keys.create_api_key(team.alice, "runner", clock())
    first = api_keys.revoke_api_key(team.alice, key.id, clock()).revoked_at

    again = api_keys.revoke_api_key(team.alice, key.id, clock.advance(hours=1))

    assert again.revoked_at == first


def test_revoking_one_key_leaves_the_others_live(app, clock):
    team = make_team(clock())
    revoked, _ = api_keys.create_api_key(team.alice, "old", clock())
    _, live_secret = api_keys.create_api_key(team.alice, "new", clock())

    api_keys.revoke_api_key(team.alice, revoked.id, clock())

    assert api_keys.authenticate_api_key(live_secret) is not None


def test_only_the_owner_can_revoke_a_key(app, clock):
    team = make_team(clock())
    rivals = make_team(clock(), name="Rivals")
    key, secret = api_keys.create_api_key(team.alice, "runner", clock())

    for other in (team.bob, rivals.alice):
        with pytest.raises(ApiKeyNotFound):
            api_keys.revoke_api_key(other, key.id, clock())

    assert api_keys.authenticate_api_key(secret) is not None


@pytest.mark.parametrize("name", ["", "   ", "\u200b", "\ufeff\u2060", "\u3164"], ids=ascii)
def test_a_key_needs_a_readable_name_even_without_the_schema(app, clock, name):
    team = make_team(clock())

    with pytest.raises(ValidationFailed):
        api_keys.create_api_key(team.alice, name, clock())
