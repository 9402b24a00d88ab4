"""The console's `shortcut` word: the modal played as a form in the terminal (docs/SPEC.md §8)."""

from __future__ import annotations

import re
import sys
import time
from typing import TYPE_CHECKING, Any

from bot.console.render import block_lines
from bot.console.session import ModalSession

if TYPE_CHECKING:
    from bot.console.main import Console

CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,}")
USAGE = "shortcut, or shortcut message TEXT (the message shortcut on a message holding TEXT)"


class ModalForm:
    """Opens the modal, asks for each input, submits, shows the preview, confirms or closes."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.screen = console.screen
        self.modal = ModalSession(console.session)

    def run(self, rest: str) -> None:
        word, _, text = rest.partition(" ")
        if word and word != "message":
            self.screen.info(f"Usage: {USAGE}")
            return
        self.fill(self.modal.open(text if word == "message" else None))

    def fill(self, view: dict[str, Any] | None) -> None:
        """Play an opened modal: its inputs, the preview, confirm or close."""
        if view is None:
            self.screen.info("(the modal did not open: Slack refused views.open; see the log)")
            return
        self._show(view)
        try:
            answer = self._fill(view)
        except EOFError:
            self.modal.close(view)
            self.console.settle()
            self.screen.info("(closed the modal)")
            return
        if answer.get("response_action") != "update":
            return
        preview = {**self._settled(view, answer["view"]), "id": view["id"]}
        self._show(preview)
        if preview.get("submit") is None:
            self.modal.close(preview)
            self.screen.info("(closed the modal)")
            return
        label = preview["submit"]["text"]
        choice = self._read(f"[y] {label}  [n] Cancel: ").strip().lower()
        if choice in ("y", "yes"):
            self.modal.submit(preview)
        else:
            self.modal.close(preview)
            self.screen.info("(closed the modal: the request is cancelled)")
        self.console.settle()

    def _fill(self, view: dict[str, Any]) -> dict[str, Any]:
        assets_block = next(b for b in view["blocks"] if b.get("block_id") == "assets")
        optional = assets_block.get("optional", False)
        fields = {"library": self._library(view), "assets": self._assets(optional)}
        fields["channel"] = self._channel()
        while True:
            answer = self.modal.submit(view, _values(**fields))
            errors = answer.get("errors") if answer.get("response_action") == "errors" else None
            if not errors:
                return answer
            for block_id, message in errors.items():
                self.screen.info(f"⚠ {block_id}: {message}")
            if "library" in errors:
                fields["library"] = self._library(view)
            if "assets" in errors:
                fields["assets"] = self._assets(optional)
            if "channel" in errors:
                fields["channel"] = self._channel()

    def _library(self, view: dict[str, Any]) -> str:
        while True:
            query = self._read("Library (part of its name; empty lists them all): ").strip()
            options = self.modal.suggest(view, query)
            if not options:
                self.screen.info(f"No library you may add to matches {query!r}.")
                continue
            for number, option in enumerate(options, 1):
                self.screen.info(f"  [{number}] {option['text']['text']}")
            pick = self._read("Pick a number (empty: search again): ").strip().strip("[]")
            if pick.isdigit() and 1 <= int(pick) <= len(options):
                return options[int(pick) - 1]["value"]

    def _assets(self, optional: bool) -> str:
        hint = " (empty: only those found)" if optional else ""
        return self._read(f"Asset ids or links{hint}: ")

    def _channel(self) -> str:
        session = self.console.session
        here = session.channel
        by_name = {f"#{name}": cid for cid, name in session.channel_names.items()}
        while True:
            typed = self._read(f"Post the summary in [#{session.channel_name(here)}]: ").strip()
            channel = by_name.get(typed, typed) if typed else here
            if CHANNEL_ID.fullmatch(channel):
                return channel
            self.screen.info(f"A channel is #name or an id like {here}.")

    def _settled(self, view: dict[str, Any], shown: dict[str, Any]) -> dict[str, Any]:
        """The preview, once a "Checking…" answer has been replaced with views.update."""
        if shown.get("submit") is not None or "Checking" not in str(shown.get("blocks")):
            return shown
        self._show(shown)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            self.console.session.idle(0.2)
            current = self.modal.current(view)
            if current is None or "Checking" not in str(current.get("blocks")):
                return current or shown
        return shown

    def _show(self, view: dict[str, Any]) -> None:
        shown = [b for b in view.get("blocks") or [] if b.get("type") != "input"]
        lines = block_lines({"blocks": shown}, [], self.console.session.channel_names)
        title = (view.get("title") or {}).get("text", "")
        self.screen.message(f"modal: {title}", False, lines)

    def _read(self, prompt: str) -> str:
        if self.console.interactive:
            return input(prompt)
        line = sys.stdin.readline()
        if not line:
            raise EOFError
        line = line.rstrip("\n")
        self.screen.info(f"{prompt}{line}")
        return line


def _values(library: str | None, assets: str, channel: str) -> dict[str, Any]:
    option = {"text": {"type": "plain_text", "text": library}, "value": library}
    return {
        "library": {"library": {"type": "external_select", "selected_option": option}},
        "assets": {"assets": {"type": "plain_text_input", "value": assets or None}},
        "channel": {"channel": {"type": "conversations_select", "selected_conversation": channel}},
    }
