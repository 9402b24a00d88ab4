"""Slack's side of the bot's endpoint: signed commands, clicks and views, and reading the answers.

Shared by the tests and the benchmarks (benchmarks/harness.py).
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import requests
from slack_sdk.signature import SignatureVerifier

API_APP_ID = "A0ADDTOLIB"
VERIFICATION_TOKEN = "legacy-verification-token"
TEAM_DOMAIN = "demo"


def command_fields(
    text: str,
    *,
    response_url: str,
    trigger_id: str,
    user_id: str = "U0USER",
    user_name: str = "alice",
    channel_id: str = "C0GENERAL",
    channel_name: str = "general",
    team_id: str = "T0001",
    command: str = "/addtolib",
) -> dict[str, str]:
    """A slash command as Slack sends it: the HTTP form's fields, or a Socket Mode payload."""
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "team_domain": TEAM_DOMAIN,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name,
        "command": command,
        "text": text,
        "api_app_id": API_APP_ID,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }


def ack_text(response: requests.Response) -> str:
    """What an acknowledgement (its HTTP 200 body) shows the user: Bolt answers JSON or text."""
    try:
        body = response.json()
    except ValueError:
        return response.text
    return body.get("text", "") if isinstance(body, dict) else ""


def button_value(message: Any, action_id: str) -> str | None:
    """The value of the button ``action_id`` in a message, or None.

    ``message`` is a message payload, or a recorded call holding one: a SlackCall, or the
    stand-in's JSON of one (a dict with a ``payload``).
    """
    payload = message.get("payload", message) if isinstance(message, dict) else message.payload
    for block in payload.get("blocks") or []:
        elements = list(block.get("elements") or [])
        if block.get("accessory"):
            elements.append(block["accessory"])
        for element in elements:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return element.get("value")
    return None


class SlackSender:
    """Plays Slack's side of the Events/Interactivity endpoint.

    ``base_url`` is the bot's root (``http://127.0.0.1:PORT``) or its full events URL.
    With ``standin`` (a SlackStandIn), requests get a response_url on the stand-in by
    default, so posts to it are recorded; the URL used is ``resp.slack_response_url``.
    ``session`` (a requests.Session) carries every request, keeping connections alive.
    """

    def __init__(
        self,
        base_url: str,
        signing_secret: str,
        *,
        standin: Any = None,
        path: str = "/slack/events",
        timeout: float = 10.0,
        session: requests.Session | None = None,
    ) -> None:
        base_url = base_url.rstrip("/")
        self.url = base_url if base_url.endswith(path) else base_url + path
        self.signing_secret = signing_secret
        self.verifier = SignatureVerifier(signing_secret)
        self.standin = standin
        self.timeout = timeout
        self.session = session
        self._counter = itertools.count(1)

    # -- building blocks ---------------------------------------------------

    def sign(self, body: bytes | str, timestamp: int | None = None) -> dict[str, str]:
        """The X-Slack-Signature / X-Slack-Request-Timestamp headers for ``body``."""
        ts = str(int(time.time()) if timestamp is None else int(timestamp))
        body_str = body.decode() if isinstance(body, bytes) else body
        return {
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": self.verifier.generate_signature(timestamp=ts, body=body_str),
        }

    def new_response_url(self, prefix: str = "r") -> str:
        """A fresh response_url (on the stand-in when there is one)."""
        n = next(self._counter)
        key = f"{prefix}{n}-{uuid.uuid4().hex[:8]}"
        if self.standin is not None:
            return self.standin.response_url(key)
        return f"https://hooks.slack.com/commands/T0001/{n}/{key}"

    @staticmethod
    def trigger_id() -> str:
        return f"{int(time.time())}.{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex}"

    def raw(self, body: bytes | str, headers: dict[str, str] | None = None) -> requests.Response:
        """POST ``body`` as-is with only ``headers`` (no signing): forged or malformed requests."""
        data = body.encode() if isinstance(body, str) else body
        poster = self.session or requests
        return poster.post(self.url, data=data, headers=headers or {}, timeout=self.timeout)

    def signed_form(
        self,
        fields: dict[str, str],
        *,
        headers: dict[str, str] | None = None,
        timestamp: int | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """``fields`` form-encoded, and the headers that sign them: a request ready to send."""
        body = urlencode(fields)
        all_headers = {"Content-Type": "application/x-www-form-urlencoded"}
        all_headers.update(self.sign(body, timestamp))
        all_headers.update(headers or {})
        return body.encode(), all_headers

    def send_form(
        self,
        fields: dict[str, str],
        *,
        headers: dict[str, str] | None = None,
        timestamp: int | None = None,
    ) -> requests.Response:
        """Form-encode ``fields``, sign them and POST them."""
        return self.raw(*self.signed_form(fields, headers=headers, timestamp=timestamp))

    # -- what Slack sends ----------------------------------------------------

    def command(
        self,
        text: str,
        *,
        response_url: str | None = None,
        trigger_id: str | None = None,
        extra_headers: dict[str, str] | None = None,
        timestamp: int | None = None,
        **fields: str,
    ) -> requests.Response:
        """A slash command invocation, with exactly the fields Slack sends.

        ``fields`` are command_fields' (user_id, channel_id, command, ...).
        """
        response_url = response_url or self.new_response_url("cmd")
        form = command_fields(
            text, response_url=response_url, trigger_id=trigger_id or self.trigger_id(), **fields
        )
        resp = self.send_form(form, headers=extra_headers, timestamp=timestamp)
        resp.slack_response_url = response_url  # type: ignore[attr-defined]
        return resp

    def block_actions_payload(
        self,
        action_id: str,
        value: str,
        *,
        user_id: str = "U0USER",
        user_name: str = "alice",
        channel_id: str = "C0GENERAL",
        channel_name: str = "general",
        team_id: str = "T0001",
        response_url: str | None = None,
        message: dict[str, Any] | None = None,
        container: dict[str, Any] | None = None,
        block_id: str = "b",
        action_ts: str | None = None,
        button_text: str | None = None,
    ) -> dict[str, Any]:
        """The ``payload`` JSON Slack sends when a button is clicked."""
        now = time.time()
        if container is None:
            if message is not None:
                container = {
                    "type": "message",
                    "message_ts": message.get("ts") or f"{now:.6f}",
                    "channel_id": channel_id,
                    "is_ephemeral": False,
                }
            else:
                container = {
                    "type": "message",
                    "message_ts": f"{now:.6f}",
                    "channel_id": channel_id,
                    "is_ephemeral": True,
                }
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": team_id},
            "api_app_id": API_APP_ID,
            "token": VERIFICATION_TOKEN,
            "container": container,
            "trigger_id": self.trigger_id(),
            "team": {"id": team_id, "domain": TEAM_DOMAIN},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel_id, "name": channel_name},
            "state": {"values": {}},
            "response_url": response_url or self.new_response_url("act"),
            "actions": [
                {
                    "action_id": action_id,
                    "block_id": block_id,
                    "text": {"type": "plain_text", "text": button_text or action_id, "emoji": True},
                    "value": value,
                    "type": "button",
                    "action_ts": action_ts or f"{now:.6f}",
                }
            ],
        }
        if message is not None:
            payload["message"] = message
        return payload

    def click(
        self,
        action_id: str,
        value: str,
        *,
        headers: dict[str, str] | None = None,
        timestamp: int | None = None,
        **options: Any,
    ) -> requests.Response:
        """A button click (block_actions), form field ``payload`` holding the JSON.

        ``options`` are block_actions_payload's (user_id, channel_id, message, ...).
        """
        payload = self.block_actions_payload(action_id, value, **options)
        resp = self.send_form(
            {"payload": json.dumps(payload)}, headers=headers, timestamp=timestamp
        )
        resp.slack_response_url = payload["response_url"]  # type: ignore[attr-defined]
        return resp

    # -- shortcuts and modals ------------------------------------------------

    def _user(self, user_id: str, team_id: str) -> dict[str, Any]:
        return {
            "id": user_id,
            "username": user_id.lower(),
            "name": user_id.lower(),
            "team_id": team_id,
        }

    def interaction(self, payload: dict[str, Any], **kwargs: Any) -> requests.Response:
        """Sign and POST an interaction ``payload`` (form field ``payload``), as Slack does."""
        return self.send_form({"payload": json.dumps(payload)}, **kwargs)

    def shortcut(
        self,
        trigger_id: str,
        *,
        callback_id: str = "addtolib_shortcut",
        user_id: str = "U0USER",
        team_id: str = "T0001",
    ) -> requests.Response:
        """A global shortcut (type ``shortcut``): no channel, a trigger id for views.open."""
        return self.interaction(
            {
                "type": "shortcut",
                "token": VERIFICATION_TOKEN,
                "action_ts": f"{time.time():.6f}",
                "team": {"id": team_id, "domain": TEAM_DOMAIN},
                "user": self._user(user_id, team_id),
                "is_enterprise_install": False,
                "enterprise": None,
                "callback_id": callback_id,
                "trigger_id": trigger_id,
            }
        )

    def message_shortcut(
        self,
        trigger_id: str,
        text: str,
        *,
        callback_id: str = "addtolib_message",
        user_id: str = "U0USER",
        channel_id: str = "C0GENERAL",
        team_id: str = "T0001",
    ) -> requests.Response:
        """A message shortcut (type ``message_action``) on a message holding ``text``."""
        ts = f"{time.time():.6f}"
        return self.interaction(
            {
                "type": "message_action",
                "token": VERIFICATION_TOKEN,
                "action_ts": ts,
                "team": {"id": team_id, "domain": TEAM_DOMAIN},
                "user": self._user(user_id, team_id),
                "channel": {"id": channel_id, "name": "general"},
                "is_enterprise_install": False,
                "enterprise": None,
                "callback_id": callback_id,
                "trigger_id": trigger_id,
                "message_ts": ts,
                "message": {"type": "message", "user": "U0CMSBOT", "ts": ts, "text": text},
                "response_url": self.new_response_url("msg"),
            }
        )

    def block_suggestion(
        self,
        view: dict[str, Any],
        value: str,
        *,
        action_id: str = "library",
        block_id: str = "library",
        user_id: str = "U0USER",
        team_id: str = "T0001",
    ) -> requests.Response:
        """The options request of an external_select in ``view`` as the user types ``value``."""
        return self.interaction(
            {
                "type": "block_suggestion",
                "user": self._user(user_id, team_id),
                "container": {"type": "view", "view_id": view.get("id")},
                "api_app_id": API_APP_ID,
                "token": VERIFICATION_TOKEN,
                "action_id": action_id,
                "block_id": block_id,
                "value": value,
                "team": {"id": team_id, "domain": TEAM_DOMAIN},
                "enterprise": None,
                "is_enterprise_install": False,
                "view": view,
            }
        )

    @staticmethod
    def form_values(
        library: str | None = None,
        assets: str | None = None,
        channel: str | None = None,
        when: int | None = None,
    ) -> dict[str, Any]:
        """``view.state.values`` of the addtolib form as Slack reports it on submission
        (`when`: the datetimepicker's UNIX time, SPEC 15)."""
        option = None
        if library is not None:
            option = {"text": {"type": "plain_text", "text": library}, "value": library}
        return {
            "when": {"when": {"type": "datetimepicker", "selected_date_time": when}},
            "library": {"library": {"type": "external_select", "selected_option": option}},
            "assets": {"assets": {"type": "plain_text_input", "value": assets}},
            "channel": {
                "channel": {"type": "conversations_select", "selected_conversation": channel}
            },
        }

    def view_submission(
        self,
        view: dict[str, Any],
        values: dict[str, Any] | None = None,
        *,
        user_id: str = "U0USER",
        team_id: str = "T0001",
    ) -> requests.Response:
        """The user pressed the view's submit button (``values``: the inputs' state)."""
        submitted = {**view, "state": {"values": values or {}}}
        return self.interaction(
            {
                "type": "view_submission",
                "team": {"id": team_id, "domain": TEAM_DOMAIN},
                "user": self._user(user_id, team_id),
                "api_app_id": API_APP_ID,
                "token": VERIFICATION_TOKEN,
                "trigger_id": self.trigger_id(),
                "view": submitted,
                "response_urls": [],
                "is_enterprise_install": False,
                "enterprise": None,
            }
        )

    def view_closed(
        self, view: dict[str, Any], *, user_id: str = "U0USER", team_id: str = "T0001"
    ) -> requests.Response:
        """The user closed a view that asked for ``notify_on_close``."""
        return self.interaction(
            {
                "type": "view_closed",
                "team": {"id": team_id, "domain": TEAM_DOMAIN},
                "user": self._user(user_id, team_id),
                "api_app_id": API_APP_ID,
                "token": VERIFICATION_TOKEN,
                "view": view,
                "is_cleared": False,
                "is_enterprise_install": False,
                "enterprise": None,
            }
        )
