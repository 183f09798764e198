"""Deciding from the page: approve, reject, mark executed, tier 3 typed confirmation, expiry, rate limit."""

from __future__ import annotations

import re
import time
from datetime import UTC
from datetime import datetime
from http import HTTPStatus

import pytest
from playwright.sync_api import expect

from e2e.pages import TRANSITION_LABELS
from e2e.pages import QueuePage

pytestmark = pytest.mark.e2e

DIALOG_BUTTON = {"approve": "Approve", "reject": "Reject", "mark-executed": "Mark executed"}


def decide(queue: QueuePage, action_id: str, transition: str, note: str | None = None, outcome: str | None = None):
    """Click the row button, fill the dialog, confirm."""
    queue.row_button(action_id, transition).click()
    dialog = queue.transition_dialog
    expect(dialog).to_be_visible()
    if note is not None:
        dialog.locator("#transition-note").fill(note)
    if outcome is not None:
        dialog.locator("#transition-outcome").fill(outcome)
    dialog.get_by_role("button", name=DIALOG_BUTTON[transition], exact=True).click()
    return dialog


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_approve_reject_and_mark_executed_update_the_rows_in_place(queue):
    # Approve a tier 2 row, with a note.
    tier2 = queue.find_action(status="proposed", tier=2, mode="supervised")
    dialog = decide(queue, tier2["id"], "approve", note="Spend confirmed on the cost dashboard.")
    expect(dialog).to_be_hidden()
    expect(queue.row_status(tier2["id"])).to_have_text("Approved")
    approved = queue.action(tier2["id"])
    assert approved["status"] == "approved"
    assert approved["approver_note"] == "Spend confirmed on the cost dashboard."
    expect(queue.row_buttons(tier2["id"])).to_have_text([TRANSITION_LABELS[t] for t in approved["allowed_transitions"]])
    expect(queue.status_message).to_have_text(f"Approved: {tier2['action_type']} on {tier2['target_ref']}.")
    summary = queue.summary()
    expect(queue.tab_count("approved")).to_have_text(str(summary["by_status"]["approved"]))
    expect(queue.kpi("pending_approval")).to_have_text(str(summary["pending_approval"]))

    # Reject the dry run with a note; the note shows in the drawer.
    dry_run = queue.find_action(status="proposed", mode="dry_run")
    note = "Blast radius unclear: streaming is on for every enterprise tenant."
    decide(queue, dry_run["id"], "reject", note=note)
    expect(queue.row_status(dry_run["id"])).to_have_text("Rejected")
    expect(queue.row_buttons(dry_run["id"])).to_have_count(0)
    queue.row(dry_run["id"]).locator(".col-reason").click()
    expect(queue.drawer).to_be_visible()
    expect(queue.drawer.locator('[data-field="rejection_note"]')).to_have_text(note, use_inner_text=True)
    queue.page.keyboard.press("Escape")
    expect(queue.drawer).to_be_hidden()

    # Mark the approved row executed: the outcome must be a JSON object; Executed today goes up.
    before = queue.summary()["executed_today"]
    expect(queue.kpi("executed_today")).to_have_text(str(before))
    queue.row_button(tier2["id"], "mark-executed").click()
    dialog = queue.transition_dialog
    confirm = dialog.get_by_role("button", name="Mark executed", exact=True)
    for not_an_object in ("[1, 2]", '"done"', "{status: ok}"):
        dialog.locator("#transition-outcome").fill(not_an_object)
        expect(confirm).to_be_disabled()
        expect(dialog.locator("#transition-outcome-problem")).not_to_be_empty()
    dialog.locator("#transition-outcome").fill('{"status": "succeeded", "runner": "e2e-runner"}')
    expect(confirm).to_be_enabled()
    confirm.click()
    expect(dialog).to_be_hidden()
    expect(queue.row_status(tier2["id"])).to_have_text("Executed")
    expect(queue.kpi("executed_today")).to_have_text(str(before + 1))
    assert queue.action(tier2["id"])["outcome"] == {"status": "succeeded", "runner": "e2e-runner"}


def test_tier3_approval_needs_the_exact_prefix_and_a_reason(queue, artifacts_dir):
    tier3 = queue.find_action(status="proposed", tier=3)
    assert tier3["requires_confirmation"]
    target = tier3["target_ref"]
    prefix = target[:8]
    assert len(target) > 8 and prefix.swapcase() != prefix, "the demo ref exercises both rules"

    queue.row_button(tier3["id"], "approve").click()
    dialog = queue.confirm_dialog
    expect(dialog).to_be_visible()
    expect(queue.transition_dialog).to_be_hidden()
    expect(dialog.locator(".confirm-text")).to_have_text(prefix)
    typed = dialog.locator('[data-field="typed"]')
    reason = dialog.locator('[data-field="reason"]')
    confirm = dialog.locator('[data-role="confirm"]')

    expect(confirm).to_be_disabled()  # nothing typed, no reason
    reason.fill("Runaway loop confirmed in the run's trace.")
    expect(confirm).to_be_disabled()  # still nothing typed
    for wrong in (prefix[:-1], prefix[:-1] + "#", prefix.swapcase(), prefix.upper(), f" {prefix}", target):
        typed.fill(wrong)
        expect(confirm).to_be_disabled()
    typed.fill(prefix)
    for blank in ("", "   ", "\n\t"):
        reason.fill(blank)
        expect(confirm).to_be_disabled()
    reason.fill("Runaway loop confirmed in the run's trace.")
    expect(confirm).to_be_enabled()
    queue.page.screenshot(path=artifacts_dir / "tier3-dialog.png")

    confirm.click()
    expect(dialog).to_be_hidden()
    expect(queue.row_status(tier3["id"])).to_have_text("Approved")
    approved = queue.action(tier3["id"])
    assert approved["status"] == "approved"
    assert approved["approver_note"] == "Runaway loop confirmed in the run's trace."
    assert approved["approved_by"]["id"] == queue.api_get("/api/v1/auth/me")["user"]["id"]


def test_an_action_past_its_ttl_shows_expired_when_approval_is_tried(queue, page_problems):
    page_problems.expect_http_errors(HTTPStatus.BAD_REQUEST)
    response = queue.api_post(
        "/api/v1/deployments/actions",
        {
            "action_type": "throttle",
            "target_ref": "model/e2e-short-window",
            "reason": "e2e: a two-second approval window",
            "ttl_seconds": 2,
        },
    )
    assert response.status == HTTPStatus.CREATED, response.text()
    proposed = response.json()

    queue.page.reload()
    expect(queue.row_button(proposed["id"], "approve")).to_be_visible()
    # Past the window (the API shows whole seconds, so one more for the fraction).
    remaining = (_parse_time(proposed["expires_at"]) - datetime.now(UTC)).total_seconds()
    time.sleep(max(0.0, remaining) + 1.0)

    dialog = decide(queue, proposed["id"], "approve")
    expect(dialog).to_be_hidden()
    expect(queue.error_message).to_contain_text("approval window")
    expect(queue.error_message).to_contain_text("now Expired")
    expect(queue.row_status(proposed["id"])).to_have_text("Expired")
    expect(queue.row_buttons(proposed["id"])).to_have_count(0)
    assert queue.action(proposed["id"])["status"] == "expired"


def test_when_the_network_is_down_the_dialog_says_so_and_a_retry_works(queue, page_problems):
    page_problems.expect_failed_requests()
    dry_run = queue.find_action(status="proposed", mode="dry_run")
    queue.page.route("**/reject", lambda route: route.abort("internetdisconnected"))

    dialog = decide(queue, dry_run["id"], "reject", note="Not while the flag is being migrated.")
    expect(dialog.locator(".dialog-error")).to_contain_text("Cannot reach the server, so nothing was decided")
    expect(queue.row_status(dry_run["id"])).to_have_text("Proposed")

    queue.page.unroute("**/reject")
    dialog.get_by_role("button", name="Reject", exact=True).click()
    expect(dialog).to_be_hidden()
    expect(queue.row_status(dry_run["id"])).to_have_text("Rejected")
    assert queue.action(dry_run["id"])["rejection_note"] == "Not while the flag is being migrated."


def test_over_the_rate_limit_the_page_says_how_long_to_wait_and_keeps_working(
    browser, browser_context_args, rate_limited_server, page_problems
):
    context = browser.new_context(**{**browser_context_args, "base_url": rate_limited_server.url})
    page = context.new_page()
    page_problems.watch(page)
    page_problems.expect_http_errors(HTTPStatus.TOO_MANY_REQUESTS)
    try:
        queue = QueuePage(page).demo_login()
        tier2 = queue.find_action(status="proposed", tier=2, mode="supervised")
        dry_run = queue.find_action(status="proposed", mode="dry_run")
        approved = queue.find_action(status="approved")
        tier3 = queue.find_action(status="proposed", tier=3)

        # The bucket holds three transitions a minute.
        decide(queue, tier2["id"], "approve")
        expect(queue.row_status(tier2["id"])).to_have_text("Approved")
        decide(queue, dry_run["id"], "reject", note="Not now.")
        expect(queue.row_status(dry_run["id"])).to_have_text("Rejected")
        decide(queue, approved["id"], "mark-executed")
        expect(queue.row_status(approved["id"])).to_have_text("Executed")

        dialog = decide(queue, tier3["id"], "reject", note="Fourth decision inside the minute.")
        problem = dialog.locator(".dialog-error")
        expect(problem).to_have_text(re.compile(r"Wait \d+ seconds?, then try again"))
        seconds = int(re.search(r"Wait (\d+) second", problem.inner_text()).group(1))
        assert 1 <= seconds <= 60
        expect(dialog.locator("#transition-note")).to_have_value("Fourth decision inside the minute.")

        # Nothing broke: the row is unchanged and the page still works.
        dialog.get_by_role("button", name="Cancel").click()
        expect(dialog).to_be_hidden()
        expect(queue.row_status(tier3["id"])).to_have_text("Proposed")
        expect(queue.row_buttons(tier3["id"])).to_have_text(["Approve", "Reject"])
        assert queue.action(tier3["id"])["status"] == "proposed"
        summary = queue.summary()
        queue.tab("executed").click()
        expect(queue.rows).to_have_count(summary["by_status"]["executed"])
        queue.rows.first.locator(".col-reason").click()
        expect(queue.drawer.locator(".timeline-item").first).to_be_visible()
        page.keyboard.press("Escape")
        expect(queue.drawer).to_be_hidden()
    finally:
        context.close()
