"""The /deployments page shows the workspace's actions as the API has them."""

from __future__ import annotations

import json
import re
from http import HTTPStatus
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from e2e.conftest import BROWSER_TIMEZONE
from e2e.pages import KPIS
from e2e.pages import PAGE_SIZE
from e2e.pages import TABS
from e2e.pages import TRANSITION_LABELS
from e2e.pages import QueuePage

pytestmark = pytest.mark.e2e


def test_pages_are_served_with_a_strict_csp_and_alpine_from_node_modules(page):
    for path in ("/login", "/deployments"):
        response = page.request.get(path, max_redirects=0)
        headers = response.headers
        assert "script-src 'self'" in headers["content-security-policy"], path
        assert "unsafe" not in headers["content-security-policy"], path
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"

    without_session = page.request.get("/deployments", max_redirects=0)
    assert without_session.status == HTTPStatus.FOUND
    assert without_session.headers["location"].endswith("/login")

    for name in ("alpinejs-csp.esm.js", "alpinejs-focus.esm.js"):
        module = page.request.get(f"/static/vendor/{name}")
        assert module.status == HTTPStatus.OK
        assert module.headers["content-type"].startswith("text/javascript")
    assert page.request.get("/static/vendor/package.json").status == HTTPStatus.NOT_FOUND


def test_demo_login_lands_on_the_queue_with_ten_rows_newest_first_and_kpis_from_the_summary(page, artifacts_dir):
    summary_urls = []
    page.on("request", lambda request: summary_urls.append(request.url) if "/summary" in request.url else None)

    page.goto("/deployments")
    expect(page).to_have_url(re.compile(r"/login$"))
    queue = QueuePage(page).demo_login()

    expect(queue.rows).to_have_count(10)
    actions = queue.actions()
    assert len(actions) == 10
    assert queue.row_ids() == [action["id"] for action in actions]
    proposed_at = [action["proposed_at"] for action in actions]
    assert proposed_at == sorted(proposed_at, reverse=True)

    assert queue.browser_timezone() == BROWSER_TIMEZONE
    summary = queue.summary()
    assert summary["tz"] == BROWSER_TIMEZONE
    for key in KPIS:
        expect(queue.kpi(key)).to_have_text(str(summary[key]))
    assert any(f"tz={quote(BROWSER_TIMEZONE, safe='')}" in url for url in summary_urls), summary_urls

    page.screenshot(path=artifacts_dir / "queue.png", full_page=True)


def test_each_tab_shows_exactly_the_rows_of_its_status_and_its_count(queue):
    summary = queue.summary()
    for status in TABS:
        queue.tab(status).click()
        expect(queue.tab(status)).to_have_attribute("aria-selected", "true")
        expect(queue.page.locator("#actions-panel")).to_have_attribute("data-state", "ready")
        if status == "all":
            expect(queue.page).to_have_url(re.compile(r"/deployments$"))
        else:
            expect(queue.page).to_have_url(re.compile(rf"/deployments\?status={status}$"))

        expected = queue.actions(None if status == "all" else status)
        assert len(expected) == summary["by_status"][status]
        expect(queue.rows).to_have_count(len(expected))
        assert queue.row_ids() == [action["id"] for action in expected]
        if status != "all":
            assert set(queue.rows.evaluate_all("rows => rows.map(row => row.dataset.status)")) == {status}
        expect(queue.tab_count(status)).to_have_text(str(summary["by_status"][status]))

    # The tab is kept in the URL: a reload shows the same tab.
    queue.page.goto("/deployments?status=approved")
    expect(queue.tab("approved")).to_have_attribute("aria-selected", "true")
    expect(queue.tab("all")).to_have_attribute("aria-selected", "false")
    expect(queue.rows).to_have_count(summary["by_status"]["approved"])


def test_row_click_opens_the_drawer_with_payload_outcome_notes_timestamps_and_timeline(queue, artifacts_dir):
    executed = next(a for a in queue.actions("executed") if a["outcome"] and a["approver_note"])
    detail = queue.action(executed["id"])
    drawer = queue.drawer

    queue.row(executed["id"]).locator(".col-reason").click()
    expect(drawer).to_be_visible()
    expect(queue.page).to_have_url(re.compile(rf"#action={executed['id']}$"))
    expect(drawer.locator(".timeline-item")).to_have_count(len(detail["events"]))
    expect(drawer.locator("#drawer-title")).to_contain_text(detail["action_type"])
    expect(drawer.locator("#drawer-title")).to_contain_text(detail["target_ref"])

    assert json.loads(drawer.locator('[data-field="payload"]').inner_text()) == detail["payload"]
    assert json.loads(drawer.locator('[data-field="outcome"]').inner_text()) == detail["outcome"]
    expect(drawer.locator('[data-field="approver_note"]')).to_have_text(detail["approver_note"], use_inner_text=True)
    expect(drawer.locator('[data-field="rejection_note"]')).to_have_text("None", use_inner_text=True)

    for step, at, by in (
        ("Proposed", "proposed_at", "proposed_by"),
        ("Approved", "approved_at", "approved_by"),
        ("Executed", "executed_at", "executed_by"),
    ):
        row = drawer.locator(f'.audit-steps [data-step="{step}"]')
        expect(row.locator("time")).to_have_attribute("datetime", detail[at])
        expect(row).to_contain_text(detail[by]["name"])
    expect(drawer.locator('.audit-steps [data-step="Rejected"]')).to_have_count(0)

    timeline = drawer.locator(".timeline-item")
    assert timeline.evaluate_all("items => items.map(item => item.dataset.eventType)") == [
        event["type"] for event in detail["events"]
    ]
    for index, event in enumerate(detail["events"]):
        expect(timeline.nth(index)).to_contain_text(event["actor"]["name"])
        expect(timeline.nth(index).locator("time")).to_have_attribute("datetime", event["at"])

    queue.page.screenshot(path=artifacts_dir / "drawer.png")

    queue.page.keyboard.press("Escape")
    expect(drawer).to_be_hidden()
    expect(queue.page).to_have_url(re.compile(r"/deployments$"))
    assert queue.focused_action_id() == executed["id"]

    # A rejected row shows its rejection note; a deep link opens the drawer directly.
    rejected = next(a for a in queue.actions("rejected") if a["rejection_note"])
    queue.page.goto(f"/deployments#action={rejected['id']}")
    expect(drawer).to_be_visible()
    rejection_note = drawer.locator('[data-field="rejection_note"]')
    expect(rejection_note).to_have_text(rejected["rejection_note"], use_inner_text=True)
    expect(drawer.locator('.audit-steps [data-step="Rejected"]')).to_contain_text(rejected["rejected_by"]["name"])
    queue.page.keyboard.press("Escape")
    expect(drawer).to_be_hidden()


def test_every_row_shows_exactly_the_buttons_of_its_allowed_transitions(queue):
    actions = queue.actions()
    assert {len(action["allowed_transitions"]) for action in actions} >= {0, 1, 2}, "demo data covers no buttons to two"
    for action in actions:
        buttons = queue.row_buttons(action["id"])
        if action["allowed_transitions"]:
            expect(buttons).to_have_text([TRANSITION_LABELS[t] for t in action["allowed_transitions"]])
        else:
            expect(buttons).to_have_count(0)
        shown = buttons.evaluate_all("buttons => buttons.map(button => button.dataset.transition)")
        assert shown == action["allowed_transitions"]


def test_load_more_pages_through_next_cursor(queue):
    for number in range(PAGE_SIZE + 1 - 10):
        queue.propose(action_type="alert", target_ref=f"pager/e2e-{number:02}", reason="e2e: paging")
    actions = queue.actions()
    assert len(actions) == PAGE_SIZE + 1

    queue.page.reload()
    expect(queue.rows).to_have_count(PAGE_SIZE)
    assert queue.row_ids() == [action["id"] for action in actions[:PAGE_SIZE]]
    load_more = queue.page.get_by_role("button", name="Load more")
    load_more.click()
    expect(queue.rows).to_have_count(PAGE_SIZE + 1)
    assert queue.row_ids() == [action["id"] for action in actions]
    expect(load_more).to_be_hidden()


def test_without_the_stream_the_queue_refreshes_itself_every_15_seconds_while_no_dialog_is_open(page, page_problems):
    """The fallback (live.md §6): the stream refused, the page polls as it did before it followed the stream."""
    page_problems.expect_http_errors(503)
    page.route("**/api/v1/events*", lambda route: route.fulfill(status=503, body="{}"))
    page.clock.install()
    queue = QueuePage(page).demo_login()

    first = queue.propose(action_type="throttle", target_ref="model/e2e-refresh-1", reason="e2e: refresh")
    expect(queue.row(first["id"])).to_have_count(0)
    page.clock.fast_forward(16_000)
    expect(queue.row(first["id"])).to_be_visible()
    expect(queue.kpi("proposed")).to_have_text(str(queue.summary()["proposed"]))

    # Nothing moves under an open dialog.
    queue.row_button(first["id"], "reject").click()
    expect(queue.transition_dialog).to_be_visible()
    second = queue.propose(action_type="throttle", target_ref="model/e2e-refresh-2", reason="e2e: refresh")
    page.clock.fast_forward(31_000)
    page.wait_for_timeout(500)
    expect(queue.row(second["id"])).to_have_count(0)
    page.keyboard.press("Escape")
    expect(queue.transition_dialog).to_be_hidden()
    page.clock.fast_forward(16_000)
    expect(queue.row(second["id"])).to_be_visible()


def _focused(page, attribute: str) -> str | None:
    return page.evaluate(f"document.activeElement.getAttribute({attribute!r})")


def test_keyboard_only_tabs_rows_drawer_and_dialog(queue):
    page = queue.page
    summary = queue.summary()

    # Tab reaches the tab list (one tab stop: the selected tab).
    for _ in range(12):
        page.keyboard.press("Tab")
        if _focused(page, "role") == "tab":
            break
    assert _focused(page, "data-status") == "all"

    for key, status in (("ArrowRight", "proposed"), ("End", "expired"), ("Home", "all"), ("ArrowLeft", "expired")):
        page.keyboard.press(key)
        assert _focused(page, "data-status") == status, key
        expect(queue.tab(status)).to_have_attribute("aria-selected", "true")
        expect(queue.tab(status)).to_have_attribute("tabindex", "0")
        expect(queue.rows).to_have_count(summary["by_status"][status])
    page.keyboard.press("ArrowRight")
    assert _focused(page, "data-status") == "all"
    expect(queue.rows).to_have_count(10)

    # The next tab stop is the first row; Enter opens its drawer, Escape brings focus back.
    page.keyboard.press("Tab")
    first_id = queue.row_ids()[0]
    assert queue.focused_action_id() == first_id
    page.keyboard.press("Enter")
    expect(queue.drawer).to_be_visible()
    expect(queue.drawer.locator("#drawer-title")).to_be_focused()
    page.keyboard.press("Escape")
    expect(queue.drawer).to_be_hidden()
    assert queue.focused_action_id() == first_id

    # Enter on a row button opens its dialog, not the drawer; Escape returns to the button.
    first = queue.action(first_id)
    assert first["allowed_transitions"], "the newest demo row is undecided"
    page.keyboard.press("Tab")
    assert _focused(page, "data-transition") == first["allowed_transitions"][0]
    page.keyboard.press("Enter")
    dialog = queue.confirm_dialog if first["requires_confirmation"] else queue.transition_dialog
    expect(dialog).to_be_visible()
    expect(queue.drawer).to_be_hidden()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(queue.row_button(first_id, first["allowed_transitions"][0])).to_be_focused()
