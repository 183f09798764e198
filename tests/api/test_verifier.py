"""audittrail-verify refuses every kind of tampering (evidence.md §6), and passes the untouched export.

The export, the keys and the checkpoints come from the API; each test breaks one thing in a copy,
and the verifier must exit non-zero naming that thing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from audittrail_evidence.canonical import event_hash
from audittrail_evidence.jws import CHECKPOINT_TYPE
from audittrail_evidence.jws import b64url_decode
from audittrail_evidence.jws import b64url_encode
from audittrail_evidence.jws import kid_of
from audittrail_evidence.jws import sign_compact
from tests.api.conftest import Caller
from tests.api.conftest import bearer
from tests.api.conftest import jwt_for
from tests.api.evidence_helpers import APP_KEY
from tests.api.evidence_helpers import APP_KEY_PEM
from tests.api.evidence_helpers import CHECKPOINTS
from tests.api.evidence_helpers import SIGNING_KEYS
from tests.api.evidence_helpers import STRANGER_KEY
from tests.api.evidence_helpers import export_lines
from tests.api.evidence_helpers import make_history
from tests.api.evidence_helpers import run_verifier
from tests.api.evidence_helpers import write
from tests.factories import make_team


@pytest.fixture
def app_config(app_config):
    return {**app_config, "AUDITTRAIL_SIGNING_KEY": APP_KEY_PEM}


@pytest.fixture
def world(client, clock, tmp_path):
    """Admin Alice and approver Bob, a history, its export, the published keys and a checkpoint of the head."""
    team = make_team(clock(), role="admin")
    alice = Caller(client, bearer(jwt_for(team.alice)), team.alice)
    bob = Caller(client, bearer(jwt_for(team.bob)), team.bob)
    history = make_history(alice, bob)
    lines = export_lines(alice)
    checkpoint = alice.post(CHECKPOINTS).get_json()
    return {
        "alice": alice,
        "history": history,
        "lines": lines,
        "events": [json.loads(line) for line in lines],
        "keys": write(tmp_path / "keys.json", client.get(SIGNING_KEYS).get_json()),
        "checkpoint": write(tmp_path / "checkpoint.jws", checkpoint["checkpoint"] + "\n"),
        "tmp": tmp_path,
    }


def _verify_lines(world, lines, *extra: str) -> tuple[int, str]:
    events = write(world["tmp"] / "tampered.ndjson", lines)
    return run_verifier("--events", events, "--keys", world["keys"], *extra)


def _line(event: dict) -> bytes:
    return (json.dumps(event, ensure_ascii=False) + "\n").encode()


# ----------------------------------------------------------------------------- the export itself


def test_the_untouched_export_verifies_with_its_checkpoint(world):
    status, line = _verify_lines(world, world["lines"], "--checkpoint", world["checkpoint"])

    count = len(world["lines"])
    assert status == 0, line
    assert line == f"verified {count} events, seq 1..{count}, 1 checkpoints (kid {kid_of(APP_KEY.public_key())})"


def test_an_edited_field_is_refused_naming_its_line(world):
    lines = list(world["lines"])
    event = dict(world["events"][2])
    event["actor_name"] = "Mallory"
    lines[2] = _line(event)

    status, line = _verify_lines(world, lines)

    assert status == 1
    assert "line 3 (seq 3): its hash does not match its content (an edited field)" in line


def test_an_edited_data_text_is_refused(world):
    lines = list(world["lines"])
    event = dict(world["events"][0])
    event["data"] = event["data"].replace("throttle", "kill_run")
    lines[0] = _line(event)

    status, line = _verify_lines(world, lines)

    assert status == 1 and "line 1 (seq 1): its hash does not match" in line


def test_a_deleted_line_is_refused(world):
    lines = world["lines"][:2] + world["lines"][3:]

    status, line = _verify_lines(world, lines)

    assert status == 1
    assert "line 3 (seq 4): seq jumps from 2 to 4; seq 3 is missing here" in line


def test_a_deleted_last_line_is_caught_by_the_checkpoint(world):
    status, line = _verify_lines(world, world["lines"][:-1], "--checkpoint", world["checkpoint"])

    assert status == 1
    assert f"checkpoint 1 ({world['checkpoint']}): its seq {len(world['lines'])} is not in the export" in line


def test_an_inserted_line_is_refused(world):
    # A forged event that links correctly to seq 2, given seq 3: the real seq 3 then comes twice.
    forged = dict(world["events"][1], type="approved", actor_name="Mallory", seq=3)
    forged["prev_hash"] = world["events"][1]["hash"]
    forged["hash"] = event_hash(forged["prev_hash"], forged)
    lines = world["lines"][:2] + [_line(forged)] + world["lines"][2:]

    status, line = _verify_lines(world, lines)

    assert status == 1
    assert "line 4 (seq 3): seq 3 appears twice (a line duplicated or inserted)" in line


def test_a_rewritten_tail_with_recomputed_hashes_is_caught_by_the_checkpoint(world):
    # Whoever can rewrite the database can recompute every later hash; the signed head still differs.
    events = [dict(event) for event in world["events"]]
    events[1]["actor_name"] = "Mallory"
    for index in range(1, len(events)):
        events[index]["prev_hash"] = events[index - 1]["hash"]
        events[index]["hash"] = event_hash(events[index]["prev_hash"], events[index])

    assert _verify_lines(world, [_line(event) for event in events])[0] == 0
    status, line = _verify_lines(world, [_line(event) for event in events], "--checkpoint", world["checkpoint"])

    assert status == 1
    assert f"its hash for seq {len(events)}" in line and "is not the export's" in line


def test_reordered_lines_are_refused(world):
    lines = list(world["lines"])
    lines[2], lines[3] = lines[3], lines[2]

    status, line = _verify_lines(world, lines)

    assert status == 1
    assert "line 3 (seq 4): seq jumps from 2 to 4" in line and "deleted or moved" in line


def test_a_line_moved_earlier_is_refused(world):
    lines = list(world["lines"])
    moved = lines.pop(1)
    lines.insert(4, moved)

    status, line = _verify_lines(world, lines)

    assert status == 1 and "line 2 (seq 3): seq jumps from 1 to 3" in line


def test_a_duplicated_line_is_refused(world):
    lines = world["lines"][:3] + [world["lines"][2]] + world["lines"][3:]

    status, line = _verify_lines(world, lines)

    assert status == 1
    assert "line 4 (seq 3): seq 3 appears twice" in line


def test_a_line_that_is_not_json_is_refused(world):
    lines = list(world["lines"])
    lines[1] = b'{"seq": 2, "trunc\n'

    status, line = _verify_lines(world, lines)

    assert status == 1 and "line 2: not a JSON object" in line


def test_an_empty_export_is_refused(world):
    status, line = _verify_lines(world, [])

    assert status == 1 and "the export holds no events" in line


# ----------------------------------------------------------------------------- checkpoints


def _forged_checkpoint(world, key, seq=None, head=None, kid=None) -> str:
    event = world["events"][-1]
    claims = {"iss": "audittrail", "ws": event["workspace_id"], "seq": seq or event["seq"], "iat": 1_796_000_000}
    claims["hash"] = head or event["hash"]
    token = sign_compact(key, CHECKPOINT_TYPE, claims)
    if kid is not None:
        # The same claims signed by `key`, but claiming the published key's kid.
        header = b64url_encode(json.dumps({"alg": "EdDSA", "kid": kid, "typ": CHECKPOINT_TYPE}).encode())
        _, body, _ = token.split(".")
        token = f"{header}.{body}." + b64url_encode(key.sign(f"{header}.{body}".encode()))
    return write(world["tmp"] / "forged.jws", token)


def test_a_checkpoint_re_signed_with_another_key_is_refused(world):
    forged = _forged_checkpoint(world, STRANGER_KEY, kid=kid_of(APP_KEY.public_key()))

    status, line = _verify_lines(world, world["lines"], "--checkpoint", forged)

    assert status == 1
    assert "checkpoint 1" in line and "signature does not verify with key" in line


def test_a_checkpoint_of_an_unknown_kid_is_refused(world):
    forged = _forged_checkpoint(world, STRANGER_KEY)

    status, line = _verify_lines(world, world["lines"], "--checkpoint", forged)

    assert status == 1
    assert f"unknown kid '{kid_of(STRANGER_KEY.public_key())}'" in line


def test_a_checkpoint_whose_seq_is_not_in_the_export_is_refused(world):
    # A later head: more events after the export was taken, then a checkpoint of them.
    alice = world["alice"]
    alice.propose()
    later = write(world["tmp"] / "later.jws", alice.post(CHECKPOINTS).get_json()["checkpoint"])

    status, line = _verify_lines(world, world["lines"], "--checkpoint", world["checkpoint"], "--checkpoint", later)

    count = len(world["lines"])
    assert status == 1
    assert f"checkpoint 2 ({later}): its seq {count + 1} is not in the export (seq 1..{count})" in line


def test_a_checkpoint_whose_hash_is_not_in_the_export_is_refused(world):
    forged = _forged_checkpoint(world, APP_KEY, seq=2, head="ab" * 32)

    status, line = _verify_lines(world, world["lines"], "--checkpoint", forged)

    assert status == 1
    assert "its hash for seq 2 (abababababababab…) is not the export's" in line


def test_a_checkpoint_given_inline_verifies_too(world):
    token = Path(world["checkpoint"]).read_text().strip()

    status, line = _verify_lines(world, world["lines"], "--checkpoint", token)

    assert status == 0, line


def test_a_partial_export_verifies_against_a_checkpoint_inside_it(world):
    lines = export_lines(world["alice"], after=2)

    status, line = _verify_lines(world, lines, "--checkpoint", world["checkpoint"])

    assert status == 0, line
    assert line.startswith(f"verified {len(lines)} events, seq 3..{len(world['lines'])}")


# ----------------------------------------------------------------------------- receipts


@pytest.mark.parametrize("name", ["approved", "executed"])
def test_a_receipt_verifies_against_the_action_as_served(world, name):
    action = world["history"][name]
    receipt = write(world["tmp"] / "receipt.jws", action["approval_receipt"] + "\n")

    status, line = run_verifier(
        "--receipt", receipt, "--keys", world["keys"], "--action", write(world["tmp"] / "a.json", action)
    )

    assert status == 0, line
    assert line.startswith(f"verified receipt for {action['id']} (digest {action['digest']}, matches the action")


@pytest.mark.parametrize(
    ("field", "value"),
    [("target_ref", "run_00000000"), ("payload", {"max_rps": 4000}), ("tier", 1), ("reason", "Something else")],
)
def test_a_receipt_for_a_changed_action_is_refused(world, field, value):
    action = dict(world["history"]["executed"], **{field: value})
    receipt = action["approval_receipt"]

    status, line = run_verifier(
        "--receipt", receipt, "--keys", world["keys"], "--action", write(world["tmp"] / "a.json", action)
    )

    assert status == 1
    assert "receipt: its digest" in line and "the action is not what was approved" in line


def test_a_receipt_of_another_action_is_refused(world):
    action = world["history"]["approved"]
    other = world["history"]["executed"]["approval_receipt"]

    status, line = run_verifier(
        "--receipt", other, "--keys", world["keys"], "--action", write(world["tmp"] / "a.json", action)
    )

    assert status == 1 and f"the action file is {action['id']}" in line


def test_a_receipt_signed_by_an_unknown_key_is_refused(world):
    action = world["history"]["approved"]
    _, body, _ = action["approval_receipt"].split(".")
    claims = json.loads(b64url_decode(body))
    forged = sign_compact(STRANGER_KEY, "audittrail-approval+jwt", claims)

    status, line = run_verifier("--receipt", forged, "--keys", world["keys"])

    assert status == 1 and "receipt: unknown kid" in line


def test_unusable_arguments_exit_2(world):
    assert run_verifier("--receipt", "not-a-token", "--keys", world["keys"])[0] == 2
    assert run_verifier("--events", str(world["tmp"] / "missing.ndjson"), "--keys", world["keys"])[0] == 2
    bad_keys = write(world["tmp"] / "bad-keys.json", {"keys": []})
    assert run_verifier("--events", world["checkpoint"], "--keys", bad_keys)[0] == 2


# ----------------------------------------------------------------------------- the installed command


def test_the_console_script_runs_with_no_database_no_configuration_and_no_app(world, tmp_path):
    script = Path(sysconfig.get_path("scripts")) / "audittrail-verify"
    events = write(tmp_path / "export.ndjson", world["lines"])
    environment = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    # An empty directory and an empty environment: no instance/, no DATABASE_URL, no secrets.
    result = subprocess.run(
        [str(script), "--events", events, "--keys", world["keys"], "--checkpoint", world["checkpoint"]],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    tampered = write(tmp_path / "tampered.ndjson", world["lines"][:1] + world["lines"][2:])
    refused = subprocess.run(
        [str(script), "--events", tampered, "--keys", world["keys"]],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"verified {len(world['lines'])} events")
    assert refused.returncode == 1 and "seq jumps from 1 to 3" in refused.stderr


def test_the_verifier_imports_neither_flask_nor_the_app():
    probe = (
        "import sys, audittrail_evidence.verify; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'flask', 'sqlalchemy', 'marshmallow', 'audittrail'}))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)

    assert result.stdout.strip() == "[]"
