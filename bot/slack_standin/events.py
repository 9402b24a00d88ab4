"""Events API deliveries as Slack makes them: signed HTTP posts and Socket Mode envelopes.

Slack wraps each event in an `event_callback` with a unique `event_id`; a delivery that
failed (no 2xx within 3 s, a connection error) is retried up to three times with the same
`event_id` and the headers `X-Slack-Retry-Num` (1, 2, 3) and `X-Slack-Retry-Reason` (e.g.
`http_timeout`) (docs.slack.dev/apis/events-api, "Retries"). Over Socket Mode the same
payload comes in an `events_api` envelope with `retry_attempt` / `retry_reason`.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import requests
from slack_sdk.signature import SignatureVerifier

from bot.slack_standin.server import TEAM_ID
from bot.slack_standin.socket_mode import APP_ID, Envelope, SocketModeStandIn

__all__ = [
    "app_home_opened",
    "event_callback",
    "function_executed",
    "new_event_id",
    "send_event",
    "send_socket_event",
]

#: The custom step manifest.yml declares (docs/SPEC.md §13).
STEP_CALLBACK_ID = "addtolib_add_assets"


def new_event_id() -> str:
    """An id shaped like Slack's (`Ev` and letters/digits)."""
    return "Ev" + uuid.uuid4().hex[:10].upper()


def app_home_opened(user: str, tab: str = "home", view: dict | None = None) -> dict[str, Any]:
    """The `app_home_opened` event of `user` opening the app's Home (or Messages) tab."""
    event: dict[str, Any] = {
        "type": "app_home_opened",
        "user": user,
        "channel": "D" + user[1:],
        "tab": tab,
        "event_ts": f"{time.time():.6f}",
    }
    if view is not None:
        event["view"] = view
    return event


def function_executed(
    inputs: dict[str, Any],
    *,
    execution_id: str | None = None,
    token: str | None = None,
    callback_id: str = STEP_CALLBACK_ID,
) -> dict[str, Any]:
    """The `function_executed` event of Workflow Builder running the app's custom step: the
    inputs, the execution's id and its short-lived `bot_access_token` (docs.slack.dev, "Custom
    steps": events/function_executed). Register the token with the stand-in's
    `start_execution` so that it is accepted."""
    return {
        "type": "function_executed",
        "function": {
            "id": "Fn0ADDASSETS",
            "callback_id": callback_id,
            "title": "Add assets to a library",
            "description": "Add Uplynk assets to a library, after the requester confirms",
            "type": "app",
            "app_id": APP_ID,
            "date_created": 1_700_000_000,
            "date_updated": 1_700_000_000,
            "date_deleted": 0,
        },
        "inputs": inputs,
        "function_execution_id": execution_id or new_execution_id(),
        "workflow_execution_id": "Wf" + uuid.uuid4().hex[:10].upper(),
        "event_ts": f"{time.time():.6f}",
        "bot_access_token": token or new_execution_token(),
    }


def new_execution_id() -> str:
    """An id shaped like Slack's function execution ids (`Fx` and letters/digits)."""
    return "Fx" + uuid.uuid4().hex[:10].upper()


def new_execution_token() -> str:
    """A workflow-scoped bot token shaped like Slack's (`xwfp-`)."""
    return "xwfp-" + uuid.uuid4().hex + "-" + uuid.uuid4().hex[:12]


def event_callback(
    event: dict[str, Any],
    *,
    event_id: str | None = None,
    team_id: str = TEAM_ID,
    api_app_id: str = APP_ID,
) -> dict[str, Any]:
    """The outer `event_callback` body of one event."""
    return {
        "token": "standin-verification-token",
        "team_id": team_id,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or new_event_id(),
        "event_time": int(time.time()),
        "authorizations": [
            {"team_id": team_id, "user_id": "UBOT", "is_bot": True, "is_enterprise_install": False}
        ],
        "is_ext_shared_channel": False,
    }


def send_event(
    event: dict[str, Any],
    *,
    url: str,
    signing_secret: str,
    event_id: str | None = None,
    retry_num: int | None = None,
    retry_reason: str = "http_timeout",
    team_id: str = TEAM_ID,
    timeout: float = 10.0,
    session: requests.Session | None = None,
) -> requests.Response:
    """POST `event` to the app's Events API URL, signed as Slack signs it. `retry_num` adds the
    retry headers of Slack's redelivery."""
    body = event_callback(event, event_id=event_id, team_id=team_id)
    raw = json.dumps(body)
    timestamp = str(int(time.time()))
    signature = SignatureVerifier(signing_secret).generate_signature(timestamp=timestamp, body=raw)
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature or "",
    }
    if retry_num is not None:
        headers["X-Slack-Retry-Num"] = str(retry_num)
        headers["X-Slack-Retry-Reason"] = retry_reason
    poster = session or requests
    return poster.post(url, data=raw.encode(), headers=headers, timeout=timeout)


def send_socket_event(
    socket_mode: SocketModeStandIn,
    event: dict[str, Any],
    *,
    event_id: str | None = None,
    retry_num: int | None = None,
    retry_reason: str = "timeout",
    envelope_id: str | None = None,
    team_id: str = TEAM_ID,
) -> Envelope:
    """Deliver `event` as an `events_api` envelope on the app's Socket Mode connection (a
    first delivery has retry_attempt 0, as Slack sends it)."""
    body = event_callback(event, event_id=event_id, team_id=team_id)
    return socket_mode.send(
        "events_api",
        body,
        envelope_id=envelope_id,
        accepts_response_payload=False,
        retry_attempt=retry_num or 0,
        retry_reason=retry_reason if retry_num else "",
    )
