"""`python -m bench.run`: seed, serve with gunicorn, load, and report (see bench/__init__.py).

For each backend (SQLite file, PostgreSQL database `bench`) and each size (1k, 100k, 1M actions
in one workspace): grow the workspace to the size, start `gunicorn -w 2 wsgi:app` and, under the
same settings, `gunicorn -w 2` of the lean reference (bench/lean.py: the same answers from the
same database with the raw driver and json), check they answer alike, then drive each endpoint on
one, then the other, A B A B (`--segments`), for `--duration` seconds per side, then the writes
(propose, then approve on proposed rows). Every figure is reported with its ratio to the lean
route's, and each worker's peak RSS. Results: bench/results/results.json, results.md, latency.png.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
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
LEAN = "/lean"
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
    # gunicorn.conf.py (read from the project directory) sets the production worker class: gevent.
    command = [sys.executable, "-m", "gunicorn", "-w", str(workers), "-k", "gevent", "-b", f"127.0.0.1:{port}", app]
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
        api_key_id = db.session.execute(db.text("SELECT id FROM api_keys")).scalar()
        lean_env = {
            **env,
            "BENCH_LEAN_WORKSPACE": world.workspace_id,
            "BENCH_LEAN_USER": world.operator_id,
            "BENCH_LEAN_API_KEY_ID": api_key_id,
        }
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
            with (
                gunicorn("wsgi:app", env, with_process=True) as (base, app_server),
                gunicorn("bench.lean:from_environment()", lean_env, with_process=True) as (lean_base, lean_server),
            ):
                _check_same_answers(base, lean_base, world.api_key, cursor, detail_ids)
                plans = {
                    "list": "/actions?limit=50",
                    "deep_page": f"/actions?limit=50&cursor={cursor}",
                    "filtered": "/actions?status=rejected&limit=50",
                    "summary": "/summary?tz=UTC",
                }
                for name in READS:
                    if name == "detail":
                        ours = [Request("GET", f"{API}/actions/{action_id}") for action_id in detail_ids]
                        theirs = [Request("GET", f"{LEAN}/actions/{action_id}") for action_id in detail_ids]
                    else:
                        ours, theirs = [Request("GET", API + plans[name])], [Request("GET", LEAN + plans[name])]
                    record["endpoints"][name] = paired(base, ours, lean_base, theirs, headers_for, args, wrk)
                    log(f"{backend} {size:>9,} {name:<10} {_line(record['endpoints'][name])}")
                record["endpoints"]["propose"] = paired(
                    base,
                    [Request("POST", f"{API}/actions", PROPOSE_BODY)],
                    lean_base,
                    [Request("POST", f"{LEAN}/actions", PROPOSE_BODY)],
                    headers_for,
                    args,
                    wrk,
                )
                log(f"{backend} {size:>9,} {'propose':<10} {_line(record['endpoints']['propose'])}")
                # Approvals consume proposed rows: those the propose loads made, topped up in bulk; half each.
                rps = max(record["endpoints"]["propose"]["app"]["rps"], record["endpoints"]["propose"]["lean"]["rps"])
                wanted = int(max(rps, 200) * (args.duration + args.warmup) * 3)
                pool = _approval_pool(world, wanted, rng)
                ours = [Request("POST", f"{API}/actions/{i}/approve", '{"note": "bench"}') for i in pool[0::2]]
                theirs = [Request("POST", f"{LEAN}/actions/{i}/approve", '{"note": "bench"}') for i in pool[1::2]]
                record["endpoints"]["approve"] = paired(
                    base, ours, lean_base, theirs, headers_for, args, wrk, once=True
                )
                log(f"{backend} {size:>9,} {'approve':<10} {_line(record['endpoints']['approve'])}")
                record["peak_rss_mib"] = {"app": worker_peak_rss(app_server), "lean": worker_peak_rss(lean_server)}
                log(f"{backend} {size:>9,} peak RSS per worker (MiB): {record['peak_rss_mib']}")
            record["rows_after"] = _count(world)
        db.session.remove()
        db.engine.dispose()


def paired(base, ours, lean_base, theirs, headers, args, wrk, once=False) -> dict:
    """The app's load and the lean reference's, interleaved A B A B (`--segments` each), same settings.

    Each side's figures: requests and failures summed, req/s over its measured seconds, p50/p95/p99
    the median of its segments'. The ratios: the app's p50 over the lean one's, its req/s as a
    share of the lean one's.
    """
    segments = max(1, args.segments)
    duration = args.duration / segments
    runs = {"app": [], "lean": []}
    queues = {"app": list(ours), "lean": list(theirs)}
    for index in range(segments):
        order = [("app", base, {**headers}), ("lean", lean_base, {})]
        for side, url, sent in order if index % 2 == 0 else reversed(order):
            plan = queues[side]
            if once:
                share = len(plan) // (segments - index)
                plan, queues[side] = plan[:share], plan[share:]
            elif args.warmup > 0:
                run_load(url, plan, sent, args.warmup / segments, args.connections, args.max_requests, wrk=wrk)
            runs[side].append(
                run_load(url, plan, sent, duration, args.connections, args.max_requests, once=once, wrk=wrk).as_dict()
            )
    result = {side: _combine(parts) for side, parts in runs.items()}
    result["ratio"] = {
        "p50_x": result["app"]["p50_ms"] / result["lean"]["p50_ms"],
        "throughput_share": result["app"]["rps"] / result["lean"]["rps"] if result["lean"]["rps"] else 0.0,
    }
    return result


def _combine(parts: list[dict]) -> dict:
    seconds = sum(part["seconds"] for part in parts)
    requests = sum(part["requests"] for part in parts)
    combined = {
        "requests": requests,
        "seconds": seconds,
        "rps": requests / seconds if seconds else 0.0,
        "failures": sum(part["failures"] for part in parts),
        "client": parts[0]["client"],
        "segments": parts,
    }
    for quantile in ("p50_ms", "p95_ms", "p99_ms"):
        combined[quantile] = statistics.median(part[quantile] for part in parts)
    return combined


def worker_peak_rss(master: subprocess.Popen) -> list[float]:
    """Each gunicorn worker's peak resident memory (VmHWM), MiB: the master's children."""
    peaks = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        if fields.get("PPid", "").strip() == str(master.pid) and "VmHWM" in fields:
            peaks.append(round(int(fields["VmHWM"].split()[0]) / 1024, 1))
    return sorted(peaks)


def _check_same_answers(base: str, lean_base: str, api_key: str, cursor: str, detail_ids: list[str]) -> None:
    """The lean reference answers what the app answers (the summary's `as_of` aside), or the run stops."""
    for path in ("/actions?limit=50", f"/actions?limit=50&cursor={cursor}", "/summary?tz=UTC", *(
        f"/actions/{action_id}" for action_id in detail_ids[:3]
    )):  # fmt: skip
        ours = json.loads(fetch(base, API + path, api_key))
        theirs = json.loads(fetch(lean_base, LEAN + path, ""))
        ours.pop("as_of", None), theirs.pop("as_of", None)
        if ours != theirs:
            raise RuntimeError(f"the lean reference does not answer {path} as the app does")


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
    app, lean, ratio = result["app"], result["lean"], result["ratio"]
    return (
        f"app {app['rps']:7.1f} req/s p50 {app['p50_ms']:7.2f} ms | lean {lean['rps']:7.1f} req/s p50 "
        f"{lean['p50_ms']:6.2f} ms | p50 {ratio['p50_x']:.2f}x, throughput {ratio['throughput_share']:.0%} "
        f"(n={app['requests']}/{lean['requests']}, failures {app['failures']}/{lean['failures']})"
    )


# --------------------------------------------------------------------------- main


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,100000,1000000", help="comma-separated action counts")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--duration", type=float, default=6.0, help="seconds of measured load per endpoint")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of unrecorded load before each")
    parser.add_argument("--segments", type=int, default=2, help="A B segments per side and endpoint (A B A B)")
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
            "gunicorn": "-w 2 -k gevent (gunicorn.conf.py), the app and the lean reference alike",
            "segments": args.segments,
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
        bench_backend(backend, database_url, args, wrk, results)
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
