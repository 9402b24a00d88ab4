"""parse_command over 10,000+ generated texts: it returns a command or raises ParseError."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.parsing import (
    AddCommand,
    HelpCommand,
    HistoryCommand,
    LibraryRef,
    ParseError,
    parse_command,
)

FUZZ = settings(
    max_examples=10_000,
    deadline=None,
    database=None,  # every CI run starts afresh; no example database left in the tree
    suppress_health_check=[HealthCheck.too_slow],
)
ASSET_ID = re.compile(r"^[0-9a-f]{8,32}$")
LIBRARY_ID = re.compile(r"^[0-9a-f]{32}$")
MAX_ASSETS = 40
HEX = "0123456789abcdefABCDEF"


def _fragments() -> list[str]:
    """256 pieces of what users paste: ids, names, quotes, links, separators, control chars.

    Hypothesis draws one byte string and each byte picks a piece (one draw per example keeps
    10,000 examples fast); shrinking a byte toward 0 shrinks toward a plain separator.
    """
    rng = random.Random(6)

    def hex_id(length: int) -> str:
        return "".join(rng.choice(HEX) for _ in range(length))

    pieces = [" ", ",", ";", "\n", "\t", ", ", " ;\n", "\u200b", "\u2060", "\ufeff", "\r\n"]
    pieces += ["help", "HELP", "history", "History ", "hist", "helpful"]
    pieces += ['"', "“", "”", "'", "‘", "’", "`", "<", ">", "|", "*", "&lt;", "&gt;", "&amp;"]
    pieces += ["Marketing Library", "Ad Breaks", "Bob's", "Ünïcödé 名前", "x" * 300, "🎬"]
    pieces += ['"Marketing Library"', "“Marketing Library”", "'Ad Breaks’", '"unclosed', '""']
    pieces += [chr(c) for c in range(32)] + ["\x7f", "\x85", "\u2028", "\u202e", "\ud800"]
    pieces += ["\u0301", "\uff10", "٣", "ß", "İ", "\N{NO-BREAK SPACE}", "\u3000"]
    for length in (7, 8, 8, 12, 16, 31, 32, 32, 32, 33, 40):
        for _ in range(4):
            pieces.append(hex_id(length))
    for _ in range(30):
        ident = rng.choice([hex_id(32), hex_id(32).upper(), hex_id(8), "", "nothex"])
        url = rng.choice(
            [
                f"https://cms.uplynk.com/static/cms2/index.html#/assets/{ident}",
                f"https://cms.uplynk.com/asset/{ident}.m3u8?x=1",
                f"http://example.com/{ident}/{hex_id(32)}",
                f"ftp://{ident}",
                f"www.example.com/{ident}",
                f"mailto:{ident}@example.com",
            ]
        )
        pieces.append(rng.choice([f"<{url}>", f"<{url}|label>", f"<{url}|a b c>", url, f"<{url}"]))
    while len(pieces) < 256:
        pieces.append("".join(rng.choice(HEX + "-_.:/#?=x ") for _ in range(rng.randint(1, 9))))
    return pieces[:256]


FRAGMENTS = _fragments()
pasted_text = st.binary(max_size=40).map(lambda data: "".join(FRAGMENTS[b] for b in data))


def check(text: str) -> None:
    """parse_command returns a well-formed command or raises ParseError with a message."""
    try:
        command = parse_command(text, max_assets=MAX_ASSETS)
    except ParseError as exc:
        assert isinstance(exc.message, str) and exc.message.strip()
        return
    assert isinstance(command, HelpCommand | HistoryCommand | AddCommand)
    if isinstance(command, AddCommand):
        assert isinstance(command.library, LibraryRef)
        assert (command.library.id is None) != (command.library.name is None)
        if command.library.id is not None:
            assert LIBRARY_ID.match(command.library.id)
        else:
            assert command.library.name and command.library.name == command.library.name.strip()
        assert 1 <= len(command.asset_ids) <= MAX_ASSETS
        assert len(set(command.asset_ids)) == len(command.asset_ids)
        assert all(ASSET_ID.match(a) for a in command.asset_ids)
        assert set(command.duplicates) <= set(command.asset_ids)


@pytest.mark.reliability
def test_the_fragments_can_make_every_kind_of_command() -> None:
    assert len(FRAGMENTS) == 256 and FRAGMENTS[0] == " " and "\x00" in FRAGMENTS
    ids = [f for f in FRAGMENTS if re.fullmatch(r"[0-9a-fA-F]{32}", f)]
    links = [f for f in FRAGMENTS if f.startswith("<http") and f.endswith("|label>")]
    assert ids and links
    kinds = {
        type(parse_command(text))
        for text in (f"{ids[0]} {ids[1]}", f'"Marketing Library" {ids[2]}', "help", "history")
    }
    assert kinds == {AddCommand, HelpCommand, HistoryCommand}
    with pytest.raises(ParseError):
        parse_command(f"{ids[0]} {FRAGMENTS[-1]} \x00")


@pytest.mark.reliability
@FUZZ
@given(st.text())
def test_any_text_parses_or_raises_parse_error(text: str) -> None:
    check(text)


@pytest.mark.reliability
@FUZZ
@given(pasted_text)
def test_pasted_ids_quotes_links_and_control_chars_parse_or_raise(text: str) -> None:
    check(text)
