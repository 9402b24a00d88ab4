"""Plays Slack's side for the console: signed requests into the Bolt app, messages out of it."""

from __future__ import annotations

import itertools
import json
import re
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard
from urllib.parse import urlencode

from slack_bolt import App, BoltRequest
from slack_sdk.signature import SignatureVerifier

from bot.slack.wiring import Services
from bot.slack_standin import BOT_ID, BOT_USER_ID, SlackCall, SlackStandIn
from bot.slack_standin.events import (
    app_home_opened,
    event_callback,
    function_executed,
    new_execution_id,
    new_execution_token,
)

TEAM_ID = "T0DEMO"
TEAM_DOMAIN = "demo"
API_APP_ID = "A0ADDTOLIB"
VERIFICATION_TOKEN = "console-verification-token"
COMMAND = "/addtolib"
PROGRESS = re.compile(r"[▓░]+ (\d+)/(\d+)")
MESSAGE_METHODS = ("response_url", "chat.postMessage", "chat.postEphemeral", "chat.update")
HOME_METHOD = "views.publish"
STEP_METHODS = ("functions.completeSuccess", "functions.completeError")


@dataclass(eq=False)
class Shown:
    """A message as the console shows it, and where it lives in "Slack"."""

    payload: dict[str, Any]  # text, blocks, ...
    where: str  # "ephemeral", "channel", "thread", "dm" or "home" (the App Home tab)
    channel: str
    ts: str
    owner: str | None = None  # who sees an ephemeral message
    thread_ts: str | None = None
    replaces: Shown | None = None  # the message this one replaced
    edited: bool = False  # via chat.update
    buttons: list[Button] = field(default_factory=list)
    gone: bool = False  # replaced or deleted since: its buttons are stale


@dataclass(eq=False)
class Button:
    """A button the console numbered, and the message it sits on."""

    number: int
    action_id: str
    block_id: str
    value: str
    label: str
    style: str | None
    message: Shown


@dataclass(frozen=True)
class Progress:
    """A progress line the bot posted (▓▓▓░░░ 400/1000)."""

    done: int
    total: int
    text: str


@dataclass(frozen=True)
class Note:
    """Something to tell the console user that is not a Slack message."""

    text: str


@dataclass
class _Origin:
    """Who a response_url was issued to, and which message it replaces."""

    user: str
    channel: str
    target: Shown | None = None


class Session:
    """Sends slash commands and button clicks through the app's real dispatch path."""

    def __init__(
        self,
        app: App,
        services: Services,
        standin: SlackStandIn,
        signing_secret: str,
        user: str,
        channel: str,
        channel_names: dict[str, str],
    ):
        self.app = app
        self.services = services
        self.standin = standin
        self.verifier = SignatureVerifier(signing_secret)
        self.user = user
        self.channel = channel
        self.channel_names = channel_names
        self.buttons: dict[int, Button] = {}
        self._numbers = itertools.count(1)
        self._keys = itertools.count(1)
        self._fake_ts = itertools.count(1)
        self._origins: dict[str, _Origin] = {}
        self._by_ts: dict[tuple[str, str], Shown] = {}
        self._seen = 0  # from the start: what the start-up sweep reported shows too
        self._home: Shown | None = None  # the App Home as last published for the user
        self._trigger: str | None = None  # the last Home click's trigger id (Add assets)

    # -- input -----------------------------------------------------------------------------

    def command(self, text: str) -> list[Shown | Note]:
        """`/addtolib text` as Slack sends it; returns what the acknowledgement showed."""
        key = self._new_key("cmd", _Origin(self.user, self.channel))
        fields = {
            "token": VERIFICATION_TOKEN,
            "team_id": TEAM_ID,
            "team_domain": TEAM_DOMAIN,
            "channel_id": self.channel,
            "channel_name": self.channel_name(self.channel),
            "user_id": self.user,
            "user_name": user_name(self.user),
            "command": COMMAND,
            "text": text,
            "api_app_id": API_APP_ID,
            "is_enterprise_install": "false",
            "response_url": self.standin.response_url(key),
            "trigger_id": _trigger_id(),
        }
        return self._dispatch(urlencode(fields), key)

    def home(self) -> list[Shown | Note]:
        """Open the app's Home tab: Slack's app_home_opened event, signed, as the Events API
        sends it (the bot publishes the Home with views.publish; poll() shows it)."""
        body = json.dumps(event_callback(app_home_opened(self.user)))
        response = self.app.dispatch(BoltRequest(body=body, headers=self._signed(body, "json")))
        if response.status != 200:
            return [Note(f"Slack got HTTP {response.status} from the app: {response.body}")]
        return []

    def workflow(self, library: str, assets: str, requester: str) -> list[Shown | Note]:
        """Workflow Builder runs the step addtolib_add_assets (docs/SPEC.md §13): Slack's
        function_executed event, signed, with the inputs and a fresh execution token."""
        execution_id, token = new_execution_id(), new_execution_token()
        self.standin.start_execution(execution_id, token)
        inputs = {"library": library, "asset_ids": assets, "requester": requester}
        if self.channel[:1] in "CG":
            inputs["channel"] = self.channel
        event = function_executed(inputs, execution_id=execution_id, token=token)
        body = json.dumps(event_callback(event, team_id=TEAM_ID))
        response = self.app.dispatch(BoltRequest(body=body, headers=self._signed(body, "json")))
        if response.status != 200:
            return [Note(f"Slack got HTTP {response.status} from the app: {response.body}")]
        shown = ", ".join(f"{k}={v!r}" for k, v in inputs.items())
        return [Note(f"Workflow Builder ran the step {execution_id} ({shown}).")]

    def opened_by_click(self) -> dict[str, Any] | None:
        """The modal the last Home click opened (its `Add assets`), once."""
        trigger, self._trigger = self._trigger, None
        return self.standin.views.opened_by(trigger) if trigger else None

    def press(self, number: int) -> list[Shown | Note]:
        """Click button `number` as the current user (a block_actions payload)."""
        button = self.buttons.get(number)
        if button is None:
            return [Note(f"There is no button [{number}].")]
        notes: list[Shown | Note] = []
        shown = button.message
        if shown.where == "home":
            if shown.owner != self.user:
                notes.append(Note(f"That is @{shown.owner}'s Home; clicking it as you anyway."))
            payload = self._home_actions(button)
            return notes + self._dispatch(urlencode({"payload": json.dumps(payload)}), "")
        if shown.gone:
            notes.append(
                Note(
                    f"[{number}] sat on a message that has since been replaced; "
                    "clicking it anyway, as a late or double click would."
                )
            )
        if shown.where == "ephemeral" and shown.owner != self.user:
            notes.append(
                Note(f"In Slack only @{shown.owner} sees that message; clicking it anyway.")
            )
        key = self._new_key("act", _Origin(self.user, shown.channel, shown))
        payload = self._block_actions(button, self.standin.response_url(key))
        return notes + self._dispatch(urlencode({"payload": json.dumps(payload)}), key)

    def _block_actions(self, button: Button, response_url: str) -> dict[str, Any]:
        shown = button.message
        container: dict[str, Any] = {
            "type": "message",
            "message_ts": shown.ts,
            "channel_id": shown.channel,
            "is_ephemeral": shown.where == "ephemeral",
        }
        if shown.thread_ts:
            container["thread_ts"] = shown.thread_ts
        text = {"type": "plain_text", "text": button.label, "emoji": True}
        action = {
            "action_id": button.action_id,
            "block_id": button.block_id,
            "text": text,
            "value": button.value,
            "type": "button",
            "action_ts": f"{time.time():.6f}",
        }
        if button.style:
            action["style"] = button.style
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": {
                "id": self.user,
                "username": user_name(self.user),
                "name": user_name(self.user),
                "team_id": TEAM_ID,
            },
            "api_app_id": API_APP_ID,
            "token": VERIFICATION_TOKEN,
            "container": container,
            "trigger_id": _trigger_id(),
            "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": shown.channel, "name": self.channel_name(shown.channel)},
            "state": {"values": {}},
            "response_url": response_url,
            "actions": [action],
        }
        if shown.where != "ephemeral":
            payload["message"] = {
                "type": "message",
                "user": BOT_USER_ID,
                "bot_id": BOT_ID,
                "ts": shown.ts,
                **({"thread_ts": shown.thread_ts} if shown.thread_ts else {}),
                **shown.payload,
            }
        return payload

    def _home_actions(self, button: Button) -> dict[str, Any]:
        """A click on the Home, as Slack sends it: the view, no response_url, a trigger id."""
        payload = self._block_actions(button, "")
        del payload["response_url"], payload["channel"]
        payload.pop("message", None)
        view = button.message.payload.get("view") or {}
        payload["container"] = {"type": "view", "view_id": view.get("id", "")}
        payload["view"] = view
        self._trigger = payload["trigger_id"] = self.standin.new_trigger()
        return payload

    def _signed(self, body: str, kind: str = "form") -> dict[str, str | Sequence[str]]:
        timestamp = str(int(time.time()))
        signature = self.verifier.generate_signature(timestamp=timestamp, body=body)
        return {
            "content-type": "application/json"
            if kind == "json"
            else "application/x-www-form-urlencoded",
            "x-slack-request-timestamp": timestamp,
            "x-slack-signature": signature or "",
        }

    def _dispatch(self, body: str, key: str) -> list[Shown | Note]:
        headers = self._signed(body)
        response = self.app.dispatch(BoltRequest(body=body, headers=headers))
        if response.status != 200:
            return [Note(f"Slack got HTTP {response.status} from the app: {response.body}")]
        if not response.body:
            return []
        try:
            message = json.loads(response.body)
        except ValueError:
            message = {"text": response.body}
        return [self._from_response_url(key, message)]

    def _new_key(self, prefix: str, origin: _Origin) -> str:
        key = f"{prefix}{next(self._keys)}-{uuid.uuid4().hex[:8]}"
        self._origins[key] = origin
        return key

    # -- output ----------------------------------------------------------------------------

    def idle(self, timeout: float) -> bool:
        """Wait up to `timeout` s for the bot's jobs; True once none is running."""
        return self.services.wait_idle(timeout=timeout)

    def poll(self) -> list[Shown | Progress | Note]:
        """Everything the bot sent to "Slack" since the last poll, in order."""
        calls = self.standin.calls
        new, self._seen = calls[self._seen :], len(calls)
        events: list[Shown | Progress | Note] = []
        for call in new:
            event = self._event(call)
            if event is not None:
                events.append(event)
        return events

    def _event(self, call: SlackCall) -> Shown | Progress | Note | None:
        if call.method == HOME_METHOD:
            return self._published(call)
        if call.method in STEP_METHODS:
            return _completion(call)
        if call.method not in MESSAGE_METHODS and call.method != "chat.delete":
            return None
        where = f"#{self.channel_name(call.channel)}" if call.channel else "response_url"
        if call.rejected:
            return Note(f"Slack refused {call.method} ({where}): {call.error}")
        payload = dict(call.payload)
        match = PROGRESS.search(payload.get("text") or "")
        if match:
            if call.method == "response_url" and payload.get("replace_original"):
                target = self._origins[call.key].target if call.key in self._origins else None
                if target is not None:
                    target.gone = True
            return Progress(int(match.group(1)), int(match.group(2)), payload["text"])
        if call.method == "response_url" and payload.get("delete_original"):
            origin = self._origins.get(call.key or "")
            if origin is not None and origin.target is not None:
                origin.target.gone = True
            return Note("The bot deleted the message that button was on.")
        if call.method == "response_url":
            return self._from_response_url(call.key or "", payload)
        # A chat.* call the stand-in accepted names its channel, and its answer a ts.
        assert call.channel is not None and call.ts is not None
        if call.method == "chat.delete":
            old = self._by_ts.get((call.channel, call.ts))  # its answer's ts is the one asked
            if old is not None:
                old.gone = True
            return Note(f"The bot deleted a message in {where}.")
        if call.method == "chat.update":
            return self._updated(call, payload)
        if call.method == "chat.postEphemeral":
            shown = Shown(payload, "ephemeral", call.channel, call.ts, owner=payload.get("user"))
        else:
            thread_ts = payload.get("thread_ts")
            where = "thread" if thread_ts else "dm" if call.channel[:1] in "UWD" else "channel"
            shown = Shown(payload, where, call.channel, call.ts, thread_ts=thread_ts)
            self._by_ts[(call.channel, call.ts)] = shown
        return self._numbered(shown)

    def _from_response_url(self, key: str, payload: dict[str, Any]) -> Shown:
        origin = self._origins.get(key) or _Origin(self.user, self.channel)
        target = origin.target
        if payload.get("replace_original") and target is not None:
            target.gone = True
            shown = Shown(
                payload,
                target.where,
                target.channel,
                target.ts,
                owner=target.owner,
                thread_ts=target.thread_ts,
                replaces=target,
            )
            if target.where == "ephemeral" and payload.get("response_type") == "in_channel":
                shown.where, shown.owner = "channel", None
        elif payload.get("response_type") == "in_channel":
            shown = Shown(payload, "channel", origin.channel, self._next_fake_ts())
        else:
            shown = Shown(
                payload, "ephemeral", origin.channel, self._next_fake_ts(), owner=origin.user
            )
        origin.target = shown
        if shown.where != "ephemeral":
            self._by_ts[(shown.channel, shown.ts)] = shown
        return self._numbered(shown)

    def _updated(self, call: SlackCall, payload: dict[str, Any]) -> Shown:
        channel, ts = call.channel or "", payload.get("ts") or ""  # an accepted update has both
        old = self._by_ts.get((channel, ts))
        base = dict(old.payload) if old else {}
        base.update({k: payload[k] for k in ("text", "blocks") if k in payload})
        where = old.where if old else "channel"
        shown = Shown(base, where, channel, ts, replaces=old, edited=True)
        if old is not None:
            old.gone = True
            shown.thread_ts, shown.owner = old.thread_ts, old.owner
        self._by_ts[(shown.channel, shown.ts)] = shown
        return self._numbered(shown)

    def _published(self, call: SlackCall) -> Shown | Note | None:
        """The current user's App Home, as the bot published it (others' are not shown)."""
        user = call.payload.get("user_id")
        if user != self.user:
            return None
        if call.rejected:
            return Note(f"Slack refused views.publish (your Home): {call.error}")
        view = self.standin.views.home(user) or call.payload.get("view") or {}
        payload = {"text": "App Home", "blocks": view.get("blocks") or [], "view": view}
        shown = Shown(payload, "home", "home", view.get("id", ""), owner=user, replaces=self._home)
        if self._home is not None:
            self._home.gone = True
        self._home = shown
        return self._numbered(shown)

    def _numbered(self, shown: Shown) -> Shown:
        for block, element in buttons_of(shown.payload.get("blocks") or []):
            button = Button(
                number=next(self._numbers),
                action_id=element.get("action_id", ""),
                block_id=block.get("block_id", ""),
                value=element.get("value", ""),
                label=(element.get("text") or {}).get("text", ""),
                style=element.get("style"),
                message=shown,
            )
            shown.buttons.append(button)
            self.buttons[button.number] = button
        return shown

    def _next_fake_ts(self) -> str:
        return f"1800000000.{next(self._fake_ts):06d}"

    # -- names -----------------------------------------------------------------------------

    def channel_name(self, channel: str | None) -> str:
        if not channel:
            return "?"
        return self.channel_names.get(channel, channel)

    def parent(self, shown: Shown) -> Shown | None:
        """The message a thread reply answers, when the console saw it."""
        if not shown.thread_ts:
            return None
        return self._by_ts.get((shown.channel, shown.thread_ts))


def buttons_of(blocks: Iterable[Mapping]) -> list[tuple[Mapping, Mapping]]:
    """(block, button) pairs in display order: actions elements and section accessories."""
    found: list[tuple[Mapping, Mapping]] = []
    for block in blocks or ():
        if block.get("type") == "actions":
            found.extend((block, e) for e in block.get("elements") or () if is_button(e))
        elif block.get("type") == "section" and is_button(block.get("accessory")):
            found.append((block, block["accessory"]))
    return found


def is_button(element: object) -> TypeGuard[Mapping[str, Any]]:
    return isinstance(element, Mapping) and element.get("type") == "button"


def user_name(user_id: str) -> str:
    """A display name for a Slack user id: U0DEMO -> demo."""
    name = user_id[2:] if user_id[:2] in ("U0", "W0") else user_id
    return name.lower() or user_id.lower()


def _trigger_id() -> str:
    return f"{int(time.time())}.{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex}"


class ModalSession:
    """The console's side of the shortcuts and the modal, through the app's dispatch path."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def open(self, message_text: str | None = None) -> dict[str, Any] | None:
        """Run the global shortcut (a message shortcut with `message_text`): the opened view."""
        session = self.session
        trigger = session.standin.new_trigger()
        payload: dict[str, Any] = {
            "type": "shortcut" if message_text is None else "message_action",
            "callback_id": "addtolib_shortcut" if message_text is None else "addtolib_message",
            "trigger_id": trigger,
            "action_ts": f"{time.time():.6f}",
        }
        if message_text is not None:
            ts = session._next_fake_ts()
            payload["channel"] = {
                "id": session.channel,
                "name": session.channel_name(session.channel),
            }
            payload["message"] = {
                "type": "message",
                "user": "U0CMSBOT",
                "ts": ts,
                "text": message_text,
            }
            payload["message_ts"] = ts
        self._send(payload)
        session.services.wait_idle(timeout=10)
        return session.standin.views.opened_by(trigger)

    def suggest(self, view: dict[str, Any], query: str) -> list[dict[str, Any]]:
        """The type-ahead's options for `query`."""
        payload = {
            "type": "block_suggestion",
            "action_id": "library",
            "block_id": "library",
            "value": query,
            "container": {"type": "view", "view_id": view["id"]},
            "view": view,
        }
        return self._send(payload).get("options") or []

    def submit(self, view: dict[str, Any], values: dict[str, Any] | None = None) -> dict[str, Any]:
        """Press the view's submit button; the app's answer (Slack applies an update)."""
        payload = {"type": "view_submission", "view": {**view, "state": {"values": values or {}}}}
        answer = self._send(payload)
        if answer.get("response_action") == "update":
            self.session.standin.views.submitted(view["id"], answer["view"])
        return answer

    def close(self, view: dict[str, Any]) -> None:
        self._send({"type": "view_closed", "view": view, "is_cleared": False})
        self.session.standin.views.close(view["id"])

    def current(self, view: dict[str, Any]) -> dict[str, Any] | None:
        """The view as it is now (after a views.update)."""
        return self.session.standin.views.view(view["id"])

    def _send(self, payload: dict[str, Any]) -> dict[str, Any]:
        session = self.session
        user = {"id": session.user, "username": user_name(session.user), "team_id": TEAM_ID}
        full = {
            "user": user,
            "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
            "api_app_id": API_APP_ID,
            "token": VERIFICATION_TOKEN,
            **payload,
        }
        body = urlencode({"payload": json.dumps(full)})
        timestamp = str(int(time.time()))
        headers: dict[str, Any] = {
            "content-type": "application/x-www-form-urlencoded",
            "x-slack-request-timestamp": timestamp,
            "x-slack-signature": session.verifier.generate_signature(
                timestamp=timestamp, body=body
            ),
        }
        response = session.app.dispatch(BoltRequest(body=body, headers=headers))
        try:
            return json.loads(response.body) if response.body else {}
        except ValueError:
            return {}


def _completion(call: SlackCall) -> Note:
    """How Workflow Builder took the step's completion (its outputs, or its error)."""
    execution = call.payload.get("function_execution_id")
    if call.rejected:
        return Note(f"Workflow Builder refused {call.method} for {execution}: {call.error}")
    if call.method == "functions.completeSuccess":
        outputs = call.payload.get("outputs") or {}
        shown = ", ".join(f"{k}={v}" for k, v in outputs.items())
        return Note(f"Workflow Builder: step {execution} completed; outputs: {shown}")
    return Note(f"Workflow Builder: step {execution} failed: {call.payload.get('error')}")
