"""The Workflow Builder step's parts (SPEC 13): the execution's compare-and-set, completion once,
the token's life, the inputs' grammar, redaction, and the stand-in's functions.complete*."""

from __future__ import annotations

import logging
import threading

import pytest
import requests
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.config import Settings
from bot.core.delivery.outbox import Outbox
from bot.core.operation import State
from bot.core.parsing import ParseError
from bot.core.steps import WorkflowSteps, one_line, reason_of, step_command
from bot.core.store import OperationStore
from bot.redaction import RedactSecrets
from bot.slack_standin import SlackStandIn
from bot.slack_standin.events import new_execution_id, new_execution_token

LIBRARY = "f6125eeb1a58cb4310952b35a1b41037"
ASSET = "97fbacb3d224e5dd28cd9226f060adb0"


def inputs(**more: str) -> dict[str, str]:
    return {"library": LIBRARY, "asset_ids": ASSET, "requester": "U0USER", **more}


def test_one_execution_id_starts_once_among_8_concurrent_deliveries(store: OperationStore) -> None:
    steps = WorkflowSteps(store)
    execution_id = new_execution_id()
    barrier = threading.Barrier(8)
    results: list[bool] = []

    def deliver() -> None:
        barrier.wait()
        results.append(steps.start(execution_id, "U0USER", inputs(), new_execution_token()))

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]


def test_an_operations_end_completes_its_step_once_and_the_token_goes_with_it(
    store: OperationStore,
) -> None:
    steps = WorkflowSteps(store)
    store.finish_listeners.append(steps.settle)
    execution_id, token = new_execution_id(), new_execution_token()
    assert steps.start(execution_id, "U0USER", inputs(), token)
    operation = store.create(user_id="U0USER", library_id=LIBRARY, new_ids=[ASSET])
    steps.link(execution_id, operation.id)

    assert store.transition(operation.id, State.PENDING, State.CANCELLED) is not None
    step = steps.get(execution_id)
    assert step is not None and step.state == "finished" and step.success is False
    assert step.reason == "Cancelled: nothing was added."
    assert step.live_token() == token  # kept until Slack has the completion
    assert token not in repr(step)
    # Any other instance seeing the same end finishes nothing more.
    assert steps.settle(store.get(operation.id)) is False
    assert steps.finish(execution_id, reason="again") is False
    owed = [e for e in Outbox(store).entries() if e.kind == "complete"]
    assert [(e.template, e.args) for e in owed] == [("step", {"execution_id": execution_id})]

    assert steps.completed(execution_id) is True
    step = steps.get(execution_id)
    assert step is not None and step.state == "completed" and step.token is None
    assert steps.completed(execution_id) is False


def test_a_bulk_expiry_is_swept_into_a_completion(store: OperationStore) -> None:
    from datetime import UTC, datetime, timedelta

    steps = WorkflowSteps(store)
    execution_id = new_execution_id()
    steps.start(execution_id, "U0USER", inputs(), None)
    operation = store.create(user_id="U0USER", library_id=LIBRARY, new_ids=[ASSET])
    steps.link(execution_id, operation.id)
    assert store.expire_pending(datetime.now(UTC) + timedelta(seconds=1)) == 1
    assert steps.sweep() == 1
    step = steps.get(execution_id)
    assert step is not None and step.reason and step.reason.startswith("Expired")
    assert steps.sweep() == 0


def test_reasons_are_one_plain_line() -> None:
    assert one_line("You may not add to *Promo &lt;x&gt;*:\n<@U0ADMIN> only") == (
        "You may not add to Promo <x>: U0ADMIN only"
    )
    assert len(one_line("x" * 1000)) == 300


def test_reason_names_the_approver_who_denied(store: OperationStore) -> None:
    operation = store.create(user_id="U0USER", state=State.REJECTED, rejected_by="U0LEAD")
    assert reason_of(operation) == "Denied by U0LEAD (approval required). Nothing was added."


def test_step_inputs_use_the_commands_grammar() -> None:
    command = step_command(inputs(library="Marketing Library", asset_ids=f"{ASSET},\n{ASSET}"))
    assert command.library.name == "Marketing Library" and command.asset_ids == (ASSET,)
    assert command.duplicates == (ASSET,)
    assert step_command(inputs(library=LIBRARY.upper())).library.id == LIBRARY
    with pytest.raises(ParseError, match="library"):
        step_command(inputs(library="  "))
    with pytest.raises(ParseError, match="hello"):
        step_command(inputs(asset_ids="hello world"))


def test_execution_tokens_are_redacted_from_logs() -> None:
    settings = Settings(slack_bot_token="xoxb-1", slack_signing_secret="s" * 32)
    token = new_execution_token()
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "event %s", (token,), None)
    RedactSecrets(settings).filter(record)
    assert token not in record.getMessage() and "***" in record.getMessage()


def test_the_standin_completes_an_execution_once_and_revokes_its_token() -> None:
    with SlackStandIn(token="xoxb-bot") as slack:
        execution_id, token = new_execution_id(), new_execution_token()
        slack.start_execution(execution_id, token)
        as_step = WebClient(token=token, base_url=slack.url)
        as_step.retry_handlers = []
        answer = as_step.functions_completeSuccess(
            function_execution_id=execution_id, outputs={"added": 1}
        )
        assert answer["ok"]
        assert slack.completions[execution_id].payload["outputs"] == {"added": 1}
        as_bot = WebClient(token="xoxb-bot", base_url=slack.url)
        with pytest.raises(SlackApiError) as again:
            as_bot.functions_completeError(function_execution_id=execution_id, error="late")
        assert again.value.response["error"] == "function_execution_not_found"
        with pytest.raises(SlackApiError) as revoked:  # Slack revokes it at completion
            as_step.auth_test()
        assert revoked.value.response["error"] == "token_revoked"
        calls = slack.calls_of("functions.completeSuccess")
        assert [c.token for c in calls] == [token]
        assert requests.get(slack.base + "/healthz", timeout=5).ok
