"""The demo workspace (§7): ten consistent rows covering every tier, type, status and mode."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy import select

from audittrail.domain import ActionType
from audittrail.extensions import db
from audittrail.models import AuditEvent
from audittrail.models import DeploymentAction
from audittrail.models import User
from audittrail.services import audit
from audittrail.services import deciding
from audittrail.services import demo
from audittrail.services.actors import user_actor

EVENTS_FOR_HISTORY = {
    ("proposed", "supervised"): ["proposed"],
    ("approved", None): ["proposed", "approved"],
    ("rejected", None): ["proposed", "rejected"],
    ("expired", None): ["proposed", "expired"],
}


def seeded(clock):
    created = demo.create_demo_workspace(clock())
    rows = list(
        db.session.scalars(select(DeploymentAction).where(DeploymentAction.workspace_id == created.workspace.id))
    )
    return created, rows


def events_of(action_id):
    return list(
        db.session.scalars(select(AuditEvent).where(AuditEvent.action_id == action_id).order_by(AuditEvent.seq))
    )


def test_exactly_ten_rows_cover_every_tier_type_status_and_mode(app, clock):
    _, rows = seeded(clock)
    assert len(rows) == 10
    assert {r.tier for r in rows} == {1, 2, 3}
    assert {r.action_type for r in rows} == {t.value for t in ActionType}
    assert {r.status for r in rows} == {"proposed", "approved", "rejected", "executed", "expired"}
    assert {r.mode for r in rows} == {"dry_run", "supervised", "autonomous"}


def test_rows_are_consistent_with_the_rules(app, clock):
    _, rows = seeded(clock)
    for row in rows:
        if row.mode == "dry_run":
            assert row.status not in {"approved", "executed"}, row.id
        if row.tier == 1 and row.mode == "autonomous":
            assert row.status == "executed" and row.executed_at == row.proposed_at
        if row.status == "proposed":
            assert row.expires_at > clock(), "a proposed demo row must still be inside its TTL"
        if row.tier == 3 and row.approved_by_id:
            assert row.approved_by_id != row.proposed_by_id


def test_each_rows_events_match_its_history(app, clock):
    _, rows = seeded(clock)
    for row in rows:
        types = [e.type for e in events_of(row.id)]
        if row.status == "executed" and row.tier == 1 and row.mode == "autonomous":
            assert types == ["proposed", "executed"]
        elif row.status == "executed":
            assert types == ["proposed", "approved", "executed"]
        elif row.status == "rejected":
            assert types in (["proposed", "rejected"], ["proposed", "approved", "rejected"])
        else:
            assert (
                types
                == {"proposed": ["proposed"], "approved": ["proposed", "approved"], "expired": ["proposed", "expired"]}[
                    row.status
                ]
            )
        times = [e.at for e in events_of(row.id)]
        assert times == sorted(times) and times[0] == row.proposed_at


def test_chain_is_in_time_order_and_verifies(app, clock):
    created, _ = seeded(clock)
    chain = list(
        db.session.scalars(
            select(AuditEvent).where(AuditEvent.workspace_id == created.workspace.id).order_by(AuditEvent.seq)
        )
    )
    assert [e.at for e in chain] == sorted(e.at for e in chain)
    assert audit.verify_chain(created.workspace.id) is None


def test_proposed_at_spreads_over_the_past_two_days(app, clock):
    _, rows = seeded(clock)
    times = sorted(r.proposed_at for r in rows)
    assert all(clock() - timedelta(days=2) <= t < clock() for t in times)
    assert times[-1] - times[0] > timedelta(hours=36)
    assert len(set(times)) == 10


def test_rows_have_realistic_reasons_refs_payloads_and_outcomes(app, clock):
    _, rows = seeded(clock)
    assert all(len(r.reason) > 40 and r.payload for r in rows)
    assert len({r.target_ref for r in rows}) >= 9
    runner_executed = [r for r in rows if r.status == "executed" and r.tier > 1]
    assert runner_executed and all(r.outcome for r in runner_executed)
    assert any(r.rejection_note for r in rows) and any(r.approver_note for r in rows)


def test_operator_can_approve_a_tier3_and_a_tier2_row_proposed_by_someone_else(app, clock):
    created, rows = seeded(clock)
    operator = user_actor(created.operator)
    approvable = {
        r.tier
        for r in rows
        if r.status == "proposed"
        and r.proposed_by_id != created.operator.id
        and "approve" in deciding.allowed_transitions(r, operator, clock())
    }
    assert {2, 3} <= approvable
    tier3 = next(r for r in rows if r.tier == 3 and r.status == "proposed")
    approved = deciding.approve_action(operator, tier3.id, clock(), note="demo", confirmation=tier3.target_ref[:8])
    assert approved.status == "approved"


def test_demo_workspace_has_the_operator_and_other_members(app, clock):
    created, rows = seeded(clock)
    members = db.session.scalars(select(User).where(User.workspace_id == created.workspace.id)).all()
    assert len(members) >= 2 and created.operator in members
    proposers = Counter(r.proposed_by_id for r in rows)
    assert set(proposers) - {created.operator.id}


def test_each_demo_login_gets_a_fresh_workspace(app, clock):
    first, _ = seeded(clock)
    second, _ = seeded(clock)
    assert first.workspace.id != second.workspace.id
    assert first.operator.email != second.operator.email


def test_a_failure_while_seeding_leaves_nothing_behind(app, clock, monkeypatch):
    from sqlalchemy import func

    from audittrail.models import Workspace
    from audittrail.services.errors import InvalidTransition

    calls = {"n": 0}
    real_reject = deciding.reject_action

    def failing_reject(*args, **kwargs):
        calls["n"] += 1
        raise InvalidTransition("simulated failure half-way through the seed")

    monkeypatch.setattr(deciding, "reject_action", failing_reject)
    try:
        demo.create_demo_workspace(clock())
    except InvalidTransition:
        pass
    else:
        raise AssertionError("the simulated failure did not surface")
    assert calls["n"] == 1
    for model in (Workspace, User, DeploymentAction, AuditEvent):
        assert db.session.scalar(select(func.count()).select_from(model)) == 0, model.__name__
    monkeypatch.setattr(deciding, "reject_action", real_reject)
    created, rows = seeded(clock)
    assert len(rows) == 10 and audit.verify_chain(created.workspace.id) is None
