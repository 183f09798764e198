"""The deployment-action state machine driven at random through the service layer (contract §2–§5, §8).

A Hypothesis `RuleBasedStateMachine` plays a small team against one database:

- `alice` and `bob`, operators of workspace "Ops" (users: every scope);
- `agent`, an API key owned by Alice with `actions:propose` only (an AI agent proposing);
- `runner`, an API key owned by Bob with `actions:execute` only (the external runner);
- `desk`, an API key owned by Alice with `actions:read` + `actions:decide` (a person deciding
  through a script: it acts as Alice, so it must never be the second approver of her tier 3);
- `eve`, a user of another workspace (every call on an Ops action must answer "not found").

Rules propose (nine types, three modes, tier given right, wrong or not at all, TTLs short,
long and out of range, with or without an Idempotency-Key), approve (right or wrong typed
confirmation, with or without a note), reject, mark executed, sweep, move the clock (also to
exactly a deadline) and read (detail, every page of the list, summary: reads flip expired rows).

The test keeps its own model of every action, written from the contract and not from
audittrail.domain, and after every step compares it with the rows as another connection sees
them (so an uncommitted write counts as not written). Invariants after every step:

- the status of every row is the model's; a final status (rejected, executed, expired) never changes;
- the proposal fields never change after creation;
- each action's events are exactly the model's history: one for the proposal, one per successful
  transition, one per expiry, one for a tier 1 autonomous execution; the chain head agrees;
- every tier 2/3 action that reached `executed` has an `approved` event by a human: an actor of
  kind `user`, or `api_key` acting for its owner (contract §5: "a key acts as the user who owns
  it"); for tier 3 that human is not the proposer (compared by user, so the proposer's own keys
  count as the proposer);
- no dry_run action is ever approved or executed;
- every tier 1 autonomous action was executed at creation, by the system;
- `verify_chain()` finds nothing wrong;
- the summary equals counts taken from the rows (checked in the invariant whenever no row is due
  for expiry, since reading the summary then changes nothing, and by the `read_summary` rule always).

Before each transition call, `allowed_transitions(row, actor, now)` must predict the outcome:
the call succeeds iff the transition is in the list, except that a tier 3 approval predicted
possible may still be refused for its typed input (`confirmation_mismatch`,
`operator_reason_required`). The model predicts the exact refusal as well.

`AUDITTRAIL_FUZZ_EXAMPLES` sets the number of examples (default 60; `make fuzz` uses 2000);
with `CI` set the run is derandomized. PostgreSQL runs too when TEST_DATABASE_URL is set, with a
quarter of the examples (each example truncates and reseeds the tables there).
"""

from __future__ import annotations

import json
import os
import shutil
import string
import tempfile
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck
from hypothesis import event
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle
from hypothesis.stateful import RuleBasedStateMachine
from hypothesis.stateful import initialize
from hypothesis.stateful import invariant
from hypothesis.stateful import multiple
from hypothesis.stateful import precondition
from hypothesis.stateful import rule
from hypothesis.stateful import run_state_machine_as_test
from sqlalchemy import select
from sqlalchemy.orm import Session

from audittrail import create_app
from audittrail.extensions import db
from audittrail.models import AuditEvent
from audittrail.models import DeploymentAction
from audittrail.models import Workspace
from audittrail.services import api_keys
from audittrail.services import deciding
from audittrail.services import expiry
from audittrail.services import proposing
from audittrail.services import querying
from audittrail.services import users
from audittrail.services.actors import api_key_actor
from audittrail.services.actors import user_actor
from audittrail.services.audit import verify_chain
from audittrail.services.errors import ActionExpired
from audittrail.services.errors import ActionNotFound
from audittrail.services.errors import ConfirmationMismatch
from audittrail.services.errors import Forbidden
from audittrail.services.errors import IdempotencyKeyReused
from audittrail.services.errors import InvalidTransition
from audittrail.services.errors import OperatorReasonRequired
from audittrail.services.errors import SecondApproverRequired
from audittrail.services.errors import ServiceError
from audittrail.services.errors import ValidationFailed
from tests.conftest import BACKENDS
from tests.conftest import POSTGRES_URL
from tests.conftest import TEST_CONFIG
from tests.conftest import FakeClock
from tests.conftest import reset_postgres

# --------------------------------------------------------------------------- the contract, by hand

TIER_BY_TYPE = {
    "alert": 1,
    "tag_trace": 1,
    "create_incident": 1,
    "throttle": 2,
    "switch_model": 2,
    "disable_flag": 2,
    "kill_run": 3,
    "rollback_deploy": 3,
    "scale_down": 3,
}
MODES = ["dry_run", "supervised", "autonomous"]
STATUSES = ["proposed", "approved", "rejected", "executed", "expired"]
FINAL = {"rejected", "executed", "expired"}
# (transition, from) -> to; everything else is 409 invalid_transition.
CONTRACT = {
    ("approve", "proposed"): "approved",
    ("reject", "proposed"): "rejected",
    ("reject", "approved"): "rejected",
    ("mark-executed", "approved"): "executed",
}
REFUSED_IN_DRY_RUN = {"approve", "mark-executed"}
SCOPE = {"approve": "actions:decide", "reject": "actions:decide", "mark-executed": "actions:execute"}
EVENT_OF = {"approve": "approved", "reject": "rejected", "mark-executed": "executed"}
# Refusals about the approver's typed input, not about status/mode/tier/TTL/proposer/scope.
INPUT_REFUSALS = (ConfirmationMismatch, OperatorReasonRequired)

TTL_MAX = 604800
POLICY = proposing.ProposalSettings(default_ttl_seconds=3600, ttl_min_seconds=1)
UNKNOWN_ID = "act_" + "0" * 24
# Far east and far west of UTC, half-hour offsets, and zones whose DST change happens at midnight.
ZONES = [
    "UTC",
    "America/New_York",
    "Asia/Kolkata",
    "Pacific/Kiritimati",
    "Pacific/Pago_Pago",
    "America/Santiago",
    "Asia/Beirut",
]

ACTOR_NAMES = ["alice", "bob", "agent", "runner", "desk", "eve"]
# Who usually makes each call, with everyone else now and then (the refusals matter too).
PROPOSERS = st.sampled_from(["agent", "agent", "agent", "alice", "bob", "runner", "desk", "eve"])
DECIDERS = st.sampled_from(["bob", "bob", "alice", "alice", "desk", "desk", "agent", "runner", "eve"])
RUNNERS = st.sampled_from(["runner", "runner", "runner", "alice", "bob", "desk", "agent", "eve"])
READERS = st.sampled_from(ACTOR_NAMES)

# --------------------------------------------------------------------------- strategies

_REF_ALPHABET = string.ascii_letters + string.digits + "-_./:" + "éßÅ"
target_refs = st.one_of(
    st.sampled_from(["run_8f3a2c91d4e7", "deploy/api@v2.14.1", "pool-gpu-a100", "ff:new_ranker", "db-1", "RUN_x"]),
    st.text(alphabet=_REF_ALPHABET, min_size=1, max_size=24),
)
ttls = st.sampled_from(["default", "short", "short", "medium", "long", "long", "refused"]).flatmap(
    {
        "default": st.none(),  # 3600
        "short": st.integers(1, 300),
        "medium": st.integers(301, 7200),
        "long": st.integers(7201, TTL_MAX),
        "refused": st.sampled_from([0, -1, TTL_MAX + 1]),
    }.__getitem__
)
payloads = st.one_of(
    st.none(),
    st.fixed_dictionaries({"percent": st.integers(0, 100)}),
    st.fixed_dictionaries({"model": st.sampled_from(["gpt-small", "gpt-large"]), "region": st.just("eu-west-1")}),
)


@st.composite
def proposals(draw) -> dict:
    action_type = draw(st.sampled_from(sorted(TIER_BY_TYPE)))
    tier = TIER_BY_TYPE[action_type]
    fields = {
        "action_type": action_type,
        "target_ref": draw(target_refs),
        "reason": draw(st.sampled_from(["Cost spike on the fleet", "p95 latency up 40%", "Canary drift"])),
    }
    mode = draw(st.sampled_from([None, *MODES]))
    if mode is not None:
        fields["mode"] = mode
    given_tier = draw(st.sampled_from(["omit", "omit", "omit", "right", "right", "wrong"]))
    if given_tier == "right":
        fields["tier"] = tier
    elif given_tier == "wrong":
        fields["tier"] = draw(st.sampled_from([t for t in (1, 2, 3) if t != tier]))
    ttl = draw(ttls)
    if ttl is not None:
        fields["ttl_seconds"] = ttl
    payload = draw(payloads)
    if payload is not None:
        fields["payload"] = payload
    return fields


confirmation_kinds = st.sampled_from(
    ["right", "right", "right", "none", "empty", "seven", "full", "swapcase", "padded"]
)
notes = st.sampled_from(["Checked the dashboard", "ok", " spaced ", None, "", "   ", "\t\n"])
outcomes = st.one_of(st.none(), st.fixed_dictionaries({"ok": st.booleans(), "runner": st.just("ci-7")}))


def typed_confirmation(kind: str, target_ref: str) -> str | None:
    right = target_ref[:8]
    return {
        "right": right,
        "none": None,
        "empty": "",
        "seven": right[:7],
        "full": target_ref,
        "swapcase": right.swapcase(),
        "padded": right + " ",
    }[kind]


# --------------------------------------------------------------------------- the model


@dataclass
class ModelAction:
    """What the contract says about one action: its fixed fields, status and event history."""

    id: str
    workspace_id: str
    tier: int
    action_type: str
    target_ref: str
    reason: str
    mode: str
    payload: dict
    ttl_seconds: int
    proposer_user_id: str
    proposed_at: datetime
    expires_at: datetime
    status: str
    # (type, actor_kind, actor_user_id, actor_api_key_id)
    events: list[tuple] = field(default_factory=list)


def _local_date(moment: datetime, zone: ZoneInfo):
    return moment.astimezone(zone).date()


class DeploymentActionsMachine(RuleBasedStateMachine):
    """Operators, an agent and a runner drive deployment actions; the model watches."""

    actions_bundle = Bundle("actions")

    def __init__(self, database: dict):
        super().__init__()
        self._tmpdir = None
        self._context = None
        self._database = database
        try:
            self._set_up()
        except BaseException:
            self.teardown()
            raise

    # ----------------------------------------------------------------- world

    def _set_up(self) -> None:
        if self._database["backend"] == "sqlite":
            self._tmpdir = tempfile.mkdtemp(prefix="audittrail-fsm-")
            path = os.path.join(self._tmpdir, "fsm.db")
            shutil.copyfile(self._database["template"], path)
            url = f"sqlite:///{path}"
        else:
            url = self._database["url"]
            reset_postgres(url)
        self.clock = FakeClock()
        app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": url, "AUDITTRAIL_CLOCK": self.clock})
        self._context = app.app_context()
        self._context.push()

        now = self.clock()
        ops = users.create_workspace("Ops", now)
        other = users.create_workspace("Elsewhere", now)
        # No passwords: hashing one costs more than a whole example's steps.
        alice = users.create_user(ops, "alice@ops.example.test", "Alice", now, role="approver")
        bob = users.create_user(ops, "bob@ops.example.test", "Bob", now, role="approver")
        eve = users.create_user(other, "eve@elsewhere.example.test", "Eve", now, role="approver")
        db.session.commit()
        agent, _ = api_keys.create_api_key(alice, "agent", now, ["actions:propose"])
        runner, _ = api_keys.create_api_key(bob, "runner", now, ["actions:execute"])
        desk, _ = api_keys.create_api_key(alice, "desk", now, ["actions:read", "actions:decide"])
        self.actors = {
            "alice": user_actor(alice),
            "bob": user_actor(bob),
            "agent": api_key_actor(agent),
            "runner": api_key_actor(runner),
            "desk": api_key_actor(desk),
            "eve": user_actor(eve),
        }
        self.workspace_ids = [ops.id, other.id]
        self.model: dict[str, ModelAction] = {}
        self.idempotency: dict[tuple[str, str], tuple[str, str]] = {}  # (client, key) -> (fingerprint, action id)
        self.final_seen: dict[str, str] = {}
        db.session.commit()

    def teardown(self) -> None:
        if self._context is not None:
            db.session.remove()
            db.engine.dispose()
            self._context.pop()
            self._context = None
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    # ----------------------------------------------------------------- helpers

    @property
    def now(self) -> datetime:
        return self.clock()

    def _observe(self) -> Session:
        """A session on its own connection: it sees only what the service committed."""
        return Session(db.engine, expire_on_commit=False)

    def _row(self, action_id: str) -> DeploymentAction:
        with self._observe() as observer:
            return observer.scalars(select(DeploymentAction).where(DeploymentAction.id == action_id)).one()

    def _due(self, workspace_id: str | None = None) -> list[ModelAction]:
        return [
            action
            for action in self.model.values()
            if action.status == "proposed"
            and self.now >= action.expires_at
            and (workspace_id is None or action.workspace_id == workspace_id)
        ]

    def _expire_in_model(self, action: ModelAction) -> None:
        action.status = "expired"
        action.events.append(("expired", "system", None, None))

    def _event_of(self, actor) -> tuple:
        return (actor.kind, actor.user_id, actor.api_key_id)

    def _expected_transition_outcome(self, actor, action: ModelAction, transition, confirmation, note):
        """The exception class the contract demands (None: success), in the contract's check order."""
        if SCOPE[transition] not in actor.scopes:
            return Forbidden
        if actor.workspace_id != action.workspace_id:
            return ActionNotFound
        if action.status == "proposed" and self.now >= action.expires_at:
            return ActionExpired
        if (transition, action.status) not in CONTRACT:
            return InvalidTransition
        if action.mode == "dry_run" and transition in REFUSED_IN_DRY_RUN:
            return InvalidTransition
        if transition == "approve" and action.tier == 3:
            if actor.user_id == action.proposer_user_id:
                return SecondApproverRequired
            if confirmation != action.target_ref[:8]:
                return ConfirmationMismatch
            if note is None or not note.strip():
                return OperatorReasonRequired
        return None

    def _attempt(self, actor_name: str, action_id: str, transition: str, call, confirmation=None, note=None):
        actor = self.actors[actor_name]
        action = self.model[action_id]
        expected = self._expected_transition_outcome(actor, action, transition, confirmation, note)

        predicted = None
        if actor.workspace_id == action.workspace_id:
            predicted = deciding.allowed_transitions(self._row(action_id), actor, self.now)

        try:
            result = call(actor)
        except ServiceError as error:
            outcome = type(error)
            result = None
        else:
            outcome = None
        event(f"{transition}: {outcome.__name__ if outcome else 'ok'}")

        if predicted is not None:
            if transition in predicted:
                assert outcome is None or outcome in INPUT_REFUSALS, (
                    f"allowed_transitions said {transition} is possible for {actor_name} on {action.status} "
                    f"{action.mode} tier {action.tier} (expires {action.expires_at}, now {self.now}), "
                    f"but the call was refused with {outcome.__name__}"
                )
                if outcome in INPUT_REFUSALS:
                    assert transition == "approve" and action.tier == 3
            else:
                assert outcome is not None, (
                    f"allowed_transitions {predicted} excludes {transition} for {actor_name} on {action.status} "
                    f"{action.mode} tier {action.tier}, but the call succeeded"
                )
                assert outcome not in INPUT_REFUSALS, (
                    f"{transition} was not predicted for {actor_name} on {action.status} {action.mode} tier "
                    f"{action.tier}, yet only the typed input was refused ({outcome.__name__})"
                )
        assert outcome is expected, (
            f"{actor_name} {transition} on {action.status} {action.mode} tier {action.tier}: "
            f"expected {expected.__name__ if expected else 'success'}, got {outcome.__name__ if outcome else 'success'}"
        )

        if outcome is ActionExpired:
            self._expire_in_model(action)
        elif outcome is None:
            action.status = CONTRACT[(transition, action.status)]
            action.events.append((EVENT_OF[transition], *self._event_of(actor)))
            assert result.status == action.status
        return result

    # ----------------------------------------------------------------- rules: writes

    @initialize(
        target=actions_bundle,
        first=st.lists(st.tuples(st.sampled_from(["agent", "agent", "alice", "bob"]), proposals()), max_size=5),
    )
    def first_proposals(self, first):
        """Start with a few proposals, so that decisions are possible from the first step."""
        created = [self._propose(actor_name, fields, None) for actor_name, fields in first]
        return multiple(*(action_id for action_id in created if action_id is not None))

    @rule(
        target=actions_bundle,
        actor_name=PROPOSERS,
        fields=proposals(),
        idempotency_key=st.sampled_from([None, None, None, "retry-1", "retry-2"]),
    )
    def propose(self, actor_name, fields, idempotency_key):
        action_id = self._propose(actor_name, fields, idempotency_key)
        return multiple() if action_id is None else action_id

    def _propose(self, actor_name, fields, idempotency_key) -> str | None:
        """Propose and check the outcome against the contract; the new action's id, or None."""
        actor = self.actors[actor_name]
        idempotency = None
        client = actor.api_key_id or actor.user_id
        fingerprint = proposing.request_fingerprint(fields)
        if idempotency_key is not None:
            idempotency = proposing.IdempotencyRequest(client=client, key=idempotency_key, fingerprint=fingerprint)

        tier = TIER_BY_TYPE[fields["action_type"]]
        ttl = fields.get("ttl_seconds", POLICY.default_ttl_seconds)
        remembered = self.idempotency.get((client, idempotency_key)) if idempotency_key else None
        if "actions:propose" not in actor.scopes:
            expected = Forbidden
        elif remembered is not None:
            expected = "replay" if remembered[0] == fingerprint else IdempotencyKeyReused
        elif fields.get("tier", tier) != tier or not 1 <= ttl <= TTL_MAX:
            expected = ValidationFailed
        else:
            expected = None

        try:
            result = proposing.propose_action(
                actor,
                proposing.Proposal(**fields),
                self.now,
                settings=POLICY,
                idempotency=idempotency,
                render=lambda action: json.dumps({"id": action.id}),
            )
        except ServiceError as error:
            outcome = type(error)
        else:
            outcome = "replay" if result.replayed_body is not None else None
        event(f"propose: {getattr(outcome, '__name__', outcome or 'ok')}")
        assert outcome == expected, f"propose by {actor_name} {fields}: expected {expected}, got {outcome}"
        if outcome == "replay":
            assert json.loads(result.replayed_body)["id"] == remembered[1]
        if outcome is not None:
            return None

        created = result.action
        mode = fields.get("mode", "supervised")
        autonomous = tier == 1 and mode == "autonomous"
        action = ModelAction(
            id=created.id,
            workspace_id=actor.workspace_id,
            tier=tier,
            action_type=fields["action_type"],
            target_ref=fields["target_ref"],
            reason=fields["reason"],
            mode=mode,
            payload=fields.get("payload") or {},
            ttl_seconds=ttl,
            proposer_user_id=actor.user_id,
            proposed_at=self.now,
            expires_at=self.now + timedelta(seconds=ttl),
            status="executed" if autonomous else "proposed",
            events=[("proposed", *self._event_of(actor))],
        )
        if autonomous:
            action.events.append(("executed", "system", None, None))
        self.model[action.id] = action
        if idempotency_key is not None:
            self.idempotency[(client, idempotency_key)] = (fingerprint, action.id)
        return action.id

    @rule(actor_name=DECIDERS, action_id=actions_bundle, confirmation_kind=confirmation_kinds, note=notes)
    def approve(self, actor_name, action_id, confirmation_kind, note):
        confirmation = typed_confirmation(confirmation_kind, self.model[action_id].target_ref)
        result = self._attempt(
            actor_name,
            action_id,
            "approve",
            lambda actor: deciding.approve_action(actor, action_id, self.now, note=note, confirmation=confirmation),
            confirmation=confirmation,
            note=note,
        )
        if result is not None:
            actor = self.actors[actor_name]
            assert result.approved_by_id == actor.user_id
            assert result.approved_at == self.now
            assert result.approver_note == (note if note and note.strip() else None)

    @rule(actor_name=DECIDERS, action_id=actions_bundle, note=notes)
    def reject(self, actor_name, action_id, note):
        result = self._attempt(
            actor_name, action_id, "reject", lambda actor: deciding.reject_action(actor, action_id, self.now, note=note)
        )
        if result is not None:
            assert result.rejected_by_id == self.actors[actor_name].user_id
            assert result.rejected_at == self.now
            assert result.rejection_note == (note if note and note.strip() else None)

    @rule(actor_name=RUNNERS, action_id=actions_bundle, outcome=outcomes)
    def mark_executed(self, actor_name, action_id, outcome):
        result = self._attempt(
            actor_name,
            action_id,
            "mark-executed",
            lambda actor: deciding.mark_executed(actor, action_id, self.now, outcome=outcome),
        )
        if result is not None:
            assert result.executed_by_id == self.actors[actor_name].user_id
            assert result.executed_at == self.now
            assert result.outcome == outcome

    # The bundle rules pick any action, so most of their calls hit a status that refuses them;
    # these pick among the actions the transition applies to, to reach deep histories often.
    # They take one `data` argument so that Hypothesis, which favours rules with fewer
    # arguments, chooses them about as often as the clock moves.
    def _with_status(self, status: str) -> list[str]:
        # In proposal order: ids are random, and a replayed example must pick the same action.
        ops = self.workspace_ids[0]
        return [a.id for a in self.model.values() if a.status == status and a.workspace_id == ops]

    @precondition(lambda self: self._with_status("proposed"))
    @rule(data=st.data())
    def approve_a_proposed_action(self, data):
        self.approve(
            data.draw(DECIDERS, label="actor_name"),
            data.draw(st.sampled_from(self._with_status("proposed")), label="action_id"),
            data.draw(confirmation_kinds, label="confirmation_kind"),
            data.draw(notes, label="note"),
        )

    @precondition(lambda self: self._with_status("approved"))
    @rule(data=st.data())
    def execute_an_approved_action(self, data):
        self.mark_executed(
            data.draw(RUNNERS, label="actor_name"),
            data.draw(st.sampled_from(self._with_status("approved")), label="action_id"),
            data.draw(outcomes, label="outcome"),
        )

    @precondition(lambda self: self.model)
    @rule(workspace_wide=st.booleans())
    def sweep(self, workspace_wide):
        workspace_id = self.workspace_ids[0] if workspace_wide else None
        due = self._due(workspace_id)
        flipped = expiry.expire_due(self.now, workspace_id=workspace_id, request_id="sweep")
        event(f"sweep: {'some' if flipped else 'none'}")
        assert flipped == len(due)
        for action in due:
            self._expire_in_model(action)

    # ----------------------------------------------------------------- rules: time

    @precondition(lambda self: self.model)
    @rule(
        seconds=st.sampled_from(["short", "short", "hours", "days", "months"]).flatmap(
            {
                "short": st.integers(1, 120),
                "hours": st.integers(121, 7200),
                "days": st.integers(7201, 3 * 86400),
                "months": st.integers(3 * 86400, 200 * 86400),  # across DST changes
            }.__getitem__
        )
    )
    def advance_clock(self, seconds):
        self.clock.advance(seconds=seconds)

    @rule(action_id=actions_bundle, offset_microseconds=st.sampled_from([-1, 0, 1]))
    def jump_to_deadline(self, action_id, offset_microseconds):
        """Land on, just before or just after an action's expires_at (never back in time)."""
        target = self.model[action_id].expires_at + timedelta(microseconds=offset_microseconds)
        if target > self.now:
            self.clock.now = target

    # ----------------------------------------------------------------- rules: reads

    @rule(actor_name=READERS, action_id=actions_bundle, unknown_id=st.sampled_from([False, False, False, True]))
    def read_detail(self, actor_name, action_id, unknown_id):
        actor = self.actors[actor_name]
        if unknown_id:
            expected = Forbidden if "actions:read" not in actor.scopes else ActionNotFound
            with pytest.raises(expected):
                querying.get_action(actor, UNKNOWN_ID, self.now)
            return
        action = self.model[action_id]
        if "actions:read" not in actor.scopes:
            expected = Forbidden
        elif actor.workspace_id != action.workspace_id:
            expected = ActionNotFound
        else:
            expected = None
        try:
            row = querying.get_action(actor, action_id, self.now)
        except ServiceError as error:
            outcome = type(error)
        else:
            outcome = None
        assert outcome is expected
        if outcome is None:
            if action.status == "proposed" and self.now >= action.expires_at:
                self._expire_in_model(action)
            assert row.status == action.status
            seen = querying.snapshot(row, actor, self.now, with_events=True)
            assert [e.type for e in seen.events] == [e[0] for e in action.events]

    @rule(
        actor_name=READERS,
        status=st.sampled_from([None, *STATUSES]),
        limit=st.sampled_from([1, 2, 3, 50]),
    )
    def read_every_page(self, actor_name, status, limit):
        actor = self.actors[actor_name]
        if "actions:read" not in actor.scopes:
            with pytest.raises(Forbidden):
                querying.list_actions(actor, self.now, status=status, limit=limit)
            return
        due = self._due(actor.workspace_id)
        seen, cursor, pages = [], None, 0
        while True:
            page, cursor = querying.list_actions(actor, self.now, status=status, limit=limit, cursor=cursor)
            if pages == 0:
                for action in due:
                    self._expire_in_model(action)
            pages += 1
            assert len(page) <= limit
            seen.extend(page)
            if cursor is None:
                break
            assert page, "a next_cursor after an empty page"
            assert pages <= len(self.model) + 1, "the cursor does not move forward"
        expected = sorted(
            (
                a
                for a in self.model.values()
                if a.workspace_id == actor.workspace_id and (status is None or a.status == status)
            ),
            key=lambda a: (a.proposed_at, a.id),
            reverse=True,
        )
        assert [row.id for row in seen] == [a.id for a in expected]
        assert [row.status for row in seen] == [a.status for a in expected]

    @rule(actor_name=READERS, tz=st.sampled_from(ZONES))
    def read_summary(self, actor_name, tz):
        actor = self.actors[actor_name]
        if "actions:read" not in actor.scopes:
            with pytest.raises(Forbidden):
                querying.summary(actor, self.now, tz=tz)
            return
        due = self._due(actor.workspace_id)
        counts = querying.summary(actor, self.now, tz=tz)
        for action in due:
            self._expire_in_model(action)
        self._check_summary(counts, actor.workspace_id, tz)

    # ----------------------------------------------------------------- invariants

    def _check_summary(self, counts: dict, workspace_id: str, tz: str) -> None:
        zone = ZoneInfo(tz)
        today = _local_date(self.now, zone)
        with self._observe() as observer:
            rows = list(observer.scalars(select(DeploymentAction).where(DeploymentAction.workspace_id == workspace_id)))
        by_status = {status: sum(1 for row in rows if row.status == status) for status in STATUSES}
        assert counts["by_status"] == {**by_status, "all": len(rows)}
        assert counts["proposed"] == by_status["proposed"]
        assert counts["pending_approval"] == sum(
            1 for row in rows if row.status == "proposed" and row.mode != "dry_run" and row.expires_at > self.now
        )
        assert counts["executed_today"] == sum(
            1 for row in rows if row.status == "executed" and _local_date(row.executed_at, zone) == today
        )
        assert counts["rejected_today"] == sum(
            1 for row in rows if row.status == "rejected" and _local_date(row.rejected_at, zone) == today
        )
        assert counts["tz"] == tz
        assert counts["as_of"] == self.now

    @invariant()
    def rows_events_and_chain_agree_with_the_contract(self):
        with self._observe() as observer:
            rows = {row.id: row for row in observer.scalars(select(DeploymentAction))}
            events: dict[str, list[AuditEvent]] = {}
            for audit_event in observer.scalars(select(AuditEvent).order_by(AuditEvent.workspace_id, AuditEvent.seq)):
                events.setdefault(audit_event.action_id, []).append(audit_event)
            heads = {ws.id: ws.audit_seq for ws in observer.scalars(select(Workspace))}

        assert set(rows) == set(self.model), "rows appeared or vanished"
        for action_id, action in self.model.items():
            row = rows[action_id]
            history = events.get(action_id, [])

            # The model's status, and a final status never changes.
            assert row.status == action.status, f"{action_id}: row is {row.status}, the contract says {action.status}"
            if action_id in self.final_seen:
                assert row.status == self.final_seen[action_id], f"{action_id} left final status"
            if row.status in FINAL:
                self.final_seen[action_id] = row.status

            # The proposal fields never change.
            assert (row.tier, row.action_type, row.target_ref, row.reason, row.mode) == (
                action.tier,
                action.action_type,
                action.target_ref,
                action.reason,
                action.mode,
            )
            assert (row.payload, row.ttl_seconds, row.proposed_by_id) == (
                action.payload,
                action.ttl_seconds,
                action.proposer_user_id,
            )
            assert (row.proposed_at, row.expires_at) == (action.proposed_at, action.expires_at)

            # One event per proposal, transition, expiry and autonomous execution, by the right actor.
            assert [(e.type, e.actor_kind, e.actor_user_id, e.actor_api_key_id) for e in history] == action.events

            # Executed tier 2/3: approved by a human (a user, or a key acting for its owner);
            # tier 3: not by the proposer, whichever of their credentials they used.
            if row.status == "executed" and row.tier >= 2:
                approvals = [e for e in history if e.type == "approved"]
                assert len(approvals) == 1, f"{action_id}: executed tier {row.tier} without one approval"
                approval = approvals[0]
                assert approval.actor_kind in {"user", "api_key"} and approval.actor_user_id is not None
                assert approval.actor_user_id == row.approved_by_id
                if row.tier == 3:
                    assert approval.actor_user_id != row.proposed_by_id, f"{action_id}: tier 3 approved by its proposer"

            # dry_run: never approved, never executed.
            if row.mode == "dry_run":
                assert row.status not in {"approved", "executed"}
                assert row.approved_at is None and row.executed_at is None
                assert not {e.type for e in history} & {"approved", "executed"}

            # Tier 1 autonomous: executed at creation, by the system.
            if row.tier == 1 and row.mode == "autonomous":
                assert row.status == "executed" and row.executed_at == row.proposed_at
                assert [(e.type, e.actor_kind) for e in history][1:] == [("executed", "system")]

            # The timestamps of the row follow its status.
            assert (row.approved_at is not None) == any(e.type == "approved" for e in history)
            assert (row.rejected_at is not None) == (row.status == "rejected")
            assert (row.executed_at is not None) == (row.status == "executed")
            assert (row.expired_at is not None) == (row.status == "expired")

        # Event count = proposals + successful transitions + expiries + autonomous executions.
        # The workspace's own events (API keys made in setup) share the chain, with no action.
        for workspace_id in self.workspace_ids:
            expected_count = sum(len(a.events) for a in self.model.values() if a.workspace_id == workspace_id)
            actual_count = sum(
                len(h) for key, h in events.items() if key is not None and h[0].workspace_id == workspace_id
            )
            own = [e for e in events.get(None, []) if e.workspace_id == workspace_id]
            assert all(e.type in {"api_key_created", "api_key_revoked"} for e in own)
            assert actual_count == expected_count
            assert heads[workspace_id] == expected_count + len(own)

        problem = verify_chain()
        assert problem is None, str(problem)
        db.session.rollback()

    @precondition(lambda self: not self._due(self.workspace_ids[0]))
    @invariant()
    def summary_matches_the_rows(self):
        # Only when nothing is due: then reading the summary flips nothing and the check is pure.
        counts = querying.summary(self.actors["bob"], self.now, tz="Asia/Kolkata")
        self._check_summary(counts, self.workspace_ids[0], "Asia/Kolkata")


# --------------------------------------------------------------------------- the test


def _examples() -> int:
    return int(os.environ.get("AUDITTRAIL_FUZZ_EXAMPLES", "60"))


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        stateful_step_count=30,
        deadline=None,
        derandomize=bool(os.environ.get("CI")),
        database=None if os.environ.get("CI") else settings.default.database,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


@pytest.mark.parametrize(
    "backend",
    [pytest.param(b, marks=[pytest.mark.postgres] if b == "postgresql" else []) for b in BACKENDS],
)
def test_deployment_actions_state_machine(backend, request):
    """Random sequences of proposals, decisions, expiries, clock jumps and reads keep every rule."""
    if backend == "sqlite":
        database = {"backend": "sqlite", "template": request.getfixturevalue("sqlite_template")}
        examples = _examples()
    else:
        database = {"backend": "postgresql", "url": request.getfixturevalue("postgres_migrated")}
        examples = max(5, _examples() // 4)
    assert POSTGRES_URL or backend == "sqlite"
    run_state_machine_as_test(lambda: DeploymentActionsMachine(database), settings=_settings(examples))
