"""Test helpers for webhooks: a real HTTP receiver on loopback, the real worker as a subprocess,
and a signature check written by hand from the Standard Webhooks text (not the app's code)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from dataclasses import field
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Received:
    """One request as the receiver saw it."""

    headers: dict
    body: bytes
    at: float
    path: str = ""

    @property
    def json(self) -> dict:
        return json.loads(self.body)

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]


@dataclass
class Reply:
    status: int = 200
    headers: dict = field(default_factory=dict)
    delay: float = 0.0


class Receiver:
    """An http.server in a thread. `script` is a list of Replies used in turn, then `default`."""

    def __init__(self):
        self.requests: list[Received] = []
        self.script: list[Reply] = []
        self.default = Reply()
        self.hold = threading.Event()  # set: requests wait until it is cleared (a "hanging" receiver)
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 — http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.requests.append(
                        Received({k.lower(): v for k, v in self.headers.items()}, body, time.monotonic(), self.path)
                    )
                    reply = receiver.script.pop(0) if receiver.script else receiver.default
                while receiver.hold.is_set():
                    time.sleep(0.02)
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.hold.clear()
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, predicate, timeout: float = 10.0, what: str = "requests"):
        """Poll until predicate(requests) is true; fail naming `what` otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                snapshot = list(self.requests)
            if predicate(snapshot):
                return snapshot
            time.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what}; got {len(self.requests)}: "
                             f"{[r.headers.get('webhook-id') for r in self.requests]}")  # fmt: skip

    def types(self) -> list[str]:
        with self._lock:
            return [request.json["type"] for request in self.requests]


def verify_signature(secret: str, received: Received, tolerance: int = 300) -> bool:
    """The receiver's check, by hand: HMAC-SHA256 over id.timestamp.body, base64, constant-time."""
    key = base64.b64decode(secret[len("whsec_") :])
    message_id = received.headers["webhook-id"]
    timestamp = received.headers["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    expected = base64.b64encode(
        hmac.new(key, f"{message_id}.{timestamp}.".encode() + received.body, hashlib.sha256).digest()
    ).decode()
    offered = [
        part.split(",", 1)[1] for part in received.headers["webhook-signature"].split() if part.startswith("v1,")
    ]
    return any(hmac.compare_digest(expected, candidate) for candidate in offered)


FAST = {
    "AUDITTRAIL_WEBHOOK_RETRY_SCALE": "0.00001",
    "AUDITTRAIL_WEBHOOK_POLL_SECONDS": "0.05",
    "AUDITTRAIL_WEBHOOK_TIMEOUT_SECONDS": "2",
    "AUDITTRAIL_WEBHOOK_LEASE_SECONDS": "3",
}


class WorkerProcess:
    """`flask --app wsgi webhooks worker` on the given database, in its own process."""

    def __init__(self, database_url: str, env: dict | None = None):
        self.environ = {
            **os.environ,
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test-secret-key-0123456789abcdef0123456789",
            "JWT_SECRET_KEY": "test-jwt-secret-key-0123456789abcdef0123456789",
            "AUDITTRAIL_ENV": "development",
            **FAST,
            **(env or {}),
        }
        self.process: subprocess.Popen | None = None
        # A file, not a pipe: nobody reads the log while the worker runs, and a full pipe would block it.
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 — closed by __exit__

    def start(self) -> WorkerProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "webhooks", "worker"],
            cwd=ROOT,
            env=self.environ,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        return self

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        self.log.close()
