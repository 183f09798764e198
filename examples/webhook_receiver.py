"""A webhook receiver in the standard library alone: verify, refuse stale, deduplicate, then act.

    WEBHOOK_SECRET=whsec_… python examples/webhook_receiver.py   # listens on 127.0.0.1:8088

Deliveries are at least once: the same `webhook-id` may arrive more than once (a retry after a
timeout, a worker killed after sending). Answer 2xx quickly once the message is safely yours.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer

TOLERANCE_SECONDS = 5 * 60
MAX_BODY = 1024 * 1024


def verify(secret: str, headers, body: bytes, now: float | None = None) -> bool:
    """Standard Webhooks: HMAC-SHA256 over "{id}.{timestamp}.{body}", base64, `v1,` prefixed."""
    message_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    if not message_id or not timestamp.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > TOLERANCE_SECONDS:
        return False  # too old (a replay) or from the future
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for candidate in headers.get("webhook-signature", "").split():
        version, _, signature = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return True
    return False


class Seen:
    """The ids already handled. Keep them longer than the tolerance window (a database in real life)."""

    def __init__(self):
        self.ids: dict[str, float] = {}

    def first_time(self, message_id: str) -> bool:
        cutoff = time.time() - 2 * TOLERANCE_SECONDS
        self.ids = {key: at for key, at in self.ids.items() if at >= cutoff}
        if message_id in self.ids:
            return False
        self.ids[message_id] = time.time()
        return True


SEEN = Seen()


def handle(message: dict) -> None:
    """Your work. `data.event.seq` orders the events (delivery order is not promised)."""
    event = message.get("data", {}).get("event") or {}
    print(message["type"], event.get("seq"), (message["data"].get("action") or {}).get("id"))


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 — http.server's name
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return self._answer(413)
        body = self.rfile.read(length)
        headers = {name.lower(): value for name, value in self.headers.items()}
        if not verify(os.environ["WEBHOOK_SECRET"], headers, body):
            return self._answer(401)
        if SEEN.first_time(headers["webhook-id"]):
            handle(json.loads(body))
        self._answer(204)  # a duplicate is acknowledged too, or it would be sent again

    def _answer(self, status: int):
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8088"))), Receiver).serve_forever()
