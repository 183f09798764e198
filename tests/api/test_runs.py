"""PUT, PATCH and GET /runs (runs.md §1): the DAG checks, the caps, scopes, isolation, paging, `actions`."""

from __future__ import annotations

import json
from http import HTTPStatus

import pytest

from audittrail import create_app
from tests.api.conftest import ACTIONS
from tests.api.conftest import Caller
from tests.api.conftest import bearer
from tests.api.conftest import error_code
from tests.api.conftest import jwt_for
from tests.api.conftest import key_caller
from tests.conftest import close_app
from tests.factories import add_member

RUNS = "/api/v1/runs"
RUN_ID = "run_8f3a2c91d4e7"


def node(node_id: str, kind: str = "tool", status: str = "succeeded", **fields) -> dict:
    return {"id": node_id, "kind": kind, "status": status, **fields}


def chain(*node_ids: str) -> list[dict]:
    return [{"from": source, "to": target} for source, target in zip(node_ids, node_ids[1:], strict=False)]


def run_body(nodes=None, edges=None, **fields) -> dict:
    body = {
        "agent": "planner",
        "title": "Quarterly report draft",
        "status": "running",
        "started_at": "2026-11-30T11:00:00Z",
        "nodes": [node("n1", "llm", ref="trace_5c0ffee91b7d"), node("n2"), node("n3")] if nodes is None else nodes,
        "edges": chain("n1", "n2", "n3") if edges is None else edges,
    }
    body.update(fields)
    return body


def put(caller, run_id=RUN_ID, **fields):
    return caller.put(f"{RUNS}/{run_id}", json=run_body(**fields))


def problem(response) -> tuple[int, str | None, dict]:
    body = response.get_json()
    return response.status_code, error_code(response), body["error"]["details"]


# ----------------------------------------------------------------------------- create, replace, read


def test_put_creates_a_run_then_replaces_it(alice):
    created = put(alice)
    assert created.status_code == HTTPStatus.CREATED
    assert created.headers["Location"].endswith(f"{RUNS}/{RUN_ID}")
    run = created.get_json()
    assert (run["id"], run["status"], run["node_count"], run["edge_count"]) == (RUN_ID, "running", 3, 2)
    assert run["nodes"][0] == {
        "id": "n1",
        "kind": "llm",
        "label": None,
        "status": "succeeded",
        "started_at": None,
        "ended_at": None,
        "ref": "trace_5c0ffee91b7d",
        "attrs": {},
    }
    assert run["edges"] == [{"from": "n1", "to": "n2"}, {"from": "n2", "to": "n3"}]

    replaced = put(alice, nodes=[node("only")], edges=[], status="succeeded", ended_at="2026-11-30T12:30:00+01:00")
    assert replaced.status_code == HTTPStatus.OK
    again = alice.get(f"{RUNS}/{RUN_ID}").get_json()
    assert [item["id"] for item in again["nodes"]] == ["only"]
    assert (again["status"], again["ended_at"], again["edges"]) == ("succeeded", "2026-11-30T11:30:00Z", [])


def test_an_id_in_the_body_must_be_the_paths(alice):
    assert put(alice, id=RUN_ID).status_code == HTTPStatus.CREATED
    status, code, details = problem(put(alice, id="run_somethingelse"))
    assert (status, code, list(details)) == (HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error", ["id"])


@pytest.mark.parametrize("run_id", ["run_short", "trace_5c0ffee91b7d", "run_" + "a" * 65, "run_has.dot12"])
def test_a_malformed_run_id_is_refused_on_put_and_unknown_on_get(alice, run_id):
    assert problem(put(alice, run_id=run_id))[:2] == (HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error")
    assert alice.get(f"{RUNS}/{run_id}").status_code == HTTPStatus.NOT_FOUND


# ----------------------------------------------------------------------------- the shape rules


def test_a_cycle_is_refused_naming_its_nodes_in_order(alice):
    nodes = [node(name) for name in ("a", "b", "c", "d")]
    edges = chain("a", "b", "c", "d") + [{"from": "d", "to": "b"}]
    status, code, details = problem(put(alice, nodes=nodes, edges=edges))
    assert (status, code) == (HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error")
    assert details["cycle"] == ["b", "c", "d"]
    assert "b → c → d → b" in details["edges"][0]
    assert alice.get(f"{RUNS}/{RUN_ID}").status_code == HTTPStatus.NOT_FOUND


def test_an_edge_from_a_node_to_itself_is_a_cycle(alice):
    assert problem(put(alice, edges=[{"from": "n2", "to": "n2"}]))[2]["cycle"] == ["n2"]


def test_edges_must_name_existing_nodes(alice):
    status, _, details = problem(put(alice, edges=[{"from": "n1", "to": "n9"}, {"from": "n0", "to": "n1"}]))
    assert status == HTTPStatus.UNPROCESSABLE_ENTITY
    assert set(details) == {"edges.0.to", "edges.1.from"}
    assert "n9" in details["edges.0.to"][0]


def test_node_ids_are_unique_and_an_edge_is_given_once(alice):
    assert "nodes.1.id" in problem(put(alice, nodes=[node("x"), node("x")], edges=[]))[2]
    assert "edges.1" in problem(put(alice, edges=chain("n1", "n2") * 2))[2]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "robot"}, "nodes.0.kind"),
        ({"status": "done"}, "nodes.0.status"),
        ({"id": ""}, "nodes.0.id"),
        ({"id": "x" * 101}, "nodes.0.id"),
        ({"ref": "tab\there"}, "nodes.0.ref"),
        ({"started_at": "yesterday"}, "nodes.0.started_at"),
        ({"started_at": "2026-11-30T11:00:00"}, "nodes.0.started_at"),
        ({"colour": "red"}, "nodes.0.colour"),
    ],
)
def test_a_bad_node_field_is_named(alice, change, field):
    status, _, details = problem(put(alice, nodes=[{**node("n1"), **change}], edges=[]))
    assert status == HTTPStatus.UNPROCESSABLE_ENTITY
    assert field in details


@pytest.mark.parametrize("field", ["agent", "status", "started_at"])
def test_the_run_needs_its_agent_status_and_start(alice, field):
    body = run_body()
    del body[field]
    assert field in problem(alice.put(f"{RUNS}/{RUN_ID}", json=body))[2]


def test_attrs_are_at_most_8_kib_per_node(alice):
    fits = node("n1", attrs={"log": "x" * (8 * 1024 - 20)})
    assert put(alice, nodes=[fits], edges=[]).status_code == HTTPStatus.CREATED
    status, _, details = problem(put(alice, nodes=[node("n1", attrs={"log": "x" * 8 * 1024})], edges=[]))
    assert (status, list(details)) == (HTTPStatus.UNPROCESSABLE_ENTITY, ["nodes.0.attrs"])


def wide_run(nodes: int, edges: int) -> tuple[list[dict], list[dict]]:
    """`nodes` nodes and `edges` edges, acyclic (every edge goes from a lower index to a higher one)."""
    names = [f"node-{index:04d}" for index in range(nodes)]
    pairs = [(low, high) for high in range(1, nodes) for low in range(max(0, high - 3), high)][:edges]
    return [node(name) for name in names], [{"from": names[low], "to": names[high]} for low, high in pairs]


def test_a_run_holds_at_most_2000_nodes_and_5000_edges(alice):
    nodes, edges = wide_run(2000, 5000)
    assert len(edges) == 5000
    legal = alice.put(f"{RUNS}/{RUN_ID}", json=run_body(nodes=nodes, edges=edges))
    assert legal.status_code == HTTPStatus.CREATED, legal.get_json()
    assert legal.get_json()["node_count"] == 2000
    assert len(json.dumps(run_body(nodes=nodes, edges=edges))) > 64 * 1024  # above every other route's cap

    status, _, details = problem(put(alice, nodes=[*nodes, node("one-too-many")], edges=[]))
    assert (status, list(details)) == (HTTPStatus.UNPROCESSABLE_ENTITY, ["nodes"])
    status, _, details = problem(put(alice, nodes=nodes, edges=[*edges, {"from": nodes[0]["id"], "to": "node-1999"}]))
    assert (status, list(details)) == (HTTPStatus.UNPROCESSABLE_ENTITY, ["edges"])
    assert alice.get(f"{RUNS}/{RUN_ID}").get_json()["edge_count"] == 5000  # the refused ones changed nothing


def test_the_runs_routes_take_2_mib_and_every_other_route_keeps_64_kib(alice):
    padding = {"log": "x" * 7000}
    nodes = [node(f"n{index}", attrs=padding) for index in range(310)]  # about 2.2 MB
    too_big = alice.put(f"{RUNS}/{RUN_ID}", json=run_body(nodes=nodes, edges=[]))
    assert (too_big.status_code, error_code(too_big)) == (HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "payload_too_large")
    fits = alice.put(f"{RUNS}/{RUN_ID}", json=run_body(nodes=nodes[:280], edges=[]))  # about 2.0 MB
    assert fits.status_code == HTTPStatus.CREATED
    patched = alice.patch(f"{RUNS}/{RUN_ID}", json={"add_nodes": [node(f"m{index}") for index in range(1500)]})
    assert patched.status_code == HTTPStatus.OK  # about 70 KB

    proposal = {"action_type": "alert", "target_ref": "pager/sre", "reason": "x" * 1000, "payload": {"p": "y" * 70000}}
    assert alice.post(ACTIONS, json=proposal).status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE


def test_malformed_json_changes_nothing(alice):
    put(alice)
    response = alice.patch(f"{RUNS}/{RUN_ID}", data="{nope", content_type="application/json")
    assert (response.status_code, error_code(response)) == (HTTPStatus.BAD_REQUEST, "malformed_json")
    assert alice.get(f"{RUNS}/{RUN_ID}").get_json()["status"] == "running"


# ----------------------------------------------------------------------------- PATCH


def test_patch_updates_nodes_and_a_failed_node_leaves_the_run_alone(alice):
    put(alice)
    response = alice.patch(
        f"{RUNS}/{RUN_ID}",
        json={"nodes": [{"id": "n2", "status": "failed", "ended_at": "2026-11-30T11:05:00Z", "attrs": {"e": 1}}]},
    )
    assert response.status_code == HTTPStatus.OK
    run = response.get_json()
    assert run["status"] == "running"
    assert run["nodes"][1] | {} == {**run["nodes"][1], "status": "failed", "ended_at": "2026-11-30T11:05:00Z"}
    assert run["nodes"][1]["attrs"] == {"e": 1}

    ended = alice.patch(f"{RUNS}/{RUN_ID}", json={"status": "killed", "ended_at": "2026-11-30T11:06:00Z"}).get_json()
    assert (ended["status"], ended["ended_at"]) == ("killed", "2026-11-30T11:06:00Z")


def test_patch_adds_nodes_and_edges(alice):
    put(alice)
    run = alice.patch(
        f"{RUNS}/{RUN_ID}", json={"add_nodes": [node("n4", "human", "pending")], "add_edges": chain("n3", "n4")}
    ).get_json()
    assert (run["node_count"], run["edge_count"], run["edges"][-1]) == (4, 3, {"from": "n3", "to": "n4"})


def test_a_patch_that_would_close_a_cycle_is_refused_and_changes_nothing(alice):
    put(alice)
    status, _, details = problem(
        alice.patch(f"{RUNS}/{RUN_ID}", json={"status": "failed", "add_edges": [{"from": "n3", "to": "n1"}]})
    )
    assert status == HTTPStatus.UNPROCESSABLE_ENTITY
    assert details["cycle"] == ["n1", "n2", "n3"]
    run = alice.get(f"{RUNS}/{RUN_ID}").get_json()
    assert (run["status"], run["edge_count"]) == ("running", 2)


def test_patch_names_its_own_lists_in_errors(alice):
    put(alice)
    assert list(problem(alice.patch(f"{RUNS}/{RUN_ID}", json={"nodes": [{"id": "ghost", "status": "failed"}]}))[2]) == [
        "nodes.0.id"
    ]
    assert list(problem(alice.patch(f"{RUNS}/{RUN_ID}", json={"add_nodes": [node("n1")]}))[2]) == ["add_nodes.0.id"]
    details = problem(alice.patch(f"{RUNS}/{RUN_ID}", json={"add_edges": [{"from": "n1", "to": "nx"}]}))[2]
    assert list(details) == ["add_edges.0.to"]
    assert list(problem(alice.patch(f"{RUNS}/{RUN_ID}", json={"nodes": [{"id": "n1", "ref": "x"}]}))[2]) == [
        "nodes.0.ref"  # a node's ref is fixed once reported
    ]


def test_patch_of_an_unknown_run_is_404(alice):
    response = alice.patch(f"{RUNS}/run_doesnotexist", json={"status": "failed"})
    assert (response.status_code, error_code(response)) == (HTTPStatus.NOT_FOUND, "not_found")


# ----------------------------------------------------------------------------- scopes, roles, isolation


def test_runs_write_is_not_a_default_scope_of_a_key(alice, client):
    default_key = key_caller(client, alice.create_key())
    assert "runs:write" not in alice.get("/api/v1/api-keys").get_json()["items"][0]["scopes"]
    response = put(default_key)
    assert (response.status_code, error_code(response)) == (HTTPStatus.FORBIDDEN, "forbidden")
    assert response.get_json()["error"]["details"] == {"scope": "runs:write"}
    assert alice.get(f"{RUNS}/{RUN_ID}").status_code == HTTPStatus.NOT_FOUND


def test_a_key_with_runs_write_writes_and_a_key_with_actions_read_reads(alice, client):
    writer = key_caller(client, alice.create_key(["runs:write"]))
    alice.propose(action_type="kill_run", target_ref=RUN_ID, reason="Runaway")
    created = put(writer)
    assert created.status_code == HTTPStatus.CREATED
    assert (created.get_json()["actions"], created.get_json()["menu"]) == ([], [])  # it may not read actions
    assert writer.patch(f"{RUNS}/{RUN_ID}", json={"status": "failed"}).status_code == HTTPStatus.OK
    assert writer.get(f"{RUNS}/{RUN_ID}").status_code == HTTPStatus.FORBIDDEN  # reading needs actions:read
    reader = key_caller(client, alice.create_key(["actions:read"]))
    assert reader.get(f"{RUNS}/{RUN_ID}").get_json()["status"] == "failed"
    assert reader.patch(f"{RUNS}/{RUN_ID}", json={"status": "running"}).status_code == HTTPStatus.FORBIDDEN


def test_a_viewer_reads_runs_but_writes_none_even_with_the_scope(client, alice, team, clock):
    put(alice)
    viewer = Caller(client, bearer(jwt_for(add_member(team, clock(), "Vic", role="viewer"))))
    assert viewer.get(f"{RUNS}/{RUN_ID}").status_code == HTTPStatus.OK
    for attempt in (viewer, key_caller(client, viewer.create_key(["runs:write"]))):
        response = attempt.patch(f"{RUNS}/{RUN_ID}", json={"status": "failed"})
        assert (response.status_code, error_code(response)) == (HTTPStatus.FORBIDDEN, "forbidden")
        assert response.get_json()["error"]["details"]["required_roles"] == ["operator", "approver", "admin"]
    assert alice.get(f"{RUNS}/{RUN_ID}").get_json()["status"] == "running"


def test_an_operator_jwt_writes_runs(client, team, clock):
    operator = Caller(client, bearer(jwt_for(add_member(team, clock(), "Oz", role="operator"))))
    assert put(operator).status_code == HTTPStatus.CREATED


def test_another_workspaces_run_is_404_and_the_same_id_is_its_own(alice, rival):
    put(alice)
    assert rival.get(f"{RUNS}/{RUN_ID}").status_code == HTTPStatus.NOT_FOUND
    assert rival.patch(f"{RUNS}/{RUN_ID}", json={"status": "failed"}).status_code == HTTPStatus.NOT_FOUND
    assert rival.get(RUNS).get_json()["items"] == []
    assert put(rival, nodes=[node("theirs")], edges=[]).status_code == HTTPStatus.CREATED
    assert [item["id"] for item in alice.get(f"{RUNS}/{RUN_ID}").get_json()["nodes"]] == ["n1", "n2", "n3"]


def test_unauthenticated_is_401(client):
    assert client.get(RUNS).status_code == HTTPStatus.UNAUTHORIZED
    assert client.put(f"{RUNS}/{RUN_ID}", json=run_body()).status_code == HTTPStatus.UNAUTHORIZED


# ----------------------------------------------------------------------------- the list


def test_the_list_pages_by_started_at_desc_then_id_without_nodes(alice):
    starts = {
        "run_aaaaaaaa": "2026-11-30T09:00:00Z",
        "run_bbbbbbbb": "2026-11-30T10:00:00Z",
        "run_cccccccc": "2026-11-30T10:00:00Z",
        "run_dddddddd": "2026-11-29T10:00:00Z",
        "run_eeeeeeee": "2026-11-30T11:00:00Z",
    }
    for run_id, started_at in starts.items():
        put(alice, run_id=run_id, started_at=started_at)
    seen, cursor = [], None
    while True:
        page = alice.get(RUNS, query_string={"limit": 2, **({"cursor": cursor} if cursor else {})}).get_json()
        assert len(page["items"]) <= 2
        assert all("nodes" not in item and item["node_count"] == 3 for item in page["items"])
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["run_eeeeeeee", "run_cccccccc", "run_bbbbbbbb", "run_aaaaaaaa", "run_dddddddd"]


def test_the_list_filters_by_status_and_agent(alice):
    put(alice, run_id="run_planner1", status="running")
    put(alice, run_id="run_planner2", status="failed")
    put(alice, run_id="run_triage01", agent="triage", status="failed")
    ids = lambda **query: [item["id"] for item in alice.get(RUNS, query_string=query).get_json()["items"]]  # noqa: E731
    assert ids(status="failed") == ["run_triage01", "run_planner2"]
    assert ids(status="failed", agent="planner") == ["run_planner2"]
    assert ids(status="all") == ids() and len(ids()) == 3


@pytest.mark.parametrize(
    "query",
    [{"status": "done"}, {"limit": "0"}, {"limit": "201"}, {"limit": "ten"}, {"cursor": "garbage"}, {"sort": "id"}],
)
def test_bad_list_values_answer_422(alice, query):
    response = alice.get(RUNS, query_string=query)
    assert (response.status_code, error_code(response)) == (HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error")


# ----------------------------------------------------------------------------- actions and the menu


def test_a_runs_actions_target_its_id_or_its_node_refs_newest_first(alice, clock):
    put(alice)
    kill = alice.propose(action_type="kill_run", target_ref=RUN_ID, reason="Runaway")
    clock.advance(minutes=1)
    tag = alice.propose(action_type="tag_trace", target_ref="trace_5c0ffee91b7d", reason="Recursion")
    clock.advance(minutes=1)
    alice.propose(action_type="tag_trace", target_ref="trace_unrelated0001", reason="Other run")
    run = alice.get(f"{RUNS}/{RUN_ID}").get_json()
    assert [(item["id"], item["action_type"], item["tier"], item["status"]) for item in run["actions"]] == [
        (tag["id"], "tag_trace", 1, "proposed"),
        (kill["id"], "kill_run", 3, "proposed"),
    ]
    assert set(run["actions"][0]) == {"id", "action_type", "tier", "status", "target_ref", "proposed_at"}


def test_an_action_names_the_run_its_target_belongs_to(alice, clock):
    early = alice.propose(action_type="tag_trace", target_ref="trace_added_later", reason="Before the run knew it")
    clock.advance(minutes=1)
    put(alice)
    assert alice.get(f"{ACTIONS}/{early['id']}").get_json()["run_id"] is None
    alice.patch(f"{RUNS}/{RUN_ID}", json={"add_nodes": [node("n4", ref="trace_added_later")]})
    kill = alice.propose(action_type="kill_run", target_ref=RUN_ID, reason="Runaway")
    listed = {item["id"]: item["run_id"] for item in alice.get(ACTIONS).get_json()["items"]}
    assert listed == {early["id"]: RUN_ID, kill["id"]: RUN_ID}
    assert [item["id"] for item in alice.get(f"{RUNS}/{RUN_ID}").get_json()["actions"]] == [kill["id"], early["id"]]


def test_an_expired_action_shows_expired_in_the_runs_actions(alice, clock):
    put(alice)
    alice.propose(action_type="kill_run", target_ref=RUN_ID, reason="Runaway", ttl_seconds=600)
    clock.advance(minutes=11)
    assert alice.get(f"{RUNS}/{RUN_ID}").get_json()["actions"][0]["status"] == "expired"


def menu(caller, run_id=RUN_ID) -> list[tuple]:
    items = caller.get(f"{RUNS}/{run_id}").get_json()["menu"]
    return [(item["action_type"], item["tier"], item["target"]) for item in items]


def test_the_menu_offers_kill_run_only_while_the_run_is_running(alice):
    put(alice)
    assert menu(alice) == [
        ("tag_trace", 1, "node"),
        ("create_incident", 1, "run"),
        ("alert", 1, "run"),
        ("kill_run", 3, "run"),
    ]
    kill = alice.get(f"{RUNS}/{RUN_ID}").get_json()["menu"][3]
    assert kill["confirmation_text"] == "run_8f3a"
    alice.patch(f"{RUNS}/{RUN_ID}", json={"status": "succeeded"})
    assert [item[0] for item in menu(alice)] == ["tag_trace", "create_incident", "alert"]


def test_a_caller_who_may_not_propose_gets_no_menu(client, alice, team, clock):
    put(alice)
    viewer = Caller(client, bearer(jwt_for(add_member(team, clock(), "Vic", role="viewer"))))
    assert menu(viewer) == []
    assert menu(key_caller(client, alice.create_key(["actions:read"]))) == []
    assert len(menu(key_caller(client, alice.create_key(["actions:read", "actions:propose"])))) == 4


# ----------------------------------------------------------------------------- the demo


def test_the_demo_seeds_three_runs_tied_to_its_actions(client):
    token = client.post("/api/v1/auth/demo-login").get_json()["access_token"]
    demo = Caller(client, bearer(token))
    listed = {item["id"]: item["status"] for item in demo.get(RUNS).get_json()["items"]}
    assert sorted(listed.values()) == ["failed", "running", "succeeded"]
    runaway = demo.get(f"{RUNS}/{RUN_ID}").get_json()
    assert runaway["status"] == "running" and runaway["node_count"] > 40
    assert [(item["action_type"], item["status"]) for item in runaway["actions"]] == [("kill_run", "proposed")]
    by_type = {item["action_type"]: item for item in demo.get(ACTIONS, query_string={"limit": 50}).get_json()["items"]}
    traced = demo.get(f"{RUNS}/{by_type['tag_trace']['run_id']}").get_json()
    assert "trace_5c0ffee91b7d" in {item["ref"] for item in traced["nodes"]}
    assert by_type["kill_run"]["run_id"] == RUN_ID
    assert by_type["throttle"]["run_id"] is None


# ----------------------------------------------------------------------------- the limit


@pytest.fixture
def limited_app(app_config):
    app = create_app({**app_config, "AUDITTRAIL_RUNS_WRITE_RATE_LIMIT": "3/minute"})
    with app.app_context():
        yield app
        close_app(app)


def test_run_writes_have_their_own_bucket(limited_app, team):
    from tests.api.conftest import ContractClient

    limited_app.test_client_class = ContractClient
    writer = Caller(limited_app.test_client(), bearer(jwt_for(team.alice)))
    assert put(writer).status_code == HTTPStatus.CREATED
    assert put(writer).status_code == HTTPStatus.OK
    assert writer.patch(f"{RUNS}/{RUN_ID}", json={"status": "failed"}).status_code == HTTPStatus.OK
    limited = writer.patch(f"{RUNS}/{RUN_ID}", json={"status": "killed"})
    assert (limited.status_code, error_code(limited)) == (HTTPStatus.TOO_MANY_REQUESTS, "rate_limited")
    assert int(limited.headers["Retry-After"]) >= 1
    assert writer.get(f"{RUNS}/{RUN_ID}").get_json()["status"] == "failed"  # reads are never limited
    assert writer.propose()["status"] == "proposed"  # the transition bucket is another one
