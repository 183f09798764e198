"""`python -m bench.export`: the audit export at scale (evidence.md §4, §6), as `make bench` runs it.

One workspace's chain grows to each size (100 000, then 1 000 000 events by default: a valid chain,
hashed with the server's own code and inserted in bulk). At each size a fresh `gunicorn -w 1
wsgi:app` streams the whole chain as NDJSON (`Accept: application/x-ndjson`) to a file, while the
worker's resident memory is sampled; then `audittrail-verify` checks the file against the
published keys and a checkpoint of the head. Reported: events/s of the export and of the verifier,
and the peak RSS of the worker (above its RSS after one small request) and of the verifier. Memory
is flat when the peak does not grow with the size.

Quick run: `python -m bench.export --sizes 100000` (about half a minute).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import sysconfig
import threading
import time
import urllib.request
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path

from bench.run import PG_DATABASE
from bench.run import RESULTS
from bench.run import SECRET
from bench.run import SIGNING_KEY
from bench.run import app_environment
from bench.run import gunicorn
from bench.run import log
from bench.run import migrate
from bench.run import prepare_postgres

WORK = RESULTS / "work"
INSERT_BATCH = 20_000
ACTORS = [("usr", "Bench Operator"), ("usr", "Autopilot"), ("usr", "Teammate"), (None, "system")]
TYPES = ["proposed", "approval_recorded", "approved", "executed", "rejected", "expired"]


def _world(now: datetime) -> tuple[str, str, list[str]]:
    """A workspace, an admin and an admin's key holding audit:read; (workspace id, key, user ids)."""
    from audittrail.services import api_keys
    from audittrail.services import users
    from audittrail.services.unit_of_work import unit_of_work

    with unit_of_work():
        workspace = users.create_workspace("Export bench", now)
        members = [
            users.create_user(workspace, f"{n}@export.bench", name, now, role="admin")
            for n, (_, name) in enumerate(ACTORS[:3])
        ]
    _, secret = api_keys.create_api_key(members[0], "export bench", now, ["audit:read"])
    return workspace.id, secret, [member.id for member in members]


def grow_chain(workspace_id: str, user_ids: list[str], size: int, rng: random.Random) -> float:
    """Append events (a valid chain) until the workspace holds `size`; returns the seconds it took."""
    from sqlalchemy import select

    from audittrail.extensions import db
    from audittrail.models import Workspace
    from audittrail_evidence.canonical import canonical_json
    from audittrail_evidence.canonical import event_hash
    from audittrail_evidence.canonical import event_time

    started = time.monotonic()
    seq, prev_hash = db.session.execute(
        select(Workspace.audit_seq, Workspace.audit_head_hash).where(Workspace.id == workspace_id)
    ).one()
    db.session.commit()
    table = db.metadata.tables["audit_events"]
    at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=seq * 7)
    while seq < size:
        rows = []
        for _ in range(min(INSERT_BATCH, size - seq)):
            seq += 1
            at += timedelta(seconds=rng.randint(1, 13), microseconds=rng.randint(0, 999_999))
            index = rng.randrange(len(ACTORS))
            user_id = user_ids[index] if index < len(user_ids) else None
            data = {
                "note": rng.choice(["Cost spike confirmed", "Canary drift 4.2 %", None, "Error budget: 61 % burnt"]),
                "outcome": {"status": "succeeded", "runner": f"fleet-runner-{rng.randint(1, 9)}"},
                "target_ref": f"run_{rng.getrandbits(48):012x}",
            }
            fields = {
                "workspace_id": workspace_id,
                "seq": seq,
                "action_id": None,
                "type": rng.choice(TYPES),
                "actor_kind": "user" if user_id else "system",
                "actor_user_id": user_id,
                "actor_api_key_id": None,
                "actor_name": ACTORS[index][1],
                "at": at,
                "request_id": f"bench-{seq}",
                "data": canonical_json(data),
            }
            digest = event_hash(prev_hash, {**fields, "at": event_time(at)})
            rows.append({**fields, "prev_hash": prev_hash, "hash": digest})
            prev_hash = digest
        with db.engine.begin() as connection:
            connection.execute(table.insert(), rows)
            connection.execute(
                Workspace.__table__.update()
                .where(Workspace.__table__.c.id == workspace_id)
                .values(audit_seq=seq, audit_head_hash=prev_hash)
            )
    return time.monotonic() - started


def _worker_pid(master: int) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.1)
    raise RuntimeError("gunicorn started no worker")


def _rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def export_once(base: str, worker: int, api_key: str, path: Path) -> dict:
    """Stream the whole chain to `path`, sampling the worker's RSS; throughput and memory."""
    headers = {"X-API-Key": api_key}
    with urllib.request.urlopen(urllib.request.Request(base + "/api/v1/audit/events?limit=10", headers=headers)):
        pass  # warm: imports, pool, the first query
    baseline = _rss_kib(worker)
    peak = baseline
    done = threading.Event()

    def sample():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss_kib(worker))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    request = urllib.request.Request(
        base + "/api/v1/audit/events", headers={**headers, "Accept": "application/x-ndjson"}
    )
    started = time.monotonic()
    size = 0
    with urllib.request.urlopen(request, timeout=600) as response, open(path, "wb") as out:
        while chunk := response.read(1 << 20):
            out.write(chunk)
            size += len(chunk)
    seconds = time.monotonic() - started
    done.set()
    sampler.join()
    peak = max(peak, _rss_kib(worker))
    return {"seconds": round(seconds, 2), "bytes": size, "rss_baseline_kib": baseline, "rss_peak_kib": peak}


def verify_once(events: Path, keys: Path, checkpoint: str) -> dict:
    """Run the installed audittrail-verify on the file; its time, peak RSS and output."""
    script = Path(sysconfig.get_path("scripts")) / "audittrail-verify"
    started = time.monotonic()
    process = subprocess.Popen(
        [str(script), "--events", str(events), "--keys", str(keys), "--checkpoint", checkpoint],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={"PATH": os.environ.get("PATH", "")},
    )
    # VmHWM (the process's own high-water mark since exec), read until it exits: the rusage of
    # a child would also count what it held before exec, a copy of this (larger) process.
    peak = 0
    while process.poll() is None:
        try:
            peak = max(peak, _rss_kib(process.pid, "VmHWM"))
        except (OSError, ValueError):
            break
        time.sleep(0.02)
    output = process.stdout.read().decode()
    seconds = time.monotonic() - started
    if process.returncode != 0:
        raise RuntimeError(f"the verifier refused the export: {output}")
    return {"seconds": round(seconds, 2), "rss_peak_kib": peak, "output": output.strip()}


def bench_export_backend(backend: str, database_url: str, sizes: list[int]) -> dict:
    from audittrail import create_app
    from audittrail.extensions import db

    log(f"export {backend}: migrating")
    migrate(database_url)
    env = app_environment(database_url)
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "SECRET_KEY": SECRET,
            "JWT_SECRET_KEY": SECRET,
            "AUDITTRAIL_SIGNING_KEY": SIGNING_KEY,
        }
    )
    rng = random.Random(20261130)
    record: dict = {"sizes": {}}
    with app.app_context():
        workspace_id, api_key, user_ids = _world(datetime.now(UTC))
        for size in sizes:
            seconds = grow_chain(workspace_id, user_ids, size, rng)
            db.session.remove()
            db.engine.dispose()
            log(f"export {backend}: chain of {size:,} events ({seconds:.1f} s to seed)")
            events = WORK / f"export-{backend}-{size}.ndjson"
            keys = WORK / "keys.json"
            with gunicorn("wsgi:app", env, workers=1, with_process=True) as (base, master):
                worker = _worker_pid(master.pid)
                keys.write_text(urllib.request.urlopen(base + "/api/v1/signing-keys").read().decode())
                checkpoint = _post_checkpoint(base, api_key)
                exported = export_once(base, worker, api_key, events)
            verified = verify_once(events, keys, checkpoint)
            entry = {
                "events": size,
                "seed_seconds": round(seconds, 1),
                "export": {**exported, "events_per_s": round(size / exported["seconds"])},
                "verify": {**verified, "events_per_s": round(size / verified["seconds"])},
            }
            record["sizes"][str(size)] = entry
            log(
                f"export {backend} {size:>9,}: export {entry['export']['events_per_s']:,} ev/s "
                f"({exported['bytes'] / 1e6:.0f} MB), worker RSS {exported['rss_baseline_kib'] / 1024:.0f} → "
                f"{exported['rss_peak_kib'] / 1024:.0f} MiB; verify {entry['verify']['events_per_s']:,} ev/s, "
                f"RSS {verified['rss_peak_kib'] / 1024:.0f} MiB: {verified['output']}"
            )
            events.unlink()
    return record


def _post_checkpoint(base: str, api_key: str) -> str:
    request = urllib.request.Request(base + "/api/v1/audit/checkpoints", method="POST", headers={"X-API-Key": api_key})
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())["checkpoint"]


def run_export_bench(sizes: list[int], backends: list[str]) -> dict:
    """Every backend at every size; the record `make bench` adds to results.json."""
    WORK.mkdir(parents=True, exist_ok=True)
    results = {"backends": {}, "cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()}
    for backend in backends:
        database_url = _export_database(backend)
        if database_url is None:
            continue
        results["backends"][backend] = bench_export_backend(backend, database_url, sizes)
    results["load_average_at_end"] = os.getloadavg()
    return results


def _export_database(backend: str) -> str | None:
    if backend == "sqlite":
        path = WORK / "export.sqlite"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"
    # A database of its own: the HTTP run's `bench` stays for bench.profile.
    return prepare_postgres(PG_DATABASE + "_export")


def markdown(export: dict) -> str:
    lines = [
        "## Audit export at scale",
        "",
        "NDJSON stream of one workspace's whole chain through `gunicorn -w 1`, then `audittrail-verify` on the file "
        "(with a checkpoint of the head). RSS: the worker's after one small request → its peak during the stream; "
        "the verifier's peak.",
        "",
        "| backend | events | export | export MB | worker RSS | verify | verifier RSS |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for backend, data in export["backends"].items():
        for size, entry in data["sizes"].items():
            exported, verified = entry["export"], entry["verify"]
            lines.append(
                f"| {backend} | {int(size):,} | {exported['events_per_s']:,} ev/s ({exported['seconds']} s) | "
                f"{exported['bytes'] / 1e6:.0f} | {exported['rss_baseline_kib'] / 1024:.0f} → "
                f"{exported['rss_peak_kib'] / 1024:.0f} MiB | "
                f"{verified['events_per_s']:,} ev/s ({verified['seconds']} s) | "
                f"{verified['rss_peak_kib'] / 1024:.0f} MiB |"
            )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated event counts, growing")
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args(argv)
    started = time.monotonic()
    export = run_export_bench([int(size) for size in args.sizes.split(",")], args.backends.split(","))
    export["total_seconds"] = round(time.monotonic() - started, 1)
    write_export_reports(export)
    print("\n" + markdown(export), flush=True)
    seeder = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    log(f"export bench done in {export['total_seconds']:.0f} s (this process, the seeder, peaked at {seeder} MiB)")
    return 0


def write_export_reports(export: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "export.json").write_text(json.dumps(export, indent=2))
    (RESULTS / "export.md").write_text(markdown(export))


if __name__ == "__main__":
    sys.exit(main())
