"""End to end: a protected library through the modal goes to approval (SPEC 7 with SPEC 8)."""

from __future__ import annotations

from collections.abc import Callable

from tests.fixtures_bot import (
    AD_BREAKS,
    USER,
    Bot,
    blocks_text,
    button_value,
    dump,
    free_assets,
    patches,
    stored,
)
from tests.test_e2e_approvals import APPROVALS, LEAD
from tests.test_e2e_approvals import start as start
from tests.test_e2e_modal import SUMMARY_CHANNEL, open_form, preview_of, submit


def dump_view(view: dict) -> str:
    return blocks_text(view.get("blocks"))


def test_a_protected_library_through_the_modal_waits_for_approval(
    start: Callable[..., Bot],
) -> None:
    bot = start()
    assets = free_assets(bot.simulator, AD_BREAKS, 2)
    form = open_form(bot)
    preview = preview_of(
        bot, form, library=AD_BREAKS, assets=" ".join(assets), channel=SUMMARY_CHANNEL
    )
    operation_id = preview["private_metadata"]
    # The preview says what it needs before anyone clicks, and its submit asks for it.
    assert preview["submit"]["text"] == "Request approval"
    assert f"needs 1 approval by <@{LEAD}>" in dump_view(preview)
    assert submit(bot, preview) == {"response_action": "clear"}

    waiting = bot.slack.wait_for(
        lambda c: c.method == "chat.postEphemeral" and "Waiting for approval" in dump(c)
    )
    assert waiting.payload["user"] == USER and waiting.payload["channel"] == SUMMARY_CHANNEL
    request = bot.slack.wait_for(
        lambda c: (
            c.method == "chat.postMessage"
            and c.channel == APPROVALS
            and button_value(c, "addtolib_approve") == operation_id
        )
    )
    assert f"<#{SUMMARY_CHANNEL}>" in dump(request)
    assert patches(bot.simulator) == []
    assert stored(bot, operation_id).state == "awaiting_approval"

    bot.click("addtolib_approve", operation_id, user_id=LEAD, channel_id=APPROVALS)
    bot.slack.wait_for(
        lambda c: (
            c.method == "chat.postMessage"
            and c.channel == SUMMARY_CHANNEL
            and f"operation `{operation_id}`" in dump(c)
        ),
        timeout=20,
    )
    assert [p.body for p in patches(bot.simulator)] == [{"asset_ids": assets}]
    assert stored(bot, operation_id).state == "done"
