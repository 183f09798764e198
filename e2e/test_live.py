"""live.md §6: the page follows the event stream; another user's decision shows within 2 s, no reload."""

from __future__ import annotations

import json
import urllib.request

from playwright.sync_api import expect

from e2e.pages import QueuePage
from e2e.test_decisions import DIALOG_BUTTON

WITHIN = 2_000  # ms


def _as_member(app_server, token: str, method: str, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        app_server.url + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_a_decision_by_another_user_shows_within_two_seconds_with_the_drawer_open(page, app_server, mint_session):
    page.set_viewport_size({"width": 1280, "height": 480})
    queue = QueuePage(page).demo_login()
    freshness = page.locator(".freshness")
    expect(freshness).to_have_text("Live", timeout=5_000)
    me = queue.api_get("/api/v1/auth/me")
    sam = next(m for m in queue.api_get("/api/v1/members")["items"] if m["name"] == "Sam Okafor")
    token, _ = mint_session(sam["id"], me["workspace"]["id"])
    action = next(a for a in queue.actions("proposed") if a["tier"] == 2 and a["mode"] != "dry_run")
    before = queue.summary()
    queue.row(action["id"]).locator(".col-reason").click()
    expect(queue.drawer).to_be_visible()
    page.evaluate("window.__notReloaded = true; window.scrollTo(0, 120)")
    scrolled = page.evaluate("window.scrollY")

    _as_member(app_server, token, "POST", f"/api/v1/deployments/actions/{action['id']}/approve", {})

    expect(queue.row_status(action["id"])).to_have_text("Approved", timeout=WITHIN)
    expect(queue.drawer.locator(".timeline-item[data-event-type='approved']")).to_have_count(1, timeout=WITHIN)
    expect(queue.drawer).to_be_visible()
    expect(queue.tab_count("approved")).to_have_text(str(before["by_status"]["approved"] + 1), timeout=WITHIN)
    expect(queue.kpi("proposed")).to_have_text(str(before["proposed"] - 1), timeout=WITHIN)
    expect(freshness).to_have_text("Live")
    assert page.evaluate("window.__notReloaded === true")
    assert page.evaluate("window.scrollY") == scrolled

    # A proposal by someone else appears too, on top, with no reload.
    proposed = _as_member(
        app_server,
        token,
        "POST",
        "/api/v1/deployments/actions",
        {"action_type": "throttle", "target_ref": "model/e2e-live", "reason": "e2e: live proposal"},
    )
    expect(queue.row(proposed["id"])).to_be_visible(timeout=WITHIN)
    assert queue.row_ids()[0] == proposed["id"]
    expect(queue.tab_count("proposed")).to_have_text(str(before["by_status"]["proposed"]), timeout=WITHIN)
    assert page.evaluate("window.__notReloaded === true")


def test_a_decision_on_a_stale_view_answers_412_and_shows_the_action_as_it_is(page, app_server, mint_session,
                                                                               page_problems):  # fmt: skip
    """The page sends If-Match: with the stream cut, a colleague's decision leaves the row stale."""
    page_problems.expect_http_errors(503, 412)
    page.route("**/api/v1/events*", lambda route: route.fulfill(status=503, body="{}"))
    queue = QueuePage(page).demo_login()
    me = queue.api_get("/api/v1/auth/me")
    sam = next(m for m in queue.api_get("/api/v1/members")["items"] if m["name"] == "Sam Okafor")
    token, _ = mint_session(sam["id"], me["workspace"]["id"])
    action = next(a for a in queue.actions("proposed") if a["tier"] == 2 and a["mode"] != "dry_run")
    expect(queue.row_button(action["id"], "reject")).to_be_visible()
    _as_member(app_server, token, "POST", f"/api/v1/deployments/actions/{action['id']}/approve", {})

    queue.row_button(action["id"], "reject").click()
    queue.transition_dialog.get_by_role("button", name=DIALOG_BUTTON["reject"], exact=True).click()

    expect(queue.error_message).to_contain_text("someone changed this action since you opened it")
    expect(queue.row_status(action["id"])).to_have_text("Approved")
    assert queue.action(action["id"])["status"] == "approved"
