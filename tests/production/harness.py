"""What the production tests drive: databases of their own, gunicorn as a subprocess, HTTP, the CLI.

Every server listens on loopback only, every database is created for one module and dropped
after it, and every process started here is stopped here, by its own id.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

from sqlalchemy import create_engine
from sqlalchemy import text
from sqlalchemy.engine import make_url

PROJECT = Path(__file__).resolve().parents[2]
POSTGRES_URL = os.environ.get("TEST_DATABASE_URL", "")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "")
# The servers under test keep their limits in this Redis database, apart from anything else's.
REDIS_DB = 11
SECRET_KEY = "production-test-secret-key-0123456789abcdef0123456789"
JWT_SECRET_KEY = "production-test-jwt-secret-key-0123456789abcdef0123456789"
# An Ed25519 private key as the base64 of its 32 raw bytes (evidence.md §1); a test value only.
SIGNING_KEY = "cHJvZHVjdGlvbi10ZXN0LXNpZ25pbmcta2V5LTAwMDA="
ACTIONS = "/api/v1/deployments/actions"

# The state machine as the events record it: which event may follow which status. Each event's
# type is also the status it leads to.
ALLOWED_AFTER = {
    None: {"proposed"},
    "proposed": {"approved", "rejected", "expired", "executed"},  # executed: tier 1 autonomous only
    "approved": {"executed", "rejected"},
    "rejected": set(),
    "executed": set(),
    "expired": set(),
}


# --------------------------------------------------------------------------- databases


def database_url(name: str, username: str | None = None) -> str:
    """TEST_DATABASE_URL pointed at another database (and, if given, another role)."""
    url = make_url(POSTGRES_URL).set(database=name)
    if username is not None:
        url = url.set(username=username, password=None)
    return url.render_as_string(hide_password=False)


def admin_execute(*statements: str, database: str | None = None) -> None:
    """Run statements outside a transaction (CREATE/DROP DATABASE need that) as the test's own role."""
    url = POSTGRES_URL if database is None else database_url(database)
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            for statement in statements:
                connection.execute(text(statement))
    finally:
        engine.dispose()


def create_database(owner: str | None = None) -> str:
    """A new, empty database named prod_<random>; returns its name."""
    name = f"prod_{uuid.uuid4().hex[:12]}"
    admin_execute(f'CREATE DATABASE "{name}"' + (f' OWNER "{owner}"' if owner else ""))
    return name


def drop_database(name: str) -> None:
    admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def redis_url() -> str:
    parts = urlsplit(REDIS_URL)
    return urlunsplit((parts.scheme, parts.netloc, f"/{REDIS_DB}", parts.query, parts.fragment))


def redis_host_port() -> tuple[str, int]:
    parts = urlsplit(REDIS_URL)
    return parts.hostname or "127.0.0.1", parts.port or 6379


# --------------------------------------------------------------------------- the CLI


def app_environment(db_url: str, **overrides: str) -> dict[str, str]:
    """The environment a production process gets: explicit secrets, never the instance/ ones."""
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AUDITTRAIL_", "GUNICORN_", "RATELIMIT_", "FLASK_"))
        and key not in {"DATABASE_URL", "SECRET_KEY", "JWT_SECRET_KEY", "DEMO_LOGIN_ENABLED", "WEB_CONCURRENCY"}
    }
    environ.update(
        {
            "DATABASE_URL": db_url,
            "SECRET_KEY": SECRET_KEY,
            "JWT_SECRET_KEY": JWT_SECRET_KEY,
            "AUDITTRAIL_SIGNING_KEY": SIGNING_KEY,
            "AUDITTRAIL_ENV": "production",
            "PYTHONUNBUFFERED": "1",
        }
    )
    environ.update(overrides)
    return environ


def flask_command(*args: str, environ: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    """`flask --app wsgi …` as an operator runs it, from the project directory."""
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *args],
        cwd=PROJECT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def migrate(db_url: str) -> None:
    result = flask_command("db", "upgrade", environ=app_environment(db_url))
    assert result.returncode == 0, f"db upgrade failed:\n{result.stdout}\n{result.stderr}"


def verify_audit_chain(db_url: str) -> None:
    result = flask_command("audit", "verify", environ=app_environment(db_url))
    assert result.returncode == 0, f"flask audit verify failed:\n{result.stdout}\n{result.stderr}"
    assert "audit chain verified" in result.stdout


# --------------------------------------------------------------------------- HTTP


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    text: str

    @property
    def json(self):
        try:
            return json.loads(self.text)
        except ValueError:
            return None

    @property
    def error_code(self) -> str | None:
        body = self.json
        return body.get("error", {}).get("code") if isinstance(body, dict) else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def call(port: int, method: str, path: str, body=None, headers: dict | None = None, timeout: float = 30) -> Reply:
    """One request on a fresh connection (so gunicorn may hand it to any worker)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        sent_headers = {"Connection": "close", **(headers or {})}
        payload = None
        if body is not None:
            payload = json.dumps(body)
            sent_headers["Content-Type"] = "application/json"
        connection.request(method, path, body=payload, headers=sent_headers)
        response = connection.getresponse()
        text_body = response.read().decode("utf-8", "replace")
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, text_body)
    finally:
        connection.close()


def assert_error_envelope(reply: Reply, code: str) -> None:
    body = reply.json
    assert isinstance(body, dict) and set(body) == {"error"}, reply.text[:500]
    assert body["error"]["code"] == code, reply.text[:500]
    assert isinstance(body["error"]["message"], str) and body["error"]["message"].strip()
    assert isinstance(body["error"]["details"], dict)
    assert "Traceback" not in reply.text


@dataclass
class Operator:
    """A demo workspace's operator, seen from outside: a JWT and the API keys made with it."""

    port: int
    token: str
    user_id: str
    workspace_id: str
    keys: list[str] = field(default_factory=list)

    @property
    def jwt_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def new_api_key(self, name: str = "prod-test") -> str:
        reply = call(self.port, "POST", "/api/v1/api-keys", {"name": name}, self.jwt_headers)
        assert reply.status == 201, reply.text
        self.keys.append(reply.json["key"])
        return reply.json["key"]


def demo_login(port: int, headers: dict | None = None) -> Operator:
    reply = call(port, "POST", "/api/v1/auth/demo-login", headers=headers, timeout=60)
    assert reply.status == 200, reply.text
    body = reply.json
    return Operator(port, body["access_token"], body["user"]["id"], body["workspace"]["id"])


def proposal(tier: int = 2, mode: str = "supervised", **extra) -> dict:
    action_type = {1: "alert", 2: "throttle", 3: "kill_run"}[tier]
    return {
        "action_type": action_type,
        "target_ref": "run_8f3a2c91d4e7",
        "reason": "Cost spike on the fleet",
        "mode": mode,
        **extra,
    }


# --------------------------------------------------------------------------- gunicorn


class GunicornServer:
    """`gunicorn --config gunicorn.conf.py wsgi:app`, as `make serve` runs it, on a free loopback port."""

    def __init__(self, db_url: str, log_dir: Path, workers: int = 4, threads: int = 4, **environ: str):
        self.port = free_port()
        self.workers = workers
        self.access_log = log_dir / "access.log"
        self.error_log = log_dir / "error.log"
        self.environ = app_environment(
            db_url,
            HOST="127.0.0.1",
            PORT=str(self.port),
            WEB_CONCURRENCY=str(workers),
            GUNICORN_THREADS=str(threads),
            GUNICORN_GRACEFUL_TIMEOUT="5",
            DEMO_LOGIN_ENABLED="true",
            AUDITTRAIL_LOGIN_RATE_LIMIT="10000/minute",
            AUDITTRAIL_API_KEY_RATE_LIMIT="10000/minute",
            **environ,
        )
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> GunicornServer:
        with open(self.access_log, "ab") as stdout, open(self.error_log, "ab") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "wsgi:app"],
                cwd=PROJECT,
                env=self.environ,
                stdout=stdout,
                stderr=stderr,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"gunicorn exited:\n{self.error_text()[-3000:]}"
            if len(self.worker_pids()) == self.workers:
                try:
                    if call(self.port, "GET", "/readyz", timeout=5).status == 200:
                        return self
                except OSError:
                    pass
            time.sleep(0.2)
        raise AssertionError(f"gunicorn not ready in {timeout} s:\n{self.error_text()[-3000:]}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def worker_pids(self) -> list[int]:
        """The master's children (gunicorn's workers), read from /proc."""
        assert self.process is not None
        try:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text()
        except OSError:
            return []
        return [int(pid) for pid in children.split()]

    def call(self, method: str, path: str, body=None, headers: dict | None = None, timeout: float = 30) -> Reply:
        return call(self.port, method, path, body, headers, timeout)

    def error_text(self) -> str:
        return self.error_log.read_text(errors="replace") if self.error_log.exists() else ""

    def access_records(self) -> list[dict]:
        """Every access-log line, parsed (each must be one JSON object)."""
        lines = self.access_log.read_text(errors="replace").splitlines() if self.access_log.exists() else []
        return [json.loads(line) for line in lines if line.strip()]

    def access_records_for(self, request_ids: set[str], timeout: float = 10) -> dict[str, dict]:
        """The access-log records of these requests (gunicorn writes a line just after answering)."""
        deadline = time.monotonic() + timeout
        while True:
            found = {r["request_id"]: r for r in self.access_records() if r.get("request_id") in request_ids}
            if len(found) == len(request_ids) or time.monotonic() > deadline:
                return found
            time.sleep(0.2)


# --------------------------------------------------------------------------- database checks


def status_problems(db_url: str, workspace_ids: list[str] | None = None) -> list[str]:
    """Every action whose status disagrees with its events, or whose events are not a path of the machine."""
    engine = create_engine(db_url)
    problems = []
    try:
        with engine.connect() as connection:
            where = "" if workspace_ids is None else "WHERE a.workspace_id = ANY(:ids)"
            rows = connection.execute(
                text(
                    "SELECT a.id, a.status, a.tier, a.mode, "
                    "       array_remove(array_agg(e.type ORDER BY e.seq), NULL) AS types "
                    "FROM deployment_actions a LEFT JOIN audit_events e ON e.action_id = a.id "
                    f"{where} GROUP BY a.id, a.status, a.tier, a.mode"
                ),
                {"ids": workspace_ids or []},
            ).all()
    finally:
        engine.dispose()
    for action_id, status, tier, mode, types in rows:
        state = None
        for event_type in types:
            if event_type not in ALLOWED_AFTER[state]:
                problems.append(f"{action_id}: event {event_type!r} after {state!r} ({types})")
                break
            if state == "proposed" and event_type == "executed" and not (tier == 1 and mode == "autonomous"):
                problems.append(f"{action_id}: executed straight from proposed (tier {tier}, {mode})")
            state = event_type
        if state != status:
            problems.append(f"{action_id}: status {status!r} but its events {types} lead to {state!r}")
    return problems


def events_by_request_id(db_url: str, request_ids: list[str]) -> Counter:
    """How many events each (request id, action id, type) has."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT request_id, action_id, type FROM audit_events WHERE request_id = ANY(:ids)"),
                {"ids": request_ids},
            ).all()
    finally:
        engine.dispose()
    return Counter((request_id, action_id, event_type) for request_id, action_id, event_type in rows)


# --------------------------------------------------------------------------- the local PostgreSQL


def postgres_cluster() -> tuple[str, str]:
    """The local cluster (version, name) that serves TEST_DATABASE_URL's port."""
    port = str(urlsplit(POSTGRES_URL.replace("+psycopg", "")).port or 5432)
    listing = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=True).stdout
    for line in listing.splitlines():
        version, name, cluster_port = line.split()[:3]
        if cluster_port == port:
            return version, name
    raise AssertionError(f"no local PostgreSQL cluster on port {port}:\n{listing}")


def pg_ctlcluster(action: str, *args: str) -> None:
    version, name = postgres_cluster()
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, name, action, *args],
        check=True,
        timeout=60,
        capture_output=True,
    )


def postgres_ready() -> bool:
    url = urlsplit(POSTGRES_URL.replace("+psycopg", ""))
    command = ["pg_isready", "-q", "-h", url.hostname or "127.0.0.1", "-p", str(url.port or 5432)]
    return subprocess.run(command, timeout=10).returncode == 0


# --------------------------------------------------------------------------- Server-Sent Events


@dataclass
class StreamEvent:
    id: int
    type: str
    data: dict
    received_at: float  # time.monotonic() when its blank line arrived


class EventStream:
    """One GET /api/v1/events with Accept: text/event-stream, read line by line as EventSource does."""

    def __init__(self, port: int, headers: dict, last_event_id: int | None = None, query: str = "", timeout=30):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        sent = {"Accept": "text/event-stream", **headers}
        if last_event_id is not None:
            sent["Last-Event-ID"] = str(last_event_id)
        self.connection.request("GET", "/api/v1/events" + (f"?{query}" if query else ""), headers=sent)
        self.response = self.connection.getresponse()
        self.status = self.response.status
        self.retry: int | None = None
        self.comments = 0

    def events(self):
        """Yield each event until the server ends the stream (a clean end: the generator just stops)."""
        fields: dict[str, str] = {}
        while True:
            raw = self.response.readline()
            if not raw:
                return
            line = raw.decode().rstrip("\n")
            if line == "":
                if "id" in fields:
                    yield StreamEvent(int(fields["id"]), fields["event"], json.loads(fields["data"]), time.monotonic())
                fields = {}
            elif line.startswith(":"):
                self.comments += 1
            else:
                name, _, value = line.partition(": ")
                if name == "retry":
                    self.retry = int(value)
                else:
                    fields[name] = value

    def kill(self) -> None:
        """Drop the connection abruptly, as a crashed client or a cut network would."""
        sock = self.connection.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.connection.close()


def follow(port: int, headers: dict, until, after: int, kill_every: int | None = None, deadline: float = 120):
    """Follow the stream from `after` like a client that reconnects with Last-Event-ID, until `until(events)`.

    Reconnects when the server ends the stream, when the connection breaks or is refused, and on
    503 (the database away); with `kill_every`, it also drops its own connection every that many
    events. Returns (events, connections made).
    """
    events: list[StreamEvent] = []
    connections = 0
    stop_at = time.monotonic() + deadline
    last = after
    while not until(events):
        assert time.monotonic() < stop_at, f"gave up following the stream after {len(events)} events"
        try:
            stream = EventStream(port, headers, last_event_id=last)
        except OSError:
            time.sleep(0.3)
            continue
        connections += 1
        if stream.status != 200:
            stream.kill()
            assert stream.status in (503, 429), stream.status
            time.sleep(0.3)
            continue
        received_here = 0
        try:
            for event in stream.events():
                events.append(event)
                last = event.id
                received_here += 1
                if until(events) or (kill_every and received_here >= kill_every):
                    break
        except (OSError, http.client.HTTPException):
            pass
        finally:
            stream.kill()
    return events, connections
