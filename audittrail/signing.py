"""The app's signing keyring (evidence.md §1), built once from the settings."""

from __future__ import annotations

from flask import Flask
from flask import current_app

from audittrail.config import ConfigurationError
from audittrail_evidence.jws import EvidenceError
from audittrail_evidence.jws import Keyring
from audittrail_evidence.jws import keyring_from_settings

_EXTENSION = "audittrail.keyring"


def init_app(app: Flask) -> None:
    """Read AUDITTRAIL_SIGNING_KEY and AUDITTRAIL_SIGNING_KEYS_PREVIOUS (after any test override)."""
    try:
        app.extensions[_EXTENSION] = keyring_from_settings(
            app.config["AUDITTRAIL_SIGNING_KEY"], app.config.get("AUDITTRAIL_SIGNING_KEYS_PREVIOUS") or ()
        )
    except EvidenceError as error:
        raise ConfigurationError(f"the signing keys are not usable: {error}") from None


def current_keyring() -> Keyring:
    """The keyring of the running app: the current key signs, every key verifies."""
    return current_app.extensions[_EXTENSION]
