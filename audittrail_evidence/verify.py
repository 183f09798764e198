"""`audittrail-verify`: check an audit export against the keys and checkpoints, or a receipt against an action.

    audittrail-verify --events export.ndjson --keys keys.json [--checkpoint cp.jws ...]
    audittrail-verify --receipt receipt.jws --keys keys.json [--action action.json]

It needs no database, no network and no configuration: only the files it is given. It imports the
standard library, `cryptography` and audittrail_evidence, never the server. Exit status: 0 when
everything holds; 1 naming the first thing that does not; 2 when an argument or a file is unusable.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from audittrail_evidence.canonical import EXPORT_FIELDS
from audittrail_evidence.canonical import GENESIS_HASH
from audittrail_evidence.canonical import action_digest
from audittrail_evidence.canonical import digest_fields_of
from audittrail_evidence.canonical import event_hash
from audittrail_evidence.jws import CHECKPOINT_TYPE
from audittrail_evidence.jws import ISSUER
from audittrail_evidence.jws import RECEIPT_TYPE
from audittrail_evidence.jws import EvidenceError
from audittrail_evidence.jws import keys_from_jwks
from audittrail_evidence.jws import looks_like_compact_jws
from audittrail_evidence.jws import verify_compact

_HASH = re.compile(r"^[0-9a-f]{64}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_NULLABLE = {"action_id", "actor_user_id", "actor_api_key_id", "request_id"}


class VerificationFailed(Exception):
    """Something in the evidence does not hold; the message names the first thing."""


class UnusableInput(Exception):
    """An argument or a file the verifier cannot read at all."""


# ----------------------------------------------------------------------------- inputs


def read_token(argument: str) -> str:
    """A compact JWS given as itself or as a file that holds it (a trailing newline is allowed)."""
    path = Path(argument)
    try:
        is_file = path.is_file()
    except (OSError, ValueError):  # a token is longer than any file name may be
        is_file = False
    if is_file:
        try:
            return path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            raise UnusableInput(f"cannot read {argument}: {error}") from None
    if looks_like_compact_jws(argument):
        return argument.strip()
    raise UnusableInput(f"{argument!r} is neither a readable file nor a compact JWS")


def read_json_file(argument: str, what: str):
    try:
        return json.loads(Path(argument).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise UnusableInput(f"cannot read the {what} file {argument}: {error}") from None
    except ValueError:
        raise UnusableInput(f"the {what} file {argument} is not JSON") from None


def load_keys(argument: str) -> dict:
    """The keys of a JWK Set file (what GET /api/v1/signing-keys serves), by kid."""
    try:
        return keys_from_jwks(read_json_file(argument, "keys"))
    except EvidenceError as error:
        raise UnusableInput(f"{argument}: {error}") from None


# ----------------------------------------------------------------------------- checkpoints


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint whose signature holds."""

    label: str
    workspace_id: str
    seq: int
    hash: str
    kid: str


def verify_checkpoint(token: str, keys: Mapping, label: str) -> Checkpoint:
    """Check a checkpoint's signature and claims; raises VerificationFailed naming it."""
    try:
        verified = verify_compact(token, keys, CHECKPOINT_TYPE)
    except EvidenceError as error:
        raise VerificationFailed(f"{label}: {error}") from None
    claims = verified.claims
    seq, head = claims.get("seq"), claims.get("hash")
    if (
        claims.get("iss") != ISSUER
        or not isinstance(claims.get("ws"), str)
        or not isinstance(seq, int)
        or isinstance(seq, bool)
        or seq < 1
        or not isinstance(head, str)
        or not _HASH.match(head)
        or not isinstance(claims.get("iat"), int)
    ):
        raise VerificationFailed(f"{label}: its claims are not a checkpoint's (iss, ws, seq, hash, iat)")
    return Checkpoint(label, claims["ws"], seq, head, verified.kid)


# ----------------------------------------------------------------------------- the export


@dataclass(frozen=True)
class ExportSummary:
    workspace_id: str
    count: int
    first_seq: int
    last_seq: int


def _parse_line(number: int, raw: bytes) -> dict:
    text = raw.rstrip(b"\n").rstrip(b"\r")
    try:
        event = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise VerificationFailed(f"line {number}: not a JSON object (a damaged or edited line)") from None
    if not isinstance(event, dict):
        raise VerificationFailed(f"line {number}: not a JSON object (a damaged or edited line)")
    if set(event) != set(EXPORT_FIELDS):
        missing = sorted(set(EXPORT_FIELDS) - set(event))
        extra = sorted(set(event) - set(EXPORT_FIELDS))
        parts = [f"missing {', '.join(missing)}"] if missing else []
        parts += [f"extra {', '.join(extra)}"] if extra else []
        what = "; ".join(parts)
        raise VerificationFailed(f"line {number}: not an exported event ({what})")
    seq = event["seq"]
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise VerificationFailed(f"line {number}: its seq {seq!r} is not a positive integer")
    for name in EXPORT_FIELDS:
        value = event[name]
        if name == "seq" or (value is None and name in _NULLABLE):
            continue
        if not isinstance(value, str):
            raise VerificationFailed(f"line {number} (seq {seq}): its {name} is not a string (an edited field)")
    return event


def verify_export(lines: Iterable[bytes], checkpoints: list[Checkpoint]) -> ExportSummary:
    """Recompute every hash and link of an NDJSON export and hold the checkpoints against it.

    Reads one line at a time (constant memory). Raises VerificationFailed naming the first broken
    line, or the first checkpoint that does not hold.
    """
    wanted: dict[int, list[Checkpoint]] = {}
    for checkpoint in checkpoints:
        wanted.setdefault(checkpoint.seq, []).append(checkpoint)
    workspace_id = None
    first_seq = prev_seq = 0
    prev_hash = ""
    count = 0
    for number, raw in enumerate(lines, start=1):
        event = _parse_line(number, raw)
        seq = event["seq"]
        where = f"line {number} (seq {seq})"
        if workspace_id is None:
            workspace_id, first_seq = event["workspace_id"], seq
            for checkpoint in checkpoints:
                if checkpoint.workspace_id != workspace_id:
                    raise VerificationFailed(
                        f"{checkpoint.label}: it is of workspace {checkpoint.workspace_id}, "
                        f"the export of {workspace_id}"
                    )
            if seq == 1 and event["prev_hash"] != GENESIS_HASH:
                raise VerificationFailed(f"{where}: the first event's prev_hash is not the genesis hash")
        else:
            if event["workspace_id"] != workspace_id:
                raise VerificationFailed(
                    f"{where}: it belongs to workspace {event['workspace_id']}, the export to {workspace_id} "
                    "(a line inserted from elsewhere)"
                )
            if seq == prev_seq:
                raise VerificationFailed(f"{where}: seq {seq} appears twice (a line duplicated or inserted)")
            if seq < prev_seq:
                raise VerificationFailed(f"{where}: seq {seq} comes after seq {prev_seq} (lines reordered or inserted)")
            if seq > prev_seq + 1:
                gap = f"{prev_seq + 1}" if seq == prev_seq + 2 else f"{prev_seq + 1}..{seq - 1}"
                raise VerificationFailed(
                    f"{where}: seq jumps from {prev_seq} to {seq}; seq {gap} is missing here (a line deleted or moved)"
                )
            if event["prev_hash"] != prev_hash:
                raise VerificationFailed(
                    f"{where}: its prev_hash does not link to the hash of seq {prev_seq} (a line replaced or inserted)"
                )
        if event_hash(event["prev_hash"], event) != event["hash"]:
            raise VerificationFailed(f"{where}: its hash does not match its content (an edited field)")
        for checkpoint in wanted.get(seq, ()):
            if checkpoint.hash != event["hash"]:
                raise VerificationFailed(
                    f"{checkpoint.label}: its hash for seq {seq} ({checkpoint.hash[:16]}…) is not the export's "
                    f"({event['hash'][:16]}…)"
                )
        prev_seq, prev_hash = seq, event["hash"]
        count += 1
    if workspace_id is None:
        raise VerificationFailed("the export holds no events")
    for checkpoint in checkpoints:
        if not first_seq <= checkpoint.seq <= prev_seq:
            raise VerificationFailed(
                f"{checkpoint.label}: its seq {checkpoint.seq} is not in the export (seq {first_seq}..{prev_seq})"
            )
    return ExportSummary(workspace_id, count, first_seq, prev_seq)


# ----------------------------------------------------------------------------- receipts


def verify_receipt(token: str, keys: Mapping, action: Mapping | None = None) -> str:
    """Check a receipt's signature and, given the action as served, that its digest is the action's.

    Returns the success line; raises VerificationFailed naming what does not hold.
    """
    try:
        verified = verify_compact(token, keys, RECEIPT_TYPE)
    except EvidenceError as error:
        raise VerificationFailed(f"receipt: {error}") from None
    claims = verified.claims
    approvers = claims.get("approvers")
    if (
        claims.get("iss") != ISSUER
        or not isinstance(claims.get("sub"), str)
        or not isinstance(claims.get("ws"), str)
        or not isinstance(claims.get("digest"), str)
        or not _DIGEST.match(claims["digest"])
        or not isinstance(approvers, list)
        or not all(isinstance(item, dict) for item in approvers)
        or not isinstance(claims.get("iat"), int)
    ):
        raise VerificationFailed(
            "receipt: its claims are not an approval receipt's (iss, sub, ws, digest, approvers, iat)"
        )
    if action is not None:
        if not isinstance(action, Mapping):
            raise VerificationFailed("action: not a JSON object")
        try:
            recomputed = action_digest(digest_fields_of(action))
        except (KeyError, TypeError) as error:
            raise VerificationFailed(f"action: lacks the field {error} that the digest covers") from None
        if claims["sub"] != action.get("id"):
            raise VerificationFailed(
                f"receipt: it is for action {claims['sub']}, the action file is {action.get('id')}"
            )
        if claims["ws"] != action.get("workspace_id"):
            raise VerificationFailed(
                f"receipt: it is for workspace {claims['ws']}, the action is of {action.get('workspace_id')}"
            )
        if claims["digest"] != recomputed:
            raise VerificationFailed(
                f"receipt: its digest {claims['digest']} is not the action's, recomputed as {recomputed} "
                "(the action is not what was approved)"
            )
        if action.get("digest") != recomputed:
            raise VerificationFailed(
                f"action: its digest field {action.get('digest')} is not its content's {recomputed}"
            )
    names = ", ".join(str(item.get("name")) for item in approvers) or "nobody"
    checked = "matches the action" if action is not None else "action not given"
    return (
        f"verified receipt for {claims['sub']} (digest {claims['digest']}, {checked}; kid {verified.kid}; "
        f"approved by {names})"
    )


# ----------------------------------------------------------------------------- the command


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="audittrail-verify",
        description="Verify an AuditTrail audit export (hash chain and signed checkpoints) or an approval receipt, "
        "offline.",
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--events", metavar="FILE", help="an NDJSON export (GET /api/v1/audit/events); - for stdin")
    what.add_argument("--receipt", metavar="JWS_OR_FILE", help="an action's approval_receipt, or a file holding it")
    parser.add_argument("--keys", metavar="FILE", required=True, help="the JWK Set of GET /api/v1/signing-keys")
    parser.add_argument(
        "--checkpoint",
        metavar="JWS_OR_FILE",
        action="append",
        default=[],
        help="a checkpoint to hold against the export (repeatable); with --events",
    )
    parser.add_argument("--action", metavar="FILE", help="the action as served (detail or list item); with --receipt")
    return parser


def _open_lines(argument: str):
    if argument == "-":
        return sys.stdin.buffer
    try:
        return open(argument, "rb")  # noqa: SIM115 — closed by main
    except OSError as error:
        raise UnusableInput(f"cannot read {argument}: {error}") from None


def run(argv: list[str] | None = None) -> tuple[int, str]:
    """Run the command; returns the exit status and the line to print."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.checkpoint and args.events is None:
        parser.error("--checkpoint goes with --events")
    if args.action and args.receipt is None:
        parser.error("--action goes with --receipt")
    try:
        keys = load_keys(args.keys)
        if args.receipt is not None:
            action = read_json_file(args.action, "action") if args.action else None
            return 0, verify_receipt(read_token(args.receipt), keys, action)
        checkpoints = [
            verify_checkpoint(read_token(argument), keys, f"checkpoint {index} ({_short(argument)})")
            for index, argument in enumerate(args.checkpoint, start=1)
        ]
        handle = _open_lines(args.events)
        try:
            summary = verify_export(handle, checkpoints)
        finally:
            if handle is not sys.stdin.buffer:
                handle.close()
    except UnusableInput as error:
        return 2, f"audittrail-verify: {error}"
    except VerificationFailed as error:
        return 1, f"audittrail-verify: NOT VERIFIED: {error}"
    kids = ", ".join(dict.fromkeys(checkpoint.kid for checkpoint in checkpoints)) or "none"
    return 0, (
        f"verified {summary.count} events, seq {summary.first_seq}..{summary.last_seq}, "
        f"{len(checkpoints)} checkpoints (kid {kids})"
    )


def _short(argument: str) -> str:
    # A file by its name; a token given inline by its ends.
    if not looks_like_compact_jws(argument) or len(argument) <= 40:
        return argument
    return "inline " + argument[:12] + "…" + argument[-8:]


def main(argv: list[str] | None = None) -> int:
    """The console script's entry point."""
    status, line = run(argv)
    print(line, file=sys.stdout if status == 0 else sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
