"""Block Kit and Slack mrkdwn as terminal text: styled lines, printed plain or with rich."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from rich.text import Text

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
}

BUTTON_STYLES = {"primary": "bold green", "danger": "bold red"}

_FENCE = re.compile(r"```\n?(.*?)\n?```", re.DOTALL)
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


def buttons_of(blocks: Iterable[Mapping]) -> list[tuple[Mapping, Mapping]]:
    """(block, button) pairs in display order: actions elements and section accessories."""
    found = []
    for block in blocks or ():
        if block.get("type") == "actions":
            found.extend((block, e) for e in block.get("elements") or () if _is_button(e))
        elif block.get("type") == "section" and _is_button(block.get("accessory")):
            found.append((block, block["accessory"]))
    return found


def _is_button(element: object) -> bool:
    return isinstance(element, Mapping) and element.get("type") == "button"


def _button(element: Mapping, numbers: Iterator[int]) -> list[Segment]:
    label = (element.get("text") or {}).get("text", "?")
    style = BUTTON_STYLES.get(element.get("style", ""), "bold")
    return [(f"[{next(numbers, '?')}]", "bold yellow"), (" ", ""), (label, style)]


def _field(obj: Mapping, channels: Mapping[str, str]) -> Line:
    """A section field "*label*\\nvalue" as one line "label: value"."""
    lines = _plain_text(obj, "", channels)
    if len(lines) >= 2 and all("bold" in style for _, style in lines[0].segments):
        rest = " ".join(line.plain for line in lines[1:])
        segments = lines[1].segments if len(lines) == 2 else [(rest, "")]
        return Line([*lines[0].segments, (": ", ""), *segments])
    return Line([seg for line in lines for seg in ((" ", ""), *line.segments)][1:])


def _element_text(element: Mapping, style: str, channels: Mapping[str, str]) -> list[Segment]:
    if element.get("type") == "image":
        return [(f"[image: {element.get('alt_text', '')}]", style)]
    lines = _plain_text(element, style, channels)
    segments: list[Segment] = []
    for line in lines:
        segments.extend([(" ", style), *line.segments] if segments else line.segments)
    return segments


def _section(block: Mapping, numbers: Iterator[int], channels: Mapping[str, str]) -> list[Line]:
    lines = _plain_text(block.get("text"), "", channels)
    lines.extend(_field(f, channels) for f in block.get("fields") or ())
    accessory = block.get("accessory")
    if _is_button(accessory):
        if not lines:
            lines.append(Line())
        lines[-1].segments.extend([("   ", ""), *_button(accessory, numbers)])
    return lines


def _actions(block: Mapping, numbers: Iterator[int]) -> Line:
    segments: list[Segment] = []
    for element in block.get("elements") or ():
        if segments:
            segments.append(("  ", ""))
        if _is_button(element):
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
            lines.append(Line(_plain_text(block.get("text"), "bold", channels)[0].segments, kind))
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


def to_rich(lines: Iterable[Line], indent: str = "") -> Text:
    """Lines as one rich Text."""
    out = Text()
    for n, line in enumerate(lines):
        if n:
            out.append("\n")
        out.append(indent)
        if line.kind == "code":
            out.append("│ ", "dim")
        for text, style in line.segments:
            out.append(text, _join(style, "underline") if line.kind == "header" else style)
    return out
