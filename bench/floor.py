"""The floor: a bare Flask app whose one route answers a fixed JSON body.

Served by gunicorn with the same settings as the real app, it measures what the machine, the
WSGI server and the load generator cost by themselves. BENCH_FLOOR_BYTES sets the body size
(the size of a real list page, so that the floor moves the same bytes).
"""

from __future__ import annotations

import json
import os

from flask import Flask
from flask import Response

_SIZE = int(os.environ.get("BENCH_FLOOR_BYTES", "20000"))
_FILLER = max(0, _SIZE - len(json.dumps({"items": [], "filler": ""})))
BODY = json.dumps({"items": [], "filler": "x" * _FILLER}).encode()

app = Flask(__name__)


@app.get("/floor")
def floor() -> Response:
    return Response(BODY, mimetype="application/json")


@app.get("/healthz")
def healthz() -> Response:
    return Response(b'{"status":"ok"}', mimetype="application/json")
