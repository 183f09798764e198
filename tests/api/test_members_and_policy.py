"""GET/PATCH /members, GET/PUT /policy, and N-of-M approvals through the API (policy.md §2–§3)."""

from __future__ import annotations

import copy
from http import HTTPStatus

import pytest

from tests.api.conftest import MEMBERS
from tests.api.conftest import POLICY
from tests.api.conftest import Caller
from tests.api.conftest import bearer
from tests.api.conftest import error_code
from tests.api.conftest import jwt_for
from tests.api.conftest import key_caller
from tests.factories import add_member

DEFAULT_POLICY = {
    "1": {"approvals_required": 1, "approver_roles": ["operator", "approver", "admin"], "allow_self_approval": True},
    "2": {"approvals_required": 1, "approver_roles": ["operator", "approver", "admin"], "allow_self_approval": True},
    "3": {"approvals_required": 1, "approver_roles": ["approver", "admin"], "allow_self_approval": False},
}


@pytest.fixture
def admin(client, team, clock) -> Caller:
    user = add_member(team, clock(), "Ada", role="admin")
    return Caller(client, bearer(jwt_for(user)), user)


def caller_for(client, user) -> Caller:
    return Caller(client, bearer(jwt_for(user)), user)


def tiers(**changes) -> dict:
    document = copy.deepcopy(DEFAULT_POLICY)
    for tier, change in changes.items():
        document[tier.removeprefix("t")].update(change)
    return {"tiers": document}


# ----------------------------------------------------------------------------- members


def test_members_lists_people_then_agents_with_roles_kinds_and_owners(client, team, clock, alice):
    agent = add_member(team, clock(), "Bot", role="operator", kind="agent", owner=team.alice)
    response = alice.get(MEMBERS)

    assert response.status_code == HTTPStatus.OK
    items = response.get_json()["items"]
    assert [(m["name"], m["role"], m["kind"]) for m in items] == [
        ("Alice", "approver", "human"),
        ("Bob", "approver", "human"),
        ("Bot", "operator", "agent"),
    ]
    assert items[2]["owner"] == {"id": team.alice.id, "name": "Alice"} and items[0]["owner"] is None
    assert set(items[2]) == {"id", "name", "email", "role", "kind", "owner"}
    assert agent.id == items[2]["id"]


def test_members_are_any_members_to_read_even_with_a_read_only_key(client, alice):
    reader = key_caller(client, alice.create_key(["actions:read"]))
    assert reader.get(MEMBERS).status_code == HTTPStatus.OK


def test_members_never_show_another_workspace(alice, rival):
    names = {m["name"] for m in rival.get(MEMBERS).get_json()["items"]}
    assert names == {"Alice", "Bob"}
    assert all(m["id"] != alice.user.id for m in rival.get(MEMBERS).get_json()["items"])


def test_an_admin_changes_a_role(admin, team):
    response = admin.patch(f"{MEMBERS}/{team.bob.id}", json={"role": "operator"})
    assert response.status_code == HTTPStatus.OK
    assert response.get_json()["role"] == "operator"


def test_a_non_admin_is_refused_with_the_required_roles_before_the_body_is_read(alice, team):
    response = alice.patch(f"{MEMBERS}/{team.bob.id}", json={"role": "emperor", "extra": 1})
    assert response.status_code == HTTPStatus.FORBIDDEN
    body = response.get_json()["error"]
    assert (body["code"], body["details"]) == ("forbidden", {"required_roles": ["admin"]})


def test_an_admins_api_key_cannot_change_roles(client, admin, team):
    response = key_caller(client, admin.create_key()).patch(f"{MEMBERS}/{team.bob.id}", json={"role": "viewer"})
    assert (response.status_code, error_code(response)) == (HTTPStatus.FORBIDDEN, "forbidden")


def test_demoting_the_last_admin_answers_409(admin):
    response = admin.patch(f"{MEMBERS}/{admin.user.id}", json={"role": "approver"})
    assert (response.status_code, error_code(response)) == (HTTPStatus.CONFLICT, "last_admin")


@pytest.mark.parametrize("body", [{}, {"role": "root"}, {"role": None}, {"role": "admin", "name": "x"}])
def test_a_bad_role_body_answers_422_naming_the_field(admin, team, body):
    response = admin.patch(f"{MEMBERS}/{team.bob.id}", json=body)
    assert (response.status_code, error_code(response)) == (HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error")
    assert set(response.get_json()["error"]["details"]) <= {"role", "name"}


@pytest.mark.parametrize("member_id", ["usr_" + "0" * 24, "nope", "act_" + "1" * 24])
def test_an_unknown_member_answers_404(admin, member_id):
    response = admin.patch(f"{MEMBERS}/{member_id}", json={"role": "viewer"})
    assert (response.status_code, error_code(response)) == (HTTPStatus.NOT_FOUND, "not_found")


def test_another_workspaces_member_answers_404(admin, rival_team):
    response = admin.patch(f"{MEMBERS}/{rival_team.bob.id}", json={"role": "viewer"})
    assert response.status_code == HTTPStatus.NOT_FOUND


# ----------------------------------------------------------------------------- policy


def test_the_default_policy_is_the_specs(alice):
    response = alice.get(POLICY)
    assert response.status_code == HTTPStatus.OK
    assert response.get_json() == {"tiers": DEFAULT_POLICY, "updated_at": None, "updated_by": None}


def test_an_admin_replaces_the_policy_and_it_says_who_and_when(admin, alice, clock):
    response = admin.put(POLICY, json=tiers(t2={"approvals_required": 2}))
    assert response.status_code == HTTPStatus.OK
    body = response.get_json()
    assert body["tiers"]["2"]["approvals_required"] == 2
    assert body["updated_by"] == {"id": admin.user.id, "name": "Ada"}
    assert body["updated_at"] == clock().strftime("%Y-%m-%dT%H:%M:%SZ")
    assert alice.get(POLICY).get_json() == body


def test_what_get_answers_may_be_put_back_as_it_is(admin):
    document = admin.get(POLICY).get_json()
    assert admin.put(POLICY, json=document).status_code == HTTPStatus.OK


@pytest.mark.parametrize(
    ("document", "field"),
    [
        (tiers(t3={"allow_self_approval": True}), "tiers.3.allow_self_approval"),
        (tiers(t2={"approvals_required": 0}), "tiers.2.approvals_required"),
        (tiers(t2={"approvals_required": 6}), "tiers.2.approvals_required"),
        (tiers(t2={"approvals_required": "2"}), "tiers.2.approvals_required"),
        (tiers(t1={"approver_roles": []}), "tiers.1.approver_roles"),
        (tiers(t1={"approver_roles": ["viewer"]}), "tiers.1.approver_roles.0"),
        (tiers(t1={"allow_self_approval": "yes"}), "tiers.1.allow_self_approval"),
        (tiers(t1={"extra": 1}), "tiers.1.extra"),
        ({"tiers": {"1": DEFAULT_POLICY["1"], "2": DEFAULT_POLICY["2"]}}, "tiers.3"),
        ({"tiers": {**DEFAULT_POLICY, "4": DEFAULT_POLICY["1"]}}, "tiers.4"),
        ({}, "tiers"),
        ({"tiers": DEFAULT_POLICY, "mode": "strict"}, "mode"),
    ],
)
def test_a_bad_policy_answers_422_naming_the_field(admin, document, field):
    response = admin.put(POLICY, json=document)
    assert (response.status_code, error_code(response)) == (HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error")
    assert field in response.get_json()["error"]["details"]
    assert admin.get(POLICY).get_json()["updated_at"] is None


def test_only_an_admin_with_a_jwt_replaces_the_policy(client, admin, alice):
    refused = alice.put(POLICY, json=tiers())
    assert (refused.status_code, refused.get_json()["error"]["details"]) == (
        HTTPStatus.FORBIDDEN,
        {"required_roles": ["admin"]},
    )
    by_key = key_caller(client, admin.create_key()).put(POLICY, json=tiers())
    assert by_key.status_code == HTTPStatus.FORBIDDEN


# ----------------------------------------------------------------------------- N of M through the API


def test_an_approval_before_the_nth_answers_200_and_the_nth_approves(admin, alice, bob):
    admin.put(POLICY, json=tiers(t2={"approvals_required": 2}))
    action = alice.propose()
    assert action["policy"] == {**DEFAULT_POLICY["2"], "approvals_required": 2}
    assert (action["approvals_required"], action["approvals_received"], action["approvals"]) == (2, 0, [])

    first = bob.approve(action, note="ok by me")
    assert first.status_code == HTTPStatus.OK
    body = first.get_json()
    assert (body["status"], body["approvals_received"], body["approved_by"]) == ("proposed", 1, None)
    assert [a["user"]["name"] for a in body["approvals"]] == ["Bob"]
    assert "approve" not in body["allowed_transitions"]

    again = bob.approve(action)
    assert (again.status_code, error_code(again)) == (HTTPStatus.CONFLICT, "already_approved")

    second = admin.approve(action).get_json()
    assert (second["status"], second["approvals_received"]) == ("approved", 2)
    assert second["approved_by"] == {"id": admin.user.id, "name": "Ada"}
    detail = alice.get(f"/api/v1/deployments/actions/{action['id']}").get_json()
    assert [e["type"] for e in detail["events"]] == ["proposed", "approval_recorded", "approved"]
    assert [a["id"] for a in detail["events"][-1]["data"]["approvers"]] == [bob.user.id, admin.user.id]


def test_a_tier3_approval_by_the_owner_of_the_proposing_agent_answers_403(client, team, clock, bob):
    agent = add_member(team, clock(), "Bot", role="operator", kind="agent", owner=team.bob)
    action = caller_for(client, agent).propose(action_type="kill_run", target_ref="run_8f3a2c91d4e7")
    assert "approve" not in bob.get(f"/api/v1/deployments/actions/{action['id']}").get_json()["allowed_transitions"]

    response = bob.approve(action)
    assert (response.status_code, error_code(response)) == (HTTPStatus.FORBIDDEN, "second_approver_required")
    by_key = key_caller(client, bob.create_key()).approve(action)
    assert error_code(by_key) == "second_approver_required"


def test_a_viewer_reads_but_a_viewers_key_cannot_propose(client, team, clock):
    viewer = caller_for(client, add_member(team, clock(), "Vic", role="viewer"))
    assert viewer.get("/api/v1/deployments/actions").status_code == HTTPStatus.OK
    key = key_caller(client, viewer.create_key())
    response = key.post("/api/v1/deployments/actions", json={"action_type": "alert"})  # also an invalid body
    assert (response.status_code, error_code(response)) == (HTTPStatus.FORBIDDEN, "forbidden")
    assert response.get_json()["error"]["details"] == {"required_roles": ["operator", "approver", "admin"]}


def test_me_tells_the_page_what_the_caller_may_do(client, admin, team, clock):
    assert admin.get("/api/v1/auth/me").get_json()["capabilities"] == [
        "read",
        "propose",
        "decide",
        "execute",
        "manage_members",
        "manage_policy",
        "read_audit",  # evidence.md §4: the audit export is an admin's
        "write_runs",
        "manage_webhooks",  # webhooks.md §1
    ]
    reader = key_caller(client, admin.create_key(["actions:read"]))
    assert reader.get("/api/v1/auth/me").get_json()["capabilities"] == ["read"]
    viewer = caller_for(client, add_member(team, clock(), "Vic", role="viewer"))
    assert viewer.get("/api/v1/auth/me").get_json()["capabilities"] == ["read"]


# ----------------------------------------------------------------------------- the demo


def test_demo_members_have_the_specs_roles_and_the_seed_obeys_them(client):
    token = client.post("/api/v1/auth/demo-login").get_json()["access_token"]
    operator = Caller(client, bearer(token))
    members = {m["name"]: m for m in operator.get(MEMBERS).get_json()["items"]}
    assert members["Demo Operator"]["role"] == "admin"
    assert (members["Sam Okafor"]["role"], members["Sam Okafor"]["kind"]) == ("approver", "human")
    autopilot = members["Fleet Autopilot (agent)"]
    assert (autopilot["role"], autopilot["kind"], autopilot["owner"]["name"]) == ("operator", "agent", "Sam Okafor")

    items = operator.get("/api/v1/deployments/actions?limit=200").get_json()["items"]
    owner_of = {m["id"]: (m["owner"] or {}).get("id", m["id"]) for m in members.values()}
    for item in items:
        if item["tier"] == 3 and item["approved_by"] is not None:
            assert owner_of[item["approved_by"]["id"]] != owner_of[item["proposed_by"]["id"]], item["action_type"]
    approvable = [i for i in items if "approve" in i["allowed_transitions"]]
    assert {i["tier"] for i in approvable} >= {2, 3}
