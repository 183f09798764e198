"""Bulk seeding of one benchmark workspace: executemany on SQLite, COPY on PostgreSQL.

Rows are spread over the last 180 days with a realistic mix (see `_row`): modes 60 % supervised,
25 % autonomous, 15 % dry_run; the nine types evenly; rows whose approval window has passed are
executed, rejected, expired or (rarely) still approved; only rows inside their window are still
`proposed`; tier 1 autonomous rows are executed at creation; dry_run rows are never approved or
executed. The generator is seeded, so every run inserts the same rows.

Shortcut on the audit trail: a real history would carry 2–3 events per action (about 2.5 M at
1 M actions). Only the actions the detail endpoint reads (`DETAIL_SAMPLE` of them, taken from the
first batch) get their events, as a valid hash chain continuing the workspace's chain, so
`flask audit verify` still passes and the app appends after it. Everything else the benchmark
measures does not read events: list, summary, propose and approve only append to them, which
costs an index insert whose depth grows with log(events). The detail query reads events by
`ix_audit_events_action`, a lookup whose cost does not depend on the table size beyond that.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from types import SimpleNamespace

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text

from audittrail.domain import TIER_BY_ACTION_TYPE
from audittrail.domain.policy import DEFAULT_TIER_RULES
from audittrail.extensions import db
from audittrail.models import GENESIS_HASH
from audittrail.models import DeploymentAction
from audittrail.models import Workspace
from audittrail.models.workspace import STATUS_COUNTER_COLUMNS
from audittrail.services import api_keys
from audittrail.services import querying
from audittrail.services import users
from audittrail.services.audit import canonical_json
from audittrail.services.audit import event_hash

SPAN = timedelta(days=180)
DETAIL_SAMPLE = 200
CHUNK = 50_000

# The tier of each type comes from the domain, so the benchmark's rows are ones the rules allow.
TYPES = {action_type.value: tier for action_type, tier in TIER_BY_ACTION_TYPE.items()}
TYPE_NAMES = list(TYPES)
REASONS = [
    "Cost spike: token spend 3.2x the 7-day baseline on the summarizer fleet",
    "p95 latency up 40% after the 14:05 deploy",
    "Canary drift: eval score down 6 points against control",
    "Error-budget burn 4x over the last hour",
    "Runaway run: 1,800 tool calls in 10 minutes",
    "Provider outage: 502s from the primary model endpoint",
]
TTLS = [900, 3600, 3600, 3600, 14400, 86400]
COLUMNS = [
    "id", "workspace_id", "tier", "action_type", "target_ref", "reason", "mode", "status", "payload",
    "outcome", "approver_note", "rejection_note", "ttl_seconds", "proposed_at", "expires_at",
    "approved_at", "rejected_at", "executed_at", "expired_at", "proposed_by_id", "approved_by_id",
    "rejected_by_id", "executed_by_id", "policy", "approvals_received", "version",
]  # fmt: skip
# Each row keeps the default rule of its tier, as a proposal in a workspace that never changed its policy.
POLICIES = {tier: json.dumps(rule.as_dict()) for tier, rule in DEFAULT_TIER_RULES.items()}


@dataclass
class BenchWorld:
    """The workspace, its people and the API key the load generator uses."""

    workspace_id: str
    operator_id: str
    agent_id: str
    teammate_id: str
    api_key: str


def create_world(now: datetime) -> BenchWorld:
    """One workspace, three members, and an all-scope API key for the operator."""
    workspace = users.create_workspace("Bench", now)
    operator = users.create_user(workspace, "operator@bench.example.test", "Bench Operator", now, role="admin")
    agent = users.create_user(workspace, "agent@bench.example.test", "Autopilot", now)
    teammate = users.create_user(workspace, "teammate@bench.example.test", "Teammate", now, role="approver")
    db.session.commit()
    _, secret = api_keys.create_api_key(operator, "bench", now)
    return BenchWorld(workspace.id, operator.id, agent.id, teammate.id, secret)


def _row(rng: random.Random, world: BenchWorld, now: datetime) -> dict:
    action_type = rng.choice(TYPE_NAMES)
    tier = TYPES[action_type]
    roll = rng.random()
    mode = "supervised" if roll < 0.60 else "autonomous" if roll < 0.85 else "dry_run"
    ttl = rng.choice(TTLS)
    proposed_at = now - timedelta(seconds=rng.uniform(0, SPAN.total_seconds()))
    expires_at = proposed_at + timedelta(seconds=ttl)
    people = (world.operator_id, world.teammate_id)
    row = dict.fromkeys(COLUMNS)
    row.update(
        id=f"act_{rng.getrandbits(96):024x}",
        workspace_id=world.workspace_id,
        tier=tier,
        action_type=action_type,
        target_ref=f"run_{rng.getrandbits(48):012x}",
        reason=rng.choice(REASONS),
        mode=mode,
        payload=json.dumps({"percent": rng.choice([10, 20, 50])} if tier == 2 else {"region": "eu-west-1"}),
        ttl_seconds=ttl,
        proposed_at=proposed_at,
        expires_at=expires_at,
        proposed_by_id=world.agent_id if rng.random() < 0.7 else rng.choice(people),
        policy=POLICIES[tier],
    )
    _lifecycle(rng, world, now, row, tier, mode, ttl, proposed_at, expires_at, people)
    # The version is the number of events its history would hold; one approval counted if approved.
    row["version"] = 1 + sum(row[at] is not None for at in ("approved_at", "rejected_at", "executed_at", "expired_at"))
    row["approvals_received"] = 1 if row["approved_at"] is not None else 0
    return row


def _lifecycle(rng, world, now, row, tier, mode, ttl, proposed_at, expires_at, people) -> None:
    decided_at = min(now, proposed_at + timedelta(seconds=rng.uniform(30, ttl)))
    open_window = expires_at > now
    if tier == 1 and mode == "autonomous":
        row.update(status="executed", executed_at=proposed_at, outcome=json.dumps({"ok": True}))
        return
    roll = rng.random()
    if open_window and roll < 0.7:
        row["status"] = "proposed"
    elif mode == "dry_run":
        if open_window or roll < 0.4:
            row.update(status="rejected", rejected_at=decided_at, rejected_by_id=rng.choice(people))
        else:
            row.update(status="expired", expired_at=expires_at)
    elif not open_window and roll < 0.15:
        row.update(status="expired", expired_at=expires_at)
    elif roll < 0.30:
        row.update(
            status="rejected",
            rejected_at=decided_at,
            rejected_by_id=rng.choice(people),
            rejection_note="Not during the freeze",
        )
    else:
        approver = world.teammate_id if row["proposed_by_id"] == world.operator_id else world.operator_id
        row.update(
            status="approved",
            approved_at=decided_at,
            approved_by_id=approver,
            approver_note="Checked the dashboards" if tier == 3 else None,
        )
        if roll < 0.95:
            executed_at = min(now, decided_at + timedelta(seconds=rng.uniform(5, 600)))
            row.update(
                status="executed",
                executed_at=executed_at,
                executed_by_id=world.operator_id,
                outcome=json.dumps({"ok": True, "duration_ms": rng.randint(50, 5000)}),
            )


def pool_row(rng: random.Random, world: BenchWorld, now: datetime) -> dict:
    """A proposed, supervised tier 2 action a day from expiry: what the approve load consumes."""
    row = dict.fromkeys(COLUMNS)
    row.update(
        id=f"act_{rng.getrandbits(96):024x}",
        workspace_id=world.workspace_id,
        tier=2,
        action_type="throttle",
        target_ref=f"svc_{rng.getrandbits(48):012x}",
        reason=REASONS[0],
        mode="supervised",
        status="proposed",
        payload=json.dumps({"percent": 20}),
        ttl_seconds=86400,
        proposed_at=now - timedelta(seconds=rng.uniform(0, 600)),
        proposed_by_id=world.agent_id,
        policy=POLICIES[2],
        approvals_received=0,
        version=1,
    )
    row["expires_at"] = row["proposed_at"] + timedelta(seconds=86400)
    return row


def _naive_utc(value):
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _sqlite_value(value):
    if isinstance(value, datetime):
        # SQLAlchemy's SQLite DateTime storage format: naive UTC, always with microseconds.
        return _naive_utc(value).isoformat(" ", "microseconds")
    return value


def insert_rows(rows: list[dict]) -> None:
    """Insert action rows in one transaction: executemany on SQLite, COPY on PostgreSQL."""
    connection = db.engine.raw_connection()
    try:
        cursor = connection.cursor()
        if db.engine.dialect.name == "sqlite":
            # A seed, not a workload: a bigger page cache for the random primary keys, no fsync.
            cursor.execute("PRAGMA cache_size = -262144")
            cursor.execute("PRAGMA synchronous = OFF")
            placeholders = ", ".join("?" for _ in COLUMNS)
            cursor.executemany(
                f"INSERT INTO deployment_actions ({', '.join(COLUMNS)}) VALUES ({placeholders})",
                ([_sqlite_value(row[c]) for c in COLUMNS] for row in rows),
            )
        else:
            with cursor.copy(f"COPY deployment_actions ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row([_naive_utc(row[c]) for c in COLUMNS])
        connection.commit()
    finally:
        connection.close()


def count_actions(workspace_id: str) -> int:
    return db.session.scalar(select(func.count()).where(DeploymentAction.workspace_id == workspace_id))


def grow_to(world: BenchWorld, target: int, now: datetime, rng: random.Random) -> tuple[int, float]:
    """Insert rows until the workspace holds `target` actions; returns (inserted, seconds)."""
    import time

    started = time.perf_counter()
    now = _naive_utc(now)  # generate naive UTC: no time-zone arithmetic per row
    missing = target - count_actions(world.workspace_id)
    db.session.commit()
    # Big loads go faster without the secondary indexes, rebuilt once at the end (same DDL).
    dropped = _drop_secondary_indexes() if missing > 4 * CHUNK else []
    inserted = 0
    try:
        while inserted < missing:
            batch = [_row(rng, world, now) for _ in range(min(CHUNK, missing - inserted))]
            insert_rows(batch)
            inserted += len(batch)
    finally:
        _create_indexes(dropped)
    recount_status_counters(world.workspace_id)
    analyze()
    return inserted, time.perf_counter() - started


def recount_status_counters(workspace_id: str) -> None:
    """Bulk inserts bypass the service, so set the workspace's per-status counters as migration 0002 does."""
    for status, column in STATUS_COUNTER_COLUMNS.items():
        db.session.execute(
            text(
                f"UPDATE workspaces SET {column} = (SELECT count(*) FROM deployment_actions "
                "WHERE workspace_id = :workspace AND status = :status) WHERE id = :workspace"
            ),
            {"workspace": workspace_id, "status": status},
        )
    db.session.commit()


def _drop_secondary_indexes() -> list[str]:
    """Drop the migration's indexes on deployment_actions (not the primary key); their DDL."""
    with db.engine.begin() as connection:
        if db.engine.dialect.name == "sqlite":
            found = connection.execute(
                text(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                    "AND tbl_name = 'deployment_actions' AND sql IS NOT NULL"
                )
            ).all()
        else:
            found = connection.execute(
                text(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'deployment_actions' "
                    "AND indexname NOT IN (SELECT conname FROM pg_constraint)"
                )
            ).all()
        for name, _ in found:
            connection.execute(text(f'DROP INDEX "{name}"'))
    return [ddl for _, ddl in found]


def _create_indexes(statements: list[str]) -> None:
    with db.engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))


def analyze() -> None:
    """Fresh planner statistics on PostgreSQL (autovacuum would get there, later and at random)."""
    if db.engine.dialect.name != "postgresql":
        return
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE deployment_actions"))
        connection.execute(text("VACUUM ANALYZE audit_events"))


def seed_detail_events(world: BenchWorld, now: datetime) -> list[str]:
    """Give the first DETAIL_SAMPLE actions their full event history, as a valid chain; their ids."""
    rows = db.session.execute(
        select(DeploymentAction).where(DeploymentAction.workspace_id == world.workspace_id).limit(DETAIL_SAMPLE)
    ).scalars()
    names = {world.operator_id: "Bench Operator", world.agent_id: "Autopilot", world.teammate_id: "Teammate"}
    pending = []
    for action in rows:
        pending.append((action.proposed_at, action.id, "proposed", action.proposed_by_id, {"tier": action.tier}))
        if action.approved_at:
            pending.append((action.approved_at, action.id, "approved", action.approved_by_id, {"note": None}))
        if action.rejected_at:
            pending.append((action.rejected_at, action.id, "rejected", action.rejected_by_id, {"note": None}))
        if action.executed_at:
            who = None if action.mode == "autonomous" and action.tier == 1 else action.executed_by_id
            pending.append((action.executed_at, action.id, "executed", who, {"outcome": action.outcome}))
        if action.expired_at:
            pending.append((action.expired_at, action.id, "expired", None, {}))
    pending.sort(key=lambda item: (item[0], item[1]))
    ids = sorted({item[1] for item in pending})
    db.session.commit()

    # Continue the workspace's chain (creating the API key already appended its first event).
    head_seq, head_hash = db.session.execute(
        select(Workspace.audit_seq, Workspace.audit_head_hash).where(Workspace.id == world.workspace_id)
    ).one()
    db.session.commit()
    prev_hash = head_hash or GENESIS_HASH
    events = []
    for seq, (at, action_id, kind, user_id, data) in enumerate(pending, start=head_seq + 1):
        fields = dict(
            workspace_id=world.workspace_id,
            seq=seq,
            action_id=action_id,
            type=kind,
            actor_kind="user" if user_id else "system",
            actor_user_id=user_id,
            actor_api_key_id=None,
            actor_name=names.get(user_id, "system"),
            at=at,
            request_id="bench-seed",
            data=canonical_json(data),
        )
        digest = event_hash(prev_hash=prev_hash, **fields)
        events.append({**fields, "prev_hash": prev_hash, "hash": digest})
        prev_hash = digest
    with db.engine.begin() as connection:
        connection.execute(db.metadata.tables["audit_events"].insert(), events)
        connection.execute(
            Workspace.__table__.update()
            .where(Workspace.__table__.c.id == world.workspace_id)
            .values(audit_seq=head_seq + len(events), audit_head_hash=prev_hash)
        )
    return ids


def deep_cursor(world: BenchWorld, depth: float = 0.9) -> str:
    """The cursor of the page that starts `depth` of the way down the list."""
    total = count_actions(world.workspace_id)
    row = db.session.execute(
        select(DeploymentAction.proposed_at, DeploymentAction.id)
        .where(DeploymentAction.workspace_id == world.workspace_id)
        .order_by(DeploymentAction.proposed_at.desc(), DeploymentAction.id.desc())
        .offset(int(total * depth))
        .limit(1)
    ).one()
    db.session.commit()
    return querying.encode_cursor(SimpleNamespace(proposed_at=row.proposed_at, id=row.id))


def approvable_ids(world: BenchWorld, now: datetime, limit: int) -> list[str]:
    """Proposed tier 2, non-dry-run actions still well inside their window."""
    ids = list(
        db.session.scalars(
            select(DeploymentAction.id)
            .where(
                DeploymentAction.workspace_id == world.workspace_id,
                DeploymentAction.status == "proposed",
                DeploymentAction.tier == 2,
                DeploymentAction.mode != "dry_run",
                DeploymentAction.expires_at > now + timedelta(minutes=30),
            )
            .limit(limit)
        )
    )
    db.session.commit()
    return ids
