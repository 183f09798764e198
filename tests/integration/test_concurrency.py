"""Races on one row have exactly one winner per place; losers get 409 and leave no trace (§4, policy.md §3)."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
from sqlalchemy import func
from sqlalchemy import select

from audittrail.domain import DEFAULT_TIER_RULES
from audittrail.extensions import db
from audittrail.models import ActionApproval
from audittrail.models import AuditEvent
from audittrail.models import DeploymentAction
from audittrail.models import User
from audittrail.services import audit
from audittrail.services import deciding
from audittrail.services import expiry
from audittrail.services import members
from audittrail.services import policy
from audittrail.services.actors import user_actor
from audittrail.services.errors import ServiceError
from tests.factories import add_member
from tests.factories import key_actor
from tests.factories import make_team
from tests.factories import propose

THREADS = 12


def race(app, calls):
    """Run each call in its own thread and app context, released together; return results or error codes."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def worker(index, call):
        with app.app_context():
            barrier.wait()
            try:
                results[index] = call().status
            except ServiceError as error:
                results[index] = error.code
            except Exception as error:  # noqa: BLE001 — surfaced in the assertion below
                results[index] = f"crash: {error!r}"
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def event_types(action_id):
    db.session.expire_all()
    return sorted(db.session.scalars(select(AuditEvent.type).where(AuditEvent.action_id == action_id)))


@pytest.mark.parametrize("tier", [2, 3])
def test_concurrent_approvals_have_one_winner(app, clock, tier):
    team = make_team(clock())
    action = propose(team.alice_actor, clock(), tier=tier)
    approver, now, action_id = team.bob_actor, clock(), action.id
    db.session.remove()

    results = race(
        app,
        [
            lambda: deciding.approve_action(approver, action_id, now, note="go", confirmation="run_8f3a")
            for _ in range(THREADS)
        ],
    )

    assert sorted(results) == ["approved"] + ["invalid_transition"] * (THREADS - 1), results
    assert event_types(action_id) == ["approved", "proposed"]
    assert audit.verify_chain() is None


def test_concurrent_approve_and_reject_leave_a_legal_history(app, clock):
    team = make_team(clock())
    action = propose(team.alice_actor, clock(), tier=2)
    bob, alice, now, action_id = team.bob_actor, team.alice_actor, clock(), action.id
    db.session.remove()
    calls = []
    for index in range(THREADS):
        if index % 2:
            calls.append(lambda: deciding.approve_action(bob, action_id, now))
        else:
            calls.append(lambda: deciding.reject_action(alice, action_id, now, note="no"))

    results = race(app, calls)

    # A winner's returned row may already show a later winner's change, so count wins, not statuses.
    assert all(r in ("approved", "rejected", "invalid_transition") for r in results), results
    wins = sum(r != "invalid_transition" for r in results)
    history = [t for t in event_types_in_order(action_id) if t != "proposed"]
    # Legal histories: rejected; approved; approved then rejected. Nothing else.
    assert history in (["rejected"], ["approved"], ["approved", "rejected"]), history
    assert wins == len(history)
    assert db.session.get(DeploymentAction, action_id).status == history[-1]
    assert audit.verify_chain() is None


def event_types_in_order(action_id):
    db.session.expire_all()
    return list(
        db.session.scalars(select(AuditEvent.type).where(AuditEvent.action_id == action_id).order_by(AuditEvent.seq))
    )


def test_concurrent_transitions_on_different_rows_all_succeed_and_chain_stays_sound(app, clock):
    team = make_team(clock())
    ids = [propose(team.alice_actor, clock(), tier=2).id for _ in range(THREADS)]
    bob, now = team.bob_actor, clock()
    db.session.remove()

    results = race(
        app, [(lambda action_id=action_id: deciding.approve_action(bob, action_id, now)) for action_id in ids]
    )

    assert results == ["approved"] * THREADS
    total = db.session.scalar(select(func.count()).select_from(AuditEvent))
    assert total == 2 * THREADS
    assert audit.verify_chain() is None


def test_concurrent_sweeps_expire_each_row_once(app, clock):
    team = make_team(clock())
    ids = [propose(team.alice_actor, clock(), ttl=60).id for _ in range(5)]
    now = clock.advance(minutes=2)
    db.session.remove()
    counts = [0] * 4
    barrier = threading.Barrier(4)

    def sweep(index):
        with app.app_context():
            barrier.wait()
            counts[index] = expiry.expire_due(now)
            db.session.remove()

    threads = [threading.Thread(target=sweep, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sum(counts) == 5
    for action_id in ids:
        assert event_types(action_id) == ["expired", "proposed"]
    assert audit.verify_chain() is None


# ----------------------------------------------------------------------------- N of M (policy.md §3)

APPROVERS = 20


def _require_two_for_tier2(team, now):
    admin = add_member(team, now, "Ada", role="admin")
    rules = {**DEFAULT_TIER_RULES, 2: replace(DEFAULT_TIER_RULES[2], approvals_required=2)}
    policy.replace_policy(user_actor(admin), rules, now)


def _approvals(action_id) -> int:
    return db.session.scalar(
        select(func.count()).select_from(ActionApproval).where(ActionApproval.action_id == action_id)
    )


def test_twenty_distinct_approvers_racing_for_two_places_record_exactly_two(app, clock):
    team = make_team(clock())
    _require_two_for_tier2(team, clock())
    approvers = [user_actor(add_member(team, clock(), f"Approver{i}", role="approver")) for i in range(APPROVERS)]
    action_id, now = propose(team.alice_actor, clock(), tier=2).id, clock()
    db.session.remove()

    results = race(app, [lambda actor=actor: deciding.approve_action(actor, action_id, now) for actor in approvers])

    # A winner's returned row may already show the other winner's change: count losers instead.
    assert results.count("invalid_transition") == APPROVERS - 2, results
    assert all(r in ("proposed", "approved", "invalid_transition") for r in results), results
    assert event_types(action_id) == ["approval_recorded", "approved", "proposed"]
    row = db.session.get(DeploymentAction, action_id)
    assert (row.status, row.approvals_received, _approvals(action_id)) == ("approved", 2, 2)
    assert audit.verify_chain() is None


def test_one_person_approving_at_once_through_every_credential_is_recorded_once(app, clock):
    team = make_team(clock())
    _require_two_for_tier2(team, clock())
    agent = add_member(team, clock(), "Bot", role="approver", kind="agent", owner=team.bob)
    bob_key, _ = key_actor(team.bob, clock())
    credentials = [team.bob_actor, bob_key, user_actor(agent)] * 3
    action_id, now = propose(team.alice_actor, clock(), tier=2).id, clock()
    db.session.remove()

    results = race(app, [lambda actor=actor: deciding.approve_action(actor, action_id, now) for actor in credentials])

    assert sorted(results) == ["already_approved"] * (len(credentials) - 1) + ["proposed"], results
    assert event_types(action_id) == ["approval_recorded", "proposed"]
    row = db.session.get(DeploymentAction, action_id)
    assert (row.status, row.approvals_received, _approvals(action_id)) == ("proposed", 1, 1)
    assert audit.verify_chain() is None


def test_two_admins_demoting_each_other_at_once_leave_one_admin(app, clock):
    team = make_team(clock())
    first = add_member(team, clock(), "Ada", role="admin")
    second = add_member(team, clock(), "Ben", role="admin")
    a, b, now, workspace_id = user_actor(first), user_actor(second), clock(), team.workspace.id
    db.session.remove()
    outcomes = [None, None]
    barrier = threading.Barrier(2)

    def demote(index, actor, target_id):
        with app.app_context():
            barrier.wait()
            try:
                outcomes[index] = members.change_role(actor, target_id, "approver", now).role
            except ServiceError as error:
                outcomes[index] = error.code
            finally:
                db.session.remove()

    threads = [
        threading.Thread(target=demote, args=(0, a, second.id)),
        threading.Thread(target=demote, args=(1, b, first.id)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(outcomes) == ["approver", "last_admin"], outcomes
    admins = db.session.scalar(select(func.count()).where(User.workspace_id == workspace_id, User.role == "admin"))
    assert admins == 1
