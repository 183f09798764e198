"""The production path (gunicorn, PostgreSQL, Redis): collected only when both are given.

Without TEST_DATABASE_URL and TEST_REDIS_URL this directory generates no tests at all (a plain
SQLite run collects nothing here, and reports no skips); `.ci/run` sets both.
"""

from __future__ import annotations

import os

import pytest

from tests.production import harness

if not (os.environ.get("TEST_DATABASE_URL") and os.environ.get("TEST_REDIS_URL")):
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture(scope="module")
def database():
    """A migrated database of this module's own; dropped afterwards. Yields its URL."""
    name = harness.create_database()
    url = harness.database_url(name)
    try:
        harness.migrate(url)
        yield url
    finally:
        harness.drop_database(name)


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("gunicorn")
