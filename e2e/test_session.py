"""Signing in and out, and what happens when the session ends."""

from __future__ import annotations

import re
from http import HTTPStatus

import pytest
from playwright.sync_api import expect

from e2e.conftest import PASSWORD_USER
from e2e.pages import KPIS
from e2e.pages import TABS
from e2e.pages import QueuePage

pytestmark = pytest.mark.e2e


def test_password_login_opens_an_empty_workspace_and_sign_out_ends_the_session(page, page_problems):
    page_problems.expect_http_errors(HTTPStatus.UNAUTHORIZED)
    page.goto("/login")
    page.get_by_label("Email").fill(PASSWORD_USER["email"])
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    expect(page).to_have_url(re.compile(r"/login$"))

    page.get_by_label("Password").fill(PASSWORD_USER["password"])
    page.get_by_role("button", name="Sign in", exact=True).click()
    queue = QueuePage(page)
    expect(page).to_have_url(re.compile(r"/deployments$"))
    expect(page.locator(".session-user")).to_have_text(PASSWORD_USER["name"])

    # A workspace without actions: every tab says so, every count is zero.
    empty_state = page.locator("#actions-panel .empty-state")
    expect(empty_state).to_have_text("No deployment actions in this workspace yet.")
    expect(queue.rows).to_have_count(0)
    for key in KPIS:
        expect(queue.kpi(key)).to_have_text("0")
    for status in TABS:
        expect(queue.tab_count(status)).to_have_text("0")
    queue.tab("proposed").click()
    expect(empty_state).to_have_text("Nothing is waiting for a decision.")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto("/deployments")
    expect(page).to_have_url(re.compile(r"/login$"))


def test_a_401_from_the_api_sends_the_page_back_to_login(queue, page_problems):
    page_problems.expect_http_errors(HTTPStatus.UNAUTHORIZED)
    queue.page.context.clear_cookies()
    queue.tab("approved").click()
    expect(queue.page).to_have_url(re.compile(r"/login$"))
    expect(queue.page.get_by_role("button", name="Try the demo")).to_be_visible()
