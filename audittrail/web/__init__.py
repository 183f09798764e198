"""The HTML shell: /login, /deployments, /settings, /runs, /runs/{id}, static files, vendor files from node_modules.

The page is plain HTML rendered once; everything it shows comes from /api/v1 through
static/js. Templates and static files are the app's (create_app points it at the project's
`templates/` and `static/`); this blueprint adds the two Alpine ES module builds, served
straight out of `node_modules/` (never copied into the repo), and the security headers.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint
from flask import abort
from flask import current_app
from flask import redirect
from flask import render_template
from flask import request
from flask import send_from_directory
from flask import url_for

PROJECT_ROOT = Path(__file__).resolve().parents[2]

bp = Blueprint("web", __name__)

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
        # The run graph's layout runs in a web worker served from /static/vendor (runs.md §2).
        "worker-src 'self'",
    )
)

# The only node_modules files the browser may fetch: the ES module builds, so that
# static/js/app.js registers the Focus plugin and the components before Alpine.start().
VENDOR_FILES = {
    "alpinejs-csp.esm.js": "@alpinejs/csp/dist/module.esm.js",
    "alpinejs-focus.esm.js": "@alpinejs/focus/dist/module.esm.js",
    # The run graph's layout (README: "The DAG viewer"): ELK's own web worker build, run as a worker.
    "elk-worker.min.js": "elkjs/lib/elk-worker.min.js",
}

# flask-jwt-extended's default name for the HttpOnly access-token cookie.
DEFAULT_ACCESS_COOKIE_NAME = "access_token_cookie"


def _node_modules() -> Path:
    return Path(current_app.config.get("AUDITTRAIL_NODE_MODULES") or PROJECT_ROOT / "node_modules")


def _has_session_cookie() -> bool:
    # Only a presence check, to pick the page to show: the API checks the token itself
    # and the page goes back to /login on the first 401.
    name = current_app.config.get("JWT_ACCESS_COOKIE_NAME", DEFAULT_ACCESS_COOKIE_NAME)
    return bool(request.cookies.get(name))


@bp.get("/")
def index():
    """The product lives at /deployments."""
    return redirect(url_for("web.deployments"))


@bp.get("/login")
def login():
    """Sign in with email and password, or start a demo workspace."""
    return render_template("login.html", demo_login_enabled=current_app.config.get("DEMO_LOGIN_ENABLED", True))


@bp.get("/deployments")
def deployments():
    """The deployment actions queue; without a session cookie, the login page."""
    if not _has_session_cookie():
        return redirect(url_for("web.login"))
    return render_template("deployments.html")


@bp.get("/settings")
def settings():
    """Members, roles and the approval policy; without a session cookie, the login page."""
    if not _has_session_cookie():
        return redirect(url_for("web.login"))
    return render_template("settings.html")


@bp.get("/runs")
def runs():
    """The runs the fleet's agents reported; without a session cookie, the login page."""
    if not _has_session_cookie():
        return redirect(url_for("web.login"))
    return render_template("runs.html")


@bp.get("/runs/<run_id>")
def run(run_id: str):
    """One run's graph, its node menu and its actions; without a session cookie, the login page."""
    if not _has_session_cookie():
        return redirect(url_for("web.login"))
    return render_template("run.html", run_id=run_id)


@bp.get("/static/vendor/<path:filename>")
def vendor(filename: str):
    """Alpine.js and its Focus plugin, served from the project's node_modules."""
    relative = VENDOR_FILES.get(filename)
    if relative is None:
        abort(404)
    return send_from_directory(_node_modules(), relative, mimetype="text/javascript")


@bp.after_app_request
def security_headers(response):
    """Every HTML response of the app gets the strict CSP (no inline script or style) and no-store.

    nosniff goes on every response, so that scripts and styles run only when served
    with their declared type.
    """
    response.headers["X-Content-Type-Options"] = "nosniff"
    if response.mimetype == "text/html":
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["Referrer-Policy"] = "same-origin"
        # A page shown after a session must not come back from a cache (the back button after logout).
        response.headers["Cache-Control"] = "no-store"
    return response
