"""axe-core finds no serious or critical violation on the page, the open drawer and the open dialogs."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

BLOCKING_IMPACTS = {"serious", "critical"}

_RUN_AXE = """
async () => {
  const results = await axe.run(document, { resultTypes: ['violations'] });
  return results.violations.map((violation) => ({
    id: violation.id,
    impact: violation.impact,
    help: violation.help,
    nodes: violation.nodes.slice(0, 5).map((node) => node.target.join(' ')),
  }));
}
"""


def blocking_violations(page, axe_source: str) -> list[dict]:
    """Run axe-core in the page (injected with evaluate: the CSP refuses script tags)."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(axe_source)
    return [violation for violation in page.evaluate(_RUN_AXE) if violation["impact"] in BLOCKING_IMPACTS]


def _describe(violations: list[dict]) -> str:
    return "\n".join(f"{v['impact']}: {v['id']} ({v['help']}) at {v['nodes']}" for v in violations)


@pytest.mark.parametrize("color_scheme", ["light", "dark"])
def test_axe_finds_no_serious_violation_on_page_drawer_and_dialogs(queue, axe_source, color_scheme):
    page = queue.page
    page.emulate_media(color_scheme=color_scheme)
    found = {}

    found["queue"] = blocking_violations(page, axe_source)

    first = queue.actions()[0]
    queue.row(first["id"]).locator(".col-reason").click()
    expect(queue.drawer.locator(".timeline-item").first).to_be_visible()
    found["drawer"] = blocking_violations(page, axe_source)
    page.keyboard.press("Escape")
    expect(queue.drawer).to_be_hidden()

    tier3 = queue.find_action(status="proposed", tier=3)
    queue.row_button(tier3["id"], "approve").click()
    expect(queue.confirm_dialog).to_be_visible()
    queue.confirm_dialog.locator('[data-field="typed"]').fill("wrong")
    found["confirm-typed dialog"] = blocking_violations(page, axe_source)
    page.keyboard.press("Escape")
    expect(queue.confirm_dialog).to_be_hidden()

    approved = queue.find_action(status="approved")
    queue.row_button(approved["id"], "mark-executed").click()
    expect(queue.transition_dialog).to_be_visible()
    queue.transition_dialog.locator("#transition-outcome").fill("[1]")
    found["transition dialog"] = blocking_violations(page, axe_source)
    page.keyboard.press("Escape")
    expect(queue.transition_dialog).to_be_hidden()

    page.goto("/login")
    expect(page.get_by_role("button", name="Try the demo")).to_be_visible()
    found["login"] = blocking_violations(page, axe_source)

    problems = {state: _describe(violations) for state, violations in found.items() if violations}
    assert not problems, "\n".join(f"[{state}]\n{text}" for state, text in problems.items())
