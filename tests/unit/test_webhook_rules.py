"""webhooks.md §2–§4 as pure rules and one attempt: signature, schedule, addresses, pinning, redirects."""

from __future__ import annotations

import random
import socket
import threading
import time

import pytest

from audittrail.domain.webhooks import MAX_ATTEMPTS
from audittrail.domain.webhooks import RETRY_DELAYS_SECONDS
from audittrail.domain.webhooks import address_refusal
from audittrail.domain.webhooks import parse_retry_after
from audittrail.domain.webhooks import retry_delay
from audittrail.domain.webhooks import signature
from audittrail.services.webhook_http import UrlRules
from audittrail.services.webhook_http import send
from tests.support.webhooks import Receiver
from tests.support.webhooks import Reply


def test_the_signature_matches_the_standard_webhooks_example():
    # The example of the Standard Webhooks specification.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == expected


def test_the_retry_schedule_is_the_contracts_scaled_with_ten_percent_jitter():
    assert RETRY_DELAYS_SECONDS == (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
    rng = random.Random(7)
    for attempt, base in enumerate(RETRY_DELAYS_SECONDS, start=1):
        for _ in range(50):
            assert base * 0.9 <= retry_delay(attempt, 1.0, rng) <= base * 1.1
        assert base * 0.009 <= retry_delay(attempt, 0.01, rng) <= base * 0.011
    assert retry_delay(MAX_ATTEMPTS, 1.0) is None


@pytest.mark.parametrize("value, seconds", [("7", 7.0), (" 120 ", 120.0), ("-1", None), ("soon", None), (None, None)])
def test_retry_after_is_read_in_seconds(value, seconds):
    assert parse_retry_after(value) == seconds


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.0.0.1", "172.16.0.1", "192.168.1.1", "169.254.169.254", "224.0.0.1", "240.0.0.1", "0.0.0.0",
     "100.64.0.1", "::1", "fe80::1", "fc00::1", "ff02::1", "::ffff:10.0.0.1", "::",
     # IPv6 that carries a refused IPv4 address: 6to4 of 127.0.0.1 and of 10.0.0.1, NAT64 of 127.0.0.1.
     "2002:7f00:1::1", "2002:a00:1::", "64:ff9b::7f00:1"],
)  # fmt: skip
def test_non_public_addresses_are_refused(address):
    assert address_refusal(address) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "8.8.8.8"])
def test_public_addresses_pass(address):
    assert address_refusal(address) is None


def resolving_to(address):
    def resolve(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    return resolve


def test_an_attempt_refuses_a_name_that_now_resolves_privately_without_connecting():
    with Receiver() as receiver:
        port = receiver.server.server_port
        result = send(
            f"https://rebound.example.com:{port}/hook", b"{}", {}, 2.0, UrlRules(True, resolving_to("127.0.0.1"))
        )
        assert result.status_code is None and result.error.startswith("Refused")
        assert receiver.requests == []


def test_an_attempt_connects_to_the_address_it_checked_not_a_second_lookup():
    with Receiver() as receiver:
        port = receiver.server.server_port
        lookups = []

        def resolve(host, port, *args, **kwargs):
            lookups.append(host)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

        result = send(f"http://pinned.example.com:{port}/hook", b"{}", {}, 2.0, UrlRules(False, resolve))
        assert result.status_code == 200
        assert lookups == ["pinned.example.com"]
        assert receiver.requests[0].headers["host"] == f"pinned.example.com:{port}"


def test_a_redirect_is_not_followed_and_is_no_success():
    with Receiver() as receiver:
        receiver.script = [Reply(302, {"Location": "http://169.254.169.254/"})]
        result = send(receiver.url, b"{}", {}, 2.0, UrlRules(False))
        assert (result.status_code, result.succeeded) == (302, False)
        assert len(receiver.requests) == 1


def test_a_slow_receiver_is_cut_at_the_timeout():
    with Receiver() as receiver:
        receiver.script = [Reply(200, delay=3.0)]
        result = send(receiver.url, b"{}", {}, 0.3, UrlRules(False))
        assert result.status_code is None and "Timed out" in result.error


def test_a_non_ascii_path_is_sent_percent_encoded():
    with Receiver() as receiver:
        result = send(receiver.url + "/caf\u00e9?q=\u00fc", b"{}", {}, 2.0, UrlRules(False))
        assert result.status_code == 200, result.error
        assert receiver.requests[0].path.endswith("/caf%C3%A9?q=%C3%BC")


def test_port_zero_is_refused_not_read_as_the_default_port():
    result = send("http://127.0.0.1:0/hook", b"{}", {}, 1.0, UrlRules(False))
    assert result.status_code is None and "port" in result.error


def test_a_name_that_never_resolves_is_cut_at_the_timeout():
    def hanging(host, port, *args, **kwargs):
        time.sleep(3.0)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    started = time.monotonic()
    result = send("http://slow-dns.example.com/hook", b"{}", {}, 0.3, UrlRules(False, hanging))
    assert time.monotonic() - started < 1.5
    assert result.status_code is None and "does not resolve" in result.error


def test_garbage_a_tls_failure_and_a_dns_failure_are_failed_attempts_not_crashes():
    with Receiver() as receiver:
        # https to a plain-http receiver: the handshake fails.
        tls = send(receiver.url.replace("http://", "https://"), b"{}", {}, 2.0, UrlRules(False))
    assert tls.status_code is None and "SSL" in tls.error
    listener = socket.create_server(("127.0.0.1", 0))

    def answer_garbage():
        connection, _ = listener.accept()
        connection.recv(65536)
        connection.sendall(b"\x00\xffnot http at all\r\n\r\n")
        connection.close()

    thread = threading.Thread(target=answer_garbage, daemon=True)
    thread.start()
    garbage = send(f"http://127.0.0.1:{listener.getsockname()[1]}/", b"{}", {}, 2.0, UrlRules(False))
    listener.close()
    assert garbage.status_code is None and "BadStatusLine" in garbage.error

    def no_such_name(host, port, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    dns = send("https://nowhere.example.com/", b"{}", {}, 2.0, UrlRules(False, no_such_name))
    assert dns.status_code is None and "does not resolve" in dns.error


def test_an_oversized_body_is_not_sent():
    with Receiver() as receiver:
        result = send(receiver.url, b"x" * (256 * 1024 + 1), {}, 1.0, UrlRules(False))
        assert result.status_code is None and receiver.requests == []


def test_the_readme_receiver_verifies_a_delivery_and_refuses_tampering_and_stale_ones():
    from examples.webhook_receiver import Seen
    from examples.webhook_receiver import verify

    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"type":"webhook.ping","timestamp":"2026-12-02T04:00:00Z","data":{}}'
    now = 1_780_000_000
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(now),
        "webhook-signature": signature(secret, "msg_1", now, body),
    }
    assert verify(secret, headers, body, now=now + 299)
    assert not verify(secret, headers, body + b" ", now=now)
    assert not verify(secret, headers, body, now=now + 301)
    assert not verify(secret, {**headers, "webhook-id": "msg_2"}, body, now=now)
    seen = Seen()
    assert seen.first_time("msg_1") and not seen.first_time("msg_1")
