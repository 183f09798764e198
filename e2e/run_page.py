"""The DAG viewer (/runs/{id}) as an operator sees it: the graph, the node menu, the dialogs."""

from __future__ import annotations

from playwright.sync_api import Locator
from playwright.sync_api import Page
from playwright.sync_api import expect

RUNAWAY_RUN = "run_8f3a2c91d4e7"


class RunPage:
    def __init__(self, page: Page):
        self.page = page

    def open(self, run_id: str = RUNAWAY_RUN) -> RunPage:
        self.page.goto(f"/runs/{run_id}")
        expect(self.page.locator(".graph-panel")).to_have_attribute("data-state", "drawn", timeout=20_000)
        return self

    def node(self, node_id: str) -> Locator:
        return self.page.locator(f'.graph-node[data-node-id="{node_id}"]')

    @property
    def menu(self) -> Locator:
        return self.page.locator('[data-menu="node-actions"]')

    def menu_item(self, action_type: str) -> Locator:
        return self.menu.locator(f'[role="menuitem"][data-action-type="{action_type}"]')

    @property
    def confirm_dialog(self) -> Locator:
        return self.page.locator('[data-dialog="confirm-typed"]')

    @property
    def propose_dialog(self) -> Locator:
        return self.page.locator('[data-dialog="propose"]')

    @property
    def run_actions(self) -> Locator:
        return self.page.locator('[data-panel="run-actions"] li.run-action')

    def focused_node_id(self) -> str | None:
        return self.page.evaluate("document.activeElement && document.activeElement.getAttribute('data-node-id')")

    def focused_action_type(self) -> str | None:
        return self.page.evaluate("document.activeElement && document.activeElement.getAttribute('data-action-type')")

    def graph_timings(self) -> dict:
        return self.page.eval_on_selector("svg.graph", "svg => ({...svg.dataset})")
