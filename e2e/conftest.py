"""End-to-end fixtures: the real app in its own process, driven by Chromium through Playwright.

Each server gets a fresh SQLite database in a temporary directory, is migrated with
`flask db upgrade` and served by `flask run` on a free port. Every test also fails on any
console error, uncaught page error or Content-Security-Policy violation in its pages.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from unittest import mock

import pytest
from playwright.sync_api import Page

from e2e.pages import QueuePage

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
AXE_SOURCE = PROJECT_ROOT / "node_modules" / "axe-core" / "axe.min.js"

DEFAULT_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# A zone away from UTC, so that "today" in the KPI strip is visibly the browser's today.
BROWSER_TIMEZONE = "Europe/Paris"
SERVER_START_TIMEOUT_SECONDS = 30


# --------------------------------------------------------------------------- the app


# A password user created in each app's database with `flask users create`.
PASSWORD_USER = {"email": "e2e.operator@example.test", "name": "E2E Operator", "password": secrets.token_urlsafe(16)}


@dataclass
class AppServer:
    url: str
    process: subprocess.Popen
    log_path: Path
    jwt_secret_key: str = ""  # the server's, so that a test can mint a session for any member

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_healthy(server: AppServer) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the app exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(f"{server.url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the app did not answer /healthz in {SERVER_START_TIMEOUT_SECONDS} s:\n{server.log_tail()}")


def _start_app(directory: Path, **settings: str) -> AppServer:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("FLASK_", "AUDITTRAIL_"))}
    jwt_secret_key = secrets.token_urlsafe(32)
    env.update(
        {
            "DATABASE_URL": f"sqlite:///{directory / 'e2e.db'}",
            "SECRET_KEY": secrets.token_urlsafe(32),
            "JWT_SECRET_KEY": jwt_secret_key,
            "RATELIMIT_STORAGE_URI": "memory://",
            "DEMO_LOGIN_ENABLED": "true",
            "AUDITTRAIL_TTL_MIN_SECONDS": "1",
            "AUDITTRAIL_LOGIN_RATE_LIMIT": "1000/minute",
            # The live hub's own expiry sweep stays out of tests that time a TTL to the second.
            "AUDITTRAIL_STREAM_EXPIRY_SECONDS": "3600",
            "PYTHONUNBUFFERED": "1",
            **settings,
        }
    )
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    upgrade = subprocess.run(
        [*flask, "db", "upgrade"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    if upgrade.returncode != 0:
        raise RuntimeError(f"flask db upgrade failed:\n{upgrade.stdout}\n{upgrade.stderr}")
    create_user = subprocess.run(
        [*flask, "users", "create", "--workspace", "E2E fleet"]
        + [f"--{option}={PASSWORD_USER[option]}" for option in ("email", "name", "password")],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if create_user.returncode != 0:
        raise RuntimeError(f"flask users create failed:\n{create_user.stdout}\n{create_user.stderr}")

    port = _free_port()
    log_path = directory / "server.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [*flask, "run", "--host", "127.0.0.1", "--port", str(port), "--no-reload", "--no-debugger"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = AppServer(f"http://127.0.0.1:{port}", process, log_path, jwt_secret_key)
    try:
        _wait_until_healthy(server)
    except Exception:
        _stop(server)
        raise
    return server


def _stop(server: AppServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=10)


@pytest.fixture(scope="session")
def app_server(tmp_path_factory):
    """The app with a fresh database, a 1 s TTL floor and a generous login limit."""
    server = _start_app(tmp_path_factory.mktemp("e2e-app"))
    yield server
    _stop(server)


@pytest.fixture(scope="session")
def rate_limited_server(tmp_path_factory):
    """A second instance whose state-transition bucket holds only 3 requests a minute."""
    server = _start_app(tmp_path_factory.mktemp("e2e-rate-limited"), AUDITTRAIL_TRANSITION_RATE_LIMIT="3/minute")
    yield server
    _stop(server)


@pytest.fixture(scope="session")
def base_url(app_server):
    """pytest-playwright resolves page.goto("/…") and page.request paths against this."""
    return app_server.url


# --------------------------------------------------------------------------- the browser


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """Debian's chromium by default (Playwright cannot download its own everywhere).

    AUDITTRAIL_CHROMIUM picks another binary; set it empty (or to a missing file) to use
    the browser that `playwright install chromium` fetched.
    """
    launch_args = dict(browser_type_launch_args)
    launch_args["args"] = [*launch_args.get("args", []), *CHROMIUM_ARGS]
    executable = os.environ.get("AUDITTRAIL_CHROMIUM", DEFAULT_CHROMIUM)
    if executable and Path(executable).is_file():
        launch_args["executable_path"] = executable
    else:
        launch_args.pop("executable_path", None)
    return launch_args


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1280, "height": 800}, "timezone_id": BROWSER_TIMEZONE}


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Screenshots of each run (git-ignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


# --------------------------------------------------------------------------- problems in the page

_FAILED_RESOURCE = re.compile(r"^Failed to load resource: the server responded with a status of (\d{3})")
_FAILED_REQUEST = re.compile(r"^Failed to load resource: net::ERR_")

_REPORT_CSP_VIOLATIONS = """
document.addEventListener('securitypolicyviolation', (event) => {
  window.__e2eCspViolation(
    event.violatedDirective + ' blocked ' + (event.blockedURI || 'inline') +
    ' at ' + (event.sourceFile || '?') + ':' + event.lineNumber
  );
});
"""


@dataclass
class PageProblems:
    """Console errors, uncaught errors, Alpine warnings and CSP violations seen in watched pages.

    An HTTP error status the test provokes on purpose (a 400 for an expired action, a 429
    when over the rate limit) is declared with `expect_http_errors`; Chromium logs those
    responses as console errors and only those exact statuses are let through. Likewise
    `expect_failed_requests` for a test that cuts the network.
    """

    problems: list[str] = field(default_factory=list)
    expected_statuses: set[int] = field(default_factory=set)
    expect_network_failures: bool = False
    reported: int = 0

    def watch(self, page) -> None:
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.problems.append(f"uncaught error: {error}"))
        page.expose_function("__e2eCspViolation", lambda text: self.problems.append(f"CSP violation: {text}"))
        page.add_init_script(_REPORT_CSP_VIOLATIONS)

    def expect_http_errors(self, *statuses: int) -> None:
        self.expected_statuses.update(statuses)

    def expect_failed_requests(self) -> None:
        """The test cuts the network on purpose: Chromium's net::ERR_… lines are expected."""
        self.expect_network_failures = True

    def _on_console(self, message) -> None:
        text = message.text
        if message.type == "error":
            failed = _FAILED_RESOURCE.match(text)
            if failed and int(failed.group(1)) in self.expected_statuses:
                return
            if self.expect_network_failures and _FAILED_REQUEST.match(text):
                return
            self.problems.append(f"console error: {text} ({message.location.get('url', '')})")
        elif message.type == "warning" and "Alpine" in text:
            self.problems.append(f"Alpine warning: {text}")


@pytest.fixture(autouse=True)
def page_problems(page):
    """Watches the test's page (and any page passed to `watch`) for errors and CSP violations."""
    watcher = PageProblems()
    watcher.watch(page)
    yield watcher
    # Anything logged after the test body (while it was tearing down) still fails it.
    late = watcher.problems[watcher.reported :]
    if late:
        pytest.fail("problems in the page after the test:\n" + "\n".join(late), pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """A test whose pages logged an error or violated the CSP fails, even if its asserts passed."""
    watcher = item.funcargs.get("page_problems")
    try:
        return (yield)
    finally:
        if watcher is not None and watcher.problems:
            watcher.reported = len(watcher.problems)
            text = "\n".join(watcher.problems)
            if sys.exc_info()[0] is None:
                pytest.fail(f"problems in the page:\n{text}", pytrace=False)
            item.add_report_section("call", "page problems", text)


@pytest.fixture(scope="session")
def axe_source() -> str:
    return AXE_SOURCE.read_text()


@pytest.fixture
def queue(page):
    """A fresh demo workspace, signed in through the "Try the demo" button, on /deployments."""
    return QueuePage(page).demo_login()


# --------------------------------------------------------------------------- other members

ACCESS_COOKIE = "access_token_cookie"
CSRF_COOKIE = "csrf_access_token"


@pytest.fixture(scope="session")
def mint_session(app_server) -> Callable[[str, str], tuple[str, str]]:
    """(access token, CSRF token) for any member of a workspace, as the server's own login would sign them.

    Built in this process with the server's JWT key and an empty in-memory database: minting
    needs only the key and the app's JWT settings. The environment is patched for the build
    so that no development secrets file is written under instance/.
    """
    from flask_jwt_extended import create_access_token
    from flask_jwt_extended import get_csrf_token

    from audittrail import create_app

    settings = {
        "SECRET_KEY": secrets.token_urlsafe(32),
        "JWT_SECRET_KEY": app_server.jwt_secret_key,
        "SQLALCHEMY_DATABASE_URI": "sqlite://",
    }
    with mock.patch.dict(os.environ, {**settings, "DATABASE_URL": "sqlite://"}):
        app = create_app(settings)

    def mint(user_id: str, workspace_id: str) -> tuple[str, str]:
        with app.app_context():
            token = create_access_token(identity=user_id, additional_claims={"ws": workspace_id})
            return token, get_csrf_token(token)

    return mint


@pytest.fixture
def signed_in_as(browser, browser_context_args, app_server, mint_session, page_problems) -> Callable[..., Page]:
    """Open a page in a second browser context signed in as member `user_id` of `workspace_id`.

    The context carries the same cookies as a real sign-in (the HttpOnly access token and the
    CSRF cookie the page reads); its page is watched for console errors and CSP violations
    like the test's own.
    """
    contexts = []

    def open_page(user_id: str, workspace_id: str) -> Page:
        token, csrf = mint_session(user_id, workspace_id)
        context = browser.new_context(**browser_context_args)
        contexts.append(context)
        context.add_cookies(
            [
                {"name": ACCESS_COOKIE, "value": token, "url": app_server.url, "httpOnly": True, "sameSite": "Lax"},
                {"name": CSRF_COOKIE, "value": csrf, "url": app_server.url, "sameSite": "Lax"},
            ]
        )
        page = context.new_page()
        page_problems.watch(page)
        return page

    yield open_page
    for context in contexts:
        context.close()
