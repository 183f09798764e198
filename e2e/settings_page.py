"""Page object for /settings: the members table and the approval policy form."""

from __future__ import annotations

import re

from playwright.sync_api import Locator
from playwright.sync_api import Page
from playwright.sync_api import expect

SETTINGS_URL = re.compile(r"/settings$")


class SettingsPage:
    """Members, roles and the approval policy, as an admin (or a read-only member) sees them."""

    def __init__(self, page: Page):
        self.page = page

    def open(self) -> SettingsPage:
        self.page.goto("/settings")
        expect(self.page).to_have_url(SETTINGS_URL)
        expect(self.member_rows.first).to_be_visible()
        expect(self.policy_updated).to_be_visible()
        return self

    # ---- members

    @property
    def member_rows(self) -> Locator:
        return self.page.locator("#members tbody tr.member-row")

    def member_row(self, member_id: str) -> Locator:
        return self.page.locator(f'#members tr.member-row[data-member-id="{member_id}"]')

    def role_select(self, member_id: str) -> Locator:
        return self.member_row(member_id).locator('select[data-field="role"]')

    def role_text(self, member_id: str) -> Locator:
        return self.member_row(member_id).locator('[data-field="role-text"]')

    @property
    def role_selects(self) -> Locator:
        return self.page.locator('#members select[data-field="role"]')

    # ---- policy

    @property
    def policy_form(self) -> Locator:
        return self.page.locator('form[data-form="policy"]')

    @property
    def policy_read_only(self) -> Locator:
        return self.page.locator('[data-view="policy-read-only"]')

    @property
    def policy_updated(self) -> Locator:
        return self.page.locator('[data-field="policy-updated"]')

    def tier(self, tier: int) -> Locator:
        return self.policy_form.locator(f'fieldset.policy-tier[data-tier="{tier}"]')

    def approvals_required(self, tier: int) -> Locator:
        return self.page.locator(f"#policy-t{tier}-approvals")

    def approver_role(self, tier: int, role: str) -> Locator:
        return self.page.locator(f"#policy-t{tier}-role-{role}")

    def self_approval(self, tier: int) -> Locator:
        return self.page.locator(f"#policy-t{tier}-self")

    def field_error(self, tier: int, field: str) -> Locator:
        return self.page.locator(f'[data-error="tiers.{tier}.{field}"]')

    @property
    def policy_error(self) -> Locator:
        return self.page.locator('[data-field="policy-error"]')

    @property
    def save_policy(self) -> Locator:
        return self.page.locator('[data-role="save-policy"]')

    def read_only_fact(self, tier: int, field: str) -> Locator:
        return self.policy_read_only.locator(f'[data-tier="{tier}"] [data-field="{field}"]')

    # ---- the page's live regions

    @property
    def status_message(self) -> Locator:
        return self.page.locator("#status-message")

    @property
    def error_message(self) -> Locator:
        return self.page.locator("#error-message")
