"""Shared pytest fixtures, gathered from the tests/fixtures_*.py plugin modules."""

pytest_plugins = [
    "tests.fixtures_db",
    "tests.fixtures_uplynk",
    "tests.fixtures_slack",
    "tests.fixtures_bot",
    "tests.fixtures_socket",
]
