"""`python -m bench.webhooks` (part of `make bench`): propose p50 with 3 webhooks subscribed vs none.

webhooks.md §3: "a delivery never blocks a request: proposing stays as fast as it was". One run,
one database, one gunicorn (`-w 2`, production settings) and one `flask webhooks worker` at idle
priority (as the README's systemd unit runs it):
- workspace A has no webhook; workspace B has 3 webhooks subscribed to every event type, pointing
  at a receiver on loopback (http.server in its own process, at idle priority too, since in
  production it is on another host);
- the propose load alternates A B A B … (ROUNDS of each, `--duration` seconds per round, same
  connections), so drift on the machine touches both sides alike;
- before every round the worker has delivered everything B's proposals so far called for (the
  receiver has counted them), so an A round never runs beside B's backlog: A is proposing with
  nothing to deliver, B is proposing while its own deliveries are made;
- reported: each round's p50, the median of each side, and their ratio B / A (bench/results/webhooks.md),
  with how many deliveries the receiver got meanwhile. A ratio, measured in this run, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer

from bench.load import Request
from bench.load import find_wrk
from bench.load import run_load
from bench.run import PROPOSE_BODY
from bench.run import RESULTS
from bench.run import ROOT
from bench.run import SECRET
from bench.run import WORK
from bench.run import app_environment
from bench.run import gunicorn
from bench.run import log
from bench.run import migrate
from bench.run import prepare_postgres

ROUNDS = 6
WEBHOOKS = 3


DRAIN_TIMEOUT = 600.0
# The worker runs at the idle scheduling class, as the README's systemd unit runs it
# (CPUSchedulingPolicy=idle): it takes only the CPU the requests leave.
IDLE = ["chrt", "--idle", "0"] if shutil.which("chrt") else ["nice", "-n", "19"]


class _Handler(BaseHTTPRequestHandler):
    """POST: a delivery, counted and answered 200 at once. GET: the count so far."""

    count = 0
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802 — http.server's name
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with _Handler.lock:
            _Handler.count += 1
        self._answer(b"")

    def do_GET(self):  # noqa: N802
        self._answer(str(_Handler.count).encode())

    def _answer(self, body: bytes):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def serve_receiver() -> None:
    """`python -m bench.webhooks --receiver`: prints its port, then serves until killed."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    print(server.server_port, flush=True)
    server.serve_forever()


class _Receiver:
    """The receiver in its own process, at idle priority: in production it is on another host, and
    here it must not take the cores from the requests being measured."""

    def __init__(self):
        self.process = subprocess.Popen(
            [*IDLE, sys.executable, "-m", "bench.webhooks", "--receiver"], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        port = int(self.process.stdout.readline())
        self.base = f"http://127.0.0.1:{port}"
        self.url = f"{self.base}/hook"

    @property
    def count(self) -> int:
        with urllib.request.urlopen(self.base + "/count", timeout=10) as response:
            return int(response.read())

    def wait_for(self, expected: int, timeout: float = DRAIN_TIMEOUT) -> float:
        """Wait until `expected` deliveries have arrived; the seconds it took."""
        started = time.monotonic()
        while self.count < expected:
            if time.monotonic() - started > timeout:
                log(f"webhooks: the worker delivered {self.count} of {expected} in {timeout:.0f} s; going on")
                break
            time.sleep(0.2)
        return time.monotonic() - started

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def _world(database_url: str, receiver_url: str) -> dict[str, str]:
    """Two workspaces with an admin and an API key each; B gets the webhooks. Returns {side: key}."""
    from audittrail import create_app
    from audittrail.extensions import db
    from audittrail.services import api_keys
    from audittrail.services import users
    from audittrail.services import webhooks
    from audittrail.services.actors import user_actor
    from audittrail.services.webhook_http import UrlRules

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": SECRET, "JWT_SECRET_KEY": SECRET})
    keys = {}
    with app.app_context():
        now = datetime.now(UTC)
        for side in ("A", "B"):
            workspace = users.create_workspace(f"Bench {side}", now)
            admin = users.create_user(workspace, f"admin-{side.lower()}@bench.example.test", "Admin", now, role="admin")
            db.session.commit()
            keys[side] = api_keys.create_api_key(admin, "bench", now)[1]
            if side == "B":
                for number in range(WEBHOOKS):
                    webhooks.create_webhook(user_actor(admin), f"{receiver_url}/{number}", now, UrlRules(strict=False))
        db.session.remove()
        db.engine.dispose()
    return keys


def _fresh_sqlite() -> str:
    # Not bench.sqlite: bench.profile replays against what bench.run left there.
    path = WORK / "webhooks.sqlite"
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    return f"sqlite:///{path}"


def bench_backend(backend: str, database_url: str, args, wrk) -> dict:
    migrate(database_url)
    receiver = _Receiver()
    keys = _world(database_url, receiver.url)
    env = app_environment(database_url)
    worker_env = {**env, "AUDITTRAIL_WEBHOOK_ALLOW_PRIVATE": "true"}  # the receiver is on loopback
    worker = subprocess.Popen(
        [*IDLE, sys.executable, "-m", "flask", "--app", "wsgi", "webhooks", "worker"],
        cwd=ROOT,
        env=worker_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rounds = {"A": [], "B": []}
    drained_s = []
    # Each webhook also receives the `webhook_created` events of the webhooks made after it.
    expected = WEBHOOKS * (WEBHOOKS - 1) // 2
    try:
        with gunicorn("wsgi:app", env) as base:
            plan = [Request("POST", "/api/v1/deployments/actions", PROPOSE_BODY)]
            for side in ("A", "B"):  # warm-up, not recorded
                warm = run_load(
                    base, plan, {"X-API-Key": keys[side]}, args.warmup, args.connections, args.max_requests, wrk=wrk
                )
                if side == "B":
                    expected += WEBHOOKS * (warm.requests - warm.failures)
            for number in range(args.rounds):
                for side in ("A", "B"):
                    drained_s.append(receiver.wait_for(expected))
                    result = run_load(
                        base, plan, {"X-API-Key": keys[side]}, args.duration, args.connections, args.max_requests,
                        wrk=wrk,
                    )  # fmt: skip
                    rounds[side].append(result.as_dict())
                    if side == "B":
                        expected += WEBHOOKS * (result.requests - result.failures)
                    log(
                        f"webhooks {backend} round {number + 1} {side}: p50 {result.p50_ms:.2f} ms, "
                        f"{result.rps:.0f} req/s, failures {result.failures}, delivered so far {receiver.count}"
                    )
    finally:
        worker.terminate()
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(10)
        delivered = receiver.count
        receiver.stop()
    medians = {side: statistics.median(r["p50_ms"] for r in rounds[side]) for side in rounds}
    return {
        "rounds": rounds,
        "median_p50_ms": medians,
        "ratio": medians["B"] / medians["A"] if medians["A"] else float("nan"),
        "proposals_with_webhooks": sum(r["requests"] for r in rounds["B"]),
        "deliveries_received": delivered,
        "drain_wait_s": {"median": statistics.median(drained_s), "max": max(drained_s)},
    }


def markdown(results: dict) -> str:
    lines = [
        "# webhooks.md §3: propose p50 with 3 webhooks subscribed vs none",
        "",
        f"{results['started_at']}, gunicorn -w 2, one `flask webhooks worker`, {os.cpu_count()} cores, "
        f"rounds of {results['duration_s']:.0f} s interleaved A B A B ({results['connections']} connections)",
        "",
        "| backend | p50 per round, none (A) | p50 per round, 3 webhooks (B) | median A | median B | B / A "
        "| deliveries |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for backend, result in results["backends"].items():
        a = ", ".join(f"{r['p50_ms']:.1f}" for r in result["rounds"]["A"])
        b = ", ".join(f"{r['p50_ms']:.1f}" for r in result["rounds"]["B"])
        lines.append(
            f"| {backend} | {a} | {b} | {result['median_p50_ms']['A']:.1f} ms | {result['median_p50_ms']['B']:.1f} ms "
            f"| **{result['ratio']:.2f}×** | {result['deliveries_received']} of "
            f"{result['proposals_with_webhooks'] * WEBHOOKS} |"
        )
    lines += [
        "",
        "Within noise means the ratio sits inside the spread of the A rounds themselves: a proposal writes its "
        "row and its event, and the webhooks read the event later, from another process.",
        "Every round starts once the receiver has every delivery the B rounds so far called for (waits: "
        + ", ".join(
            f"{backend} median {r['drain_wait_s']['median']:.1f} s, longest {r['drain_wait_s']['max']:.1f} s"
            for backend, r in results["backends"].items()
        )
        + "), so no A round runs beside B's backlog.",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per round")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="rounds of each side, interleaved")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--max-requests", type=int, default=50_000)
    parser.add_argument("--receiver", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.receiver:
        serve_receiver()
        return 0
    WORK.mkdir(parents=True, exist_ok=True)
    wrk = find_wrk(install=True)
    results = {
        "started_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "duration_s": args.duration,
        "connections": args.connections,
        "backends": {},
    }
    for backend in args.backends.split(","):
        database_url = _fresh_sqlite() if backend == "sqlite" else prepare_postgres("bench_webhooks")
        if database_url is None:
            continue
        results["backends"][backend] = bench_backend(backend, database_url, args, wrk)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "webhooks.json").write_text(json.dumps(results, indent=2))
    text = markdown(results)
    (RESULTS / "webhooks.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
