"""The least-privilege role of the README's production section, run as written: it runs the app, and it cannot alter
the audit trail, even with the append-only triggers disabled.
"""

from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import create_engine
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from audittrail import create_app
from audittrail.extensions import db
from tests.production import harness

pytestmark = pytest.mark.production

DOCS = harness.PROJECT / "README.md"
TABLES = [
    "workspaces",
    "users",
    "api_keys",
    "deployment_actions",
    "idempotency_records",
    "revoked_tokens",
    "webhooks",
    "webhook_deliveries",
]
INSUFFICIENT_PRIVILEGE = "42501"
RAISE_EXCEPTION = "P0001"


def documented_sql(heading: str) -> str:
    """The ```sql block of the README's production section whose first line is `-- audittrail: <heading>…`."""
    for block in re.findall(r"```sql\n(.*?)```", DOCS.read_text(), flags=re.S):
        if block.startswith(f"-- audittrail: {heading}"):
            return block
    raise AssertionError(f"the README's production section has no sql block starting with '-- audittrail: {heading}'")


def statements(sql: str) -> list[str]:
    without_comments = "\n".join(line for line in sql.splitlines() if not line.strip().startswith("--"))
    return [statement.strip() for statement in without_comments.split(";") if statement.strip()]


@pytest.fixture(scope="module")
def roles():
    """The documented roles and database under unique names; all dropped afterwards."""
    suffix = uuid.uuid4().hex[:10]
    names = {"owner": f"at_owner_{suffix}", "app": f"at_app_{suffix}", "database": f"prod_{suffix}"}

    def rename(sql: str) -> str:
        sql = re.sub(r"\baudittrail_owner\b", names["owner"], sql)
        sql = re.sub(r"\baudittrail_app\b", names["app"], sql)
        return re.sub(r"\bDATABASE audittrail\b", f"DATABASE {names['database']}", sql)

    try:
        harness.admin_execute(*statements(rename(documented_sql("roles and database"))))
        owner_url = harness.database_url(names["database"], username=names["owner"])
        harness.migrate(owner_url)
        grants = statements(rename(documented_sql("the app role's grants")))
        owner = create_engine(owner_url, isolation_level="AUTOCOMMIT")
        with owner.connect() as connection:
            for statement in grants:
                connection.execute(text(statement))
        owner.dispose()
        yield {
            **names,
            "owner_url": owner_url,
            "app_url": harness.database_url(names["database"], username=names["app"]),
        }
    finally:
        harness.drop_database(names["database"])
        harness.admin_execute(f'DROP ROLE IF EXISTS "{names["app"]}"', f'DROP ROLE IF EXISTS "{names["owner"]}"')


@pytest.fixture(scope="module")
def seeded(roles):
    """The app, connected as the app role, does its whole job: demo-login, keys, every transition."""
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": roles["app_url"],
            "SECRET_KEY": harness.SECRET_KEY,
            "JWT_SECRET_KEY": harness.JWT_SECRET_KEY,
            "RATELIMIT_STORAGE_URI": "memory://",
            "DEMO_LOGIN_ENABLED": True,
        }
    )
    client = app.test_client()
    try:
        login = client.post("/api/v1/auth/demo-login")
        assert login.status_code == 200, login.get_data(as_text=True)
        jwt = {"Authorization": f"Bearer {login.get_json()['access_token']}"}
        key = client.post("/api/v1/api-keys", json={"name": "least privilege"}, headers=jwt)
        assert key.status_code == 201, key.get_data(as_text=True)
        api_key = {"X-API-Key": key.get_json()["key"]}
        action = client.post(harness.ACTIONS, json=harness.proposal(tier=2), headers=api_key)
        assert action.status_code == 201, action.get_data(as_text=True)
        path = f"{harness.ACTIONS}/{action.get_json()['id']}"
        for step in ("approve", "mark-executed"):
            answer = client.post(f"{path}/{step}", json={}, headers=api_key)
            assert answer.status_code == 200, answer.get_data(as_text=True)
        replay = {**api_key, "Idempotency-Key": "least-privilege"}
        for _ in range(2):
            assert client.post(harness.ACTIONS, json=harness.proposal(tier=1), headers=replay).status_code == 201
        assert client.get(path, headers=api_key).get_json()["status"] == "executed"
        assert client.get("/api/v1/deployments/summary", headers=api_key).status_code == 200
        assert client.post("/api/v1/auth/logout", headers=jwt).status_code == 204
    finally:
        with app.app_context():
            db.engine.dispose()
    return roles


def _refused(url: str, statement: str) -> str:
    """Run `statement` on its own connection; return the SQLSTATE it fails with."""
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text(statement))
    except DBAPIError as error:
        return error.orig.sqlstate
    finally:
        engine.dispose()
    raise AssertionError(f"{statement!r} succeeded")


def _events(url: str) -> list[tuple]:
    engine = create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT id, type, data, hash FROM audit_events ORDER BY id")).all()
    engine.dispose()
    return [tuple(row) for row in rows]


TAMPERING = [
    "UPDATE audit_events SET data = '{}'",
    "DELETE FROM audit_events",
    "TRUNCATE audit_events",
]
TAKING_THE_GUARDS_DOWN = [
    "ALTER TABLE audit_events DISABLE TRIGGER ALL",
    "DROP TRIGGER audit_events_no_update_delete ON audit_events",
    "SET session_replication_role = replica",
    "DROP TABLE audit_events",
    "ALTER TABLE audit_events OWNER TO CURRENT_USER",
    "CREATE TABLE sneaky (id int)",
    "DELETE FROM deployment_actions",
]


@pytest.mark.parametrize("statement", TAMPERING + TAKING_THE_GUARDS_DOWN)
def test_the_app_role_lacks_the_privilege(seeded, statement):
    before = _events(seeded["owner_url"])

    assert _refused(seeded["app_url"], statement) == INSUFFICIENT_PRIVILEGE

    assert _events(seeded["owner_url"]) == before


@pytest.mark.parametrize("statement", TAMPERING)
def test_the_app_role_lacks_the_privilege_even_with_the_triggers_disabled(seeded, statement):
    before = _events(seeded["owner_url"])
    harness.admin_execute("ALTER TABLE audit_events DISABLE TRIGGER USER", database=seeded["database"])
    try:
        # The control: with the triggers off, the owner's update goes through (and is rolled back).
        owner = create_engine(seeded["owner_url"])
        with owner.connect() as connection, connection.begin() as transaction:
            assert connection.execute(text("UPDATE audit_events SET data = data")).rowcount == len(before)
            transaction.rollback()
        owner.dispose()

        assert _refused(seeded["app_url"], statement) == INSUFFICIENT_PRIVILEGE
    finally:
        harness.admin_execute("ALTER TABLE audit_events ENABLE TRIGGER USER", database=seeded["database"])

    assert _events(seeded["owner_url"]) == before


@pytest.mark.parametrize("statement", TAMPERING)
def test_the_triggers_stop_even_the_owner(seeded, statement):
    before = _events(seeded["owner_url"])

    assert _refused(seeded["owner_url"], statement) == RAISE_EXCEPTION

    assert _events(seeded["owner_url"]) == before


def test_the_catalog_shows_an_append_only_non_owner(seeded):
    engine = create_engine(seeded["owner_url"])
    with engine.connect() as connection:

        def allowed(table: str, privilege: str) -> bool:
            return connection.execute(
                text("SELECT has_table_privilege(:role, :table, :privilege)"),
                {"role": seeded["app"], "table": table, "privilege": privilege},
            ).scalar()

        owned = connection.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tableowner = :role"),
            {"role": seeded["app"]},
        ).all()
        role = connection.execute(
            text("SELECT rolsuper, rolcreatedb, rolcreaterole, rolbypassrls FROM pg_roles WHERE rolname = :role"),
            {"role": seeded["app"]},
        ).one()
        audit = {p: allowed("audit_events", p) for p in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")}
        others = {(t, p): allowed(t, p) for t in TABLES for p in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")}
    engine.dispose()

    assert owned == []
    assert tuple(role) == (False, False, False, False)
    assert audit == {"SELECT": True, "INSERT": True, "UPDATE": False, "DELETE": False, "TRUNCATE": False}
    assert {key for key, value in others.items() if value} == {
        (table, privilege) for table in TABLES for privilege in ("SELECT", "INSERT", "UPDATE")
    }


def test_the_chain_still_verifies_as_the_app_role(seeded):
    harness.verify_audit_chain(seeded["app_url"])


def test_the_webhook_worker_runs_as_the_app_role(seeded):
    """Create a webhook, propose, and let `flask webhooks worker`, connected as the app role, deliver."""
    from tests.support.webhooks import Receiver
    from tests.support.webhooks import WorkerProcess

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": seeded["app_url"],
            "SECRET_KEY": harness.SECRET_KEY,
            "JWT_SECRET_KEY": harness.JWT_SECRET_KEY,
            "RATELIMIT_STORAGE_URI": "memory://",
            "DEMO_LOGIN_ENABLED": True,
            "AUDITTRAIL_WEBHOOK_ALLOW_PRIVATE": True,
        }
    )
    client = app.test_client()
    with Receiver() as receiver:
        worker = WorkerProcess(seeded["app_url"])
        worker.environ = harness.app_environment(
            seeded["app_url"], AUDITTRAIL_WEBHOOK_ALLOW_PRIVATE="true", AUDITTRAIL_WEBHOOK_POLL_SECONDS="0.1"
        )
        try:
            jwt = {"Authorization": f"Bearer {client.post('/api/v1/auth/demo-login').get_json()['access_token']}"}
            created = client.post(
                "/api/v1/webhooks", json={"url": receiver.url, "event_types": ["proposed"]}, headers=jwt
            )
            assert created.status_code == 201, created.get_data(as_text=True)
            with worker:
                assert client.post(harness.ACTIONS, json=harness.proposal(tier=2), headers=jwt).status_code == 201
                got = receiver.wait_for(lambda requests: len(requests) >= 1, timeout=30, what="the delivery")
            assert got[0].json["type"] == "deployment_action.proposed"
        finally:
            worker.log.close()
            with app.app_context():
                db.engine.dispose()
