"""Sending one webhook attempt safely (webhooks.md §3–§4): checked addresses, pinned, bounded.

The URL's host is resolved once per attempt, every address it resolves to is checked, and the
connection goes to the checked address (TLS still verifies the host name): there is no second
resolution between the check and the connection for DNS rebinding to slip into. No redirect is
followed, the response body is read to a cap, and a watchdog closes the socket at the deadline, so
a receiver that trickles bytes cannot hold the worker past the timeout.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote
from urllib.parse import urlsplit

from audittrail.domain.webhooks import MAX_URL_LENGTH
from audittrail.domain.webhooks import address_refusal
from audittrail.services.errors import ValidationFailed

MAX_REQUEST_BYTES = 256 * 1024
MAX_RESPONSE_BYTES = 64 * 1024
MAX_ERROR_LENGTH = 500

Resolver = Callable[..., list]
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


@dataclass(frozen=True)
class UrlRules:
    """What a webhook URL must satisfy: `strict` in production unless AUDITTRAIL_WEBHOOK_ALLOW_PRIVATE."""

    strict: bool
    resolve: Resolver | None = None  # None: socket.getaddrinfo, looked up at each call


class UnsafeUrl(Exception):
    """The URL breaks a rule of §4; the message says which."""


@dataclass(frozen=True)
class AttemptResult:
    """What one attempt came to: a status code, or an error before or instead of one."""

    status_code: int | None
    error: str | None = None
    retry_after: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _parts(url: str, strict: bool) -> tuple[str, str, int, str]:
    if not isinstance(url, str) or len(url) > MAX_URL_LENGTH:
        raise UnsafeUrl(f"Must be a URL of at most {MAX_URL_LENGTH} characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeUrl("Not a valid URL.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeUrl("Must be an http or https URL.")
    if strict and scheme != "https":
        raise UnsafeUrl("Must be an https URL in production.")
    if not parts.hostname:
        raise UnsafeUrl("Must name a host.")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("Must not carry a user name or password.")
    if any(character.isspace() or ord(character) < 0x21 for character in url):
        raise UnsafeUrl("Must not contain spaces or control characters.")
    if port == 0:
        # urlsplit reads ":0" as a port, which would otherwise fall back to the scheme's default.
        raise UnsafeUrl("Must name a port from 1 to 65535.")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    # The request line is ASCII: a non-ASCII path or query is sent percent-encoded (UTF-8), as a
    # browser sends it, rather than failing every attempt.
    path = _NON_ASCII.sub(lambda found: quote(found.group(), safe=""), path)
    return scheme, parts.hostname, port or (443 if scheme == "https" else 80), path


def _lookup(resolve: Resolver, host: str, port: int, timeout: float | None) -> list:
    """`resolve(host, port)`, given up after `timeout` seconds (getaddrinfo itself takes none)."""
    if timeout is None:
        return resolve(host, port, type=socket.SOCK_STREAM)
    outcome: dict = {}

    def run():
        try:
            outcome["found"] = resolve(host, port, type=socket.SOCK_STREAM)
        except BaseException as error:  # noqa: BLE001 — handed to the caller's thread
            outcome["error"] = error

    # A daemon thread: a resolver that hangs is left behind, and the attempt goes on without it.
    lookup = threading.Thread(target=run, name="webhook-dns", daemon=True)
    lookup.start()
    lookup.join(timeout)
    if lookup.is_alive():
        raise TimeoutError(f"no answer within {timeout:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["found"]


def resolve_checked(host: str, port: int, rules: UrlRules, timeout: float | None = None) -> str:
    """The address to connect to: the first the host resolves to, once every one of them is allowed.

    Raises UnsafeUrl when the name does not resolve (within `timeout`, if given) or (strict) any
    address is not public.
    """
    try:
        found = _lookup(rules.resolve or socket.getaddrinfo, host, port, timeout)
    except (OSError, UnicodeError) as error:
        raise UnsafeUrl(f"The host {host} does not resolve ({error.__class__.__name__}).") from None
    addresses = list(dict.fromkeys(info[4][0] for info in found))
    if not addresses:
        raise UnsafeUrl(f"The host {host} does not resolve.")
    if rules.strict:
        for address in addresses:
            refusal = address_refusal(address)
            if refusal is not None:
                raise UnsafeUrl(f"The host {host} resolves to a refused address: {refusal}.")
    return addresses[0]


def check_url(url: str, rules: UrlRules) -> None:
    """Raise ValidationFailed (naming `url`) when a webhook may not be created with this URL."""
    try:
        _, host, port, _ = _parts(url, rules.strict)
        if rules.strict:
            resolve_checked(host, port, rules)
    except UnsafeUrl as problem:
        raise ValidationFailed("The webhook URL is refused.", {"url": [str(problem)]}) from None


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host, port, address, timeout):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host, port, address, timeout):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self):
        raw = socket.create_connection((self._address, self.port), self.timeout)
        # The certificate is checked against the URL's host name, not the address.
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)


def _short(error: BaseException) -> str:
    text = f"{error.__class__.__name__}: {error}".strip()
    return text[:MAX_ERROR_LENGTH]


def send(url: str, body: bytes, headers: dict[str, str], timeout: float, rules: UrlRules) -> AttemptResult:
    """POST `body` to `url` once: checked, pinned to the checked address, within `timeout` overall."""
    if len(body) > MAX_REQUEST_BYTES:
        return AttemptResult(None, f"The body is over {MAX_REQUEST_BYTES} bytes; not sent.")
    deadline = time.monotonic() + timeout
    try:
        scheme, host, port, path = _parts(url, rules.strict)
        # The lookup counts against the timeout too: a resolver that hangs holds no worker past it.
        address = resolve_checked(host, port, rules, timeout)
    except UnsafeUrl as problem:
        return AttemptResult(None, f"Refused: {problem}"[:MAX_ERROR_LENGTH])
    remaining = max(0.01, deadline - time.monotonic())
    connection_class = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
    connection = connection_class(host, port, address, remaining)
    timed_out = threading.Event()

    def cut():
        timed_out.set()
        sock = connection.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    watchdog = threading.Timer(remaining, cut)
    watchdog.daemon = True
    watchdog.start()
    try:
        connection.request("POST", path, body=body, headers={**headers, "Content-Length": str(len(body))})
        response = connection.getresponse()
        # Drained to the cap only: what the receiver says is not ours to store.
        response.read(MAX_RESPONSE_BYTES)
        if timed_out.is_set():
            return AttemptResult(None, f"Timed out after {timeout:g} s.")
        return AttemptResult(response.status, None, response.getheader("Retry-After"))
    except (OSError, http.client.HTTPException, ValueError) as error:
        if timed_out.is_set() or isinstance(error, TimeoutError | socket.timeout):
            return AttemptResult(None, f"Timed out after {timeout:g} s.")
        return AttemptResult(None, _short(error))
    finally:
        watchdog.cancel()
        connection.close()
