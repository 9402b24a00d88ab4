"""End to end over real HTTP: resolving the library, the preview, and what reaches Uplynk."""

from __future__ import annotations

from tests.fixtures_bot import (
    ARCHIVE,
    MARKETING,
    Bot,
    button_value,
    free_assets,
    patches,
    stored,
    text_of,
    titled,
)

UNKNOWN = "deadbeef" * 4  # a well-formed id Uplynk does not know


def test_only_new_assets_are_sent_as_asset_id_or_asset_ids(bot: Bot) -> None:
    new, two, three = free_assets(bot.simulator, MARKETING, 3)
    present = sorted(bot.simulator.catalogue.library_assets(MARKETING))[0]
    preview, operation_id = bot.preview(f'"Marketing Library" {new} {present} {UNKNOWN}')
    text = text_of(preview)
    assert f"*Marketing Library* (`{MARKETING}`)" in text
    assert "Will add: *1 asset*" in text and new in text
    assert f"Already in the library (skipped): 1: {titled(bot.simulator, present)}" in text
    assert f"Will add: *1 asset* {titled(bot.simulator, new)}" in text
    assert f"Not found in Uplynk (skipped): 1: `{UNKNOWN}`" in text
    assert "Add 1 asset" in text and button_value(preview, "addtolib_cancel") == operation_id
    operation = stored(bot, operation_id)
    assert (operation.new_ids, operation.present_ids, operation.missing_ids) == (
        [new],
        [present],
        [UNKNOWN],
    )
    bot.click("addtolib_confirm", operation_id)
    bot.summary(operation_id)
    assert [p.body for p in patches(bot.simulator)] == [{"asset_id": new}]

    # Several new assets: `asset_ids` alone.
    bot.simulator.clear_requests()
    _, operation_id = bot.preview(f"{MARKETING} {two},{three};{present}")
    bot.click("addtolib_confirm", operation_id)
    bot.summary(operation_id)
    assert [p.body for p in patches(bot.simulator)] == [{"asset_ids": [two, three]}]
    assert {new, two, three} <= bot.simulator.catalogue.library_assets(MARKETING)

    # Nothing new: the preview says so and offers nothing to confirm.
    bot.simulator.clear_requests()
    _, key = bot.command(f'"Marketing Library" {present} {new} {UNKNOWN}')
    preview = bot.reply(key, "Nothing to add")
    both = f"{titled(bot.simulator, present)}, {titled(bot.simulator, new)}"
    assert f"Already in the library (skipped): 2: {both}" in text_of(preview)
    assert button_value(preview, "addtolib_confirm") is None
    assert button_value(preview, "addtolib_cancel") is None
    assert patches(bot.simulator) == []


def test_library_by_quoted_name_by_id_or_picked_among_several(bot: Bot) -> None:
    assets = free_assets(bot.simulator, ARCHIVE, 2)

    for library in ("“Marketing Library”", "‘Marketing Library’", MARKETING.upper()):
        preview, operation_id = bot.preview(f"{library} {assets[0]}")
        assert operation_id, text_of(preview)
        assert f"*Marketing Library* (`{MARKETING}`)" in text_of(preview)

    # "Marketing" names two libraries: the user picks one, and the preview follows.
    choice, _ = bot.preview(f"Marketing {' '.join(assets)}")
    assert "Several libraries match *Marketing*" in text_of(choice)
    values = [
        b["accessory"]["value"]
        for b in choice.payload["blocks"]
        if b.get("accessory", {}).get("action_id") == "addtolib_pick_library"
    ]
    pending_id = values[0].partition(":")[0]
    assert sorted(values) == sorted([f"{pending_id}:{MARKETING}", f"{pending_id}:{ARCHIVE}"])
    _, key = bot.click("addtolib_pick_library", f"{pending_id}:{ARCHIVE}")
    preview = bot.reply(key, "addtolib_confirm")
    assert preview.payload["replace_original"] is True
    assert f"*Marketing Library Archive* (`{ARCHIVE}`)" in text_of(preview)
    assert button_value(preview, "addtolib_confirm") == pending_id
    bot.click("addtolib_confirm", pending_id)
    bot.summary(pending_id)
    assert [p.body for p in patches(bot.simulator)] == [{"asset_ids": assets}]
    assert set(assets) <= bot.simulator.catalogue.library_assets(ARCHIVE)

    # A name that matches nothing gets the closest names.
    answer, operation_id = bot.preview(f'"Ad Brakes" {assets[0]}')
    assert operation_id == ""
    assert "No library is named *Ad Brakes*. Closest matches: *Ad Breaks*" in text_of(answer)
    assert len(patches(bot.simulator)) == 1
