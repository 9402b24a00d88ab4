"""Notification threads: one parent message per operation, its events as replies."""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.core.store import Operation, OperationStore
from bot.slack import blocks

log = logging.getLogger(__name__)


class Notifier:
    """Posts to ADDTOLIB_NOTIFY_CHANNEL; a Slack failure is reported, never raised."""

    def __init__(self, client: WebClient, store: OperationStore, channel: str | None):
        self.client = client
        self.store = store
        self.channel = channel

    def executed(self, operation: Operation) -> str | None:
        """Announce an executed operation; return a problem to tell the requester, if any."""
        if not self.channel:
            return None
        try:
            ts = self._thread(operation)
            self.client.chat_postMessage(
                channel=self.channel, thread_ts=ts, **blocks.notify_details(operation).kwargs()
            )
        except SlackApiError as exc:
            return self._failed(operation, exc)
        return None

    def event(self, operation: Operation, text: str) -> str | None:
        """Reply in the operation's thread (starting it if it has none yet)."""
        if not self.channel:
            return None
        try:
            ts = self._thread(self.store.get(operation.id) or operation)
            self.client.chat_postMessage(
                channel=self.channel, thread_ts=ts, **blocks.notify_event(text).kwargs()
            )
        except SlackApiError as exc:
            return self._failed(operation, exc)
        return None

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

    def _thread(self, operation: Operation) -> str:
        if operation.notify_ts and operation.notify_channel == self.channel:
            return operation.notify_ts
        answer = self.client.chat_postMessage(
            channel=self.channel, **blocks.notify_parent(operation).kwargs()
        )
        ts = answer["ts"]
        self.store.update(operation.id, notify_channel=self.channel, notify_ts=ts)
        return ts

    def _failed(self, operation: Operation, exc: SlackApiError) -> str:
        reason = exc.response.get("error", "unknown error") if exc.response else str(exc)
        log.warning("notification for operation %s failed: %s", operation.id, reason)
        return (
            f"The change was made, but I could not post it to <#{self.channel}> ({reason}). "
            "Invite me to that channel so the team sees future changes."
        )
