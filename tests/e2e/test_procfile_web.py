"""End to end under the Procfile's web process: a full add, command to summary."""

from __future__ import annotations

from collections.abc import Callable

from tests.fixtures_bot import (
    MARKETING,
    NOTIFY,
    Bot,
    button_value,
    dump,
    free_assets,
    patches,
    stored,
    text_of,
    titled,
)


def test_full_add_under_the_procfile_web_command(start_bot: Callable[..., Bot]) -> None:
    bot = start_bot(procfile=True)
    assets = free_assets(bot.simulator, MARKETING, 2)
    preview, operation_id = bot.preview(f'"Marketing Library" {" ".join(assets)}')
    assert "Add 2 assets" in text_of(preview)
    _, key = bot.click("addtolib_confirm", operation_id)
    assert "Added 2 assets to *Marketing Library*" in text_of(bot.reply(key, "Added"))
    summary = bot.summary(operation_id)
    shown = f"{titled(bot.simulator, assets[0])}, {titled(bot.simulator, assets[1])}"
    assert f"*Added (2):* {shown}" in text_of(summary)
    assert button_value(summary, "addtolib_undo") == operation_id
    assert [p.body for p in patches(bot.simulator)] == [{"asset_ids": assets}]
    assert set(assets) <= bot.simulator.catalogue.library_assets(MARKETING)
    assert stored(bot, operation_id).state == "done"
    bot.slack.wait_for(lambda c: c.channel == NOTIFY and f"`{operation_id}`" in dump(c))
    assert "started web process" in bot.process.output()
