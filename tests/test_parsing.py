"""Tests for bot.core.parsing: every rule and error of SPEC 2, and property-based fuzzing."""

import os
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.parsing import (
    USAGE,
    AddCommand,
    HelpCommand,
    HistoryCommand,
    LibraryRef,
    ParseError,
    parse_command,
)

LIB = "8b69f969c65e481385281331520cf1e2"
A1 = "7a08bca2"
A2 = "41ee4f5a"
LONG_A = "0123456789abcdef0123456789abcdef"
LONG_B = "fedcba9876543210fedcba9876543210"

FUZZ_EXAMPLES = int(os.environ.get("ADDTOLIB_FUZZ_EXAMPLES", "200"))
settings.register_profile(
    "addtolib-fuzz",
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
fuzz = settings.get_profile("addtolib-fuzz")


def error_of(text: str, **kwargs) -> str:
    with pytest.raises(ParseError) as info:
        parse_command(text, **kwargs)
    assert info.value.message == str(info.value)
    return info.value.message


# -- help and history ---------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "\n\t ", "help", "HELP", "Help", "  help  "])
def test_empty_text_or_help_is_help(text):
    assert parse_command(text) == HelpCommand()


def test_history_without_library():
    assert parse_command("history") == HistoryCommand(library=None)
    assert parse_command("  HISTORY ") == HistoryCommand(library=None)


def test_history_with_library_id_is_lowercased():
    assert parse_command(f"history {LIB.upper()}") == HistoryCommand(library=LIB)


def test_history_with_library_name():
    assert parse_command("history Marketing") == HistoryCommand(library="Marketing")
    assert parse_command('history "Marketing Library"') == HistoryCommand(
        library="Marketing Library"
    )


def test_history_with_two_words_says_to_quote():
    message = error_of("history Marketing Library")
    assert "at most one library" in message
    assert "`Library`" in message


def test_history_with_unclosed_quote():
    assert "quote is not closed" in error_of('history "Marketing Library')


# -- the library --------------------------------------------------------------------------


def test_library_by_id_any_case():
    command = parse_command(f"{LIB.upper()} {A1}")
    assert command == AddCommand(LibraryRef(id=LIB), (A1,), ())


def test_library_by_single_word_name():
    assert parse_command(f"Marketing {A1}").library == LibraryRef(name="Marketing")


@pytest.mark.parametrize(
    "quoted",
    [
        '"Marketing Library"',
        "'Marketing Library'",
        "“Marketing Library”",
        "‘Marketing Library’",
        '“Marketing Library"',
        '"Marketing Library”',
        "”Marketing Library”",
        "'Marketing Library’",
    ],
)
def test_library_name_in_any_quotes(quoted):
    command = parse_command(f"{quoted} {A1} {A2}")
    assert command == AddCommand(LibraryRef(name="Marketing Library"), (A1, A2), ())


def test_quoted_name_keeps_an_apostrophe_inside():
    assert parse_command(f"'Bob's Library' {A1}").library == LibraryRef(name="Bob's Library")
    assert parse_command(f'"Bob\'s Library" {A1}').library == LibraryRef(name="Bob's Library")


def test_quoted_name_collapses_inner_spaces():
    assert parse_command(f'"  Marketing   Library " {A1}').library.name == "Marketing Library"


def test_quoted_name_followed_directly_by_an_asset():
    command = parse_command(f'"Marketing Library"{A1}')
    assert command == AddCommand(LibraryRef(name="Marketing Library"), (A1,), ())


def test_quoted_32_hex_is_a_name():
    assert parse_command(f'"{LIB}" {A1}').library == LibraryRef(name=LIB)


def test_slack_escaped_ampersand_in_name_is_unescaped():
    assert parse_command(f'"Sales &amp; Marketing" {A1}').library.name == "Sales & Marketing"


def test_library_link_is_reduced_to_its_id():
    command = parse_command(f"<https://cms.uplynk.com/#/libraries/{LIB.upper()}> {A1}")
    assert command.library == LibraryRef(id=LIB)


def test_library_ref_needs_exactly_one_of_id_and_name():
    with pytest.raises(ValueError):
        LibraryRef()
    with pytest.raises(ValueError):
        LibraryRef(id=LIB, name="x")


@pytest.mark.parametrize("opening", ['"', "'", "“", "‘"])
def test_unclosed_quote_is_named(opening):
    message = error_of(f"{opening}Marketing Library {A1} {A2}")
    assert "library name's quote is not closed" in message
    assert "Marketing Library" in message


def test_empty_quoted_name():
    assert "library name is empty" in error_of(f'"" {A1}')
    assert "library name is empty" in error_of(f'"   " {A1}')


def test_overlong_name():
    assert "too long" in error_of(f'"{"x" * 300}" {A1}')


def test_control_characters_in_name():
    assert "control characters" in error_of(f'"Mar\x00keting" {A1}')


def test_short_hex_first_word_is_taken_for_a_missing_library():
    message = error_of(f"{A1} {A2}")
    assert f"`{A1}` looks like an asset id" in message
    assert "first word must be the library" in message
    assert "quote it" in message


def test_short_hex_library_name_can_be_quoted():
    assert parse_command(f'"deadbeef" {A1}').library == LibraryRef(name="deadbeef")


def test_link_without_id_as_library():
    message = error_of(f"<https://example.com/page> {A1}")
    assert "must start with a library" in message
    assert "example.com/page" in message


# -- the assets ---------------------------------------------------------------------------


def test_assets_separated_by_spaces_commas_semicolons_newlines_tabs():
    ids = [f"{i:08x}" for i in range(1, 8)]
    text = f"Lib {ids[0]}, {ids[1]};{ids[2]}\n{ids[3]}\t{ids[4]} ,; {ids[5]}\r\n{ids[6]},"
    assert parse_command(text).asset_ids == tuple(ids)


def test_assets_are_lowercased_and_keep_their_order():
    assert parse_command(f"Lib {LONG_B.upper()} {A2} {A1.upper()}").asset_ids == (LONG_B, A2, A1)


@pytest.mark.parametrize("length", [8, 9, 16, 31, 32])
def test_hex_ids_of_8_to_32_characters_are_accepted(length):
    asset = ("0123456789abcdef" * 2)[:length]
    assert parse_command(f"Lib {asset}").asset_ids == (asset,)


@pytest.mark.parametrize("token", ["1234567", "0123456789abcdef0123456789abcdef0", "7a08bcaz"])
def test_hex_of_wrong_length_or_non_hex_is_rejected_by_name(token):
    message = error_of(f"Lib {A1} {token}")
    assert f"`{token}`" in message
    assert "not an asset id" in message
    assert "8 to 32" in message


def test_duplicates_are_dropped_and_reported():
    command = parse_command(f"Lib {A1} {A2} {A1.upper()} {A1} {A2}")
    assert command.asset_ids == (A1, A2)
    assert command.duplicates == (A1, A2)


def test_slack_link_is_reduced_to_its_id():
    text = f"Lib <https://cms.uplynk.com/static/cms2/index.html#/assets/{LONG_A.upper()}>"
    assert parse_command(text).asset_ids == (LONG_A,)


def test_slack_link_with_a_label_containing_spaces():
    text = f"Lib <https://cms.uplynk.com/assets/{LONG_A}|my nice asset> {A1}"
    assert parse_command(text).asset_ids == (LONG_A, A1)


def test_bare_url_is_reduced_to_its_id():
    text = f"Lib https://content.uplynk.com/{LONG_A}.m3u8?x=1"
    assert parse_command(text).asset_ids == (LONG_A,)


def test_link_with_several_ids_takes_the_last_path_segment():
    text = f"Lib <https://cms.uplynk.com/libraries/{LIB}/assets/{LONG_A}?ref={LONG_B}>"
    assert parse_command(text).asset_ids == (LONG_A,)


def test_link_and_id_of_the_same_asset_are_duplicates():
    command = parse_command(f"Lib <https://x.example/{LONG_A}> {LONG_A}")
    assert command.asset_ids == (LONG_A,)
    assert command.duplicates == (LONG_A,)


def test_link_without_an_id_is_rejected_by_name():
    message = error_of(f"Lib {A1} <https://example.com/nothing-here|label>")
    assert "no 32-character asset id" in message
    assert "example.com/nothing-here" in message


def test_slack_mentions_are_rejected_as_links_without_id():
    assert "no 32-character asset id" in error_of(f"Lib {A1} <@U0123ABCD>")


def test_bad_tokens_are_all_named_up_to_ten():
    bad = [f"bad{i}" for i in range(13)]
    message = error_of("Lib " + " ".join([A1, *bad]))
    assert "These 13 are not asset ids" in message
    for token in bad[:10]:
        assert f"`{token}`" in message
    assert "`bad10`" not in message
    assert "and 3 more" in message


def test_bad_and_link_problems_reported_together():
    message = error_of(f"Lib nope <https://example.com/x> {A1}")
    assert "`nope`" in message
    assert "example.com/x" in message
    assert "Nothing was added" in message


def test_very_long_bad_token_is_truncated_in_the_message():
    message = error_of(f"Lib {A1} " + "z" * 5000)
    assert "z" * 39 + "…" in message
    assert len(message) < 400


def test_bad_token_is_made_safe_for_slack():
    message = error_of(f"Lib {A1} a`b<c>&d\x07")
    assert "`a'b&lt;c&gt;&amp;d\\x07`" in message


def test_no_assets_gives_a_usage_hint():
    message = error_of("Marketing")
    assert "No asset ids given" in message
    assert "`Marketing`" in message
    assert "Usage" in message
    assert "No asset ids given" in error_of('"Marketing Library"  ,; ')


def test_too_many_assets_names_limit_and_count():
    ids = " ".join(f"{i:08x}" for i in range(6))
    assert len(parse_command(f"Lib {ids}", max_assets=6).asset_ids) == 6
    message = error_of(f"Lib {ids}", max_assets=5)
    assert "6 distinct ids" in message
    assert "at most 5" in message


def test_duplicates_do_not_count_toward_the_limit():
    assert parse_command(f"Lib {A1} {A1} {A1}", max_assets=1).asset_ids == (A1,)


def test_default_limit_is_5000():
    ids = " ".join(f"{i:08x}" for i in range(5001))
    assert "at most 5000" in error_of(f"Lib {ids}")


def test_zero_width_spaces_are_separators():
    assert parse_command(f"Lib\u200b{A1}\ufeff{A2}\u200b").asset_ids == (A1, A2)


def test_usage_has_the_examples():
    assert '/addtolib "Marketing Library" 7a08bca2 41ee4f5a' in USAGE
    assert "/addtolib help" in USAGE
    assert "/addtolib history" in USAGE


def test_parse_error_is_a_value_error():
    assert issubclass(ParseError, ValueError)


# -- properties ---------------------------------------------------------------------------

COMMANDS = (HelpCommand, HistoryCommand, AddCommand)


def assert_command_or_parse_error(text: str, max_assets: int = 5000) -> None:
    try:
        command = parse_command(text, max_assets=max_assets)
    except ParseError as exc:
        assert isinstance(exc.message, str) and exc.message.strip()
    else:
        assert isinstance(command, COMMANDS)
        if isinstance(command, AddCommand):
            assert 0 < len(command.asset_ids) <= max_assets
            assert len(set(command.asset_ids)) == len(command.asset_ids)


@fuzz
@given(st.text())
def test_any_text_gives_a_command_or_parse_error(text):
    assert_command_or_parse_error(text)


quotes = st.sampled_from(list("\"'“”‘’"))
fragments = st.one_of(
    st.text(max_size=20),
    quotes,
    st.sampled_from([" ", ",", ";", "\n", "\t", "<", ">", "|", "&amp;", "help", "history"]),
    st.sampled_from(["https://", "<https://x/", LIB, A1, LONG_A.upper()]),
    st.text(alphabet="0123456789abcdefABCDEF", min_size=1, max_size=40),
)


@fuzz
@given(st.lists(fragments, max_size=30).map("".join), st.integers(min_value=1, max_value=5))
def test_structured_noise_gives_a_command_or_parse_error(text, max_assets):
    assert_command_or_parse_error(text, max_assets=max_assets)


@fuzz
@given(quotes, st.text(max_size=50), st.lists(st.sampled_from([A1, A2, "zz", " "]), max_size=5))
def test_unbalanced_quotes_give_a_command_or_parse_error(opening, name, rest):
    assert_command_or_parse_error(opening + name + " ".join(rest))


# Hypothesis cannot draw 100 KB directly, so a drawn piece is repeated up to that size.
large_texts = st.tuples(
    st.one_of(st.text(min_size=1, max_size=200), st.lists(fragments, min_size=1).map("".join)),
    st.integers(min_value=10_000, max_value=100_000),
).map(lambda piece_and_size: (piece_and_size[0] * piece_and_size[1])[: piece_and_size[1]])


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(large_texts)
def test_large_input_gives_a_command_or_parse_error(text):
    assert_command_or_parse_error(text)


def test_large_adversarial_inputs_are_fast():
    for text in [
        "Lib " + " " * 100_000 + A1,
        '"' + "a" * 100_000,
        '"' + '"a' * 50_000,
        "Lib " + "<" * 100_000,
        "Lib " + "<a " * 30_000,
        "Lib https://" + "a" * 100_000,
        "Lib " + ",;" * 50_000,
    ]:
        assert_command_or_parse_error(text)


HEX = "0123456789abcdefABCDEF"
hex_ids = st.text(alphabet=HEX, min_size=8, max_size=32)
separators = st.lists(st.sampled_from([" ", ",", ";", "\n", "\t", ", ", " ; "]), min_size=1).map(
    "".join
)
name_chars = st.characters(
    blacklist_categories=("Cc", "Cf", "Cs", "Zl", "Zp"),
    blacklist_characters="\"'“”‘’&",
)
names = st.text(alphabet=name_chars, min_size=1, max_size=30).filter(lambda n: n.strip())
quote_pairs = st.sampled_from(['""', "''", "“”", "‘’", '“"', '"”', "‘'", "'’"])


@fuzz
@given(
    names,
    quote_pairs,
    st.lists(st.tuples(separators, hex_ids, st.booleans()), min_size=1, max_size=12),
)
def test_round_trip_quoted_name_and_ids(name, pair, items):
    sent = []  # the ids in the order they appear in the text, a repeat upper-cased
    text = pair[0] + name + pair[1]
    for separator, asset, repeat in items:
        text += separator + asset
        sent.append(asset)
        if repeat:
            text += separator + asset.upper()
            sent.append(asset.upper())
    command = parse_command(text)
    seen, duplicates = set(), []
    for asset in (a.lower() for a in sent):
        if asset in seen and asset not in duplicates:
            duplicates.append(asset)
        seen.add(asset)
    assert command == AddCommand(
        LibraryRef(name=" ".join(name.split())),
        tuple(dict.fromkeys(a.lower() for a in sent)),
        tuple(duplicates),
    )


@fuzz
@given(st.lists(hex_ids, min_size=1, max_size=12), st.data())
def test_round_trip_library_id_and_links(ids, data):
    library = data.draw(st.text(alphabet=HEX, min_size=32, max_size=32))
    words = []
    for asset in ids:
        if len(asset) == 32 and data.draw(st.booleans()):
            label = data.draw(st.text(alphabet=string.ascii_letters + " ", max_size=10))
            words.append(f"<https://cms.example/assets/{asset}|{label}>")
        else:
            words.append(asset)
    text = library + data.draw(separators) + data.draw(separators).join(words)
    command = parse_command(text)
    assert command.library == LibraryRef(id=library.lower())
    assert command.asset_ids == tuple(dict.fromkeys(a.lower() for a in ids))
