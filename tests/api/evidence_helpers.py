"""What the evidence tests share: a fixed signing key, a history made through the API, files for the verifier."""

from __future__ import annotations

import json
from http import HTTPStatus
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audittrail_evidence import verify
from audittrail_evidence.jws import private_key_pem

EVENTS = "/api/v1/audit/events"
CHECKPOINTS = "/api/v1/audit/checkpoints"
SIGNING_KEYS = "/api/v1/signing-keys"
NDJSON = "application/x-ndjson"

# Fixed keys, so a test can forge with a key it knows: the app's, a retired one, a stranger's.
APP_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
RETIRED_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32, 64)))
STRANGER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(64, 96)))
APP_KEY_PEM = private_key_pem(APP_KEY)


def make_history(admin, second) -> dict:
    """Through the API: an executed tier 2 (with the digest), an approved tier 3, a rejected one."""
    executed = admin.propose(payload={"max_rps": 40, "note": "ünï ✓"})
    assert second.approve(executed).status_code == HTTPStatus.OK
    done = admin.transition(executed["id"], "mark-executed", outcome={"ok": True}, digest=executed["digest"])
    assert done.status_code == HTTPStatus.OK, done.get_json()
    approved = admin.propose(action_type="kill_run", target_ref="run_8f3a2c91d4e7", reason="Runaway run")
    approved = second.approve(approved).get_json()
    rejected = admin.propose(action_type="alert", target_ref="svc/api", reason="Noise")
    assert second.transition(rejected["id"], "reject", note="not now").status_code == HTTPStatus.OK
    return {"executed": done.get_json(), "approved": approved, "rejected": rejected}


def export_lines(caller, after: int = 0) -> list[bytes]:
    response = caller.get(f"{EVENTS}?after={after}", headers={"Accept": NDJSON})
    assert response.status_code == HTTPStatus.OK, response.get_data(as_text=True)
    assert response.mimetype == NDJSON
    return response.get_data().splitlines(keepends=True)


def write(path: Path, content) -> str:
    if isinstance(content, list):
        path.write_bytes(b"".join(content))
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content)
    else:
        path.write_text(json.dumps(content))
    return str(path)


def run_verifier(*argv: str) -> tuple[int, str]:
    """The verifier's exit status and its line, in this process."""
    return verify.run(list(argv))
