"""A compiled dumper gives exactly what its marshmallow schema's dump gives (audittrail.schemas.compiled)."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from types import SimpleNamespace

import pytest

from audittrail.schemas import ActionDetailSchema
from audittrail.schemas import ActionListSchema
from audittrail.schemas import ActionSchema
from audittrail.schemas import EventSchema
from audittrail.schemas import SummarySchema
from audittrail.schemas.compiled import dumper
from audittrail.services.querying import ActionSnapshot
from audittrail.services.querying import ApprovalRef
from audittrail.services.querying import UserRef

AT = datetime(2026, 11, 30, 1, 2, 3, 456789, tzinfo=UTC)
POLICY = {"approvals_required": 2, "approver_roles": ["approver", "admin"], "allow_self_approval": False}


def snapshot(**changes) -> ActionSnapshot:
    fields = dict(
        id="act_" + "a" * 24,
        workspace_id="ws_" + "b" * 24,
        tier=3,
        action_type="kill_run",
        target_ref="run_8f3a2c91d4e7",
        reason="Runaway: 1,800 tool calls",
        mode="supervised",
        status="approved",
        payload={"nested": {"list": [1, 2.5, None, "ü"]}},
        outcome=None,
        approver_note="ok",
        rejection_note=None,
        ttl_seconds=3600,
        proposed_at=AT,
        expires_at=AT,
        approved_at=AT,
        rejected_at=None,
        executed_at=None,
        expired_at=None,
        proposed_by=UserRef("usr_1", "Agent"),
        approved_by=UserRef("usr_2", "Sam"),
        rejected_by=None,
        executed_by=None,
        requires_confirmation=True,
        requires_second_approver=True,
        confirmation_text="run_8f3a",
        policy=POLICY,
        approvals_required=2,
        approvals_received=2,
        approvals=[ApprovalRef(UserRef("usr_2", "Sam"), AT, None), ApprovalRef(UserRef("usr_3", "Ada"), AT, "yes")],
        allowed_transitions=["reject", "mark_executed"],
        version=4,
        digest="sha256:" + "0" * 64,
        approval_receipt="a.b.c",
        run_id="run_8f3a2c91d4e7",
    )
    fields.update(changes)
    return ActionSnapshot(**fields)


def event(seq: int, **changes):
    fields = dict(
        seq=seq,
        type="approved",
        actor_user_id="usr_2",
        actor_name="Sam",
        actor_kind="user",
        actor_api_key_id=None,
        at=AT,
        request_id=None,
        data='{"note":null,"approvers":[{"id":"usr_2"}]}',
    )
    fields.update(changes)
    return SimpleNamespace(**fields)


SNAPSHOTS = [
    snapshot(),
    snapshot(status="proposed", approved_at=None, approved_by=None, approvals=[], approval_receipt=None, run_id=None),
    snapshot(status="executed", outcome={"ok": True}, executed_at=AT, executed_by=UserRef("usr_9", "Runner")),
    snapshot(status="rejected", rejected_at=AT, rejected_by=UserRef("usr_4", "Vet"), rejection_note="no", payload={}),
]


@pytest.mark.parametrize("item", SNAPSHOTS, ids=["approved", "proposed", "executed", "rejected"])
def test_action(item):
    assert dumper(ActionSchema)(item) == ActionSchema().dump(item)


def test_detail_with_events():
    item = snapshot(events=[event(1, type="proposed", actor_kind="api_key", actor_api_key_id="key_1"), event(2)])
    assert dumper(ActionDetailSchema)(item) == ActionDetailSchema().dump(item)
    assert dumper(EventSchema)(event(3)) == EventSchema().dump(event(3))


def test_list_page():
    page = {"items": SNAPSHOTS, "next_cursor": "abc"}
    assert dumper(ActionListSchema)(page) == ActionListSchema().dump(page)
    empty = {"items": [], "next_cursor": None}
    assert dumper(ActionListSchema)(empty) == ActionListSchema().dump(empty)


def test_summary():
    counts = {"proposed": 3, "approved": 1, "executed": 4, "rejected": 0, "expired": 2, "all": 10}
    summary = {"proposed": 3, "pending_approval": 2, "executed_today": 1, "rejected_today": 0, "by_status": counts}
    summary |= {"tz": "Europe/Paris", "as_of": AT}
    assert dumper(SummarySchema)(summary) == SummarySchema().dump(summary)
