"""Demo workspaces: a fresh tenant per demo login, seeded through the service rules (§7)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta

from audittrail.domain import Role
from audittrail.domain import UserKind
from audittrail.models import User
from audittrail.models import Workspace
from audittrail.services import deciding
from audittrail.services import expiry
from audittrail.services import proposing
from audittrail.services.actors import user_actor
from audittrail.services.demo_runs import seed_demo_runs
from audittrail.services.unit_of_work import unit_of_work
from audittrail.services.users import create_user
from audittrail.services.users import create_workspace

DEMO_REQUEST_ID = "demo-seed"


@dataclass
class DemoWorkspace:
    workspace: Workspace
    operator: User
    autopilot: User
    teammate: User


def create_demo_workspace(now: datetime) -> DemoWorkspace:
    """A new workspace with the demo operator, two other members and the seeded rows (policy.md §1).

    The demo operator (the caller) is `admin`; Sam Okafor is `approver`; Fleet Autopilot is an
    `agent` with role `operator`, owned by Sam. Three runs the seeded actions target (runs.md §1).
    One unit of work: a failure anywhere leaves no
    half-seeded workspace behind.
    """
    tag = secrets.token_hex(4)
    with unit_of_work():
        workspace = create_workspace(f"Demo fleet {tag}", now)
        operator = create_user(
            workspace, f"operator+{tag}@demo.audittrail.invalid", "Demo Operator", now, role=Role.ADMIN
        )
        teammate = create_user(workspace, f"sam+{tag}@demo.audittrail.invalid", "Sam Okafor", now, role=Role.APPROVER)
        autopilot = create_user(
            workspace,
            f"autopilot+{tag}@demo.audittrail.invalid",
            "Fleet Autopilot (agent)",
            now,
            role=Role.OPERATOR,
            kind=UserKind.AGENT,
            owner=teammate,
        )
        demo = DemoWorkspace(workspace, operator, autopilot, teammate)
        _seed_demo_deployment_actions(demo, now)
        seed_demo_runs(user_actor(operator, DEMO_REQUEST_ID), now)
    return demo


def _seed_demo_deployment_actions(demo: DemoWorkspace, now: datetime) -> list[str]:
    """Seed exactly 10 actions covering every tier, type, status and mode (§7).

    Each row is made by the service functions at its own past time, and all steps run in
    time order, so the audit chain reads like the history it records. Returns the ids.
    """
    operator = user_actor(demo.operator, DEMO_REQUEST_ID)
    autopilot = user_actor(demo.autopilot, DEMO_REQUEST_ID)
    sam = user_actor(demo.teammate, DEMO_REQUEST_ID)
    ago = lambda **delta: now - timedelta(**delta)  # noqa: E731

    proposals = [
        # 0: tier 3, awaiting a second approver: the demo operator can approve it.
        dict(
            at=ago(minutes=25),
            by=autopilot,
            ttl=6 * 3600,
            action_type="kill_run",
            target_ref="run_8f3a2c91d4e7",
            mode="supervised",
            reason="Runaway run: agent loop has made 14,200 tool calls in 38 min and is burning "
            "$310/h with no progress on the task.",
            payload={
                "run_id": "run_8f3a2c91d4e7",
                "agent": "support-triage-v4",
                "tool_calls": 14200,
                "cost_usd_per_hour": 310.4,
                "signal": "SIGTERM",
            },
        ),
        # 1: tier 2, awaiting approval.
        dict(
            at=ago(hours=1, minutes=10),
            by=autopilot,
            ttl=8 * 3600,
            action_type="throttle",
            target_ref="model/gpt-large@us-east-1",
            mode="supervised",
            reason="Cost spike: token spend on gpt-large is 3.4x the 7-day baseline since 00:40 UTC.",
            payload={"model": "gpt-large", "region": "us-east-1", "max_rps": 40, "previous_max_rps": 120},
        ),
        # 2: tier 2 dry run: shows in the queue, never executes.
        dict(
            at=ago(hours=3, minutes=5),
            by=sam,
            ttl=24 * 3600,
            action_type="disable_flag",
            target_ref="flag/streaming-tool-calls",
            mode="dry_run",
            reason="Error-budget burn: streaming tool calls account for 61% of 5xx in the last hour; "
            "checking blast radius before turning the flag off.",
            payload={"flag": "streaming-tool-calls", "environment": "production", "rollout_percent": 100},
        ),
        # 3: tier 1 autonomous: executed on creation.
        dict(
            at=ago(hours=5, minutes=40),
            by=autopilot,
            ttl=3600,
            action_type="alert",
            target_ref="pager/sre-primary",
            mode="autonomous",
            reason="Latency degradation: p95 of the planner agent rose from 2.1 s to 7.8 s over 15 min.",
            payload={"severity": "high", "service": "planner-agent", "p95_ms": 7800, "baseline_p95_ms": 2100},
        ),
        # 4: tier 3 approved by a second person (not Sam: he owns the agent that proposed it),
        # waiting for the runner.
        dict(
            at=ago(hours=9, minutes=15),
            by=autopilot,
            ttl=12 * 3600,
            action_type="rollback_deploy",
            target_ref="deploy_2f9e7c1a0b44",
            mode="supervised",
            reason="Canary drift: deploy 2f9e7c1a raised hallucination-eval failures from 0.8% to 4.9% "
            "on the canary cohort.",
            payload={
                "deploy_id": "deploy_2f9e7c1a0b44",
                "service": "answer-agent",
                "rollback_to": "deploy_c41d0e99aa12",
                "canary_failure_rate": 0.049,
            },
        ),
        # 5: tier 2 approved then executed by the runner.
        dict(
            at=ago(hours=14, minutes=30),
            by=autopilot,
            ttl=4 * 3600,
            action_type="switch_model",
            target_ref="agent/summarizer-prod",
            mode="supervised",
            reason="Provider incident: primary model endpoint timing out on 22% of calls; switch to "
            "the fallback model.",
            payload={"agent": "summarizer-prod", "from_model": "claude-large", "to_model": "claude-medium"},
        ),
        # 6: tier 2 autonomous (behaves as supervised), rejected with a note.
        dict(
            at=ago(hours=20),
            by=autopilot,
            ttl=2 * 3600,
            action_type="throttle",
            target_ref="tenant/acme-corp",
            mode="autonomous",
            reason="Cost spike: tenant acme-corp doubled its hourly token usage.",
            payload={"tenant": "acme-corp", "max_tokens_per_minute": 200000},
        ),
        # 7: tier 1 dry run left to expire.
        dict(
            at=ago(hours=27),
            by=sam,
            ttl=3600,
            action_type="create_incident",
            target_ref="incident/vector-store-latency",
            mode="dry_run",
            reason="Latency degradation on the vector store: retrieval p99 above 1.5 s for 10 min.",
            payload={"title": "Vector store retrieval latency", "severity": "sev3", "team": "retrieval"},
        ),
        # 8: tier 3 autonomous (behaves as supervised): approved by another person, executed.
        dict(
            at=ago(hours=33),
            by=sam,
            ttl=3 * 3600,
            action_type="scale_down",
            target_ref="pool_gpu-a100-batch",
            mode="autonomous",
            reason="Idle capacity: batch GPU pool at 6% utilisation for 9 hours, costing $1,150/day.",
            payload={"pool": "pool_gpu-a100-batch", "from_replicas": 12, "to_replicas": 4},
        ),
        # 9: tier 1 autonomous: executed on creation.
        dict(
            at=ago(hours=46),
            by=autopilot,
            ttl=3600,
            action_type="tag_trace",
            target_ref="trace_5c0ffee91b7d",
            mode="autonomous",
            reason="Anomalous trace: tool-call recursion depth 31 in a customer session; tagged for review.",
            payload={"trace_id": "trace_5c0ffee91b7d", "tags": ["recursion", "needs-review"], "depth": 31},
        ),
    ]
    ids: list[str | None] = [None] * len(proposals)
    steps = []

    def propose(index: int, spec: dict):
        def run():
            result = proposing.propose_action(
                spec["by"],
                proposing.Proposal(
                    action_type=spec["action_type"],
                    target_ref=spec["target_ref"],
                    reason=spec["reason"],
                    mode=spec["mode"],
                    payload=spec["payload"],
                    ttl_seconds=spec["ttl"],
                ),
                spec["at"],
                settings=proposing.ProposalSettings(ttl_min_seconds=1),
            )
            ids[index] = result.action.id

        return run

    for index, spec in enumerate(proposals):
        steps.append((spec["at"], propose(index, spec)))

    def later(index: int, **delta):
        return proposals[index]["at"] + timedelta(**delta)

    def approve(index: int, actor, when: datetime, note: str, confirm: bool = False):
        confirmation = proposals[index]["target_ref"][:8] if confirm else None
        steps.append(
            (when, lambda: deciding.approve_action(actor, ids[index], when, note=note, confirmation=confirmation))
        )

    approve(
        4,
        operator,
        later(4, minutes=18),
        "Eval regression confirmed on the canary dashboard; rolling back.",
        confirm=True,
    )
    approve(5, operator, later(5, minutes=6), "Fallback verified in staging.")
    steps.append(
        (
            later(5, minutes=9),
            lambda: deciding.mark_executed(
                sam,
                ids[5],
                later(5, minutes=9),
                outcome={
                    "status": "succeeded",
                    "runner": "fleet-runner-2",
                    "duration_ms": 4120,
                    "error_rate_after": 0.004,
                },
            ),
        )
    )
    steps.append(
        (
            later(6, minutes=25),
            lambda: deciding.reject_action(
                sam,
                ids[6],
                later(6, minutes=25),
                note="Acme is in a planned load test until 18:00 UTC; their contract covers the spend.",
            ),
        )
    )
    approve(
        8, operator, later(8, minutes=40), "Utilisation confirmed; batch queue is empty until Monday.", confirm=True
    )
    steps.append(
        (
            later(8, minutes=52),
            lambda: deciding.mark_executed(
                sam,
                ids[8],
                later(8, minutes=52),
                outcome={
                    "status": "succeeded",
                    "runner": "fleet-runner-1",
                    "replicas_now": 4,
                    "estimated_savings_usd_per_day": 760,
                },
            ),
        )
    )
    # The expired row flips when its TTL has passed, as the sweep would have done.
    steps.append(
        (
            later(7, hours=1, minutes=2),
            lambda: expiry.expire_due(
                later(7, hours=1, minutes=2), workspace_id=demo.workspace.id, request_id=DEMO_REQUEST_ID
            ),
        )
    )

    for _, run in sorted(steps, key=lambda item: item[0]):
        run()
    return [action_id for action_id in ids if action_id is not None]
