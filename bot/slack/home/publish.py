"""Render a user's App Home from what the database holds now, for the outbox's views.publish."""

from __future__ import annotations

import logging
from typing import Any

from bot.core.home import HomeQuery
from bot.core.library_directory import LibraryDirectory
from bot.slack.home.blocks import home_view
from bot.slack.notify import Notifier

log = logging.getLogger(__name__)


class HomeRenderer:
    """user id -> the Home view: the data (HomeQuery), thread links, library names."""

    def __init__(
        self, query: HomeQuery, notifier: Notifier, directory: LibraryDirectory | None
    ) -> None:
        self.query = query
        self.notifier = notifier
        self.directory = directory

    def __call__(self, user_id: str) -> dict[str, Any]:
        data = self.query(user_id)
        links = self.notifier.permalinks(data.recent)
        return home_view(data, links, self._names(data.libraries))

    def _names(self, allowed: set[str] | str) -> dict[str, str]:
        if allowed == "*" or not allowed or self.directory is None:
            return {}
        try:
            found = self.directory.search("", allowed, limit=len(allowed))
        except Exception as exc:  # the Home still shows the ids
            log.info("App Home without library names: %s", exc)
            return {}
        return {library.id: library.desc for library in found}
