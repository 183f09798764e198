"""Ed25519 keys, their `kid` and JWK form, and compact EdDSA JWS (RFC 7515, RFC 8037).

Standard library and `cryptography` only. Ed25519 signatures are deterministic: the same key and
the same claims always give the same token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from functools import cached_property
from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audittrail_evidence.canonical import canonical_json

ISSUER = "audittrail"
RECEIPT_TYPE = "audittrail-approval+jwt"
CHECKPOINT_TYPE = "audittrail-checkpoint+jwt"
ALGORITHM = "EdDSA"
# Signatures a Keyring keeps, by signing input: a page of 50 approval receipts read again signs
# nothing. 4 096 receipts take 3 MiB per process with one approver each, 4 MiB with three (measured).
SIGNATURE_CACHE_SIZE = 4096

_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
_COMPACT = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")


class EvidenceError(ValueError):
    """A key, a token or an export that does not hold; the message says what, for a person."""


def b64url_encode(data: bytes) -> str:
    """base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """The bytes of unpadded base64url; raises EvidenceError for anything else."""
    if not isinstance(text, str) or not _B64URL.match(text) or len(text) % 4 == 1:
        raise EvidenceError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise EvidenceError("not base64url") from None


def raw_public_bytes(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def kid_of(public_key: Ed25519PublicKey) -> str:
    """The first 16 hex characters of the SHA-256 of the raw public key (evidence.md §1)."""
    return hashlib.sha256(raw_public_bytes(public_key)).hexdigest()[:16]


def jwk_of(public_key: Ed25519PublicKey) -> dict:
    """The public key as a JWK (RFC 8037)."""
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": b64url_encode(raw_public_bytes(public_key)),
        "kid": kid_of(public_key),
        "alg": ALGORITHM,
        "use": "sig",
    }


def public_key_from_jwk(jwk) -> Ed25519PublicKey:
    """An Ed25519 public key from its JWK; a `kid` given must be the one its `x` gives."""
    if not isinstance(jwk, Mapping) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise EvidenceError("a key is not an Ed25519 JWK (kty OKP, crv Ed25519)")
    try:
        key = Ed25519PublicKey.from_public_bytes(b64url_decode(jwk.get("x", "")))
    except (EvidenceError, ValueError):
        raise EvidenceError("a key's `x` is not 32 bytes of base64url") from None
    if "kid" in jwk and jwk["kid"] != kid_of(key):
        raise EvidenceError(f"key {jwk['kid']!r}: its kid is not the one its public key gives ({kid_of(key)})")
    return key


def keys_from_jwks(document) -> dict[str, Ed25519PublicKey]:
    """The keys of a JWK Set (`{"keys": [...]}`), by kid."""
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list) or not document["keys"]:
        raise EvidenceError('the keys file is not a JWK Set ({"keys": [...]}, at least one key)')
    keys = {}
    for jwk in document["keys"]:
        key = public_key_from_jwk(jwk)
        keys[kid_of(key)] = key
    return keys


def _raw_32(text: str) -> bytes | None:
    compact = "".join(text.split())
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            raw = decode(compact + "=" * (-len(compact) % 4))
        except (binascii.Error, ValueError):
            continue
        if len(raw) == 32:
            return raw
    return None


def load_private_key(text: str) -> Ed25519PrivateKey:
    """A PEM private key, or the base64 of its 32 raw bytes; raises EvidenceError otherwise."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(text.encode(), password=None)
        except (ValueError, TypeError):
            raise EvidenceError("not a readable unencrypted PEM private key") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise EvidenceError("the PEM private key is not an Ed25519 key")
        return key
    raw = _raw_32(text)
    if raw is None:
        raise EvidenceError("neither a PEM private key nor the base64 of 32 raw bytes")
    return Ed25519PrivateKey.from_private_bytes(raw)


def load_public_key(text: str) -> Ed25519PublicKey:
    """A PEM public key, or the base64 / base64url of its 32 raw bytes (a JWK's `x`)."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(text.encode())
        except (ValueError, TypeError):
            raise EvidenceError("not a readable PEM public key") from None
        if not isinstance(key, Ed25519PublicKey):
            raise EvidenceError("the PEM public key is not an Ed25519 key")
        return key
    raw = _raw_32(text)
    if raw is None:
        raise EvidenceError("neither a PEM public key nor the base64 of 32 raw bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def private_key_pem(key: Ed25519PrivateKey) -> str:
    """PKCS#8 PEM, unencrypted (what development keeps under instance/)."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def signing_input(kid: str, typ: str, claims: Mapping) -> str:
    """The JWS signing input: header `{"alg": "EdDSA", "kid", "typ"}` and claims, both canonical JSON, base64url."""
    header = {"alg": ALGORITHM, "kid": kid, "typ": typ}
    return b64url_encode(canonical_json(header).encode()) + "." + b64url_encode(canonical_json(claims).encode())


def sign_compact(private_key: Ed25519PrivateKey, typ: str, claims: Mapping) -> str:
    """A compact JWS of these claims, signed with this key."""
    message = signing_input(kid_of(private_key.public_key()), typ, claims)
    return message + "." + b64url_encode(private_key.sign(message.encode("ascii")))


@dataclass(frozen=True)
class VerifiedToken:
    """A compact JWS whose signature holds: its header, its claims and the key that signed it."""

    header: dict
    claims: dict
    kid: str


def _json_part(part: str, what: str) -> dict:
    try:
        value = json.loads(b64url_decode(part).decode("utf-8"))
    except (EvidenceError, UnicodeDecodeError, ValueError):
        raise EvidenceError(f"its {what} is not base64url JSON") from None
    if not isinstance(value, dict):
        raise EvidenceError(f"its {what} is not a JSON object")
    return value


def looks_like_compact_jws(text: str) -> bool:
    return bool(_COMPACT.match(text.strip()))


def verify_compact(token: str, keys: Mapping[str, Ed25519PublicKey], typ: str) -> VerifiedToken:
    """Check a compact JWS of this `typ` against these keys (by kid); raises EvidenceError naming what fails."""
    token = token.strip()
    if not looks_like_compact_jws(token):
        raise EvidenceError("not a compact JWS (three base64url parts separated by dots)")
    header_part, claims_part, signature_part = token.split(".")
    header = _json_part(header_part, "header")
    if header.get("alg") != ALGORITHM:
        raise EvidenceError(f"its alg is {header.get('alg')!r}, not {ALGORITHM!r}")
    if header.get("typ") != typ:
        raise EvidenceError(f"its typ is {header.get('typ')!r}, not {typ!r}")
    kid = header.get("kid")
    if not isinstance(kid, str) or kid not in keys:
        known = ", ".join(keys) or "none"
        raise EvidenceError(f"unknown kid {kid!r}: not among the keys ({known})")
    try:
        keys[kid].verify(b64url_decode(signature_part), f"{header_part}.{claims_part}".encode("ascii"))
    except (InvalidSignature, EvidenceError):
        raise EvidenceError(
            f"its signature does not verify with key {kid} (altered, forged, or signed with another key)"
        ) from None
    return VerifiedToken(header, _json_part(claims_part, "payload"), kid)


@dataclass(frozen=True)
class Keyring:
    """The key that signs now, and the retired public keys that stay verifiable."""

    current: Ed25519PrivateKey
    previous: tuple[Ed25519PublicKey, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        # Ed25519 is deterministic, so a signature is a pure function of the key and its input:
        # keeping the recent ones returns the very token that signing again would.
        object.__setattr__(self, "_signature_of", lru_cache(maxsize=SIGNATURE_CACHE_SIZE)(self._signature))

    @cached_property
    def current_kid(self) -> str:
        return kid_of(self.current.public_key())

    def public_keys(self) -> list[Ed25519PublicKey]:
        """The current public key first, then each retired one once."""
        keys = {self.current_kid: self.current.public_key()}
        for key in self.previous:
            keys.setdefault(kid_of(key), key)
        return list(keys.values())

    def jwks(self) -> dict:
        """The JWK Set published at /api/v1/signing-keys."""
        return {"keys": [jwk_of(key) for key in self.public_keys()]}

    def sign(self, typ: str, claims: Mapping) -> str:
        """The same token as sign_compact(self.current, typ, claims), its signature kept for the next time."""
        message = signing_input(self.current_kid, typ, claims)
        return message + "." + self._signature_of(message)

    def _signature(self, message: str) -> str:
        return b64url_encode(self.current.sign(message.encode("ascii")))


def keyring_from_settings(signing_key: str, previous: list[str] | tuple[str, ...] = ()) -> Keyring:
    """The keyring of AUDITTRAIL_SIGNING_KEY and AUDITTRAIL_SIGNING_KEYS_PREVIOUS; raises EvidenceError."""
    return Keyring(load_private_key(signing_key), tuple(load_public_key(text) for text in previous))
