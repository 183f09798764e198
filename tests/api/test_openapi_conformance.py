"""Schemathesis over /api/v1/openapi.json: no 5xx, and every answer is what the document says.

The schema is loaded from the test's own app through WSGI (no network). Each generated request is
sent with a fresh JWT of a demo workspace's operator (logout may revoke the previous one), and the
generated path ids are mixed with ids that exist in that workspace, so the state-changing routes
are exercised for real and not only answered with 404. Generation is deterministic (fixed seed,
derandomized) so a failure replays the same way.

The walk runs on one database: PostgreSQL when TEST_DATABASE_URL is set (it is the stricter of the
two: NUL bytes, lengths, types), else SQLite. Most of its time is Hypothesis generating bodies, not
the requests; the runs routes' bodies (up to 2 000 nested nodes, each string under the printable
pattern) made the coverage phase alone take minutes, so those routes get the fuzzing phase only,
with 12 examples each (50 took 7 of the walk's 10 minutes on a slow day); every other route gets 50.
Their boundaries (caps, cycles, unknown nodes) are tested by name in tests/api/test_runs.py.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings
from hypothesis import strategies as st
from schemathesis.checks import content_type_conformance
from schemathesis.checks import not_a_server_error
from schemathesis.checks import response_headers_conformance
from schemathesis.checks import response_schema_conformance
from schemathesis.checks import status_code_conformance
from schemathesis.config import SchemathesisConfig
from sqlalchemy import select

from audittrail.extensions import db
from audittrail.models import DeploymentAction
from audittrail.services import api_keys
from audittrail.services import demo
from audittrail.services import webhooks
from audittrail.services.actors import user_actor
from audittrail.services.webhook_http import UrlRules
from tests.api.conftest import jwt_for
from tests.conftest import BACKENDS

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
MAX_EXAMPLES = 50
RUNS_MAX_EXAMPLES = 12
CONFIG = {
    "seed": 20261130,
    "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "deterministic": True,
                   "with-security-parameters": False},
    "operations": [{"include-path-regex": "^/api/v1/runs", "phases": {"coverage": {"enabled": False}},
                    "generation": {"max-examples": RUNS_MAX_EXAMPLES}}],
}  # fmt: skip
ID_PARAMETERS = ("action_id", "key_id", "webhook_id")


@pytest.fixture
def app_config(app_config) -> dict:
    """A generated `?wait=` holds the request a moment, not up to a minute; a stream ends as soon."""
    return {**app_config, "AUDITTRAIL_WAIT_MAX_SECONDS": 0.05, "AUDITTRAIL_STREAM_MAX_SECONDS": 0.05}


@pytest.fixture
def demo_world(app, clock):
    """A demo workspace (10 seeded rows) and three API keys of its operator."""
    created = demo.create_demo_workspace(clock())
    action_ids = list(
        db.session.scalars(select(DeploymentAction.id).where(DeploymentAction.workspace_id == created.workspace.id))
    )
    key_ids = [api_keys.create_api_key(created.operator, f"key {n}", clock())[0].id for n in range(3)]
    operator = user_actor(created.operator)
    rules = UrlRules(strict=False)
    webhook_ids = [
        webhooks.create_webhook(operator, f"http://127.0.0.1:9/hook{n}", clock(), rules)[0].id for n in range(2)
    ]
    return {"operator": created.operator, "action_id": action_ids, "key_id": key_ids, "webhook_id": webhook_ids}


@pytest.fixture
def api_schema(app, demo_world):
    loaded = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, config=SchemathesisConfig.from_dict(CONFIG))

    @loaded.hook
    def before_generate_path_parameters(context, strategy):
        """Half the time, aim at an id that exists in the caller's workspace."""
        names = [name for name in ID_PARAMETERS if "{" + name + "}" in context.operation.path]
        if not names:
            return strategy
        real = st.fixed_dictionaries({name: st.sampled_from(demo_world[name]) for name in names})
        return st.one_of(strategy, real)

    return loaded


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request):
    """schemathesis 4.32's `from_fixture` reads `Node._nodeid`, an attribute pytest 9 no longer has."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.mark.parametrize("database_url", BACKENDS[-1:], indirect=True)
@schema.parametrize()
@settings(derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_answers_as_its_openapi_document_says(case, demo_world):
    case.call_and_validate(headers={"Authorization": f"Bearer {jwt_for(demo_world['operator'])}"}, checks=CHECKS)
