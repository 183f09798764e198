"""The webhooks API (webhooks.md §1, §4): admins with a JWT; the secret shown once; refusals change nothing."""

from __future__ import annotations

import base64
import json
import socket
from http import HTTPStatus

import pytest
from sqlalchemy import func
from sqlalchemy import select

from audittrail.domain.webhooks import WEBHOOK_EVENT_TYPES
from audittrail.extensions import db
from audittrail.models import AuditEvent
from audittrail.models import Webhook
from audittrail.models import WebhookDelivery
from tests.api.conftest import Caller
from tests.api.conftest import bearer
from tests.api.conftest import error_code
from tests.api.conftest import jwt_for
from tests.api.conftest import key_caller
from tests.factories import add_member

WEBHOOKS = "/api/v1/webhooks"


@pytest.fixture
def admin(client, team, clock) -> Caller:
    return Caller(client, bearer(jwt_for(add_member(team, clock(), "Ada", role="admin"))), None)


@pytest.fixture
def rival_admin(client, rival_team, clock) -> Caller:
    return Caller(client, bearer(jwt_for(add_member(rival_team, clock(), "Rex", role="admin"))), None)


def create(caller, **fields):
    response = caller.post(WEBHOOKS, json={"url": "https://hooks.example.com/in", **fields})
    assert response.status_code == HTTPStatus.CREATED, response.get_json()
    return response.get_json()


def test_create_answers_the_webhook_with_its_secret_once(admin):
    response = admin.post(WEBHOOKS, json={"url": "https://hooks.example.com/in", "description": "ops"})
    assert response.status_code == HTTPStatus.CREATED
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert set(body) == {"id", "url", "description", "event_types", "format", "created_at", "disabled_at",
                         "disabled_reason", "secret"}  # fmt: skip
    assert body["secret"].startswith("whsec_") and len(base64.b64decode(body["secret"][6:])) == 32
    assert body["event_types"] == list(WEBHOOK_EVENT_TYPES)
    assert (body["format"], body["disabled_at"], body["description"]) == ("standard", None, "ops")
    listed = admin.get(WEBHOOKS).get_json()["items"]
    assert [item["id"] for item in listed] == [body["id"]]
    assert "secret" not in listed[0]
    assert "secret" not in admin.get(f"{WEBHOOKS}/{body['id']}").get_json()


def test_a_blank_description_is_none(admin):
    assert create(admin, description=" \u200b ")["description"] is None


def test_event_types_are_a_subset_kept_in_the_chain_order(admin):
    body = create(admin, event_types=["approved", "proposed", "approved"], format="slack")
    assert (body["event_types"], body["format"]) == (["proposed", "approved"], "slack")


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"url": "ftp://hooks.example.com/in"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": "https://user:pw@hooks.example.com/"}, "url"),
        ({"url": "https://hooks.example.com:0/"}, "url"),
        ({"url": "https://hooks.example.com/", "event_types": []}, "event_types"),
        ({"url": "https://hooks.example.com/", "event_types": ["invented"]}, "event_types"),
        ({"url": "https://hooks.example.com/", "format": "teams"}, "format"),
        ({"url": "https://hooks.example.com/", "secret": "mine"}, "secret"),
    ],
)
def test_bad_fields_answer_422_and_create_nothing(admin, fields, field):
    response = admin.post(WEBHOOKS, json=fields)
    assert (response.status_code, error_code(response)) == (HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error")
    assert field in response.get_json()["error"]["details"]
    assert db.session.scalar(select(func.count()).select_from(Webhook)) == 0


def test_only_admins_with_a_jwt_manage_webhooks(client, admin, alice):
    response = alice.get(WEBHOOKS)
    assert (response.status_code, error_code(response)) == (HTTPStatus.FORBIDDEN, "forbidden")
    admin_key = admin.post("/api/v1/api-keys", json={"name": "k"}).get_json()["key"]
    response = key_caller(client, admin_key).post(WEBHOOKS, json={"url": "https://hooks.example.com/"})
    assert (response.status_code, error_code(response)) == (HTTPStatus.FORBIDDEN, "forbidden")
    assert db.session.scalar(select(func.count()).select_from(Webhook)) == 0


def test_creating_and_deleting_append_workspace_events_without_the_secret(admin, team):
    body = create(admin)
    assert admin.delete(f"{WEBHOOKS}/{body['id']}").status_code == HTTPStatus.NO_CONTENT
    events = list(db.session.scalars(select(AuditEvent).where(AuditEvent.workspace_id == team.workspace.id)))
    mine = [(e.type, json.loads(e.data), e.action_id) for e in events if e.type.startswith("webhook_")]
    expected = {"webhook_id": body["id"], "url": body["url"]}
    assert mine == [("webhook_created", expected, None), ("webhook_deleted", expected, None)]
    assert all(body["secret"] not in e.data for e in events)


def test_a_deleted_webhook_is_gone(admin):
    body = create(admin)
    admin.delete(f"{WEBHOOKS}/{body['id']}")
    for response in (
        admin.get(f"{WEBHOOKS}/{body['id']}"),
        admin.delete(f"{WEBHOOKS}/{body['id']}"),
        admin.post(f"{WEBHOOKS}/{body['id']}/ping"),
        admin.post(f"{WEBHOOKS}/{body['id']}/enable"),
        admin.get(f"{WEBHOOKS}/{body['id']}/deliveries"),
    ):
        assert (response.status_code, error_code(response)) == (HTTPStatus.NOT_FOUND, "not_found")
    assert admin.get(WEBHOOKS).get_json() == {"items": []}


def test_another_workspace_sees_nothing_and_gets_404(admin, rival_admin):
    body = create(admin)
    assert rival_admin.get(WEBHOOKS).get_json() == {"items": []}
    for response in (
        rival_admin.get(f"{WEBHOOKS}/{body['id']}"),
        rival_admin.delete(f"{WEBHOOKS}/{body['id']}"),
        rival_admin.post(f"{WEBHOOKS}/{body['id']}/ping"),
        rival_admin.get(f"{WEBHOOKS}/{body['id']}/deliveries"),
    ):
        assert response.status_code == HTTPStatus.NOT_FOUND
    assert admin.get(f"{WEBHOOKS}/{body['id']}").status_code == HTTPStatus.OK


def test_ping_queues_a_pending_delivery_listed_first(admin):
    body = create(admin)
    response = admin.post(f"{WEBHOOKS}/{body['id']}/ping")
    assert response.status_code == HTTPStatus.ACCEPTED
    delivery = response.get_json()
    assert delivery["id"].startswith("msg_")
    assert (delivery["type"], delivery["state"], delivery["event_seq"], delivery["attempts"]) == (
        "webhook.ping", "pending", None, 0)  # fmt: skip
    listed = admin.get(f"{WEBHOOKS}/{body['id']}/deliveries?limit=5").get_json()["items"]
    assert [item["id"] for item in listed] == [delivery["id"]]


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=x", "page=2"])
def test_bad_delivery_queries_answer_422(admin, query):
    body = create(admin)
    response = admin.get(f"{WEBHOOKS}/{body['id']}/deliveries?{query}")
    assert (response.status_code, error_code(response)) == (HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error")


def test_enabling_an_enabled_webhook_answers_it_unchanged(admin):
    body = create(admin)
    response = admin.post(f"{WEBHOOKS}/{body['id']}/enable")
    assert response.status_code == HTTPStatus.OK
    assert response.get_json() == {key: value for key, value in body.items() if key != "secret"}


def test_a_proposal_does_no_webhook_work_the_worker_reads_the_chain_later(admin, alice):
    body = create(admin)
    alice.propose(action_type="throttle", target_ref="svc_checkout", reason="Cost spike")
    # The request wrote its action and its event, nothing for the webhook: no delivery, the cursor
    # where creation left it. Sending is the worker's, from the chain, in another process.
    assert db.session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0
    webhook = db.session.get(Webhook, body["id"])
    created = db.session.scalar(select(AuditEvent.seq).where(AuditEvent.type == "webhook_created"))
    assert webhook.cursor_seq == created


# §4: in production, https only, and no name that resolves to a non-public address.


@pytest.fixture
def app_config(app_config, monkeypatch):
    """Names resolve through a table of the test's own (no DNS)."""
    table = {
        "public.example.com": "93.184.216.34",
        "private.example.com": "10.1.2.3",
        "loopback.example.com": "127.0.0.1",
        "linklocal.example.com": "169.254.169.254",
        "multicast.example.com": "224.0.0.1",
        "reserved.example.com": "240.0.0.1",
        "mapped.example.com": "::ffff:127.0.0.1",
    }

    def fake_getaddrinfo(host, port, *args, **kwargs):
        if host not in table:
            raise socket.gaierror("unknown name")
        address = table[host]
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    return app_config


@pytest.fixture
def production(app):
    app.config["AUDITTRAIL_ENV"] = "production"
    return app


@pytest.mark.parametrize(
    "url",
    [
        "http://public.example.com/in",
        "https://private.example.com/in",
        "https://loopback.example.com/in",
        "https://linklocal.example.com/in",
        "https://multicast.example.com/in",
        "https://reserved.example.com/in",
        "https://mapped.example.com/in",
        "https://127.0.0.1/in",
        "https://[::1]/in",
        "https://unknown.example.com/in",
    ],
)
def test_production_refuses_urls_that_are_not_https_to_a_public_address(production, admin, url):
    response = admin.post(WEBHOOKS, json={"url": url})
    assert (response.status_code, error_code(response)) == (HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error")
    assert "url" in response.get_json()["error"]["details"]
    assert db.session.scalar(select(func.count()).select_from(Webhook)) == 0


def test_production_accepts_https_to_a_public_address(production, admin):
    create(admin, url="https://public.example.com/in")


def test_allow_private_lifts_the_rule(production, admin):
    production.config["AUDITTRAIL_WEBHOOK_ALLOW_PRIVATE"] = True
    create(admin, url="http://private.example.com/in")
