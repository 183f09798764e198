"""`make bench-quick` (`python -m bench.quick`): the app against the lean reference, in one process.

Seeds a SQLite workspace of 1 500 actions, builds the app (production settings, in-memory rate
limit storage) and the lean reference (bench/lean.py) on the same file, checks that both give the
same answers, then times each endpoint's request on one side, then the other (A B A B …, the
order flipped each round), through each app's WSGI test client: no network, no server. Prints
the ratio of the app's median time to the lean one's, per endpoint, against its target. Quick
enough to run before every commit that touches the read path (well under 2 minutes).

Exit status 1 when a target is missed, so it can gate a commit.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from datetime import UTC
from datetime import datetime
from pathlib import Path

from bench import seed
from bench.lean import make_app as make_lean_app

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / "results" / "quick"
API = "/api/v1/deployments"
SECRET = "bench-secret-key-0123456789abcdef0123456789abcdef"
SIGNING_KEY = "YmVuY2gtc2lnbmluZy1rZXktMDEyMzQ1Njc4OWFiY2Q="  # base64 of 32 raw bytes; a bench value only
PROPOSE_BODY = json.dumps(
    {
        "action_type": "throttle",
        "target_ref": "svc_checkout_api",
        "reason": "Cost spike: token spend 3.2x the 7-day baseline",
        "mode": "supervised",
        "payload": {"percent": 20},
        "ttl_seconds": 86400,
    }
)
# The targets: the app's time at most this many times the lean route's.
TARGETS = {"list": 3.0, "detail": 3.0, "summary": 3.0, "propose": 4.0, "approve": 4.0}


def log(message: str) -> None:
    print(f"[bench-quick {time.strftime('%H:%M:%S')}] {message}", flush=True)


def app_environment(database_url: str) -> dict:
    return {
        "AUDITTRAIL_ENV": "production",
        "DATABASE_URL": database_url,
        "SECRET_KEY": SECRET,
        "JWT_SECRET_KEY": SECRET,
        "AUDITTRAIL_SIGNING_KEY": SIGNING_KEY,
        "AUDITTRAIL_TRANSITION_RATE_LIMIT": "100000000/minute",
        "RATELIMIT_STORAGE_URI": "memory://",
        "DEMO_LOGIN_ENABLED": "false",
    }


def migrate(database_url: str) -> None:
    import subprocess

    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env={**os.environ, **app_environment(database_url)},
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def comparable(body: dict) -> dict:
    """An answer without what differs by the moment it was made (the summary's `as_of`)."""
    return {key: value for key, value in body.items() if key != "as_of"}


def same_answers(app_client, lean_client, headers, plans: dict) -> None:
    """Each read endpoint's answer from the app equals the lean reference's, or we stop: a fair race only."""
    for name in ("list", "deep_page", "filtered", "detail", "summary"):
        (app_path, lean_path) = plans[name][0]
        ours = app_client.get(app_path, headers=headers)
        lean = lean_client.get(lean_path)
        assert ours.status_code == 200 and lean.status_code == 200, (name, ours.status_code, lean.status_code)
        if comparable(ours.get_json()) != comparable(lean.get_json()):
            mine, theirs = comparable(ours.get_json()), comparable(lean.get_json())
            raise SystemExit(f"{name}: the lean reference does not give the app's answer:\n{mine}\n---\n{theirs}")


def time_pair(app_call, lean_call, rounds: int) -> tuple[list[float], list[float]]:
    """Each side's CPU time per request (this thread's: SQLite runs in it), A B then B A, round after round.

    CPU time rather than wall time: on a machine shared with other work, a request that waits
    for a core is not slower, and both sides do the same I/O (the same rows, the same commits).
    """
    app_times, lean_times = [], []
    for index in range(rounds):
        order = ((app_call, app_times), (lean_call, lean_times))
        for call, times in order if index % 2 == 0 else reversed(order):
            started = time.thread_time()
            call(index)
            times.append(time.thread_time() - started)
    return app_times, lean_times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=150, help="requests per side and read endpoint")
    parser.add_argument("--write-rounds", type=int, default=150, help="requests per side for propose and approve")
    args = parser.parse_args(argv)
    started = time.monotonic()
    load_start = os.getloadavg()

    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / "quick.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    database_url = f"sqlite:///{path}"
    migrate(database_url)
    os.environ.update(app_environment(database_url))
    from audittrail import create_app
    from audittrail.extensions import db

    app = create_app()
    rng = random.Random(20261202)
    with app.app_context():
        world = seed.create_world(datetime.now(UTC))
        seed.grow_to(world, args.rows, datetime.now(UTC), rng)
        detail_ids = seed.seed_detail_events(world, datetime.now(UTC))
        cursor = seed.deep_cursor(world)
        api_key_id = db.session.execute(db.text("SELECT id FROM api_keys")).scalar()
        pool = seed.approvable_ids(world, datetime.now(UTC), 10**6)
        wanted = 2 * args.write_rounds + 10
        if len(pool) < wanted:
            seed.insert_rows([seed.pool_row(rng, world, datetime.now(UTC)) for _ in range(wanted - len(pool))])
            pool = seed.approvable_ids(world, datetime.now(UTC), wanted)
        db.session.remove()
    rng.shuffle(pool)
    lean = make_lean_app(database_url, world.workspace_id, world.operator_id, SIGNING_KEY, api_key_id)
    app_client, lean_client = app.test_client(), lean.test_client()
    headers = {"X-API-Key": world.api_key}
    log(f"seeded {args.rows:,} actions in {time.monotonic() - started:.1f} s")

    def pair(path: str) -> tuple[str, str]:
        return API + path, "/lean" + path

    plans = {
        "list": [pair("/actions?limit=50")],
        "deep_page": [pair(f"/actions?limit=50&cursor={cursor}")],
        "filtered": [pair("/actions?status=rejected&limit=50")],
        "detail": [pair(f"/actions/{action_id}") for action_id in detail_ids],
        "summary": [pair("/summary?tz=UTC")],
    }
    same_answers(app_client, lean_client, headers, plans)
    log("the app and the lean reference give the same answers")

    def reads(name):
        paths = plans[name]

        def ours(index):
            response = app_client.get(paths[index % len(paths)][0], headers=headers)
            assert response.status_code == 200, response.status_code

        def theirs(index):
            response = lean_client.get(paths[index % len(paths)][1])
            assert response.status_code == 200, response.status_code

        return ours, theirs

    def propose_calls():
        def ours(index):
            response = app_client.post(
                f"{API}/actions", data=PROPOSE_BODY, headers=headers, content_type="application/json"
            )
            assert response.status_code == 201, response.get_data(as_text=True)

        def theirs(index):
            response = lean_client.post("/lean/actions", data=PROPOSE_BODY, content_type="application/json")
            assert response.status_code == 201, response.get_data(as_text=True)

        return ours, theirs

    def approve_calls():
        mine, others = pool[0::2], pool[1::2]

        def ours(index):
            response = app_client.post(
                f"{API}/actions/{mine[index]}/approve", data='{"note": "bench"}', headers=headers,
                content_type="application/json",
            )  # fmt: skip
            assert response.status_code == 200, response.get_data(as_text=True)

        def theirs(index):
            response = lean_client.post(
                f"/lean/actions/{others[index]}/approve", data='{"note": "bench"}', content_type="application/json"
            )
            assert response.status_code == 200, response.get_data(as_text=True)

        return ours, theirs

    measured = {}
    warm = 10
    for name in ("list", "detail", "summary", "deep_page", "filtered"):
        ours, theirs = reads(name)
        time_pair(ours, theirs, warm)
        measured[name] = time_pair(ours, theirs, args.rounds)
    measured["propose"] = time_pair(*propose_calls(), args.write_rounds)
    measured["approve"] = time_pair(*approve_calls(), args.write_rounds)

    rows, missed = [], []
    for name, (ours, theirs) in measured.items():
        app_ms, lean_ms = statistics.median(ours) * 1000, statistics.median(theirs) * 1000
        ratio = app_ms / lean_ms
        target = TARGETS.get(name)
        verdict = "" if target is None else ("met" if ratio <= target else "MISSED")
        if verdict == "MISSED":
            missed.append(name)
        rows.append((name, app_ms, lean_ms, ratio, target, verdict))
    load_end = os.getloadavg()
    print()
    print(
        f"bench-quick: SQLite, {args.rows:,} actions, in process; median CPU ms per request of "
        f"{args.rounds} (writes {args.write_rounds}) interleaved pairs"
    )
    print(f"{'endpoint':<10} {'app ms':>8} {'lean ms':>8} {'ratio':>7}  target")
    for name, app_ms, lean_ms, ratio, target, verdict in rows:
        goal = f"≤ {target:g}×  {verdict}" if target else "(no target)"
        print(f"{name:<10} {app_ms:8.2f} {lean_ms:8.2f} {ratio:6.2f}×  {goal}")
    print(
        f"load average {load_start[0]:.2f} → {load_end[0]:.2f} on {os.cpu_count()} CPUs; "
        f"{time.monotonic() - started:.0f} s in all"
    )
    result = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "rows": args.rows,
        "load_average": [load_start[0], load_end[0]],
        "endpoints": {name: {"app_ms": a, "lean_ms": b, "ratio": r, "target": t} for name, a, b, r, t, _ in rows},
    }
    (WORK / "quick.json").write_text(json.dumps(result, indent=2))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
