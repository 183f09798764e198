"""Helpers that build the world a test needs through the service layer."""

from __future__ import annotations

from dataclasses import dataclass

from audittrail.services import api_keys
from audittrail.services import deciding
from audittrail.services import proposing
from audittrail.services import users
from audittrail.services.actors import Actor
from audittrail.services.actors import api_key_actor
from audittrail.services.actors import user_actor
from audittrail.services.unit_of_work import unit_of_work


@dataclass
class Team:
    """One workspace with two operators (alice, bob)."""

    workspace: object
    alice: object
    bob: object

    @property
    def alice_actor(self) -> Actor:
        return user_actor(self.alice)

    @property
    def bob_actor(self) -> Actor:
        return user_actor(self.bob)


def make_team(
    now, name: str = "Ops", domain: str = "example.test", passwords: bool = False, role: str = "approver"
) -> Team:
    """Two members who may each decide every tier under the default policy (`approver`).

    Passwords are off by default: hashing one costs ~0.1 s, and most tests never log in.
    """
    with unit_of_work():
        workspace = users.create_workspace(name, now)
        alice = users.create_user(
            workspace,
            f"alice@{name.lower()}.{domain}",
            "Alice",
            now,
            password="alice-password" if passwords else None,
            role=role,
        )
        bob = users.create_user(
            workspace,
            f"bob@{name.lower()}.{domain}",
            "Bob",
            now,
            password="bob-password" if passwords else None,
            role=role,
        )
    return Team(workspace, alice, bob)


def add_member(team: Team, now, name: str, role: str = "operator", kind: str = "human", owner=None):
    """Another member of the team's workspace."""
    with unit_of_work():
        return users.create_user(
            team.workspace,
            f"{name.lower()}@{team.workspace.id}.example.test",
            name,
            now,
            role=role,
            kind=kind,
            owner=owner,
        )


def key_actor(user, now, scopes=None) -> tuple[Actor, str]:
    key, secret = api_keys.create_api_key(user, "test key", now, scopes)
    return api_key_actor(key), secret


TYPE_BY_TIER = {1: "alert", 2: "throttle", 3: "kill_run"}


def propose(
    actor,
    now,
    tier: int = 2,
    mode: str = "supervised",
    ttl: int = 3600,
    target_ref: str = "run_8f3a2c91d4e7",
    action_type: str | None = None,
    **extra,
):
    result = proposing.propose_action(
        actor,
        proposing.Proposal(
            action_type=action_type or TYPE_BY_TIER[tier],
            target_ref=target_ref,
            reason="Cost spike on the fleet",
            mode=mode,
            ttl_seconds=ttl,
            **extra,
        ),
        now,
        settings=proposing.ProposalSettings(ttl_min_seconds=1),
    )
    return result.action


def approve(actor, action, now, note="looks right"):
    """Approve correctly for any tier (confirmation and note included)."""
    return deciding.approve_action(actor, action.id, now, note=note, confirmation=action.target_ref[:8])
