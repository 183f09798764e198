"""The cron sweep, `flask deployments expire`, run by three processes at once on PostgreSQL."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from sqlalchemy import create_engine
from sqlalchemy import text

from audittrail import create_app
from audittrail.extensions import db
from audittrail.services import deciding
from audittrail.services import proposing
from audittrail.services import users
from audittrail.services.actors import user_actor
from tests.production import harness

pytestmark = pytest.mark.production

WORKSPACES = 3
DUE_PER_WORKSPACE = 80
NOT_DUE_PER_WORKSPACE = 10
SWEEPERS = 3


@pytest.fixture(scope="module")
def seeded(database):
    """Three workspaces, each with rows past their TTL, rows still inside it, and a decided one."""
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database,
            "SECRET_KEY": harness.SECRET_KEY,
            "JWT_SECRET_KEY": harness.JWT_SECRET_KEY,
            "RATELIMIT_STORAGE_URI": "memory://",
        }
    )
    now = datetime.now(UTC)
    proposed_at = now - timedelta(hours=2)
    due, not_due = [], []
    with app.app_context():
        for w in range(WORKSPACES):
            workspace = users.create_workspace(f"Sweep {w}", proposed_at)
            user = users.create_user(
                workspace, f"sweep-{w}-{uuid.uuid4().hex[:8]}@example.test", "Sweeper", proposed_at
            )
            db.session.commit()
            actor = user_actor(user, "sweep-seed")

            def propose(ttl, index, actor=actor):
                proposal = proposing.Proposal(
                    action_type="throttle", target_ref=f"model/m{index}", reason="Cost spike", ttl_seconds=ttl
                )
                return proposing.propose_action(actor, proposal, proposed_at + timedelta(milliseconds=index)).action.id

            due += [propose(3600, i) for i in range(DUE_PER_WORKSPACE)]
            not_due += [propose(604800, DUE_PER_WORKSPACE + i) for i in range(NOT_DUE_PER_WORKSPACE)]
            decided = propose(3600, 10_000)
            deciding.approve_action(actor, decided, proposed_at + timedelta(minutes=1))
            not_due.append(decided)
        db.session.remove()
        db.engine.dispose()
    return {"due": due, "not_due": not_due}


def _sweep(environ) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "deployments", "expire"],
        cwd=harness.PROJECT,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _expired_count(output: str) -> int:
    match = re.search(r"expired (\d+) action\(s\)", output)
    assert match, output
    return int(match.group(1))


def test_three_concurrent_sweeps_expire_each_due_row_once_with_one_event(seeded, database):
    environ = harness.app_environment(database)

    sweepers = [_sweep(environ) for _ in range(SWEEPERS)]
    outputs = [sweeper.communicate(timeout=180) for sweeper in sweepers]

    assert [sweeper.returncode for sweeper in sweepers] == [0] * SWEEPERS, outputs
    counts = [_expired_count(stdout) for stdout, _ in outputs]
    print(f"rows expired by each sweeper: {counts}")  # shown with -rP: how the work was shared
    assert sum(counts) == len(seeded["due"]), counts
    engine = create_engine(database)
    with engine.connect() as connection:
        statuses = dict(connection.execute(text("SELECT id, status FROM deployment_actions")).all())
        unexpired = connection.execute(
            text("SELECT count(*) FROM deployment_actions WHERE status = 'expired' AND expired_at <> expires_at")
        ).scalar()
        expired_events = connection.execute(
            text(
                "SELECT action_id, count(*), min(request_id), min(actor_kind) FROM audit_events "
                "WHERE type = 'expired' GROUP BY action_id"
            )
        ).all()
    engine.dispose()
    assert {statuses[action_id] for action_id in seeded["due"]} == {"expired"}
    assert {statuses[action_id] for action_id in seeded["not_due"]} == {"proposed", "approved"}
    assert unexpired == 0
    assert sorted(row[0] for row in expired_events) == sorted(seeded["due"])
    assert {tuple(row[1:]) for row in expired_events} == {(1, "cron-sweep", "system")}
    assert harness.status_problems(database) == []
    harness.verify_audit_chain(database)


def test_a_sweep_with_nothing_due_changes_nothing(seeded, database):
    result = harness.flask_command("deployments", "expire", environ=harness.app_environment(database))

    assert result.returncode == 0, result.stderr
    assert _expired_count(result.stdout) == 0
