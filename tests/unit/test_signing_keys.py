"""The signing key settings (evidence.md §1): required in production, generated once in development."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audittrail.config import ConfigurationError
from audittrail.config import load_config
from audittrail_evidence.jws import CHECKPOINT_TYPE
from audittrail_evidence.jws import RECEIPT_TYPE
from audittrail_evidence.jws import Keyring
from audittrail_evidence.jws import b64url_encode
from audittrail_evidence.jws import keyring_from_settings
from audittrail_evidence.jws import kid_of
from audittrail_evidence.jws import private_key_pem
from audittrail_evidence.jws import raw_public_bytes
from audittrail_evidence.jws import sign_compact
from audittrail_evidence.jws import verify_compact

PRODUCTION = {"AUDITTRAIL_ENV": "production", "SECRET_KEY": "s" * 40, "JWT_SECRET_KEY": "j" * 40}
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
RAW_BASE64 = base64.b64encode(bytes(range(1, 33))).decode()


def test_production_without_a_signing_key_stops_with_a_clear_message(tmp_path):
    with pytest.raises(ConfigurationError, match="AUDITTRAIL_SIGNING_KEY"):
        load_config(str(tmp_path), PRODUCTION)
    assert not (tmp_path / "signing-key.pem").exists()


@pytest.mark.parametrize("given", [private_key_pem(KEY), RAW_BASE64, "  " + RAW_BASE64 + "\n"])
def test_a_pem_or_base64_raw_key_is_accepted_and_gives_the_same_kid(tmp_path, given):
    config = load_config(str(tmp_path), {**PRODUCTION, "AUDITTRAIL_SIGNING_KEY": given})

    keyring = keyring_from_settings(config["AUDITTRAIL_SIGNING_KEY"])

    assert keyring.current_kid == kid_of(KEY.public_key())
    assert keyring.current_kid == hashlib.sha256(raw_public_bytes(KEY.public_key())).hexdigest()[:16]


@pytest.mark.parametrize("given", ["not a key", base64.b64encode(b"short").decode(), "-----BEGIN PRIVATE KEY-----\nxx"])
def test_an_unusable_signing_key_stops_start_up(tmp_path, given):
    with pytest.raises(ConfigurationError, match="AUDITTRAIL_SIGNING_KEY is not usable"):
        load_config(str(tmp_path), {**PRODUCTION, "AUDITTRAIL_SIGNING_KEY": given})


def test_development_generates_a_key_once_and_keeps_it_private(tmp_path):
    first = load_config(str(tmp_path), {})
    second = load_config(str(tmp_path), {})

    assert first["AUDITTRAIL_SIGNING_KEY"] == second["AUDITTRAIL_SIGNING_KEY"]
    assert first["AUDITTRAIL_SIGNING_KEY"].startswith("-----BEGIN PRIVATE KEY-----")
    assert (tmp_path / "signing-key.pem").stat().st_mode & 0o077 == 0
    assert keyring_from_settings(first["AUDITTRAIL_SIGNING_KEY"]).current_kid


def test_previous_keys_are_read_comma_separated_and_checked(tmp_path):
    retired = Ed25519PrivateKey.from_private_bytes(bytes(range(40, 72))).public_key()
    x = b64url_encode(raw_public_bytes(retired))
    env = {**PRODUCTION, "AUDITTRAIL_SIGNING_KEY": RAW_BASE64, "AUDITTRAIL_SIGNING_KEYS_PREVIOUS": f" {x} ,,"}

    config = load_config(str(tmp_path), env)
    keyring = keyring_from_settings(config["AUDITTRAIL_SIGNING_KEY"], config["AUDITTRAIL_SIGNING_KEYS_PREVIOUS"])

    assert [jwk["kid"] for jwk in keyring.jwks()["keys"]] == [kid_of(KEY.public_key()), kid_of(retired)]
    with pytest.raises(ConfigurationError, match="AUDITTRAIL_SIGNING_KEYS_PREVIOUS, key 2"):
        load_config(str(tmp_path), {**env, "AUDITTRAIL_SIGNING_KEYS_PREVIOUS": f"{x},nope"})


def test_a_keyring_signs_each_input_once_and_returns_the_token_signing_again_would():
    signed = []
    keyring = Keyring(_CountingKey(KEY, signed))
    first = {"sub": "act_1", "approvers": [{"id": "usr_1", "name": "Sam"}]}
    changed = {**first, "approvers": [{"id": "usr_1", "name": "Sam B."}]}

    tokens = [keyring.sign(RECEIPT_TYPE, first) for _ in range(3)] + [keyring.sign(RECEIPT_TYPE, changed)]

    assert tokens[:3] == [sign_compact(KEY, RECEIPT_TYPE, first)] * 3
    assert tokens[3] == sign_compact(KEY, RECEIPT_TYPE, changed)
    assert len(signed) == 2  # one signature per distinct input: a renamed approver is signed anew

    checkpoint = keyring.sign(CHECKPOINT_TYPE, first)  # same claims, another typ: a new input, signed anew

    assert len(signed) == 3
    assert verify_compact(checkpoint, {kid_of(KEY.public_key()): KEY.public_key()}, CHECKPOINT_TYPE).claims == first


class _CountingKey:
    """The key, counting each real signature."""

    def __init__(self, key, signed):
        self._key, self._signed = key, signed

    def sign(self, data):
        self._signed.append(data)
        return self._key.sign(data)

    def public_key(self):
        return self._key.public_key()
