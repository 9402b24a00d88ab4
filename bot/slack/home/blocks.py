"""The App Home view (docs/SPEC.md §14): the same buttons as the messages, within 100 blocks."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from slack_sdk.models.blocks import ActionsBlock, Block, DividerBlock, HeaderBlock, SectionBlock

from bot.core.home import Counted, Health, HomeData
from bot.core.operation import Operation
from bot.slack import blocks
from bot.slack.approvals.blocks import APPROVE, DENY
from bot.slack.blocks import CANCEL, button, context, name, plural, section, slack_date

ADD = "addtolib_home_add"
#: Slack's limit for a Home tab view (docs.slack.dev/surfaces/app-home: "up to 100 blocks").
MAX_HOME_BLOCKS = 100
SHOWN_LIBRARIES = 20
HISTORY = "`/addtolib history`"


def _header(text: str) -> Block:
    return HeaderBlock(text=text)  # our own words: plain text, well under 150 characters


def _more(counted: Counted, where: str = HISTORY) -> list[Block]:
    if counted.more <= 0:
        return []
    return [context(f"… and {counted.more} more: see {where}")]


def _library(op: Operation) -> str:
    return f"*{name(op.library_name or op.library_id or '?')}*"


def _to_approve(data: HomeData) -> list[Block]:
    found = data.to_approve
    if not found.total:
        return []
    out: list[Block] = [DividerBlock(), _header("Waiting for your approval")]
    for op in found.items:
        line = (
            f"<@{op.user_id}> asks to add *{plural(len(op.new_ids), 'asset')}* to "
            f"{_library(op)} (`{name(op.library_id)}`) · asked {slack_date(op.confirmed_at)}"
        )
        approved = data.approved_by.get(op.id) or []
        if approved:
            line += " · approved so far by " + ", ".join(f"<@{a}>" for a in approved)
        out.append(section(line))
        out.append(
            ActionsBlock(
                elements=[
                    button("Approve", APPROVE, op.id, style="primary"),
                    button("Deny", DENY, op.id, style="danger"),
                ]
            )
        )
    return out + _more(found, "the approval messages")


def _with_cancel(op: Operation, line: str, label: str) -> Block:
    return SectionBlock(
        text={"type": "mrkdwn", "text": blocks.fit(line, blocks.MAX_SECTION) or " "},
        accessory=button(label, CANCEL, op.id),
    )


def _awaiting_mine(data: HomeData) -> list[Block]:
    found = data.awaiting_mine
    if not found.total:
        return []
    out: list[Block] = [DividerBlock(), _header("Your requests waiting for approval")]
    for op in found.items:
        line = (
            f"{plural(len(op.new_ids), 'asset')} to {_library(op)} · asked "
            f"{slack_date(op.confirmed_at)}"
        )
        approved = data.approved_by.get(op.id) or []
        if approved:
            line += " · approved so far by " + ", ".join(f"<@{a}>" for a in approved)
        out.append(_with_cancel(op, line, "Cancel request"))
    return out + _more(found)


def _scheduled(data: HomeData) -> list[Block]:
    found = data.scheduled
    if not found.total:
        return []
    out: list[Block] = [DividerBlock(), _header("Scheduled")]
    for op in found.items:
        line = (
            f"{plural(len(op.new_ids), 'asset')} to {_library(op)} · `{op.state}` · "
            f"runs {slack_date(op.run_at or op.created_at)}"
        )
        out.append(_with_cancel(op, line, "Cancel"))
    return out + _more(found)


def _recent(data: HomeData, links: Mapping[str, str]) -> list[Block]:
    title = "Recent operations (everyone)" if data.admin else "Your recent operations"
    out: list[Block] = [DividerBlock(), _header(title)]
    if not data.recent:
        return [*out, section("Nothing yet: press *Add assets* or type `/addtolib`.")]
    for op in data.recent:
        counts = f"{len(op.requested_ids)} requested, {len(op.added_ids)} added"
        if op.failed_ids:
            counts += f", {len(op.failed_ids)} failed"
        if op.removed_ids:
            counts += f", {len(op.removed_ids)} removed"
        line = f"{_library(op)} · {counts} · `{op.state}` · {slack_date(op.created_at)}"
        if data.admin:
            line += f" · <@{op.user_id}>"
        if op.id in links:
            line += f" · <{links[op.id]}|thread>"
        out.append(section(line))
        buttons = blocks.undo_retry_buttons(op)
        if buttons:
            out.append(ActionsBlock(elements=buttons))
    out.append(context(f"Older operations: {HISTORY}"))
    return out


def _libraries(data: HomeData, names: Mapping[str, str]) -> list[Block]:
    out: list[Block] = [DividerBlock(), _header("Libraries you may add to")]
    if data.libraries == "*":
        return [*out, section("*Every* library.")]
    if not data.libraries:
        text = "None yet: ask an administrator to add you to the policy."
        return [*out, section(text)]
    ordered = sorted(data.libraries, key=lambda i: ((names.get(i) or i).casefold(), i))
    shown = [
        f"• *{name(names[i])}* (`{name(i)}`)" if names.get(i) else f"• `{name(i)}`"
        for i in ordered[:SHOWN_LIBRARIES]
    ]
    if len(ordered) > SHOWN_LIBRARIES:
        shown.append(f"… and {len(ordered) - SHOWN_LIBRARIES} more")
    return [*out, section("\n".join(shown))]


def _health(health: Health | None) -> list[Block]:
    if health is None:
        return []
    stats = health.outbox
    line = f"*Outbox*: {plural(stats.depth, 'message')} waiting"
    if stats.depth:
        line += f", the oldest for {stats.oldest_age:.0f} s"
    failed = stats.by_state.get("failed", 0)
    if failed:
        line += f" · {failed} failed for good"
    if health.last_uplynk:
        call, status, at = health.last_uplynk
        when = slack_date(datetime.fromtimestamp(at, UTC))
        line += f"\n*Last Uplynk call*: `{name(call)}` → `{name(status)}` {when}"
    else:
        line += "\n*Last Uplynk call*: none since this instance started"
    if health.problems:
        line += "\n" + "\n".join(f":warning: {name(p, 300)}" for p in health.problems[:5])
    return [DividerBlock(), _header("Health (admins)"), section(line)]


def home_view(data: HomeData, links: Mapping[str, str], names: Mapping[str, str]) -> dict:
    """The Home tab of `data.user_id` (a views.publish `view`)."""
    intro = SectionBlock(
        text={
            "type": "mrkdwn",
            "text": "Add video assets to an Uplynk library: preview, one click, undo.",
        },
        accessory=button("Add assets", ADD, "home", style="primary"),
    )
    parts: list[Block] = [_header("addtolib"), intro]
    parts += _to_approve(data)
    parts += _awaiting_mine(data)
    parts += _scheduled(data)
    parts += _recent(data, links)
    parts += _libraries(data, names)
    parts += _health(data.health)
    rendered = [b.to_dict() for b in parts]
    if len(rendered) > MAX_HOME_BLOCKS:  # the sections' own bounds keep well inside; a guard
        rendered = rendered[: MAX_HOME_BLOCKS - 1]
        rendered.append(context(f"… more than fits: see {HISTORY}").to_dict())
    return {"type": "home", "callback_id": "addtolib_home", "blocks": rendered}
