"""End to end over signed HTTP: a library created a moment ago is found by the menu and command."""

from __future__ import annotations

import time
from typing import Any

import pytest

from bot.config import ConfigError, load_settings
from bot.slack.modal.views import NEW_LIBRARY_HINT
from bot.slack_standin.views import validate_options
from tests.fixtures_bot import ARCHIVE, MARKETING, USER, Bot, button_value, free_assets, text_of
from tests.fixtures_slack import EDITOR_USER
from tests.test_e2e_modal import open_form

#: Slack drops an options answer that takes longer.
SLACK_WAIT = 3.0


def offered(bot: Bot, form: dict[str, Any], typed: str, user_id: str = EDITOR_USER) -> dict:
    """The menu's options for `typed` (name -> id), answered within Slack's 3 s."""
    started = time.monotonic()
    response = bot.sender.block_suggestion(form, typed, user_id=user_id)
    elapsed = time.monotonic() - started
    assert response.status_code == 200 and elapsed < SLACK_WAIT, elapsed
    options = response.json()["options"]
    validate_options(options)
    return {o["text"]["text"]: o["value"] for o in options}


def test_the_menu_offers_a_library_created_after_the_cache_was_filled(bot: Bot) -> None:
    form = open_form(bot, user_id=EDITOR_USER)  # S0EDITORS: every library
    assert "Holiday Campaign" not in offered(bot, form, "")  # the cache is filled
    library = bot.simulator.catalogue.add_library("Holiday Campaign")
    bot.simulator.faults.set_latency("*", 1.0)
    assert offered(bot, form, "Holiday Camp") == {"Holiday Campaign": library.id}
    # Someone the policy does not let add to it is not offered it.
    assert offered(bot, form, "Holiday Camp", user_id=USER) == {}


def test_the_menu_holds_to_100_options_and_the_policy_for_libraries_new_to_the_cache(
    bot: Bot,
) -> None:
    form = open_form(bot, user_id=EDITOR_USER)
    offered(bot, form, "")
    created = [bot.simulator.catalogue.add_library(f"Bulk Library {n:03}") for n in range(120)]
    bulk = offered(bot, form, "Bulk")
    assert list(bulk) == [f"Bulk Library {n:03}" for n in range(100)]
    assert set(bulk.values()) == {lib.id for lib in created[:100]}
    # The live answer was merged into the cache: the whole list is capped as well.
    assert len(offered(bot, form, "")) == 100
    assert offered(bot, form, "Bulk", user_id=USER) == {}
    assert set(offered(bot, form, "", user_id=USER)) == {
        "Marketing Library",
        "Marketing Library Archive",
        "Ad Breaks",
    }
    assert offered(bot, form, "", user_id="U0NOBODY") == {}


def test_with_uplynk_slower_than_the_wait_the_cached_matches_are_offered(start_bot) -> None:
    bot: Bot = start_bot(ADDTOLIB_LIBRARY_FRESH="0", ADDTOLIB_LIBRARY_WAIT="0.5")
    form = open_form(bot, user_id=EDITOR_USER)
    library_block = next(b for b in form["blocks"] if b.get("block_id") == "library")
    assert library_block["hint"]["text"] == NEW_LIBRARY_HINT
    assert "created this minute can take a moment to appear" in library_block["hint"]["text"]
    offered(bot, form, "")
    promo = bot.simulator.catalogue.add_library("Marketing Promo")
    bot.simulator.faults.set_latency("find_libraries", 1.5)
    started = time.monotonic()
    # Every search goes live here (no freshness window); Uplynk takes 1.5 s, the menu 0.5 s.
    assert offered(bot, form, "Market") == {
        "Marketing Library": MARKETING,
        "Marketing Library Archive": ARCHIVE,
    }
    assert time.monotonic() - started < 1.4
    # The live answer lands in the cache when it comes: a later keystroke offers it.
    deadline = time.monotonic() + 10
    while "Marketing Promo" not in (found := offered(bot, form, "Market")):
        assert time.monotonic() < deadline, found
    assert found["Marketing Promo"] == promo.id


def test_the_command_finds_a_library_by_a_name_created_a_second_earlier(bot: Bot) -> None:
    form = open_form(bot, user_id=EDITOR_USER)
    offered(bot, form, "")  # the menu's cache is filled before the libraries exist
    holiday = bot.simulator.catalogue.add_library("Holiday Campaign")
    east = bot.simulator.catalogue.add_library("Winter Promo East")
    west = bot.simulator.catalogue.add_library("Winter Promo West")
    asset = free_assets(bot.simulator, holiday.id, 1)[0]

    preview, operation_id = bot.preview(
        f'"Holiday Campaign" {asset}', user_id=EDITOR_USER, channel_id="C0EDIT"
    )
    assert operation_id, text_of(preview)
    assert f"*Holiday Campaign* (`{holiday.id}`)" in text_of(preview)

    # Several new names match: the pick list offers them.
    choice, _ = bot.preview(f'"Winter Promo" {asset}', user_id=EDITOR_USER, channel_id="C0EDIT")
    assert "Several libraries match *Winter Promo*" in text_of(choice)
    values = [
        b["accessory"]["value"].partition(":")[2]
        for b in choice.payload["blocks"]
        if b.get("accessory", {}).get("action_id") == "addtolib_pick_library"
    ]
    assert sorted(values) == sorted([east.id, west.id])
    assert button_value(choice, "addtolib_confirm") is None


def test_the_freshness_window_and_the_wait_are_settings_in_seconds() -> None:
    assert (load_settings(env={}).library_fresh, load_settings(env={}).library_wait) == (5, 2)
    settings = load_settings(env={"ADDTOLIB_LIBRARY_FRESH": "0", "ADDTOLIB_LIBRARY_WAIT": "1.5"})
    assert (settings.library_fresh, settings.library_wait) == (0, 1.5)
    with pytest.raises(ConfigError, match="ADDTOLIB_LIBRARY_WAIT must be under 3 seconds"):
        load_settings(env={"ADDTOLIB_LIBRARY_WAIT": "3"})
    for bad in ("-1", "soon", "nan"):
        with pytest.raises(ConfigError, match="ADDTOLIB_LIBRARY_FRESH must be"):
            load_settings(env={"ADDTOLIB_LIBRARY_FRESH": bad})
