"""AUDITTRAIL_ENV=production from the environment, ProxyFix, and gunicorn.conf.py read from the environment."""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys

import pytest

from audittrail import create_app
from audittrail.extensions import db
from tests.production import harness

pytestmark = pytest.mark.production


@pytest.fixture
def production_app(database, monkeypatch):
    """create_app() reading nothing but the environment, as wsgi.py does."""
    apps = []

    def build(**environ: str):
        for name, value in harness.app_environment(database, RATELIMIT_STORAGE_URI="memory://", **environ).items():
            monkeypatch.setenv(name, value)
        for name in ("DEMO_LOGIN_ENABLED", "AUDITTRAIL_TRUSTED_PROXIES"):
            if name not in environ:
                monkeypatch.delenv(name, raising=False)
        app = create_app()
        apps.append(app)
        return app

    yield build
    for app in apps:
        with app.app_context():
            db.engine.dispose()


def test_production_turns_demo_login_off_unless_asked(production_app):
    client = production_app().test_client()

    response = client.post("/api/v1/auth/demo-login")

    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_production_cookies_are_secure(production_app):
    client = production_app(DEMO_LOGIN_ENABLED="true").test_client()

    response = client.post("/api/v1/auth/demo-login")

    assert response.status_code == 200
    cookies = response.headers.getlist("Set-Cookie")
    assert cookies and all("; Secure" in cookie for cookie in cookies), cookies
    assert any(cookie.startswith("access_token_cookie=") and "; HttpOnly" in cookie for cookie in cookies)


def _logins(client, addresses: list[str]) -> list[int]:
    """One failed login per forwarded address, all arriving from the same proxy."""
    return [
        client.post(
            "/api/v1/auth/login",
            json={"email": "nobody@example.test", "password": "wrong-password"},
            headers={"X-Forwarded-For": address},
            environ_base={"REMOTE_ADDR": "10.0.0.2"},
        ).status_code
        for address in addresses
    ]


def test_behind_one_trusted_proxy_the_login_limit_counts_the_real_client(production_app):
    app = production_app(AUDITTRAIL_TRUSTED_PROXIES="1", AUDITTRAIL_LOGIN_RATE_LIMIT="2/minute")

    statuses = _logins(app.test_client(), ["203.0.113.7", "203.0.113.7", "198.51.100.9", "203.0.113.7"])

    assert statuses == [401, 401, 401, 429]


def test_with_no_trusted_proxy_a_forwarded_address_is_ignored(production_app):
    app = production_app(AUDITTRAIL_LOGIN_RATE_LIMIT="2/minute")

    statuses = _logins(app.test_client(), ["203.0.113.7", "198.51.100.9", "192.0.2.44"])

    assert statuses == [401, 401, 429]


def test_production_without_secrets_does_not_boot(database):
    environ = harness.app_environment(database, SECRET_KEY="", JWT_SECRET_KEY="", WEB_CONCURRENCY="1")
    environ["PORT"] = str(harness.free_port())

    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "wsgi:app"],
        cwd=harness.PROJECT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode != 0
    assert "AUDITTRAIL_ENV=production needs SECRET_KEY and JWT_SECRET_KEY" in result.stderr


def _gunicorn_settings(**environ: str) -> dict[str, str]:
    """What gunicorn makes of gunicorn.conf.py in this environment (`--print-config`)."""
    base = harness.app_environment("sqlite://")
    for name in ("HOST", "PORT"):
        base.pop(name, None)
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "--print-config", "wsgi:app"],
        cwd=harness.PROJECT,
        env={**base, **environ},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    settings = {}
    for line in result.stdout.splitlines():
        name, _, value = line.partition("=")
        settings[name.strip()] = value.strip()
    return settings


def test_gunicorn_takes_its_settings_from_the_environment():
    settings = _gunicorn_settings(
        HOST="0.0.0.0",
        PORT="8123",
        WEB_CONCURRENCY="3",
        GUNICORN_THREADS="6",
        GUNICORN_TIMEOUT="45",
        GUNICORN_GRACEFUL_TIMEOUT="20",
    )

    assert settings["bind"] == "['0.0.0.0:8123']"
    assert settings["workers"] == "3"
    assert settings["worker_class"] == "gevent"
    assert settings["worker_connections"] == "1000"
    assert settings["threads"] == "6"
    assert settings["timeout"] == "45"
    assert settings["graceful_timeout"] == "20"
    assert settings["preload_app"] == "False"
    assert settings["control_socket_disable"] == "True"
    assert settings["accesslog"] == "-"
    assert "JsonAccessLogger" in settings["logger_class"]


def test_gunicorn_worker_class_can_go_back_to_threads():
    settings = _gunicorn_settings(GUNICORN_WORKER_CLASS="gthread", GUNICORN_WORKER_CONNECTIONS="600")

    assert (settings["worker_class"], settings["worker_connections"]) == ("gthread", "600")


def test_gunicorn_defaults_bind_to_loopback():
    settings = _gunicorn_settings()

    assert settings["bind"] == "['127.0.0.1:5000']"
    assert settings["threads"] == "4"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("GUNICORN_THREADS", "many", "GUNICORN_THREADS must be an integer, got 'many'"),
        ("WEB_CONCURRENCY", "0", "WEB_CONCURRENCY must be at least 1, got 0"),
        ("GUNICORN_WORKER_CLASS", "eventlet", "GUNICORN_WORKER_CLASS must be one of"),
    ],
)
def test_gunicorn_refuses_a_malformed_setting(name, value, message):
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "--print-config", "wsgi:app"],
        cwd=harness.PROJECT,
        env=harness.app_environment("sqlite://", **{name: value}),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert message in result.stdout + result.stderr


@pytest.mark.parametrize(("cores", "workers"), [(1, 3), (2, 5), (3, 7), (4, 8), (64, 8)])
def test_default_workers_are_two_per_core_plus_one_capped(cores, workers):
    spec = importlib.util.spec_from_file_location("gunicorn_conf", harness.PROJECT / "gunicorn.conf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    assert module.default_workers(cores) == workers


def test_gunicorn_request_limits_are_the_documented_ones():
    settings = _gunicorn_settings()

    assert settings["limit_request_line"] == "4094"
    assert settings["limit_request_fields"] == "100"
    assert settings["limit_request_field_size"] == "8190"


def _raw_answer(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in header_lines)}
    return int(status_line.split()[1]), headers, body


@pytest.fixture(scope="module")
def one_worker(database, log_dir):
    server = harness.GunicornServer(database, log_dir, workers=1).start()
    yield server
    server.stop()


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /healthz?" + b"a" * 4100 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 8200 + b"\r\n\r\n", 431),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % n for n in range(101)) + b"\r\n", 431),
        (b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n", 400),
        (b"get /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400),
        (
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            400,
        ),
        (b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
    ],
    ids=["long-line", "long-header", "many-headers", "bad-version", "bad-method", "bad-header", "cl-and-te", "gzip-te"],
)
def test_gunicorn_itself_answers_what_the_readme_lists_in_html(one_worker, request_bytes, status):
    answered, headers, body = _raw_answer(one_worker.port, request_bytes)

    assert answered == status
    assert headers["content-type"] == "text/html"
    assert "x-request-id" not in headers
    assert body.startswith(b"<html>")


def test_a_request_just_inside_gunicorns_limits_is_answered_by_the_app(one_worker):
    path = "/api/v1/deployments/actions/" + "a" * 3900
    headers = b"".join(b"X-%d: 1\r\n" % n for n in range(90)) + b"X-Big: " + b"a" * 8000 + b"\r\n"

    answered, answer_headers, body = _raw_answer(
        one_worker.port, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n".encode() + headers + b"\r\n"
    )

    assert answered == 401
    assert answer_headers["content-type"] == "application/json"
    assert answer_headers["x-request-id"]
    assert json.loads(body)["error"]["code"] == "unauthorized"
