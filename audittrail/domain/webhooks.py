"""Webhooks (webhooks.md): what a delivery is, its signature, its retry schedule, safe addresses.

Standard library only: the worker, the services and the tests share these rules.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import random
import secrets
from enum import StrEnum

from audittrail.domain.rules import EventType


class WebhookFormat(StrEnum):
    STANDARD = "standard"
    SLACK = "slack"


class DeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


# Every event type a webhook may subscribe to, in the chain's own order of declaration.
WEBHOOK_EVENT_TYPES: tuple[str, ...] = tuple(event_type.value for event_type in EventType)

PING_TYPE = "webhook.ping"
EVENT_TYPE_PREFIX = "deployment_action."

MAX_URL_LENGTH = 2048
MAX_DESCRIPTION_LENGTH = 500
MAX_DELIVERIES_PAGE = 100

SECRET_PREFIX = "whsec_"
USER_AGENT = "AuditTrail-Webhooks/1"

# §3: the waits before each retry, in seconds: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h.
RETRY_DELAYS_SECONDS: tuple[int, ...] = (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
MAX_ATTEMPTS = len(RETRY_DELAYS_SECONDS) + 1
JITTER = 0.10
# §3: five deliveries in a row that end `failed` disable the webhook.
FAILURES_BEFORE_DISABLING = 5
# The longest Retry-After we wait for (it is honoured as given, up to the schedule's longest wait).
MAX_RETRY_AFTER_SECONDS = RETRY_DELAYS_SECONDS[-1]


def delivery_type(event_type: str | None) -> str:
    """The body's `type`: `deployment_action.<event type>`, or `webhook.ping` for a ping (no event)."""
    return PING_TYPE if event_type is None else EVENT_TYPE_PREFIX + event_type


def new_secret() -> str:
    """`whsec_` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key: the secret's bytes after `whsec_`, base64-decoded."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 over "{id}.{timestamp}.{body}">` (Standard Webhooks)."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def retry_delay(attempts_made: int, scale: float, rng: random.Random | None = None) -> float | None:
    """Seconds to wait after the `attempts_made`-th failed attempt, ±10 % jitter; None when none is left."""
    if attempts_made >= MAX_ATTEMPTS:
        return None
    base = RETRY_DELAYS_SECONDS[attempts_made - 1] * scale
    jitter = (rng or random).uniform(-JITTER, JITTER)
    return base * (1 + jitter)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header given in seconds (an HTTP date is read as absent)."""
    if value is None:
        return None
    text = value.strip()
    if not text.isdigit():
        return None
    return float(min(int(text), MAX_RETRY_AFTER_SECONDS))


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


# What `AUDITTRAIL_ENV=production` refuses to connect to (§4).
def address_refusal(address: str) -> str | None:
    """Why this IP address may not be a webhook's peer in production, or None when it is public."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        # An IPv6 address that carries an IPv4 one (mapped, 6to4, Teredo, NAT64) reaches that
        # IPv4 address: it is the one judged.
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            refusal = address_refusal(str(embedded))
            if refusal is not None:
                return f"{ip} carries {refusal}"
            if ip.ipv4_mapped is not None:
                return None
    checks = (
        ("loopback", ip.is_loopback),
        ("private", ip.is_private),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("unspecified", ip.is_unspecified),
        ("not globally routable", not ip.is_global),
    )
    for name, refused in checks:
        if refused:
            return f"{ip} is a {name} address" if name != "not globally routable" else f"{ip} is {name}"
    return None
