"""Gunicorn settings for production: `gunicorn --config gunicorn.conf.py wsgi:app` (what `make serve` runs).

Every value comes from the environment; the defaults suit a small host behind a reverse proxy.
See the README (Running in production) for the variables and what to set them to.
"""

from __future__ import annotations

import json
import os
import time

from gunicorn import glogging

MAX_DEFAULT_WORKERS = 8


def _int(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"gunicorn.conf.py: {name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SystemExit(f"gunicorn.conf.py: {name} must be at least {minimum}, got {value}")
    return value


def _cores() -> int:
    # The CPUs this process may run on (a container's cpuset), not the host's count.
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:
        return os.cpu_count() or 1


def default_workers(cores: int) -> int:
    """2 × cores + 1, capped: each worker holds its own database pool (see the README (Running in production))."""
    return min(2 * cores + 1, MAX_DEFAULT_WORKERS)


bind = [f"{os.environ.get('HOST') or '127.0.0.1'}:{_int('PORT', 5000, minimum=1)}"]
workers = _int("WEB_CONCURRENCY", default_workers(_cores()), minimum=1)
# gevent: each request is a greenlet, so the streams and waits of live.md (held open for minutes,
# idle nearly all the time) cost a few kilobytes each instead of a thread. psycopg (≥ 3.1.14),
# redis-py and SQLAlchemy's pool wait cooperatively once gunicorn has patched the standard library,
# which its gevent worker does before it imports the app (preload_app is off). See the README.
WORKER_CLASSES = {"gevent", "gthread", "sync"}
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "").strip() or "gevent"
if worker_class not in WORKER_CLASSES:
    raise SystemExit(f"gunicorn.conf.py: GUNICORN_WORKER_CLASS must be one of {sorted(WORKER_CLASSES)}")
# gevent: open connections per worker (requests, streams and waits together).
worker_connections = _int("GUNICORN_WORKER_CONNECTIONS", 1000, minimum=1)
# gthread only: threads per worker.
threads = _int("GUNICORN_THREADS", 4, minimum=1)
# A worker silent for this long is killed and replaced; requests are bounded well below it
# (database connect 5 s, pool wait 10 s, rate-limit storage 1 s).
timeout = _int("GUNICORN_TIMEOUT", 30, minimum=1)
# On SIGTERM, in-flight requests get this long to finish before workers are killed.
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30, minimum=1)
keepalive = _int("GUNICORN_KEEPALIVE", 5, minimum=0)
max_requests = _int("GUNICORN_MAX_REQUESTS", 0, minimum=0)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 0, minimum=0)
# Each worker imports the app after the fork: no database connection or Redis socket is
# ever shared between processes.
preload_app = False
proc_name = "audittrail"
# gunicorn refuses these itself, while it parses the request and before the app exists for it, with
# its own small HTML page (no error envelope, no X-Request-ID): 414 for a longer request line, 431
# for more or longer header fields. Stated rather than left to defaults, since the README lists them
# (Running in production, 3); a reverse proxy in front usually refuses even earlier.
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190
if os.path.isdir("/dev/shm"):
    # Heartbeat files on tmpfs: a slow disk must not get healthy workers killed.
    worker_tmp_dir = "/dev/shm"

# Gunicorn ≥ 25 opens a control socket at one fixed path per user ($HOME/.gunicorn/gunicorn.ctl),
# which two instances on one host would fight over. Off unless a path is given.
if os.environ.get("GUNICORN_CONTROL_SOCKET"):
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]
else:
    control_socket_disable = True

accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
errorlog = os.environ.get("GUNICORN_ERROR_LOG", "-")
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")


class JsonAccessLogger(glogging.Logger):
    """Gunicorn's logger, with one JSON object per line in the access log, carrying the request id.

    Built with json.dumps rather than access_log_format, so quotes or backslashes in a path
    or a user agent cannot break the line.
    """

    def access(self, resp, req, environ, request_time):
        if not self.access_log_enabled:
            return
        response_headers = {name.lower(): value for name, value in (resp.headers or [])}
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        now = time.time()
        record = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z",
            "request_id": response_headers.get("x-request-id") or environ.get("HTTP_X_REQUEST_ID"),
            "remote_addr": environ.get("REMOTE_ADDR"),
            "forwarded_for": environ.get("HTTP_X_FORWARDED_FOR"),
            "method": environ.get("REQUEST_METHOD"),
            "path": environ.get("PATH_INFO"),
            "query": environ.get("QUERY_STRING") or None,
            "status": int(status) if str(status).isdigit() else status,
            "bytes": getattr(resp, "sent", None),
            "duration_ms": round(request_time.total_seconds() * 1000, 1),
            "user_agent": environ.get("HTTP_USER_AGENT"),
            "pid": os.getpid(),
        }
        try:
            self.access_log.info(json.dumps(record, separators=(",", ":"), ensure_ascii=False))
        except Exception:  # noqa: BLE001 — a log line must never fail a request
            self.exception("could not write the access log line")


logger_class = JsonAccessLogger
