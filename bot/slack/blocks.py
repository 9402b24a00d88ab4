"""Every Slack message the bot sends, as Block Kit built with slack_sdk's models."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.core.operation import Operation, State
from bot.core.schedule.when import local_text
from bot.core.text import escape_mrkdwn, fit, shorten
from bot.uplynk.models import Library

CONFIRM = "addtolib_confirm"
CANCEL = "addtolib_cancel"
UNDO = "addtolib_undo"
RETRY = "addtolib_retry"
PICK_LIBRARY = "addtolib_pick_library"

SHOWN_IDS = 10
BAR_WIDTH = 8
#: Block Kit's limits (the stand-in refuses what breaks them, as Slack does).
MAX_SECTION = 3000
MAX_HEADER = 150
MAX_BUTTON = 75
#: How much of a foreign name or title a message shows (before escaping).
MAX_NAME_SHOWN = 256
MAX_TITLE_SHOWN = 60
SHOWN_LIBRARIES = 20
SHOWN_CANDIDATES = 10


@dataclass(frozen=True)
class Message:
    """A message: fallback text plus blocks (as dicts, ready for the Web API)."""

    text: str
    blocks: list[dict]

    def kwargs(self) -> dict:
        return {"text": self.text, "blocks": self.blocks}


#: The one escaping helper (it lives in core so that core's refusals use it too).
escape = escape_mrkdwn


def name(text: str | None, limit: int = MAX_NAME_SHOWN) -> str:
    """A foreign name or title for mrkdwn: shortened, then escaped (once)."""
    return escape(shorten(text or "", limit))


def make_message(text: str, blocks: Iterable[Block]) -> Message:
    return Message(text=fit(text, MAX_SECTION) or "addtolib", blocks=[b.to_dict() for b in blocks])


def section(markdown: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=fit(markdown, MAX_SECTION) or " "))


def context(markdown: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=fit(markdown, MAX_SECTION) or " ")])


def _header(text: str) -> HeaderBlock:
    """Header text is plain text (Slack shows it as is), so it is shortened, not escaped."""
    return HeaderBlock(text=shorten(" ".join(text.split()) or "addtolib", MAX_HEADER))


def button(label: str, action_id: str, value: str, style: str | None = None) -> ButtonElement:
    return ButtonElement(
        text=shorten(label, MAX_BUTTON), action_id=action_id, value=value, style=style
    )


def asset_name(asset_id: str, titles: Mapping[str, str] | None = None) -> str:
    """An asset as messages show it (docs/SPEC.md §3.3): `Title (id)`, or the id if untitled."""
    title = (titles or {}).get(asset_id)
    return f"{name(title, MAX_TITLE_SHOWN)} (`{asset_id}`)" if title else f"`{asset_id}`"


def id_list(
    ids: Iterable[str], shown: int = SHOWN_IDS, titles: Mapping[str, str] | None = None
) -> str:
    """`a`, `b`, … and N more; with `titles`, each asset by its Uplynk title, id beside it."""
    ids = list(ids)
    if not ids:
        return "none"
    text = ", ".join(asset_name(i, titles) for i in ids[:shown])
    if len(ids) > shown:
        text += f" … and {len(ids) - shown} more"
    return text


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def slack_date(value: str | datetime | None, seconds: bool = False) -> str:
    """Render a date with Slack's date formatting (readers see it in their own time zone)."""
    if value is None:
        return "unknown"
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return name(value, 100)  # Uplynk's text, not a date we understand
    else:
        moment = value
    fallback = moment.strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")
    clock = "{time_secs}" if seconds else "{time}"
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} at {clock}|{fallback}>"


def progress_bar(done: int, total: int, width: int = BAR_WIDTH) -> str:
    """▓▓▓▓░░░░ 400/1000"""
    filled = round(width * done / total) if total else width
    return "▓" * filled + "░" * (width - filled) + f" {done}/{total}"


# -- simple replies ------------------------------------------------------------------------


def error(text: str) -> Message:
    return make_message(text, [section(f":warning: {text}")])


def info(text: str) -> Message:
    return make_message(text, [section(text)])


def working(text: str) -> Message:
    return make_message(text, [context(f":hourglass_flowing_sand: {text}")])


def help_message(
    usage: str, libraries: list[Library], everything: bool, unknown: Iterable[str] = ()
) -> Message:
    unknown = list(unknown)
    if everything:
        where = "You may add to *every* library."
    elif libraries or unknown:
        where = "You may add to: " + ", ".join(
            f"*{name(lib.desc)}* (`{escape(lib.id)}`)" for lib in libraries[:SHOWN_LIBRARIES]
        )
        if len(libraries) > SHOWN_LIBRARIES:
            where += f" … and {len(libraries) - SHOWN_LIBRARIES} more"
        if unknown:
            where += f"\nAlso allowed, but not found in Uplynk: {id_list(unknown)}"
    else:
        where = "You may not add to any library yet; ask an administrator to add you to the policy."
    return make_message(
        "addtolib help",
        [
            _header("addtolib: add assets to an Uplynk library"),
            section(usage),
            section(where),
        ],
    )


# -- the flow ------------------------------------------------------------------------------


def preview(
    operation: Operation,
    library: Library,
    duplicates: Iterable[str] = (),
    approval: str | None = None,
) -> Message:
    """The preview (docs/SPEC.md §3.3); `approval`: what a protected library needs (§7)."""
    new, present, missing = operation.new_ids, operation.present_ids, operation.missing_ids
    titles = operation.asset_titles
    will_add = f"• Will add: *{plural(len(new), 'asset')}*"
    if new:
        will_add += " " + id_list(new, titles=titles)
    lines = [f"*{name(library.desc)}* (`{escape(library.id)}`)", will_add]
    if operation.run_at and new:
        lines.append(f"• When: {run_time(operation)}")
    if present:
        lines.append(
            f"• Already in the library (skipped): {len(present)}: {id_list(present, titles=titles)}"
        )
    if missing:
        lines.append(f"• Not found in Uplynk (skipped): {len(missing)}: {id_list(missing)}")
    duplicates = list(duplicates)
    if duplicates:
        lines.append(f"• Duplicates dropped: {id_list(duplicates)}")
    if new and approval:
        lines.append(approval)
    blocks: list[Block] = [section(text) for text in _packed(lines)]
    if new:
        label = "Request approval" if approval else f"Add {plural(len(new), 'asset')}"
        if operation.run_at and not approval:
            label = f"Schedule: add {plural(len(new), 'asset')}"
        blocks.append(
            ActionsBlock(
                elements=[
                    button(label, CONFIRM, operation.id, style="primary"),
                    button("Cancel", CANCEL, operation.id),
                ]
            )
        )
        text = f"Add {plural(len(new), 'asset')} to {name(library.desc)}?"
        if approval:
            text = f"Request approval to add {plural(len(new), 'asset')} to {name(library.desc)}?"
    else:
        blocks.append(context("Nothing to add, so there is nothing to confirm."))
        text = f"Nothing to add to {name(library.desc)}."
    return make_message(text, blocks)


def pick_library(operation: Operation, typed: str, candidates: list[Library]) -> Message:
    blocks: list[Block] = [
        section(f"Several libraries match *{name(typed)}*. Which one did you mean?"),
    ]
    for lib in candidates[:SHOWN_CANDIDATES]:
        blocks.append(
            SectionBlock(
                text=MarkdownTextObject(text=f"*{name(lib.desc)}*\n`{escape(lib.id)}`"),
                accessory=button("Pick", PICK_LIBRARY, f"{operation.id}:{lib.id}"),
            )
        )
    if len(candidates) > SHOWN_CANDIDATES:
        hidden = len(candidates) - SHOWN_CANDIDATES
        blocks.append(context(f"… and {hidden} more: use the library's id to choose one of them."))
    return make_message(f"Several libraries match {name(typed)}", blocks)


def progress(done: int, total: int, library_name: str | None) -> Message:
    bar, shown = progress_bar(done, total), name(library_name)
    return make_message(f"Adding to {shown}: {bar}", [section(f"`{bar}` adding to *{shown}*")])


def run_time(operation: Operation) -> str:
    """When a scheduled add runs: Slack's date token (each reader's own zone) and the
    requester's local time, as they typed it (docs/SPEC.md §15)."""
    assert operation.run_at is not None  # only a scheduled add has a run time
    when = slack_date(operation.run_at, seconds=bool(operation.run_at.second))
    return f"{when} (your time: {escape(local_text(operation.run_at, operation.run_zone))})"


def scheduled(operation: Operation) -> Message:
    """The confirmation once an add is scheduled: when, and Cancel until the run starts."""
    shown = name(operation.library_name or operation.library_id)
    count = plural(len(operation.new_ids), "asset")
    text = f":alarm_clock: Scheduled for {run_time(operation)}: {count} will be added to *{shown}*."
    return make_message(
        f"Scheduled: {count} to {shown}",
        [
            section(text),
            context("Cancel works until the run starts (you or an admin)."),
            ActionsBlock(elements=[button("Cancel", CANCEL, operation.id)]),
        ],
    )


def cancelled(operation: Operation) -> Message:
    shown = name(operation.library_name or "the library")
    return info(f"Cancelled; nothing was added to *{shown}*.")


def outcome(operation: Operation) -> Message:
    """The requester's ephemeral answer once the operation ran."""
    shown = name(operation.library_name)
    added, failed = len(operation.added_ids), len(operation.failed_ids)
    if operation.state == State.DONE:
        text = f":white_check_mark: Added {plural(added, 'asset')} to *{shown}*."
    elif operation.state == State.PARTIAL:
        text = f":warning: Added {added} of {added + failed} assets to *{shown}*; {failed} failed."
    else:
        text = f":x: Nothing was added to *{shown}*: {escape(operation.error or 'Uplynk refused')}"
    return info(text)


def summary(
    operation: Operation, library: Library | None, approvers: Iterable[str] = ()
) -> Message:
    """The Library summary posted in the channel for everyone (approvers: docs/SPEC.md §7)."""
    raw = library.desc if library else operation.library_name or operation.library_id
    blocks: list[Block] = [_header(raw or "Library")]
    if library:
        blocks.append(
            SectionBlock(
                fields=[
                    MarkdownTextObject(text=f"*id*\n`{name(library.id, 200)}`"),
                    MarkdownTextObject(text=f"*allow_copy*\n{name(str(library.allow_copy), 100)}"),
                    MarkdownTextObject(text=f"*is_ad*\n{name(str(library.is_ad), 100)}"),
                    MarkdownTextObject(text=f"*created*\n{slack_date(library.created)}"),
                ]
            )
        )
    titles = operation.asset_titles
    lines = [f"*Added ({len(operation.added_ids)}):* {id_list(operation.added_ids, titles=titles)}"]
    if operation.present_ids:
        lines.append(
            f"*Skipped, already in the library ({len(operation.present_ids)}):* "
            f"{id_list(operation.present_ids, titles=titles)}"
        )
    if operation.missing_ids:
        lines.append(
            f"*Skipped, not found in Uplynk ({len(operation.missing_ids)}):* "
            f"{id_list(operation.missing_ids)}"
        )
    if operation.failed_ids:
        failed = id_list(operation.failed_ids, titles=titles)
        lines.append(f"*Failed ({len(operation.failed_ids)}):* {failed}")
        lines.extend(f"  • {name(e, 300)}" for e in operation.errors[-5:])
    blocks.extend(section(text) for text in _packed(lines))
    who = f"Asked by <@{operation.user_id}>"
    if operation.confirmed_by and operation.confirmed_by != operation.user_id:
        who += f", confirmed by <@{operation.confirmed_by}>"
    approvers = list(approvers)
    if approvers:
        who += ", approved by " + ", ".join(f"<@{a}>" for a in approvers)
    blocks.append(context(f"{who} · operation `{operation.id}`"))
    if operation.state == State.UNDONE:
        blocks.append(
            section(
                f":leftwards_arrow_with_hook: *Undone* by <@{operation.undone_by}> "
                f"{slack_date(operation.undone_at)}: "
                f"removed {id_list(operation.removed_ids, titles=titles)}"
            )
        )
    left = left_to_undo(operation)
    if operation.state in (State.DONE, State.PARTIAL) and operation.removed_ids and left:
        blocks.append(
            section(
                f":warning: *Undo removed {len(operation.removed_ids)} of "
                f"{len(operation.added_ids)}*; {len(left)} still in the library: "
                f"{id_list(left, titles=titles)}. Undo removes the rest."
            )
        )
    buttons = undo_retry_buttons(operation)
    if buttons:
        blocks.append(ActionsBlock(elements=buttons))
    added = plural(len(operation.added_ids), "asset")
    text = f"{name(raw or 'Library')}: {added} added by <@{operation.user_id}>"
    return make_message(text, blocks)


def undo_retry_buttons(operation: Operation) -> list[ButtonElement]:
    """`Undo` and `Retry` where they apply (the summary's, and the App Home's)."""
    buttons: list[ButtonElement] = []
    if operation.state in (State.DONE, State.PARTIAL) and left_to_undo(operation):
        buttons.append(button("Undo", UNDO, operation.id))
    if (
        operation.state in (State.PARTIAL, State.FAILED, State.INTERRUPTED)
        and not operation.removed_ids
    ):
        retryable = len(operation.failed_ids) or len(operation.new_ids) - len(operation.added_ids)
        label = f"Retry {plural(retryable, 'asset')}"
        buttons.append(button(label, RETRY, operation.id, "primary"))
    return buttons


def restarting(operation: Operation) -> Message:
    """A running operation stopped between batches because the bot is restarting."""
    return working(
        f"addtolib is restarting: {len(operation.added_ids)} of {len(operation.new_ids)} assets "
        "added so far. The rest are left for the next instance; you will hear from it."
    )


RESTARTING = "addtolib is restarting; nothing was done. Try again in a moment."


def left_to_undo(operation: Operation) -> list[str]:
    """Assets the operation added that no undo has removed yet."""
    removed = set(operation.removed_ids)
    return [a for a in operation.added_ids if a not in removed]


def resumed(operation: Operation) -> Message:
    """The requester's DM: a job cut off by a restart was resumed on its own (docs/SPEC.md §10)."""
    shown = name(operation.library_name or operation.library_id)
    told = outcome(operation).blocks[0]["text"]["text"]
    elements: list[Block] = [
        section(
            f":arrows_counterclockwise: Your operation adding to *{shown}* was cut off by a "
            f"restart and resumed automatically; nobody needed to click.\n{told}"
        )
    ]
    if operation.state in (State.PARTIAL, State.FAILED) and operation.failed_ids:
        label = f"Retry {plural(len(operation.failed_ids), 'asset')}"
        elements.append(ActionsBlock(elements=[button(label, RETRY, operation.id, "primary")]))
    return make_message(f"Your operation on {shown} was resumed after a restart", elements)


def undo_interrupted(operation: Operation) -> Message:
    left = left_to_undo(operation)
    shown = name(operation.library_name or operation.library_id)
    return make_message(
        f"Your undo on {shown} was interrupted",
        [
            section(
                f":warning: Your undo on *{shown}* was interrupted by a restart after removing "
                f"{len(operation.removed_ids)} of {len(operation.added_ids)} assets; "
                f"{len(left)} are still in the library. Undo removes the rest."
            ),
            ActionsBlock(elements=[button("Undo", UNDO, operation.id)]),
        ],
    )


# -- notification thread ---------------------------------------------------------------------


def notify_parent(operation: Operation) -> Message:
    who, where = f"<@{operation.user_id}>", f"*{name(operation.library_name)}*"
    added, failed = len(operation.added_ids), len(operation.failed_ids)
    if operation.state in (State.DONE, State.UNDONE):
        text = f"{who} added {plural(added, 'asset')} to {where}"
    elif operation.state == State.PARTIAL:
        text = f"{who} added {added} of {plural(added + failed, 'asset')} to {where}"
    elif operation.state == State.FAILED:
        text = f"{who} tried to add {plural(len(operation.new_ids), 'asset')} to {where}: failed"
    elif operation.run_at and operation.state in _SCHEDULE_ENDINGS:
        when = slack_date(operation.run_at)
        count = plural(len(operation.new_ids), "asset")
        text = f"{who} scheduled {count} for {where} at {when}{_SCHEDULE_ENDINGS[operation.state]}"
    elif operation.state in (
        State.AWAITING_APPROVAL,
        State.REJECTED,
        State.EXPIRED,
        State.CANCELLED,
        State.DENIED,
    ):
        # An approval request starts the thread before anything runs (docs/SPEC.md §7); it is
        # updated in place with the outcome (these, or the run's states above).
        ending = {
            State.AWAITING_APPROVAL: " (needs approval)",
            State.REJECTED: f": denied by <@{operation.rejected_by}>; nothing was added",
            State.EXPIRED: ": expired unapproved; nothing was added",
            State.CANCELLED: ": withdrawn"
            + (f" by <@{operation.rejected_by}>" if operation.rejected_by else "")
            + "; nothing was added",
            State.DENIED: ": approved, but they may no longer add there; nothing was added",
        }[operation.state]
        text = f"{who} asked to add {plural(len(operation.new_ids), 'asset')} to {where}{ending}"
    else:  # running, interrupted: the thread starts before the outcome is known
        text = f"{who} is adding {plural(len(operation.new_ids), 'asset')} to {where}"
    return make_message(text, [section(text)])


#: A scheduled add's thread parent, by state, before it runs (docs/SPEC.md §15).
_SCHEDULE_ENDINGS = {
    State.SCHEDULED: "",
    State.CANCELLED: ": cancelled; nothing was added",
    State.EXPIRED: ": expired; nothing was added",
    State.DENIED: ": not run, permission withdrawn; nothing was added",
}


def notify_details(operation: Operation) -> Message:
    titles = operation.asset_titles
    lines = [
        f"Operation `{operation.id}`: *{operation.state}*",
        f"Added ({len(operation.added_ids)}): {id_list(operation.added_ids, 20, titles)}",
    ]
    if operation.failed_ids:
        lines.append(
            f"Failed ({len(operation.failed_ids)}): {id_list(operation.failed_ids, 20, titles)}"
        )
        lines.extend(f"• {name(e, 300)}" for e in operation.errors[-5:])
    if operation.present_ids:
        lines.append(f"Already present: {id_list(operation.present_ids, 20, titles)}")
    if operation.missing_ids:
        lines.append(f"Not found: {id_list(operation.missing_ids, shown=50)}")
    # Four lists of 50 ids do not fit one section: each list gets its own.
    return make_message(lines[0], [section(line) for line in _packed(lines)])


def _packed(lines: list[str], limit: int = MAX_SECTION) -> list[str]:
    """Lines joined into as few texts of at most `limit` characters as they fit in."""
    texts: list[str] = []
    for line in lines:
        if texts and len(texts[-1]) + 1 + len(line) <= limit:
            texts[-1] += "\n" + line
        else:
            texts.append(line)
    return texts


def notify_event(text: str) -> Message:
    return make_message(text, [section(text)])


# -- history --------------------------------------------------------------------------------


def history(
    operations: list[Operation],
    links: dict[str, str],
    everyone: bool,
    approvers: dict[str, list[str]] | None = None,
    queued: Collection[str] = (),
) -> Message:
    if not operations:
        return info("No operations yet.")
    title = "Recent operations (everyone)" if everyone else "Your recent operations"
    blocks: list[Block] = [_header(title)]
    for op in operations:
        counts = f"{len(op.added_ids)} added"
        if op.failed_ids:
            counts += f", {len(op.failed_ids)} failed"
        if op.removed_ids:
            counts += f", {len(op.removed_ids)} removed"
        line = (
            f"{slack_date(op.created_at)} · <@{op.user_id}> · "
            f"*{name(op.library_name or op.library_id or '?')}* · "
            f"{len(op.requested_ids)} requested, {counts} · `{op.state}`"
        )
        if approvers and approvers.get(op.id):
            line += " · approved by " + ", ".join(f"<@{a}>" for a in approvers[op.id])
        if op.rejected_by:
            verb = "withdrawn" if op.state == State.CANCELLED else "denied"  # by an admin
            line += f" · {verb} by <@{op.rejected_by}>"
        if op.run_at:  # docs/SPEC.md §15
            line += f" · {'runs' if op.state == State.SCHEDULED else 'scheduled for'} "
            line += slack_date(op.run_at)
            if op.started_at:
                late = max(0.0, (op.started_at - op.run_at).total_seconds())
                line += f" (started {late:.1f} s after)"
        if op.id in links:
            line += f" · <{links[op.id]}|thread>"
        if op.id in queued:
            line += " · _notification queued_"
        blocks.append(section(line))
    blocks.append(DividerBlock())
    return make_message(title, blocks[:50])
