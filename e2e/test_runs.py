"""The DAG viewer (runs.md §2–§4): the NodeActionMenu by mouse and by keyboard, tier 3 proposals
through the queue's own ConfirmTypedDialog, the proposal in the queue approved by a second person,
no menu for a viewer, axe-core with the menu and the dialog open, and a 2 000-node run's figure.
"""

from __future__ import annotations

import json
import re
import time
from http import HTTPStatus

import pytest
from playwright.sync_api import expect

from e2e.pages import QueuePage
from e2e.run_page import RUNAWAY_RUN
from e2e.run_page import RunPage
from e2e.test_accessibility import _describe
from e2e.test_accessibility import blocking_violations

pytestmark = pytest.mark.e2e

SAM = "Sam Okafor"


def kill_runs(queue: QueuePage) -> list[dict]:
    return [action for action in queue.actions() if action["action_type"] == "kill_run"]


def member_named(queue: QueuePage, name: str) -> dict:
    return next(member for member in queue.api_get("/api/v1/members")["items"] if member["name"] == name)


def propose_kill_in_dialog(run: RunPage, reason: str = "e2e: loop of 14k tool calls, no progress") -> None:
    dialog = run.confirm_dialog
    expect(dialog).to_be_visible()
    expect(dialog.locator(".confirm-text")).to_have_text("run_8f3a")
    dialog.locator('[data-field="typed"]').fill("run_8f3a")
    dialog.locator('[data-field="reason"]').fill(reason)
    confirm = dialog.locator('[data-role="confirm"]')
    expect(confirm).to_be_enabled()
    expect(confirm).to_have_text("Propose kill_run")
    confirm.click()
    expect(dialog).to_be_hidden()


def test_right_click_on_a_node_proposes_kill_run(queue, artifacts_dir):
    before = {action["id"] for action in kill_runs(queue)}
    run = RunPage(queue.page).open()
    queue.page.screenshot(path=str(artifacts_dir / "run-graph.png"))

    run.node("plan").click(button="right")
    expect(run.menu).to_be_visible()
    assert run.focused_action_type() == "tag_trace"  # focus moves into the menu
    expect(run.menu.get_by_role("menuitem")).to_have_count(4)
    expect(run.menu_item("tag_trace")).to_contain_text("trace_8f3a2c91aa01")  # the node's ref
    expect(run.menu_item("kill_run")).to_contain_text("T3")
    queue.page.screenshot(path=str(artifacts_dir / "run-node-menu.png"))

    run.menu_item("kill_run").click()
    expect(run.menu).to_be_hidden()
    expect(run.confirm_dialog).to_be_visible()
    queue.page.screenshot(path=str(artifacts_dir / "run-confirm-typed-dialog.png"))
    propose_kill_in_dialog(run)

    assert run.focused_node_id() == "plan"  # focus goes back to the node
    new = [action for action in kill_runs(queue) if action["id"] not in before]
    assert len(new) == 1
    assert (new[0]["target_ref"], new[0]["mode"], new[0]["status"]) == (RUNAWAY_RUN, "supervised", "proposed")
    expect(run.page.locator(f'.run-action[data-action-id="{new[0]["id"]}"]')).to_be_visible()
    expect(queue.page.locator("#status-message")).to_contain_text("Proposed kill_run")


def test_keyboard_alone_reaches_kill_run(queue):
    before = {action["id"] for action in kill_runs(queue)}
    run = RunPage(queue.page).open()
    page = queue.page
    for _ in range(40):  # Tab from the top of the page to the first node
        page.keyboard.press("Tab")
        if run.focused_node_id():
            break
    assert run.focused_node_id() == "intake"

    page.keyboard.press("Shift+F10")
    expect(run.menu).to_be_visible()
    assert run.focused_action_type() == "tag_trace"
    page.keyboard.press("ArrowDown")
    assert run.focused_action_type() == "create_incident"
    page.keyboard.press("End")
    assert run.focused_action_type() == "kill_run"
    page.keyboard.press("ArrowDown")  # wraps
    assert run.focused_action_type() == "tag_trace"
    page.keyboard.press("ArrowUp")
    assert run.focused_action_type() == "kill_run"
    page.keyboard.press("Home")
    assert run.focused_action_type() == "tag_trace"
    page.keyboard.press("Escape")
    expect(run.menu).to_be_hidden()
    assert run.focused_node_id() == "intake"

    page.keyboard.press("Tab")  # the next node
    assert run.focused_node_id() == "classify"
    page.keyboard.press("ContextMenu")
    expect(run.menu).to_be_visible()
    page.keyboard.press("ArrowUp")
    assert run.focused_action_type() == "kill_run"
    page.keyboard.press("Enter")
    expect(run.confirm_dialog).to_be_visible()
    expect(run.confirm_dialog.locator('[data-field="typed"]')).to_be_focused()
    page.keyboard.type("run_8f3a")
    page.keyboard.press("Tab")
    page.keyboard.type("e2e: keyboard only")
    page.keyboard.press("Tab")
    expect(run.confirm_dialog.get_by_role("button", name="Cancel")).to_be_focused()
    page.keyboard.press("Tab")
    expect(run.confirm_dialog.locator('[data-role="confirm"]')).to_be_focused()
    page.keyboard.press("Enter")
    expect(run.confirm_dialog).to_be_hidden()
    assert run.focused_node_id() == "classify"
    assert len([a for a in kill_runs(queue) if a["id"] not in before]) == 1


def test_tier3_proposal_gating_in_the_reused_dialog(queue):
    before = len(kill_runs(queue))
    run = RunPage(queue.page).open()
    run.node("kb").click(button="right")
    run.menu_item("kill_run").click()
    dialog = run.confirm_dialog
    typed = dialog.locator('[data-field="typed"]')
    reason = dialog.locator('[data-field="reason"]')
    confirm = dialog.locator('[data-role="confirm"]')
    # The same controls as the queue's approval, in the same order.
    controls = dialog.locator("input, textarea, button").evaluate_all(
        "els => els.map(e => e.dataset.field || e.dataset.role || e.textContent.trim())"
    )
    assert controls == ["typed", "reason", "Cancel", "confirm"]

    reason.fill("e2e: runaway")
    for wrong in ("RUN_8F3A", "Run_8f3a", "run_8f3", "run_8f3a2"):  # wrong case, 7 characters, one too many
        typed.fill(wrong)
        expect(confirm).to_be_disabled()
        expect(typed).to_have_attribute("aria-invalid", "true")
    typed.fill("run_8f3a")
    expect(confirm).to_be_enabled()
    for blank in ("", "   ", "\n\t"):
        reason.fill(blank)
        expect(confirm).to_be_disabled()
    reason.fill("e2e: runaway")
    expect(confirm).to_be_enabled()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert run.focused_node_id() == "kb"
    assert len(kill_runs(queue)) == before  # nothing was proposed


def test_a_tier1_item_opens_the_propose_dialog_with_reason_and_mode(queue):
    run = RunPage(queue.page).open()
    run.node("plan").click(button="right")
    run.menu_item("tag_trace").click()
    dialog = run.propose_dialog
    expect(dialog).to_be_visible()
    expect(run.confirm_dialog).to_be_hidden()
    submit = dialog.locator('[data-role="confirm"]')
    expect(submit).to_be_disabled()
    dialog.locator('[data-field="reason"]').fill("e2e: recursion in the plan step")
    dialog.locator('[data-field="mode"]').select_option("dry_run")
    submit.click()
    expect(dialog).to_be_hidden()
    tagged = queue.find_action(action_type="tag_trace", target_ref="trace_8f3a2c91aa01")
    assert (tagged["mode"], tagged["status"], tagged["run_id"]) == ("dry_run", "proposed", RUNAWAY_RUN)


def test_the_proposal_shows_in_the_queue_and_a_second_person_approves_it(queue, signed_in_as, artifacts_dir):
    before = {action["id"] for action in kill_runs(queue)}
    run = RunPage(queue.page).open()
    run.node("plan").click(button="right")
    run.menu_item("kill_run").click()
    propose_kill_in_dialog(run, "e2e: Sam should approve this one")
    (proposed,) = [action for action in kill_runs(queue) if action["id"] not in before]

    run.page.locator(f'.run-action[data-action-id="{proposed["id"]}"] a').click()
    expect(queue.drawer).to_be_visible()
    expect(queue.row(proposed["id"])).to_be_visible()
    run_link = queue.drawer.locator('[data-role="run-link"]')
    expect(run_link).to_have_attribute("href", f"/runs/{RUNAWAY_RUN}")
    # The proposer may not approve their own tier 3 proposal: the server shows no Approve button.
    expect(queue.row_button(proposed["id"], "approve")).to_have_count(0)

    me = queue.api_get("/api/v1/auth/me")
    sam = QueuePage(signed_in_as(member_named(queue, SAM)["id"], me["workspace"]["id"]))
    sam.page.goto("/deployments")
    expect(sam.row(proposed["id"])).to_be_visible()
    sam.row_button(proposed["id"], "approve").click()
    dialog = sam.confirm_dialog
    expect(dialog).to_be_visible()
    dialog.locator('[data-field="typed"]').fill("run_8f3a")
    dialog.locator('[data-field="reason"]').fill("e2e: confirmed on the run graph")
    dialog.locator('[data-role="confirm"]').click()
    expect(dialog).to_be_hidden()
    expect(sam.row_status(proposed["id"])).to_have_text("Approved")
    sam.page.screenshot(path=str(artifacts_dir / "run-kill-approved-by-sam.png"))

    run_link.click()
    expect(queue.page).to_have_url(re.compile(f"/runs/{RUNAWAY_RUN}$"))
    expect(run.page.locator(f'.run-action[data-action-id="{proposed["id"]}"]')).to_contain_text("Approved")


def test_a_viewer_sees_no_menu(queue, signed_in_as):
    sam = member_named(queue, SAM)
    response = queue.page.request.patch(
        f"/api/v1/members/{sam['id']}", data={"role": "viewer"}, headers={"X-CSRF-TOKEN": queue.csrf_token()}
    )
    assert response.status == HTTPStatus.OK, response.text()
    me = queue.api_get("/api/v1/auth/me")
    viewer = RunPage(signed_in_as(sam["id"], me["workspace"]["id"])).open()
    node = viewer.node("plan")
    expect(node).not_to_have_attribute("aria-haspopup", "menu")
    node.click(button="right")
    node.focus()
    viewer.page.keyboard.press("Shift+F10")
    viewer.page.keyboard.press("ContextMenu")
    expect(viewer.menu).to_be_hidden()
    expect(viewer.menu.get_by_role("menuitem")).to_have_count(0)
    node.click()
    expect(viewer.page.locator('[data-panel="node-details"]')).to_contain_text("plan reply")
    expect(viewer.page.locator('[data-panel="node-details"] button[aria-haspopup="menu"]')).to_be_hidden()
    expect(viewer.run_actions).to_have_count(1)  # a viewer still reads the run's actions


@pytest.mark.parametrize("color_scheme", ["light", "dark"])
def test_axe_finds_no_serious_violation_with_the_menu_and_the_dialog_open(
    queue, axe_source, artifacts_dir, color_scheme
):
    page = queue.page
    page.emulate_media(color_scheme=color_scheme)
    run = RunPage(page).open()
    found = {"graph": blocking_violations(page, axe_source)}
    run.node("plan").click()
    run.node("plan").focus()
    page.keyboard.press("Shift+F10")
    expect(run.menu).to_be_visible()
    found["menu"] = blocking_violations(page, axe_source)
    page.screenshot(path=str(artifacts_dir / f"run-menu-{color_scheme}.png"))
    page.keyboard.press("End")
    page.keyboard.press("Enter")
    expect(run.confirm_dialog).to_be_visible()
    run.confirm_dialog.locator('[data-field="typed"]').fill("RUN_8f3a")
    found["confirm-typed dialog (propose)"] = blocking_violations(page, axe_source)
    page.screenshot(path=str(artifacts_dir / f"run-dialog-{color_scheme}.png"))
    page.keyboard.press("Escape")
    expect(run.confirm_dialog).to_be_hidden()
    expect(run.node("plan")).to_be_focused()
    page.keyboard.press("Shift+F10")
    run.menu_item("alert").click()
    expect(run.propose_dialog).to_be_visible()
    found["propose dialog"] = blocking_violations(page, axe_source)
    page.keyboard.press("Escape")
    page.goto("/runs")
    expect(page.locator(".run-row").first).to_be_visible()
    found["runs list"] = blocking_violations(page, axe_source)
    page.screenshot(path=str(artifacts_dir / f"runs-list-{color_scheme}.png"))

    problems = {state: _describe(violations) for state, violations in found.items() if violations}
    assert not problems, "\n".join(f"[{state}]\n{text}" for state, text in problems.items())


def large_run(nodes: int = 2000) -> dict:
    """A 2 000-node run: a wide, layered DAG (40 layers of 50), each node fed by up to 2 of the layer above."""
    width = 50
    names = [f"n{index:04d}" for index in range(nodes)]
    kinds = ["llm", "tool", "agent", "retrieval", "human", "other"]
    statuses = ["succeeded", "succeeded", "running", "failed", "pending", "skipped"]
    edges = []
    for index in range(width, nodes):
        above = index - width
        edges.append({"from": names[above], "to": names[index]})
        if index % 3 == 0 and above + 1 < index - (index % width) + width and (above + 1) % width:
            edges.append({"from": names[above + 1], "to": names[index]})
    return {
        "agent": "bench-agent",
        "title": "2 000-node benchmark run",
        "status": "running",
        "started_at": "2026-11-30T10:00:00Z",
        "nodes": [
            {"id": name, "kind": kinds[index % 6], "label": f"step {index}", "status": statuses[index % 6]}
            for index, name in enumerate(names)
        ],
        "edges": edges,
    }


def test_a_2000_node_run_lays_out_and_renders_and_the_figure_is_recorded(queue, artifacts_dir):
    """Not a timed test: it records the figure (README, "The DAG viewer") to e2e/artifacts."""
    body = large_run()
    response = queue.page.request.put(
        "/api/v1/runs/run_bench2000nodes", data=body, headers={"X-CSRF-TOKEN": queue.csrf_token()}
    )
    assert response.status == HTTPStatus.CREATED, response.text()
    page = queue.page
    # The longest task the main thread ran (layout is in a worker, so it must not be the layout).
    page.add_init_script(
        "window.__longestTask = 0; new PerformanceObserver((list) => { for (const entry of list.getEntries()) "
        "window.__longestTask = Math.max(window.__longestTask, entry.duration); })"
        ".observe({ entryTypes: ['longtask'] });"
    )
    started = time.monotonic()
    page.goto("/runs/run_bench2000nodes")
    expect(page.locator(".graph-panel")).to_have_attribute("data-state", "drawn", timeout=30_000)
    expect(page.locator(".graph-node")).to_have_count(2000)
    timings = RunPage(page).graph_timings()
    wall_ms = round((time.monotonic() - started) * 1000)
    figure = {
        "nodes": 2000,
        "edges": len(body["edges"]),
        "layout_ms_in_worker": int(timings["layoutMs"]),
        "svg_build_ms": int(timings["drawMs"]),
        "layout_and_render_ms": int(timings["renderMs"]),
        "page_load_to_drawn_ms": int(timings["totalMs"]),
        "navigation_to_drawn_wall_ms": wall_ms,
        "longest_main_thread_task_ms": round(page.evaluate("window.__longestTask")),
    }
    (artifacts_dir / "large-run-figure.json").write_text(json.dumps(figure, indent=2) + "\n")
    page.screenshot(path=str(artifacts_dir / "run-2000-nodes.png"))
    print(f"\n2 000-node run: {figure}")
