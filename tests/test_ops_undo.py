"""Undo over real HTTP: exactly this operation's assets, once, by the right people, in time."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.fixtures_bot import (
    ADMIN,
    MARKETING,
    OTHER,
    USER,
    Bot,
    button_value,
    free_assets,
    text_of,
)
from tests.ops_support import add, operation, removes


def test_undo_removes_only_the_assets_this_operation_added(bot: Bot) -> None:
    new = free_assets(bot.simulator, MARKETING, 3)
    present = sorted(bot.simulator.catalogue.library_assets(MARKETING))[:2]
    operation_id, summary = add(bot, f"{MARKETING} {' '.join(new + present)}")
    assert button_value(summary, "addtolib_undo") == operation_id

    _, key = bot.click("addtolib_undo", operation_id)
    updated = bot.reply(key, "Undone")
    assert updated.payload.get("replace_original") is True
    assert f"*Undone* by <@{USER}>" in text_of(updated)
    assert button_value(updated, "addtolib_undo") is None
    assert removes(bot) == [new]  # the assets present before the operation are not in `ids`
    held = bot.simulator.catalogue.library_assets(MARKETING)
    assert set(present) <= held and not set(new) & held
    stored = operation(bot, operation_id)
    assert (stored.state, stored.undone_by, stored.removed_ids) == ("undone", USER, new)
    assert all(stored.outcome[a] == "removed by undo" for a in new)
    assert all(stored.outcome[a] == "already in library" for a in present)


def test_ten_concurrent_undo_clicks_send_one_delete(bot: Bot) -> None:
    assets = free_assets(bot.simulator, MARKETING, 2)
    operation_id, _ = add(bot, f"{MARKETING} {' '.join(assets)}")

    def click(_: Any) -> str:
        return bot.click("addtolib_undo", operation_id)[1]

    with ThreadPoolExecutor(max_workers=10) as pool:
        keys = list(pool.map(click, range(10)))
    answers = [bot.reply(key) for key in keys]
    undone = [a for a in answers if "*Undone*" in text_of(a)]
    # Clicks during the undo see it in progress; later ones see it done.
    refused = [
        a for a in answers if "already undone" in text_of(a) or "is being undone" in text_of(a)
    ]
    assert (len(undone), len(refused)) == (1, 9), [text_of(a) for a in answers]
    assert removes(bot) == [assets]
    assert not set(assets) & bot.simulator.catalogue.library_assets(MARKETING)


def test_undo_by_another_user_is_refused_and_an_admin_may_undo(bot: Bot) -> None:
    assets = free_assets(bot.simulator, MARKETING, 2)
    operation_id, _ = add(bot, f"{MARKETING} {' '.join(assets)}")

    _, key = bot.click("addtolib_undo", operation_id, user_id=OTHER)
    refusal = text_of(bot.reply(key))
    assert f"Only <@{USER}> (who asked) or an admin can undo" in refusal
    assert removes(bot) == []
    assert operation(bot, operation_id).state == "done"

    _, key = bot.click("addtolib_undo", operation_id, user_id=ADMIN)
    assert f"*Undone* by <@{ADMIN}>" in text_of(bot.reply(key, "Undone"))
    assert removes(bot) == [assets]
    assert operation(bot, operation_id).undone_by == ADMIN


def test_undo_after_the_window_is_refused(start_bot) -> None:
    bot = start_bot(ADDTOLIB_UNDO_WINDOW="1")
    assets = free_assets(bot.simulator, MARKETING, 2)
    operation_id, _ = add(bot, f"{MARKETING} {' '.join(assets)}")
    time.sleep(1.2)  # nothing to wait for: the window is measured in wall-clock time

    _, key = bot.click("addtolib_undo", operation_id)
    refusal = text_of(bot.reply(key))
    assert "Too late to undo" in refusal and "1 s" in refusal
    assert removes(bot) == []
    assert set(assets) <= bot.simulator.catalogue.library_assets(MARKETING)
    assert operation(bot, operation_id).state == "done"
