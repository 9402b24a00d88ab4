"""End to end over real HTTP: the Library summary in the channel, and a long job's progress."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

from bot.slack_standin.server import RESPONSE_URL_MAX_USES
from tests.fixtures_bot import (
    MARKETING,
    NOTIFY,
    Bot,
    button_value,
    dump,
    free_assets,
    patches,
    text_of,
    titled,
)

UNKNOWN = "deadbeef" * 4
PROGRESS = re.compile(r"[▓░]{8} (\d+)/250")
CREATED = int(datetime(2023, 3, 14, 9, 26, 53, tzinfo=UTC).timestamp())  # Marketing Library's


def test_library_summary_is_posted_in_the_channel(bot: Bot) -> None:
    new, other = free_assets(bot.simulator, MARKETING, 2)
    present = sorted(bot.simulator.catalogue.library_assets(MARKETING))[0]
    where = {"channel_id": "C0MEDIA"}
    _, operation_id = bot.preview(f'"Marketing Library" {new} {present} {UNKNOWN}', **where)
    bot.click("addtolib_confirm", operation_id, **where)

    summary = bot.summary(operation_id)
    assert summary.payload["channel"] == "C0MEDIA"
    header, facts, *_ = summary.payload["blocks"]
    assert (header["type"], header["text"]["text"]) == ("header", "Marketing Library")
    fields = [f["text"] for f in facts["fields"]]
    assert fields == [
        f"*id*\n`{MARKETING}`",
        "*allow_copy*\nTrue",
        "*is_ad*\nFalse",
        f"*created*\n<!date^{CREATED}^{{date_short_pretty}} at {{time}}|2023-03-14 09:26 UTC>",
    ]
    text = text_of(summary)
    assert f"*Added (1):* {titled(bot.simulator, new)}" in text
    assert f"*Skipped, already in the library (1):* {titled(bot.simulator, present)}" in text
    assert f"*Skipped, not found in Uplynk (1):* `{UNKNOWN}`" in text
    assert "Asked by <@U0USER>" in text
    assert button_value(summary, "addtolib_undo") == operation_id

    # Not in the channel: the summary goes to the channel through the response_url instead.
    bot.slack.wait_for(lambda c: c.channel == NOTIFY and f"`{operation_id}`" in dump(c))
    _, operation_id = bot.preview(f'"Marketing Library" {other}', channel_id="G0PRIVATE")
    bot.slack.fail("chat.postMessage", "not_in_channel")
    _, key = bot.click("addtolib_confirm", operation_id, channel_id="G0PRIVATE")
    fallback = bot.reply(key, "in_channel")
    assert fallback.payload["response_type"] == "in_channel"
    assert fallback.payload["replace_original"] is False
    assert fallback.payload["blocks"][0]["text"]["text"] == "Marketing Library"
    assert f"*Added (1):* {titled(bot.simulator, other)}" in text_of(fallback)
    refused = bot.slack.calls_of("chat.postMessage", ok=False)
    assert [(c.channel, c.error) for c in refused] == [("G0PRIVATE", "not_in_channel")]


def test_a_long_job_shows_progress_within_slacks_response_url_limit(
    start_bot: Callable[..., Bot],
) -> None:
    bot = start_bot(UPLYNK_BATCH_SIZE="100")
    catalogue = bot.simulator.catalogue
    assets = [catalogue.add_asset(f"Bulk clip {n}").id for n in range(250)]
    preview, operation_id = bot.preview(f"{MARKETING} {' '.join(assets)}")
    assert "Add 250 assets" in text_of(preview) and "… and 240 more" in text_of(preview)

    # Progress shows only what is saved; batches a moment apart let each save land first.
    bot.simulator.faults.set_latency("add", 0.3)
    _, key = bot.click("addtolib_confirm", operation_id)
    bot.reply(key, "Added 250 assets")
    bot.summary(operation_id)
    posts = bot.replies(key)
    assert len(posts) <= RESPONSE_URL_MAX_USES and all(p.ok for p in posts)
    *progress, outcome = [text_of(p) for p in posts]
    assert "Added 250 assets to *Marketing Library*" in outcome
    done = [int(m.group(1)) for m in map(PROGRESS.search, progress) if m]
    assert len(done) == len(progress) and any(0 < n < 250 for n in done), progress
    assert any("▓" in line and "░" in line for line in progress), progress
    assert [len(p.body["asset_ids"]) for p in patches(bot.simulator)] == [100, 100, 50]
    assert set(assets) <= catalogue.library_assets(MARKETING)
