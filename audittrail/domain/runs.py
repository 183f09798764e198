"""Runs and their graphs (runs.md): statuses, kinds, the shape rules, and what the node menu offers.

Standard library only: the graph arrives as plain lists of node ids and (from, to) pairs.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from enum import StrEnum

from audittrail.domain.rules import TIER_REQUIREMENTS
from audittrail.domain.rules import ActionType
from audittrail.domain.rules import expected_confirmation
from audittrail.domain.rules import tier_of


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    KILLED = "killed"


class NodeKind(StrEnum):
    LLM = "llm"
    TOOL = "tool"
    AGENT = "agent"
    RETRIEVAL = "retrieval"
    HUMAN = "human"
    OTHER = "other"


class NodeStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


RUN_ID_PATTERN = re.compile(r"^run_[A-Za-z0-9_-]{8,64}$")
MAX_NODES = 2000
MAX_EDGES = 5000
MAX_ATTRS_BYTES = 8 * 1024
MAX_NODE_ID_LENGTH = 100
MAX_REF_LENGTH = 200


def is_run_id(value: object) -> bool:
    """Whether `value` has the shape of a run id: `run_` and 8–64 of [A-Za-z0-9_-]."""
    return isinstance(value, str) and RUN_ID_PATTERN.match(value) is not None


def graph_problems(node_ids: list[str], edges: list[tuple[str, str]]) -> dict[str, list]:
    """What breaks the shape rules, as `details` for a 422 (empty when the graph is a legal DAG).

    Checks, in order: the caps, node ids unique, edges naming known nodes, no edge given twice,
    and no cycle. A cycle is reported under `cycle` as the ids on it, in order, the first not
    repeated at the end.
    """
    problems: dict[str, list] = {}
    if len(node_ids) > MAX_NODES:
        problems["nodes"] = [f"A run has at most {MAX_NODES} nodes; this one has {len(node_ids)}."]
    if len(edges) > MAX_EDGES:
        problems["edges"] = [f"A run has at most {MAX_EDGES} edges; this one has {len(edges)}."]
    if problems:
        return problems
    seen: set[str] = set()
    for index, node_id in enumerate(node_ids):
        if node_id in seen:
            problems[f"nodes.{index}.id"] = [f"Node id `{node_id}` is given twice."]
        seen.add(node_id)
    pairs: set[tuple[str, str]] = set()
    for index, (source, target) in enumerate(edges):
        for end, node_id in (("from", source), ("to", target)):
            if node_id not in seen:
                problems[f"edges.{index}.{end}"] = [f"No node with id `{node_id}`."]
        if (source, target) in pairs:
            problems[f"edges.{index}"] = [f"The edge {source} → {target} is given twice."]
        pairs.add((source, target))
    if problems:
        return problems
    cycle = find_cycle(node_ids, edges)
    if cycle:
        path = " → ".join([*cycle, cycle[0]])
        problems["edges"] = [f"The edges form a cycle: {path}. A run's graph must be acyclic."]
        problems["cycle"] = cycle
    return problems


def find_cycle(node_ids: list[str], edges: list[tuple[str, str]]) -> list[str] | None:
    """The node ids of one cycle, in edge order, or None for a DAG. Iterative: 2 000 deep is fine."""
    successors: dict[str, list[str]] = defaultdict(list)
    for source, target in edges:
        successors[source].append(target)
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(node_ids, white)
    for root in node_ids:
        if colour[root] != white:
            continue
        path = [root]
        stack = [iter(successors[root])]
        colour[root] = grey
        while stack:
            following = next(stack[-1], None)
            if following is None:
                colour[path.pop()] = black
                stack.pop()
                continue
            if colour[following] == grey:
                return path[path.index(following) :]
            if colour[following] == white:
                colour[following] = grey
                path.append(following)
                stack.append(iter(successors[following]))
    return None


class MenuTarget(StrEnum):
    """What a menu item's action targets: the node's `ref` (the run id when it has none), or the run."""

    NODE = "node"
    RUN = "run"


@dataclass(frozen=True)
class MenuItem:
    action_type: ActionType
    target: MenuTarget
    only_while: RunStatus | None = None  # offered only while the run has this status

    @property
    def tier(self) -> int:
        return tier_of(self.action_type)

    def confirmation_text(self, run_id: str) -> str | None:
        """What a proposer types before proposing it (tier 3, run target): the run id's first 8 characters."""
        if not TIER_REQUIREMENTS[self.tier].confirmation or self.target is not MenuTarget.RUN:
            return None
        return expected_confirmation(run_id)


# What the NodeActionMenu offers on every node (runs.md §3), in its order.
NODE_MENU: tuple[MenuItem, ...] = (
    MenuItem(ActionType.TAG_TRACE, MenuTarget.NODE),
    MenuItem(ActionType.CREATE_INCIDENT, MenuTarget.RUN),
    MenuItem(ActionType.ALERT, MenuTarget.RUN),
    MenuItem(ActionType.KILL_RUN, MenuTarget.RUN, only_while=RunStatus.RUNNING),
)


def menu_for(run_status: str, may_propose: bool) -> list[MenuItem]:
    """The items the menu shows for a run in this status, to a caller who may (or may not) propose."""
    if not may_propose:
        return []
    return [item for item in NODE_MENU if item.only_while is None or item.only_while == run_status]
