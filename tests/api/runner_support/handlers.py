"""Handlers the runner tests plug into examples/runner.py (`--handler tests.api.runner_support.handlers:…`)."""

from __future__ import annotations

import os
import time


def counting(action: dict) -> dict:
    """Append the action id to $RUNNER_TEST_LOG (one line per call), take a moment, return an outcome."""
    with open(os.environ["RUNNER_TEST_LOG"], "a") as handle:
        handle.write(action["id"] + "\n")
    time.sleep(float(os.environ.get("RUNNER_TEST_DELAY", "0")))
    return {"status": "succeeded", "by": "counting handler"}
