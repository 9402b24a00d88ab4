"""The modal's parts: asset lists and message text, the library type-ahead cache, stand-in views."""

from __future__ import annotations

import threading
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


def wait_for(condition, timeout: float = 10.0):
    """Poll `condition` until it is truthy (its value) or `timeout` passes (AssertionError)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("the condition never held")


def names(libraries: list[Library]) -> list[str]:
    return [lib.desc for lib in libraries]


def test_library_directory_serves_the_cache_when_uplynk_is_slower_than_the_wait(
    simulator: UplynkSimulator,
) -> None:
    client = make_client(simulator)
    now = [0.0]
    with ThreadPoolExecutor(max_workers=2) as pool:
        directory = LibraryDirectory(
            client.find_libraries, pool, ttl=60, fresh=5, wait=0.3, clock=lambda: now[0]
        )
        found = directory.search("market", "*")
        assert names(found) == ["Marketing Library", "Marketing Library Archive"]
        simulator.catalogue.add_library("Marketplace Clips")
        simulator.faults.set_latency("find_libraries", 1.0)
        simulator.clear_requests()
        assert len(directory.search("market", "*")) == 2  # fresh and matching: no call
        assert simulator.requests == []
        now[0] = 6.0  # past the freshness window: the search goes live
        started = time.monotonic()
        stale = directory.search("market", "*")
        # Uplynk takes 1 s here: the cached matches answer when the 0.3 s wait is over...
        assert len(stale) == 2 and time.monotonic() - started < 0.9
        # ...and the live answer, when it comes, is merged in for the next keystroke.
        wait_for(lambda: len(directory.search("market", "*")) == 3)
        marketing = DEMO_LIBRARY_IDS["Marketing Library"]
        assert [lib.id for lib in directory.search("", {marketing})] == [marketing]
    client.close()


def test_library_directory_looks_a_name_missing_from_the_cache_up_live(
    simulator: UplynkSimulator,
) -> None:
    client = make_client(simulator)
    now = [0.0]
    with ThreadPoolExecutor(max_workers=2) as pool:
        directory = LibraryDirectory(
            client.find_libraries, pool, ttl=60, fresh=5, wait=2, clock=lambda: now[0]
        )
        directory.warm()
        assert "Holiday Campaign" not in names(directory.search("", "*"))
        simulator.catalogue.add_library("Holiday Campaign")
        simulator.faults.set_latency("find_libraries", 1.0)
        simulator.clear_requests()
        # The list is fresh (0 s old) but has no match: Uplynk is asked, within the wait.
        assert names(directory.search("holiday camp", "*")) == ["Holiday Campaign"]
        assert [r.query.get("search") for r in simulator.requests] == ["holiday camp"]
        # Merged into the list: "Holiday" (and a fresh search's longer text) needs no call.
        assert names(directory.search("Holiday", "*")) == ["Holiday Campaign"]
        assert names(directory.search("holiday campaign", "*")) == ["Holiday Campaign"]
        assert len(simulator.requests) == 1
        # The policy filter still holds on what the live search found.
        assert directory.search("holiday camp", {DEMO_LIBRARY_IDS["Ad Breaks"]}) == []
    client.close()


def test_library_directory_keeps_what_a_later_look_up_saw() -> None:
    """A listing that started before a live search neither hides what that search found nor
    brings back what it no longer found; a later listing drops a deleted library."""
    holiday = Library("1" * 32, "Holiday Campaign", True, False, "")
    old = Library("2" * 32, "Holiday Old", True, False, "")
    catalogue = [old]
    gate, listing = threading.Event(), threading.Event()

    def find(search: str) -> list[Library]:
        answer = [lib for lib in catalogue if search in lib.desc.casefold()]
        if search == "" and not gate.is_set():
            listing.set()
            gate.wait(10)  # a listing that started before the change, answered after it
        return answer

    now = [0.0]
    with ThreadPoolExecutor(max_workers=2) as pool:
        directory = LibraryDirectory(find, pool, fresh=5, wait=2, clock=lambda: now[0])
        first = directory.warm()
        assert listing.wait(10)
        catalogue[:] = [holiday]  # "Holiday Old" renamed away, "Holiday Campaign" created
        now[0] = 1.0
        assert names(directory.search("holiday", "*")) == ["Holiday Campaign"]
        gate.set()
        assert first is not None
        first.result(10)
        assert names(directory.search("holiday", "*")) == ["Holiday Campaign"]
        catalogue.clear()
        now[0] = 70.0
        later = directory.warm()
        assert later is not None
        later.result(10)
        assert directory.search("", "*") == []


def test_library_directory_caps_live_searches_in_flight() -> None:
    release = threading.Event()
    asked: list[str] = []

    def find(search: str) -> list[Library]:
        asked.append(search)
        release.wait(10)
        return []

    with ThreadPoolExecutor(max_workers=4) as pool:
        directory = LibraryDirectory(find, pool, wait=0.05, max_live=2)
        for text in ("a", "b", "c", "a"):
            assert directory.search(text, "*") == []
        # "a" twice shares one search; "c" found two in flight and was answered from the cache.
        assert sorted(set(asked) - {""}) == ["a", "b"] and asked.count("a") == 1
        release.set()


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
