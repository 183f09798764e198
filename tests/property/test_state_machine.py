"""The deployment-action state machine driven at random through the service layer.

Contract: deployment-actions.md §2–§5 and §8, with policy.md (members, roles, N-of-M approvals,
workspace events). A Hypothesis `RuleBasedStateMachine` plays a small team against one database.

Members of workspace "Ops" (users acting with a JWT, so every scope; what they may do is their role's):

- `alice` and `bob`, approvers; `carol`, an operator; `vic`, a viewer (reads only); `dana`, the admin;
- `bot`, an agent (role operator) owned by Alice, and `scout`, a second agent of Alice (role
  approver): Alice, `bot` and `scout` are one person for the two-person rule and for counting;
- API keys: `agent` (Alice's, `actions:propose` only: an AI agent proposing), `runner` (Bob's,
  `actions:execute` only: the external runner), `desk` (Alice's, `actions:read` + `actions:decide`:
  a person deciding through a script), `botkey` (the agent `bot`'s own key, every scope).

`eve` is an approver of another workspace: every call on an Ops action must answer "not found".

The policy starts, on the first step, as N = 2 on tier 2 and tier 3 (tier 3: approver+admin, no
self-approval; tier 2: operator+, with or without self-approval), and a rule replaces it at any
time afterwards (presets, random valid policies, and invalid ones that must be refused), by the
admin or by someone who may not. Another rule changes roles (also the last admin's, refused).
An action keeps the rule of its tier as it was when proposed; the model records it then.

Rules propose (nine types, three modes, tier given right, wrong or not at all, TTLs short, long
and out of range, with or without an Idempotency-Key), approve (right or wrong typed
confirmation, with or without a note), reject, mark executed, sweep, change the policy, change a
role, move the clock (also to exactly a deadline) and read (detail, every page of the list,
summary: reads flip expired rows).

The test keeps its own model of every action, written from the contract and not from
audittrail.domain, and predicts every call: the exact ServiceError or success, and for an approval
whether it moves the status (the N-th) or only appends `approval_recorded`, following the order of
checks of policy.md §3: scope and role, workspace, TTL, status, dry_run, approver role,
self-approval, already approved, tier 3 confirmation, tier 3 note. After every step it compares the
model with the rows as another connection sees them (so an uncommitted write counts as not
written). Invariants after every step:

- the status of every row is the model's; a final status (rejected, executed, expired) never changes;
- the proposal fields never change after creation, nor the rule the action was proposed under;
- the approvals (row.approvals_received and the action_approvals rows) are the model's, never more
  than the action's N, never the same person twice, and never the proposer's person (proposer,
  its owner, an agent of the proposer or of the proposer's owner) where self-approval is off;
- each action's events are exactly the model's history: one for the proposal, one per successful
  transition or approval (`approval_recorded` before the N-th, whose data counts; `approved` for
  the N-th, whose data lists every approver), one per expiry, one for a tier 1 autonomous execution;
- the workspace's own events (api_key_created, policy_changed with from/to, member_role_changed)
  are the model's, with no action, in the same chain; the chain heads agree;
- every tier 2/3 action that reached `executed` has one `approved` event by a user or a key acting
  for its owner;
- no dry_run action is ever approved or executed; every tier 1 autonomous action was executed at
  creation, by the system;
- for every action and every member or key of its workspace, `deciding.allowed_transitions`
  equals the transitions the model allows (the typed-input checks left out);
- the roles of the members are the model's;
- `verify_chain()` finds nothing wrong;
- the summary equals counts taken from the rows (checked in the invariant whenever no row is due
  for expiry, since reading the summary then changes nothing, and by the `read_summary` rule always).

Before each transition call, `allowed_transitions(row, actor, now)` must predict the outcome too:
the call succeeds iff the transition is in the list, except that a tier 3 approval predicted
possible may still be refused for its typed input (`confirmation_mismatch`,
`operator_reason_required`).

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
from sqlalchemy.orm import lazyload
from sqlalchemy.orm import selectinload

from audittrail import create_app
from audittrail.domain import Role
from audittrail.domain import TierRule
from audittrail.extensions import db
from audittrail.models import ActionApproval
from audittrail.models import ApiKey
from audittrail.models import AuditEvent
from audittrail.models import DeploymentAction
from audittrail.models import User
from audittrail.models import Workspace
from audittrail.services import api_keys
from audittrail.services import deciding
from audittrail.services import expiry
from audittrail.services import members
from audittrail.services import policy
from audittrail.services import proposing
from audittrail.services import querying
from audittrail.services import users
from audittrail.services.actors import api_key_actor
from audittrail.services.actors import user_actor
from audittrail.services.audit import verify_chain
from audittrail.services.errors import ActionExpired
from audittrail.services.errors import ActionNotFound
from audittrail.services.errors import AlreadyApproved
from audittrail.services.errors import ConfirmationMismatch
from audittrail.services.errors import Forbidden
from audittrail.services.errors import IdempotencyKeyReused
from audittrail.services.errors import InvalidTransition
from audittrail.services.errors import LastAdmin
from audittrail.services.errors import OperatorReasonRequired
from audittrail.services.errors import SecondApproverRequired
from audittrail.services.errors import ServiceError
from audittrail.services.errors import ValidationFailed
from audittrail.services.unit_of_work import unit_of_work
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
TRANSITIONS = ["approve", "reject", "mark-executed"]
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

# policy.md §1: lowest first; a viewer only reads, the others read, propose, decide, execute.
ROLES = ["viewer", "operator", "approver", "admin"]
ACTING_ROLES = {"operator", "approver", "admin"}
APPROVER_ROLE_CHOICES = {"operator", "approver", "admin"}
WORKSPACE_EVENTS = {"api_key_created", "api_key_revoked", "policy_changed", "member_role_changed"}

TTL_MAX = 604800
SETTINGS = proposing.ProposalSettings(default_ttl_seconds=3600, ttl_min_seconds=1)
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


@dataclass(frozen=True)
class MemberSpec:
    name: str
    workspace: str  # "ops" or "elsewhere"
    role: str
    kind: str = "human"
    owner: str | None = None


MEMBERS = [
    MemberSpec("alice", "ops", "approver"),
    MemberSpec("bob", "ops", "approver"),
    MemberSpec("carol", "ops", "operator"),
    MemberSpec("vic", "ops", "viewer"),
    MemberSpec("dana", "ops", "admin"),
    MemberSpec("bot", "ops", "operator", kind="agent", owner="alice"),
    MemberSpec("scout", "ops", "approver", kind="agent", owner="alice"),
    MemberSpec("eve", "elsewhere", "approver"),
]
MEMBER = {spec.name: spec for spec in MEMBERS}
# API key actors: (owning member, scopes; None = every scope), created in this order.
KEYS = {
    "agent": ("alice", ["actions:propose"]),
    "runner": ("bob", ["actions:execute"]),
    "desk": ("alice", ["actions:read", "actions:decide"]),
    "botkey": ("bot", None),
}
ALL_SCOPES = frozenset({"actions:read", "actions:propose", "actions:decide", "actions:execute"})
ACTOR_NAMES = [spec.name for spec in MEMBERS] + list(KEYS)


def member_of(actor_name: str) -> str:
    """The member an actor is: itself, or the owner of the key."""
    return KEYS[actor_name][0] if actor_name in KEYS else actor_name


def person_of(member: str) -> str:
    """The human a member stands for: an agent's owner, else the member (policy.md §3)."""
    return MEMBER[member].owner or member


def scopes_of(actor_name: str) -> frozenset[str]:
    if actor_name in KEYS:
        return ALL_SCOPES if KEYS[actor_name][1] is None else frozenset(KEYS[actor_name][1])
    return ALL_SCOPES


# Who usually makes each call, with everyone else now and then (the refusals matter too).
PROPOSERS = st.sampled_from(
    ["agent", "agent", "agent", "bot", "botkey", "alice", "bob", "carol", "dana", "vic", "runner", "desk", "eve"]
)
DECIDERS = st.sampled_from(
    ["bob", "bob", "alice", "alice", "dana", "dana", "carol", "carol", "desk", "scout", "bot", "botkey", "vic"]
    + ["agent", "runner", "eve"]
)
RUNNERS = st.sampled_from(["runner", "runner", "runner", "botkey", "carol", "alice", "vic", "desk", "agent", "eve"])
READERS = st.sampled_from(ACTOR_NAMES)

# A policy, as the model holds it: tier -> (approvals_required, approver roles in role order, allow_self).
ACT = ("operator", "approver", "admin")
DEFAULT_POLICY = {1: (1, ACT, True), 2: (1, ACT, True), 3: (1, ("approver", "admin"), False)}
PRESETS = {
    "n2_self": {1: (1, ACT, True), 2: (2, ACT, True), 3: (2, ("approver", "admin"), False)},
    "n2_strict": {1: (1, ACT, True), 2: (2, ACT, False), 3: (2, ("approver", "admin"), False)},
    "default": DEFAULT_POLICY,
}


def stored_rule(rule: tuple) -> dict:
    approvals_required, roles, allow_self = rule
    return {
        "approvals_required": approvals_required,
        "approver_roles": [role for role in ROLES if role in roles],
        "allow_self_approval": allow_self,
    }


def stored_policy(tiers: dict) -> dict:
    return {str(tier): stored_rule(tiers[tier]) for tier in (1, 2, 3)}


def policy_is_valid(tiers: dict) -> bool:
    """policy.md §2, by hand."""
    for tier in (1, 2, 3):
        if tier not in tiers:
            return False
        approvals_required, roles, allow_self = tiers[tier]
        if not 1 <= approvals_required <= 5:
            return False
        if not roles or not set(roles) <= APPROVER_ROLE_CHOICES:
            return False
        if tier == 3 and allow_self:
            return False
    return True


def clean(note: str | None) -> str | None:
    return note if note and note.strip() else None


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


_ROLE_SETS = [ACT, ("approver", "admin"), ("operator", "admin"), ("admin",), ("operator",), ("approver",)]


def _tier_rules(tier: int):
    return st.tuples(
        st.sampled_from([1, 1, 2, 2, 2, 3, 5]),
        st.sampled_from(_ROLE_SETS),
        st.just(False) if tier == 3 else st.booleans(),
    )


valid_policies = st.fixed_dictionaries({tier: _tier_rules(tier) for tier in (1, 2, 3)})


@st.composite
def invalid_policies(draw) -> dict:
    tiers = dict(draw(valid_policies))
    flaw = draw(st.sampled_from(["none_required", "six_required", "no_roles", "viewer", "tier3_self", "missing"]))
    tier = 3 if flaw == "tier3_self" else draw(st.sampled_from([1, 2, 3]))
    approvals_required, roles, allow_self = tiers[tier]
    if flaw == "missing":
        del tiers[tier]
    else:
        tiers[tier] = {
            "none_required": (0, roles, allow_self),
            "six_required": (6, roles, allow_self),
            "no_roles": (approvals_required, (), allow_self),
            "viewer": (approvals_required, ("viewer", *roles), allow_self),
            "tier3_self": (approvals_required, roles, True),
        }[flaw]
    return tiers


# The first choices are the ones Hypothesis makes most often: a preset other than the defaults.
policies = st.sampled_from(["n2_strict", "n2_self", "random", "random", "invalid", "default"]).flatmap(
    lambda kind: (
        valid_policies if kind == "random" else invalid_policies() if kind == "invalid" else st.just(PRESETS[kind])
    )
)


def as_tier_rules(tiers: dict) -> dict[int, TierRule]:
    return {
        tier: TierRule(approvals_required, tuple(Role(role) for role in roles), allow_self)
        for tier, (approvals_required, roles, allow_self) in tiers.items()
    }


# --------------------------------------------------------------------------- the model


@dataclass
class ModelAction:
    """What the contract says about one action: its fixed fields and rule, status, approvals and events."""

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
    proposer_person: str  # a member name
    rule: tuple  # (approvals_required, approver roles, allow_self), fixed at proposal
    proposed_at: datetime
    expires_at: datetime
    status: str
    # (type, actor_kind, actor_user_id, actor_api_key_id, data or None when not checked)
    events: list[tuple] = field(default_factory=list)
    # (user_id, person member name, api_key_id, note), oldest first
    approvals: list[tuple] = field(default_factory=list)

    @property
    def approvals_required(self) -> int:
        return self.rule[0]


def _local_date(moment: datetime, zone: ZoneInfo):
    return moment.astimezone(zone).date()


class DeploymentActionsMachine(RuleBasedStateMachine):
    """Members of every role, two agents of one owner, keys and a runner drive deployment actions."""

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
        # No passwords: hashing one costs more than a whole example's steps.
        with unit_of_work():
            workspaces = {
                "ops": users.create_workspace("Ops", now),
                "elsewhere": users.create_workspace("Elsewhere", now),
            }
            created: dict[str, User] = {}
            for spec in MEMBERS:
                created[spec.name] = users.create_user(
                    workspaces[spec.workspace],
                    f"{spec.name}@{spec.workspace}.example.test",
                    spec.name.capitalize(),
                    now,
                    role=spec.role,
                    kind=spec.kind,
                    owner=created[spec.owner] if spec.owner else None,
                )
        self.workspace_ids = [workspaces["ops"].id, workspaces["elsewhere"].id]
        self.workspace_of = {name: workspaces[spec.workspace].id for name, spec in MEMBER.items()}
        self.user_ids = {name: user.id for name, user in created.items()}
        self.names = {name: user.name for name, user in created.items()}
        self.member_by_user_id = {user_id: name for name, user_id in self.user_ids.items()}
        self.roles = {spec.name: spec.role for spec in MEMBERS}
        # The workspace's own events, as the model expects them: (type, kind, user, key, data or None).
        self.workspace_events: dict[str, list[tuple]] = {ws: [] for ws in self.workspace_ids}
        self.key_ids: dict[str, str] = {}
        for key_name, (owner, scopes) in KEYS.items():
            key, _ = api_keys.create_api_key(created[owner], key_name, now, scopes)
            self.key_ids[key_name] = key.id
            self.workspace_events[self.workspace_of[owner]].append(
                ("api_key_created", "user", self.user_ids[owner], None, None)
            )
        self.policies = {ws: dict(DEFAULT_POLICY) for ws in self.workspace_ids}
        self._refresh_actors()
        self.model: dict[str, ModelAction] = {}
        self.idempotency: dict[tuple[str, str], tuple[str, str]] = {}  # (client, key) -> (fingerprint, action id)
        self.final_seen: dict[str, str] = {}

    def _refresh_actors(self) -> None:
        """Actors as a request would build them now: with each member's role as stored."""
        db.session.expire_all()
        found = {user.id: user for user in db.session.scalars(select(User))}
        keys = {key.id: key for key in db.session.scalars(select(ApiKey))}
        self.actors = {name: user_actor(found[self.user_ids[name]]) for name in MEMBER}
        self.actors.update({name: api_key_actor(keys[self.key_ids[name]]) for name in KEYS})
        db.session.rollback()

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
        action.events.append(("expired", "system", None, None, None))

    def _event_of(self, actor_name: str) -> tuple:
        member = member_of(actor_name)
        if actor_name in KEYS:
            return ("api_key", self.user_ids[member], self.key_ids[actor_name])
        return ("user", self.user_ids[member], None)

    def _refusal(self, actor_name: str, action: ModelAction, transition: str, inputs: tuple | None):
        """The exception class the contract demands (None: success), in the order of policy.md §3.

        `inputs` is (confirmation, note), or None to leave out the typed-input checks as
        allowed_transitions does.
        """
        member = member_of(actor_name)
        role = self.roles[member]
        person = person_of(member)
        if SCOPE[transition] not in scopes_of(actor_name) or role not in ACTING_ROLES:
            return Forbidden
        if self.workspace_of[member] != action.workspace_id:
            return ActionNotFound
        if action.status == "proposed" and self.now >= action.expires_at:
            return ActionExpired
        if (transition, action.status) not in CONTRACT:
            return InvalidTransition
        if action.mode == "dry_run" and transition in REFUSED_IN_DRY_RUN:
            return InvalidTransition
        approvals_required, approver_roles, allow_self = action.rule
        if transition == "approve":
            if role not in approver_roles:
                return Forbidden
            if not allow_self and person == action.proposer_person:
                return SecondApproverRequired
            if person in {approval[1] for approval in action.approvals}:
                return AlreadyApproved
            if inputs is not None and action.tier == 3:
                confirmation, note = inputs
                if confirmation != action.target_ref[:8]:
                    return ConfirmationMismatch
                if clean(note) is None:
                    return OperatorReasonRequired
        if transition == "reject" and role not in approver_roles and person != action.proposer_person:
            return Forbidden
        return None

    def _allowed(self, actor_name: str, action: ModelAction) -> list[str]:
        return [t for t in TRANSITIONS if self._refusal(actor_name, action, t, None) is None]

    def _attempt(self, actor_name: str, action_id: str, transition: str, call, confirmation=None, note=None):
        actor = self.actors[actor_name]
        action = self.model[action_id]
        expected = self._refusal(actor_name, action, transition, (confirmation, note))

        predicted = None
        if actor.workspace_id == action.workspace_id:
            predicted = deciding.allowed_transitions(self._row(action_id), actor, self.now)
            assert predicted == self._allowed(actor_name, action), (
                f"allowed_transitions {predicted} for {actor_name} ({self.roles[member_of(actor_name)]}) on "
                f"{action.status} {action.mode} tier {action.tier} rule {action.rule} with approvals "
                f"{[a[1] for a in action.approvals]}; the model allows {self._allowed(actor_name, action)}"
            )

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
            f"{actor_name} ({self.roles[member_of(actor_name)]}) {transition} on {action.status} {action.mode} "
            f"tier {action.tier} rule {action.rule} proposed by {action.proposer_person}'s side, approvals "
            f"{[a[1] for a in action.approvals]}: expected {expected.__name__ if expected else 'success'}, "
            f"got {outcome.__name__ if outcome else 'success'}"
        )

        if outcome is ActionExpired:
            self._expire_in_model(action)
        elif outcome is None:
            self._apply(actor_name, action, transition, note)
            assert result.status == action.status
        return result

    def _apply(self, actor_name: str, action: ModelAction, transition: str, note) -> None:
        """A successful call, in the model."""
        who = self._event_of(actor_name)
        if transition != "approve":
            action.status = CONTRACT[(transition, action.status)]
            action.events.append((EVENT_OF[transition], *who, None))
            return
        member = member_of(actor_name)
        action.approvals.append((self.user_ids[member], person_of(member), who[2], clean(note)))
        received = len(action.approvals)
        if received < action.approvals_required:
            data = {
                "note": clean(note),
                "approvals_received": received,
                "approvals_required": action.approvals_required,
            }
            action.events.append(("approval_recorded", *who, data))
            return
        approvers = [
            {"id": user_id, "name": self.names[self.member_by_user_id[user_id]]} for user_id, *_ in action.approvals
        ]
        data = {"note": clean(note), "approvers": approvers, "approvals_required": action.approvals_required}
        action.status = "approved"
        action.events.append(("approved", *who, data))

    # ----------------------------------------------------------------- rules: writes

    @initialize(
        target=actions_bundle,
        preset=st.sampled_from(["n2_self", "n2_strict"]),
        first=st.lists(
            st.tuples(st.sampled_from(["agent", "agent", "bot", "alice", "bob", "carol"]), proposals()), max_size=5
        ),
    )
    def first_proposals(self, preset, first):
        """N = 2 on tiers 2 and 3, then a few proposals, so that decisions are possible from the first step."""
        self.change_policy("dana", PRESETS[preset])
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
        member = member_of(actor_name)
        idempotency = None
        client = actor.api_key_id or actor.user_id
        fingerprint = proposing.request_fingerprint(fields)
        if idempotency_key is not None:
            idempotency = proposing.IdempotencyRequest(client=client, key=idempotency_key, fingerprint=fingerprint)

        tier = TIER_BY_TYPE[fields["action_type"]]
        ttl = fields.get("ttl_seconds", SETTINGS.default_ttl_seconds)
        remembered = self.idempotency.get((client, idempotency_key)) if idempotency_key else None
        if "actions:propose" not in scopes_of(actor_name) or self.roles[member] not in ACTING_ROLES:
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
                settings=SETTINGS,
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
        workspace_id = self.workspace_of[member]
        action = ModelAction(
            id=created.id,
            workspace_id=workspace_id,
            tier=tier,
            action_type=fields["action_type"],
            target_ref=fields["target_ref"],
            reason=fields["reason"],
            mode=mode,
            payload=fields.get("payload") or {},
            ttl_seconds=ttl,
            proposer_user_id=self.user_ids[member],
            proposer_person=person_of(member),
            rule=self.policies[workspace_id][tier],
            proposed_at=self.now,
            expires_at=self.now + timedelta(seconds=ttl),
            status="executed" if autonomous else "proposed",
            events=[("proposed", *self._event_of(actor_name), None)],
        )
        if autonomous:
            action.events.append(("executed", "system", None, None, None))
        self.model[action.id] = action
        if idempotency_key is not None:
            self.idempotency[(client, idempotency_key)] = (fingerprint, action.id)
        return action.id

    @rule(actor_name=DECIDERS, action_id=actions_bundle, confirmation_kind=confirmation_kinds, note=notes)
    def approve(self, actor_name, action_id, confirmation_kind, note):
        action = self.model[action_id]
        confirmation = typed_confirmation(confirmation_kind, action.target_ref)
        result = self._attempt(
            actor_name,
            action_id,
            "approve",
            lambda actor: deciding.approve_action(actor, action_id, self.now, note=note, confirmation=confirmation),
            confirmation=confirmation,
            note=note,
        )
        if result is None:
            return
        event(f"approve: {action.events[-1][0]} ({len(action.approvals)} of {action.approvals_required})")
        assert result.approvals_received == len(action.approvals)
        if action.status == "approved":
            assert result.approved_by_id == self.actors[actor_name].user_id
            assert result.approved_at == self.now
            assert result.approver_note == clean(note)
        else:
            assert result.approved_by_id is None and result.approved_at is None and result.approver_note is None

    @rule(actor_name=DECIDERS, action_id=actions_bundle, note=notes)
    def reject(self, actor_name, action_id, note):
        result = self._attempt(
            actor_name, action_id, "reject", lambda actor: deciding.reject_action(actor, action_id, self.now, note=note)
        )
        if result is not None:
            assert result.rejected_by_id == self.actors[actor_name].user_id
            assert result.rejected_at == self.now
            assert result.rejection_note == clean(note)

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

    def _approval_candidates(self) -> list[tuple[str, str]]:
        """(action id, actor) pairs worth an approval now: those the model lets approve, so that the
        histories reach their N-th, and, on approvals in progress, each actor whose person has
        approved already (`already_approved`, or `forbidden` for an agent whose role may not)."""
        candidates = []
        for action in self.model.values():
            if action.status != "proposed":
                continue
            approved = {approval[1] for approval in action.approvals}
            for actor_name in ACTOR_NAMES:
                if self._refusal(actor_name, action, "approve", None) is None or (
                    person_of(member_of(actor_name)) in approved and "actions:decide" in scopes_of(actor_name)
                ):
                    candidates.append((action.id, actor_name))
        return candidates

    @precondition(lambda self: self._approval_candidates())
    @rule(data=st.data())
    def approve_as_a_chosen_member(self, data):
        action_id, actor_name = data.draw(st.sampled_from(self._approval_candidates()), label="action_and_actor")
        self.approve(
            actor_name,
            action_id,
            data.draw(st.sampled_from(["right", "right", "right", "right", "seven"]), label="confirmation_kind"),
            data.draw(st.sampled_from(["Checked the dashboard", "ok", " spaced ", None]), label="note"),
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

    # ----------------------------------------------------------------- rules: the policy and the roles

    # One rule for both, drawing which, so that the roles change less often than the policy (a
    # demotion stops a whole history). Hypothesis orders rules by (targets, argument count, name)
    # and favours the first ones: the name keeps this one behind the approvals.
    @rule(data=st.data())
    def reconfigure(self, data):
        if data.draw(st.sampled_from(["policy", "policy", "role"]), label="what") == "policy":
            self.change_policy(
                data.draw(st.sampled_from(["dana", "dana", "dana", "bob", "alice", "vic"]), label="actor_name"),
                data.draw(policies, label="tiers"),
            )
        else:
            self.change_role(
                data.draw(st.sampled_from(["dana", "dana", "bob", "carol"]), label="actor_name"),
                data.draw(
                    st.sampled_from(["carol", "carol", "vic", "bot", "scout", "bob", "alice", "dana"]), label="member"
                ),
                data.draw(st.sampled_from(ROLES), label="role"),
            )

    def change_policy(self, actor_name, tiers):
        """Replace the whole policy: only later proposals follow it (policy.md §3 "fixed at proposal")."""
        actor = self.actors[actor_name]
        workspace_id = self.workspace_of[actor_name]
        before = self.policies[workspace_id]
        if self.roles[actor_name] != "admin":
            expected = Forbidden
        elif not policy_is_valid(tiers):
            expected = ValidationFailed
        else:
            expected = None
        try:
            document = policy.replace_policy(actor, as_tier_rules(tiers), self.now)
        except ServiceError as error:
            outcome = type(error)
        else:
            outcome = None
        changed = outcome is None and stored_policy(tiers) != stored_policy(before)
        event(f"change policy: {outcome.__name__ if outcome else 'changed' if changed else 'same'}")
        assert outcome is expected, (
            f"{actor_name} replacing the policy with {tiers}: expected {expected}, got {outcome}"
        )
        if outcome is not None:
            return
        assert {tier: rule.as_dict() for tier, rule in document.tiers.items()} == {
            tier: stored_rule(tiers[tier]) for tier in (1, 2, 3)
        }
        if changed:
            self.policies[workspace_id] = dict(tiers)
            data = {"from": stored_policy(before), "to": stored_policy(tiers)}
            self.workspace_events[workspace_id].append(("policy_changed", "user", actor.user_id, None, data))

    def change_role(self, actor_name, member, role):
        """A role is read at each call: the next calls of this member (and its keys) follow it."""
        actor = self.actors[actor_name]
        old = self.roles[member]
        admins = sum(
            1 for name, r in self.roles.items() if r == "admin" and self.workspace_of[name] == actor.workspace_id
        )
        if self.roles[actor_name] != "admin":
            expected = Forbidden
        elif old == "admin" and role != "admin" and admins <= 1:
            expected = LastAdmin
        else:
            expected = None
        try:
            members.change_role(actor, self.user_ids[member], role, self.now)
        except ServiceError as error:
            outcome = type(error)
        else:
            outcome = None
        event(f"change role: {outcome.__name__ if outcome else 'same' if old == role else 'changed'}")
        assert outcome is expected, f"{actor_name} making {member} ({old}) {role}: expected {expected}, got {outcome}"
        if outcome is None and old != role:
            self.roles[member] = role
            data = {"member_id": self.user_ids[member], "from": old, "to": role}
            self.workspace_events[actor.workspace_id].append(("member_role_changed", "user", actor.user_id, None, data))
            self._refresh_actors()

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
        if "actions:read" not in scopes_of(actor_name):
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
            assert seen.allowed_transitions == self._allowed(actor_name, action)
            assert seen.policy == stored_rule(action.rule)
            assert (seen.approvals_required, seen.approvals_received) == (
                action.approvals_required,
                len(action.approvals),
            )
            assert [(a.user.id, a.note) for a in seen.approvals] == [(a[0], a[3]) for a in action.approvals]
            assert seen.requires_second_approver == (not action.rule[2])

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
            query = select(DeploymentAction).where(DeploymentAction.workspace_id == workspace_id)
            rows = list(observer.scalars(query.options(lazyload("*"))))
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

    def _read_everything(self):
        with self._observe() as observer:
            # Only the proposer is needed (allowed_transitions reads its person): the other users wait.
            only_the_proposer = (lazyload("*"), selectinload(DeploymentAction.proposed_by).lazyload(User.owner))
            rows = {row.id: row for row in observer.scalars(select(DeploymentAction).options(*only_the_proposer))}
            events: dict[str | None, list[AuditEvent]] = {}
            for audit_event in observer.scalars(select(AuditEvent).order_by(AuditEvent.workspace_id, AuditEvent.seq)):
                events.setdefault(audit_event.action_id, []).append(audit_event)
            approvals: dict[str, list[ActionApproval]] = {action_id: [] for action_id in rows}
            for approval in observer.scalars(select(ActionApproval).order_by(ActionApproval.id)):
                approvals[approval.action_id].append(approval)
            heads = {ws.id: ws.audit_seq for ws in observer.scalars(select(Workspace))}
            roles = {user.id: user.role for user in observer.scalars(select(User))}
        return rows, events, approvals, heads, roles

    def _check_allowed_transitions(self, rows: dict, approvals: dict) -> None:
        """For every action and every actor of its workspace, the service offers what the model allows."""
        now = self.now
        for action_id, row in rows.items():
            action = self.model[action_id]
            for actor_name, actor in self.actors.items():
                if actor.workspace_id != row.workspace_id:
                    continue
                offered = deciding.allowed_transitions(row, actor, now, approvals[action_id])
                allowed = self._allowed(actor_name, action)
                assert offered == allowed, (
                    f"{action_id} ({action.status} {action.mode} tier {action.tier} rule {action.rule}, approvals "
                    f"{[a[1] for a in action.approvals]}, proposed by {action.proposer_person}'s side): "
                    f"{actor_name} ({self.roles[member_of(actor_name)]}) is offered {offered}, "
                    f"the model allows {allowed}"
                )

    @invariant()
    def rows_events_and_chain_agree_with_the_contract(self):
        rows, events, approvals, heads, roles = self._read_everything()

        assert set(rows) == set(self.model), "rows appeared or vanished"
        assert roles == {self.user_ids[name]: role for name, role in self.roles.items()}, "roles differ"
        for action_id, action in self.model.items():
            row = rows[action_id]
            history = events.get(action_id, [])
            recorded = approvals[action_id]

            # The model's status, and a final status never changes.
            assert row.status == action.status, f"{action_id}: row is {row.status}, the contract says {action.status}"
            if action_id in self.final_seen:
                assert row.status == self.final_seen[action_id], f"{action_id} left final status"
            if row.status in FINAL:
                self.final_seen[action_id] = row.status

            # The proposal fields never change, nor the rule it was proposed under.
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
            assert row.policy == stored_rule(action.rule), (
                f"{action_id}: rule {row.policy}, proposed under {action.rule}"
            )

            # N of M: never past N, nobody twice, nobody of the proposer's side where self-approval is off.
            required, _, allow_self = action.rule
            persons = [approval.person_id for approval in recorded]
            assert row.approvals_received == len(recorded) <= required, (
                f"{action_id}: {row.approvals_received} counted, {len(recorded)} recorded, N = {required}"
            )
            assert len(set(persons)) == len(persons), f"{action_id}: a person approved twice: {persons}"
            if not allow_self:
                proposer = self.user_ids[action.proposer_person]
                assert proposer not in persons, f"{action_id}: approved by its proposer's side, self-approval off"
            assert [(a.user_id, a.person_id, a.api_key_id, a.note) for a in recorded] == [
                (user_id, self.user_ids[person], key_id, note) for user_id, person, key_id, note in action.approvals
            ]
            assert (row.status == "approved") <= (len(recorded) == required)

            # One event per proposal, approval, transition, expiry and autonomous execution, by the right actor.
            assert [(e.type, e.actor_kind, e.actor_user_id, e.actor_api_key_id) for e in history] == [
                expected[:4] for expected in action.events
            ], f"{action_id}: events differ"
            for audit_event, expected in zip(history, action.events, strict=True):
                if expected[4] is not None:
                    assert json.loads(audit_event.data) == expected[4], (
                        f"{action_id}: {audit_event.type} {audit_event.data}"
                    )

            # Executed tier 2/3: approved by a user, or a key acting for its owner.
            if row.status == "executed" and row.tier >= 2:
                approved = [e for e in history if e.type == "approved"]
                assert len(approved) == 1, f"{action_id}: executed tier {row.tier} without one approval"
                assert approved[0].actor_kind in {"user", "api_key"} and approved[0].actor_user_id is not None
                assert approved[0].actor_user_id == row.approved_by_id

            # dry_run: never approved, never executed.
            if row.mode == "dry_run":
                assert row.status not in {"approved", "executed"}
                assert row.approved_at is None and row.executed_at is None
                assert not {e.type for e in history} & {"approved", "executed", "approval_recorded"}

            # Tier 1 autonomous: executed at creation, by the system.
            if row.tier == 1 and row.mode == "autonomous":
                assert row.status == "executed" and row.executed_at == row.proposed_at
                assert [(e.type, e.actor_kind) for e in history][1:] == [("executed", "system")]

            # The timestamps of the row follow its status; approved_at/by wait for the N-th.
            assert (row.approved_at is not None) == any(e.type == "approved" for e in history)
            assert (row.approved_by_id is not None) == (row.approved_at is not None)
            if row.approved_by_id is not None:
                assert row.approved_by_id == recorded[-1].user_id
            assert (row.rejected_at is not None) == (row.status == "rejected")
            assert (row.executed_at is not None) == (row.status == "executed")
            assert (row.expired_at is not None) == (row.status == "expired")

        # Event count = the actions' histories + the workspace's own events (no action), in one chain.
        for workspace_id in self.workspace_ids:
            expected_count = sum(len(a.events) for a in self.model.values() if a.workspace_id == workspace_id)
            actual_count = sum(
                len(h) for key, h in events.items() if key is not None and h[0].workspace_id == workspace_id
            )
            own = [e for e in events.get(None, []) if e.workspace_id == workspace_id]
            assert all(e.type in WORKSPACE_EVENTS for e in own)
            expected_own = self.workspace_events[workspace_id]
            assert [(e.type, e.actor_kind, e.actor_user_id, e.actor_api_key_id) for e in own] == [
                expected[:4] for expected in expected_own
            ], "workspace events differ"
            for audit_event, expected in zip(own, expected_own, strict=True):
                if expected[4] is not None:
                    assert json.loads(audit_event.data) == expected[4], f"{audit_event.type} data {audit_event.data}"
            assert actual_count == expected_count
            assert heads[workspace_id] == expected_count + len(own)

        self._check_allowed_transitions(rows, approvals)
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
    """Random proposals, decisions, policy and role changes, expiries, clock jumps and reads keep every rule."""
    if backend == "sqlite":
        database = {"backend": "sqlite", "template": request.getfixturevalue("sqlite_template")}
        examples = _examples()
    else:
        database = {"backend": "postgresql", "url": request.getfixturevalue("postgres_migrated")}
        examples = max(5, _examples() // 4)
    assert POSTGRES_URL or backend == "sqlite"
    run_state_machine_as_test(lambda: DeploymentActionsMachine(database), settings=_settings(examples))
