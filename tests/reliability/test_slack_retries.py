"""Slack retries (X-Slack-Retry-Num) are acknowledged and never act a second time."""

from __future__ import annotations

import json
import time

import pytest

from bot.core.store import OperationStore
from tests.fixtures_bot import MARKETING, USER, Bot, dump, free_assets, patches, text_of

RETRY = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
SECOND_RETRY = {"X-Slack-Retry-Num": "2", "X-Slack-Retry-Reason": "http_error"}


def operations_of(bot: Bot, user_id: str = USER) -> list:
    store = OperationStore(bot.env["DATABASE_URL"])
    try:
        return store.recent(user_id=user_id, limit=100)
    finally:
        store.dispose()


def settle(seconds: float = 1.0) -> None:
    """Give a wrongly processed retry time to show up (a preview takes a few ms here)."""
    time.sleep(seconds)


@pytest.mark.reliability
def test_a_retried_command_is_acknowledged_and_plans_once(bot: Bot) -> None:
    assets = free_assets(bot.simulator, MARKETING, 2)
    text = f'"Marketing Library" {" ".join(assets)}'
    url = bot.sender.new_response_url("retry")
    trigger = bot.sender.trigger_id()
    # The same body each time, as Slack resends it; only the retry headers differ.
    first = bot.sender.command(text, response_url=url, trigger_id=trigger)
    again = bot.sender.command(text, response_url=url, trigger_id=trigger, extra_headers=RETRY)
    third = bot.sender.command(
        text, response_url=url, trigger_id=trigger, extra_headers=SECOND_RETRY
    )
    assert first.status_code == again.status_code == third.status_code == 200
    key = url.rsplit("/", 1)[-1]
    bot.reply(key, "addtolib_confirm")
    settle()

    operations = operations_of(bot)
    assert len(operations) == 1, [o.id for o in operations]
    assert operations[0].state == "pending" and list(operations[0].requested_ids) == assets
    previews = [c for c in bot.replies(key) if "addtolib_confirm" in dump(c)]
    assert len(previews) == 1
    assert len([r for r in bot.simulator.requests if r.call == "get_assets"]) == 1


@pytest.mark.reliability
def test_a_retried_confirm_click_never_patches_twice(bot: Bot) -> None:
    assets = free_assets(bot.simulator, MARKETING, 3)
    _, operation_id = bot.preview(f'"Marketing Library" {" ".join(assets)}')
    assert operation_id
    payload = bot.sender.block_actions_payload("addtolib_confirm", operation_id, user_id=USER)
    body = {"payload": json.dumps(payload)}
    key = payload["response_url"].rsplit("/", 1)[-1]

    assert bot.sender.send_form(body).status_code == 200
    assert bot.sender.send_form(body, headers=RETRY).status_code == 200
    summary = bot.summary(operation_id)
    assert "Added 3 assets" in text_of(bot.reply(key, "Added 3 assets"))
    # A retry that arrives after the work is done is acknowledged and ignored too.
    assert bot.sender.send_form(body, headers=SECOND_RETRY).status_code == 200
    settle()

    assert [p.body for p in patches(bot.simulator)] == [{"asset_ids": assets}]
    assert operation_id in dump(summary)
    summaries = [
        c
        for c in bot.slack.calls_of("chat.postMessage")
        if operation_id in dump(c) and c.payload.get("channel") == "C0GENERAL"
    ]
    assert len(summaries) == 1
    # Processed, a retry would have been answered "already carried out" on the same URL.
    assert not [c for c in bot.replies(key) if "nothing more was done" in text_of(c)]
    assert [o.state for o in operations_of(bot)] == ["done"]


@pytest.mark.reliability
def test_retry_number_zero_is_a_first_delivery(bot: Bot) -> None:
    # Bolt's Socket Mode adapter copies an envelope's retry_attempt into X-Slack-Retry-Num, and
    # Events API envelopes carry retry_attempt 0 on their first delivery: only > 0 is a retry.
    assets = free_assets(bot.simulator, MARKETING, 1)
    url = bot.sender.new_response_url("zero")
    first = {"X-Slack-Retry-Num": "0", "X-Slack-Retry-Reason": ""}
    response = bot.sender.command(
        f'"Marketing Library" {assets[0]}', response_url=url, extra_headers=first
    )
    assert response.status_code == 200
    assert "Checking 1 asset" in response.text
    preview = bot.reply(url.rsplit("/", 1)[-1], "addtolib_confirm")
    assert "Add 1 asset" in text_of(preview)
    assert [o.state for o in operations_of(bot)] == ["pending"]
