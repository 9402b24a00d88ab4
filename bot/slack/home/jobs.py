"""The App Home's work: publish it when opened, and answer a click made on it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from bot.core.home import home_opened
from bot.slack import blocks
from bot.slack.delivery.owing import message
from bot.slack.wiring import Services

log = logging.getLogger(__name__)


def is_home_click(body: dict) -> bool:
    """A button on the App Home: Slack sends the view, and no response_url."""
    container, view = body.get("container"), body.get("view")
    return (
        isinstance(container, dict)
        and container.get("type") == "view"
        and isinstance(view, dict)
        and view.get("type") == "home"
    )


def opened(services: Services, user_id: str) -> None:
    """app_home_opened: publish the Home now (through the outbox, docs/SPEC.md §14)."""
    if services.outbox is not None:
        services.outbox.add([home_opened(user_id)])


class HomeAnswer:
    """Stands in for a click's response_url on the Home, where there is none: what would
    replace the clicked message is left to the Home (published again after the click), and
    what would be said to the clicker alone (a refusal, a note) comes as a direct message."""

    response_url = None

    def __init__(self, services: Services, user_id: str) -> None:
        self.services = services
        self.user_id = user_id

    def __call__(self, text: str = "", blocks: list | None = None, **options: Any) -> None:
        if options.get("replace_original") or options.get("delete_original"):
            return
        if self.services.outbox is None:
            return
        said = message_of(text, blocks)
        self.services.outbox.add([message("dm", said, channel=self.user_id)])


def message_of(text: str, found: list | None) -> blocks.Message:
    return blocks.Message(text=text or "addtolib", blocks=list(found or []))


def clicked(services: Services, job: Callable[..., None], value: str, user_id: str) -> None:
    """Run a message button's job for a click on the Home (same job: same checks, same
    compare-and-set), then publish the clicker's Home at once."""
    try:
        job(services, HomeAnswer(services, user_id), value, user_id)
    finally:
        opened(services, user_id)
