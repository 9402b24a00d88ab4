"""End to end over real HTTP: Uplynk errors and slowness, as the Slack user sees them."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from tests.fixtures_bot import (
    MARKETING,
    Bot,
    ack_text,
    button_value,
    free_assets,
    patches,
    stored,
    text_of,
)

NO_SUCH_LIBRARY = "0" * 32


def test_uplynk_errors_are_explained_and_the_server_keeps_serving(bot: Bot) -> None:
    first, second, third = free_assets(bot.simulator, MARKETING, 3)
    faults = bot.simulator.faults

    answer, operation_id = bot.preview(f"{NO_SUCH_LIBRARY} {first}")
    assert f"Uplynk has no library with id `{NO_SUCH_LIBRARY}` (404)" in text_of(answer)
    assert operation_id == ""

    faults.fail("get_library", 403)
    answer, operation_id = bot.preview(f"{MARKETING} {first}")
    assert "Uplynk does not let the bot's account use that library (403)" in text_of(answer)
    assert operation_id == ""

    # Every try fails (more than the first try and its four retries: a look-up of the last
    # preview still under way on a busy machine may take one), then Uplynk recovers.
    faults.fail("get_assets", 503, times=50, retry_after=1)
    answer, operation_id = bot.preview(f"{MARKETING} {first}")
    assert "Could not look up the assets: Uplynk is busy (503); tried 5 times" in text_of(answer)
    assert operation_id == ""
    faults.clear()

    _, operation_id = bot.preview(f"{MARKETING} {first} {second}")
    faults.fail("add", 403)
    _, key = bot.click("addtolib_confirm", operation_id)
    outcome = text_of(bot.reply(key, ":x:"))
    assert "Nothing was added to *Marketing Library*" in outcome
    assert "Uplynk does not let the bot's account use that library (403)" in outcome
    summary = bot.summary(operation_id)
    assert "*Failed (2):*" in text_of(summary)
    assert button_value(summary, "addtolib_retry") == operation_id
    assert stored(bot, operation_id).state == "failed"
    assert not {first, second} & bot.simulator.catalogue.library_assets(MARKETING)

    # Still serving: the next command goes through to the end.
    _, operation_id = bot.preview(f"{MARKETING} {third}")
    bot.click("addtolib_confirm", operation_id)
    assert "Added (1):" in text_of(bot.summary(operation_id))
    assert patches(bot.simulator)[-1].body == {"asset_id": third}
    assert third in bot.simulator.catalogue.library_assets(MARKETING)


def test_a_slow_uplynk_does_not_hold_up_the_acknowledgement(bot: Bot) -> None:
    assets = free_assets(bot.simulator, MARKETING, 11)
    bot.simulator.faults.set_latency("*", 2.5)

    started = time.monotonic()
    response, key = bot.command(f'"Marketing Library" {assets[0]}')
    print(f"acknowledged in {(time.monotonic() - started) * 1000:.0f} ms (Uplynk takes 2.5 s)")
    assert response.status_code == 200
    assert "Checking 1 asset for Marketing Library" in ack_text(response)
    assert bot.replies(key) == []  # the preview needs Uplynk, so it comes later

    # Ten more users at once, while the first preview is still waiting for Uplynk.
    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(lambda a: bot.command(f"{MARKETING} {a}"), assets[1:]))
    assert all(r.status_code == 200 and "Checking 1 asset" in ack_text(r) for r, _ in answers)

    for k in [key] + [k for _, k in answers]:
        assert "Add 1 asset" in text_of(bot.reply(k, "addtolib_confirm", timeout=30))
