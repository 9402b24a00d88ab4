"""End to end over signed HTTP (and Socket Mode): the Workflow Builder step (SPEC 13)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.slack_standin import SlackCall
from bot.slack_standin.events import (
    function_executed,
    new_event_id,
    new_execution_id,
    new_execution_token,
    send_event,
    send_socket_event,
)
from tests.fixtures_bot import (
    AD_BREAKS,
    LEAD,
    MARKETING,
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
from tests.fixtures_slack import SIGNING_SECRET
from tests.fixtures_socket import SocketBot

STRANGER = "U0STRANGER"
SUMMARY_CHANNEL = "C0MEDIA"


@pytest.fixture
def start(start_bot: Callable[..., Bot], tmp_path: Path) -> Callable[..., Bot]:
    path = tmp_path / "step.toml"
    path.write_text(PROTECTED_POLICY)

    def starter(process: bool = False, **env: str) -> Bot:
        env.setdefault("LOG_LEVEL", "DEBUG")  # the token must stay out of even the debug log
        return start_bot(ADDTOLIB_POLICY=str(path), process=process, **env)

    return starter


class Run:
    """One execution of the step, as Workflow Builder starts it."""

    def __init__(self, bot: Bot, library: str, assets: str, requester: str = USER, **more: Any):
        self.bot = bot
        self.execution_id = new_execution_id()
        self.token = new_execution_token()
        self.inputs = {"library": library, "asset_ids": assets, "requester": requester, **more}
        self.event = function_executed(
            self.inputs, execution_id=self.execution_id, token=self.token
        )
        bot.slack.start_execution(self.execution_id, self.token)

    def send(self, url: str | None = None, **options: Any) -> float:
        """Deliver the event, signed; returns how long the acknowledgement took."""
        started = time.monotonic()
        response = send_event(
            self.event,
            url=url or self.bot.sender.url,
            signing_secret=SIGNING_SECRET,
            **options,
        )
        took = time.monotonic() - started
        assert response.status_code == 200, response.text
        return took

    def completion(self, timeout: float = 20) -> SlackCall:
        return self.bot.slack.wait_for(
            lambda c: (
                c.method.startswith("functions.complete")
                and c.ok
                and c.payload.get("function_execution_id") == self.execution_id
            ),
            timeout=timeout,
        )

    def completions(self) -> list[SlackCall]:
        return [
            c
            for c in self.bot.slack.calls
            if c.method.startswith("functions.complete")
            and c.payload.get("function_execution_id") == self.execution_id
        ]

    def dm(self, contains: str = "", user: str = USER, timeout: float = 20) -> SlackCall:
        """The first direct message to `user` that mentions this step's assets or `contains`."""
        return self.bot.slack.wait_for(
            lambda c: (
                c.method == "chat.postMessage"
                and c.ok
                and c.payload.get("channel") == user
                and contains in text_of(c)
            ),
            timeout=timeout,
        )


def previews(bot: Bot, user: str = USER) -> list[SlackCall]:
    return [
        c
        for c in bot.slack.calls_of("chat.postMessage", ok=True)
        if c.payload.get("channel") == user and button_value(c, "addtolib_confirm")
    ]


def click_dm(bot: Bot, dm: SlackCall, action_id: str, user: str = USER) -> str:
    """The requester's click on a button of the DM, as Slack sends it; returns the value."""
    value = button_value(dm, action_id)
    assert value, f"no {action_id} button in {dump(dm)}"
    message = {"ts": dm.ts, "text": dm.payload.get("text"), "blocks": dm.blocks}
    bot.click(action_id, value, user_id=user, channel_id="D" + user[1:], message=message)
    return value


def slack_accepted_everything(bot: Bot) -> None:
    """Every message and view the bot sent is one Slack accepts (the stand-in checks them)."""
    refused = [c for c in bot.slack.calls if c.error in ("invalid_blocks", "no_text")]
    assert refused == [], [dump(c) for c in refused]


def test_happy_path_fast_ack_dm_preview_one_patch_one_completion_with_the_token(start) -> None:
    bot = start(process=True, ADDTOLIB_NOTIFY_CHANNEL="")  # its log is read
    bot.simulator.faults.set_latency("*", 2.5)  # Uplynk is slow: the ack must not wait
    assets = free_assets(bot.simulator, MARKETING, 3)
    run = Run(bot, "Marketing Library", "\n".join(assets), channel=SUMMARY_CHANNEL)

    took = run.send()
    print(f"function_executed acknowledged in {took * 1000:.0f} ms (Uplynk answers in 2.5 s)")
    assert took < 1.0

    preview = run.dm("Marketing Library", timeout=30)
    operation_id = button_value(preview, "addtolib_confirm")
    assert operation_id and "Add 3 assets" in dump(preview)
    assert patches(bot.simulator) == []  # nothing runs before the requester's click
    bot.simulator.faults.set_latency("*", 0)

    click_dm(bot, preview, "addtolib_confirm")
    done = run.completion()
    assert done.method == "functions.completeSuccess"
    assert done.payload["outputs"] == {
        "operation_id": operation_id,
        "added": 3,
        "already_present": 0,
        "not_found": 0,
    }
    assert done.token == run.token  # the execution's own token
    assert len(patches(bot.simulator)) == 1
    assert stored(bot, operation_id).state == "done"
    # The summary went to the step's channel.
    summary = bot.slack.wait_for(
        lambda c: c.method == "chat.postMessage" and c.payload.get("channel") == SUMMARY_CHANNEL
    )
    assert operation_id in dump(summary) and "3 assets added" in summary.text
    # Once Slack took the completion, the token is forgotten.
    bot.slack.wait_until(lambda: _stored_token(bot, run.execution_id) is None)
    assert len(run.completions()) == 1
    slack_accepted_everything(bot)
    assert run.token not in bot.process.output()


def test_outputs_count_added_already_present_and_not_found(start) -> None:
    bot = start()
    fresh, held = free_assets(bot.simulator, MARKETING, 2)
    bot.simulator.catalogue.add_to_library(MARKETING, [held])
    missing = "0123456789abcdef0123456789abcdef"
    run = Run(bot, MARKETING, f"{fresh}, {held}; {missing}")
    run.send()
    click_dm(bot, run.dm("Marketing Library"), "addtolib_confirm")
    done = run.completion()
    assert done.method == "functions.completeSuccess"
    outputs = done.payload["outputs"]
    assert (outputs["added"], outputs["already_present"], outputs["not_found"]) == (1, 1, 1)


def test_nothing_to_add_completes_at_once_with_zero_added(start) -> None:
    bot = start()
    (held,) = free_assets(bot.simulator, MARKETING, 1)
    bot.simulator.catalogue.add_to_library(MARKETING, [held])
    run = Run(bot, MARKETING, held)
    run.send()
    done = run.completion()
    assert done.method == "functions.completeSuccess"
    assert done.payload["outputs"]["added"] == 0
    assert done.payload["outputs"]["already_present"] == 1
    assert patches(bot.simulator) == []


def test_a_lapsed_execution_token_leaves_the_completion_to_the_bot_token(start) -> None:
    bot = start()
    run = Run(bot, MARKETING, " ".join(free_assets(bot.simulator, MARKETING, 1)))
    run.send()
    preview = run.dm("Marketing Library")
    bot.slack.revoke_token(run.execution_id)  # a slow approval outlives it (SPEC 13)
    click_dm(bot, preview, "addtolib_confirm")
    done = run.completion()
    assert done.method == "functions.completeSuccess"
    assert done.token == bot.env["SLACK_BOT_TOKEN"]
    refused = [c for c in run.completions() if not c.ok]
    assert [c.error for c in refused] == ["token_revoked"]
    assert refused[0].token == run.token


@pytest.mark.parametrize("case", ["no_right", "bad_library", "bad_ids"])
def test_input_errors_end_the_step_and_tell_the_requester(start, case: str) -> None:
    bot = start()
    assets = " ".join(free_assets(bot.simulator, MARKETING, 2))
    requester, library, ids, expected = {
        "no_right": (STRANGER, MARKETING, assets, "may not add"),
        "bad_library": (USER, "No Such Library", assets, "No library is named"),
        "bad_ids": (USER, MARKETING, "hello world", "hello"),
    }[case]
    run = Run(bot, library, ids, requester=requester)
    run.send()
    done = run.completion()
    assert done.method == "functions.completeError"
    assert expected.lower() in done.payload["error"].lower()
    assert "\n" not in done.payload["error"]
    told = run.dm(user=requester)
    assert expected.lower() in text_of(told).lower()
    assert patches(bot.simulator) == []
    assert previews(bot, requester) == []
    slack_accepted_everything(bot)


def test_cancel_ends_the_step_with_an_error_and_no_patch(start) -> None:
    bot = start()
    run = Run(bot, MARKETING, " ".join(free_assets(bot.simulator, MARKETING, 2)))
    run.send()
    preview = run.dm("Marketing Library")
    click_dm(bot, preview, "addtolib_cancel")
    done = run.completion()
    assert done.method == "functions.completeError"
    assert "cancel" in done.payload["error"].lower()
    assert patches(bot.simulator) == []


def test_an_expired_preview_ends_the_step_with_an_error_and_no_patch(start) -> None:
    bot = start(ADDTOLIB_CONFIRM_TTL="1")
    run = Run(bot, MARKETING, " ".join(free_assets(bot.simulator, MARKETING, 2)))
    run.send()
    preview = run.dm("Marketing Library")
    operation_id = button_value(preview, "addtolib_confirm")
    bot.slack.wait_until(lambda: _older_than(bot, operation_id, 1.2))
    click_dm(bot, preview, "addtolib_confirm")
    done = run.completion()
    assert done.method == "functions.completeError"
    assert "expired" in done.payload["error"].lower()
    assert patches(bot.simulator) == []


def test_protected_library_denial_and_approval(start) -> None:
    bot = start(ADDTOLIB_APPROVAL_CHANNEL="")
    # Denied: completeError, no PATCH.
    denied = Run(bot, AD_BREAKS, " ".join(free_assets(bot.simulator, AD_BREAKS, 1)))
    denied.send()
    preview = denied.dm("Ad Breaks")
    first = click_dm(bot, preview, "addtolib_confirm")
    request = _approval_request(bot, first)
    click_dm(bot, request, "addtolib_deny", user=LEAD)
    done = denied.completion()
    assert done.method == "functions.completeError"
    assert "denied" in done.payload["error"].lower()
    assert patches(bot.simulator) == []

    # Approved: the step completes after the approval.
    approved = Run(bot, AD_BREAKS, " ".join(free_assets(bot.simulator, AD_BREAKS, 2)))
    approved.send()
    preview = next(
        c for c in _wait_previews(bot, 2) if button_value(c, "addtolib_confirm") != first
    )
    operation_id = click_dm(bot, preview, "addtolib_confirm")
    request = _approval_request(bot, operation_id)
    assert approved.completions() == []  # waiting for the approver
    click_dm(bot, request, "addtolib_approve", user=LEAD)
    done = approved.completion()
    assert done.method == "functions.completeSuccess"
    assert done.payload["outputs"]["added"] == 2
    assert len(patches(bot.simulator)) == 1
    slack_accepted_everything(bot)


def test_duplicates_three_deliveries_and_two_instances_make_one_operation(start) -> None:
    bot = start(process=True)  # their logs are read
    second = start(process=True)  # another instance on the same database
    run = Run(bot, MARKETING, " ".join(free_assets(bot.simulator, MARKETING, 2)))
    event_id = new_event_id()
    run.send(event_id=event_id)
    run.send(event_id=event_id, retry_num=1)  # Slack's retry of the same event
    run.send(url=second.sender.url, event_id=new_event_id(), retry_num=2)  # another instance
    run.send(url=second.sender.url)
    preview = run.dm("Marketing Library")
    click_dm(bot, preview, "addtolib_confirm")
    run.completion()
    # The two redeliveries with new event ids reached a job each, which found the step known.
    bot.slack.wait_until(
        lambda: second.process.output().count("delivered again; already handled") >= 2, timeout=20
    )
    assert "already handled" not in bot.process.output()  # its retry was dropped by event id
    assert len(previews(bot)) == 1
    assert len(patches(bot.simulator)) == 1
    assert len(run.completions()) == 1
    assert len(_operations_of(bot, USER)) == 1


def test_socket_mode_happy_path(start_socket_bot: Callable[..., SocketBot], tmp_path) -> None:
    path = tmp_path / "step.toml"
    path.write_text(PROTECTED_POLICY)
    bot = start_socket_bot(ADDTOLIB_POLICY=str(path))
    run = Run(bot, MARKETING, " ".join(free_assets(bot.simulator, MARKETING, 2)))
    envelope = send_socket_event(bot.sm, run.event)
    assert bot.sm.wait_ack(envelope.envelope_id).ok
    preview = run.dm("Marketing Library")
    value = button_value(preview, "addtolib_confirm")
    bot.click("addtolib_confirm", value)
    done = run.completion()
    assert done.method == "functions.completeSuccess"
    assert done.payload["outputs"]["added"] == 2
    assert done.token == run.token
    assert len(patches(bot.simulator)) == 1


# -- helpers ---------------------------------------------------------------------------------


def _stored_token(bot: Bot, execution_id: str) -> str | None:
    from bot.core.steps import WorkflowSteps
    from bot.core.store import OperationStore

    store = OperationStore(bot.env["DATABASE_URL"])
    try:
        step = WorkflowSteps(store).get(execution_id)
    finally:
        store.dispose()
    assert step is not None
    return step.token


def _older_than(bot: Bot, operation_id: str, seconds: float) -> bool:
    from datetime import UTC, datetime

    created = stored(bot, operation_id).created_at
    return (datetime.now(UTC) - created).total_seconds() > seconds


def _approval_request(bot: Bot, operation_id: str) -> SlackCall:
    return bot.slack.wait_until(
        lambda: next(
            (
                c
                for c in bot.slack.calls_of("chat.postMessage", ok=True)
                if c.payload.get("channel") == LEAD
                and button_value(c, "addtolib_approve") == operation_id
            ),
            None,
        ),
        timeout=20,
    )


def _wait_previews(bot: Bot, count: int) -> list[SlackCall]:
    return bot.slack.wait_until(lambda: (found := previews(bot)) and len(found) >= count and found)


def _operations_of(bot: Bot, user: str) -> list[Any]:
    from bot.core.store import OperationStore

    store = OperationStore(bot.env["DATABASE_URL"])
    try:
        return store.recent(user, limit=50)
    finally:
        store.dispose()
