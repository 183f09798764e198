"""`python -m bench.live` (part of `make bench`): 500 concurrent streams and waits on one host (live.md §5).

In the production configuration (gunicorn.conf.py: gevent workers, PostgreSQL, Redis), on loopback:
1. the list's p50 under the normal load (4 connections) with nothing else open;
2. the same with 400 event streams and 100 long-poll waits held open (re-issued as they answer),
   while a writer proposes an action every WRITE_INTERVAL seconds, which every stream carries;
3. the workers' resident memory before and after opening them, per 100.
Reported as ratios measured in this one run (bench/results/live.md), not asserted as a test.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

from bench.load import Request
from bench.load import find_wrk
from bench.load import run_load
from bench.run import RESULTS
from bench.run import ROOT
from bench.run import app_environment
from bench.run import free_port
from bench.run import log
from bench.run import migrate
from bench.run import prepare_postgres

STREAMS = 400
WAITS = 100
KEYS = 60  # at most 10 streams and waits per client (live.md §3)
SECONDS = 10.0
# Each event is read and rendered once per open stream (the `action` is per caller): 500 renders.
WRITE_INTERVAL = 2.0


def _call(base, method, path, token=None, key=None, body=None) -> dict:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if key:
        headers["X-API-Key"] = key
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"{}")


def _rss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def _workers(master: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{master}/task/{master}/children").read_text().split()]


async def _hold(port, keys, action_ids, opened: list[int], refusals: Counter, stop: asyncio.Event):
    async def stream(key):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {key}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        status = await reader.readline()
        opened[0 if b" 200 " in status else 1] += 1
        if b" 200 " not in status:
            refusals[status.decode(errors="replace").strip()] += 1
        while not stop.is_set():
            try:
                if not await asyncio.wait_for(reader.read(65536), 1.0):
                    break
            except TimeoutError:
                continue
        writer.close()

    async def wait(key, action_id):
        while not stop.is_set():
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                f"GET /api/v1/deployments/actions/{action_id}?wait=60&version=1000 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"X-API-Key: {key}\r\nConnection: close\r\n\r\n".encode()
            )
            status = await reader.readline()
            opened[0 if b" 200 " in status else 1] += 1
            if b" 200 " not in status:
                refusals[status.decode(errors="replace").strip()] += 1
            while not stop.is_set():
                try:
                    if not await asyncio.wait_for(reader.read(65536), 1.0):
                        break
                except TimeoutError:
                    continue
            writer.close()

    tasks = [asyncio.create_task(stream(keys[i % len(keys)])) for i in range(STREAMS)]
    tasks += [asyncio.create_task(wait(keys[(STREAMS + i) % len(keys)], action_ids[i % len(action_ids)]))
              for i in range(WAITS)]  # fmt: skip
    await stop.wait()
    await asyncio.gather(*tasks, return_exceptions=True)


def main() -> int:
    database = prepare_postgres()
    if database is None:
        log("live: PostgreSQL unreachable; nothing measured")
        return 1
    migrate(database)
    port = free_port()
    env = {**app_environment(database), "HOST": "127.0.0.1", "PORT": str(port), "DEMO_LOGIN_ENABLED": "true",
           "AUDITTRAIL_LOGIN_RATE_LIMIT": "10000/minute", "GUNICORN_ACCESS_LOG": ""}  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/readyz", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        token = _call(base, "POST", "/api/v1/auth/demo-login")["access_token"]
        keys = [_call(base, "POST", "/api/v1/api-keys", token, body={"name": f"bench {i}"})["key"] for i in range(KEYS)]
        for i in range(190):  # 200 rows with the 10 seeded ones
            body = {"action_type": "throttle", "target_ref": f"model/bench-{i}", "reason": "bench"}
            _call(base, "POST", "/api/v1/deployments/actions", token, body=body)
        action_ids = [a["id"] for a in _call(base, "GET", "/api/v1/deployments/actions?limit=50", token)["items"]]
        wrk = find_wrk()
        requests = [Request("GET", "/api/v1/deployments/actions?limit=50")]
        headers = {"X-API-Key": keys[0]}

        def list_load():
            return run_load(base, requests, headers, SECONDS, connections=4, max_requests=10**9, wrk=wrk)

        log(f"live: list p50 with nothing open ({SECONDS:.0f} s, 4 connections)")
        baseline = list_load()
        workers = _workers(process.pid)
        rss_before = _rss_kib(workers)

        stop_writing = threading.Event()

        def writer():
            n = 0
            while not stop_writing.is_set():
                body = {"action_type": "alert", "target_ref": f"pager/bench-{n}", "reason": "bench"}
                _call(base, "POST", "/api/v1/deployments/actions", token, body=body)
                n += 1
                time.sleep(WRITE_INTERVAL)

        loop = asyncio.new_event_loop()
        stop = asyncio.Event()
        opened = [0, 0]
        refusals: Counter = Counter()
        holder = threading.Thread(
            target=lambda: loop.run_until_complete(_hold(port, keys, action_ids, opened, refusals, stop))
        )
        holder.start()
        deadline = time.monotonic() + 180
        while opened[0] + opened[1] < STREAMS + WAITS and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2)
        rss_after = _rss_kib(workers)
        writing = threading.Thread(target=writer, daemon=True)
        writing.start()
        log(f"live: list p50 with {STREAMS} streams and {WAITS} waits open ({opened[0]} answered 200)")
        loaded = list_load()
        stop_writing.set()
        loop.call_soon_threadsafe(stop.set)
        holder.join(timeout=30)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    ratio = loaded.p50_ms / baseline.p50_ms if baseline.p50_ms else float("nan")
    per_100 = (rss_after - rss_before) / ((STREAMS + WAITS) / 100) / 1024
    lines = [
        "# live.md §5: 500 streams and waits on one host",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, gunicorn.conf.py defaults "
        f"({len(workers)} gevent workers), PostgreSQL, Redis, loopback, {os.cpu_count()} cores",
        "",
        "| | list p50 | list p95 | requests/s | failures |",
        "|---|---:|---:|---:|---:|",
        f"| no streams | {baseline.p50_ms:.1f} ms | {baseline.p95_ms:.1f} ms | {baseline.rps:.0f} "
        f"| {baseline.failures} |",
        f"| {STREAMS} streams + {WAITS} waits | {loaded.p50_ms:.1f} ms | {loaded.p95_ms:.1f} ms | {loaded.rps:.0f} "
        f"| {loaded.failures} |",
        "",
        f"- streams and waits answered 200: {opened[0]} (others: {dict(refusals) or 'none'}); "
        f"one proposal every {WRITE_INTERVAL:.0f} s meanwhile, carried by every stream",
        f"- list p50 ratio, with / without: **{ratio:.2f}×** (target ≤ 2×)",
        f"- workers' memory: {rss_before / 1024:.0f} MiB → {rss_after / 1024:.0f} MiB, "
        f"**{per_100:.1f} MiB per 100 streams and waits**",
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "live.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
