"""The lean reference: the same questions, from the same database, through Flask, with the raw driver.

What the app's answer would cost with nothing but Flask, the database driver and `json`: no ORM
objects, no schema layer, no authentication (the caller is read once at start-up), no rate limit.
Each endpoint runs the queries the app's answer needs, with the same shape (workspace filter,
order, limit, the same indexes), and builds the same representation: the pure functions that
compute its content (the domain's allowed transitions, the digest, the signed receipt, the hash
of each new event) are the app's own, since they are the answer and not the framework.

    make_app(database_url, workspace_id, user_id, signing_key) -> Flask

Routes, under /lean: GET /actions (limit, status, cursor), GET /actions/<id> (with events),
GET /summary (tz), POST /actions (propose), POST /actions/<id>/approve. bench.quick and
bench.run check that its answers equal the app's before they time anything.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from datetime import UTC
from datetime import datetime
from datetime import time
from datetime import timedelta
from zoneinfo import ZoneInfo

from flask import Flask
from flask import Response
from flask import request

from audittrail.domain import TIER_BY_ACTION_TYPE
from audittrail.domain import TIER_REQUIREMENTS
from audittrail.domain import ActionFacts
from audittrail.domain import ActionStatus
from audittrail.domain import Caller
from audittrail.domain import DecisionInputs
from audittrail.domain import Mode
from audittrail.domain import Role
from audittrail.domain import TierRule
from audittrail.domain import Transition
from audittrail.domain import decide
from audittrail.domain import expected_confirmation
from audittrail.domain.decisions import allowed_transitions
from audittrail.domain.policy import DEFAULT_TIER_RULES
from audittrail.services.audit import event_hash
from audittrail_evidence.canonical import action_digest
from audittrail_evidence.canonical import canonical_json
from audittrail_evidence.jws import ISSUER
from audittrail_evidence.jws import RECEIPT_TYPE
from audittrail_evidence.jws import keyring_from_settings

ACTION_COLUMNS = (
    "a.id, a.workspace_id, a.tier, a.action_type, a.target_ref, a.reason, a.mode, a.status, a.payload, a.outcome, "
    "a.approver_note, a.rejection_note, a.ttl_seconds, a.proposed_at, a.expires_at, a.approved_at, a.rejected_at, "
    "a.executed_at, a.expired_at, a.proposed_by_id, a.approved_by_id, a.rejected_by_id, a.executed_by_id, a.policy, "
    "a.approvals_received, a.version, pu.name, pu.owner_id, au.name, ru.name, eu.name"
)
ACTION_FROM = (
    "FROM deployment_actions a JOIN users pu ON pu.id = a.proposed_by_id "
    "LEFT JOIN users au ON au.id = a.approved_by_id LEFT JOIN users ru ON ru.id = a.rejected_by_id "
    "LEFT JOIN users eu ON eu.id = a.executed_by_id"
)
COUNTERS = {
    "proposed": "actions_proposed",
    "approved": "actions_approved",
    "rejected": "actions_rejected",
    "executed": "actions_executed",
    "expired": "actions_expired",
}


class Database:
    """One raw connection per thread (a sync gunicorn worker has one thread)."""

    def __init__(self, url: str):
        self.url = url
        self.sqlite = url.startswith("sqlite")
        self.local = threading.local()

    def connection(self):
        connection = getattr(self.local, "connection", None)
        if connection is None:
            if self.sqlite:
                import sqlite3

                connection = sqlite3.connect(self.url.split("///", 1)[1], timeout=15, check_same_thread=False)
                connection.execute("PRAGMA busy_timeout=15000")
                connection.execute("PRAGMA foreign_keys=ON")
                connection.execute("PRAGMA synchronous=NORMAL")
            else:
                import psycopg

                connection = psycopg.connect(self.url.replace("postgresql+psycopg://", "postgresql://", 1))
            self.local.connection = connection
        return connection

    def sql(self, text: str) -> str:
        return text.replace("%s", "?") if self.sqlite else text

    def all(self, text: str, params=()):
        return self.connection().execute(self.sql(text), params).fetchall()

    def one(self, text: str, params=()):
        return self.connection().execute(self.sql(text), params).fetchone()

    def run(self, text: str, params=()):
        return self.connection().execute(self.sql(text), params)

    def commit(self):
        self.connection().commit()

    def rollback(self):
        self.connection().rollback()

    # Values as the driver gives them: SQLite text, PostgreSQL datetimes and decoded JSON.
    def when(self, value) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC)

    def stored_time(self, value: datetime):
        naive = value.astimezone(UTC).replace(tzinfo=None)
        return naive.isoformat(" ", "microseconds") if self.sqlite else naive

    def loads(self, value):
        return json.loads(value) if isinstance(value, str) else value

    def dumps(self, value):
        return None if value is None else json.dumps(value)


def api_time(value: datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


# The bench key's scopes: a new key's defaults.
ALL_SCOPES = ("actions:read", "actions:propose", "actions:decide", "actions:execute")


def make_app(database_url: str, workspace_id: str, user_id: str, signing_key: str, api_key_id: str | None = None):
    database = Database(database_url)
    keyring = keyring_from_settings(signing_key, ())
    app = Flask(__name__)
    me = database.one("SELECT id, name, role, owner_id FROM users WHERE id = %s", (user_id,))
    database.rollback()
    caller = Caller(user_id=me[0], person_id=me[3] or me[0], role=Role(me[2]), scopes=frozenset(ALL_SCOPES))
    actor = {"kind": "api_key" if api_key_id else "user", "user_id": me[0], "api_key_id": api_key_id, "name": me[1]}

    def represent(rows, now: datetime) -> list[dict]:
        ids = [row[0] for row in rows]
        approvals: dict[str, list] = {action_id: [] for action_id in ids}
        if ids:
            marks = ", ".join("%s" for _ in ids)
            for action_id, uid, person_id, at, note, name in database.all(
                "SELECT p.action_id, p.user_id, p.person_id, p.at, p.note, u.name FROM action_approvals p "
                f"JOIN users u ON u.id = p.user_id WHERE p.action_id IN ({marks}) ORDER BY p.id",
                ids,
            ):
                approvals[action_id].append((uid, person_id, database.when(at), note, name))
        targets = sorted({row[4] for row in rows})
        runs: dict[str, tuple] = {}
        if targets:
            marks = ", ".join("%s" for _ in targets)
            for ref, run_id, started_at in database.all(
                "SELECT r.ref, r.run_id, s.started_at FROM run_refs r JOIN runs s "
                "ON s.workspace_id = r.workspace_id AND s.id = r.run_id "
                f"WHERE r.workspace_id = %s AND r.ref IN ({marks})",
                [workspace_id, *targets],
            ):
                rank = (ref == run_id, database.when(started_at), run_id)
                if ref not in runs or rank > runs[ref]:
                    runs[ref] = rank
        return [one(row, approvals[row[0]], runs.get(row[4]), now) for row in rows]

    def one(row, recorded, run, now: datetime) -> dict:
        (action_id, ws, tier, action_type, target_ref, reason, mode, status, payload, outcome, approver_note,
         rejection_note, ttl, proposed_at, expires_at, approved_at, rejected_at, executed_at, expired_at,
         proposed_by, approved_by, rejected_by, executed_by, policy, received, version,
         proposed_name, proposed_owner, approved_name, rejected_name, executed_name) = row  # fmt: skip
        payload, outcome, policy = database.loads(payload), database.loads(outcome), database.loads(policy)
        proposed_at, expires_at = database.when(proposed_at), database.when(expires_at)
        approved_at = database.when(approved_at)
        requirements = TIER_REQUIREMENTS[tier]
        rule = TierRule.from_dict(policy)
        facts = ActionFacts(
            status=ActionStatus(status),
            mode=Mode(mode),
            tier=tier,
            target_ref=target_ref,
            expires_at=expires_at,
            proposer_person_id=proposed_owner or proposed_by,
            rule=rule,
            approver_person_ids=frozenset(item[1] for item in recorded),
        )
        digest = action_digest(
            {
                "id": action_id,
                "workspace_id": ws,
                "action_type": action_type,
                "tier": tier,
                "target_ref": target_ref,
                "reason": reason,
                "mode": mode,
                "payload": payload,
                "ttl_seconds": ttl,
                "proposed_by": proposed_by,
                "proposed_at": api_time(proposed_at),
                "expires_at": api_time(expires_at),
                "policy": policy,
            }
        )
        receipt = None
        if status in ("approved", "executed") and approved_at is not None:
            approvers = [{"id": uid, "name": name, "at": api_time(at)} for uid, _, at, _, name in recorded]
            if not approvers and approved_by is not None:
                approvers = [{"id": approved_by, "name": approved_name, "at": api_time(approved_at)}]
            claims = {
                "iss": ISSUER,
                "sub": action_id,
                "ws": ws,
                "digest": digest,
                "approvers": approvers,
                "iat": int(approved_at.timestamp()),
            }
            receipt = keyring.sign(RECEIPT_TYPE, claims)
        return {
            "id": action_id,
            "workspace_id": ws,
            "tier": tier,
            "action_type": action_type,
            "target_ref": target_ref,
            "reason": reason,
            "mode": mode,
            "status": status,
            "payload": payload,
            "outcome": outcome,
            "approver_note": approver_note,
            "rejection_note": rejection_note,
            "ttl_seconds": ttl,
            "proposed_at": api_time(proposed_at),
            "expires_at": api_time(expires_at),
            "approved_at": api_time(approved_at),
            "rejected_at": api_time(database.when(rejected_at)),
            "executed_at": api_time(database.when(executed_at)),
            "expired_at": api_time(database.when(expired_at)),
            "proposed_by": {"id": proposed_by, "name": proposed_name},
            "approved_by": None if approved_by is None else {"id": approved_by, "name": approved_name},
            "rejected_by": None if rejected_by is None else {"id": rejected_by, "name": rejected_name},
            "executed_by": None if executed_by is None else {"id": executed_by, "name": executed_name},
            "requires_confirmation": requirements.confirmation,
            "requires_second_approver": not policy["allow_self_approval"],
            "confirmation_text": expected_confirmation(target_ref) if requirements.confirmation else None,
            "policy": policy,
            "approvals_required": policy["approvals_required"],
            "approvals_received": received,
            "approvals": [
                {"user": {"id": uid, "name": name}, "at": api_time(at), "note": note}
                for uid, _, at, note, name in recorded
            ],
            "allowed_transitions": allowed_transitions(facts, caller, now),
            "version": version,
            "digest": digest,
            "approval_receipt": receipt,
            "run_id": None if run is None else run[2],
        }

    def append_event(action_id, type, at, data, status_from=None, status_to=None, system=False):
        if action_id is not None:
            database.run(
                "UPDATE deployment_actions SET version = version + 1 WHERE id = %s RETURNING version", (action_id,)
            ).fetchone()
        moves = ["audit_seq = audit_seq + 1"]
        if status_from:
            moves.append(f"{COUNTERS[status_from]} = {COUNTERS[status_from]} - 1")
        if status_to:
            moves.append(f"{COUNTERS[status_to]} = {COUNTERS[status_to]} + 1")
        seq, prev_hash = database.run(
            f"UPDATE workspaces SET {', '.join(moves)} WHERE id = %s RETURNING audit_seq, audit_head_hash",
            (workspace_id,),
        ).fetchone()
        who = {"kind": "system", "user_id": None, "api_key_id": None, "name": "system"} if system else actor
        fields = dict(
            workspace_id=workspace_id,
            seq=seq,
            action_id=action_id,
            type=type,
            actor_kind=who["kind"],
            actor_user_id=who["user_id"],
            actor_api_key_id=who["api_key_id"],
            actor_name=who["name"],
            at=at,
            request_id=request.headers.get("X-Request-ID") or uuid.uuid4().hex,
            data=canonical_json(data),
        )
        digest = event_hash(prev_hash=prev_hash, **fields)
        database.run("UPDATE workspaces SET audit_head_hash = %s WHERE id = %s", (digest, workspace_id))
        database.run(
            "INSERT INTO audit_events (workspace_id, seq, action_id, type, actor_kind, actor_user_id, "
            "actor_api_key_id, actor_name, at, request_id, data, prev_hash, hash) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (*[database.stored_time(v) if k == "at" else v for k, v in fields.items()], prev_hash, digest),
        )
        if not database.sqlite:
            database.run("SELECT pg_notify('audittrail_events', %s)", (workspace_id,))

    def expire_due(now: datetime) -> None:
        """The cheap probe every read makes; the rare due row is flipped with its event, as the app does."""
        probe = (
            "SELECT id, expires_at FROM deployment_actions WHERE workspace_id = %s AND status = 'proposed' "
            "AND expires_at <= %s ORDER BY expires_at, id"
        )
        due = database.all(probe, (workspace_id, database.stored_time(now)))
        database.rollback()
        for action_id, expires_at in due:
            won = database.run(
                "UPDATE deployment_actions SET status = 'expired', expired_at = %s "
                "WHERE id = %s AND status = 'proposed' AND expires_at <= %s",
                (expires_at, action_id, database.stored_time(now)),
            ).rowcount
            if won == 1:
                expires = api_time(database.when(expires_at))
                append_event(action_id, "expired", now, {"expires_at": expires}, "proposed", "expired", system=True)
            database.commit()

    def load(action_id: str):
        return database.one(
            f"SELECT {ACTION_COLUMNS} {ACTION_FROM} WHERE a.id = %s AND a.workspace_id = %s",
            (
                action_id,
                workspace_id,
            ),
        )

    def answer(body, status=200, headers=None) -> Response:
        return Response(json.dumps(body), status=status, headers=headers, mimetype="application/json")

    @app.get("/lean/actions")
    def list_actions():
        now = datetime.now(UTC)
        expire_due(now)
        limit = int(request.args.get("limit", 50))
        where, params = ["a.workspace_id = %s"], [workspace_id]
        status = request.args.get("status")
        if status and status != "all":
            where.append("a.status = %s")
            params.append(status)
        cursor = request.args.get("cursor")
        if cursor:
            at_text, after_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
            after_at = datetime.strptime(at_text, "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC)
            where.append("(a.proposed_at, a.id) < (%s, %s)")
            params += [database.stored_time(after_at), after_id]
        rows = database.all(
            f"SELECT {ACTION_COLUMNS} {ACTION_FROM} WHERE {' AND '.join(where)} "
            "ORDER BY a.proposed_at DESC, a.id DESC LIMIT %s",
            [*params, limit + 1],
        )
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            raw = json.dumps([database.when(last[13]).strftime("%Y-%m-%dT%H:%M:%S.%f"), last[0]])
            next_cursor = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
        items = represent(rows[:limit], now)
        database.rollback()
        return answer({"items": items, "next_cursor": next_cursor})

    @app.get("/lean/actions/<action_id>")
    def get_action(action_id):
        now = datetime.now(UTC)
        row = load(action_id)
        if row is None:
            database.rollback()
            return answer({"error": {"code": "not_found", "message": "No such action.", "details": {}}}, 404)
        if row[7] == "proposed" and database.when(row[14]) <= now:
            expire_due(now)
            row = load(action_id)
        (item,) = represent([row], now)
        item["events"] = [
            {
                "seq": seq,
                "type": type_,
                "actor": {"id": uid, "name": name, "kind": kind, "api_key_id": key_id},
                "at": api_time(database.when(at)),
                "request_id": request_id,
                "data": json.loads(data),
            }
            for seq, type_, kind, uid, key_id, name, at, request_id, data in database.all(
                "SELECT seq, type, actor_kind, actor_user_id, actor_api_key_id, actor_name, at, request_id, data "
                "FROM audit_events WHERE action_id = %s ORDER BY seq",
                (action_id,),
            )
        ]
        database.rollback()
        return answer(item, headers={"ETag": f'"{item["version"]}"'})

    @app.get("/lean/summary")
    def summary():
        now = datetime.now(UTC)
        tz = request.args.get("tz", "UTC")
        zone = ZoneInfo(tz)
        expire_due(now)
        midnight = datetime.combine(now.astimezone(zone).date(), time(0), tzinfo=zone).astimezone(UTC)
        # The app's one statement: the workspace's counters and three index-range counts.
        *counters, pending, executed, rejected = database.one(
            f"SELECT {', '.join(COUNTERS.values())}, "
            "(SELECT count(*) FROM deployment_actions WHERE workspace_id = %s AND status = 'proposed' "
            "AND mode != 'dry_run' AND expires_at > %s), "
            "(SELECT count(*) FROM deployment_actions WHERE workspace_id = %s AND status = 'executed' "
            "AND executed_at >= %s), "
            "(SELECT count(*) FROM deployment_actions WHERE workspace_id = %s AND status = 'rejected' "
            "AND rejected_at >= %s) FROM workspaces WHERE id = %s",
            (
                workspace_id, database.stored_time(now), workspace_id, database.stored_time(midnight),
                workspace_id, database.stored_time(midnight), workspace_id,
            ),
        )  # fmt: skip
        by_status = dict(zip(COUNTERS, counters, strict=True))
        database.rollback()
        return answer(
            {
                "proposed": by_status["proposed"],
                "pending_approval": pending,
                "executed_today": executed,
                "rejected_today": rejected,
                "by_status": {**by_status, "all": sum(by_status.values())},
                "tz": tz,
                "as_of": api_time(now),
            }
        )

    @app.post("/lean/actions")
    def propose():
        now = datetime.now(UTC)
        body = json.loads(request.get_data())
        action_type = body["action_type"]
        tier = TIER_BY_ACTION_TYPE[action_type]
        mode = body.get("mode", "supervised")
        ttl = int(body.get("ttl_seconds", 3600))
        stored = database.loads(database.one("SELECT policy FROM workspaces WHERE id = %s", (workspace_id,))[0])
        rule = TierRule.from_dict(stored[str(tier)]) if stored else DEFAULT_TIER_RULES[tier]
        policy = rule.as_dict()
        action_id = f"act_{uuid.uuid4().hex[:24]}"
        expires_at = now + timedelta(seconds=ttl)
        database.run(
            "INSERT INTO deployment_actions (id, workspace_id, tier, action_type, target_ref, reason, mode, status, "
            "payload, ttl_seconds, proposed_at, expires_at, proposed_by_id, policy, approvals_received, version) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, 'proposed', %s, %s, %s, %s, %s, %s, 0, 0)",
            (
                action_id, workspace_id, tier, action_type, body["target_ref"], body["reason"], mode,
                json.dumps(body.get("payload") or {}), ttl, database.stored_time(now),
                database.stored_time(expires_at), user_id, json.dumps(policy),
            ),
        )  # fmt: skip
        data = {"tier": tier, "action_type": action_type, "target_ref": body["target_ref"], "mode": mode}
        append_event(action_id, "proposed", now, {**data, "ttl_seconds": ttl, "policy": policy}, None, "proposed")
        database.commit()
        (item,) = represent([load(action_id)], now)
        database.rollback()
        return answer(item, 201, {"Location": f"/lean/actions/{action_id}"})

    @app.post("/lean/actions/<action_id>/approve")
    def approve(action_id):
        now = datetime.now(UTC)
        body = json.loads(request.get_data() or b"{}")
        note = body.get("note") or None
        recorded = database.all("SELECT person_id FROM action_approvals WHERE action_id = %s", (action_id,))
        row = load(action_id)
        rule = TierRule.from_dict(database.loads(row[23]))
        facts = ActionFacts(
            status=ActionStatus(row[7]),
            mode=Mode(row[6]),
            tier=row[2],
            target_ref=row[4],
            expires_at=database.when(row[14]),
            proposer_person_id=row[27] or row[19],
            rule=rule,
            approver_person_ids=frozenset(person for (person,) in recorded),
        )
        refusal = decide(facts, caller, Transition.APPROVE, now, DecisionInputs(note=note, confirmation=None))
        if refusal is not None:
            database.rollback()
            return answer({"error": {"code": refusal.code, "message": refusal.message, "details": {}}}, 409)
        required = rule.approvals_required
        (received,) = database.run(
            "UPDATE deployment_actions SET approvals_received = approvals_received + 1 "
            "WHERE id = %s AND status = 'proposed' AND approvals_received < %s RETURNING approvals_received",
            (action_id, required),
        ).fetchone()
        if received >= required:
            database.run(
                "UPDATE deployment_actions SET status = 'approved', approved_at = %s, approved_by_id = %s, "
                "approver_note = %s WHERE id = %s",
                (database.stored_time(now), user_id, note, action_id),
            )
        database.run(
            "INSERT INTO action_approvals (workspace_id, action_id, user_id, person_id, api_key_id, at, note) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (workspace_id, action_id, user_id, caller.person_id, api_key_id, database.stored_time(now), note),
        )
        if received < required:
            data = {"note": note, "approvals_received": received, "approvals_required": required}
            append_event(action_id, "approval_recorded", now, data)
        else:
            approvers = [
                {"id": uid, "name": name}
                for uid, name in database.all(
                    "SELECT p.user_id, u.name FROM action_approvals p JOIN users u ON u.id = p.user_id "
                    "WHERE p.action_id = %s ORDER BY p.id",
                    (action_id,),
                )
            ]
            data = {"note": note, "approvers": approvers, "approvals_required": required}
            append_event(action_id, "approved", now, data, "proposed", "approved")
        database.commit()
        (item,) = represent([load(action_id)], now)
        database.rollback()
        return answer(item, headers={"ETag": f'"{item["version"]}"'})

    @app.get("/healthz")
    def healthz():
        return Response(b'{"status":"ok"}', mimetype="application/json")

    return app


def from_environment():
    """For gunicorn (`bench.lean:from_environment()`): BENCH_LEAN_* name the database and the caller."""
    import os

    return make_app(
        os.environ["DATABASE_URL"],
        os.environ["BENCH_LEAN_WORKSPACE"],
        os.environ["BENCH_LEAN_USER"],
        os.environ["AUDITTRAIL_SIGNING_KEY"],
        os.environ.get("BENCH_LEAN_API_KEY_ID"),
    )
