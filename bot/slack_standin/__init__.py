"""A local stand-in for Slack's Web API and response_url endpoints (tests and the console)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.slack_standin.blocks import validate_blocks
    from bot.slack_standin.server import (
        BOT_ID,
        BOT_USER_ID,
        TEAM_ID,
        SlackCall,
        SlackStandIn,
        main,
    )

__all__ = [
    "BOT_ID",
    "BOT_USER_ID",
    "TEAM_ID",
    "SlackCall",
    "SlackStandIn",
    "main",
    "validate_blocks",
]


def __getattr__(name: str) -> Any:
    # Imported lazily so that `python -m bot.slack_standin.server` runs without a warning.
    if name in __all__:
        from bot.slack_standin import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
