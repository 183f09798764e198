"""The load generators: `wrk` (Debian's, with a Lua script) when present, else a threaded Python client.

Both send a list of requests round-robin (or each request once, for approvals) over a fixed
number of connections to a loopback address, for at most `duration` seconds and at most
`max_requests` requests, and report requests/s, p50/p95/p99 latency and the failures.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

_LUA = Path(__file__).with_name("wrk_requests.lua")


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: str = ""


@dataclass
class LoadResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    failures: int
    client: str

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def find_wrk(install: bool = True) -> str | None:
    """The wrk binary; installs Debian's package when we are root and it is missing."""
    found = shutil.which("wrk")
    if found or not install or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    if subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], **quiet).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], **quiet)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], **quiet)
    return shutil.which("wrk")


def run_load(
    base_url: str,
    requests: list[Request],
    headers: dict[str, str],
    duration: float,
    connections: int,
    max_requests: int,
    once: bool = False,
    wrk: str | None = None,
) -> LoadResult:
    """Drive the load; `once` sends each request at most once (approvals consume their action)."""
    host = urlsplit(base_url).hostname
    assert host in {"127.0.0.1", "localhost", "::1"}, "the benchmark only talks to loopback"
    if once:
        max_requests = min(max_requests, len(requests))
    if wrk:
        return _run_wrk(wrk, base_url, requests, headers, duration, connections, max_requests, once)
    return _run_python(base_url, requests, headers, duration, connections, max_requests, once)


# --------------------------------------------------------------------------- wrk


def _run_wrk(wrk, base_url, requests, headers, duration, connections, max_requests, once) -> LoadResult:
    threads = min(2, connections)
    with tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False) as handle:
        for request in requests:
            handle.write(f"{request.method}\t{request.path}\t{request.body}\n")
        spec = handle.name
    env = {
        **os.environ,
        "BENCH_REQUESTS": spec,
        "BENCH_THREADS": str(threads),
        "BENCH_ONCE": "1" if once else "0",
        "BENCH_MAX": str(math.ceil(max_requests / threads)),
        "BENCH_HEADERS": json.dumps(headers),
    }
    command = [
        wrk, "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(duration))}s", "--timeout", "10s",
        "-s", str(_LUA), base_url,
    ]  # fmt: skip
    try:
        completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=duration + 30)
    finally:
        os.unlink(spec)
    line = next((x for x in completed.stdout.splitlines() if x.startswith("BENCH_RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no result: {completed.stdout}\n{completed.stderr}")
    data = json.loads(line[len("BENCH_RESULT ") :])
    seconds = data["duration_us"] / 1e6
    return LoadResult(
        requests=data["requests"],
        seconds=seconds,
        rps=data["requests"] / seconds if seconds else 0.0,
        p50_ms=data["p50_us"] / 1000,
        p95_ms=data["p95_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        failures=data["failures"],
        client="wrk",
    )


# --------------------------------------------------------------------------- python


def _run_python(base_url, requests, headers, duration, connections, max_requests, once) -> LoadResult:
    parts = urlsplit(base_url)
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()
    next_index = 0
    deadline = time.perf_counter() + duration

    def take() -> Request | None:
        nonlocal next_index
        with lock:
            if next_index >= max_requests:
                return None
            request = requests[next_index % len(requests)]
            next_index += 1
            return request

    def worker() -> None:
        nonlocal failures
        connection = None
        mine: list[float] = []
        bad = 0
        while time.perf_counter() < deadline:
            request = take()
            if request is None:
                break
            if connection is None:
                connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
            body = request.body.encode() if request.body else None
            sent_headers = {**headers, **({"Content-Type": "application/json"} if body else {})}
            started = time.perf_counter()
            try:
                connection.request(request.method, request.path, body=body, headers=sent_headers)
                response = connection.getresponse()
                response.read()
                ok = response.status < 400
                if response.getheader("Connection", "").lower() == "close":
                    connection.close()
                    connection = None
            except OSError:
                ok = False
                connection = None
            mine.append(time.perf_counter() - started)
            bad += not ok
        with lock:
            latencies.extend(mine)
            failures += bad

    started = time.perf_counter()
    workers = [threading.Thread(target=worker, daemon=True) for _ in range(connections)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(duration + 15)
    seconds = time.perf_counter() - started
    latencies.sort()

    def percentile(fraction: float) -> float:
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, int(fraction * len(latencies)))] * 1000

    return LoadResult(
        requests=len(latencies),
        seconds=seconds,
        rps=len(latencies) / seconds if seconds else 0.0,
        p50_ms=percentile(0.50),
        p95_ms=percentile(0.95),
        p99_ms=percentile(0.99),
        failures=failures,
        client="python",
    )
