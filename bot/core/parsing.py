"""Turn the text of an `/addtolib` slash command into a command object (docs/SPEC.md §2)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from bot.core.schedule.when import KEYWORDS, When, WhenError, parse_when
from bot.core.text import escape_mrkdwn

__all__ = [
    "USAGE",
    "AddCommand",
    "Command",
    "HelpCommand",
    "HistoryCommand",
    "LibraryRef",
    "ParseError",
    "find_asset_ids",
    "parse_asset_list",
    "parse_command",
]

USAGE = (
    "*Usage*\n"
    "• `/addtolib LIBRARY ASSET [ASSET ...]`: add assets to a library. LIBRARY is a library id"
    " or its name (quote a name with spaces); assets are ids or links to them, separated by"
    " spaces, commas, semicolons or new lines.\n"
    "• `/addtolib LIBRARY ASSET [ASSET ...] at 2026-12-24 09:00` (or `at 09:00`, `in 2h`):"
    " add them at that time, read in your Slack time zone unless followed by `UTC` or an"
    " offset such as `+01:00`.\n"
    "• `/addtolib help`: this message, and the libraries you may add to.\n"
    "• `/addtolib history [LIBRARY]`: your recent operations.\n"
    "*Examples*\n"
    '• `/addtolib "Marketing Library" 7a08bca2 41ee4f5a`\n'
    "• `/addtolib 8b69f969c65e481385281331520cf1e2 7a08bca2, 41ee4f5a`\n"
    "• `/addtolib help`\n"
    "• `/addtolib history`"
)

_USAGE_HINT = (
    "Usage: `/addtolib LIBRARY ASSET [ASSET ...]`,"
    ' e.g. `/addtolib "Marketing Library" 7a08bca2 41ee4f5a`'
)

MIN_ID_LENGTH = 8
MAX_ID_LENGTH = 32
MAX_NAME_LENGTH = 256
MAX_SHOWN_TOKENS = 10
MAX_SHOWN_TOKEN_LENGTH = 40

# Zero-width characters often come along when ids are pasted from web pages or documents.
_SEP_CHARS = r"\s,;\u200b\u2060\ufeff"
_SEPARATORS = re.compile(f"[{_SEP_CHARS}]+")
# A Slack-formatted link may carry a label with spaces (`<https://...|my label>`), so it is
# one token; anything else runs to the next separator.
_TOKEN = re.compile(f"<[^<>]*>|[^{_SEP_CHARS}]+")
_HEX_ID = re.compile(f"[0-9a-fA-F]{{{MIN_ID_LENGTH},{MAX_ID_LENGTH}}}")
_HEX32 = re.compile(r"[0-9a-fA-F]{32}")
_HEX32_IN_TEXT = re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{32}(?![0-9a-fA-F])")
_HEX32_SEGMENT = re.compile(r"([0-9a-fA-F]{32})(?:\.\w+)?")
_URL_LIKE = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*://|www\.)")

# Each opening quote may be closed by any quote of its family, so that “Name" or "Name”
# (a Slack client's autocorrect touching only one side) still work.
_DOUBLE_QUOTES = '"“”'
_SINGLE_QUOTES = "'‘’"
_QUOTE_FAMILY = {q: _DOUBLE_QUOTES for q in _DOUBLE_QUOTES} | {
    q: _SINGLE_QUOTES for q in _SINGLE_QUOTES
}

# Regexes (linear, in C) rather than a Python loop over a possibly megabyte-long command.
_FAMILIES = (_DOUBLE_QUOTES, _SINGLE_QUOTES)
_CLOSING = {f: re.compile(f"[{f}]") for f in _FAMILIES}
_CLOSING_WORD = {f: re.compile(f"[{f}](?=[{_SEP_CHARS}]|$)") for f in _FAMILIES}

# Slack escapes these three characters in the text of a slash command.
_SLACK_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"))


class ParseError(ValueError):
    """The command text is malformed; `.message` is fit to show the user (Slack mrkdwn)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class HelpCommand:
    """`/addtolib help` or `/addtolib` with no text."""


@dataclass(frozen=True)
class HistoryCommand:
    """`/addtolib history [LIBRARY]`; `library` is a lowercased id, a name, or None."""

    library: str | None = None


@dataclass(frozen=True)
class LibraryRef:
    """A library given by id (lowercased) or by name: exactly one of the two is set."""

    id: str | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if (self.id is None) == (self.name is None):
            raise ValueError("LibraryRef needs exactly one of id and name")


@dataclass(frozen=True)
class AddCommand:
    """`/addtolib LIBRARY ASSET...`: distinct asset ids in the order given, and the duplicates."""

    library: LibraryRef
    asset_ids: tuple[str, ...]
    duplicates: tuple[str, ...] = ()
    when: When | None = None  # `at <time>` / `in <duration>` (docs/SPEC.md §15)


Command = HelpCommand | HistoryCommand | AddCommand


def parse_command(text: str, max_assets: int = 5000) -> Command:
    """Parse the slash command text; raises only ParseError."""
    text = _strip(text or "")
    if not text:
        return HelpCommand()
    first_word = _first_word(text)
    if first_word.lower() == "help":
        return HelpCommand()
    if first_word.lower() == "history":
        return _parse_history(text[len(first_word) :])
    library, rest = _parse_library(text)
    rest, when = _split_when(rest)
    asset_ids, duplicates = _parse_assets(rest, library, max_assets)
    return AddCommand(library=library, asset_ids=asset_ids, duplicates=duplicates, when=when)


def _split_when(rest: str) -> tuple[str, When | None]:
    """Split the words after the library at the first `at` / `in` (docs/SPEC.md §15).

    Only the assets' part is searched: the library (first word, or quoted) is already taken,
    and neither word is a hex id, so `at` is never read as part of a name or an id.
    """
    lowered = rest.lower()  # the common case, no keyword at all, in one pass in C
    if not any(keyword in lowered for keyword in KEYWORDS):
        return rest, None
    for token in _TOKEN.finditer(rest):
        keyword = token.group()
        if keyword.lower() in KEYWORDS:
            clause = _strip(rest[token.end() :])
            if not clause:
                raise ParseError(
                    f"`{keyword}` needs a time after it, e.g. `at 09:00` or `in 2h`. {_USAGE_HINT}"
                )
            try:
                return rest[: token.start()], parse_when(keyword, clause)
            except WhenError as exc:
                raise ParseError(exc.message) from None
    return rest, None


_LEADING_SEPARATORS = re.compile(f"[{_SEP_CHARS}]+")


def _strip(text: str) -> str:
    """Remove separators at both ends in linear time (str.strip() and re's \\s agree on what
    is a space); a strip-until-stable loop was quadratic on an alternating " ," run."""
    head = _LEADING_SEPARATORS.match(text)
    if head:
        text = text[head.end() :]
    # A regex anchored at the end retries from every position: match the reversed text instead.
    tail = _LEADING_SEPARATORS.match(text[::-1])
    return text[: len(text) - tail.end()] if tail else text


def _first_word(text: str) -> str:
    return _SEPARATORS.split(text, maxsplit=1)[0]


def _parse_history(rest: str) -> HistoryCommand:
    rest = _strip(rest)
    if not rest:
        return HistoryCommand(library=None)
    library, extra = _parse_library(rest)
    extra = _strip(extra)
    if extra:
        raise ParseError(
            f"`history` takes at most one library, but there is more after it: "
            f"{_show(extra)}. Quote a library name that has spaces, "
            'e.g. `/addtolib history "Marketing Library"`.'
        )
    return HistoryCommand(library=library.id if library.id is not None else library.name)


def _parse_library(text: str) -> tuple[LibraryRef, str]:
    """Split `text` into the library (first token, maybe quoted) and the rest."""
    if text[0] in _QUOTE_FAMILY:
        name, rest = _split_quoted(text)
        return LibraryRef(name=_clean_name(name)), rest
    token = _TOKEN.match(text)  # text is stripped, so this matches; guard anyway
    if token is None:
        raise ParseError(f"The command must start with a library id or name. {_USAGE_HINT}")
    word, rest = token.group(), text[token.end() :]
    return _library_from_word(word), rest


def _split_quoted(text: str) -> tuple[str, str]:
    opening, family = text[0], _QUOTE_FAMILY[text[0]]
    first = _CLOSING[family].search(text, 1)
    if first is None:
        raise ParseError(
            f"The library name's quote is not closed: {_show(text)}. "
            f"Put the name between quotes, e.g. `{opening}Marketing Library{opening}`."
        )
    # Prefer a quote that ends a word, so that an apostrophe inside ('Bob's Library') is kept.
    ending = _CLOSING_WORD[family].search(text, 1)
    end = (ending or first).start()
    return text[1:end], text[end + 1 :]


def _clean_name(name: str) -> str:
    for entity, char in _SLACK_ENTITIES:
        name = name.replace(entity, char)
    name = " ".join(name.split())
    if not name:
        raise ParseError(f"The library name is empty. {_USAGE_HINT}")
    if len(name) > MAX_NAME_LENGTH:
        raise ParseError(
            f"The library name is too long ({len(name)} characters; at most {MAX_NAME_LENGTH})."
            " Did you forget to close its quote?"
        )
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise ParseError(f"The library name {_show(name)} contains control characters.")
    return name


def _library_from_word(word: str) -> LibraryRef:
    if _HEX32.fullmatch(word):
        return LibraryRef(id=word.lower())
    if word.startswith("<") or _URL_LIKE.match(word):
        library_id = _id_from_link(_link_target(word))
        if library_id is None:
            raise ParseError(
                f"The command must start with a library id or name, not {_show(word)}. "
                + _USAGE_HINT
            )
        return LibraryRef(id=library_id)
    if _HEX_ID.fullmatch(word):
        raise ParseError(
            f"{_show(word)} looks like an asset id, but the first word must be the library "
            "(its 32-character id or its name). If it really is a library's name, quote it. "
            + _USAGE_HINT
        )
    return LibraryRef(name=_clean_name(word))


def _parse_assets(
    text: str, library: LibraryRef, max_assets: int
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    ids, duplicates = _collect_assets(text, {})
    if not ids:
        shown = _show(library.id or library.name or "")
        raise ParseError(f"No asset ids given for library {shown}. {_USAGE_HINT}")
    _check_count(len(ids), max_assets)
    return tuple(ids), tuple(duplicates)


def parse_asset_list(
    text: str, max_assets: int = 5000, already: Iterable[str] = ()
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """An asset list alone (the modal's input), with the command's grammar: the ids not in
    `already`, in order, and the duplicates (of each other or of `already`). Raises
    ParseError for a bad token, or when `already` and the list together hold no id or too many."""
    seen = dict.fromkeys(already)
    ids, duplicates = _collect_assets(text or "", seen)
    if not ids and not seen:
        raise ParseError("No asset ids given: paste ids or links to assets.")
    _check_count(len(ids) + len(seen), max_assets)
    return tuple(ids), tuple(duplicates)


def find_asset_ids(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The 32-hex asset ids in a message's text, amid prose and links (each link reduced to
    its id): distinct ids in order, and the duplicates. Never raises: other words are prose."""
    ids: dict[str, None] = {}
    duplicates: dict[str, None] = {}
    for token in _TOKEN.findall(text or ""):
        if token.startswith("<") or _URL_LIKE.match(token):
            found = _id_from_link(_link_target(token))
            candidates = [found] if found else []
        else:
            candidates = [m.lower() for m in _HEX32_IN_TEXT.findall(token)]
        for asset_id in candidates:
            if asset_id in ids:
                duplicates[asset_id] = None
            else:
                ids[asset_id] = None
    return tuple(ids), tuple(duplicates)


def _check_count(count: int, max_assets: int) -> None:
    if count > max_assets:
        raise ParseError(
            f"Too many assets: {count} distinct ids, but at most {max_assets} may be added "
            "in one command. Split them into several commands."
        )


def _collect_assets(text: str, seen: dict[str, None]) -> tuple[dict[str, None], dict[str, None]]:
    """Ids in `text` not in `seen` (insertion-ordered sets), and the duplicates."""
    ids: dict[str, None] = {}  # insertion-ordered set
    duplicates: dict[str, None] = {}
    not_ids: list[str] = []
    links_without_id: list[str] = []
    for token in _TOKEN.findall(text):
        if token.startswith("<") or _URL_LIKE.match(token):
            linked = _id_from_link(_link_target(token))
            if linked is None:
                links_without_id.append(token)
                continue
            asset_id = linked
        elif _HEX_ID.fullmatch(token):
            asset_id = token.lower()
        else:
            not_ids.append(token)
            continue
        if asset_id in ids or asset_id in seen:
            duplicates[asset_id] = None
        else:
            ids[asset_id] = None
    _check_bad_tokens(not_ids, links_without_id)
    return ids, duplicates


def _check_bad_tokens(not_ids: list[str], links_without_id: list[str]) -> None:
    problems = []
    if not_ids:
        problems.append(
            f"{_plural(len(not_ids), 'is not an asset id', 'are not asset ids')}: "
            f"{_show_list(not_ids)}. An asset id is hexadecimal, {MIN_ID_LENGTH} to "
            f"{MAX_ID_LENGTH} characters."
        )
    if links_without_id:
        problems.append(
            f"{_plural(len(links_without_id), 'link has', 'links have')} no 32-character asset "
            f"id in {_plural(len(links_without_id), 'it', 'them', bare=True)}: "
            f"{_show_list(links_without_id)}."
        )
    if problems:
        raise ParseError(" ".join(problems) + " Nothing was added.")


def _plural(count: int, one: str, many: str, bare: bool = False) -> str:
    word = one if count == 1 else many
    return word if bare else (f"This {word}" if count == 1 else f"These {count} {word}")


def _link_target(token: str) -> str:
    """The URL of a Slack link token (`<url>` or `<url|label>`), or a bare URL unchanged."""
    if token.startswith("<"):
        token = token[1:].removesuffix(">")
        token = token.split("|", 1)[0]
    return token


def _id_from_link(url: str) -> str | None:
    """The asset id in a link: its last path (or fragment) segment that is a 32-hex id, else
    the last 32-hex id anywhere in it."""
    base, _, fragment = url.partition("#")
    segments = base.partition("?")[0].split("/") + fragment.partition("?")[0].split("/")
    for segment in reversed(segments):
        match = _HEX32_SEGMENT.fullmatch(segment)
        if match:
            return match.group(1).lower()
    found = _HEX32_IN_TEXT.findall(url)
    return found[-1].lower() if found else None


def _show_list(tokens: list[str]) -> str:
    shown = ", ".join(_show(t) for t in tokens[:MAX_SHOWN_TOKENS])
    hidden = len(tokens) - MAX_SHOWN_TOKENS
    return f"{shown} and {hidden} more" if hidden > 0 else shown


def _show(token: str) -> str:
    """A user-supplied token, made safe and short for a Slack mrkdwn code span."""
    for entity, char in _SLACK_ENTITIES:
        token = token.replace(entity, char)
    if len(token) > MAX_SHOWN_TOKEN_LENGTH:
        token = token[: MAX_SHOWN_TOKEN_LENGTH - 1] + "…"
    token = "".join(_escape_invisible(c) for c in token)
    token = escape_mrkdwn(token)
    return "`" + token.replace("`", "'") + "`"


def _escape_invisible(char: str) -> str:
    if unicodedata.category(char) not in ("Cc", "Cf", "Cs", "Zl", "Zp"):
        return char
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"
