"""flask users create, api-keys create, deployments expire, audit verify."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy import text

from audittrail.extensions import db
from audittrail.models import ApiKey
from audittrail.models import DeploymentAction
from audittrail.models import User
from audittrail.services import api_keys
from tests.factories import make_team
from tests.factories import propose


def test_users_create_makes_a_user_who_can_log_in(app, runner):
    result = runner.invoke(
        args=["users", "create", "--email", "Ops@Example.test", "--name", "Ops", "--password", "pw-123456"]
    )
    assert result.exit_code == 0, result.output
    user = db.session.scalars(select(User).where(User.email == "ops@example.test")).one()
    assert user.password_hash and "pw-123456" not in user.password_hash


def test_users_create_refuses_a_taken_email(app, runner):
    args = ["users", "create", "--email", "a@example.test", "--name", "A", "--password", "pw"]
    assert runner.invoke(args=args).exit_code == 0
    result = runner.invoke(args=args)
    assert result.exit_code != 0 and "taken" in result.output


def test_api_keys_create_prints_the_secret_once_and_stores_only_its_hash(app, runner, clock):
    team = make_team(clock())
    result = runner.invoke(
        args=["api-keys", "create", "--email", team.alice.email, "--name", "runner", "--scope", "actions:execute"]
    )
    assert result.exit_code == 0, result.output
    secret = result.stdout.strip().splitlines()[-1]
    assert secret.startswith("sk-at-") and len(secret) >= len("sk-at-") + 32
    key = db.session.scalars(select(ApiKey)).one()
    assert key.scopes == ["actions:execute"]
    assert key.key_hash == api_keys.hash_key(secret) and secret not in (key.prefix, key.key_hash)
    assert api_keys.authenticate_api_key(secret).id == key.id


def test_api_keys_create_for_unknown_user_fails(app, runner):
    result = runner.invoke(args=["api-keys", "create", "--email", "nobody@example.test", "--name", "x"])
    assert result.exit_code != 0


def test_deployments_expire_flips_due_rows(app, runner, clock):
    team = make_team(clock())
    action = propose(team.alice_actor, clock().replace(year=2020), ttl=60)  # long past, by the real clock
    result = runner.invoke(args=["deployments", "expire"])
    assert result.exit_code == 0 and "expired 1 action" in result.output
    assert db.session.get(DeploymentAction, action.id).status == "expired"
    assert "expired 0 action" in runner.invoke(args=["deployments", "expire"]).output


def test_audit_verify_exits_zero_on_a_sound_chain_and_one_on_a_broken_one(app, runner, clock):
    team = make_team(clock())
    for _ in range(3):
        propose(team.alice_actor, clock())
    ok = runner.invoke(args=["audit", "verify"])
    assert ok.exit_code == 0 and "verified" in ok.output

    db.session.remove()
    with db.engine.begin() as connection:
        if db.engine.dialect.name == "postgresql":
            connection.execute(text("SET LOCAL session_replication_role = replica"))
        else:
            connection.execute(text("DROP TRIGGER IF EXISTS audit_events_no_update"))
        connection.execute(text("UPDATE audit_events SET actor_name = 'Mallory' WHERE seq = 2"))
    broken = runner.invoke(args=["audit", "verify"])
    assert broken.exit_code == 1
    assert "seq 2" in broken.output and team.workspace.id in broken.output
