"""The demo workspace's three runs (runs.md §1), tied to the seeded actions.

- the runaway run the seeded `kill_run` row targets: a long tool-call loop, still running;
- a finished run holding the trace the seeded `tag_trace` row names;
- a failed run.
"""

from __future__ import annotations

from datetime import datetime
from datetime import timedelta

from audittrail.services import runs
from audittrail.services.actors import Actor

RUNAWAY_RUN_ID = "run_8f3a2c91d4e7"
TRACED_RUN_ID = "run_41be07d2c9a5"
FAILED_RUN_ID = "run_d07c55e1a3f8"
TAGGED_TRACE = "trace_5c0ffee91b7d"
LOOP_ROUNDS = 24


def _node(node_id, kind, label, status, started, ended=None, ref=None, **attrs) -> dict:
    return {
        "id": node_id,
        "kind": kind,
        "label": label,
        "status": status,
        "started_at": started,
        "ended_at": ended,
        "ref": ref,
        "attrs": attrs,
    }


def _chain(node_ids: list[str]) -> list[dict]:
    return [{"from": source, "to": target} for source, target in zip(node_ids, node_ids[1:], strict=False)]


def _runaway(now: datetime) -> dict:
    started = now - timedelta(minutes=38)
    at = lambda minutes: started + timedelta(minutes=minutes)  # noqa: E731
    nodes = [
        _node("intake", "agent", "support-triage-v4", "succeeded", at(0), at(0.2), ticket="T-88412"),
        _node("classify", "llm", "classify ticket", "succeeded", at(0.2), at(0.5), model="claude-medium"),
        _node("kb", "retrieval", "search knowledge base", "succeeded", at(0.5), at(0.9), hits=12),
        _node("plan", "llm", "plan reply", "succeeded", at(0.9), at(1.4), ref="trace_8f3a2c91aa01"),
    ]
    chain = ["intake", "classify", "kb", "plan"]
    for round_number in range(1, LOOP_ROUNDS + 1):
        last = round_number == LOOP_ROUNDS
        begin = at(1.4 + (round_number - 1) * 1.5)
        tool, check = f"lookup-{round_number}", f"reflect-{round_number}"
        looked_up = begin + timedelta(seconds=40)
        nodes.append(_node(tool, "tool", "crm.lookup_order", "succeeded", begin, looked_up, attempt=round_number))
        nodes.append(
            _node(
                check,
                "llm",
                "reflect: order not found, retry",
                "running" if last else "succeeded",
                looked_up,
                None if last else begin + timedelta(seconds=90),
            )
        )
        chain += [tool, check]
    nodes.append(_node("reply", "human", "send reply to customer", "pending", None))
    edges = _chain(chain) + [{"from": "kb", "to": "reply"}]
    return {
        "agent": "support-triage-v4",
        "title": "Ticket T-88412: where is my order?",
        "status": "running",
        "started_at": started,
        "ended_at": None,
        "nodes": nodes,
        "edges": edges,
    }


def _traced(now: datetime) -> dict:
    started = now - timedelta(hours=46, minutes=6)
    at = lambda minutes: started + timedelta(minutes=minutes)  # noqa: E731
    nodes = [
        _node("session", "agent", "concierge-v2", "succeeded", at(0), at(5.5), customer="acme-corp"),
        _node("understand", "llm", "understand request", "succeeded", at(0.1), at(0.4), model="claude-large"),
        _node("docs", "retrieval", "fetch contract docs", "succeeded", at(0.4), at(0.9), hits=7),
        _node(
            "recurse", "tool", "workflow.expand (depth 31)", "succeeded", at(0.9), at(4.6), ref=TAGGED_TRACE, depth=31
        ),
        _node("summarise", "llm", "summarise findings", "succeeded", at(4.6), at(5.2)),
        _node("approve", "human", "agent reviewed reply", "skipped", at(5.2), at(5.3)),
        _node("answer", "tool", "chat.send", "succeeded", at(5.3), at(5.5)),
    ]
    edges = _chain(["session", "understand", "docs", "recurse", "summarise", "answer"]) + [
        {"from": "summarise", "to": "approve"},
        {"from": "approve", "to": "answer"},
    ]
    return {
        "agent": "concierge-v2",
        "title": "Contract renewal questions (acme-corp)",
        "status": "succeeded",
        "started_at": started,
        "ended_at": at(5.5),
        "nodes": nodes,
        "edges": edges,
    }


def _failed(now: datetime) -> dict:
    started = now - timedelta(hours=7, minutes=12)
    at = lambda minutes: started + timedelta(minutes=minutes)  # noqa: E731
    nodes = [
        _node("start", "agent", "release-notes-bot", "succeeded", at(0), at(3.1)),
        _node("diff", "tool", "git.diff v4.11..v4.12", "succeeded", at(0.1), at(0.6), files=214),
        _node("draft", "llm", "draft release notes", "succeeded", at(0.6), at(2.2), model="claude-medium"),
        _node("publish", "tool", "docs.publish", "failed", at(2.2), at(3.1), error="403 from docs API: token expired"),
        _node("announce", "tool", "slack.post #releases", "skipped", None),
    ]
    return {
        "agent": "release-notes-bot",
        "title": "Release notes for v4.12",
        "status": "failed",
        "started_at": started,
        "ended_at": at(3.1),
        "nodes": nodes,
        "edges": _chain(["start", "diff", "draft", "publish", "announce"]),
    }


def seed_demo_runs(reporter: Actor, now: datetime) -> list[str]:
    """Report the three demo runs as `reporter` (a member who may write runs); returns their ids."""
    for run_id, build in ((TRACED_RUN_ID, _traced), (FAILED_RUN_ID, _failed), (RUNAWAY_RUN_ID, _runaway)):
        runs.put_run(reporter, run_id, build(now), now)
    return [RUNAWAY_RUN_ID, TRACED_RUN_ID, FAILED_RUN_ID]
