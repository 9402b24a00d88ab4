"""Notification threads: links to them (their messages go through the outbox, owed.py)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.core.operation import Operation
from bot.core.store import OperationStore

log = logging.getLogger(__name__)


class Notifier:
    """Reads notification threads in ADDTOLIB_NOTIFY_CHANNEL; a Slack failure is never raised."""

    def __init__(self, client: WebClient, store: OperationStore, channel: str | None):
        self.client = client
        self.store = store
        self.channel = channel

    def permalinks(self, operations: Iterable[Operation]) -> dict[str, str]:
        """Operation id -> link to its thread, asked of Slack all at once (one round trip)."""
        threaded = [op for op in operations if op.notify_channel and op.notify_ts]
        if not threaded:
            return {}
        with ThreadPoolExecutor(min(8, len(threaded)), thread_name_prefix="permalink") as pool:
            links = pool.map(self.permalink, threaded)
        return {op.id: link for op, link in zip(threaded, links, strict=True) if link}

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
