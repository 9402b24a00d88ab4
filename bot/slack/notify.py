"""Notification threads: links to them (their messages go through the outbox, owed.py)."""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.core.store import Operation, OperationStore

log = logging.getLogger(__name__)


class Notifier:
    """Reads notification threads in ADDTOLIB_NOTIFY_CHANNEL; a Slack failure is never raised."""

    def __init__(self, client: WebClient, store: OperationStore, channel: str | None):
        self.client = client
        self.store = store
        self.channel = channel

    def permalink(self, operation: Operation) -> str | None:
        """A link to the operation's thread, when it has one."""
        if not (operation.notify_channel and operation.notify_ts):
            return None
        try:
            answer = self.client.chat_getPermalink(
                channel=operation.notify_channel, message_ts=operation.notify_ts
            )
            return answer.get("permalink")
        except SlackApiError:
            return None
