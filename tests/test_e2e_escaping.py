"""End to end: a library and assets with mention-like names ping nobody, and Slack accepts all."""

from __future__ import annotations

from pathlib import Path

from tests.fixtures_bot import AD_BREAKS, NOTIFY, POLICY, ack_text, dump, text_of, texts
from tests.test_e2e_modal import SUMMARY_CHANNEL, open_form, preview_of, text_of_view

# Issue 9's names: every kind of mention Slack parses, and mrkdwn markup.
PROMO = "Promo <!channel> & <@U0ADMIN01> <!subteam^S0EDITORS|@editors> *loud*"
ESCAPED = (
    "Promo &lt;!channel&gt; &amp; &lt;@U0ADMIN01&gt; &lt;!subteam^S0EDITORS|@editors&gt; *loud*"
)
CLIP = "Clip <!here> teaser"
CLIP_ESCAPED = "Clip &lt;!here&gt; teaser"
PROMO_ID = "5" * 32
PINGS = ("<!channel", "<!here", "<!everyone", "<@U0ADMIN01", "<!subteam^")


def test_a_hostile_library_name_and_titles_are_shown_escaped_everywhere(
    start_bot, policy_file: Path
) -> None:
    policy_file.write_text(POLICY.replace(f'"{AD_BREAKS}"]', f'"{AD_BREAKS}", "{PROMO_ID}"]'))
    bot = start_bot()
    catalogue = bot.simulator.catalogue
    catalogue.add_library(PROMO, id=PROMO_ID, created="<!here> not a date")
    assets = [catalogue.add_asset(CLIP).id] + [
        catalogue.add_asset(f"<!here> clip {i}").id for i in range(2)
    ]
    clip = f"{CLIP_ESCAPED} (`{assets[0]}`)"  # how every message names it: Title (id)

    # By name, as Slack sends what was typed (it escapes &, < and > in a command's text).
    typed = f'"{ESCAPED}"'
    response, key = bot.command(f"{typed} {' '.join(assets)}")
    assert ESCAPED in ack_text(response) and "<!channel>" not in ack_text(response)
    preview = bot.reply(key, "addtolib_confirm")
    assert f"*{ESCAPED}* (`{PROMO_ID}`)" in text_of(preview)
    assert clip in text_of(preview)
    operation_id = next(
        e["value"] for b in preview.payload["blocks"] for e in b.get("elements", [])
    )
    _, confirm_key = bot.click("addtolib_confirm", operation_id)
    assert f"Added 3 assets to *{ESCAPED}*" in text_of(bot.reply(confirm_key, "Added"))
    summary = bot.summary(operation_id)
    assert summary.payload["blocks"][0]["text"] == {
        "type": "plain_text",
        "text": PROMO,  # a header is plain text: Slack shows it as is and parses nothing
        "emoji": True,
    }
    assert summary.text.startswith(f"{ESCAPED}: 3 assets added by <@U0USER>")
    assert clip in text_of(summary)
    details = bot.slack.wait_for(
        lambda c: (
            c.method == "chat.postMessage"
            and c.channel == NOTIFY
            and c.payload.get("thread_ts")
            and operation_id in dump(c)
        )
    )
    parent = bot.slack.message(NOTIFY, details.payload["thread_ts"])
    assert f"*{ESCAPED}*" in parent["text"]
    assert clip in text_of(details)

    # Undo (pressed on the summary, which its response_url replaces in place): the summary and
    # the thread name what went.
    _, undo_key = bot.click("addtolib_undo", operation_id)
    assert f"removed {clip}" in text_of(bot.reply(undo_key, "Undone"))
    undone = bot.slack.wait_for(
        lambda c: (
            c.method == "chat.postMessage"
            and c.payload.get("thread_ts") == details.payload["thread_ts"]
            and "undid this" in dump(c)
        )
    )
    assert f"removed {clip}" in text_of(undone)

    _, key = bot.command("history")
    history = bot.reply(key, "operations")
    assert f"*{ESCAPED}*" in text_of(history)

    # A refusal echoes the typed name and the closest matches, escaped by the core.
    _, key = bot.command(f'"&lt;!channel&gt; Promo" {assets[0]}')
    refusal = bot.reply(key, "No library is named")
    assert "*&lt;!channel&gt; Promo*" in text_of(refusal) and f"*{ESCAPED}*" in text_of(refusal)

    # The modal shows the asset titles (escaped) and the name.
    form = open_form(bot)
    shown = text_of_view(
        preview_of(bot, form, library=PROMO_ID, assets=assets[0], channel=SUMMARY_CHANNEL)
    )
    assert ESCAPED in shown and clip in shown

    calls = bot.slack.calls
    assert {"response_url", "chat.postMessage", "views.open"} <= {c.method for c in calls}
    assert [c for c in calls if c.rejected] == []
    for call in calls:
        for text in texts(call.payload, parsed_only=True):
            assert not any(ping in text for ping in PINGS), (call.method, text)
