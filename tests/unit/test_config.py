"""Settings from the environment (contract §10)."""

from __future__ import annotations

import pytest

from audittrail.config import ConfigurationError
from audittrail.config import load_config


def test_defaults(tmp_path):
    config = load_config(str(tmp_path), {})
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'audittrail.db'}"
    assert config["RATELIMIT_STORAGE_URI"] == "memory://"
    assert config["AUDITTRAIL_TRANSITION_RATE_LIMIT"] == "30/minute"
    assert config["AUDITTRAIL_LOGIN_RATE_LIMIT"] == "10/minute"
    assert config["DEMO_LOGIN_ENABLED"] is True
    assert (config["AUDITTRAIL_DEFAULT_TTL_SECONDS"], config["AUDITTRAIL_TTL_MIN_SECONDS"]) == (3600, 60)
    assert config["JWT_COOKIE_SECURE"] is False


def test_development_secrets_are_generated_once_and_kept(tmp_path):
    first = load_config(str(tmp_path), {})
    second = load_config(str(tmp_path), {})
    assert first["SECRET_KEY"] == second["SECRET_KEY"] and len(first["SECRET_KEY"]) >= 32
    assert first["JWT_SECRET_KEY"] != first["SECRET_KEY"]
    assert (tmp_path / "secrets.json").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("missing", ["SECRET_KEY", "JWT_SECRET_KEY"])
def test_production_without_a_secret_stops_with_a_clear_message(tmp_path, missing):
    env = {"AUDITTRAIL_ENV": "production", "SECRET_KEY": "s" * 40, "JWT_SECRET_KEY": "j" * 40}
    del env[missing]
    with pytest.raises(ConfigurationError, match=missing):
        load_config(str(tmp_path), env)
    assert not (tmp_path / "secrets.json").exists()


def test_production_turns_demo_login_off_and_cookies_secure_unless_asked(tmp_path):
    env = {"AUDITTRAIL_ENV": "production", "SECRET_KEY": "s" * 40, "JWT_SECRET_KEY": "j" * 40}
    env["AUDITTRAIL_SIGNING_KEY"] = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="  # base64 of 32 raw bytes
    config = load_config(str(tmp_path), env)
    assert config["DEMO_LOGIN_ENABLED"] is False and config["JWT_COOKIE_SECURE"] is True
    assert load_config(str(tmp_path), {**env, "DEMO_LOGIN_ENABLED": "true"})["DEMO_LOGIN_ENABLED"] is True


@pytest.mark.parametrize("value", ["false", "0", "no", "off", "FALSE"])
def test_demo_login_can_be_turned_off(tmp_path, value):
    assert load_config(str(tmp_path), {"DEMO_LOGIN_ENABLED": value})["DEMO_LOGIN_ENABLED"] is False


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
    ],
)
def test_database_url_uses_psycopg3(tmp_path, given, expected):
    assert load_config(str(tmp_path), {"DATABASE_URL": given})["SQLALCHEMY_DATABASE_URI"] == expected


def test_ttl_settings_are_read_and_checked(tmp_path):
    config = load_config(str(tmp_path), {"AUDITTRAIL_TTL_MIN_SECONDS": "1", "AUDITTRAIL_DEFAULT_TTL_SECONDS": "120"})
    assert (config["AUDITTRAIL_TTL_MIN_SECONDS"], config["AUDITTRAIL_DEFAULT_TTL_SECONDS"]) == (1, 120)
    with pytest.raises(ConfigurationError, match="AUDITTRAIL_TTL_MIN_SECONDS"):
        load_config(str(tmp_path), {"AUDITTRAIL_TTL_MIN_SECONDS": "soon"})
    with pytest.raises(ConfigurationError, match="AUDITTRAIL_DEFAULT_TTL_SECONDS"):
        load_config(str(tmp_path), {"AUDITTRAIL_DEFAULT_TTL_SECONDS": "10"})


def test_webhook_settings_default_to_the_contract_and_never_allow_private_addresses(tmp_path):
    config = load_config(str(tmp_path), {})
    assert config["AUDITTRAIL_WEBHOOK_TIMEOUT_SECONDS"] == 15
    assert config["AUDITTRAIL_WEBHOOK_RETRY_SCALE"] == 1.0
    assert config["AUDITTRAIL_WEBHOOK_ALLOW_PRIVATE"] is False
    # A killed worker's claims come back within the contract's 30 s.
    assert config["AUDITTRAIL_WEBHOOK_LEASE_SECONDS"] == 25
    scaled = load_config(
        str(tmp_path),
        {"AUDITTRAIL_WEBHOOK_RETRY_SCALE": "0.001", "AUDITTRAIL_WEBHOOK_TIMEOUT_SECONDS": "2"},
    )
    assert (scaled["AUDITTRAIL_WEBHOOK_RETRY_SCALE"], scaled["AUDITTRAIL_WEBHOOK_LEASE_SECONDS"]) == (0.001, 12)
    with pytest.raises(ConfigurationError, match="AUDITTRAIL_WEBHOOK_RETRY_SCALE"):
        load_config(str(tmp_path), {"AUDITTRAIL_WEBHOOK_RETRY_SCALE": "fast"})
