"""Page objects for the e2e suite: the /deployments page and the API calls the tests compare it with."""

from __future__ import annotations

import re
from http import HTTPStatus

from playwright.sync_api import Locator
from playwright.sync_api import Page
from playwright.sync_api import expect

QUEUE_URL = re.compile(r"/deployments(\?[^#]*)?(#.*)?$")
TRANSITION_LABELS = {"approve": "Approve", "reject": "Reject", "mark-executed": "Mark executed"}
STATUS_LABELS = {
    "proposed": "Proposed",
    "approved": "Approved",
    "executed": "Executed",
    "rejected": "Rejected",
    "expired": "Expired",
}
PAGE_SIZE = 25  # static/js/stores/queue.js
TABS = ["all", "proposed", "approved", "executed", "rejected", "expired"]
KPIS = ["proposed", "pending_approval", "executed_today", "rejected_today"]


class QueuePage:
    """The deployment actions page, as an operator sees it."""

    def __init__(self, page: Page):
        self.page = page

    # ---- signing in

    def demo_login(self) -> QueuePage:
        self.page.goto("/login")
        self.page.get_by_role("button", name="Try the demo").click()
        expect(self.page).to_have_url(QUEUE_URL)
        expect(self.rows.first).to_be_visible()
        return self

    # ---- parts of the page

    @property
    def rows(self) -> Locator:
        return self.page.locator("#actions-panel tbody tr.action-row")

    def row(self, action_id: str) -> Locator:
        return self.page.locator(f'#actions-panel tr.action-row[data-action-id="{action_id}"]')

    def row_status(self, action_id: str) -> Locator:
        return self.row(action_id).locator(".col-status .pill")

    def row_buttons(self, action_id: str) -> Locator:
        return self.row(action_id).locator(".row-actions button")

    def row_button(self, action_id: str, transition: str) -> Locator:
        return self.row(action_id).locator(f'button[data-transition="{transition}"]')

    def tab(self, status: str) -> Locator:
        return self.page.locator(f'[role="tab"][data-status="{status}"]')

    def tab_count(self, status: str) -> Locator:
        return self.tab(status).locator(".tab-count")

    def kpi(self, key: str) -> Locator:
        return self.page.locator(f'[data-kpi="{key}"] .kpi-value')

    @property
    def drawer(self) -> Locator:
        return self.page.locator("#action-drawer")

    @property
    def transition_dialog(self) -> Locator:
        return self.page.locator("#transition-dialog")

    @property
    def confirm_dialog(self) -> Locator:
        return self.page.locator('[data-dialog="confirm-typed"]')

    @property
    def error_message(self) -> Locator:
        return self.page.locator("#error-message")

    @property
    def status_message(self) -> Locator:
        return self.page.locator("#status-message")

    def row_ids(self) -> list[str]:
        return self.rows.evaluate_all("rows => rows.map(row => row.dataset.actionId)")

    def focused_action_id(self) -> str | None:
        return self.page.evaluate("document.activeElement && document.activeElement.dataset.actionId || null")

    def browser_timezone(self) -> str:
        return self.page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone")

    # ---- the API, with the page's cookies

    def csrf_token(self) -> str:
        return next(c["value"] for c in self.page.context.cookies() if c["name"] == "csrf_access_token")

    def api_get(self, path: str) -> dict:
        response = self.page.request.get(path)
        assert response.status == HTTPStatus.OK, f"GET {path} → {response.status} {response.text()}"
        return response.json()

    def api_post(self, path: str, body: dict):
        return self.page.request.post(path, data=body, headers={"X-CSRF-TOKEN": self.csrf_token()})

    def actions(self, status: str | None = None) -> list[dict]:
        query = "limit=200" + (f"&status={status}" if status else "")
        return self.api_get(f"/api/v1/deployments/actions?{query}")["items"]

    def action(self, action_id: str) -> dict:
        return self.api_get(f"/api/v1/deployments/actions/{action_id}")

    def propose(self, **body) -> dict:
        response = self.api_post("/api/v1/deployments/actions", body)
        assert response.status == HTTPStatus.CREATED, response.text()
        return response.json()

    def summary(self) -> dict:
        return self.api_get(f"/api/v1/deployments/summary?tz={self.browser_timezone()}")

    def find_action(self, **fields) -> dict:
        """The first action (newest first) whose fields have these values."""
        for action in self.actions():
            if all(action[key] == value for key, value in fields.items()):
                return action
        raise AssertionError(f"no action with {fields}")
