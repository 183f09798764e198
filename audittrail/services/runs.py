"""Runs: reported by agents and their platforms, read by the DAG viewer (runs.md §1).

Runs are data, not decisions: writing one appends no audit event. Every write starts with an
UPDATE of the run's row, which takes its lock (PostgreSQL: the row; SQLite: the database) before
anything is read, so two writers of one run never interleave.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from functools import lru_cache

from sqlalchemy import bindparam
from sqlalchemy import delete
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import tuple_
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import defer

from audittrail.domain import Scope
from audittrail.domain import permission_refusal
from audittrail.domain.runs import MenuItem
from audittrail.domain.runs import graph_problems
from audittrail.domain.runs import is_run_id
from audittrail.domain.runs import menu_for
from audittrail.extensions import db
from audittrail.models import DeploymentAction
from audittrail.models import Run
from audittrail.models import RunRef
from audittrail.services.actors import Actor
from audittrail.services.errors import RunNotFound
from audittrail.services.errors import ValidationFailed
from audittrail.services.errors import error_for
from audittrail.services.expiry import expire_due
from audittrail.services.loading import read
from audittrail.services.unit_of_work import in_unit_of_work
from audittrail.services.unit_of_work import unit_of_work

# A run's actions are listed newest first, at most this many (a run is rarely the target of more).
MAX_RUN_ACTIONS = 200


@dataclass(frozen=True)
class RunView:
    """A run as one caller sees it: the row, the actions that target it, what they may propose from it."""

    run: Run
    actions: list[DeploymentAction]
    menu: list[MenuItem]


def _refuse(actor: Actor, scope: Scope) -> None:
    refusal = permission_refusal(actor.caller, scope)
    if refusal is not None:
        raise error_for(refusal)


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stored_node(node: dict) -> dict:
    """A node as it is kept and served: every field present, times as RFC 3339 text."""
    return {
        "id": node["id"],
        "kind": node["kind"],
        "label": node.get("label"),
        "status": node["status"],
        "started_at": _time(node.get("started_at")),
        "ended_at": _time(node.get("ended_at")),
        "ref": node.get("ref"),
        "attrs": node.get("attrs") or {},
    }


def _stored_edge(edge: dict) -> dict:
    return {"from": edge["from"], "to": edge["to"]}


def _check_graph(nodes: list[dict], edges: list[dict], renames=None) -> None:
    problems = graph_problems([node["id"] for node in nodes], [(edge["from"], edge["to"]) for edge in edges])
    if problems:
        if renames is not None:
            problems = {renames(name): value for name, value in problems.items()}
        message = "The run's graph has a cycle." if "cycle" in problems else "The run's graph breaks the shape rules."
        raise ValidationFailed(message, problems)


def _refs_of(run_id: str, nodes: list[dict]) -> set[str]:
    return {run_id} | {node["ref"] for node in nodes if node.get("ref")}


def _write_refs(workspace_id: str, run_id: str, nodes: list[dict]) -> None:
    db.session.execute(delete(RunRef).where(RunRef.workspace_id == workspace_id, RunRef.run_id == run_id))
    db.session.execute(
        insert(RunRef),
        [{"workspace_id": workspace_id, "run_id": run_id, "ref": ref} for ref in sorted(_refs_of(run_id, nodes))],
    )


def put_run(actor: Actor, run_id: str, fields: dict, now: datetime) -> tuple[Run, bool]:
    """Create or replace a run whole; returns it and whether it was created.

    Raises Forbidden (no `runs:write`, or a viewer), ValidationFailed (the id, or the graph: unknown
    nodes, a cycle named by its nodes, the caps).
    """
    _refuse(actor, Scope.RUNS_WRITE)
    if not is_run_id(run_id):
        raise ValidationFailed(
            "A run id is `run_` followed by 8–64 of A-Z a-z 0-9 _ -.", {"id": ["Not a valid run id."]}
        )
    if "id" in fields and fields["id"] != run_id:
        raise ValidationFailed("The id in the body is not the one in the path.", {"id": ["Must equal the path's id."]})
    nodes = [_stored_node(node) for node in fields.get("nodes") or []]
    edges = [_stored_edge(edge) for edge in fields.get("edges") or []]
    _check_graph(nodes, edges)
    values = {
        "agent": fields["agent"],
        "title": fields.get("title"),
        "status": fields["status"],
        "started_at": fields["started_at"],
        "ended_at": fields.get("ended_at"),
        "nodes": nodes,
        "edges": edges,
        "node_count": len(nodes),
        "edge_count": len(edges),
        "updated_at": now,
    }
    # Two creations of one new id race for the insert; the loser replaces what the winner made.
    for attempt in range(2):
        try:
            with unit_of_work():
                created = _replace_or_insert(actor.workspace_id, run_id, values, now)
                _write_refs(actor.workspace_id, run_id, nodes)
            break
        except IntegrityError:
            if attempt or in_unit_of_work():
                raise
    return load_run(actor.workspace_id, run_id), created


def _replace_or_insert(workspace_id: str, run_id: str, values: dict, now: datetime) -> bool:
    replaced = db.session.execute(
        update(Run)
        .where(Run.workspace_id == workspace_id, Run.id == run_id)
        .values(**values, version=Run.version + 1)
        .execution_options(synchronize_session=False)
    )
    if replaced.rowcount:
        return False
    db.session.add(Run(workspace_id=workspace_id, id=run_id, created_at=now, version=1, **values))
    db.session.flush()
    return True


def patch_run(actor: Actor, run_id: str, patch: dict, now: datetime) -> Run:
    """Change a run's status or end, update nodes, add nodes and edges; returns the run.

    A node that becomes `failed` leaves the run's status alone. Raises Forbidden, RunNotFound,
    ValidationFailed (an unknown node to update, or a graph that would break the shape rules).
    """
    _refuse(actor, Scope.RUNS_WRITE)
    if not is_run_id(run_id):
        raise RunNotFound()
    with unit_of_work():
        locked = db.session.execute(
            update(Run)
            .where(Run.workspace_id == actor.workspace_id, Run.id == run_id)
            .values(version=Run.version + 1, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if not locked.rowcount:
            raise RunNotFound()
        run = load_run(actor.workspace_id, run_id)
        nodes, edges = _patched_graph(run, patch)
        values: dict = {"nodes": nodes, "edges": edges, "node_count": len(nodes), "edge_count": len(edges)}
        if "status" in patch:
            values["status"] = patch["status"]
        if "ended_at" in patch:
            values["ended_at"] = patch["ended_at"]
        db.session.execute(
            update(Run)
            .where(Run.workspace_id == actor.workspace_id, Run.id == run_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if patch.get("add_nodes"):  # only new nodes bring new refs
            _write_refs(actor.workspace_id, run_id, nodes)
    return load_run(actor.workspace_id, run_id)


def _patched_graph(run: Run, patch: dict) -> tuple[list[dict], list[dict]]:
    nodes = [dict(node) for node in run.nodes]
    by_id = {node["id"]: node for node in nodes}
    unknown = {}
    for index, change in enumerate(patch.get("nodes") or []):
        node = by_id.get(change["id"])
        if node is None:
            unknown[f"nodes.{index}.id"] = [f"No node with id `{change['id']}` in this run."]
            continue
        if "status" in change:
            node["status"] = change["status"]
        if "ended_at" in change:
            node["ended_at"] = _time(change["ended_at"])
        if "attrs" in change:
            node["attrs"] = change["attrs"]
    if unknown:
        raise ValidationFailed("Some nodes to update are not in this run.", unknown)
    kept_nodes, kept_edges = len(nodes), len(run.edges)
    nodes += [_stored_node(node) for node in patch.get("add_nodes") or []]
    edges = list(run.edges) + [_stored_edge(edge) for edge in patch.get("add_edges") or []]

    def renames(name: str) -> str:
        # graph_problems names positions in the whole graph; name the patch's own lists instead.
        head, _, rest = name.partition(".")
        index, _, tail = rest.partition(".")
        kept = {"nodes": kept_nodes, "edges": kept_edges}.get(head)
        if kept is None or not index.isdigit() or int(index) < kept:
            return name
        return ".".join(part for part in (f"add_{head}", str(int(index) - kept), tail) if part)

    _check_graph(nodes, edges, renames)
    return nodes, edges


def load_run(workspace_id: str, run_id: str) -> Run:
    """One run of the workspace, read fresh; raises RunNotFound (another workspace's id too)."""
    if not is_run_id(run_id):
        raise RunNotFound()
    run = db.session.scalars(
        select(Run).where(Run.workspace_id == workspace_id, Run.id == run_id).execution_options(populate_existing=True)
    ).one_or_none()
    if run is None:
        raise RunNotFound()
    return run


def get_run(actor: Actor, run_id: str, now: datetime) -> RunView:
    """A run with its graph, the actions that target it and the menu this caller gets.

    Raises Forbidden, RunNotFound.
    """
    _refuse(actor, Scope.READ)
    return view_of(actor, load_run(actor.workspace_id, run_id), now)


def view_of(actor: Actor, run: Run, now: datetime) -> RunView:
    """The run as this actor sees it. A caller who may not read actions (a `runs:write`-only key
    answered after its write) sees none of them, and no menu.
    """
    if permission_refusal(actor.caller, Scope.READ) is not None:
        return RunView(run, [], [])
    expire_due(now, workspace_id=actor.workspace_id, request_id=actor.request_id)
    refs = select(RunRef.ref).where(RunRef.workspace_id == actor.workspace_id, RunRef.run_id == run.id)
    actions = list(
        db.session.scalars(
            select(DeploymentAction)
            .where(DeploymentAction.workspace_id == actor.workspace_id, DeploymentAction.target_ref.in_(refs))
            .order_by(DeploymentAction.proposed_at.desc(), DeploymentAction.id.desc())
            .limit(MAX_RUN_ACTIONS)
        )
    )
    may_propose = permission_refusal(actor.caller, Scope.PROPOSE) is None
    return RunView(run, actions, menu_for(run.status, may_propose))


def encode_cursor(run: Run) -> str:
    raw = json.dumps([run.started_at.strftime("%Y-%m-%dT%H:%M:%S.%f"), run.id])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Parse a cursor made by encode_cursor; raises ValidationFailed for anything else."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        started_at_text, run_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        started_at = datetime.strptime(started_at_text, "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC)
        if not is_run_id(run_id):
            raise ValueError("bad id")
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ValidationFailed("The cursor is not one this API gave out.", {"cursor": ["Invalid cursor."]}) from None
    return started_at, run_id


def list_runs(
    actor: Actor, status: str | None = None, agent: str | None = None, limit: int = 50, cursor: str | None = None
) -> tuple[list[Run], str | None]:
    """A page of the workspace's runs, by `started_at` desc then `id` desc, without their graphs.

    Raises Forbidden, ValidationFailed (bad cursor).
    """
    _refuse(actor, Scope.READ)
    query = select(Run).options(defer(Run.nodes), defer(Run.edges)).where(Run.workspace_id == actor.workspace_id)
    if status:
        query = query.where(Run.status == status)
    if agent:
        query = query.where(Run.agent == agent)
    if cursor:
        after_at, after_id = decode_cursor(cursor)
        query = query.where(tuple_(Run.started_at, Run.id) < tuple_(after_at, after_id))
    query = query.order_by(Run.started_at.desc(), Run.id.desc()).limit(limit + 1)
    rows = list(db.session.scalars(query))
    next_cursor = encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return rows[:limit], next_cursor


def run_ids_for_targets(workspace_id: str, target_refs) -> dict[str, str]:
    """For each target ref that is a run's id or one of its node refs, that run's id.

    A ref held by several runs goes to the run it names, else to the one that started last.
    """
    wanted = set(target_refs)
    if not wanted:
        return {}
    rows = read(_refs_statement(), {"workspace_id": workspace_id, "refs": sorted(wanted)}).all()
    best: dict[str, tuple] = {}
    for ref, run_id, started_at in rows:
        rank = (ref == run_id, started_at, run_id)
        if ref not in best or rank > best[ref]:
            best[ref] = rank
    return {ref: rank[2] for ref, rank in best.items()}


@lru_cache(maxsize=1)
def _refs_statement():
    """The runs holding some of these refs (every representation of an action asks): built once."""
    return (
        select(RunRef.ref, RunRef.run_id, Run.started_at)
        .join(Run, (Run.workspace_id == RunRef.workspace_id) & (Run.id == RunRef.run_id))
        .where(RunRef.workspace_id == bindparam("workspace_id"), RunRef.ref.in_(bindparam("refs", expanding=True)))
    )
