"""Every message and view builder, fed hostile names and titles: valid Block Kit, pings nobody."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core import parsing
from bot.core.approvals.outcomes import ApprovalView
from bot.core.operation import Operation
from bot.core.text import escape_mrkdwn, fit
from bot.slack import blocks
from bot.slack.approvals import blocks as approval_blocks
from bot.slack.modal import views
from bot.slack_standin.blocks import BlocksError, validate_blocks
from bot.slack_standin.views import validate_options, validate_view
from bot.uplynk.models import Library
from tests.fixtures_bot import texts

USER, OTHER, APPROVER, CHANNEL, GROUP = "U0USER", "U0OTHER", "U0APPROVER", "C0CHAN", "S0TEAM"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
HOSTILE = [
    "Promo <!channel>",
    "<@U123>",
    "<!here|x>",
    "&lt;",
    "<#C999|general>",
    "<!subteam^S1>",
    "<https://evil.example|click>",
    "*_~`>",
    "",
    " ",
]
LONG = "<>&*_~" * 43  # 258 characters that each grow when escaped
#: Our own mentions and dates; anything else starting with `<` came from foreign text.
OURS = re.compile(
    rf"<(@({USER}|{OTHER}|{APPROVER})|#{CHANNEL}|!subteam\^{GROUP}|!date\^\d+\^[^|<>]*\|[^<>]*"
    r"|https://slack\.example/[^|<>]*\|thread)>"
)

hostile = st.one_of(
    st.sampled_from([*HOSTILE, LONG]),
    st.text(max_size=300),
    st.lists(st.sampled_from([*HOSTILE, "x", "<", "&", ">"]), max_size=60).map("".join),
)


def ids(n: int, salt: str = "a") -> list[str]:
    return list(_ids(n, salt))


@functools.lru_cache(maxsize=8)  # one example builds dozens of messages from the same ids
def _ids(n: int, salt: str) -> tuple[str, ...]:
    return tuple(f"{salt}{i:031x}"[-32:] for i in range(n))


def operation(name: str, state: str = "done", count: int = 3, errors: tuple = ()) -> Operation:
    new = ids(count)
    return Operation(
        id="0" * 31 + "1",
        state=state,
        user_id=USER,
        created_at=NOW,
        updated_at=NOW,
        channel_id=CHANNEL,
        library_id="f" * 32,
        library_name=name,
        requested_ids=new + ids(count, "b"),
        new_ids=new,
        present_ids=ids(count, "b"),
        missing_ids=ids(count, "c"),
        added_ids=new[: count // 2],
        failed_ids=new[count // 2 :],
        removed_ids=new[: count // 4],
        errors=list(errors),
        error=name,
        confirmed_by=OTHER,
        undone_by=OTHER,
        rejected_by=APPROVER,
        undone_at=NOW,
    )


def library(name: str) -> Library:
    return Library(id="f" * 32, desc=name, allow_copy=True, is_ad=False, created=name)


def approval(op: Operation, titles: dict[str, str]) -> ApprovalView:
    return ApprovalView(op, titles, (APPROVER, USER), (GROUP,), 2, 1, [APPROVER], NOW)


def mrkdwn_texts(node: Any) -> list[str]:
    """Every text Slack parses in blocks or a view (plain_text is shown as is, so skipped)."""
    return texts(node, parsed_only=True)


def assert_inert(texts: list[str], foreign: str) -> None:
    """No `<`/`>` but our own mentions; nothing escaped twice (unless the name reads `&amp;`)."""
    for text in texts:
        rest = OURS.sub("", text)
        assert "<" not in rest and ">" not in rest, text
        assert "&amp;" in foreign or "&amp;amp;" not in text, text


def check_message(message: blocks.Message, foreign: str) -> None:
    validate_blocks(message.blocks)
    assert message.text and len(message.text) <= 3000
    assert_inert([message.text, *mrkdwn_texts(message.blocks)], foreign)


def check_view(view: dict, foreign: str) -> None:
    validate_view(view)
    assert_inert(mrkdwn_texts(view), foreign)


def messages(name: str, title: str, count: int) -> list[blocks.Message]:
    titles = {i: title for i in ids(count)}
    built = [
        blocks.error(escape_mrkdwn(name)),
        blocks.info(escape_mrkdwn(name)),
        blocks.working(escape_mrkdwn(name)),
        blocks.notify_event(escape_mrkdwn(name)),
        blocks.help_message(parsing.USAGE, [library(name)] * 40, False, ids(count)),
        blocks.pick_library(operation(name), name, [library(name)] * 100),
        blocks.progress(count // 2, count, name),
        blocks.history(
            ([operation(name, s, count) for s in ("done", "undone", "rejected")] * 17)[:50],
            {"0" * 31 + "1": "https://slack.example/archives/C1/p1"},
            True,
            {"0" * 31 + "1": [APPROVER] * 30},
        ),
    ]
    for state in ("done", "partial", "failed", "undone", "running", "interrupted"):
        op = operation(name, state, count, errors=(name, title) * 4)
        built += [
            blocks.preview(op, library(name), ids(count, "d")),
            blocks.cancelled(op),
            blocks.outcome(op),
            blocks.summary(op, library(name), [APPROVER] * 40),
            blocks.summary(op, None),
            blocks.restarting(op),
            blocks.resumed(op),
            blocks.notify_parent(op),
            blocks.notify_details(op),
        ]
    for state in ("awaiting_approval", "done", "rejected", "expired", "cancelled"):
        view = approval(operation(name, state, count), titles)
        built += [
            approval_blocks.approval_request(view),
            approval_blocks.awaiting_approval(view),
            approval_blocks.approval_closed(view),
        ]
    return built


def modal_views(name: str, title: str, count: int) -> list[dict]:
    op = operation(name, "pending", count)
    titles = {i: title for i in ids(count) + ids(count, "b")}
    return [
        views.form(op, count, count, True),
        views.form(op, 0, 0, False),
        views.checking(op.id, name, count),
        views.problem(op.id, escape_mrkdwn(name)),
        views.preview(op, name, titles, ids(count, "d")),
        views.preview(operation(name, "pending", 0), name, titles),
    ]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=hostile,
    title=hostile,
    count=st.one_of(st.sampled_from([0, 1, 7, 60, 10_000]), st.integers(0, 10_000)),
)
def test_every_builder_is_valid_and_inert_for_hostile_names_and_titles(name, title, count):
    for message in messages(name, title, count):
        check_message(message, name + title)
    for view in modal_views(name, title, count):
        check_view(view, name + title)
    options = views.options([library(name or "x")] * 150)
    validate_options(options)


def test_10000_assets_with_long_titles_and_a_long_hostile_name() -> None:
    title = ("<!here> " * 25)[:200]
    for message in messages(LONG, title, 10_000):
        check_message(message, LONG + title)
    for view in modal_views(LONG, title, 10_000):
        check_view(view, LONG + title)


NAME = "Promo <!channel> & <@U0BOSS>"
ESCAPED = "Promo &lt;!channel&gt; &amp; &lt;@U0BOSS&gt;"


def test_a_name_is_escaped_exactly_once_and_plain_text_is_not_escaped() -> None:
    op = operation(NAME)
    for message in (
        blocks.preview(op, library(NAME)),
        blocks.summary(op, library(NAME)),
        blocks.notify_parent(op),
        blocks.outcome(op),
        blocks.resumed(op),
        approval_blocks.approval_request(approval(op, {})),
    ):
        assert ESCAPED in message.text or ESCAPED in " ".join(mrkdwn_texts(message.blocks))
        assert "&amp;amp;" not in str(message.blocks) + message.text
    header = blocks.summary(op, library(NAME)).blocks[0]
    assert header["text"]["type"] == "plain_text" and header["text"]["text"] == NAME
    assert views.options([library(NAME)])[0]["text"]["text"] == NAME
    # A name that itself reads `&lt;` is shown as typed: escaped once, not decoded.
    assert "*&amp;lt;*" in blocks.preview(op, library("&lt;")).blocks[0]["text"]["text"]


def test_the_helper_is_one_function_used_by_core_and_slack() -> None:
    assert blocks.escape is escape_mrkdwn
    # The parser's echo of typed tokens uses it too (Slack sends typed `<` as `&lt;`).
    with pytest.raises(parsing.ParseError) as refused:
        parsing.parse_command('"Promo &lt;!channel&gt;"', 5000)
    assert "&lt;!channel&gt;" in refused.value.message
    assert "<!channel>" not in refused.value.message


def test_fit_never_cuts_an_entity_or_a_mention_in_half() -> None:
    text = "x" * 2996 + "&amp;" + "y"
    assert fit(text, 3000) == "x" * 2996 + "…"
    text = "x" * 2995 + "<@U0USER> more"
    assert fit(text, 3000) == "x" * 2995 + "…"
    assert fit("short", 3000) == "short"


def test_the_stand_in_refuses_what_slack_refuses() -> None:
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "x"}}
    bad = [
        [section] * 51,
        [{"type": "section", "text": {"type": "mrkdwn", "text": "&lt;" * 751}}],
        [{"type": "section", "text": {"type": "mrkdwn", "text": ""}}],
        [{"type": "section", "fields": [{"type": "mrkdwn", "text": "x"}] * 11}],
        [{"type": "section", "fields": [{"type": "mrkdwn", "text": "x" * 2001}]}],
        [{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}],
        [{"type": "header", "text": {"type": "mrkdwn", "text": "x"}}],
        [{"type": "context", "elements": [{"type": "mrkdwn", "text": ""}]}],
        [{"type": "context", "elements": [{"type": "mrkdwn", "text": "x"}] * 11}],
        [
            {
                "type": "actions",
                "elements": [{"type": "button", "text": {"type": "plain_text", "text": "x" * 76}}],
            }
        ],
        [
            {
                **section,
                "accessory": {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Pick"},
                    "value": "v" * 2001,
                },
            }
        ],
    ]
    button = {"type": "button", "text": {"type": "plain_text", "text": "Go"}}
    bad += [
        [{**section, "block_id": "b" * 256}],
        [{**section, "accessory": {**button, "action_id": "a" * 256}}],
        [{"type": "actions", "elements": [{**button, "action_id": "a" * 256}]}],
        [{"type": "actions", "elements": [button] * 26}],
    ]
    for payload in bad:
        with pytest.raises(BlocksError):
            validate_blocks(payload)
    validate_blocks([{**section, "block_id": "b" * 255}])
    validate_blocks([{"type": "actions", "elements": [{**button, "action_id": "a" * 255}] * 25}])
    validate_blocks([section] * 50)


def test_an_asset_is_named_by_its_title_with_its_id_or_by_its_id_alone() -> None:
    asset = "a" * 32
    assert blocks.asset_name(asset, {asset: "Clip <!here> & more"}) == (
        f"Clip &lt;!here&gt; &amp; more (`{asset}`)"
    )
    long_title = "T" * 100
    shown = blocks.asset_name(asset, {asset: long_title})
    assert shown == f"{'T' * 59}… (`{asset}`)"  # 60 characters of title, then the id
    assert blocks.asset_name(asset, {asset: ""}) == f"`{asset}`"  # Uplynk has no title
    assert blocks.asset_name(asset, {}) == f"`{asset}`"  # unknown to Uplynk
    assert blocks.id_list([asset, "b" * 32], titles={asset: "One"}) == (
        f"One (`{asset}`), `{'b' * 32}`"
    )
