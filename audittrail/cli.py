"""flask commands: users, api-keys, deployments expire, audit verify and checkpoint, webhooks worker."""

from __future__ import annotations

import sys

import click
from flask import Flask
from sqlalchemy import select

from audittrail.auth import _utcnow
from audittrail.domain import Role
from audittrail.domain import UserKind
from audittrail.extensions import db
from audittrail.models import User
from audittrail.models import Workspace
from audittrail.services import api_keys
from audittrail.services import audit
from audittrail.services import checkpoints
from audittrail.services import expiry
from audittrail.services import users
from audittrail.services.actors import system_actor
from audittrail.services.errors import ServiceError
from audittrail.services.unit_of_work import unit_of_work
from audittrail.signing import current_keyring


def register_commands(app: Flask) -> None:
    app.cli.add_command(users_group)
    app.cli.add_command(api_keys_group)
    app.cli.add_command(deployments_group)
    app.cli.add_command(audit_group)
    app.cli.add_command(webhooks_group)


@click.group("users", help="Manage users.")
def users_group():
    pass


@users_group.command("create")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--workspace", "workspace_name", default=None, help="Name of a new workspace to create.")
@click.option("--workspace-id", default=None, help="Id of an existing workspace to join.")
@click.option(
    "--role",
    type=click.Choice([role.value for role in Role]),
    default=None,
    help="Default: admin for the first member of a new workspace, operator when joining one.",
)
@click.option("--kind", type=click.Choice([kind.value for kind in UserKind]), default=UserKind.HUMAN.value)
@click.option("--owner-email", default=None, help="The human who owns this agent (required with --kind agent).")
def create_user(email, name, password, workspace_name, workspace_id, role, kind, owner_email):
    """Create a user (in a new workspace unless --workspace-id is given)."""
    now = _utcnow()
    if kind == UserKind.AGENT and not owner_email:
        raise click.UsageError("--owner-email is required with --kind agent")
    try:
        with unit_of_work():
            if workspace_id:
                workspace = db.session.get(Workspace, workspace_id)
                if workspace is None:
                    raise click.ClickException(f"no workspace {workspace_id}")
            else:
                workspace = users.create_workspace(workspace_name or f"{name}'s workspace", now)
            owner = None
            if owner_email:
                owner = db.session.scalars(select(User).where(User.email == owner_email.strip().lower())).first()
                if owner is None:
                    raise click.ClickException(f"no user {owner_email}")
            # A new workspace's first member administers it: otherwise nobody could.
            chosen_role = role or (Role.OPERATOR if workspace_id else Role.ADMIN)
            user = users.create_user(
                workspace, email, name, now, password=password, role=chosen_role, kind=kind, owner=owner
            )
    except ServiceError as error:
        raise click.ClickException(f"{error.message} {error.details}") from None
    click.echo(f"created {user.role} {user.kind} {user.id} <{user.email}> in workspace {workspace.id}")


@click.group("api-keys", help="Manage API keys.")
def api_keys_group():
    pass


@api_keys_group.command("create")
@click.option("--email", required=True, help="The user the key acts as.")
@click.option("--name", required=True)
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    help="Repeat for several; default the four actions:* scopes (audit:read and runs:write only by name).",
)
def create_api_key(email, name, scopes):
    """Create an API key and print its secret (shown once)."""
    user = db.session.scalars(select(User).where(User.email == email.strip().lower())).first()
    if user is None:
        raise click.ClickException(f"no user {email}")
    try:
        key, secret = api_keys.create_api_key(
            user, name, _utcnow(), list(scopes) or None, actor=system_actor(user.workspace_id, "cli")
        )
    except ServiceError as error:
        raise click.ClickException(f"{error.message} {error.details}") from None
    click.echo(f"created {key.id} ({', '.join(key.scopes)}); the key, shown once:", err=True)
    click.echo(secret)


@click.group("deployments", help="Deployment actions.")
def deployments_group():
    pass


@deployments_group.command("expire")
def expire():
    """Expire every proposed action past its TTL (idempotent; safe from several hosts)."""
    count = expiry.expire_due(_utcnow(), request_id="cron-sweep")
    click.echo(f"expired {count} action(s)")


@click.group("audit", help="The audit trail.")
def audit_group():
    pass


@audit_group.command("verify")
@click.option("--workspace-id", default=None)
def verify(workspace_id):
    """Recompute the hash chain; exit 1 naming the first broken event."""
    problem = audit.verify_chain(workspace_id)
    if problem is not None:
        click.echo(f"audit chain broken: {problem}", err=True)
        sys.exit(1)
    click.echo("audit chain verified")


@audit_group.command("checkpoint")
def checkpoint():
    """Sign and store a checkpoint of every workspace's chain head, for cron (empty chains are skipped)."""
    made = checkpoints.checkpoint_every_workspace(current_keyring(), _utcnow())
    for item in made:
        click.echo(f"checkpoint {item.workspace_id} seq {item.seq} hash {item.hash} (kid {item.kid})")
    click.echo(f"{len(made)} checkpoint(s) made")


@click.group("webhooks", help="Signed webhooks (webhooks.md).")
def webhooks_group():
    pass


@webhooks_group.command("worker")
def webhooks_worker():
    """Deliver webhooks until SIGTERM (at least once; run one or more, see the README)."""
    import logging

    from flask import current_app

    from audittrail.webhook_worker import run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The command runs inside an app context; the worker opens its own for each step.
    run_worker(current_app._get_current_object())
