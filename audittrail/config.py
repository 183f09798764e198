"""Settings from the environment (contract §10)."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from audittrail_evidence.jws import EvidenceError
from audittrail_evidence.jws import load_private_key
from audittrail_evidence.jws import load_public_key
from audittrail_evidence.jws import private_key_pem


class ConfigurationError(RuntimeError):
    """A setting is missing or invalid; start-up stops with its message."""


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(environ: dict, name: str, default: int) -> int:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{name} must be an integer, got {raw!r}") from exc


def _float(environ: dict, name: str, default: float, minimum: float) -> float:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{name} must be a number, got {raw!r}") from exc
    if not value >= minimum:
        raise ConfigurationError(f"{name} must be at least {minimum}, got {raw!r}")
    return value


def _development_secrets(instance_path: Path) -> dict[str, str]:
    """Generate SECRET_KEY/JWT_SECRET_KEY once and keep them under instance/."""
    instance_path.mkdir(parents=True, exist_ok=True)
    path = instance_path / "secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    values = {"SECRET_KEY": secrets.token_urlsafe(48), "JWT_SECRET_KEY": secrets.token_urlsafe(48)}
    # Written with O_EXCL so two workers starting together agree on one pair.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return json.loads(path.read_text())
    with os.fdopen(fd, "w") as handle:
        json.dump(values, handle)
    return values


def _development_signing_key(instance_path: Path) -> str:
    """Generate an Ed25519 signing key once and keep it under instance/ (PEM, mode 600)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    instance_path.mkdir(parents=True, exist_ok=True)
    path = instance_path / "signing-key.pem"
    if path.exists():
        return path.read_text()
    pem = private_key_pem(Ed25519PrivateKey.generate())
    # O_EXCL, as for the secrets: two workers starting together agree on one key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text()
    with os.fdopen(fd, "w") as handle:
        handle.write(pem)
    return pem


def _signing_keys(env: dict, production: bool, instance: Path) -> tuple[str, list[str]]:
    """AUDITTRAIL_SIGNING_KEY (required in production) and the retired public keys, both checked."""
    signing_key = (env.get("AUDITTRAIL_SIGNING_KEY") or "").strip()
    if not signing_key:
        if production:
            raise ConfigurationError(
                "AUDITTRAIL_ENV=production needs AUDITTRAIL_SIGNING_KEY (an Ed25519 private key: PEM, or the "
                "base64 of its 32 raw bytes)"
            )
        signing_key = _development_signing_key(instance)
    try:
        load_private_key(signing_key)
    except EvidenceError as error:
        raise ConfigurationError(f"AUDITTRAIL_SIGNING_KEY is not usable: {error}") from None
    previous = [item.strip() for item in (env.get("AUDITTRAIL_SIGNING_KEYS_PREVIOUS") or "").split(",") if item.strip()]
    for index, item in enumerate(previous, start=1):
        try:
            load_public_key(item)
        except EvidenceError as error:
            raise ConfigurationError(f"AUDITTRAIL_SIGNING_KEYS_PREVIOUS, key {index}, is not usable: {error}") from None
    return signing_key, previous


def load_config(instance_path: str, environ: dict | None = None) -> dict:
    """Build the Flask config from the environment; raise ConfigurationError when unusable."""
    env = dict(os.environ if environ is None else environ)
    production = env.get("AUDITTRAIL_ENV", "development").strip().lower() == "production"
    instance = Path(instance_path)

    secret_key = env.get("SECRET_KEY")
    jwt_secret_key = env.get("JWT_SECRET_KEY")
    if production:
        missing = [n for n, v in (("SECRET_KEY", secret_key), ("JWT_SECRET_KEY", jwt_secret_key)) if not v]
        if missing:
            raise ConfigurationError(
                "AUDITTRAIL_ENV=production needs " + " and ".join(missing) + " set in the environment"
            )
    elif not secret_key or not jwt_secret_key:
        generated = _development_secrets(instance)
        secret_key = secret_key or generated["SECRET_KEY"]
        jwt_secret_key = jwt_secret_key or generated["JWT_SECRET_KEY"]

    signing_key, previous_signing_keys = _signing_keys(env, production, instance)

    database_url = env.get("DATABASE_URL") or f"sqlite:///{instance / 'audittrail.db'}"
    if database_url.startswith("postgres://"):
        database_url = "postgresql+psycopg://" + database_url[len("postgres://") :]
    elif database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url[len("postgresql://") :]

    ttl_min = _int(env, "AUDITTRAIL_TTL_MIN_SECONDS", 60)
    default_ttl = _int(env, "AUDITTRAIL_DEFAULT_TTL_SECONDS", 3600)
    if ttl_min < 1:
        raise ConfigurationError("AUDITTRAIL_TTL_MIN_SECONDS must be at least 1")
    if not ttl_min <= default_ttl <= 604800:
        raise ConfigurationError(
            "AUDITTRAIL_DEFAULT_TTL_SECONDS must lie between AUDITTRAIL_TTL_MIN_SECONDS and 604800"
        )

    webhook_timeout = _float(env, "AUDITTRAIL_WEBHOOK_TIMEOUT_SECONDS", 15, minimum=0.05)
    allow_private = _bool(env.get("AUDITTRAIL_WEBHOOK_ALLOW_PRIVATE"), default=False)

    return {
        "AUDITTRAIL_ENV": "production" if production else "development",
        "SECRET_KEY": secret_key,
        "JWT_SECRET_KEY": jwt_secret_key,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "RATELIMIT_STORAGE_URI": env.get("RATELIMIT_STORAGE_URI") or "memory://",
        "AUDITTRAIL_TRANSITION_RATE_LIMIT": env.get("AUDITTRAIL_TRANSITION_RATE_LIMIT") or "30/minute",
        "AUDITTRAIL_LOGIN_RATE_LIMIT": env.get("AUDITTRAIL_LOGIN_RATE_LIMIT") or "10/minute",
        "AUDITTRAIL_LOGIN_ACCOUNT_RATE_LIMIT": env.get("AUDITTRAIL_LOGIN_ACCOUNT_RATE_LIMIT") or "5/15minutes",
        "AUDITTRAIL_API_KEY_RATE_LIMIT": env.get("AUDITTRAIL_API_KEY_RATE_LIMIT") or "10/hour",
        "AUDITTRAIL_RUNS_WRITE_RATE_LIMIT": env.get("AUDITTRAIL_RUNS_WRITE_RATE_LIMIT") or "600/minute",
        "DEMO_LOGIN_ENABLED": _bool(env.get("DEMO_LOGIN_ENABLED"), default=not production),
        "AUDITTRAIL_DEFAULT_TTL_SECONDS": default_ttl,
        "AUDITTRAIL_TTL_MIN_SECONDS": ttl_min,
        "AUDITTRAIL_TRUSTED_PROXIES": _int(env, "AUDITTRAIL_TRUSTED_PROXIES", 0),
        "JWT_COOKIE_SECURE": production,
        # live.md §3–4: streams and waits. Tests shorten the intervals; nobody needs to sleep long.
        "AUDITTRAIL_STREAM_MAX_SECONDS": _float(env, "AUDITTRAIL_STREAM_MAX_SECONDS", 300, minimum=0.1),
        "AUDITTRAIL_STREAM_MAX_PER_CLIENT": _int(env, "AUDITTRAIL_STREAM_MAX_PER_CLIENT", 10),
        "AUDITTRAIL_STREAM_KEEPALIVE_SECONDS": _float(env, "AUDITTRAIL_STREAM_KEEPALIVE_SECONDS", 15, minimum=0.05),
        "AUDITTRAIL_STREAM_POLL_SECONDS": _float(env, "AUDITTRAIL_STREAM_POLL_SECONDS", 1, minimum=0.05),
        "AUDITTRAIL_STREAM_EXPIRY_SECONDS": _float(env, "AUDITTRAIL_STREAM_EXPIRY_SECONDS", 5, minimum=0.05),
        # The longest a wait really holds (`wait` is still 1–60); tests shorten it.
        "AUDITTRAIL_WAIT_MAX_SECONDS": _float(env, "AUDITTRAIL_WAIT_MAX_SECONDS", 60, minimum=0.05),
        "AUDITTRAIL_STREAM_LISTEN": _bool(env.get("AUDITTRAIL_STREAM_LISTEN"), default=True),
        "AUDITTRAIL_SIGNING_KEY": signing_key,
        # webhooks.md: the worker's settings. Tests scale the retry schedule down to seconds.
        "AUDITTRAIL_WEBHOOK_TIMEOUT_SECONDS": webhook_timeout,
        "AUDITTRAIL_WEBHOOK_RETRY_SCALE": _float(env, "AUDITTRAIL_WEBHOOK_RETRY_SCALE", 1.0, minimum=0.0),
        # Lifts §4's URL rule (https, public addresses) in production: for development and tests only.
        "AUDITTRAIL_WEBHOOK_ALLOW_PRIVATE": allow_private,
        "AUDITTRAIL_WEBHOOK_POLL_SECONDS": _float(env, "AUDITTRAIL_WEBHOOK_POLL_SECONDS", 1, minimum=0.01),
        "AUDITTRAIL_WEBHOOK_CONCURRENCY": max(1, _int(env, "AUDITTRAIL_WEBHOOK_CONCURRENCY", 4)),
        # A claim outlives any attempt (the timeout is enforced) by 10 s; a killed worker's are retried after it.
        "AUDITTRAIL_WEBHOOK_LEASE_SECONDS": _float(
            env, "AUDITTRAIL_WEBHOOK_LEASE_SECONDS", webhook_timeout + 10, minimum=webhook_timeout + 0.5
        ),
        # Where the Slack messages link to (the site root, e.g. https://audittrail.example.com).
        "AUDITTRAIL_PUBLIC_URL": (env.get("AUDITTRAIL_PUBLIC_URL") or "").strip(),
        "AUDITTRAIL_SIGNING_KEYS_PREVIOUS": previous_signing_keys,
    }
