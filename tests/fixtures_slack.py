"""Pytest fixtures for the Slack side: the Web API stand-in, signing secret, bot processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bot.slack_standin import SlackStandIn
from tests.bot_process import BotProcess

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
EDITORS_GROUP = "S0EDITORS"
EDITOR_USER = "U0EDITOR"

__all__ = ["EDITORS_GROUP", "EDITOR_USER", "SIGNING_SECRET", "BotProcess"]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Any:
    """Remember each phase's report on the item, so fixtures can tell a failed test."""
    report = yield
    setattr(item, f"_rep_{report.when}", report)
    return report


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    """A started Slack Web API stand-in; S0EDITORS = [U0EDITOR]."""
    standin = SlackStandIn(usergroups={EDITORS_GROUP: [EDITOR_USER]}).start()
    try:
        yield standin
    finally:
        standin.stop()


@pytest.fixture
def signing_secret() -> str:
    return SIGNING_SECRET


@pytest.fixture
def bot_process(
    request: pytest.FixtureRequest, tmp_path: Any
) -> Iterator[Callable[..., BotProcess]]:
    """Factory: ``bot_process(env, **BotProcess kwargs)`` -> started BotProcess.

    Every process is stopped after the test; if the test failed, its output is printed.
    """
    started: list[BotProcess] = []

    def start(env: dict[str, str] | None = None, **kwargs: Any) -> BotProcess:
        kwargs.setdefault("log_path", tmp_path / f"bot-{len(started)}.log")
        proc = BotProcess(env, **kwargs)
        started.append(proc)
        return proc.start()

    yield start
    failed = any(
        getattr(getattr(request.node, f"_rep_{when}", None), "failed", False)
        for when in ("setup", "call")
    )
    for proc in started:
        # SIGKILL: a test that checks shutdown stops its process itself; here a graceful stop
        # would only wait (up to 10 s) for deliveries and jobs nobody looks at any more.
        proc.kill()
        if failed:
            proc.print_output()
