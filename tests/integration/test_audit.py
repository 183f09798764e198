"""The audit trail (§8): one event per change, hash-chained, append-only, verifiable."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from audittrail.extensions import db
from audittrail.models import AuditEvent
from audittrail.models import DeploymentAction
from audittrail.services import audit
from audittrail.services import deciding
from audittrail.services import expiry
from tests.conftest import POSTGRES_URL
from tests.factories import approve
from tests.factories import key_actor
from tests.factories import make_team
from tests.factories import propose


def busy_workspace(clock):
    """Two workspaces with proposals, approvals, rejections, executions and expiries."""
    teams = [make_team(clock(), name="Ops"), make_team(clock(), name="Infra")]
    for team in teams:
        for index in range(6):
            action = propose(team.alice_actor, clock.advance(seconds=7), tier=1 + index % 3, ttl=300)
            if index % 3 == 0:
                approve(team.bob_actor, action, clock.advance(seconds=1))
                deciding.mark_executed(team.bob_actor, action.id, clock.advance(seconds=1), outcome={"rc": 0})
            elif index % 3 == 1:
                deciding.reject_action(team.bob_actor, action.id, clock.advance(seconds=1), note="no")
        propose(team.alice_actor, clock(), tier=1, mode="autonomous")
    clock.advance(minutes=10)
    expiry.expire_due(clock())
    return teams


def tamper(statement: str, **params):
    """Run a statement the triggers would refuse, with them out of the way for this one session."""
    engine = db.engine
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SET LOCAL session_replication_role = replica"))
            connection.execute(text(statement), params)
        else:
            connection.execute(text("DROP TRIGGER IF EXISTS audit_events_no_update"))
            connection.execute(text("DROP TRIGGER IF EXISTS audit_events_no_delete"))
            connection.execute(text(statement), params)


def events(workspace_id):
    return list(
        db.session.scalars(select(AuditEvent).where(AuditEvent.workspace_id == workspace_id).order_by(AuditEvent.seq))
    )


def test_every_change_appends_one_event_with_actor_time_request_and_data(app, clock):
    team = make_team(clock())
    agent, _ = key_actor(team.alice, clock(), scopes=["actions:propose"])
    agent = agent.with_request_id("req-propose")
    action = propose(agent, clock(), tier=2)
    approved_at = clock.advance(seconds=30)
    deciding.approve_action(team.bob_actor.with_request_id("req-approve"), action.id, approved_at, note="fine")
    deciding.mark_executed(team.bob_actor, action.id, clock.advance(seconds=30), outcome={"rc": 0})

    key_created, proposed, approved, executed = events(team.workspace.id)
    assert [e.seq for e in (key_created, proposed, approved, executed)] == [1, 2, 3, 4]
    assert (key_created.type, key_created.action_id) == ("api_key_created", None)
    assert (proposed.type, proposed.actor_kind, proposed.actor_user_id) == ("proposed", "api_key", team.alice.id)
    assert proposed.actor_api_key_id == agent.api_key_id and proposed.request_id == "req-propose"
    assert (approved.type, approved.actor_user_id, approved.at, approved.request_id) == (
        "approved",
        team.bob.id,
        approved_at,
        "req-approve",
    )
    assert json.loads(approved.data) == {
        "note": "fine",
        "approvers": [{"id": team.bob.id, "name": "Bob"}],
        "approvals_required": 1,
    }
    assert json.loads(executed.data) == {"outcome": {"rc": 0}}
    assert approved.prev_hash == proposed.hash and executed.prev_hash == approved.hash


def test_expiry_and_autonomous_execution_are_system_events(app, clock):
    team = make_team(clock())
    auto = propose(team.alice_actor, clock(), tier=1, mode="autonomous")
    due = propose(team.alice_actor, clock(), tier=2, ttl=60)
    clock.advance(minutes=2)
    expiry.expire_due(clock())
    by_action = {}
    for event in events(team.workspace.id):
        by_action.setdefault(event.action_id, []).append((event.type, event.actor_kind))
    assert by_action[auto.id] == [("proposed", "user"), ("executed", "system")]
    assert by_action[due.id] == [("proposed", "user"), ("expired", "system")]


def test_chains_are_per_workspace(app, clock):
    ops, infra = busy_workspace(clock)
    for team in (ops, infra):
        seqs = [e.seq for e in events(team.workspace.id)]
        assert seqs == list(range(1, len(seqs) + 1))


def test_verify_passes_on_a_busy_database(app, clock):
    busy_workspace(clock)
    assert audit.verify_chain() is None


def test_database_refuses_update_on_events(app, clock):
    team = make_team(clock())
    propose(team.alice_actor, clock())
    db.session.commit()
    with pytest.raises(DatabaseError, match="append-only"), db.engine.begin() as connection:
        connection.execute(text("UPDATE audit_events SET actor_name = 'mallory'"))


def test_database_refuses_delete_on_events(app, clock):
    team = make_team(clock())
    propose(team.alice_actor, clock())
    db.session.commit()
    with pytest.raises(DatabaseError, match="append-only"), db.engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_events"))


if POSTGRES_URL:  # TRUNCATE exists on PostgreSQL only; defined (not skipped) where it can run

    @pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
    def test_database_refuses_truncate_on_postgresql(app, clock):
        team = make_team(clock())
        propose(team.alice_actor, clock())
        db.session.commit()
        with pytest.raises(DatabaseError, match="append-only"), db.engine.begin() as connection:
            connection.execute(text("TRUNCATE audit_events CASCADE"))


def test_verify_names_an_edited_event(app, clock):
    ops, _ = busy_workspace(clock)
    target = events(ops.workspace.id)[4]
    db.session.remove()
    tamper("UPDATE audit_events SET data = :data WHERE id = :id", data='{"note":"edited"}', id=target.id)
    problem = audit.verify_chain()
    assert problem is not None
    assert (problem.workspace_id, problem.seq, problem.event_id) == (ops.workspace.id, target.seq, target.id)
    assert "edited" in problem.reason


def test_verify_names_a_deleted_event(app, clock):
    ops, _ = busy_workspace(clock)
    target = events(ops.workspace.id)[3]
    db.session.remove()
    tamper("DELETE FROM audit_events WHERE id = :id", id=target.id)
    problem = audit.verify_chain()
    assert problem is not None
    assert (problem.workspace_id, problem.seq) == (ops.workspace.id, target.seq + 1)
    assert "gap" in problem.reason


def test_verify_names_a_deleted_last_event(app, clock):
    ops, _ = busy_workspace(clock)
    last = events(ops.workspace.id)[-1]
    db.session.remove()
    tamper("DELETE FROM audit_events WHERE id = :id", id=last.id)
    problem = audit.verify_chain()
    assert problem is not None and problem.workspace_id == ops.workspace.id
    assert "removed" in problem.reason


def test_verify_names_swapped_events(app, clock):
    ops, _ = busy_workspace(clock)
    first, second = events(ops.workspace.id)[2:4]
    db.session.remove()
    # Swap their positions in the chain: each takes the other's sequence number.
    tamper("UPDATE audit_events SET seq = -1 WHERE id = :id", id=first.id)
    tamper("UPDATE audit_events SET seq = :seq WHERE id = :id", seq=first.seq, id=second.id)
    tamper("UPDATE audit_events SET seq = :seq WHERE id = :id", seq=second.seq, id=first.id)
    problem = audit.verify_chain()
    assert problem is not None
    assert (problem.workspace_id, problem.seq) == (ops.workspace.id, first.seq)


def test_event_hash_covers_every_field(app, clock):
    from datetime import timedelta

    team = make_team(clock())
    propose(team.alice_actor, clock())
    event = events(team.workspace.id)[0]
    fields = audit.hashed_fields(event)
    assert audit.event_hash(**fields) == event.hash
    # Every field of the event except its own id and hash is covered: changing any one of them
    # (a null one included) changes the hash.
    covered = {column.name for column in AuditEvent.__table__.columns} - {"id", "hash"}
    assert set(fields) == covered
    for name, value in fields.items():
        if isinstance(value, int):
            changed = value + 1
        elif hasattr(value, "tzinfo"):
            changed = value + timedelta(microseconds=1)
        else:
            changed = (value or "") + "x"
        assert audit.event_hash(**{**fields, name: changed}) != event.hash, name


def test_verify_chain_is_not_fooled_by_a_workspace_already_in_the_session(app, clock):
    team = make_team(clock())
    action = propose(team.alice_actor, clock())
    assert action.proposed_by.workspace.audit_seq == 1  # the Workspace now sits in this session
    with app.app_context():  # another session, as another request would be
        approve(team.bob_actor, db.session.get(DeploymentAction, action.id), clock())
        db.session.remove()
    assert audit.verify_chain() is None


def test_workspace_status_counters_equal_the_rows(app, clock):
    from sqlalchemy import func

    from audittrail.models import Workspace
    from audittrail.models.workspace import STATUS_COUNTER_COLUMNS

    teams = busy_workspace(clock)
    for team in teams:
        rows = dict(
            db.session.execute(
                select(DeploymentAction.status, func.count())
                .where(DeploymentAction.workspace_id == team.workspace.id)
                .group_by(DeploymentAction.status)
            ).all()
        )
        workspace = db.session.get(Workspace, team.workspace.id, populate_existing=True)
        counters = {status: getattr(workspace, column) for status, column in STATUS_COUNTER_COLUMNS.items()}
        assert counters == {status: rows.get(status, 0) for status in STATUS_COUNTER_COLUMNS}
        assert len(rows) >= 3  # several statuses at once, so a swapped counter would show
