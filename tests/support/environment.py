"""Where the tests run: on CI every test must run, so a missing PostgreSQL fails there."""

import os

import pytest
from django.db import connection

ON_CI = os.environ.get("CI", "").lower() == "true"


def requires_postgres() -> None:
    """Skip where PostgreSQL is not the test database, except on CI, where that is a failure.

    Tests say it with the `requires_postgres` marker (conftest calls this for them); a fixture
    that needs PostgreSQL calls it first thing."""
    if connection.vendor == "postgresql":
        return
    if ON_CI:
        pytest.fail("CI must run the PostgreSQL tests: set DATABASE_URL to the local server.")
    pytest.skip("needs PostgreSQL (set DATABASE_URL=postgres://...)")
