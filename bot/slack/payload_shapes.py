"""What each kind of Slack payload must hold; one lacking it gets a 400 before any listener."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import BoltRequest, BoltResponse
from slack_bolt.middleware import Middleware

log = logging.getLogger(__name__)

#: The body of every refusal: the same whether our check or Bolt found the payload unreadable.
REFUSAL = json.dumps({"ok": False, "error": "malformed_payload"})


def _text(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def _url(value: Any) -> bool:
    # Slack's response_url is always https://hooks.slack.com/...; anything but a URL makes
    # the job's answer raise in slack_sdk's WebhookClient ("unknown url type").
    return isinstance(value, str) and value.startswith(("https://", "http://"))


def _optional_text(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _optional_dict(value: Any) -> bool:
    return value is None or isinstance(value, dict)


def _user(body: dict, found: list[str]) -> None:
    user = body.get("user")
    if not isinstance(user, dict) or not _text(user.get("id")):
        found.append("user.id")
    elif not _optional_text(user.get("team_id")):
        found.append("user.team_id")


def _team(body: dict, found: list[str]) -> None:
    team = body.get("team")
    if not _optional_dict(team) or not _optional_text((team or {}).get("id")):
        found.append("team.id")


def _view(body: dict, found: list[str], *, submitted: bool) -> None:
    view = body.get("view")
    if not isinstance(view, dict):
        found.append("view")
        return
    # Bolt reads view.callback_id to route, and view.type on every view_submission
    # (is_workflow_step_save in slack_bolt/request/payload_utils.py): a KeyError without them.
    needed = ("type", "callback_id", "id") if submitted else ("type", "callback_id")
    found += [f"view.{key}" for key in needed if not _text(view.get(key))]
    if not _optional_text(view.get("private_metadata")):
        found.append("view.private_metadata")
    if submitted and not _state_values(view.get("state", {})):
        found.append("view.state.values")


def _state_values(state: Any) -> bool:
    """view.state.values as Slack sends it: block id -> action id -> the input's value."""
    values = state.get("values", {}) if isinstance(state, dict) else None
    if not isinstance(values, dict):
        return False
    for block in values.values():
        if not isinstance(block, dict):
            return False
        for element in block.values():
            if not isinstance(element, dict):
                return False
            option = element.get("selected_option")
            if not (
                _optional_text(element.get("value"))
                and _optional_text(element.get("selected_conversation"))
                and _optional_dict(option)
                and _optional_text((option or {}).get("value"))
            ):
                return False
    return True


def _slash_command(body: dict, found: list[str]) -> None:
    found += [key for key in ("user_id", "channel_id", "team_id") if not _text(body.get(key))]
    if not _url(body.get("response_url")):
        found.append("response_url")  # every job answers there
    if not _optional_text(body.get("text")):
        found.append("text")


def _block_actions(body: dict, found: list[str]) -> None:
    _user(body, found)
    # Bolt hands a listener actions[0] (to_action in slack_bolt/request/payload_utils.py) and
    # routes on its action_id: an empty list is an IndexError there, a missing id a KeyError.
    actions = body.get("actions")
    first = actions[0] if isinstance(actions, list) and actions else None
    if not isinstance(first, dict) or not _text(first.get("action_id")):
        found.append("actions[0].action_id")
    elif not _optional_text(first.get("value")):
        found.append("actions[0].value")
    # A button in a message: every job answers through the response_url. One on the App
    # Home (a view) comes without one; its jobs answer on the Home and by direct message.
    container, view = body.get("container"), body.get("view")
    on_home = (
        isinstance(container, dict)
        and container.get("type") == "view"
        and isinstance(view, dict)
        and view.get("type") == "home"
    )
    if not on_home and not _url(body.get("response_url")):
        found.append("response_url")


def _block_suggestion(body: dict, found: list[str]) -> None:
    _user(body, found)
    if not _text(body.get("action_id")):
        found.append("action_id")
    if not _optional_text(body.get("value")):
        found.append("value")


def _view_submission(body: dict, found: list[str]) -> None:
    _user(body, found)
    _view(body, found, submitted=True)


def _view_closed(body: dict, found: list[str]) -> None:
    _user(body, found)
    _view(body, found, submitted=False)


def _shortcut(body: dict, found: list[str]) -> None:
    _user(body, found)
    _team(body, found)
    found += [key for key in ("trigger_id", "callback_id") if not _text(body.get(key))]


def _message_action(body: dict, found: list[str]) -> None:
    _shortcut(body, found)
    channel, message = body.get("channel"), body.get("message")
    if not _optional_dict(channel) or not _optional_text((channel or {}).get("id")):
        found.append("channel.id")
    if not _optional_dict(message) or not _optional_text((message or {}).get("text")):
        found.append("message.text")


def _bolt_only(body: dict, found: list[str]) -> None:
    """Kinds we have no listener for: only what Bolt itself indexes while routing them
    (slack_bolt/request/payload_utils.py), so that they reach its 404 as before."""
    kind = body.get("type")
    actions = body.get("actions")
    has_actions = isinstance(actions, list) and len(actions) > 0
    if kind == "interactive_message" and "callback_id" in body and not has_actions:
        found.append("actions")
    if kind == "workflow_step_edit" and "callback_id" in body and "workflow_step" not in body:
        found.append("workflow_step")
    if kind == "event_callback" and "event" in body and not isinstance(body["event"], dict):
        found.append("event")
    # Bolt's "Unhandled request" warning reads view.type and view.callback_id (logger/messages.py).
    if "view" in body and not isinstance(body["view"], dict):
        found.append("view")


#: Per kind (Bolt routes on `command` before `type`), what its listener reads.
NEEDS: dict[str, Callable[[dict, list[str]], None]] = {
    "slash command": _slash_command,
    "block_actions": _block_actions,
    "block_suggestion": _block_suggestion,
    "view_submission": _view_submission,
    "view_closed": _view_closed,
    "shortcut": _shortcut,
    "message_action": _message_action,
}


def kind(body: dict) -> str:
    """Which of NEEDS' kinds a payload is ('other' for any we have no listener for)."""
    if "command" in body:
        return "slash command"
    found = body.get("type")
    if isinstance(found, str) and found in NEEDS and found != "slash command":
        return found
    return "other"


def missing(body: dict) -> list[str]:
    """What `body` lacks for its kind, or holds with the wrong type (empty when well formed)."""
    found: list[str] = []
    what = kind(body)
    if what == "slash command" and not isinstance(body["command"], str):
        return ["command"]
    NEEDS.get(what, _bolt_only)(body, found)
    return found


def refusal(reason: str) -> BoltResponse:
    """HTTP 400 and one line at INFO: a payload Slack never sends is not our error."""
    log.info("refused a Slack payload: %s", reason)
    return BoltResponse(
        status=400, body=REFUSAL, headers={"content-type": "application/json; charset=utf-8"}
    )


def unreadable(error: Exception) -> BoltResponse:
    """The refusal of a payload Bolt itself could not read (it raised building the request)."""
    return refusal(f"Bolt could not read it ({type(error).__name__})")


#: What Bolt raises when a payload's shape is not what Slack sends, while it builds the request.
BOLT_SHAPE_ERRORS = (TypeError, AttributeError, KeyError, IndexError)


class ShapeCheck(Middleware):
    """Global middleware, registered before any other of ours.

    A class-based Middleware gets the raw request: a function middleware has its arguments
    built first by Bolt's build_required_kwargs, which reads actions[0] and view.callback_id
    and so raises on the very shapes refused here (docs.slack.dev/tools/bolt-python/reference/
    middleware/custom_middleware.html; middleware.html for this class's contract).
    """

    def process(
        self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]
    ) -> BoltResponse | None:
        found = missing(req.body)
        if found:
            return refusal(f"{kind(req.body)} without {', '.join(found)}")
        return next()
