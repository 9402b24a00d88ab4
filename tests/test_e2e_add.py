"""End to end over real HTTP: /addtolib from preview to Library summary."""

from __future__ import annotations

import json

from tests.fixtures_bot import MARKETING, USER, Bot, button_value, free_assets, text_of


def test_add_two_assets_by_name(bot: Bot) -> None:
    assets = free_assets(bot.simulator, MARKETING, 2)
    preview, operation_id = bot.preview(f'"Marketing Library" {assets[0]} {assets[1]}')
    assert "Add 2 assets" in text_of(preview)
    bot.simulator.clear_requests()
    bot.click("addtolib_confirm", operation_id)
    summary = bot.summary(operation_id)
    text = text_of(summary)
    assert "Marketing Library" in text and MARKETING in text
    patches = [r for r in bot.simulator.requests if r.call == "add"]
    assert len(patches) == 1 and patches[0].body == {"asset_ids": assets}
    assert assets[0] in bot.simulator.catalogue.library_assets(MARKETING)
    assert button_value(summary, "addtolib_undo") == operation_id
    assert f"<@{USER}>" in json.dumps(summary.payload)
