"""What an outside probe found (issue 15): invisible reasons, crafted tokens, unknown parameters,
duplicate keys, secrets in caches, per-account and per-user limits, and scopes before bodies."""

from __future__ import annotations

import http.client
import io
import json
import re
import socket
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus

import jsonschema_rs
import jwt as pyjwt
import pytest
from gunicorn.http.errors import InvalidChunkSize
from sqlalchemy import create_engine
from sqlalchemy import text
from sqlalchemy.pool import NullPool

from audittrail.extensions import db
from audittrail.models import DeploymentAction
from audittrail.schemas.custom_fields import NO_NUL_PATTERN
from audittrail.schemas.custom_fields import not_blank_pattern
from tests.api import test_live_server
from tests.api.conftest import ACTIONS
from tests.api.conftest import ALL_SCOPES
from tests.api.conftest import API_KEYS
from tests.api.conftest import bearer
from tests.api.conftest import error_code
from tests.api.conftest import jwt_for
from tests.api.conftest import key_caller
from tests.conftest import POSTGRES_URL
from tests.factories import make_team
from tests.unit.test_text_rules import INVISIBLE
from tests.unit.test_text_rules import TRICKY

OPENAPI = "/api/v1/openapi.json"
PROPOSAL = {"action_type": "throttle", "target_ref": "model/gpt-large@us-east-1", "reason": "Cost spike"}
LOGIN = "/api/v1/auth/login"


@pytest.fixture
def team_with_passwords(app, clock):
    return make_team(clock(), name="Login", passwords=True)


# ----------------------------------------------------------------------------- blank reasons


@pytest.mark.parametrize("note", INVISIBLE + ["\u200b \u2060", "\u3000\u00a0"], ids=ascii)
def test_a_tier3_approval_with_an_invisible_note_is_refused(alice, bob, note):
    action = alice.propose(action_type="kill_run", target_ref="run_8f3a2c91d4e7")

    response = bob.approve(action, note=note)

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == "operator_reason_required"
    detail = alice.get(f"{ACTIONS}/{action['id']}").get_json()
    assert detail["status"] == "proposed"
    assert [event["type"] for event in detail["events"]] == ["proposed"]


@pytest.mark.parametrize("reason", INVISIBLE, ids=ascii)
def test_a_proposal_with_an_invisible_reason_is_refused(alice, reason):
    response = alice.post(ACTIONS, json={**PROPOSAL, "reason": reason})

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert error_code(response) == "validation_error"
    assert set(response.get_json()["error"]["details"]) == {"reason"}


@pytest.mark.parametrize("name", ["\u200b", "\ufeff\u3164", "\u2800"], ids=ascii)
def test_an_api_key_with_an_invisible_name_is_refused(alice, name):
    response = alice.post(API_KEYS, json={"name": name})

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert set(response.get_json()["error"]["details"]) == {"name"}


@pytest.mark.parametrize("transition", ["approve", "reject"])
def test_an_invisible_tier2_note_is_stored_as_no_note(alice, bob, transition):
    action = alice.propose()

    response = bob.transition(action["id"], transition, note="\u200b\ufeff")

    assert response.status_code == HTTPStatus.OK
    field = "approver_note" if transition == "approve" else "rejection_note"
    assert response.get_json()[field] is None
    events = alice.get(f"{ACTIONS}/{action['id']}").get_json()["events"]
    assert events[-1]["data"]["note"] is None


@pytest.mark.parametrize("reason", [text for text in TRICKY if text], ids=ascii)
def test_the_documented_reason_pattern_is_what_the_server_accepts(client, alice, reason):
    pattern = client.get(OPENAPI).get_json()["components"]["schemas"]["ActionPropose"]["properties"]["reason"]
    documented = re.search(pattern["pattern"][:-1] + r"\Z", reason) is not None

    response = alice.post(ACTIONS, json={**PROPOSAL, "reason": reason})

    assert response.status_code == (HTTPStatus.CREATED if documented else HTTPStatus.UNPROCESSABLE_ENTITY)


def test_every_not_blank_field_documents_the_generated_pattern(client):
    schemas = client.get(OPENAPI).get_json()["components"]["schemas"]

    assert schemas["ActionPropose"]["properties"]["reason"]["pattern"] == not_blank_pattern()
    assert schemas["ApiKeyCreate"]["properties"]["name"]["pattern"] == not_blank_pattern()


def _free_string(schema: dict) -> bool:
    types = schema.get("type", [])
    return "string" in (types if isinstance(types, list) else [types]) and "enum" not in schema


def test_every_request_string_documents_that_nul_is_refused(client):
    document = client.get(OPENAPI).get_json()
    request_schemas = {
        content["schema"]["$ref"].rsplit("/", 1)[1]
        for operations in document["paths"].values()
        for operation in operations.values()
        for content in operation.get("requestBody", {}).get("content", {}).values()
    }
    strings = [
        (name, field, schema)
        for name in request_schemas
        for field, schema in document["components"]["schemas"][name]["properties"].items()
        if _free_string(schema)
    ]
    strings += [
        (path, parameter["name"], parameter["schema"])
        for path, operations in document["paths"].items()
        for operation in operations.values()
        for parameter in operation["parameters"]
        if parameter["in"] == "query" and _free_string(parameter["schema"])
    ]

    assert len(strings) >= 10
    for where, field, schema in strings:
        assert re.search(schema["pattern"], "a\x00") is None, (where, field)
    assert NO_NUL_PATTERN in {schema["pattern"] for _, _, schema in strings}
    assert "U+0000" in document["info"]["description"]


# ----------------------------------------------------------------------------- crafted tokens

ME = "/api/v1/auth/me"
LOGOUT = "/api/v1/auth/logout"
_OMIT = object()


def _signed_token(app, user, **claims) -> str:
    """A token signed with the app's own key, with these claims changed (`_OMIT` leaves one out)."""
    now = int(time.time())
    values = {"sub": user.id, "type": "access", "fresh": False, "jti": uuid.uuid4().hex, "iat": now, "nbf": now,
              "exp": now + 3600, "ws": user.workspace_id}  # fmt: skip
    values.update(claims)
    return pyjwt.encode(
        {name: value for name, value in values.items() if value is not _OMIT},
        app.config["JWT_SECRET_KEY"],
        algorithm="HS256",
    )


CRAFTED_CLAIMS = {
    "no-exp": {"exp": _OMIT},
    "no-jti": {"jti": _OMIT},
    "no-sub": {"sub": _OMIT},
    "no-type": {"type": _OMIT},
    "huge-exp": {"exp": 10**20},
    "exp-past-a-lifetime": {"exp": int(time.time()) + 9 * 3600},
    "float-exp": {"exp": time.time() + 600.5},
    "string-exp": {"exp": "9999999999"},
    "integer-jti": {"jti": 7},
    "empty-jti": {"jti": ""},
    "jti-of-256": {"jti": "j" * 256},
    "object-sub": {"sub": {"id": 1}},
}


@pytest.mark.parametrize("path", [ME, ACTIONS, LOGOUT])
@pytest.mark.parametrize("claims", CRAFTED_CLAIMS.values(), ids=CRAFTED_CLAIMS)
def test_a_validly_signed_token_without_the_required_claims_is_unauthorized(app, client, team, claims, path):
    token = _signed_token(app, team.alice, **claims)

    response = client.open(path, method="POST" if path == LOGOUT else "GET", headers=bearer(token))

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert error_code(response) == "unauthorized"


def test_a_token_with_a_200_character_jti_can_be_logged_out_and_is_then_revoked(app, client, team):
    """The jti column holds what the app accepts (run with TEST_DATABASE_URL for PostgreSQL)."""
    token = _signed_token(app, team.alice, jti="j" * 200)
    assert client.get(ME, headers=bearer(token)).status_code == HTTPStatus.OK

    logout = client.post(LOGOUT, headers=bearer(token))

    assert logout.status_code == HTTPStatus.NO_CONTENT
    assert client.get(ME, headers=bearer(token)).status_code == HTTPStatus.UNAUTHORIZED


def test_a_token_the_app_signs_carries_every_required_claim(app, client, team_with_passwords):
    response = client.post(LOGIN, json={"email": team_with_passwords.alice.email, "password": "alice-password"})
    claims = pyjwt.decode(response.get_json()["access_token"], options={"verify_signature": False})

    assert {"exp", "jti", "sub", "type"} <= set(claims)
    assert client.get(ME, headers=bearer(response.get_json()["access_token"])).status_code == HTTPStatus.OK


# ----------------------------------------------------------------------------- chunked bodies

# The app on a real socket (werkzeug's threaded server): the test client always sends a length.
live_server = test_live_server.live_server
BODY_LIMIT = 64 * 1024


def _post_chunked(base_url: str, path: str, token: str, body: bytes) -> tuple[int, dict]:
    """POST `body` with Transfer-Encoding: chunked (no Content-Length), in 8 KiB chunks."""
    url = urllib.parse.urlsplit(base_url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        chunks = (body[offset : offset + 8192] for offset in range(0, len(body), 8192))
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        connection.request("POST", path, body=chunks, headers=headers, encode_chunked=True)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


def _padded_proposal(size: int) -> bytes:
    body = json.dumps(PROPOSAL).encode()
    return body + b" " * (size - len(body))


def test_a_chunked_body_over_the_limit_is_refused_not_cut_to_it(live_server, team):
    token = jwt_for(team.alice)

    status, answer = _post_chunked(live_server, ACTIONS, token, _padded_proposal(len(json.dumps(PROPOSAL)) + 200_000))

    assert status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert answer["error"]["code"] == "payload_too_large"
    assert DeploymentAction.query.count() == 0


def test_a_chunked_body_of_exactly_the_limit_is_accepted(live_server, team):
    status, answer = _post_chunked(live_server, ACTIONS, jwt_for(team.alice), _padded_proposal(BODY_LIMIT))

    assert status == HTTPStatus.CREATED, answer


def test_a_chunked_body_one_byte_over_the_limit_is_refused(live_server, team):
    status, answer = _post_chunked(live_server, ACTIONS, jwt_for(team.alice), _padded_proposal(BODY_LIMIT + 1))

    assert status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert answer["error"]["code"] == "payload_too_large"


# ----------------------------------------------------------------------------- unknown query parameters

ROUTES_WITHOUT_QUERY = [
    ("GET", "/api/v1/auth/me"),
    ("POST", "/api/v1/auth/logout"),
    ("GET", API_KEYS),
    ("POST", API_KEYS),
    ("DELETE", f"{API_KEYS}/{{key_id}}"),
    ("POST", ACTIONS),
    ("POST", f"{ACTIONS}/{{action_id}}/approve"),
    ("POST", f"{ACTIONS}/{{action_id}}/reject"),
    ("POST", f"{ACTIONS}/{{action_id}}/mark-executed"),
]
BODIES = {API_KEYS: {"name": "runner"}, ACTIONS: PROPOSAL}


@pytest.mark.parametrize(("method", "path"), ROUTES_WITHOUT_QUERY, ids=[f"{m} {p}" for m, p in ROUTES_WITHOUT_QUERY])
def test_an_unknown_query_parameter_is_refused_and_named_on_a_route_without_query(alice, bob, method, path):
    action = bob.propose()
    key_id = alice.post(API_KEYS, json={"name": "k"}).get_json()["id"]
    url = path.format(action_id=action["id"], key_id=key_id)

    response = alice.client.open(
        url, method=method, headers=alice.headers, query_string={"foo": "1"}, json=BODIES.get(path, {})
    )

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert error_code(response) == "validation_error"
    assert response.get_json()["error"]["details"] == {"foo": ["Unknown query parameter."]}
    assert alice.get(f"{ACTIONS}/{action['id']}").get_json()["status"] == "proposed"


@pytest.mark.parametrize("path", [ACTIONS, "/api/v1/deployments/summary", f"{ACTIONS}/{{action_id}}"])
def test_an_unknown_query_parameter_is_refused_and_named_on_a_route_with_query(alice, path):
    # The detail route takes `wait` and `version` (live.md §3).
    url = path.format(action_id=alice.propose()["id"])
    response = alice.get(url, query_string={"foo": "1"})

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert "foo" in response.get_json()["error"]["details"]


def test_the_login_routes_refuse_unknown_query_parameters_too(client):
    response = client.post("/api/v1/auth/demo-login", query_string={"foo": "1"})

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert response.get_json()["error"]["details"] == {"foo": ["Unknown query parameter."]}


def _send_raw(base_url: str, data: bytes) -> bytes:
    url = urllib.parse.urlsplit(base_url)
    with socket.create_connection((url.hostname, url.port), timeout=30) as connection:
        connection.sendall(data)
        connection.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


def test_a_malformed_chunked_body_is_a_400_envelope_not_a_500(live_server, team):
    request = (
        f"POST {ACTIONS} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {jwt_for(team.alice)}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"
    ).encode()

    answer = _send_raw(live_server, request)

    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.split()[1] == b"400", answer[:300]
    assert json.loads(rest.partition(b"\r\n\r\n")[2])["error"]["code"] == "malformed_json"


class _GunicornBrokenChunks(io.RawIOBase):
    """gunicorn's body stream on bad chunk framing: its own exception, not an OSError."""

    def readable(self):
        return True

    def readinto(self, buffer):
        raise InvalidChunkSize(b"zz")


def test_a_body_stream_that_fails_under_gunicorn_is_a_400_envelope_not_a_500(alice):
    response = alice.post(
        ACTIONS,
        content_type="application/json",
        environ_overrides={"wsgi.input": _GunicornBrokenChunks(), "wsgi.input_terminated": True, "CONTENT_LENGTH": ""},
    )

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == "malformed_json"


# ----------------------------------------------------------------------------- secrets in caches


def test_demo_login_answers_are_not_stored_by_caches(client):
    response = client.post("/api/v1/auth/demo-login")

    assert response.status_code == HTTPStatus.OK
    assert response.headers["Cache-Control"] == "no-store"


def test_login_answers_are_not_stored_by_caches(client, team_with_passwords):
    response = client.post(LOGIN, json={"email": team_with_passwords.alice.email, "password": "alice-password"})

    assert response.status_code == HTTPStatus.OK
    assert response.headers["Cache-Control"] == "no-store"


def test_the_answer_that_shows_an_api_key_secret_is_not_stored_by_caches(alice):
    response = alice.post(API_KEYS, json={"name": "runner"})

    assert response.status_code == HTTPStatus.CREATED
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("path", ["/login", "/deployments"])
def test_html_pages_are_not_stored_by_caches(client, path):
    client.set_cookie("access_token_cookie", "present")

    response = client.get(path)

    assert response.status_code == HTTPStatus.OK
    assert response.mimetype == "text/html"
    assert response.headers["Cache-Control"] == "no-store"


def test_the_document_states_no_store_on_the_answers_with_secrets(client):
    paths = client.get(OPENAPI).get_json()["paths"]

    for path, method, status in [("/api/v1/auth/demo-login", "post", "200"), ("/api/v1/auth/login", "post", "200"),
                                 ("/api/v1/api-keys", "post", "201")]:  # fmt: skip
        assert "Cache-Control" in paths[path][method]["responses"][status]["headers"], path


# ----------------------------------------------------------------------------- the Authorization scheme


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "bEaReR"])
def test_the_bearer_scheme_is_case_insensitive_for_a_jwt(client, team, scheme):
    response = client.get(ME, headers={"Authorization": f"{scheme} {jwt_for(team.alice)}"})

    assert response.status_code == HTTPStatus.OK
    assert response.get_json()["user"]["id"] == team.alice.id


@pytest.mark.parametrize("scheme", ["bearer", "BEARER"])
def test_the_bearer_scheme_is_case_insensitive_for_an_api_key(client, alice, scheme):
    secret = alice.create_key()

    response = client.get(ACTIONS, headers={"Authorization": f"{scheme} {secret}"})

    assert response.status_code == HTTPStatus.OK


# ----------------------------------------------------------------------------- duplicate keys

DUPLICATE_KEY_BODIES = {
    "top level": ('{"action_type": "alert", "target_ref": "pager/sre", "reason": "Latency",'
                  ' "action_type": "kill_run"}', "action_type"),
    "nested": ('{"action_type": "alert", "target_ref": "pager/sre", "reason": "Latency",'
               ' "payload": {"max_rps": 40, "max_rps": 4000}}', "max_rps"),
}  # fmt: skip


@pytest.mark.parametrize(("body", "key"), DUPLICATE_KEY_BODIES.values(), ids=DUPLICATE_KEY_BODIES)
def test_a_json_object_with_the_same_key_twice_is_malformed(alice, body, key):
    response = alice.post(ACTIONS, data=body, content_type="application/json")

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == "malformed_json"
    assert response.get_json()["error"]["details"] == {"key": key}
    assert alice.get(ACTIONS).get_json()["items"] == []


def test_a_transition_body_with_the_same_key_twice_is_malformed(alice, bob):
    action = alice.propose()
    body = '{"note": "a", "note": "b"}'

    response = bob.post(f"{ACTIONS}/{action['id']}/reject", data=body, content_type="application/json")

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_code(response) == "malformed_json"


# ----------------------------------------------------------------------------- scope before body

OTHER_SCOPES = {scope: [other for other in ALL_SCOPES if other != scope] for scope in ALL_SCOPES}
JSON_TYPE = "application/json"
# Each scoped route, the scope it needs, and a body (or query) that would be refused on its own.
SCOPED_ROUTES = [
    ("POST", ACTIONS, "actions:propose", {"json": {"action_type": "nuke", "bogus": 1}}),
    ("POST", ACTIONS, "actions:propose", {"data": "{not json", "content_type": JSON_TYPE}),
    ("POST", f"{ACTIONS}/{{action_id}}/approve", "actions:decide", {"json": {"note": 5, "bogus": 1}}),
    ("POST", f"{ACTIONS}/{{action_id}}/reject", "actions:decide", {"json": {"note": ["x"], "bogus": 1}}),
    ("POST", f"{ACTIONS}/{{action_id}}/mark-executed", "actions:execute", {"json": {"outcome": "done", "bogus": 1}}),
    ("POST", f"{ACTIONS}/{{action_id}}/mark-executed", "actions:execute", {"data": "[1,", "content_type": JSON_TYPE}),
    ("GET", ACTIONS, "actions:read", {"query_string": {"limit": "0", "status": "nope"}}),
    ("GET", "/api/v1/deployments/summary", "actions:read", {"query_string": {"tz": "", "foo": "1"}}),
    ("GET", f"{ACTIONS}/{{action_id}}", "actions:read", {"query_string": {"foo": "1"}}),
]


@pytest.mark.parametrize(
    ("method", "path", "scope", "request_kwargs"),
    SCOPED_ROUTES,
    ids=[f"{method} {path.rsplit('/', 1)[-1]} {index}" for index, (method, path, _, _) in enumerate(SCOPED_ROUTES)],
)
def test_a_key_without_the_routes_scope_is_refused_before_its_body_or_query_is_read(
    client, alice, bob, method, path, scope, request_kwargs
):
    action = bob.propose()
    key = key_caller(client, alice.create_key(scopes=OTHER_SCOPES[scope]))

    response = key.client.open(
        path.format(action_id=action["id"]), method=method, headers=key.headers, **request_kwargs
    )

    assert response.status_code == HTTPStatus.FORBIDDEN
    assert error_code(response) == "forbidden"
    assert response.get_json()["error"]["details"] == {"scope": scope}


# ----------------------------------------------------------------------------- per-workspace seq


def test_each_workspace_numbers_its_events_from_one_without_gaps(alice, bob, rival):
    mine, theirs = [], []
    for _ in range(3):
        mine.append(alice.propose())
        theirs.append(rival.propose())
    assert bob.approve(mine[0]).status_code == HTTPStatus.OK
    assert rival.transition(theirs[1]["id"], "reject").status_code == HTTPStatus.OK
    assert bob.approve(mine[2]).status_code == HTTPStatus.OK

    def seqs(caller, actions_made):
        return sorted(
            event["seq"]
            for action in actions_made
            for event in caller.get(f"{ACTIONS}/{action['id']}").get_json()["events"]
        )

    assert seqs(alice, mine) == [1, 2, 3, 4, 5]
    assert seqs(rival, theirs) == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("schema", "body", "server_status"),
    [
        ("ActionMarkExecuted", {"outcome": {"log": ["ok", {"deep": "a\x00b"}]}}, HTTPStatus.UNPROCESSABLE_ENTITY),
        ("ActionMarkExecuted", {"outcome": {"k\x00ey": 1}}, HTTPStatus.UNPROCESSABLE_ENTITY),
        ("ActionMarkExecuted", {"outcome": {"log": ["ok", {"deep": "fine"}], "n": None}}, HTTPStatus.OK),
        ("ActionMarkExecuted", {"outcome": None}, HTTPStatus.OK),
    ],
    ids=["nul-deep-in-a-value", "nul-in-a-key", "no-nul", "null-outcome"],
)
def test_the_document_refuses_nul_at_any_depth_of_a_json_object_as_the_server_does(
    client, alice, bob, schema, body, server_status
):
    document = client.get(OPENAPI).get_json()
    validator = jsonschema_rs.validator_for(
        {"$ref": f"#/components/schemas/{schema}", "components": document["components"]}
    )
    action = alice.propose()
    assert bob.approve(action).status_code == HTTPStatus.OK

    response = bob.transition(action["id"], "mark-executed", **body)

    assert response.status_code == server_status
    assert validator.is_valid(body) is (server_status == HTTPStatus.OK)


# ----------------------------------------------------------------------------- a lost connection


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs PostgreSQL: a SQLite file has no server to lose")
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_connection_lost_after_the_last_statement_leaves_the_answer_and_the_next_request_whole(
    app, client, alice, database_url
):
    """The server goes away between a request's last statement and its end (a restart).

    Ending the request rolls back on that connection, which fails: that must not turn the answer
    already made into the server's own HTML 500, nor leave the dead connection to the next request.
    """
    killer = create_engine(database_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    lost: list[int] = []

    @app.after_request
    def lose_the_connection(response):
        if not lost:
            pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
            with killer.connect() as connection:
                connection.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
            lost.append(pid)
        return response

    def in_its_own_context(path):
        # A thread starts with no app context, so the request pushes and tears down its own.
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(alice.get, path).result()

    try:
        first = in_its_own_context(ACTIONS)
        second = in_its_own_context(ACTIONS)
    finally:
        killer.dispose()

    assert lost
    assert first.status_code == HTTPStatus.OK, first.get_data(as_text=True)
    assert second.status_code == HTTPStatus.OK, second.get_data(as_text=True)
    assert second.get_json()["items"] == first.get_json()["items"]
