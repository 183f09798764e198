"""/settings (issue 9): an admin changes roles and the approval policy; the queue follows the server.

Sam Okafor (an approver in the demo workspace) is signed in in a second browser context, with a
session minted for him (see `signed_in_as` in conftest.py), so that one test sees both sides.
"""

from __future__ import annotations

from http import HTTPStatus

import pytest
from playwright.sync_api import expect

from e2e.pages import TRANSITION_LABELS
from e2e.pages import QueuePage
from e2e.settings_page import SettingsPage
from e2e.test_accessibility import blocking_violations

pytestmark = pytest.mark.e2e

SAM = "Sam Okafor"
DEFAULT_TIERS = {
    "1": {"approvals_required": 1, "approver_roles": ["operator", "approver", "admin"], "allow_self_approval": True},
    "2": {"approvals_required": 1, "approver_roles": ["operator", "approver", "admin"], "allow_self_approval": True},
    "3": {"approvals_required": 1, "approver_roles": ["approver", "admin"], "allow_self_approval": False},
}


def whoami(queue: QueuePage) -> dict:
    return queue.api_get("/api/v1/auth/me")


def member_named(queue: QueuePage, name: str) -> dict:
    return next(member for member in queue.api_get("/api/v1/members")["items"] if member["name"] == name)


def member_by_id(queue: QueuePage, member_id: str) -> dict:
    return next(member for member in queue.api_get("/api/v1/members")["items"] if member["id"] == member_id)


def same_tiers(actual: dict, expected: dict) -> bool:
    """Policy tiers equal, the order of approver_roles aside."""
    return actual.keys() == expected.keys() and all(
        actual[tier]["approvals_required"] == expected[tier]["approvals_required"]
        and sorted(actual[tier]["approver_roles"]) == sorted(expected[tier]["approver_roles"])
        and actual[tier]["allow_self_approval"] == expected[tier]["allow_self_approval"]
        for tier in expected
    )


def open_queue_as(signed_in_as, member: dict, workspace_id: str) -> QueuePage:
    other = QueuePage(signed_in_as(member["id"], workspace_id))
    other.page.goto("/deployments")
    expect(other.rows.first).to_be_visible()
    return other


def approve_in_dialog(queue: QueuePage, action_id: str) -> None:
    """A tier 1 or 2 approval: the row's Approve button, then the dialog's."""
    queue.row_button(action_id, "approve").click()
    dialog = queue.transition_dialog
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Approve", exact=True).click()
    expect(dialog).to_be_hidden()


def test_admin_demotes_sam_to_operator_and_his_tier3_approve_button_disappears(queue, signed_in_as, artifacts_dir):
    me = whoami(queue)
    assert me["user"]["role"] == "admin"
    assert {"manage_members", "manage_policy"} <= set(me["capabilities"])
    sam = member_named(queue, SAM)
    assert sam["role"] == "approver"
    sam_queue = open_queue_as(signed_in_as, sam, me["workspace"]["id"])

    # A tier 3 row Sam may approve, as the server says; else one the demo operator proposes.
    tier3 = next(
        (a for a in sam_queue.actions("proposed") if a["tier"] == 3 and "approve" in a["allowed_transitions"]), None
    )
    if tier3 is None:
        tier3 = queue.propose(action_type="kill_run", target_ref="run_e2e5am0dem0te", reason="e2e: runaway run")
        sam_queue.page.reload()
    expect(sam_queue.row_button(tier3["id"], "approve")).to_be_visible()

    settings = SettingsPage(queue.page).open()
    expect(settings.member_rows).to_have_count(len(queue.api_get("/api/v1/members")["items"]))
    select = settings.role_select(sam["id"])
    expect(select).to_have_value("approver")
    expect(settings.page.get_by_label(f"Role of {SAM}")).to_be_visible()
    select.select_option("operator")
    expect(settings.status_message).to_have_text(f"{SAM} is now Operator.")
    expect(settings.member_row(sam["id"])).to_have_attribute("data-role", "operator")
    expect(select).to_have_value("operator")
    assert member_by_id(queue, sam["id"])["role"] == "operator"

    # Sam's queue, loaded again: no Approve on that tier 3 row, and the buttons are the server's list.
    sam_queue.page.reload()
    expect(sam_queue.row(tier3["id"])).to_be_visible()
    expect(sam_queue.row_button(tier3["id"], "approve")).to_have_count(0)
    allowed = sam_queue.action(tier3["id"])["allowed_transitions"]
    assert "approve" not in allowed
    expect(sam_queue.row_buttons(tier3["id"])).to_have_text([TRANSITION_LABELS[t] for t in allowed])

    # On /settings Sam sees everything read-only.
    sam_settings = SettingsPage(sam_queue.page).open()
    expect(sam_settings.role_text(sam["id"])).to_have_text("Operator")
    expect(sam_settings.role_selects).to_have_count(0)
    expect(sam_settings.policy_form).to_be_hidden()
    expect(sam_settings.policy_read_only).to_be_visible()
    expect(sam_settings.read_only_fact(3, "approver_roles")).to_have_text("Approver or Admin")
    expect(sam_settings.page.locator('[data-field="session-role"]')).to_have_text("Operator")


def test_demoting_the_last_admin_is_refused_with_a_readable_message(queue, page_problems):
    page_problems.expect_http_errors(HTTPStatus.CONFLICT)
    me = whoami(queue)
    settings = SettingsPage(queue.page).open()
    select = settings.role_select(me["user"]["id"])
    expect(select).to_have_value("admin")

    select.select_option("approver")
    name = me["user"]["name"]
    expect(settings.error_message).to_have_text(
        f"{name} is the last admin of this workspace, so they stay Admin. Make another member Admin first."
    )
    expect(select).to_have_value("admin")
    expect(settings.status_message).to_be_empty()
    assert member_by_id(queue, me["user"]["id"])["role"] == "admin"


def test_tier2_needing_two_approvals_waits_for_a_second_person(queue, signed_in_as, artifacts_dir):
    me = whoami(queue)
    settings = SettingsPage(queue.page).open()
    expect(settings.policy_updated).to_have_text("Never changed: these are the defaults.")
    expect(settings.approvals_required(2)).to_have_value("1")

    settings.approvals_required(2).fill("2")
    settings.save_policy.click()
    expect(settings.status_message).to_have_text(
        "Approval policy saved. New proposals follow it; pending ones keep the rule they were proposed under."
    )
    expect(settings.policy_updated).to_contain_text(f"by {me['user']['name']}")
    expected = {**DEFAULT_TIERS, "2": {**DEFAULT_TIERS["2"], "approvals_required": 2}}
    policy = queue.api_get("/api/v1/policy")
    assert same_tiers(policy["tiers"], expected), policy
    assert policy["updated_by"]["id"] == me["user"]["id"]

    # The rule is fixed at proposal: propose after the change.
    action = queue.propose(action_type="throttle", target_ref="model/e2e-two-approvals", reason="e2e: two people")
    assert (action["approvals_required"], action["approvals_received"]) == (2, 0)
    queue.page.goto("/deployments")
    progress = queue.row(action["id"]).locator('[data-field="approval-progress"]')
    expect(progress).to_have_text("0 of 2 approvals")

    approve_in_dialog(queue, action["id"])
    subject = f"{action['action_type']} on {action['target_ref']}"
    expect(queue.status_message).to_have_text(f"Approval recorded (1 of 2 approvals): {subject}.")
    expect(queue.row_status(action["id"])).to_have_text("Proposed")
    expect(progress.locator(".approval-count")).to_have_text("1 of 2 approvals")
    expect(progress.locator(".approval-names")).to_have_text(me["user"]["name"])
    after_one = queue.action(action["id"])
    assert after_one["status"] == "proposed"
    assert after_one["approvals_received"] == 1
    assert [approval["user"]["id"] for approval in after_one["approvals"]] == [me["user"]["id"]]
    expect(queue.row_buttons(action["id"])).to_have_text(
        [TRANSITION_LABELS[t] for t in after_one["allowed_transitions"]]
    )
    queue.page.screenshot(path=artifacts_dir / "queue-approvals-in-progress.png")

    # The drawer: the count, who approved, and the approval_recorded event in the timeline.
    queue.row(action["id"]).locator(".col-reason").click()
    approvals = queue.drawer.locator('[data-section="approvals"]')
    expect(approvals.locator('[data-field="approval-progress"]')).to_have_text("1 of 2 approvals")
    expect(approvals.locator(".approval-name")).to_have_text([me["user"]["name"]])
    recorded = queue.drawer.locator('.timeline-item[data-event-type="approval_recorded"]')
    expect(recorded.locator(".timeline-line strong")).to_have_text("Approval recorded")
    queue.page.screenshot(path=artifacts_dir / "drawer-approvals-in-progress.png")
    queue.page.keyboard.press("Escape")
    expect(queue.drawer).to_be_hidden()

    # Sam, in his own browser, gives the second approval: the action is approved.
    sam = member_named(queue, SAM)
    sam_queue = open_queue_as(signed_in_as, sam, me["workspace"]["id"])
    expect(sam_queue.row(action["id"]).locator(".approval-count")).to_have_text("1 of 2 approvals")
    approve_in_dialog(sam_queue, action["id"])
    expect(sam_queue.row_status(action["id"])).to_have_text("Approved")
    expect(sam_queue.status_message).to_have_text(f"Approved: {subject}.")
    expect(sam_queue.row(action["id"]).locator('[data-field="approval-progress"]')).to_be_hidden()
    approved = queue.action(action["id"])
    assert approved["status"] == "approved"
    assert approved["approvals_received"] == 2
    assert approved["approved_by"]["id"] == sam["id"]
    assert [approval["user"]["id"] for approval in approved["approvals"]] == [me["user"]["id"], sam["id"]]

    sam_queue.row(action["id"]).locator(".col-reason").click()
    expect(sam_queue.drawer.locator('[data-section="approvals"] .approval-name')).to_have_text(
        [me["user"]["name"], SAM]
    )


def test_an_invalid_policy_is_refused_with_each_error_next_to_its_field(queue, page_problems):
    page_problems.expect_http_errors(HTTPStatus.UNPROCESSABLE_ENTITY)
    settings = SettingsPage(queue.page).open()
    expect(settings.self_approval(3)).to_be_disabled()
    expect(settings.self_approval(3)).not_to_be_checked()

    settings.approvals_required(1).fill("9")
    for role in ("operator", "approver", "admin"):
        settings.approver_role(2, role).uncheck()
    settings.save_policy.click()
    expect(settings.policy_error).to_have_text("The policy was not saved: correct the marked fields.")
    expect(settings.field_error(1, "approvals_required")).not_to_be_empty()
    expect(settings.approvals_required(1)).to_have_attribute("aria-invalid", "true")
    expect(settings.approvals_required(1)).to_be_focused()
    expect(settings.field_error(2, "approver_roles")).not_to_be_empty()
    expect(settings.approver_role(2, "operator")).to_have_attribute("aria-invalid", "true")
    assert same_tiers(queue.api_get("/api/v1/policy")["tiers"], DEFAULT_TIERS)

    # The page never decides what is valid: forced on, tier 3 self-approval is refused by the server.
    settings.approvals_required(1).fill("1")
    settings.approver_role(2, "admin").check()
    settings.self_approval(3).evaluate("(box) => box.removeAttribute('disabled')")
    settings.self_approval(3).check()
    settings.save_policy.click()
    expect(settings.field_error(3, "allow_self_approval")).not_to_be_empty()
    expect(settings.field_error(1, "approvals_required")).to_be_empty()
    expect(settings.approvals_required(1)).to_have_attribute("aria-invalid", "false")
    assert same_tiers(queue.api_get("/api/v1/policy")["tiers"], DEFAULT_TIERS)

    # Discard puts the saved policy back in the form.
    queue.page.locator('[data-role="discard-policy"]').click()
    expect(settings.self_approval(3)).not_to_be_checked()
    expect(settings.approver_role(2, "admin")).to_be_checked()
    expect(settings.field_error(3, "allow_self_approval")).to_be_empty()
    expect(settings.policy_error).to_be_empty()


@pytest.mark.parametrize("color_scheme", ["light", "dark"])
def test_axe_finds_no_serious_violation_on_settings(queue, signed_in_as, axe_source, artifacts_dir, color_scheme):
    found = {}
    page = queue.page
    page.emulate_media(color_scheme=color_scheme)
    settings = SettingsPage(page).open()
    expect(settings.policy_form).to_be_visible()
    expect(settings.role_selects.first).to_be_visible()
    found["admin"] = blocking_violations(page, axe_source)
    page.screenshot(path=artifacts_dir / f"settings-admin-{color_scheme}.png", full_page=True)

    me = whoami(queue)
    sam_page = signed_in_as(member_named(queue, SAM)["id"], me["workspace"]["id"])
    sam_page.emulate_media(color_scheme=color_scheme)
    sam_settings = SettingsPage(sam_page).open()
    expect(sam_settings.policy_read_only).to_be_visible()
    found["read-only"] = blocking_violations(sam_page, axe_source)
    sam_page.screenshot(path=artifacts_dir / f"settings-read-only-{color_scheme}.png", full_page=True)

    problems = {
        view: "\n".join(f"{v['impact']}: {v['id']} ({v['help']}) at {v['nodes']}" for v in violations)
        for view, violations in found.items()
        if violations
    }
    assert not problems, "\n".join(f"[{view}]\n{text}" for view, text in problems.items())
