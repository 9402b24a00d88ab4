"""The modal's parts: asset lists and message text, the library type-ahead cache, stand-in views."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.core.library_directory import LibraryDirectory
from bot.core.operation import Operation
from bot.core.parsing import ParseError, find_asset_ids, parse_asset_list
from bot.simulator import DEMO_LIBRARY_IDS, UplynkSimulator
from bot.slack.modal import views
from bot.slack.modal.jobs import Handoff
from bot.slack_standin import SlackStandIn
from bot.slack_standin.views import ViewError, validate_options, validate_view
from bot.uplynk.models import Library
from tests.fixtures_uplynk import make_client

A, B, C = "a" * 32, "b" * 32, "c" * 32


def test_parse_asset_list_uses_the_command_grammar() -> None:
    ids, duplicates = parse_asset_list(f"{A}, {B};\n<https://cms.example/assets/{C}|x> {A}")
    assert ids == (A, B, C) and duplicates == (A,)
    ids, duplicates = parse_asset_list(f"{B} {C}", already=[A, B])
    assert ids == (C,) and duplicates == (B,)
    assert parse_asset_list("", already=[A]) == ((), ())
    with pytest.raises(ParseError, match="No asset ids given"):
        parse_asset_list("  ")
    with pytest.raises(ParseError, match="`zz12`"):
        parse_asset_list(f"{A} zz12", already=[B])
    with pytest.raises(ParseError, match="Too many assets: 3 distinct ids"):
        parse_asset_list(f"{B} {C}", max_assets=2, already=[A])


def test_find_asset_ids_in_prose_and_links() -> None:
    text = (
        f"Hi team, new clips: <https://cms.uplynk.com/#/assets/{A}|Teaser> and {B.upper()}.\n"
        f"Also ({C}), again {A}, ticket 12345678, deadbeef, and <https://example.com|a page>."
    )
    assert find_asset_ids(text) == ((A, B, C), (A,))
    assert find_asset_ids("nothing here") == ((), ())
    assert find_asset_ids("") == ((), ())


def test_library_directory_serves_a_stale_list_while_refreshing(
    simulator: UplynkSimulator,
) -> None:
    client = make_client(simulator)
    now = [0.0]
    with ThreadPoolExecutor(max_workers=2) as pool:
        directory = LibraryDirectory(
            lambda: client.find_libraries(""), pool, ttl=60, wait=5, clock=lambda: now[0]
        )
        found = directory.search("market", "*")
        assert [lib.desc for lib in found] == ["Marketing Library", "Marketing Library Archive"]
        simulator.catalogue.add_library("Marketplace Clips")
        simulator.faults.set_latency("find_libraries", 1.0)
        assert len(directory.search("market", "*")) == 2  # fresh enough: no call
        now[0] = 61.0
        simulator.clear_requests()
        started = time.monotonic()
        stale = directory.search("market", "*")
        # The stale list answers at once (Uplynk takes 1 s here); the refresh runs behind it.
        assert len(stale) == 2 and time.monotonic() - started < 0.5
        deadline = time.monotonic() + 10
        while len(directory.search("market", "*")) != 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(directory.search("market", "*")) == 3
        marketing = DEMO_LIBRARY_IDS["Marketing Library"]
        assert [lib.id for lib in directory.search("", {marketing})] == [marketing]
    client.close()


def _operation() -> Operation:
    at = datetime.now(UTC)
    return Operation(id="d" * 32, state="pending", user_id="U0USER", created_at=at, updated_at=at)


def test_the_bots_views_and_options_fit_block_kit_for_any_input() -> None:
    form = views.form(_operation(), 5000, 3, True)
    validate_view(form)
    many = [f"{n:032x}" for n in range(5000)]
    long_title = "<!channel> " + "x" * 5000
    operation = _operation()
    operation = Operation(
        **{**operation.__dict__, "library_id": A, "new_ids": many, "present_ids": many},
    )
    preview = views.preview(operation, "Promo <!channel> & co", dict.fromkeys(many, long_title))
    validate_view(preview)
    shown = str(preview["blocks"])
    assert "<!channel>" not in shown and "Promo &lt;!channel&gt; &amp; co" in shown
    assert preview["submit"]["text"] == "Add 5000 assets"
    libraries = [Library(f"{n:032x}", "L" * 300, True, False, "") for n in range(300)]
    validate_options(views.options(libraries))


def test_stand_in_refuses_views_beyond_block_kit_limits() -> None:
    good = views.problem("e" * 32, "fine")
    validate_view(good)
    too_long_title = {**good, "title": {"type": "plain_text", "text": "x" * 25}}
    too_many_blocks = {**good, "blocks": good["blocks"] * 101}
    metadata = {**good, "private_metadata": "m" * 3001}
    input_block = {
        "type": "input",
        "block_id": "assets",
        "label": {"type": "plain_text", "text": "Assets"},
        "element": {"type": "plain_text_input", "action_id": "a", "initial_value": "x" * 3001},
    }
    too_much_input = {
        **good,
        "submit": {"type": "plain_text", "text": "Go"},
        "blocks": [input_block],
    }
    no_submit = {**good, "blocks": [{**input_block, "element": {"type": "plain_text_input"}}]}
    for view in (too_long_title, too_many_blocks, metadata, too_much_input, no_submit):
        with pytest.raises(ViewError):
            validate_view(view)
    with pytest.raises(ViewError):
        validate_options([{"text": {"type": "plain_text", "text": "x" * 76}, "value": "v"}])
    with pytest.raises(ViewError):
        validate_options([{"text": {"type": "plain_text", "text": "x"}, "value": "v"}] * 101)


def test_stand_in_trigger_ids_last_three_seconds_and_work_once(slack: SlackStandIn) -> None:
    client = WebClient(token="xoxb-test", base_url=slack.url)
    view = views.problem("e" * 32, "hello")
    trigger = slack.new_trigger()
    opened = client.views_open(trigger_id=trigger, view=view)["view"]
    assert slack.views.opened_by(trigger)["id"] == opened["id"]
    with pytest.raises(SlackApiError, match="exchanged_trigger_id"):
        client.views_open(trigger_id=trigger, view=view)
    with pytest.raises(SlackApiError, match="invalid_trigger_id"):
        client.views_open(trigger_id="123.456.made-up", view=view)
    late = slack.new_trigger()
    slack.views._triggers[late] -= 3.5  # issued 3.5 s ago
    with pytest.raises(SlackApiError, match="expired_trigger_id"):
        client.views_open(trigger_id=late, view=view)
    bad = {**view, "title": {"type": "plain_text", "text": "t" * 30}}
    with pytest.raises(SlackApiError, match="invalid_arguments"):
        client.views_open(trigger_id=slack.new_trigger(), view=bad)

    updated = views.problem("e" * 32, "updated")
    assert client.views_update(view_id=opened["id"], view=updated)["ok"]
    assert "updated" in str(slack.views.view(opened["id"])["blocks"])
    with pytest.raises(SlackApiError, match="hash_conflict"):
        client.views_update(view_id=opened["id"], view=updated, hash="stale")
    pushed = client.views_push(trigger_id=slack.new_trigger(), view=view)["view"]
    assert pushed["id"] != opened["id"]
    slack.views.close(opened["id"])
    with pytest.raises(SlackApiError, match="not_found"):
        client.views_update(view_id=opened["id"], view=updated)
    assert [c.method for c in slack.calls if c.method.startswith("views.")].count("views.open") == 5


def test_manifest_declares_both_shortcuts_and_the_options_load_url() -> None:
    text = (Path(__file__).resolve().parent.parent / "manifest.yml").read_text()
    shortcuts = text.split("  shortcuts:", 1)[1].split("oauth_config:", 1)[0]
    assert "type: global\n      callback_id: addtolib_shortcut" in shortcuts
    assert "type: message\n      callback_id: addtolib_message" in shortcuts
    interactivity = text.split("  interactivity:", 1)[1]
    assert "message_menu_options_url: https://addtolib.example.com/slack/events" in interactivity
    assert "      - commands\n" in text and "      - chat:write\n" in text


def test_handoff_gives_the_view_to_a_waiting_answer_else_to_views_update() -> None:
    early = Handoff()
    assert early.give({"v": 1}) is True
    assert early.take(0.01) == {"v": 1}

    late = Handoff()
    assert late.take(0.01) is None  # the answer went out with "Checking…"
    assert late.give({"v": 2}) is False  # the job updates the view itself
    assert late.take(0.01) is None
