"""Signed evidence through the API (evidence.md §1-§5): keys, digests, receipts, export, checkpoints."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sysconfig
from contextlib import contextmanager
from http import HTTPStatus
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from audittrail import create_app
from audittrail.extensions import db
from audittrail.models import AuditCheckpoint
from audittrail.models import AuditEvent
from audittrail.models import Workspace
from audittrail.services import audit
from audittrail_evidence.canonical import GENESIS_HASH
from audittrail_evidence.canonical import event_hash
from audittrail_evidence.jws import CHECKPOINT_TYPE
from audittrail_evidence.jws import RECEIPT_TYPE
from audittrail_evidence.jws import b64url_decode
from audittrail_evidence.jws import b64url_encode
from audittrail_evidence.jws import keys_from_jwks
from audittrail_evidence.jws import kid_of
from audittrail_evidence.jws import private_key_pem
from audittrail_evidence.jws import raw_public_bytes
from audittrail_evidence.jws import verify_compact
from tests.api.conftest import ACTIONS
from tests.api.conftest import API_KEYS
from tests.api.conftest import POLICY
from tests.api.conftest import Caller
from tests.api.conftest import bearer
from tests.api.conftest import error_code
from tests.api.conftest import jwt_for
from tests.api.conftest import key_caller
from tests.api.evidence_helpers import APP_KEY
from tests.api.evidence_helpers import APP_KEY_PEM
from tests.api.evidence_helpers import CHECKPOINTS
from tests.api.evidence_helpers import EVENTS
from tests.api.evidence_helpers import NDJSON
from tests.api.evidence_helpers import RETIRED_KEY
from tests.api.evidence_helpers import SIGNING_KEYS
from tests.api.evidence_helpers import export_lines
from tests.api.evidence_helpers import make_history
from tests.api.evidence_helpers import run_verifier
from tests.api.evidence_helpers import write
from tests.conftest import close_app
from tests.factories import add_member
from tests.factories import make_team

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture
def app_config(app_config):
    return {**app_config, "AUDITTRAIL_SIGNING_KEY": APP_KEY_PEM}


@pytest.fixture
def admins(client, clock):
    """Workspace "Ops" where Alice and Bob are admins (so either may export), and a viewer, Vic."""
    team = make_team(clock(), role="admin")
    vic = add_member(team, clock(), "Vic", role="viewer")
    return {
        "team": team,
        "alice": Caller(client, bearer(jwt_for(team.alice)), team.alice),
        "bob": Caller(client, bearer(jwt_for(team.bob)), team.bob),
        "vic": Caller(client, bearer(jwt_for(vic)), vic),
    }


@contextmanager
def another_app(config: dict):
    """A second app on the same database (a restart with other keys); its connections closed after."""
    other = create_app(config)
    try:
        yield other
    finally:
        with other.app_context():
            close_app(other)


def _claims(token: str) -> tuple[dict, dict]:
    header, claims, _ = token.split(".")
    return json.loads(b64url_decode(header)), json.loads(b64url_decode(claims))


def _published(client) -> dict:
    return keys_from_jwks(client.get(SIGNING_KEYS).get_json())


def _events_in_db() -> int:
    return db.session.scalar(select(func.count()).select_from(AuditEvent))


# ----------------------------------------------------------------------------- §1 the signing keys


def test_signing_keys_are_a_jwk_set_without_authentication(client):
    response = client.get(SIGNING_KEYS)

    assert response.status_code == HTTPStatus.OK
    (key,) = response.get_json()["keys"]
    assert key == {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": b64url_encode(raw_public_bytes(APP_KEY.public_key())),
        "kid": kid_of(APP_KEY.public_key()),
        "alg": "EdDSA",
        "use": "sig",
    }
    # The kid is the first 16 hex characters of the SHA-256 of the raw public key.
    assert key["kid"] == hashlib.sha256(raw_public_bytes(APP_KEY.public_key())).hexdigest()[:16]
    assert "=" not in key["x"] and len(b64url_decode(key["x"])) == 32


def test_retired_keys_stay_published_after_the_current_one(app_config):
    retired_x = b64url_encode(raw_public_bytes(RETIRED_KEY.public_key()))
    with another_app({**app_config, "AUDITTRAIL_SIGNING_KEYS_PREVIOUS": [retired_x, retired_x]}) as rotated:
        keys = rotated.test_client().get(SIGNING_KEYS).get_json()["keys"]

    assert [key["kid"] for key in keys] == [kid_of(APP_KEY.public_key()), kid_of(RETIRED_KEY.public_key())]


def test_a_checkpoint_signed_before_a_rotation_still_verifies_after_it(admins, app_config, tmp_path):
    alice = admins["alice"]
    alice.propose()
    before = alice.post(CHECKPOINTS).get_json()["checkpoint"]
    lines = export_lines(alice)
    # A restart with a new key (RETIRED_KEY's bytes serve as the new one): APP_KEY is now retired,
    # published by its `x`.
    old_x = b64url_encode(raw_public_bytes(APP_KEY.public_key()))
    rotated_config = {
        **app_config,
        "AUDITTRAIL_SIGNING_KEY": private_key_pem(RETIRED_KEY),
        "AUDITTRAIL_SIGNING_KEYS_PREVIOUS": [old_x],
    }
    with another_app(rotated_config) as rotated:
        client = rotated.test_client()
        keys = write(tmp_path / "keys.json", client.get(SIGNING_KEYS).get_json())
        after = client.post(CHECKPOINTS, headers=alice.headers).get_json()["checkpoint"]

    status, line = run_verifier(
        "--events", write(tmp_path / "e.ndjson", lines), "--keys", keys, "--checkpoint", before, "--checkpoint", after
    )

    assert _claims(after)[0]["kid"] == kid_of(RETIRED_KEY.public_key())
    assert status == 0, line
    assert f"2 checkpoints (kid {kid_of(APP_KEY.public_key())}, {kid_of(RETIRED_KEY.public_key())})" in line


# ----------------------------------------------------------------------------- §2 the digest


def _readme_digest_function():
    block = re.search(r"```python\n# Recompute an action's digest.*?\n(.*?)```", README.read_text(), re.S).group(1)
    assert len(block.strip().splitlines()) <= 11
    source = block.replace('assert digest(action) == action["digest"]', "")
    namespace: dict = {}
    exec(source, namespace)  # noqa: S102 — the README's own lines, run as a reader would
    return namespace["digest"], block


def test_the_readme_recomputes_the_digest_of_every_action_as_served(admins):
    alice = admins["alice"]
    digest, block = _readme_digest_function()
    alice.propose(payload={"zone": "eu-west-1", "nested": {"b": 1, "a": [1, 2.5, None, "é"]}}, reason="Coût ✓ 💸")
    alice.propose(action_type="alert", target_ref="svc/api", reason="Noise", mode="autonomous")

    listed = alice.get(ACTIONS).get_json()["items"]
    details = [alice.get(f"{ACTIONS}/{item['id']}").get_json() for item in listed]

    for action in listed + details:
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", action["digest"])
        assert digest(action) == action["digest"]
        exec(block, {"action": action})  # noqa: S102 — including its closing assert


def test_the_digest_never_changes_through_the_transitions(admins):
    alice, bob = admins["alice"], admins["bob"]
    action = alice.propose()

    approved = bob.approve(action).get_json()
    executed = alice.transition(action["id"], "mark-executed").get_json()

    assert action["digest"] == approved["digest"] == executed["digest"]
    assert action["workspace_id"] == admins["team"].workspace.id


def test_the_digest_covers_the_policy_fixed_at_proposal(admins):
    alice = admins["alice"]
    action = alice.propose()
    policy = alice.get(POLICY).get_json()
    policy["tiers"]["2"]["approvals_required"] = 2
    assert alice.put(POLICY, json=policy).status_code == HTTPStatus.OK
    digest, _ = _readme_digest_function()

    served = alice.get(f"{ACTIONS}/{action['id']}").get_json()
    under_new_rule = dict(served, policy={**served["policy"], "approvals_required": 2})

    assert served["digest"] == action["digest"] == digest(served)
    assert digest(under_new_rule) != served["digest"]


# ----------------------------------------------------------------------------- §3 receipts


def test_a_receipt_appears_on_approval_is_signed_and_stays_after_execution(admins, client, clock):
    alice, bob = admins["alice"], admins["bob"]
    action = alice.propose()
    assert action["approval_receipt"] is None

    approved = bob.approve(action).get_json()
    executed = alice.transition(action["id"], "mark-executed", digest=action["digest"]).get_json()

    verified = verify_compact(approved["approval_receipt"], _published(client), RECEIPT_TYPE)
    assert verified.header == {"alg": "EdDSA", "kid": kid_of(APP_KEY.public_key()), "typ": "audittrail-approval+jwt"}
    assert verified.claims == {
        "iss": "audittrail",
        "sub": action["id"],
        "ws": admins["team"].workspace.id,
        "digest": action["digest"],
        "approvers": [{"id": admins["team"].bob.id, "name": "Bob", "at": approved["approved_at"]}],
        "iat": int(clock().timestamp()),
    }
    assert executed["approval_receipt"] == approved["approval_receipt"]


def test_n_of_m_receipts_list_every_approver_and_only_once_complete(admins, client, clock):
    alice, bob = admins["alice"], admins["bob"]
    carol = add_member(admins["team"], clock(), "Carol", role="admin")
    policy = alice.get(POLICY).get_json()
    policy["tiers"]["2"]["approvals_required"] = 2
    alice.put(POLICY, json=policy)
    action = alice.propose()

    first = bob.approve(action).get_json()
    clock.advance(seconds=30)
    second = Caller(client, bearer(jwt_for(carol)), carol).approve(action).get_json()

    assert first["status"] == "proposed" and first["approval_receipt"] is None
    claims = verify_compact(second["approval_receipt"], _published(client), RECEIPT_TYPE).claims
    assert [(item["name"], item["at"]) for item in claims["approvers"]] == [
        ("Bob", first["approvals"][0]["at"]),
        ("Carol", second["approved_at"]),
    ]


def test_a_rejected_or_autonomous_action_has_no_receipt(admins):
    alice, bob = admins["alice"], admins["bob"]
    action = alice.propose()
    bob.approve(action)

    rejected = bob.transition(action["id"], "reject", note="changed our minds").get_json()
    autonomous = alice.propose(action_type="alert", target_ref="svc/api", reason="Noise", mode="autonomous")

    assert rejected["status"] == "rejected" and rejected["approval_receipt"] is None
    assert autonomous["status"] == "executed" and autonomous["approval_receipt"] is None


def test_mark_executed_with_the_digest_records_it_as_verified(admins):
    alice, bob = admins["alice"], admins["bob"]
    action = alice.propose()
    other = alice.propose()
    bob.approve(action)
    bob.approve(other)

    with_digest = alice.transition(action["id"], "mark-executed", digest=action["digest"], outcome={"ok": 1})
    without = alice.transition(other["id"], "mark-executed", outcome={"ok": 1})

    assert with_digest.status_code == without.status_code == HTTPStatus.OK
    executed = alice.get(f"{ACTIONS}/{action['id']}").get_json()["events"][-1]
    plain = alice.get(f"{ACTIONS}/{other['id']}").get_json()["events"][-1]
    assert executed["type"] == "executed" and executed["data"] == {"outcome": {"ok": 1}, "digest_verified": True}
    assert plain["data"] == {"outcome": {"ok": 1}}


def test_a_wrong_digest_on_mark_executed_answers_409_and_changes_nothing(admins):
    alice, bob = admins["alice"], admins["bob"]
    action = alice.propose()
    other = alice.propose()
    bob.approve(action)
    before = alice.get(f"{ACTIONS}/{action['id']}").get_json()
    events, head = _events_in_db(), db.session.get(Workspace, admins["team"].workspace.id, populate_existing=True)
    head = (head.audit_seq, head.audit_head_hash, head.actions_approved, head.actions_executed)

    response = alice.transition(action["id"], "mark-executed", digest=other["digest"], outcome={"ok": 1})

    assert response.status_code == HTTPStatus.CONFLICT
    assert error_code(response) == "digest_mismatch"
    assert response.get_json()["error"]["details"] == {"digest": other["digest"], "expected": action["digest"]}
    db.session.expire_all()
    after_workspace = db.session.get(Workspace, admins["team"].workspace.id, populate_existing=True)
    assert (
        after_workspace.audit_seq,
        after_workspace.audit_head_hash,
        after_workspace.actions_approved,
        after_workspace.actions_executed,
    ) == head
    assert _events_in_db() == events
    assert alice.get(f"{ACTIONS}/{action['id']}").get_json() == before
    assert audit.verify_chain() is None
    # And the right digest still goes through afterwards.
    assert alice.transition(action["id"], "mark-executed", digest=action["digest"]).status_code == HTTPStatus.OK


@pytest.mark.parametrize("digest", ["sha256:" + "A" * 64, "sha256:abc", "md5:" + "0" * 64, "", 42])
def test_a_malformed_digest_on_mark_executed_is_a_validation_error(admins, digest):
    alice, bob = admins["alice"], admins["bob"]
    action = alice.propose()
    bob.approve(action)
    events = _events_in_db()

    response = alice.transition(action["id"], "mark-executed", digest=digest)

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert "digest" in response.get_json()["error"]["details"]
    assert _events_in_db() == events


def test_a_wrong_digest_on_an_executed_action_is_still_invalid_transition(admins):
    alice, bob = admins["alice"], admins["bob"]
    action = alice.propose()
    bob.approve(action)
    alice.transition(action["id"], "mark-executed", digest=action["digest"])

    response = alice.transition(action["id"], "mark-executed", digest="sha256:" + "0" * 64)

    assert error_code(response) == "invalid_transition"


# ----------------------------------------------------------------------------- §4 the export


def test_export_pages_follow_after_and_limit_to_an_empty_page_at_the_head(admins, rival):
    alice, bob = admins["alice"], admins["bob"]
    make_history(alice, bob)
    rival.propose()
    total = db.session.get(Workspace, admins["team"].workspace.id).audit_seq

    seen, after = [], 0
    while True:
        page = alice.get(f"{EVENTS}?after={after}&limit=3").get_json()
        if not page["items"]:
            assert page["next_after"] == after
            break
        assert len(page["items"]) <= 3 and page["next_after"] == page["items"][-1]["seq"]
        seen += page["items"]
        after = page["next_after"]

    assert [item["seq"] for item in seen] == list(range(1, total + 1))
    assert {item["workspace_id"] for item in seen} == {admins["team"].workspace.id}
    prev = GENESIS_HASH
    for item in seen:
        assert item["prev_hash"] == prev and event_hash(prev, item) == item["hash"]
        prev = item["hash"]
    assert alice.get(EVENTS).get_json()["items"] == seen[:100]


def test_the_ndjson_stream_holds_every_event_after_after_up_to_the_head(admins, monkeypatch):
    from audittrail.services import audit_export

    alice, bob = admins["alice"], admins["bob"]
    make_history(alice, bob)
    pages = alice.get(f"{EVENTS}?after=2&limit=1000").get_json()["items"]
    monkeypatch.setattr(audit_export, "STREAM_BATCH", 2)  # batch edges are crossed several times

    response = alice.get(f"{EVENTS}?after=2&limit=1", headers={"Accept": NDJSON})

    assert response.status_code == HTTPStatus.OK and response.mimetype == NDJSON
    assert response.is_streamed
    body = response.get_data(as_text=True)
    assert body.endswith("\n")
    assert [json.loads(line) for line in body.splitlines()] == pages


def test_an_ndjson_export_at_the_head_is_empty(admins):
    alice = admins["alice"]
    alice.propose()

    response = alice.get(f"{EVENTS}?after=1", headers={"Accept": NDJSON})

    assert response.status_code == HTTPStatus.OK and response.get_data() == b""


def test_json_stays_the_default_for_any_other_accept(admins):
    alice = admins["alice"]
    alice.propose()

    for accept in ("*/*", "application/json", "text/html", "application/json, application/x-ndjson;q=0.5"):
        response = alice.get(EVENTS, headers={"Accept": accept})
        assert response.mimetype == "application/json" and len(response.get_json()["items"]) == 1, accept


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "after=-1", "after=x", "limit=", "cursor=1"])
def test_bad_export_queries_are_validation_errors(admins, query):
    response = admins["alice"].get(f"{EVENTS}?{query}")

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert error_code(response) == "validation_error"


def test_new_keys_do_not_get_audit_read_unless_they_ask(admins):
    alice = admins["alice"]

    default = alice.post(API_KEYS, json={"name": "runner"}).get_json()
    asked = alice.post(API_KEYS, json={"name": "auditor", "scopes": ["audit:read"]}).get_json()

    assert default["scopes"] == ["actions:read", "actions:propose", "actions:decide", "actions:execute"]
    assert asked["scopes"] == ["audit:read"]


def test_export_access_is_the_admin_role_or_an_admins_key_with_audit_read(admins, client, clock):
    alice, vic = admins["alice"], admins["vic"]
    alice.propose()
    approver = add_member(admins["team"], clock(), "Ann", role="approver")
    approver_jwt = Caller(client, bearer(jwt_for(approver)), approver)
    admin_default_key = key_caller(client, alice.create_key())
    admin_audit_key = key_caller(client, alice.create_key(scopes=["audit:read"]))
    approver_audit_key = key_caller(client, approver_jwt.create_key(scopes=["audit:read", "actions:read"]))

    allowed = [alice, admin_audit_key]
    refused = [vic, approver_jwt, admin_default_key, approver_audit_key]

    for caller in allowed:
        assert caller.get(EVENTS).status_code == HTTPStatus.OK
        assert caller.get(CHECKPOINTS).status_code == HTTPStatus.OK
    for caller in refused:
        for response in (
            caller.get(EVENTS),
            caller.get(EVENTS, headers={"Accept": NDJSON}),
            caller.get(CHECKPOINTS),
            caller.post(CHECKPOINTS),
        ):
            assert response.status_code == HTTPStatus.FORBIDDEN
            assert error_code(response) == "forbidden"
    assert client.get(EVENTS).status_code == HTTPStatus.UNAUTHORIZED
    assert db.session.scalar(select(func.count()).select_from(AuditCheckpoint)) == 0
    # audit:read alone reads no actions.
    assert admin_audit_key.get(ACTIONS).status_code == HTTPStatus.FORBIDDEN


# ----------------------------------------------------------------------------- §5 checkpoints


def test_a_checkpoint_signs_the_head_and_is_listed_newest_first(admins, client, clock):
    alice = admins["alice"]
    alice.propose()
    first = alice.post(CHECKPOINTS)
    clock.advance(minutes=5)
    alice.propose()
    second = alice.post(CHECKPOINTS)
    workspace = db.session.get(Workspace, admins["team"].workspace.id, populate_existing=True)

    assert first.status_code == second.status_code == HTTPStatus.CREATED
    body = second.get_json()
    assert set(body) == {"checkpoint", "seq", "hash", "at"}
    assert (body["seq"], body["hash"]) == (workspace.audit_seq, workspace.audit_head_hash)
    verified = verify_compact(body["checkpoint"], _published(client), CHECKPOINT_TYPE)
    assert verified.header["typ"] == "audittrail-checkpoint+jwt"
    assert verified.claims == {
        "iss": "audittrail",
        "ws": workspace.id,
        "seq": body["seq"],
        "hash": body["hash"],
        "iat": int(clock().timestamp()),
    }
    assert workspace.audit_seq == 2  # a checkpoint appends no event
    listed = alice.get(CHECKPOINTS).get_json()["items"]
    assert listed == [body, first.get_json()]
    assert alice.get(f"{CHECKPOINTS}?limit=1").get_json()["items"] == [body]
    assert error_code(alice.get(f"{CHECKPOINTS}?limit=0")) == "validation_error"


def test_a_checkpoint_of_an_empty_chain_answers_409(admins):
    response = admins["alice"].post(CHECKPOINTS)

    assert response.status_code == HTTPStatus.CONFLICT and error_code(response) == "empty_chain"
    assert db.session.scalar(select(func.count()).select_from(AuditCheckpoint)) == 0


def test_checkpoints_of_another_workspace_are_not_listed(admins, client, clock):
    other = make_team(clock(), name="Rivals", role="admin")
    rival = Caller(client, bearer(jwt_for(other.alice)), other.alice)
    rival.propose()
    rival.post(CHECKPOINTS)

    assert admins["alice"].get(CHECKPOINTS).get_json()["items"] == []


def test_flask_audit_checkpoint_signs_every_workspace_with_events(admins, app, clock):
    admins["alice"].propose()
    make_team(clock(), name="Quiet", role="admin")  # no events yet: skipped

    result = app.test_cli_runner().invoke(args=["audit", "checkpoint"])

    assert result.exit_code == 0, result.output
    assert "1 checkpoint(s) made" in result.output
    (stored,) = db.session.scalars(select(AuditCheckpoint)).all()
    assert stored.workspace_id == admins["team"].workspace.id and stored.seq == 1
    assert admins["alice"].get(CHECKPOINTS).get_json()["items"][0]["checkpoint"] == stored.token


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_checkpoints SET seq = seq + 1", "DELETE FROM audit_checkpoints", "TRUNCATE audit_checkpoints"],
)
def test_checkpoints_are_append_only_in_the_database(admins, statement):
    admins["alice"].propose()
    admins["alice"].post(CHECKPOINTS)
    if statement.startswith("TRUNCATE") and db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no TRUNCATE")
    # End the test session's read of the table (a request ends it at teardown): TRUNCATE would
    # otherwise wait for that transaction's lock forever.
    db.session.rollback()

    with pytest.raises(DBAPIError, match="append-only"), db.engine.begin() as connection:
        connection.execute(text(statement))

    assert db.session.scalar(select(func.count()).select_from(AuditCheckpoint)) == 1


# ----------------------------------------------------------------------------- end to end


def test_end_to_end_propose_approve_verify_execute_export_checkpoint_verify_offline(admins, client, tmp_path):
    alice, bob = admins["alice"], admins["bob"]
    runner = key_caller(client, alice.create_key(scopes=["actions:read", "actions:execute"]))
    auditor = key_caller(client, alice.create_key(scopes=["audit:read"]))
    # Propose, approve.
    proposed = alice.propose(action_type="kill_run", target_ref="run_8f3a2c91d4e7", reason="Runaway run")
    assert bob.approve(proposed).status_code == HTTPStatus.OK
    # The runner fetches the published keys and the action, and verifies the receipt offline.
    keys = write(tmp_path / "keys.json", client.get(SIGNING_KEYS).get_json())
    action = runner.get(f"{ACTIONS}/{proposed['id']}").get_json()
    receipt = write(tmp_path / "receipt.jws", action["approval_receipt"] + "\n")
    status, line = run_verifier(
        "--receipt", receipt, "--keys", keys, "--action", write(tmp_path / "action.json", action)
    )
    assert status == 0, line
    # It executes with the digest it verified.
    executed = runner.transition(action["id"], "mark-executed", digest=action["digest"], outcome={"killed": True})
    assert executed.status_code == HTTPStatus.OK
    # The auditor exports, checkpoints, and verifies offline with the installed command.
    checkpoint = auditor.post(CHECKPOINTS).get_json()
    export = write(tmp_path / "export.ndjson", export_lines(auditor))
    script = Path(sysconfig.get_path("scripts")) / "audittrail-verify"
    result = subprocess.run(
        [str(script), "--events", export, "--keys", keys, "--checkpoint", checkpoint["checkpoint"]],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    seq = checkpoint["seq"]
    assert (
        result.stdout.strip()
        == f"verified {seq} events, seq 1..{seq}, 1 checkpoints (kid {kid_of(APP_KEY.public_key())})"
    )
    last = json.loads(Path(export).read_text().splitlines()[-1])
    assert last["type"] == "executed" and json.loads(last["data"])["digest_verified"] is True


# ----------------------------------------------------------------------------- OpenAPI


def test_the_openapi_document_describes_the_evidence_routes(client):
    document = client.get("/api/v1/openapi.json").get_json()
    paths = document["paths"]

    assert paths["/api/v1/signing-keys"]["get"]["security"] == []
    export = paths["/api/v1/audit/events"]["get"]["responses"]
    assert set(export["200"]["content"]) == {"application/json", NDJSON}
    assert {"401", "403", "422"} <= set(export)
    assert "409" in paths["/api/v1/audit/checkpoints"]["post"]["responses"]
    conflict = paths["/api/v1/deployments/actions/{action_id}/mark-executed"]["post"]["responses"]["409"]
    assert "digest_mismatch" in conflict["description"]
    action = document["components"]["schemas"]["Action"]["properties"]
    assert {"workspace_id", "digest", "approval_receipt"} <= set(action)
