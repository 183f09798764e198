"""Helpers that build the world a test needs through the service layer."""

from __future__ import annotations

from dataclasses import dataclass

from audittrail.extensions import db
from audittrail.services import actions
from audittrail.services import api_keys
from audittrail.services import users
from audittrail.services.actors import Actor
from audittrail.services.actors import api_key_actor
from audittrail.services.actors import user_actor


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


def make_team(now, name: str = "Ops", domain: str = "example.test", passwords: bool = False) -> Team:
    """Passwords are off by default: hashing one costs ~0.1 s, and most tests never log in."""
    workspace = users.create_workspace(name, now)
    alice = users.create_user(
        workspace, f"alice@{name.lower()}.{domain}", "Alice", now, password="alice-password" if passwords else None
    )
    bob = users.create_user(
        workspace, f"bob@{name.lower()}.{domain}", "Bob", now, password="bob-password" if passwords else None
    )
    db.session.commit()
    return Team(workspace, alice, bob)


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
    result = actions.propose_action(
        actor,
        actions.Proposal(
            action_type=action_type or TYPE_BY_TIER[tier],
            target_ref=target_ref,
            reason="Cost spike on the fleet",
            mode=mode,
            ttl_seconds=ttl,
            **extra,
        ),
        now,
        policy=actions.ProposalPolicy(ttl_min_seconds=1),
    )
    return result.action


def approve(actor, action, now, note="looks right"):
    """Approve correctly for any tier (confirmation and note included)."""
    return actions.approve_action(actor, action.id, now, note=note, confirmation=action.target_ref[:8])
