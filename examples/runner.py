#!/usr/bin/env python3
"""A reference runner for AuditTrail: executes approved deployment actions, each exactly once.

It uses only the public HTTP API (the standard library's urllib; nothing of the `audittrail`
server), and the offline verifier's package `audittrail_evidence` (evidence.md) to check receipts:

1. On its first start (no state file) it reads where the audit log ends, executes every action
   that is `approved` at that moment, and remembers that position.
2. Then it follows GET /api/v1/events as Server-Sent Events from its last `seq`, reconnecting with
   Last-Event-ID whenever the stream ends or breaks, so it misses nothing across restarts.
3. For each `approved` event it reads the action again and, if it is still `approved`, calls the
   handler, then reports POST …/mark-executed with the handler's outcome and If-Match on the
   version it read (so an action rejected meanwhile is never marked executed). Before the handler
   runs, the action's `approval_receipt` must verify against the published signing keys and match
   the action as read; the `digest` it vouches for goes with mark-executed, so the server records
   `digest_verified` (or refuses with 409 `digest_mismatch` if the action is not what was approved).
4. After each event it writes the event's `seq` to its state file (atomically).

    AUDITTRAIL_URL=http://127.0.0.1:5000 AUDITTRAIL_API_KEY=sk-at-… python3 examples/runner.py
    python3 examples/runner.py --handler mypackage.deploy:handle

A handler is a function `handle(action: dict) -> dict` returning the outcome to record (never
None). It must be idempotent per action id: a runner killed after the handler ran but before
mark-executed was recorded runs it again for that action after a restart (see the README).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import signal
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

from audittrail_evidence.jws import keys_from_jwks
from audittrail_evidence.verify import VerificationFailed
from audittrail_evidence.verify import verify_receipt

log = logging.getLogger("audittrail.runner")

Handler = Callable[[dict], dict]


def log_only(action: dict) -> dict:
    """The default handler: executes nothing, logs the action, and says so in the outcome."""
    log.info("would execute %s on %s (%s)", action["action_type"], action["target_ref"], action["id"])
    return {"status": "logged", "executed": False, "runner": "examples/runner.py", "handler": "log_only"}


class ApiError(Exception):
    def __init__(self, status: int, body: dict):
        error = body.get("error", {}) if isinstance(body, dict) else {}
        self.status = status
        self.code = error.get("code", f"http_{status}")
        super().__init__(f"{status} {self.code}: {error.get('message', '')}")


class Client:
    """JSON over HTTP with the API key; every error as ApiError (network errors as OSError)."""

    def __init__(self, url: str, api_key: str, timeout: float = 30):
        self.base = url.rstrip("/") + "/api/v1"
        self.api_key = api_key
        self.timeout = timeout

    def request(self, method: str, path: str, body: dict | None = None, headers: dict | None = None) -> dict:
        request = urllib.request.Request(
            self.base + path,
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={
                "Authorization": f"Bearer {self.api_key}",
                "Accept": "application/json",
                "Content-Type": "application/json",
                **(headers or {}),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            try:
                payload = json.loads(error.read() or b"{}")
            except ValueError:
                payload = {}
            raise ApiError(error.code, payload) from None

    def stream(self, last_seq: int):
        """Yield (seq, type, item) from the event stream after `last_seq`, until the server ends it."""
        request = urllib.request.Request(
            self.base + "/events",
            headers={
                "Authorization": f"Bearer {self.api_key}",
                "Accept": "text/event-stream",
                "Last-Event-ID": str(last_seq),
            },
        )
        try:
            response = urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as error:
            raise ApiError(error.code, _json_or_empty(error.read())) from None
        with response:
            fields: dict[str, str] = {}
            for raw in response:
                line = raw.decode("utf-8").rstrip("\r\n")
                if line == "":
                    if "id" in fields and "data" in fields:
                        yield int(fields["id"]), fields.get("event", "message"), json.loads(fields["data"])
                    fields = {}
                elif not line.startswith(":"):
                    name, _, value = line.partition(":")
                    fields[name] = value[1:] if value.startswith(" ") else value


def _json_or_empty(raw: bytes) -> dict:
    try:
        return json.loads(raw or b"{}")
    except ValueError:
        return {}


class State:
    """The last `seq` handled, in a small JSON file written atomically (rename over the old one)."""

    def __init__(self, path: Path):
        self.path = path

    def load(self) -> int | None:
        try:
            return int(json.loads(self.path.read_text())["last_seq"])
        except FileNotFoundError:
            return None

    def save(self, seq: int) -> None:
        directory = self.path.parent if str(self.path.parent) else Path(".")
        fd, temporary = tempfile.mkstemp(prefix=".runner-state-", dir=directory)
        with os.fdopen(fd, "w") as handle:
            json.dump({"last_seq": seq}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)


class Runner:
    """Follows the event stream and executes each approved action once."""

    def __init__(self, client: Client, state: State, handler: Handler = log_only):
        self.client = client
        self.state = state
        self.handler = handler
        self.stopping = False
        self._keys: dict | None = None

    def verified_digest(self, action: dict) -> str | None:
        """The digest the action's receipt vouches for, or None when the receipt does not hold.

        The published keys are read once, and again once when a receipt names a key not seen yet
        (the server rotated its key).
        """
        token = action.get("approval_receipt")
        if not token:
            log.error("not executing %s: it has no approval receipt", action["id"])
            return None
        for refresh in (self._keys is None, True):
            if refresh:
                self._keys = keys_from_jwks(self.client.request("GET", "/signing-keys"))
            try:
                verify_receipt(token, self._keys, action)
                return action["digest"]
            except VerificationFailed as error:
                if "unknown kid" not in str(error) or refresh:
                    log.error("not executing %s: %s", action["id"], error)
                    return None
        return None

    def head(self) -> int:
        """The seq of the workspace's last event, read by paging the feed (first start only)."""
        after = 0
        while True:
            page = self.client.request("GET", f"/events?after={after}&limit=500")
            if not page["items"]:
                return after
            after = page["next_after"]

    def approved_now(self) -> list[str]:
        ids, cursor = [], None
        while True:
            query = {"status": "approved", "limit": "200", **({"cursor": cursor} if cursor else {})}
            page = self.client.request("GET", "/deployments/actions?" + urllib.parse.urlencode(query))
            ids += [action["id"] for action in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                return ids

    def start(self) -> int:
        """Where to follow from; on the first start, after executing what is approved right now."""
        last = self.state.load()
        if last is not None:
            log.info("resuming after seq %s", last)
            return last
        # Read the head first: anything approved after it arrives on the stream, anything before
        # it is in the list below (and an action found both ways is executed once, see execute()).
        head = self.head()
        for action_id in reversed(self.approved_now()):
            self.execute(action_id)
        self.state.save(head)
        log.info("first start: following from seq %s", head)
        return head

    def execute(self, action_id: str) -> bool:
        """Run the handler for an action that is still approved, then mark it executed; True if we did."""
        action = self.client.request("GET", f"/deployments/actions/{urllib.parse.quote(action_id)}")
        if action["status"] != "approved":
            log.info("skipping %s: it is %s now", action_id, action["status"])
            return False
        digest = self.verified_digest(action)
        if digest is None:
            return False
        outcome = self.handler(action)
        if not isinstance(outcome, dict):
            raise TypeError(f"the handler must return a dict outcome, got {outcome!r}")
        try:
            self.client.request(
                "POST",
                f"/deployments/actions/{urllib.parse.quote(action_id)}/mark-executed",
                {"outcome": outcome, "digest": digest},
                headers={"If-Match": f'"{action["version"]}"'},
            )
        except ApiError as error:
            if error.code in ("version_mismatch", "invalid_transition", "digest_mismatch"):
                # Rejected (or marked by another runner) between our read and our report.
                log.warning("not marked executed: %s changed meanwhile (%s)", action_id, error.code)
                return False
            raise
        log.info("executed %s", action_id)
        return True

    def run(self) -> None:
        last = self._retrying(self.start)
        delay = 0.5
        while not self.stopping:
            try:
                for seq, event_type, item in self.client.stream(last):
                    if event_type == "approved" and item.get("action_id"):
                        self.execute(item["action_id"])
                    self.state.save(seq)
                    last = seq
                    delay = 0.5
                    if self.stopping:
                        return
                # The server ended the stream (its maximum life): reconnect from `last` at once.
            except (OSError, ApiError, ValueError) as error:
                log.warning("stream interrupted (%s); reconnecting in %.1f s", error, delay)
                time.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _retrying(self, call):
        delay = 0.5
        while True:
            try:
                return call()
            except (OSError, ApiError) as error:
                log.warning("%s; retrying in %.1f s", error, delay)
                time.sleep(delay)
                delay = min(delay * 2, 10.0)


def load_handler(spec: str | None) -> Handler:
    """`module:function` (importable from the working directory), or the default log-only handler."""
    if not spec:
        return log_only
    module_name, _, function_name = spec.partition(":")
    if not function_name:
        raise SystemExit(f"--handler must be module:function, got {spec!r}")
    sys.path.insert(0, os.getcwd())
    return getattr(importlib.import_module(module_name), function_name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Execute approved AuditTrail deployment actions, each once.")
    environ = os.environ.get
    parser.add_argument(
        "--url",
        default=environ("AUDITTRAIL_URL", "http://127.0.0.1:5000"),
        help="the site root (env AUDITTRAIL_URL; default http://127.0.0.1:5000)",
    )
    parser.add_argument(
        "--api-key",
        default=environ("AUDITTRAIL_API_KEY"),
        help="an sk-at- key with actions:read and actions:execute (env AUDITTRAIL_API_KEY)",
    )
    parser.add_argument(
        "--state",
        default=environ("AUDITTRAIL_RUNNER_STATE", ".runner-state"),
        help="the file keeping the last seq (env AUDITTRAIL_RUNNER_STATE; default .runner-state)",
    )
    parser.add_argument(
        "--handler",
        default=environ("AUDITTRAIL_RUNNER_HANDLER"),
        help="module:function called with each approved action, returning the outcome "
        "(env AUDITTRAIL_RUNNER_HANDLER; default: only log)",
    )
    args = parser.parse_args(argv)
    if not args.api_key:
        parser.error("an API key is needed: --api-key or AUDITTRAIL_API_KEY")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    runner = Runner(Client(args.url, args.api_key), State(Path(args.state)), load_handler(args.handler))

    def stop(signum, frame):
        runner.stopping = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        runner.run()
    except KeyboardInterrupt:
        log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
