"""The modal's views (form, checking, preview, problem) and type-ahead options (docs/SPEC.md §8)."""

from __future__ import annotations

import json
from collections.abc import Iterable

from bot.core.operation import Operation
from bot.core.text import fit
from bot.slack.blocks import asset_name, id_list, name, plural, run_time
from bot.uplynk.models import Library

SHORTCUT = "addtolib_shortcut"
MESSAGE_SHORTCUT = "addtolib_message"
FORM = "addtolib_modal"
PREVIEW = "addtolib_modal_confirm"
LIBRARY = "library"
ASSETS = "assets"
CHANNEL = "channel"
WHEN = "when"  # optional: a scheduled add (docs/SPEC.md §15)

TITLE = "Add assets"
#: Slack's limits for what goes in a modal (the stand-in enforces the same).
MAX_INPUT = 3000
MAX_OPTION_TEXT = 75
SHOWN_ASSETS = 10
#: Under the library menu: Uplynk may answer slower than Slack waits (the cache answers then).
NEW_LIBRARY_HINT = (
    "A library created this minute can take a moment to appear; keep typing its name."
)


def _plain(text: str) -> dict:
    return {"type": "plain_text", "text": text, "emoji": True}


def _section(markdown: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": fit(markdown, 3000) or " "}}


def _context(markdown: str) -> dict:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": fit(markdown, 3000) or " "}]}


def draft_id(view: dict) -> str:
    """The draft operation a form view names in its private_metadata ('' if none)."""
    try:
        meta = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        return ""
    return str(meta.get("draft") or "") if isinstance(meta, dict) else ""


def form(draft: Operation, found: int, duplicates: int, from_message: bool) -> dict:
    """The modal a shortcut opens: library type-ahead, assets input, summary channel."""
    blocks: list[dict] = [
        {
            "type": "input",
            "block_id": LIBRARY,
            "label": _plain("Library"),
            # An options answer holds only `options` or `option_groups`, no text: a note that a
            # new library can lag goes in the hint (docs.slack.dev/reference/block-kit/
            # block-elements/select-menu-element#external_select, "external data source").
            "hint": _plain(NEW_LIBRARY_HINT),
            "element": {
                "type": "external_select",
                "action_id": LIBRARY,
                "placeholder": _plain("Type part of the library's name"),
                "min_query_length": 0,
            },
        }
    ]
    if from_message:
        if found:
            text = f"Found *{plural(found, 'asset id')}* in the message"
            if duplicates:
                text += f" ({plural(duplicates, 'duplicate')} dropped)"
            text += ". Add more below, or leave it empty."
        else:
            text = "No asset ids in that message: paste them below."
        blocks.append(_section(f":mag: {text}"))
    blocks.append(
        {
            "type": "input",
            "block_id": ASSETS,
            "optional": bool(found),
            "label": _plain("More asset ids or links" if found else "Asset ids or links"),
            "hint": _plain("Separated by spaces, commas, semicolons or new lines."),
            "element": {
                "type": "plain_text_input",
                "action_id": ASSETS,
                "multiline": True,
                "max_length": MAX_INPUT,
                "placeholder": _plain("97fbacb3d224e5dd28cd9226f060adb0, …"),
            },
        }
    )
    blocks.append(
        {
            "type": "input",
            "block_id": CHANNEL,
            "label": _plain("Post the summary in"),
            "element": {
                "type": "conversations_select",
                "action_id": CHANNEL,
                "default_to_current_conversation": True,
            },
        }
    )
    blocks.append(
        {
            "type": "input",
            "block_id": WHEN,
            "optional": True,
            "label": _plain("When (leave empty for now)"),
            "hint": _plain("The add runs at this time, shown in your time zone."),
            # docs.slack.dev/reference/block-kit/block-elements/datetime-picker-element: the
            # submitted state holds `selected_date_time`, a UNIX time in seconds.
            "element": {"type": "datetimepicker", "action_id": WHEN},
        }
    )
    return {
        "type": "modal",
        "callback_id": FORM,
        "title": _plain(TITLE),
        "submit": _plain("Preview"),
        "close": _plain("Cancel"),
        "private_metadata": json.dumps({"draft": draft.id}),
        "notify_on_close": True,
        "blocks": blocks,
    }


def checking(operation_id: str, library_name: str, count: int) -> dict:
    """Shown while the look-ups take longer than Slack waits for an answer."""
    where = f"*{name(library_name)}*" if library_name else "the library"
    return _preview_shell(
        operation_id,
        [_section(f":hourglass_flowing_sand: Checking {plural(count, 'asset')} for {where}…")],
    )


def problem(operation_id: str, message: str) -> dict:
    """A refusal or an Uplynk error, in place of the preview (nothing to submit)."""
    return _preview_shell(operation_id, [_section(f":warning: {message}")], close="Close")


def preview(
    operation: Operation,
    library_name: str,
    titles: dict[str, str],
    duplicates: Iterable[str] = (),
    approval: str | None = None,
) -> dict:
    """docs/SPEC.md §3.3 as a modal: library, counts, titles; `Add N assets` if anything is new
    (`Request approval`, saying who must approve, on a protected library: docs/SPEC.md §7)."""
    new, present, missing = operation.new_ids, operation.present_ids, operation.missing_ids
    lines = [
        f"*{name(library_name)}* (`{name(operation.library_id)}`)",
        f"• Will add: *{plural(len(new), 'asset')}*",
    ]
    if operation.run_at and new:
        lines.append(f"• When: {run_time(operation)}")
    blocks = [_section("\n".join(lines))]
    if new:
        blocks.append(_section(_titled(new, titles)))
    if present:
        blocks.append(
            _section(
                f"• Already in the library (skipped): {len(present)}\n{_titled(present, titles)}"
            )
        )
    if missing:
        blocks.append(
            _section(f"• Not found in Uplynk (skipped): {len(missing)}: {id_list(missing)}")
        )
    duplicates = list(duplicates)
    if duplicates:
        blocks.append(_context(f"Duplicates dropped: {id_list(duplicates)}"))
    if not new:
        blocks.append(_context("Nothing to add, so there is nothing to confirm."))
        return _preview_shell(operation.id, blocks, close="Close")
    if approval:
        blocks.append(_section(approval))
    label = "Request approval" if approval else f"Add {plural(len(new), 'asset')}"
    if operation.run_at and not approval:
        label = f"Schedule {plural(len(new), 'asset')}"
    return _preview_shell(operation.id, blocks, submit=label[:24])


def _titled(ids: list[str], titles: dict[str, str]) -> str:
    lines = []
    for asset_id in ids[:SHOWN_ASSETS]:
        lines.append(f"  {asset_name(asset_id, titles)}")
    if len(ids) > SHOWN_ASSETS:
        lines.append(f"  … and {len(ids) - SHOWN_ASSETS} more")
    return "\n".join(lines)


def _preview_shell(
    operation_id: str, blocks: list[dict], submit: str | None = None, close: str = "Cancel"
) -> dict:
    view = {
        "type": "modal",
        "callback_id": PREVIEW,
        "title": _plain(TITLE),
        "close": _plain(close),
        "private_metadata": operation_id,
        "notify_on_close": True,
        "blocks": blocks,
    }
    if submit:
        view["submit"] = _plain(submit)
    return view


def options(libraries: list[Library]) -> list[dict]:
    """Type-ahead options: the library's name (plain text, so nothing in it is markup)."""
    shown = []
    for library in libraries[:100]:
        name = library.desc or library.id
        if len(name) > MAX_OPTION_TEXT:
            name = name[: MAX_OPTION_TEXT - 1] + "…"
        shown.append({"text": _plain(name), "value": library.id})
    return shown


#: Interaction payload types of the shortcuts and the modal.
INTERACTIONS = ("shortcut", "message_action", "block_suggestion", "view_submission", "view_closed")


def while_stopping(payload: dict, text: str) -> dict:
    """What a stopping instance answers the modal's requests: nothing is done, and the user
    is told where Slack can show it (a form keeps its input, so it can be sent again)."""
    kind, view = payload.get("type"), payload.get("view") or {}
    if kind == "block_suggestion":
        return {"options": []}
    if kind == "view_submission" and view.get("callback_id") == FORM:
        return {"response_action": "errors", "errors": {LIBRARY: text}}
    if kind == "view_submission":
        return {
            "response_action": "update",
            "view": problem(view.get("private_metadata", ""), text),
        }
    return {}
