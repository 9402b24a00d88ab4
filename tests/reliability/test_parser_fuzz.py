"""parse_command over 10,000+ generated texts: it returns a command or raises ParseError."""

from __future__ import annotations

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
    database=None,  # CI runs are independent; no example database left in the tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
ASSET_ID = re.compile(r"^[0-9a-f]{8,32}$")
LIBRARY_ID = re.compile(r"^[0-9a-f]{32}$")
MAX_ASSETS = 50

hex_ids = st.text("0123456789abcdefABCDEF", min_size=8, max_size=32)
hex32 = st.text("0123456789abcdefABCDEF", min_size=32, max_size=32)
names = st.sampled_from(["Marketing Library", "Ad Breaks", "Bob's Library", "x", "Ünïcödé 名前"])
quotes = st.sampled_from(['"', "“", "”", "'", "‘", "’"])
separators = st.sampled_from([" ", ",", ";", "\n", "\t", ", ", " ;\n", "\u200b", "\ufeff"])
control = st.characters(max_codepoint=0x1F) | st.sampled_from(["\x7f", "\u2028", "\u202e"])
links = st.builds(
    lambda scheme, host, ident, label: f"<{scheme}://{host}/assets/{ident}{label}>",
    st.sampled_from(["https", "http", "ftp"]),
    st.sampled_from(["cms.uplynk.com", "example.com", ""]),
    hex32 | hex_ids | st.text(max_size=10),
    st.sampled_from(["", "|label", "|a b c", "|"]),
)
bare_links = st.builds(lambda ident: f"https://cms.uplynk.com/#/assets/{ident}", hex32 | hex_ids)
entities = st.sampled_from(["&lt;", "&gt;", "&amp;", "<", ">", "|", "`", "*"])
keywords = st.sampled_from(["help", "HELP", "history", "History", "hist"])
quoted_names = st.builds(lambda q1, n, q2: f"{q1}{n}{q2}", quotes, names, quotes | st.just(""))
tokens = st.one_of(
    hex_ids,
    hex32,
    names,
    quoted_names,
    quotes,
    links,
    bare_links,
    entities,
    keywords,
    control,
    st.text(max_size=6),
)


@st.composite
def command_texts(draw: st.DrawFn) -> str:
    """Ids, quotes, links, separators and control characters, mixed as users paste them."""
    parts = draw(st.lists(tokens, max_size=12))
    out = []
    for part in parts:
        out.append(part)
        out.append(draw(separators | st.just("") | control))
    return "".join(out)


def check(text: str) -> None:
    try:
        command = parse_command(text, max_assets=MAX_ASSETS)
    except ParseError as exc:
        assert isinstance(exc.message, str) and exc.message.strip()
        assert "Traceback" not in exc.message
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
@FUZZ
@given(st.text())
def test_any_text_parses_or_raises_parse_error(text: str) -> None:
    check(text)


@pytest.mark.reliability
@FUZZ
@given(command_texts())
def test_command_shaped_text_parses_or_raises_parse_error(text: str) -> None:
    check(text)


@pytest.mark.reliability
@settings(max_examples=500, deadline=None, database=None)
@given(st.lists(hex32, min_size=1, max_size=20), hex32, separators)
def test_well_formed_commands_keep_every_id(ids: list[str], library: str, sep: str) -> None:
    command = parse_command(f"{library}{sep or ' '}{(sep or ' ').join(ids)}")
    assert isinstance(command, AddCommand)
    assert command.library == LibraryRef(id=library.lower())
    assert list(command.asset_ids) == list(dict.fromkeys(i.lower() for i in ids))
