"""The stand-in's modals: trigger ids (3 s, once), views.open/update/push, Block Kit's limits."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from bot.slack_standin.blocks import BlocksError, validate_blocks

#: Block Kit's modal limits (docs.slack.dev/reference/views/modal-views and element pages).
TRIGGER_TTL = 3.0
MAX_VIEW_BLOCKS = 100
MAX_VIEW_TITLE = 24
MAX_VIEW_BUTTON = 24
MAX_PRIVATE_METADATA = 3000
MAX_CALLBACK_ID = 255
MAX_BLOCK_ID = 255
MAX_ACTION_ID = 255
MAX_LABEL = 2000
MAX_PLACEHOLDER = 150
MAX_INPUT_LENGTH = 3000
MAX_SECTION_TEXT = 3000
MAX_OPTIONS = 100
MAX_OPTION_TEXT = 75
MAX_OPTION_VALUE = 150
INPUT_ELEMENTS = frozenset(
    {
        "plain_text_input",
        "external_select",
        "static_select",
        "conversations_select",
        "channels_select",
        "users_select",
        "multi_static_select",
        "multi_external_select",
        "checkboxes",
        "radio_buttons",
        "datepicker",
        "timepicker",
        "datetimepicker",
    }
)


#: A Home tab view: `type` "home", at most 100 blocks, private_metadata 3000 and callback_id
#: 255 characters (docs.slack.dev/reference/views/home-tab-views, "Home tab view object fields").
MAX_HOME_BLOCKS = 100


class ViewError(ValueError):
    """A view Slack would refuse (``invalid_arguments``)."""


def _plain(obj: Any, what: str, limit: int, required: bool = True) -> None:
    if obj is None:
        if required:
            raise ViewError(f"{what} is required")
        return
    if not isinstance(obj, dict) or obj.get("type") != "plain_text":
        raise ViewError(f"{what} must be a plain_text object")
    text = obj.get("text")
    if not isinstance(text, str) or not text or len(text) > limit:
        raise ViewError(f"{what}: text of {len(text or '')} chars (1 to {limit})")


def _element(element: Any, where: str) -> None:
    if not isinstance(element, dict) or element.get("type") not in INPUT_ELEMENTS:
        raise ViewError(f"{where}: an input block needs an input element")
    if len(str(element.get("action_id", ""))) > MAX_ACTION_ID:
        raise ViewError(f"{where}: action_id too long")
    _plain(element.get("placeholder"), f"{where} placeholder", MAX_PLACEHOLDER, required=False)
    if element["type"] == "plain_text_input":
        longest = element.get("max_length", MAX_INPUT_LENGTH)
        if not isinstance(longest, int) or not 1 <= longest <= MAX_INPUT_LENGTH:
            raise ViewError(f"{where}: max_length {longest!r} (1 to {MAX_INPUT_LENGTH})")
        shortest = element.get("min_length", 0)
        if not isinstance(shortest, int) or not 0 <= shortest <= MAX_INPUT_LENGTH:
            raise ViewError(f"{where}: min_length {shortest!r}")
        if len(element.get("initial_value") or "") > longest:
            raise ViewError(f"{where}: initial_value longer than {longest}")
    if element["type"] == "datetimepicker":
        # docs.slack.dev/reference/block-kit/block-elements/datetime-picker-element: no
        # placeholder; initial_date_time is a UNIX time in seconds, 10 digits.
        if "placeholder" in element:
            raise ViewError(f"{where}: a datetimepicker has no placeholder")
        initial = element.get("initial_date_time")
        if initial is not None and (
            not isinstance(initial, int) or isinstance(initial, bool) or len(str(initial)) != 10
        ):
            raise ViewError(f"{where}: initial_date_time must be a 10-digit UNIX time")
    external = element["type"] in ("external_select", "multi_external_select")
    if external and element.get("min_query_length", 3) < 0:
        raise ViewError(f"{where}: min_query_length below 0")


def _text(block: dict, where: str) -> None:
    text = block.get("text")
    if text is not None:
        if not isinstance(text, dict) or not text.get("text"):
            raise ViewError(f"{where}: empty text object")
        if len(text["text"]) > MAX_SECTION_TEXT:
            raise ViewError(f"{where}: text of {len(text['text'])} chars")
    elif block["type"] == "section" and not block.get("fields"):
        raise ViewError(f"{where}: section without text or fields")
    for element in block.get("elements") or ():
        if isinstance(element, dict) and "text" in element and not element["text"]:
            raise ViewError(f"{where}: empty text object")
        if isinstance(element, dict) and len(str(element.get("text", ""))) > MAX_SECTION_TEXT:
            raise ViewError(f"{where}: element text longer than {MAX_SECTION_TEXT}")


def validate_view(view: Any) -> dict[str, Any]:
    """Raise ViewError when Slack would refuse this modal view; else return it."""
    if not isinstance(view, dict) or view.get("type") != "modal":
        raise ViewError("a modal view needs type 'modal'")
    _plain(view.get("title"), "title", MAX_VIEW_TITLE)
    _plain(view.get("close"), "close", MAX_VIEW_BUTTON, required=False)
    _plain(view.get("submit"), "submit", MAX_VIEW_BUTTON, required=False)
    if len(view.get("private_metadata") or "") > MAX_PRIVATE_METADATA:
        raise ViewError(f"private_metadata of {len(view['private_metadata'])} chars")
    if len(view.get("callback_id") or "") > MAX_CALLBACK_ID:
        raise ViewError("callback_id too long")
    blocks = view.get("blocks")
    if not isinstance(blocks, list) or len(blocks) > MAX_VIEW_BLOCKS:
        raise ViewError(f"a modal holds at most {MAX_VIEW_BLOCKS} blocks")
    block_ids = set()
    for i, block in enumerate(blocks):
        where = f"block {i}"
        if not isinstance(block, dict) or not block.get("type"):
            raise ViewError(f"{where} has no type")
        block_id = block.get("block_id")
        if block_id is not None:
            if len(block_id) > MAX_BLOCK_ID or block_id in block_ids:
                raise ViewError(f"{where}: block_id too long or repeated")
            block_ids.add(block_id)
        if block["type"] == "input":
            _plain(block.get("label"), f"{where} label", MAX_LABEL)
            _plain(block.get("hint"), f"{where} hint", MAX_LABEL, required=False)
            _element(block.get("element"), where)
            if view.get("submit") is None:
                raise ViewError("a view with an input block needs a submit button")
        else:
            _text(block, where)
    return view


def validate_home(view: Any) -> None:
    """Raise ViewError when Slack would refuse this Home tab view (views.publish)."""
    if not isinstance(view, dict) or view.get("type") != "home":
        raise ViewError("views.publish needs a view of type 'home'")
    if len(view.get("private_metadata") or "") > MAX_PRIVATE_METADATA:
        raise ViewError(f"private_metadata of {len(view['private_metadata'])} chars")
    if len(view.get("callback_id") or "") > MAX_CALLBACK_ID:
        raise ViewError("callback_id too long")
    blocks = view.get("blocks")
    if not isinstance(blocks, list):
        raise ViewError("a Home view needs a list of blocks")
    try:
        validate_blocks(blocks, limit=MAX_HOME_BLOCKS)
    except BlocksError as exc:
        raise ViewError(str(exc)) from exc
    for i, block in enumerate(blocks):
        if block.get("type") == "input":
            raise ViewError(f"block {i}: a Home tab holds no input blocks")
        _text(block, f"block {i}")


def validate_options(options: Any) -> None:
    """Raise ViewError when Slack would refuse an options (block_suggestion) answer."""
    if not isinstance(options, list) or len(options) > MAX_OPTIONS:
        raise ViewError(f"at most {MAX_OPTIONS} options")
    for i, option in enumerate(options):
        _plain((option or {}).get("text"), f"option {i}", MAX_OPTION_TEXT)
        value = option.get("value")
        if not isinstance(value, str) or not value or len(value) > MAX_OPTION_VALUE:
            raise ViewError(f"option {i}: value of {len(value or '')} chars")


class Views:
    """Open modals by id, and the trigger ids that may open them."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._triggers: dict[str, float | None] = {}  # id -> issued at; None once used
        self._views: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._opened: dict[str, str] = {}  # trigger id -> the view it opened
        self._homes: dict[str, dict[str, Any]] = {}  # user id -> their published Home

    def new_trigger(self) -> str:
        """A trigger id as Slack puts in an interaction payload: valid 3 s, once."""
        trigger = f"{int(time.time())}.{next(self._ids)}.{uuid.uuid4().hex}"
        with self._lock:
            self._triggers[trigger] = self._clock()
        return trigger

    def view(self, view_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._views.get(view_id)
            return dict(found) if found else None

    def opened_by(self, trigger: str) -> dict[str, Any] | None:
        """The view (as it is now) that views.open opened with this trigger id."""
        with self._lock:
            view_id = self._opened.get(trigger)
        return self.view(view_id) if view_id else None

    def close(self, view_id: str) -> None:
        """The user closed the modal: later updates find nothing."""
        with self._lock:
            self._views.pop(view_id, None)

    def submitted(self, view_id: str, view: dict[str, Any]) -> None:
        """The app answered a submission with response_action update: the view is now this."""
        with self._lock:
            if view_id in self._views:
                self._views[view_id] = self._stored(view_id, view)

    def _use_trigger(self, trigger: Any) -> str | None:
        with self._lock:
            if trigger not in self._triggers:
                return "invalid_trigger_id"
            issued = self._triggers[trigger]
            if issued is None:
                return "exchanged_trigger_id"
            if self._clock() - issued > TRIGGER_TTL:
                return "expired_trigger_id"
            self._triggers[trigger] = None
            return None

    def _stored(self, view_id: str, view: dict[str, Any]) -> dict[str, Any]:
        return {
            **view,
            "id": view_id,
            "hash": uuid.uuid4().hex[:16],
            "state": {"values": {}},
            "team_id": "T0001",
            "app_id": "A0ADDTOLIB",
            "bot_id": "BBOT",
        }

    def open(self, payload: dict[str, Any], push: bool = False) -> dict[str, Any]:
        """views.open / views.push: a valid trigger and a valid view."""
        view = payload.get("view")
        try:
            view = validate_view(view)
        except ViewError as exc:
            return {
                "ok": False,
                "error": "invalid_arguments",
                "response_metadata": {"messages": [str(exc)]},
            }
        error = self._use_trigger(payload.get("trigger_id"))
        if error:
            return {"ok": False, "error": error}
        view_id = f"V{next(self._ids):08d}"
        stored = self._stored(view_id, view)
        with self._lock:
            self._views[view_id] = stored
            self._opened[payload["trigger_id"]] = view_id
        return {"ok": True, "view": dict(stored)}

    def publish(self, payload: dict[str, Any]) -> dict[str, Any]:
        """views.publish: a valid Home view for a user, kept as that user's Home."""
        view, user = payload.get("view"), payload.get("user_id")
        if not isinstance(user, str) or not user:
            return {"ok": False, "error": "invalid_arguments"}
        try:
            validate_home(view)
            assert isinstance(view, dict)  # validate_home checked it
        except ViewError as exc:
            return {
                "ok": False,
                "error": "invalid_arguments",
                "response_metadata": {"messages": [str(exc)]},
            }
        with self._lock:
            old = self._homes.get(user)
            view_id = old["id"] if old else f"V{next(self._ids):08d}"
            stored = self._stored(view_id, view)
            self._homes[user] = stored
        return {"ok": True, "view": dict(stored)}

    def home(self, user: str) -> dict[str, Any] | None:
        """The Home view last published for `user`."""
        with self._lock:
            found = self._homes.get(user)
        return dict(found) if found else None

    def update(self, payload: dict[str, Any]) -> dict[str, Any]:
        """views.update by view_id (or external_id), honouring hash when given."""
        view = payload.get("view")
        try:
            view = validate_view(view)
        except ViewError as exc:
            return {
                "ok": False,
                "error": "invalid_arguments",
                "response_metadata": {"messages": [str(exc)]},
            }
        view_id = payload.get("view_id")
        with self._lock:
            if not view_id:
                external = payload.get("external_id")
                view_id = next(
                    (
                        k
                        for k, v in self._views.items()
                        if external and v.get("external_id") == external
                    ),
                    None,
                )
            current = self._views.get(view_id) if view_id else None
            if current is None or not view_id:
                return {"ok": False, "error": "not_found"}
            if payload.get("hash") and payload["hash"] != current["hash"]:
                return {"ok": False, "error": "hash_conflict"}
            stored = self._stored(view_id, view)
            self._views[view_id] = stored
        return {"ok": True, "view": dict(stored)}
