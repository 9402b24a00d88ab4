"""End to end over signed HTTP: scheduled adds (SPEC 15), with times seconds ahead."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests

from bot.slack_standin import SlackCall
from tests.fixtures_bot import (
    AD_BREAKS,
    ADMIN,
    LEAD,
    MARKETING,
    NOTIFY,
    OTHER,
    PROTECTED_POLICY,
    USER,
    Bot,
    button_value,
    dump,
    free_assets,
    patches,
    stored,
    text_of,
)

FAST = {"ADDTOLIB_SCHEDULE_POLL": "0.2"}
#: How far ahead the tests schedule: enough for a preview and a click on a busy machine (the
#: bot answers from the test's process: no start-up between the two).
AHEAD = 4


def moment(ahead: float = AHEAD) -> datetime:
    """The first whole second at least `ahead` seconds from now (UTC)."""
    later = datetime.now(UTC) + timedelta(seconds=ahead)
    return later.replace(microsecond=0) + timedelta(seconds=1 if later.microsecond else 0)


def typed(at: datetime, zone: str = "UTC", date: bool = True) -> str:
    """How a user in `zone` types `at` (seconds included: the tests' short times)."""
    local = at.astimezone(ZoneInfo(zone))
    return local.strftime("%Y-%m-%d %H:%M:%S" if date else "%H:%M:%S")


def schedule(bot: Bot, text: str, user: str = USER) -> tuple[str, str, SlackCall]:
    """Preview `text` and confirm it; returns (operation id, the click's key, the preview)."""
    preview, operation_id = bot.preview(text, user_id=user)
    assert operation_id, text_of(preview)
    _, key = bot.click("addtolib_confirm", operation_id, user_id=user)
    return operation_id, key, preview


def wait_past(bot: Bot, at: datetime, margin: float = 0.5) -> None:
    """Poll the clock until `at` (+ margin) has passed."""
    bot.slack.wait_until(lambda: datetime.now(UTC) > at + timedelta(seconds=margin), timeout=60)


def thread_parent(bot: Bot, contains: str) -> SlackCall:
    return bot.slack.wait_for(
        lambda c: (
            c.method == "chat.postMessage"
            and c.channel == NOTIFY
            and not c.payload.get("thread_ts")
            and contains in dump(c)
        ),
        timeout=20,
    )


def test_runs_on_time_once_with_summary_and_thread_reply(start_bot: Callable[..., Bot]) -> None:
    bot = start_bot(process=True, **FAST)  # its own /metrics
    assets = free_assets(bot.simulator, MARKETING, 2)
    at = moment()
    operation_id, key, preview = schedule(bot, f"{MARKETING} {' '.join(assets)} at {typed(at)} UTC")
    shown = text_of(preview)
    assert f"<!date^{int(at.timestamp())}^" in shown and "your time: " in shown
    assert at.strftime("%Y-%m-%d %H:%M:%S") in shown
    confirmation = bot.reply(key, "Scheduled")
    assert button_value(confirmation, "addtolib_cancel") == operation_id
    assert stored(bot, operation_id).state == "scheduled"
    # The notification thread opens when the add is scheduled, before it runs.
    parent = thread_parent(bot, "scheduled 2 assets")
    assert not patches(bot.simulator)
    summary = bot.summary(operation_id, timeout=AHEAD + 20)
    adds = patches(bot.simulator)
    assert len(adds) == 1
    assert at.timestamp() <= adds[0].at <= at.timestamp() + 5, adds[0].at - at.timestamp()
    assert summary.payload["channel"] != NOTIFY
    reply = bot.slack.wait_for(
        lambda c: (
            c.channel == NOTIFY
            and c.payload.get("thread_ts") == parent.ts
            and "Ran as scheduled (for <!date^" in dump(c)
        ),
        timeout=20,
    )
    assert reply.ok
    done = stored(bot, operation_id)
    assert done.state == "done" and sorted(done.added_ids) == sorted(assets)
    assert done.started_at is not None and done.run_at == at
    # history shows it with its time; the metrics count it and its lateness.
    _, history_key = bot.command("history")
    assert "scheduled for <!date^" in dump(bot.reply(history_key, "operation"))
    metrics = requests.get(bot.process.url + "/metrics", timeout=5).text
    assert "addtolib_scheduled_total 1.0" in metrics
    assert "addtolib_schedule_lateness_seconds_count 1.0" in metrics


def test_hh_mm_is_read_in_the_requesters_zone(start_bot: Callable[..., Bot]) -> None:
    bot = start_bot(**FAST)
    bot.slack.set_user_zone(USER, "Asia/Kolkata")  # +05:30, no daylight saving
    assets = free_assets(bot.simulator, MARKETING, 1)
    at = moment(AHEAD + 60)  # later than any test here: it is cancelled below
    operation_id, key, preview = schedule(
        bot, f"{MARKETING} {assets[0]} at {typed(at, 'Asia/Kolkata', date=False)}"
    )
    assert stored(bot, operation_id).run_at == at
    assert "Asia/Kolkata)" in text_of(preview)
    bot.reply(key, "Scheduled")
    # The same wall-clock time typed by a user in UTC names another instant.
    other_assets = free_assets(bot.simulator, MARKETING, 2)[1:]
    utc_typed = typed(at, "Asia/Kolkata", date=False)
    _, other_id = bot.preview(f"{MARKETING} {other_assets[0]} at {utc_typed}", user_id=OTHER)
    other_at = stored(bot, other_id).run_at
    assert other_at is not None and (other_at - at) % timedelta(days=1) == timedelta(
        hours=5, minutes=30
    )
    _, cancel_key = bot.click("addtolib_cancel", operation_id)
    bot.reply(cancel_key, "Cancelled")


@pytest.mark.parametrize(
    ("when", "reason"),
    [
        ("at 2020-01-01 09:00 UTC", "in the past"),
        ("in 100d", "too far ahead"),
        ("at 2099-01-01 09:00", "too far ahead"),
    ],
)
def test_past_and_too_far_times_are_refused_and_change_nothing(
    start_bot: Callable[..., Bot], when: str, reason: str
) -> None:
    bot = start_bot(**FAST)
    assets = free_assets(bot.simulator, MARKETING, 1)
    answer, _ = bot.preview(f"{MARKETING} {assets[0]} {when}")
    assert reason in text_of(answer) and "Nothing was scheduled" in text_of(answer)
    assert not button_value(answer, "addtolib_confirm")
    from bot.core.store import OperationStore

    store = OperationStore(bot.env["DATABASE_URL"])
    try:
        assert store.recent(limit=5) == []
    finally:
        store.dispose()


def test_cancel_before_the_time_runs_nothing_and_others_may_not(
    start_bot: Callable[..., Bot],
) -> None:
    bot = start_bot(**FAST)
    assets = free_assets(bot.simulator, MARKETING, 1)
    at = moment()
    operation_id, key, _ = schedule(bot, f"{MARKETING} {assets[0]} at {typed(at)} UTC")
    bot.reply(key, "Scheduled")
    _, other_key = bot.click("addtolib_cancel", operation_id, user_id=OTHER)
    assert "Only <@U0USER>" in text_of(bot.reply(other_key, ":warning:"))
    assert stored(bot, operation_id).state == "scheduled"
    _, cancel_key = bot.click("addtolib_cancel", operation_id)
    bot.reply(cancel_key, "Cancelled")
    wait_past(bot, at, margin=2)
    assert stored(bot, operation_id).state == "cancelled"
    assert not patches(bot.simulator)
    thread_parent(bot, "scheduled 1 asset")


def test_an_admin_may_cancel(start_bot: Callable[..., Bot]) -> None:
    bot = start_bot(**FAST)
    assets = free_assets(bot.simulator, MARKETING, 1)
    operation_id, key, _ = schedule(bot, f"{MARKETING} {assets[0]} in 2h")
    bot.reply(key, "Scheduled")
    _, admin_key = bot.click("addtolib_cancel", operation_id, user_id=ADMIN)
    bot.reply(admin_key, "Cancelled")
    assert stored(bot, operation_id).state == "cancelled"


@pytest.mark.reliability
def test_two_instances_run_it_exactly_once(start_bot: Callable[..., Bot]) -> None:
    first = start_bot(**FAST)
    second = start_bot(**FAST)
    assert first.env["DATABASE_URL"] == second.env["DATABASE_URL"]
    ids = []
    at = moment(AHEAD + 2)
    for n in range(3):
        bot = (first, second)[n % 2]
        assets = free_assets(bot.simulator, MARKETING, 3 * (n + 1))[3 * n :]
        operation_id, key, _ = schedule(bot, f"{MARKETING} {' '.join(assets)} at {typed(at)} UTC")
        bot.reply(key, "Scheduled")
        ids.append(operation_id)
    for operation_id in ids:
        first.summary(operation_id, timeout=AHEAD + 30)
    assert len(patches(first.simulator)) == 3
    for operation_id in ids:
        assert stored(first, operation_id).state == "done"
    summaries = [
        c
        for c in first.slack.calls_of("chat.postMessage", ok=True)
        if c.channel != NOTIFY and any(i in dump(c) for i in ids)
    ]
    assert len(summaries) == 3


def test_a_restart_across_the_time_runs_it_once(start_bot: Callable[..., Bot]) -> None:
    bot = start_bot(**FAST)
    assets = free_assets(bot.simulator, MARKETING, 2)
    at = moment()
    operation_id, key, _ = schedule(bot, f"{MARKETING} {' '.join(assets)} at {typed(at)} UTC")
    bot.reply(key, "Scheduled")
    thread_parent(bot, "scheduled 2 assets")
    bot.process.stop()
    wait_past(bot, at, margin=1)
    assert not patches(bot.simulator)
    again = start_bot(**FAST)
    again.summary(operation_id, timeout=30)
    assert len(patches(bot.simulator)) == 1
    assert stored(again, operation_id).state == "done"


def test_a_time_missed_past_the_grace_expires_and_tells_the_requester(
    start_bot: Callable[..., Bot],
) -> None:
    bot = start_bot(ADDTOLIB_SCHEDULE_GRACE="1", **FAST)
    assets = free_assets(bot.simulator, MARKETING, 1)
    at = moment()
    operation_id, key, _ = schedule(bot, f"{MARKETING} {assets[0]} at {typed(at)} UTC")
    bot.reply(key, "Scheduled")
    thread_parent(bot, "scheduled 1 asset")
    bot.process.stop()
    wait_past(bot, at, margin=2)
    start_bot(ADDTOLIB_SCHEDULE_GRACE="1", **FAST)
    told = bot.slack.wait_for(
        lambda c: c.method == "chat.postMessage" and c.channel == USER and "was missed" in dump(c),
        timeout=20,
    )
    assert told.ok
    assert stored(bot, operation_id).state == "expired"
    assert not patches(bot.simulator)


def test_permission_removed_before_the_time_runs_nothing_and_tells_the_requester(
    start_bot: Callable[..., Bot], policy_file: Path
) -> None:
    bot = start_bot(**FAST)
    assets = free_assets(bot.simulator, MARKETING, 2)
    at = moment(AHEAD + 6)
    operation_id, key, _ = schedule(bot, f"{MARKETING} {assets[0]} at {typed(at)} UTC")
    bot.reply(key, "Scheduled")
    policy_file.write_text(policy_file.read_text().replace(f'"{USER}", ', ""))
    edited = time.monotonic()
    while "You may not add" not in text_of(bot.preview(f"{MARKETING} {assets[1]}")[0]):
        assert time.monotonic() - edited < 10, "the policy edit did not take effect"
        paused = time.monotonic()
        bot.slack.wait_until(lambda paused=paused: time.monotonic() - paused > 0.5)
    assert datetime.now(UTC) < at, "the policy took too long to reload for this test"
    told = bot.slack.wait_for(
        lambda c: (
            c.method == "chat.postMessage" and c.channel == USER and "may no longer add" in dump(c)
        ),
        timeout=AHEAD + 30,
    )
    assert told.ok
    assert stored(bot, operation_id).state == "denied"
    assert not patches(bot.simulator)


def test_an_asset_added_by_someone_else_before_the_time_is_skipped(
    start_bot: Callable[..., Bot],
) -> None:
    bot = start_bot(**FAST)
    assets = free_assets(bot.simulator, MARKETING, 2)
    at = moment()
    operation_id, key, _ = schedule(bot, f"{MARKETING} {' '.join(assets)} at {typed(at)} UTC")
    bot.reply(key, "Scheduled")
    bot.simulator.catalogue.add_to_library(MARKETING, [assets[0]])  # someone else, meanwhile
    bot.summary(operation_id, timeout=AHEAD + 20)
    adds = patches(bot.simulator)
    assert len(adds) == 1 and assets[0] not in dump_request(adds[0])
    done = stored(bot, operation_id)
    assert done.added_ids == [assets[1]]
    assert done.outcome[assets[0]] == "already in library"


def dump_request(request) -> str:
    return f"{request.query} {request.body} {request.params}"


@pytest.fixture
def protected(start_bot: Callable[..., Bot], tmp_path: Path) -> Bot:
    path = tmp_path / "protect.toml"
    path.write_text(PROTECTED_POLICY)
    return start_bot(ADDTOLIB_POLICY=str(path), ADDTOLIB_APPROVAL_CHANNEL="C0APPROVALS", **FAST)


def summary_of(bot: Bot, operation_id: str, timeout: float = 20) -> SlackCall:
    """The Library summary (not the approval request, not the thread)."""
    return bot.slack.wait_for(
        lambda c: (
            c.method == "chat.postMessage"
            and c.channel not in (NOTIFY, "C0APPROVALS")
            and operation_id in dump(c)
        ),
        timeout=timeout,
    )


def test_a_protected_add_approved_before_its_time_runs_at_the_time(protected: Bot) -> None:
    bot = protected
    assets = free_assets(bot.simulator, AD_BREAKS, 2)
    at = moment(AHEAD + 4)
    operation_id, key, preview = schedule(bot, f"{AD_BREAKS} {' '.join(assets)} at {typed(at)} UTC")
    # A protected add's button asks for approval (docs/SPEC.md §7); the preview says when.
    assert "Request approval" in text_of(preview)
    assert f"<!date^{int(at.timestamp())}^" in text_of(preview)
    bot.reply(key, "Waiting for approval")
    _, approve_key = bot.click("addtolib_approve", operation_id, user_id=LEAD)
    answer = text_of(bot.reply(approve_key, "Your approval is recorded"))
    assert f"<!date^{int(at.timestamp())}^" in answer
    approved_at = time.time()
    assert approved_at < at.timestamp(), "approved too late for this test"
    assert stored(bot, operation_id).state == "scheduled"
    summary_of(bot, operation_id, timeout=AHEAD + 30)
    adds = patches(bot.simulator)
    assert len(adds) == 1
    assert at.timestamp() <= adds[0].at <= at.timestamp() + 5
    assert stored(bot, operation_id).state == "done"


def test_a_protected_add_approved_after_its_time_runs_at_approval(protected: Bot) -> None:
    bot = protected
    assets = free_assets(bot.simulator, AD_BREAKS, 1)
    at = moment()
    operation_id, key, _ = schedule(bot, f"{AD_BREAKS} {assets[0]} at {typed(at)} UTC")
    bot.reply(key, "Waiting for approval")
    wait_past(bot, at, margin=1)
    assert not patches(bot.simulator)
    assert stored(bot, operation_id).state == "awaiting_approval"
    bot.click("addtolib_approve", operation_id, user_id=LEAD)
    summary_of(bot, operation_id)
    assert len(patches(bot.simulator)) == 1
    assert stored(bot, operation_id).state == "done"


def test_the_modal_schedules_with_its_when_block(start_bot: Callable[..., Bot]) -> None:
    from tests.test_e2e_modal import open_form, preview_of, submit, text_of_view

    bot = start_bot(**FAST)
    form = open_form(bot)
    when = [b for b in form["blocks"] if b.get("block_id") == "when"]
    assert when and when[0]["optional"] and when[0]["element"]["type"] == "datetimepicker"
    assets = free_assets(bot.simulator, MARKETING, 1)
    past = int(time.time()) - 60
    answer = submit(bot, form, library=MARKETING, assets=assets[0], channel="C0SUM", when=past)
    assert answer["response_action"] == "errors" and "in the past" in answer["errors"]["when"]
    at = moment()
    preview = preview_of(
        bot, form, library=MARKETING, assets=assets[0], channel="C0SUM", when=int(at.timestamp())
    )
    assert preview["submit"]["text"] == "Schedule 1 asset"
    assert f"<!date^{int(at.timestamp())}^" in text_of_view(preview)
    operation_id = preview["private_metadata"]
    assert submit(bot, preview) == {"response_action": "clear"}
    bot.slack.wait_for(
        lambda c: c.method == "chat.postEphemeral" and "Scheduled" in dump(c), timeout=20
    )
    assert stored(bot, operation_id).state == "scheduled"
    assert not patches(bot.simulator)
    bot.summary(operation_id, timeout=AHEAD + 20)
    adds = patches(bot.simulator)
    assert len(adds) == 1 and adds[0].at >= at.timestamp()
