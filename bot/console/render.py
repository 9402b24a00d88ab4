"""Block Kit and Slack mrkdwn as terminal text: styled lines, printed plain or with rich."""

from __future__ import annotations

import contextlib
import html
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import ClassVar, TextIO

from rich.console import Console
from rich.padding import Padding
from rich.progress import BarColumn, MofNCompleteColumn, SpinnerColumn, TaskID, TextColumn
from rich.progress import Progress as RichProgress
from rich.text import Text

from bot.console.session import Note, Progress, Session, Shown, is_button

# A run of text and its rich style ("" for none); plain output ignores the style.
Segment = tuple[str, str]

EMOJI = {
    "warning": "⚠",
    "white_check_mark": "✅",
    "heavy_check_mark": "✔",
    "x": "❌",
    "no_entry": "⛔",
    "hourglass_flowing_sand": "⏳",
    "hourglass": "⌛",
    "leftwards_arrow_with_hook": "↩",
    "information_source": "ℹ",
    "tada": "🎉",
    "bell": "🔔",
    "lock": "🔒",
    "ballot_box_with_check": "☑",
}

BUTTON_STYLES = {"primary": "bold green", "danger": "bold red"}

_FENCE = re.compile(r"```\n?(.*?)\n?```(?!`)", re.DOTALL)
_INLINE = re.compile(
    r"(?P<code>`[^`\n]+`)"
    r"|(?P<entity><[^<>\n]+>)"
    r"|(?<![\w*])\*(?P<bold>[^*\n]+?)\*(?![\w*])"
    r"|(?<![\w_])_(?P<italic>[^_\n]+?)_(?![\w_])"
    r"|(?<![\w~])~(?P<strike>[^~\n]+?)~(?![\w~])"
    r"|:(?P<emoji>[a-z0-9_+-]+):"
)


@dataclass
class Line:
    """One line of output; `kind` is "" (text), "header", "code" or "divider"."""

    segments: list[Segment] = field(default_factory=list)
    kind: str = ""

    @property
    def plain(self) -> str:
        return "".join(text for text, _ in self.segments)


# -- mrkdwn ------------------------------------------------------------------------------------


def _join(style: str, extra: str) -> str:
    return f"{style} {extra}".strip()


def _entity(inner: str, channels: Mapping[str, str]) -> Segment:
    """<@U1>, <#C1>, <!date^…|fallback>, <!subteam^S1>, <!here>, <url|label> as display text."""
    target, _, label = inner.partition("|")
    if target.startswith("@"):
        return f"@{label or target[1:]}", "bold magenta"
    if target.startswith("#"):
        return f"#{label or channels.get(target[1:], target[1:])}", "bold magenta"
    if target.startswith("!date^"):
        return label or target, ""
    if target.startswith("!subteam^"):
        return label if label.startswith("@") else f"@{label or target[9:]}", "bold magenta"
    if target.startswith("!"):
        return f"@{label or target[1:]}", "bold magenta"
    return label or target, "underline"


def _inline(text: str, style: str, channels: Mapping[str, str]) -> list[Segment]:
    out: list[Segment] = []
    pos = 0
    for match in _INLINE.finditer(text):
        if match.start() > pos:
            out.append((html.unescape(text[pos : match.start()]), style))
        kind = match.lastgroup
        assert kind is not None  # each alternative of _INLINE is a named group
        body = match.group(kind)
        if kind == "code":
            out.append((html.unescape(body[1:-1]), _join(style, "cyan")))
        elif kind == "entity":
            shown, extra = _entity(body[1:-1], channels)
            out.append((html.unescape(shown), _join(style, extra)))
        elif kind == "emoji":
            out.append((EMOJI.get(body, match.group(0)), style))
        else:
            extra = {"bold": "bold", "italic": "italic", "strike": "strike"}[kind]
            out.extend(_inline(body, _join(style, extra), channels))
        pos = match.end()
    if pos < len(text):
        out.append((html.unescape(text[pos:]), style))
    return out


def mrkdwn(text: str, style: str = "", channels: Mapping[str, str] | None = None) -> list[Line]:
    """Slack mrkdwn as styled lines (``` blocks become "code" lines)."""
    channels = channels or {}
    lines: list[Line] = []
    pos = 0
    for match in _FENCE.finditer(text):
        lines.extend(_text_lines(text[pos : match.start()], style, channels))
        for raw in match.group(1).split("\n"):
            lines.append(Line([(html.unescape(raw), _join(style, "cyan"))], "code"))
        pos = match.end()
    lines.extend(_text_lines(text[pos:], style, channels))
    return lines


def _text_lines(text: str, style: str, channels: Mapping[str, str]) -> list[Line]:
    text = text.strip("\n")
    if not text:
        return []
    return [Line(_inline(raw, style, channels)) for raw in text.split("\n")]


def _plain_text(obj: Mapping | None, style: str, channels: Mapping[str, str]) -> list[Line]:
    """A text object (mrkdwn or plain_text) as lines."""
    if not obj:
        return []
    if obj.get("type") == "mrkdwn":
        return mrkdwn(obj.get("text", ""), style, channels)
    text = obj.get("text", "")
    text = re.sub(r":([a-z0-9_+-]+):", lambda m: EMOJI.get(m.group(1), m.group(0)), text)
    return [Line([(raw, style)]) for raw in text.split("\n")]


# -- Block Kit ---------------------------------------------------------------------------------


def _button(element: Mapping, numbers: Iterator[int]) -> list[Segment]:
    label = (element.get("text") or {}).get("text", "?")
    style = BUTTON_STYLES.get(element.get("style", ""), "bold")
    return [(f"[{next(numbers, '?')}]", "bold yellow"), (" ", ""), (label, style)]


def _flatten(lines: list[Line], style: str = "") -> list[Segment]:
    """Lines joined into one run of segments, separated by spaces."""
    segments: list[Segment] = []
    for line in lines:
        segments.extend([(" ", style), *line.segments] if segments else line.segments)
    return segments


def _field(obj: Mapping, channels: Mapping[str, str]) -> Line:
    """A section field "*label*\nvalue" as one line "label: value"."""
    lines = _plain_text(obj, "", channels)
    if len(lines) >= 2 and all("bold" in style for _, style in lines[0].segments):
        return Line([*lines[0].segments, (": ", ""), *_flatten(lines[1:])])
    return Line(_flatten(lines))


def _element_text(element: Mapping, style: str, channels: Mapping[str, str]) -> list[Segment]:
    if element.get("type") == "image":
        return [(f"[image: {element.get('alt_text', '')}]", style)]
    return _flatten(_plain_text(element, style, channels), style)


def _section(block: Mapping, numbers: Iterator[int], channels: Mapping[str, str]) -> list[Line]:
    lines = _plain_text(block.get("text"), "", channels)
    lines.extend(_field(f, channels) for f in block.get("fields") or ())
    accessory = block.get("accessory")
    if is_button(accessory):
        if not lines:
            lines.append(Line())
        lines[-1].segments.extend([("   ", ""), *_button(accessory, numbers)])
    return lines


def _actions(block: Mapping, numbers: Iterator[int]) -> Line:
    segments: list[Segment] = []
    for element in block.get("elements") or ():
        if segments:
            segments.append(("  ", ""))
        if is_button(element):
            segments.extend(_button(element, numbers))
        else:
            placeholder = (element.get("placeholder") or {}).get("text", "")
            segments.append((f"[{element.get('type', 'element')} {placeholder}]".strip(), "dim"))
    return Line(segments)


def _rich_text(block: Mapping) -> list[Line]:
    def texts(node: object) -> Iterator[str]:
        if isinstance(node, Mapping):
            if isinstance(node.get("text"), str):
                yield node["text"]
            for child in node.get("elements") or ():
                yield from texts(child)

    return [Line([(raw, "")]) for raw in "".join(texts(block)).split("\n")]


def block_lines(
    message: Mapping, numbers: Iterable[int] = (), channels: Mapping[str, str] | None = None
) -> list[Line]:
    """A message's blocks (or its text when it has none) as lines; buttons take `numbers`."""
    channels = channels or {}
    blocks = message.get("blocks") or []
    if not blocks:
        return mrkdwn(message.get("text") or "", "", channels)
    numbers = iter(numbers)
    lines: list[Line] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            lines.append(Line(_flatten(_plain_text(block.get("text"), "bold", channels)), kind))
        elif kind == "section":
            lines.extend(_section(block, numbers, channels))
        elif kind == "context":
            segments: list[Segment] = []
            for element in block.get("elements") or ():
                if segments:
                    segments.append(("  ", "dim"))
                segments.extend(_element_text(element, "dim", channels))
            lines.append(Line(segments))
        elif kind == "actions":
            lines.append(_actions(block, numbers))
        elif kind == "divider":
            lines.append(Line([("─" * 20, "dim")], "divider"))
        elif kind == "image":
            lines.append(Line([(f"[image: {block.get('alt_text', '')}]", "dim")]))
        elif kind == "rich_text":
            lines.extend(_rich_text(block))
        else:
            lines.append(Line([(f"[{kind} block]", "dim")]))
    return lines


# -- output ------------------------------------------------------------------------------------


def to_plain(lines: Iterable[Line], indent: str = "") -> str:
    """Lines as plain text (no ANSI): headers get "# ", code lines a bar."""
    out = []
    for line in lines:
        text = line.plain.rstrip()
        if line.kind == "header":
            text = f"# {text}"
        elif line.kind == "code":
            text = f"│ {text}"
        out.append(f"{indent}{text}".rstrip())
    return "\n".join(out)


def to_rich(lines: Iterable[Line]) -> Text:
    """Lines as one rich Text."""
    out = Text()
    for n, line in enumerate(lines):
        if n:
            out.append("\n")
        if line.kind == "code":
            out.append("│ ", "dim")
        for text, style in line.segments:
            out.append(text, _join(style, "underline") if line.kind == "header" else style)
    return out


# -- screens -----------------------------------------------------------------------------------


def place(channel: str, session: Session) -> str:
    """#console for a channel, "a DM" for a direct message (D…, or a user id as channel)."""
    return "a DM" if channel[:1] in "DUW" else f"#{session.channel_name(channel)}"


def label(shown: Shown, session: Session, last: Shown | None) -> str:
    """Who sees a message, and what it replaced: "only you can see this · replaces …"."""
    if shown.where == "home":
        whose = "your" if shown.owner == session.user else f"@{shown.owner}'s"
        return f"{whose} App Home" + (" · published again" if shown.replaces else "")
    channel = place(shown.channel, session)
    if shown.where == "ephemeral":
        who = "you" if shown.owner == session.user else f"@{shown.owner}"
        text = f"only {who} can see this"
        if shown.channel != session.channel:
            text += f" (in {channel})"
    elif shown.where == "thread":
        text = f"↳ thread in {channel}"
        parent = session.parent(shown)
        if (
            parent is not None
            and last is not None
            and last is not parent
            and last.thread_ts != shown.thread_ts
        ):
            text += f", reply to “{snippet(parent, session)}”"
    elif shown.where == "dm":
        text = "direct message"
        if shown.channel[:1] in "UW":
            text += f" to @{shown.channel}"
    else:
        text = f"{channel} (everyone)"
    if shown.edited:
        text += " · edited"
    if shown.replaces is not None:
        above = shown.replaces is last
        old = "the message above" if above else f"“{snippet(shown.replaces, session)}”"
        text += f" · replaces {old}"
    return text


def snippet(shown: Shown, session: Session, width: int = 60) -> str:
    """A message's fallback text, rendered and shortened, to name it in a label."""
    lines = mrkdwn(shown.payload.get("text") or "", "", session.channel_names)
    text = " ".join(line.plain.strip() for line in lines).strip()
    return text if len(text) <= width else text[: width - 1] + "…"


class Screen:
    """Prints what the console user sees; PlainScreen and RichScreen say how."""

    def __init__(self, session: Session):
        self.session = session
        self.last: Shown | None = None

    def show(self, event: Shown | Note) -> None:
        if isinstance(event, Note):
            self.info(f"({event.text})")
            return
        numbers = [b.number for b in event.buttons]
        lines = block_lines(event.payload, numbers, self.session.channel_names)
        self.message(label(event, self.session, self.last), event.where == "thread", lines)
        self.last = event

    def working(self) -> contextlib.AbstractContextManager:
        raise NotImplementedError

    def message(self, title: str, thread: bool, lines: list[Line]) -> None:
        raise NotImplementedError

    def info(self, text: str) -> None:
        raise NotImplementedError

    def echo(self, line: str) -> None:
        raise NotImplementedError

    def ask(self) -> str:
        raise NotImplementedError

    def prompt(self) -> str:
        return f"{self.session.user} in #{self.session.channel_name(self.session.channel)}> "


class PlainScreen(Screen):
    """Plain text, no ANSI: for pipes, scripts and tests."""

    def __init__(self, session: Session, out: TextIO | None = None):
        super().__init__(session)
        self.out = out or sys.stdout

    def _print(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def message(self, title: str, thread: bool, lines: list[Line]) -> None:
        self._print(f"  {title}" if thread else f"── {title} ──")
        self._print(to_plain(lines, "    " if thread else ""))

    def info(self, text: str) -> None:
        self._print(text)

    def echo(self, line: str) -> None:
        self._print(f"> {line}")

    def ask(self) -> str:
        return input(self.prompt())

    @contextlib.contextmanager
    def working(self) -> Iterator[_PlainProgress]:
        yield _PlainProgress(self)


class _PlainProgress:
    def __init__(self, screen: PlainScreen):
        self.screen = screen
        self.last: tuple[int, int] | None = None

    def update(self, progress: Progress) -> None:
        if (progress.done, progress.total) != self.last:
            self.last = (progress.done, progress.total)
            self.screen.info(f"progress {progress.done}/{progress.total}")


class RichScreen(Screen):
    """Colours, rules and a live progress bar, for a terminal."""

    STYLES: ClassVar[dict[str, str]] = {
        "ephemeral": "yellow",
        "channel": "cyan",
        "thread": "cyan",
        "dm": "magenta",
    }

    def __init__(self, session: Session):
        super().__init__(session)
        self.console = Console(highlight=False)

    def show(self, event: Shown | Note) -> None:
        self.style = self.STYLES.get(getattr(event, "where", ""), "")
        super().show(event)

    def message(self, title: str, thread: bool, lines: list[Line]) -> None:
        if thread:
            self.console.print(Text(f"  {title}", style=f"dim {self.style}"))
            self.console.print(Padding(to_rich(lines), (0, 0, 0, 4)))
        else:
            rule = Text(title, style=self.style)
            self.console.rule(rule, align="left", style=f"dim {self.style}")
            self.console.print(to_rich(lines))

    def info(self, text: str) -> None:
        self.console.print(Text(text, style="dim"))

    def echo(self, line: str) -> None:
        self.console.print(Text(f"> {line}", style="bold"))

    def ask(self) -> str:
        with contextlib.suppress(ImportError):
            import readline  # noqa: F401 - line editing and history for input()
        return self.console.input(Text(self.prompt(), style="bold green"))

    @contextlib.contextmanager
    def working(self) -> Iterator[_RichProgress]:
        columns = (
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
        )
        with RichProgress(*columns, console=self.console, transient=True) as bar:
            yield _RichProgress(bar, bar.add_task("waiting for the bot…", total=None))


class _RichProgress:
    def __init__(self, bar: RichProgress, task: TaskID):
        self.bar = bar
        self.task = task

    def update(self, progress: Progress) -> None:
        description = progress.text.split(":")[0] if ":" in progress.text else "adding"
        self.bar.update(
            self.task, total=progress.total, completed=progress.done, description=description
        )
