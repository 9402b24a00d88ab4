"""A local stand-in for Slack's Web API and response_url endpoints, over real HTTP."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.slack_standin.blocks import BlocksError, validate_blocks
from bot.slack_standin.socket_mode import SocketModeStandIn
from bot.slack_standin.views import Views

log = logging.getLogger(__name__)

BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
TEAM_ID = "T0001"
TEAM_NAME = "Demo"

#: Slack accepts at most this many posts on one response_url.
RESPONSE_URL_MAX_USES = 5
MAX_BODY = 10 * 1024 * 1024

# Form fields that slack_sdk sends as JSON strings.
_JSON_FIELDS = ("blocks", "attachments", "metadata", "view", "unfurls", "outputs")

_TS_BASE_US = 1_700_000_000_000_000


@dataclass(frozen=True)
class SlackCall:
    """One request the stand-in received."""

    method: str
    payload: dict[str, Any]
    ts: str | None = None
    key: str | None = None
    at: float = field(default_factory=time.time)
    error: str | None = None
    token: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def rejected(self) -> bool:
        return self.error is not None

    @property
    def channel(self) -> str | None:
        return self.payload.get("channel")

    @property
    def text(self) -> str:
        return self.payload.get("text") or ""

    @property
    def blocks(self) -> list[dict[str, Any]]:
        blocks = self.payload.get("blocks")
        return blocks if isinstance(blocks, list) else []


@dataclass
class _Failure:
    error: str
    times: int
    status: int
    channel: str | None = None  # only calls to this channel fail


class SlackStandIn:
    """Answers the Slack Web API the way slack_sdk's WebClient expects, and records every call.

    Point a client at it with ``WebClient(token=..., base_url=standin.url)``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        usergroups: dict[str, list[str]] | None = None,
        *,
        token: str | None = None,
        latency: dict[str, float] | None = None,
        strict_blocks: bool = True,
    ) -> None:
        self.host = host
        self.port = port
        self.token = token
        self.strict_blocks = strict_blocks
        self._usergroups: dict[str, list[str]] = {k: list(v) for k, v in (usergroups or {}).items()}
        self._latency: dict[str, float] = dict(latency or {})
        self._failures: dict[str, list[_Failure]] = {}
        self._cond = threading.Condition()
        self._calls: list[SlackCall] = []
        self._messages: dict[tuple[str, str], dict[str, Any]] = {}
        self._response_uses: dict[str, int] = {}
        self._ts_counter = 0
        self._post_limit: tuple[float, float] | None = None  # (rate a second, burst)
        self.retry_after = 1.0  # seconds, the Retry-After header of every 429
        self._buckets: dict[str, tuple[float, float]] = {}  # channel -> (tokens, at)
        self._outage_until = 0.0
        self.views = Views()  # modals: trigger ids, views.open/update/push
        self.socket_mode = SocketModeStandIn(host)  # off until socket_mode.enable(app_token)
        # conversations.info knows these channels only (channel id -> its "channel" object).
        self._channels: dict[str, dict[str, Any]] = {}
        # users.info answers each user with this time zone (IANA name); others get "UTC".
        self._zones: dict[str, str] = {}
        # Workflow Builder step executions: execution id -> its token, and how each ended.
        self._executions: dict[str, str] = {}
        self.completions: dict[str, SlackCall] = {}
        self._revoked: set[str] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> SlackStandIn:
        if self._server is not None:
            return self
        handler = type("_BoundHandler", (_Handler,), {"standin": self})
        server = ThreadingHTTPServer((self.host, self.port), handler)
        server.daemon_threads = True
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"slack-standin:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.socket_mode.stop()
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SlackStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The Web API base URL for ``WebClient(base_url=...)``; ends with ``/api/``."""
        return f"{self.base}/api/"

    def response_url(self, key: str) -> str:
        """A response_url that records its posts under ``key``."""
        return f"{self.base}/response/{key}"

    # -- configuration -----------------------------------------------------

    def fail(
        self,
        method: str,
        error: str = "not_in_channel",
        times: int = 1,
        status: int | None = None,
        *,
        channel: str | None = None,
    ) -> None:
        """Make the next ``times`` calls of ``method`` ("*" for any) fail with ``error``.

        Web API methods answer ``{"ok": false, "error": error}`` with HTTP 200 (429 with
        ``Retry-After: 1`` for "ratelimited"); "response_url" answers ``status`` (default 404).
        With ``channel``, only calls whose ``channel`` is that one fail (and count).
        """
        if status is None:
            if method == "response_url":
                status = 404
            elif error == "ratelimited":
                status = 429
            else:
                status = 200
        with self._cond:
            self._failures.setdefault(method, []).append(_Failure(error, times, status, channel))

    def set_latency(self, method: str, seconds: float) -> None:
        """Delay answers to ``method`` ("*" for all, "response_url" too) by ``seconds``."""
        with self._cond:
            self._latency[method] = seconds

    def limit_posts(
        self, rate: float | None = 1.0, burst: int = 5, retry_after: float = 1.0
    ) -> None:
        """Hold chat.postMessage to Slack's per-channel limit: `rate` a second per channel with
        bursts of `burst`; beyond it HTTP 429 ``ratelimited`` with ``Retry-After: 1`` (or
        `retry_after`, for tests that scale Slack's time down). ``rate=None`` lifts the limit."""
        with self._cond:
            self._post_limit = None if rate is None else (float(rate), float(burst))
            self.retry_after = retry_after
            self._buckets.clear()

    def outage(self, seconds: float) -> None:
        """Answer every Web API call with HTTP 503 for the next `seconds` (0 ends it)."""
        with self._cond:
            self._outage_until = time.monotonic() + seconds if seconds > 0 else 0.0

    def _over_limit(self, method: str, channel: str | None) -> bool:
        """Token bucket per channel; called with the lock held."""
        if self._post_limit is None or method != "chat.postMessage" or not channel:
            return False
        rate, burst = self._post_limit
        now = time.monotonic()
        tokens, at = self._buckets.get(channel, (burst, now))
        tokens = min(burst, tokens + (now - at) * rate)
        if tokens < 1:
            self._buckets[channel] = (tokens, now)
            return True
        self._buckets[channel] = (tokens - 1, now)
        return False

    def new_trigger(self) -> str:
        """A trigger id for an interaction payload: views.open accepts it once, within 3 s."""
        return self.views.new_trigger()

    def add_channel(
        self, channel_id: str, name: str, *, is_private: bool = False, is_member: bool = True
    ) -> None:
        """Make a channel known to conversations.info (a private one the bot is not in is
        invisible to it, as on Slack: channel_not_found)."""
        with self._cond:
            self._channels[channel_id] = {
                "id": channel_id,
                "name": name,
                "is_channel": not is_private,
                "is_group": is_private,
                "is_private": is_private,
                "is_archived": False,
                "is_member": is_member,
            }

    def set_user_zone(self, user_id: str, tz: str) -> None:
        """users.info will answer `tz` (an IANA name, e.g. "Asia/Kolkata") for this user."""
        with self._cond:
            self._zones[user_id] = tz

    def start_execution(self, execution_id: str, token: str) -> None:
        """A step execution Workflow Builder started: its `bot_access_token` is accepted
        until the execution is completed (Slack revokes it then)."""
        with self._cond:
            self._executions[execution_id] = token

    def revoke_token(self, execution_id: str) -> None:
        """Let the execution's token lapse (Slack revokes it after about 15 minutes) while
        the execution itself stays open: the app's bot token still completes it."""
        with self._cond:
            token = self._executions.get(execution_id)
            if token:
                self._revoked.add(token)

    def execution_token_ok(self, token: str | None) -> bool:
        with self._cond:
            return bool(token) and token in self._executions.values() and token not in self._revoked

    def set_usergroup(self, usergroup: str, users: Iterable[str]) -> None:
        with self._cond:
            self._usergroups[usergroup] = list(users)

    def clear(self) -> None:
        """Forget calls, messages, failures, latency, limits, outages and response_url counts."""
        with self._cond:
            self._calls.clear()
            self._messages.clear()
            self._failures.clear()
            self._latency.clear()
            self._response_uses.clear()
            self._post_limit, self._outage_until = None, 0.0
            self._buckets.clear()

    # -- inspection --------------------------------------------------------

    @property
    def calls(self) -> list[SlackCall]:
        with self._cond:
            return list(self._calls)

    def calls_of(self, method: str, *, ok: bool | None = None) -> list[SlackCall]:
        with self._cond:
            return [c for c in self._calls if c.method == method and (ok is None or c.ok is ok)]

    def responses(self, key: str) -> list[SlackCall]:
        """Accepted posts to ``response_url(key)``."""
        with self._cond:
            return [c for c in self._calls if c.method == "response_url" and c.key == key and c.ok]

    def messages_in(self, channel: str, thread_ts: str | None = None) -> list[dict[str, Any]]:
        """The channel's current messages (posted, then updated/deleted), oldest first.

        With ``thread_ts``, only the replies in that thread.
        """
        with self._cond:
            msgs = [dict(m) for (ch, _), m in self._messages.items() if ch == channel]
        if thread_ts is not None:
            msgs = [m for m in msgs if m.get("thread_ts") == thread_ts and m["ts"] != thread_ts]
        return sorted(msgs, key=lambda m: m["ts"])

    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        with self._cond:
            m = self._messages.get((channel, ts))
            return dict(m) if m is not None else None

    def wait_for(
        self, predicate: Callable[[SlackCall], bool] | str, timeout: float = 10
    ) -> SlackCall:
        """The first recorded call matching ``predicate`` (a method name works too).

        Waits up to ``timeout`` seconds; raises TimeoutError listing what was recorded.
        """
        if isinstance(predicate, str):
            method = predicate

            def predicate(c: SlackCall) -> bool:
                return c.method == method

        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for call in self._calls:
                    if predicate(call):
                        return call
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = ", ".join(c.method for c in self._calls) or "nothing"
                    raise TimeoutError(f"no matching Slack call within {timeout}s; saw: {seen}")
                self._cond.wait(min(remaining, 0.5))

    def wait_until(self, condition: Callable[[], Any], timeout: float = 10) -> Any:
        """Wait until ``condition()`` is truthy (re-checked on each new call); return it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                result = condition()
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"condition not met within {timeout}s")
                self._cond.wait(min(remaining, 0.5))

    # -- request handling (called from server threads) -----------------------

    def _record(self, call: SlackCall) -> None:
        with self._cond:
            self._calls.append(call)
            self._cond.notify_all()

    def _next_ts(self) -> str:
        with self._cond:
            self._ts_counter += 1
            us = _TS_BASE_US + self._ts_counter * 100
        return f"{us // 1_000_000}.{us % 1_000_000:06d}"

    def _take_failure(self, method: str, channel: str | None = None) -> _Failure | None:
        with self._cond:
            for name in (method, "*"):
                queue = self._failures.get(name) or []
                matching = [f for f in queue if f.channel in (None, channel)]
                if matching:
                    failure = matching[0]
                    failure.times -= 1
                    if failure.times <= 0:
                        queue.remove(failure)
                    return failure
        return None

    def _delay(self, method: str) -> None:
        with self._cond:
            seconds = self._latency.get(method, self._latency.get("*", 0.0))
        if seconds > 0:
            time.sleep(seconds)

    def _api(
        self, method: str, payload: dict[str, Any], token: str | None
    ) -> tuple[int, dict[str, Any]]:
        """Answer one Web API call: (HTTP status, JSON body)."""
        self._delay(method)
        if method == "apps.connections.open":  # authenticated by the app-level token instead
            body = self.socket_mode.connections_open(token)
            self._record(SlackCall(method, payload, error=body.get("error"), token=token))
            return 200, body
        if token and token.startswith("xwfp-") and not self.execution_token_ok(token):
            self._record(SlackCall(method, payload, error="token_revoked", token=token))
            return 200, {"ok": False, "error": "token_revoked"}
        if self.token is not None and token != self.token and not self.execution_token_ok(token):
            self._record(SlackCall(method, payload, error="invalid_auth", token=token))
            return 200, {"ok": False, "error": "invalid_auth"}
        with self._cond:  # answer and record atomically: recorded order == ts order
            if time.monotonic() < self._outage_until:
                self._record(SlackCall(method, payload, error="service_unavailable", token=token))
                return 503, {"ok": False, "error": "service_unavailable"}
            if self._over_limit(method, payload.get("channel")):
                self._record(SlackCall(method, payload, error="ratelimited", token=token))
                return 429, {"ok": False, "error": "ratelimited"}
            failure = self._take_failure(method, payload.get("channel"))
            if failure is not None:
                self._record(SlackCall(method, payload, error=failure.error, token=token))
                return failure.status, {"ok": False, "error": failure.error}
            handler = _METHODS.get(method)
            body = {"ok": True}
            ts = None
            if handler is not None:
                body, ts = handler(self, payload)
            error = None if body.get("ok") else body.get("error")
            self._record(SlackCall(method, payload, ts=ts, error=error, token=token))
        return 200, body

    def _response_url(self, key: str, payload: Any, raw: str) -> tuple[int, str]:
        self._delay("response_url")
        recorded = payload if isinstance(payload, dict) else {"_raw": raw}
        failure = self._take_failure("response_url")
        if failure is not None:
            self._record(SlackCall("response_url", recorded, key=key, error=failure.error))
            return failure.status, failure.error
        if not isinstance(payload, dict):
            self._record(SlackCall("response_url", recorded, key=key, error="invalid_payload"))
            return 400, "invalid_payload"
        with self._cond:
            uses = self._response_uses.get(key, 0)
            if uses >= RESPONSE_URL_MAX_USES:
                self._calls.append(SlackCall("response_url", payload, key=key, error="used_url"))
                self._cond.notify_all()
                return 404, "used_url"
            if self.strict_blocks:
                try:
                    validate_blocks(payload.get("blocks"))
                except BlocksError:
                    self._calls.append(
                        SlackCall("response_url", payload, key=key, error="invalid_blocks")
                    )
                    self._cond.notify_all()
                    return 400, "invalid_blocks"
            if not any(
                payload.get(k) for k in ("text", "blocks", "attachments", "delete_original")
            ):
                self._calls.append(SlackCall("response_url", payload, key=key, error="no_text"))
                self._cond.notify_all()
                return 400, "no_text"
            self._response_uses[key] = uses + 1
            self._calls.append(SlackCall("response_url", payload, key=key))
            self._cond.notify_all()
        return 200, "ok"

    # -- Web API methods -----------------------------------------------------

    def _check_message(self, payload: dict[str, Any]) -> str | None:
        if not payload.get("channel"):
            return "channel_not_found"
        if not any(payload.get(k) for k in ("text", "blocks", "attachments")):
            return "no_text"
        if self.strict_blocks:
            try:
                validate_blocks(payload.get("blocks"))
            except BlocksError:
                return "invalid_blocks"
        return None

    def _m_auth_test(self, payload: dict[str, Any]) -> tuple[dict[str, Any], None]:
        return {
            "ok": True,
            "url": "https://demo.slack.com/",
            "team": TEAM_NAME,
            "user": "addtolib",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }, None

    def _m_post_message(self, payload: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        error = self._check_message(payload)
        if error:
            return {"ok": False, "error": error}, None
        channel = payload["channel"]
        ts = self._next_ts()
        message = {
            "type": "message",
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "ts": ts,
            "channel": channel,
            "text": payload.get("text") or "",
        }
        for key in ("blocks", "attachments", "thread_ts", "metadata"):
            if payload.get(key):
                message[key] = payload[key]
        with self._cond:
            self._messages[(channel, ts)] = message
        public = {k: v for k, v in message.items() if k != "channel"}
        return {"ok": True, "channel": channel, "ts": ts, "message": public}, ts

    def _m_post_ephemeral(self, payload: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        error = self._check_message(payload)
        if error:
            return {"ok": False, "error": error}, None
        if not payload.get("user"):
            return {"ok": False, "error": "user_not_found"}, None
        ts = self._next_ts()
        return {"ok": True, "message_ts": ts}, ts

    def _m_update(self, payload: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        channel, ts = payload.get("channel"), payload.get("ts")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}, ts
        if self.strict_blocks:
            try:
                validate_blocks(payload.get("blocks"))
            except BlocksError:
                return {"ok": False, "error": "invalid_blocks"}, ts
        with self._cond:
            message = self._messages.get((channel, ts or ""))  # no message has ts ""
            if message is None:
                return {"ok": False, "error": "message_not_found"}, ts
            for key in ("text", "blocks", "attachments", "metadata"):
                if key in payload:
                    message[key] = payload[key]
            message["edited"] = {"user": BOT_USER_ID, "ts": self._next_ts()}
            public = {k: v for k, v in message.items() if k != "channel"}
        return {
            "ok": True,
            "channel": channel,
            "ts": ts,
            "text": public.get("text", ""),
            "message": public,
        }, ts

    def _m_delete(self, payload: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        channel, ts = payload.get("channel"), payload.get("ts")
        with self._cond:
            if self._messages.pop((channel or "", ts or ""), None) is None:  # "": none such
                return {"ok": False, "error": "message_not_found"}, ts
        return {"ok": True, "channel": channel, "ts": ts}, ts

    def _m_conversations_open(self, payload: dict[str, Any]) -> tuple[dict[str, Any], None]:
        users = [u for u in str(payload.get("users") or "").split(",") if u]
        if not users:
            return {"ok": False, "error": "users_list_not_supplied"}, None
        return {"ok": True, "channel": {"id": "D" + users[0]}}, None

    def _m_conversations_info(self, payload: dict[str, Any]) -> tuple[dict[str, Any], None]:
        channel_id = payload.get("channel")
        if not channel_id:
            return {"ok": False, "error": "channel_not_found"}, None
        with self._cond:
            channel = self._channels.get(channel_id)
            channel = dict(channel) if channel is not None else None
        if channel is None or (channel["is_private"] and not channel["is_member"]):
            return {"ok": False, "error": "channel_not_found"}, None
        return {"ok": True, "channel": channel}, None

    def _m_get_permalink(self, payload: dict[str, Any]) -> tuple[dict[str, Any], None]:
        channel, ts = payload.get("channel"), payload.get("message_ts")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}, None
        with self._cond:
            if not ts or (channel, ts) not in self._messages:
                return {"ok": False, "error": "message_not_found"}, None
        permalink = f"https://slack.example/archives/{channel}/p{ts.replace('.', '')}"
        return {"ok": True, "channel": channel, "permalink": permalink}, None

    def _m_usergroups_users_list(self, payload: dict[str, Any]) -> tuple[dict[str, Any], None]:
        group = payload.get("usergroup")
        with self._cond:
            users = self._usergroups.get(group) if group else None
            users = list(users) if users is not None else None
        if users is None:
            return {"ok": False, "error": "no_such_subteam"}, None
        return {"ok": True, "users": users}, None

    def _m_users_info(self, payload: dict[str, Any]) -> tuple[dict[str, Any], None]:
        user_id = str(payload.get("user") or "")
        if not user_id.startswith(("U", "W")):
            return {"ok": False, "error": "user_not_found"}, None
        with self._cond:
            tz = self._zones.get(user_id, "UTC")
        offset = _zone_offset(tz)
        user = {"id": user_id, "name": user_id.lower(), "tz": tz, "tz_offset": offset}
        return {"ok": True, "user": user}, None

    def _m_views_open(self, payload: dict[str, Any]) -> tuple[dict[str, Any], None]:
        return self.views.open(payload), None

    def _m_views_push(self, payload: dict[str, Any]) -> tuple[dict[str, Any], None]:
        return self.views.open(payload, push=True), None

    def _m_views_update(self, payload: dict[str, Any]) -> tuple[dict[str, Any], None]:
        return self.views.update(payload), None

    def _m_views_publish(self, payload: dict[str, Any]) -> tuple[dict[str, Any], None]:
        return self.views.publish(payload), None

    def _m_complete(self, payload: dict[str, Any], success: bool) -> tuple[dict[str, Any], None]:
        """functions.completeSuccess / completeError: once per execution. A second completion
        (or an unknown id) answers `function_execution_not_found`, as Slack does
        (docs.slack.dev/reference/methods/functions.completeError)."""
        execution_id = payload.get("function_execution_id")
        if not execution_id:
            return {"ok": False, "error": "invalid_arguments"}, None
        if success and not isinstance(payload.get("outputs"), dict):
            return {"ok": False, "error": "invalid_arguments"}, None
        if not success and not str(payload.get("error") or "").strip():
            return {"ok": False, "error": "invalid_arguments"}, None
        with self._cond:
            if execution_id not in self._executions or execution_id in self.completions:
                return {"ok": False, "error": "function_execution_not_found"}, None
            self._executions.pop(execution_id)  # its token is revoked with the completion
            self.completions[execution_id] = SlackCall(
                "functions.completeSuccess" if success else "functions.completeError", payload
            )
        return {"ok": True}, None

    def _m_complete_success(self, payload: dict[str, Any]) -> tuple[dict[str, Any], None]:
        return self._m_complete(payload, True)

    def _m_complete_error(self, payload: dict[str, Any]) -> tuple[dict[str, Any], None]:
        return self._m_complete(payload, False)


_METHODS: dict[str, Callable[[SlackStandIn, dict[str, Any]], tuple[dict[str, Any], Any]]] = {
    "auth.test": SlackStandIn._m_auth_test,
    "chat.postMessage": SlackStandIn._m_post_message,
    "chat.postEphemeral": SlackStandIn._m_post_ephemeral,
    "chat.update": SlackStandIn._m_update,
    "chat.delete": SlackStandIn._m_delete,
    "chat.getPermalink": SlackStandIn._m_get_permalink,
    "conversations.info": SlackStandIn._m_conversations_info,
    "conversations.open": SlackStandIn._m_conversations_open,
    "usergroups.users.list": SlackStandIn._m_usergroups_users_list,
    "users.info": SlackStandIn._m_users_info,
    "views.open": SlackStandIn._m_views_open,
    "views.push": SlackStandIn._m_views_push,
    "views.update": SlackStandIn._m_views_update,
    "views.publish": SlackStandIn._m_views_publish,
    "functions.completeSuccess": SlackStandIn._m_complete_success,
    "functions.completeError": SlackStandIn._m_complete_error,
}


def _zone_offset(tz: str) -> int:
    """Seconds east of UTC now in `tz`, as users.info's `tz_offset` (0 for an unknown zone)."""
    try:
        offset = datetime.now(ZoneInfo(tz)).utcoffset()
    except (ZoneInfoNotFoundError, ValueError):
        return 0
    return int(offset.total_seconds()) if offset else 0


def _decode_form(raw: str) -> dict[str, Any]:
    payload: dict[str, Any] = {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}
    for key in _JSON_FIELDS:
        value = payload.get(key)
        if isinstance(value, str) and value[:1] in ("[", "{"):
            with contextlib.suppress(ValueError):
                payload[key] = json.loads(value)
    return payload


def _call_to_json(call: SlackCall) -> dict[str, Any]:
    return {
        "method": call.method,
        "payload": call.payload,
        "ts": call.ts,
        "key": call.key,
        "at": call.at,
        "error": call.error,
    }


class _Handler(BaseHTTPRequestHandler):
    standin: SlackStandIn  # set on the bound subclass
    protocol_version = "HTTP/1.1"
    server_version = "SlackStandIn/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(obj).encode()
        self._send(status, body, "application/json; charset=utf-8", headers)

    def _read_body(self) -> str | None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.close_connection = True
            self._send_json(413, {"ok": False, "error": "request_too_large"})
            return None
        return self.rfile.read(length).decode("utf-8", "replace") if length else ""

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path.startswith("/api/"):
            self._api(parts, "")
        elif parts.path == "/_standin/calls":
            self._send_json(200, [_call_to_json(c) for c in self.standin.calls])
        elif parts.path == "/healthz":
            self._send_json(200, {"ok": True})
        else:
            self._send_json(404, {"ok": False, "error": "unknown_path"})

    def do_POST(self) -> None:
        parts = urlsplit(self.path)
        raw = self._read_body()
        if raw is None:
            return
        if parts.path.startswith("/api/"):
            self._api(parts, raw)
        elif parts.path.startswith("/response/") and len(parts.path) > len("/response/"):
            key = parts.path[len("/response/") :]
            try:
                payload = json.loads(raw) if raw else None
            except ValueError:
                payload = None
            status, text = self.standin._response_url(key, payload, raw)
            self._send(status, text.encode(), "text/html")
        elif parts.path == "/_standin/reset":
            self.standin.clear()
            self._send_json(200, {"ok": True})
        elif parts.path in ("/_standin/limit", "/_standin/outage"):
            try:
                options = json.loads(raw or "{}")
                if parts.path == "/_standin/limit":
                    self.standin.limit_posts(options.get("rate"), int(options.get("burst", 5)))
                else:
                    self.standin.outage(float(options["seconds"]))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                self._send_json(400, {"ok": False, "error": f"bad options: {exc}"})
                return
            self._send_json(200, {"ok": True})
        else:
            self._send_json(404, {"ok": False, "error": "unknown_path"})

    def _api(self, parts: Any, raw: str) -> None:
        method = parts.path[len("/api/") :]
        if not method:
            self._send_json(404, {"ok": False, "error": "unknown_method"})
            return
        payload: dict[str, Any] = _decode_form(parts.query) if parts.query else {}
        ctype = (self.headers.get("Content-Type") or "").lower()
        if raw:
            if "json" in ctype:
                try:
                    body = json.loads(raw)
                except ValueError:
                    self._send_json(200, {"ok": False, "error": "invalid_json"})
                    return
                if not isinstance(body, dict):
                    self._send_json(200, {"ok": False, "error": "invalid_json"})
                    return
                payload.update(body)
            else:
                payload.update(_decode_form(raw))
        token = payload.pop("token", None)
        auth = self.headers.get("Authorization") or ""
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        status, body = self.standin._api(method, payload, token)
        headers = {"Retry-After": f"{self.standin.retry_after:g}"} if status == 429 else None
        self._send_json(status, body, headers)


def main(argv: list[str] | None = None) -> int:
    """``python -m bot.slack_standin.server [--port N]``: run the stand-in until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m bot.slack_standin.server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--token", default=None, help="accept only this bot token")
    parser.add_argument(
        "--usergroup",
        action="append",
        default=[],
        metavar="S0GROUP=U1,U2",
        help="a user group and its members (repeatable)",
    )
    parser.add_argument(
        "--post-rate",
        type=float,
        default=None,
        metavar="N",
        help="hold chat.postMessage to N a second per channel (burst 5), as Slack does",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="do not print each call")
    args = parser.parse_args(argv)
    groups: dict[str, list[str]] = {}
    for spec in args.usergroup:
        name, _, users = spec.partition("=")
        if not name:
            parser.error(f"bad --usergroup {spec!r}")
        groups[name] = [u for u in users.split(",") if u]

    standin = SlackStandIn(args.host, args.port, groups, token=args.token).start()
    if args.post_rate:
        standin.limit_posts(args.post_rate)
    print(f"Slack stand-in listening: {standin.url}", flush=True)
    print(f"response_url example: {standin.response_url('demo')}", flush=True)
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    seen = 0
    try:
        while not stop.wait(0.2):
            calls = standin.calls
            if not args.quiet:
                for call in calls[seen:]:
                    status = "ok" if call.ok else f"error={call.error}"
                    where = call.key or call.payload.get("channel") or ""
                    print(f"{call.method} {where} {status} {call.text[:80]!r}", flush=True)
            seen = len(calls)
    finally:
        standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
