"""`python -m bench.run`: seed, serve with gunicorn, load, and report (see bench/__init__.py).

For each backend (SQLite file, PostgreSQL database `bench`) and each size (1k, 100k, 1M actions
in one workspace): grow the workspace to the size, start `gunicorn -w 2 wsgi:app`, and drive
each endpoint for `--duration` seconds (after a short warm-up), then the writes (propose, then
approve on proposed rows). Before each backend, the floor (bench/floor.py under the same
gunicorn settings) gets the same load. Results: bench/results/results.json, results.md, latency.png.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from datetime import UTC
from datetime import datetime
from pathlib import Path

from bench import seed
from bench.load import Request
from bench.load import find_wrk
from bench.load import run_load
from bench.report import write_reports

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
WORK = RESULTS / "work"
API = "/api/v1/deployments"
READS = ["list", "deep_page", "filtered", "summary", "detail"]
WRITES = ["propose", "approve"]
SECRET = "bench-secret-key-0123456789abcdef0123456789abcdef"
SIGNING_KEY = "YmVuY2gtc2lnbmluZy1rZXktMDEyMzQ1Njc4OWFiY2Q="  # base64 of 32 raw bytes; a bench value only
PG_ADMIN_URL = os.environ.get("BENCH_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_DATABASE = os.environ.get("BENCH_POSTGRES_DATABASE", "bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
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


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def redis_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def app_environment(database_url: str) -> dict:
    return {
        **os.environ,
        "AUDITTRAIL_ENV": "production",
        "DATABASE_URL": database_url,
        "SECRET_KEY": SECRET,
        "JWT_SECRET_KEY": SECRET,
        "AUDITTRAIL_SIGNING_KEY": SIGNING_KEY,
        "AUDITTRAIL_TRANSITION_RATE_LIMIT": "100000000/minute",
        # The benchmarks make dozens of API keys (one per simulated client): above the 10 an hour.
        "AUDITTRAIL_API_KEY_RATE_LIMIT": "100000/hour",
        "RATELIMIT_STORAGE_URI": REDIS_URL if redis_reachable() else "memory://",
        "DEMO_LOGIN_ENABLED": "false",
    }


@contextmanager
def gunicorn(app: str, env: dict, workers: int = 2, with_process: bool = False):
    """`gunicorn -w 2 <app>` on a free loopback port; yields its base URL (and the master's Popen); stops it on exit."""
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}", app]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start: {process.stderr.read().decode()[-2000:]}")
            time.sleep(0.2)
        yield (base, process) if with_process else base
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def fetch(base: str, path: str, api_key: str) -> bytes:
    request = urllib.request.Request(base + path, headers={"X-API-Key": api_key})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read()


# --------------------------------------------------------------------------- databases


def prepare_sqlite() -> str:
    path = WORK / "bench.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path}"


def prepare_postgres(name: str = PG_DATABASE) -> str | None:
    """A fresh `bench` database (never the tests' `test`); None when PostgreSQL is unreachable."""
    import psycopg

    deadline = time.monotonic() + 30
    while True:
        try:
            with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                connection.execute(f'CREATE DATABASE "{name}"')
            break
        except psycopg.OperationalError as error:
            if time.monotonic() > deadline:
                log(f"PostgreSQL unreachable, skipped: {error}")
                return None
            time.sleep(2)
    admin = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{admin}/{name}"


def migrate(database_url: str) -> None:
    env = app_environment(database_url)
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


# --------------------------------------------------------------------------- one backend


def bench_backend(backend: str, database_url: str, args, wrk: str | None, results: dict) -> None:
    from audittrail import create_app
    from audittrail.extensions import db

    log(f"{backend}: migrating")
    migrate(database_url)
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": SECRET, "JWT_SECRET_KEY": SECRET})
    rng = random.Random(20261130)
    env = app_environment(database_url)
    headers_for = {}
    with app.app_context():
        world = seed.create_world(datetime.now(UTC))
        headers_for = {"X-API-Key": world.api_key}
        detail_ids: list[str] = []
        for size in args.sizes:
            inserted, seconds = seed.grow_to(world, size, datetime.now(UTC), rng)
            log(f"{backend}: {size:,} actions ({inserted:,} inserted in {seconds:.1f} s)")
            if not detail_ids:
                detail_ids = seed.seed_detail_events(world, datetime.now(UTC))
            cursor = seed.deep_cursor(world)
            _remember(backend, database_url, world, cursor, detail_ids)
            db.session.remove()
            db.engine.dispose()
            record = {"seed_seconds": round(seconds, 2), "inserted": inserted, "endpoints": {}}
            results["backends"][backend]["sizes"][str(size)] = record
            with gunicorn("wsgi:app", env) as base:
                if "floor_bytes" not in results:
                    results["floor_bytes"] = len(fetch(base, f"{API}/actions?limit=50", world.api_key))
                plans = {
                    "list": [Request("GET", f"{API}/actions?limit=50")],
                    "deep_page": [Request("GET", f"{API}/actions?limit=50&cursor={cursor}")],
                    "filtered": [Request("GET", f"{API}/actions?status=rejected&limit=50")],
                    "summary": [Request("GET", f"{API}/summary?tz=UTC")],
                    "detail": [Request("GET", f"{API}/actions/{action_id}") for action_id in detail_ids],
                    "propose": [Request("POST", f"{API}/actions", PROPOSE_BODY)],
                }
                for name in READS + ["propose"]:
                    record["endpoints"][name] = load(base, plans[name], headers_for, args, wrk).as_dict()
                    log(f"{backend} {size:>9,} {name:<10} {_line(record['endpoints'][name])}")
                # Approvals consume proposed rows: those the propose load made, topped up in bulk.
                wanted = int(max(record["endpoints"]["propose"]["rps"], 200) * (args.duration + args.warmup) * 2)
                pool = _approval_pool(world, wanted, rng)
                approve = [
                    Request("POST", f"{API}/actions/{action_id}/approve", '{"note": "bench"}') for action_id in pool
                ]
                record["endpoints"]["approve"] = load(base, approve, headers_for, args, wrk, once=True).as_dict()
                log(f"{backend} {size:>9,} {'approve':<10} {_line(record['endpoints']['approve'])}")
            record["rows_after"] = _count(world)
        db.session.remove()
        db.engine.dispose()


def _remember(backend, database_url, world, cursor, detail_ids) -> None:
    """What bench.profile needs to replay a request against the database this run left behind."""
    (WORK / f"{backend}.json").write_text(
        json.dumps({"database_url": database_url, "api_key": world.api_key, "cursor": cursor, "detail_ids": detail_ids})
    )


def _approval_pool(world, wanted: int, rng: random.Random) -> list[str]:
    now = datetime.now(UTC)
    ids = seed.approvable_ids(world, now, wanted)
    if len(ids) < wanted:
        seed.insert_rows([seed.pool_row(rng, world, now) for _ in range(wanted - len(ids))])
        ids = seed.approvable_ids(world, now, wanted)
    rng.shuffle(ids)
    return ids


def _count(world) -> int:
    return seed.count_actions(world.workspace_id)


def load(base, requests, headers, args, wrk, once=False):
    """A warm-up (not recorded; for `once` loads, none: every request counts), then the measured load."""
    if not once and args.warmup > 0:
        run_load(base, requests, headers, args.warmup, args.connections, args.max_requests, wrk=wrk)
    return run_load(base, requests, headers, args.duration, args.connections, args.max_requests, once=once, wrk=wrk)


def _line(result: dict) -> str:
    return (
        f"{result['rps']:8.1f} req/s  p50 {result['p50_ms']:7.2f} ms  p95 {result['p95_ms']:7.2f} ms  "
        f"p99 {result['p99_ms']:7.2f} ms  n={result['requests']} failures={result['failures']}"
    )


def bench_floor(args, wrk, floor_bytes: int) -> dict:
    env = {**os.environ, "BENCH_FLOOR_BYTES": str(floor_bytes)}
    with gunicorn("bench.floor:app", env) as base:
        result = load(base, [Request("GET", "/floor")], {}, args, wrk).as_dict()
    log(f"floor ({floor_bytes:,} B)        {_line(result)}")
    return result


# --------------------------------------------------------------------------- main


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,100000,1000000", help="comma-separated action counts")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--duration", type=float, default=6.0, help="seconds of measured load per endpoint")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of unrecorded load before each")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--max-requests", type=int, default=50_000, help="cap on requests per load")
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument(
        "--export-sizes", default="100000,1000000", help="audit export scale run (bench/export.py); empty to skip"
    )
    args = parser.parse_args(argv)
    args.sizes = [int(size) for size in args.sizes.split(",")]

    started = time.monotonic()
    if WORK.exists():
        shutil.rmtree(WORK)
    WORK.mkdir(parents=True)
    wrk = None if args.client == "python" else find_wrk(install=True)
    if args.client == "wrk" and wrk is None:
        parser.error("wrk is not installed and could not be installed")
    log(f"load generator: {'wrk (' + wrk + ')' if wrk else 'python threads'}, {args.connections} connections")

    results = {
        "started_at": datetime.now(UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()},
        "settings": {
            "sizes": args.sizes,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "connections": args.connections,
            "gunicorn": "-w 2 (sync workers)",
            "client": "wrk" if wrk else "python",
            "rate_limit_storage": REDIS_URL if redis_reachable() else "memory://",
        },
        "backends": {},
    }
    for backend in args.backends.split(","):
        database_url = prepare_sqlite() if backend == "sqlite" else prepare_postgres()
        if database_url is None:
            continue
        results["backends"][backend] = {"sizes": {}}
        if "floor_bytes" in results:
            results["backends"][backend]["floor"] = bench_floor(args, wrk, results["floor_bytes"])
        bench_backend(backend, database_url, args, wrk, results)
        if "floor" not in results["backends"][backend]:
            # The first backend learns the list page's size while it runs: measure its floor after.
            results["backends"][backend]["floor"] = bench_floor(args, wrk, results["floor_bytes"])
    export = None
    if args.export_sizes:
        from bench import export as export_bench

        # The evidence issue's scale run: 1M events streamed as NDJSON, then verified offline.
        sizes = [int(size) for size in args.export_sizes.split(",")]
        export = export_bench.run_export_bench(sizes, list(results["backends"]) or ["sqlite"])
        export_bench.write_export_reports(export)
    results["total_seconds"] = round(time.monotonic() - started, 1)
    results["machine"]["load_average_at_end"] = os.getloadavg()
    paths = write_reports(results, RESULTS)
    markdown = next((path for path in paths if path.suffix == ".md"), None)
    if markdown is not None:
        print("\n" + markdown.read_text(), flush=True)
    if export is not None:
        print("\n" + export_bench.markdown(export), flush=True)
    log(f"done in {results['total_seconds']:.0f} s: {', '.join(str(p.relative_to(ROOT)) for p in paths)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
