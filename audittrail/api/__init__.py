"""The JSON API, /api/v1: one module per resource, thin views."""

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")

from audittrail.api import actions  # noqa: E402,F401
from audittrail.api import api_keys  # noqa: E402,F401
from audittrail.api import auth  # noqa: E402,F401
from audittrail.api import events  # noqa: E402,F401
from audittrail.api import evidence  # noqa: E402,F401
from audittrail.api import members  # noqa: E402,F401
from audittrail.api import openapi  # noqa: E402,F401
from audittrail.api import runs  # noqa: E402,F401
from audittrail.api import webhooks  # noqa: E402,F401
