"""/settings, webhooks (webhooks.md §5): an admin creates a webhook, sees its secret once, pings it,
and sees the ping delivered. The test starts the real worker on the e2e server's database and a
receiver on loopback."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from e2e.test_accessibility import blocking_violations
from tests.support.webhooks import Receiver
from tests.support.webhooks import WorkerProcess
from tests.support.webhooks import verify_signature

pytestmark = pytest.mark.e2e

SECRET = re.compile(r"^whsec_[A-Za-z0-9+/]{43}=$")


@pytest.fixture
def receiver():
    with Receiver() as receiver:
        yield receiver


@pytest.fixture
def worker(app_server):
    database = app_server.log_path.parent / "e2e.db"
    with WorkerProcess(f"sqlite:///{database}", {"AUDITTRAIL_WEBHOOK_POLL_SECONDS": "0.2"}) as process:
        yield process


def test_admin_creates_a_webhook_sees_the_secret_once_pings_it_and_sees_it_delivered(
    queue, receiver, worker, axe_source
):
    page = queue.page
    page.goto("/settings")
    section = page.locator("#webhooks")
    expect(section.get_by_text("No webhooks yet.")).to_be_visible()

    section.get_by_label("URL").fill(receiver.url)
    section.get_by_label("Description").fill("e2e receiver")
    section.get_by_role("button", name="Create webhook").click()

    panel = section.locator('[data-role="webhook-secret"]')
    expect(panel).to_be_visible()
    secret = panel.locator('[data-field="secret"]').input_value()
    assert SECRET.match(secret)
    expect(panel.get_by_role("button", name="Copy secret")).to_be_enabled()
    panel.get_by_role("button", name="Copy secret").click()
    row = section.locator("tr.webhook-row")
    expect(row).to_have_count(1)
    expect(row.locator(".webhook-url")).to_have_text(receiver.url)
    assert blocking_violations(page, axe_source) == []

    panel.get_by_role("button", name="Done").click()
    expect(panel).to_be_hidden()
    page.reload()
    expect(section.locator("tr.webhook-row")).to_have_count(1)
    assert secret not in page.content()  # shown once: never again

    section.get_by_role("button", name=f"Ping {receiver.url}").click()
    delivery = section.locator("li.delivery").first
    expect(delivery.locator('[data-field="delivery-state"]')).to_have_text("Delivered", timeout=15000)
    expect(delivery.locator(".delivery-type")).to_have_text("webhook.ping")

    pings = [request for request in receiver.requests if request.json["type"] == "webhook.ping"]
    assert len(pings) == 1 and verify_signature(secret, pings[0])
