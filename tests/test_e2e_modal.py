"""End to end over signed HTTP: shortcuts, the modal, its type-ahead, preview, confirm, close."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bot.core.store import OperationStore
from bot.slack_standin.views import validate_options, validate_view
from tests.fixtures_bot import (
    MARKETING,
    SPORTS,
    USER,
    Bot,
    blocks_text,
    dump,
    free_assets,
    patches,
    stored,
)
from tests.slack_requests import SlackSender

SUMMARY_CHANNEL = "C0SUMMARY"


def open_form(bot: Bot, message: str | None = None, user_id: str = USER) -> dict[str, Any]:
    """Run a shortcut (a message shortcut with `message`); the modal views.open opened."""
    trigger = bot.slack.new_trigger()
    if message is None:
        response = bot.sender.shortcut(trigger, user_id=user_id)
    else:
        response = bot.sender.message_shortcut(trigger, message, user_id=user_id)
    assert response.status_code == 200 and not response.text, response.text
    call = bot.slack.wait_for(
        lambda c: c.method == "views.open" and c.payload.get("trigger_id") == trigger
    )
    assert call.ok, call.error
    view = bot.slack.views.opened_by(trigger)
    assert view is not None
    return view


def submit(
    bot: Bot, view: dict[str, Any], user_id: str = USER, **values: str | None
) -> dict[str, Any]:
    """Submit `view` with the form's `values`; the app's answer (validated like Slack would)."""
    values = SlackSender.form_values(**values) if values else {}
    response = bot.sender.view_submission(view, values, user_id=user_id)
    assert response.status_code == 200, response.text
    answer = response.json() if response.text else {}
    if answer.get("response_action") == "update":
        validate_view(answer["view"])
        bot.slack.views.submitted(view["id"], answer["view"])
    return answer


def preview_of(bot: Bot, form: dict[str, Any], **values: str | None) -> dict[str, Any]:
    answer = submit(bot, form, **values)
    assert answer["response_action"] == "update", answer
    preview = bot.slack.views.view(form["id"])
    assert preview["callback_id"] == "addtolib_modal_confirm"
    return preview


def text_of_view(view: dict[str, Any]) -> str:
    return blocks_text(view.get("blocks"))


def test_global_shortcut_opens_the_form_and_types_ahead_fast_with_a_slow_uplynk(bot: Bot) -> None:
    bot.simulator.catalogue.add_library("Market Research")  # nobody's [[allow]] names it
    bot.simulator.faults.set_latency("*", 1.0)
    view = open_form(bot)
    assert bot.simulator.requests == [] or all(
        r.call == "find_libraries" for r in bot.simulator.requests
    )  # views.open came first; only the type-ahead list is fetched after it
    assert view["callback_id"] == "addtolib_modal"
    assert view["notify_on_close"] is True
    inputs = {b["block_id"]: b["element"] for b in view["blocks"] if b["type"] == "input"}
    assert set(inputs) == {"library", "assets", "channel", "when"}  # when: SPEC 15
    assert inputs["library"]["type"] == "external_select"
    assert inputs["library"]["action_id"] == "library"
    assert inputs["library"]["min_query_length"] == 0
    assert inputs["assets"]["type"] == "plain_text_input" and inputs["assets"]["multiline"]
    assert inputs["channel"] == {
        "type": "conversations_select",
        "action_id": "channel",
        "default_to_current_conversation": True,
    }

    started = time.monotonic()
    response = bot.sender.block_suggestion(view, "Market")
    elapsed = time.monotonic() - started
    # Slack drops an options answer after 3 s; Uplynk takes 1 s a call here.
    assert response.status_code == 200 and elapsed < 3.0, elapsed
    options = response.json()["options"]
    validate_options(options)
    names = {o["text"]["text"]: o["value"] for o in options}
    assert names["Marketing Library"] == MARKETING
    assert "Market Research" not in names  # the user may not add to it
    assert "Sports Highlights" not in names

    # An empty query lists the libraries too (from the cache: no wait on Uplynk).
    started = time.monotonic()
    everything = bot.sender.block_suggestion(view, "").json()["options"]
    assert time.monotonic() - started < 3.0
    assert {o["text"]["text"] for o in everything} == {
        "Marketing Library",
        "Marketing Library Archive",
        "Ad Breaks",
    }


def test_bad_input_is_answered_with_errors_on_its_block_and_nothing_is_looked_up(
    bot: Bot,
) -> None:
    view = open_form(bot)
    bot.simulator.clear_requests()
    asset = free_assets(bot.simulator, MARKETING, 1)[0]

    answer = submit(bot, view, library=MARKETING, assets=f"{asset} zz12", channel=SUMMARY_CHANNEL)
    assert answer["response_action"] == "errors"
    assert set(answer["errors"]) == {"assets"}
    assert (
        "`zz12`" in answer["errors"]["assets"] and "not an asset id" in answer["errors"]["assets"]
    )

    answer = submit(bot, view, library=None, assets=asset, channel=SUMMARY_CHANNEL)
    assert answer == {
        "response_action": "errors",
        "errors": {"library": "Pick a library from the list."},
    }
    answer = submit(bot, view, library=MARKETING, assets="", channel=SUMMARY_CHANNEL)
    assert "No asset ids given" in answer["errors"]["assets"]
    # Nothing was looked up (the type-ahead's library list is fetched when the form opens).
    assert [r for r in bot.simulator.requests if r.call != "find_libraries"] == []
    assert patches(bot.simulator) == []


def test_submission_previews_with_titles_then_submit_adds_once_and_posts_the_summary(
    bot: Bot,
) -> None:
    assets = free_assets(bot.simulator, MARKETING, 2)
    present = sorted(bot.simulator.catalogue.library_assets(MARKETING))[0]
    missing = "ab" * 16
    titles = {a: bot.simulator.catalogue.assets[a].desc for a in [*assets, present]}
    form = open_form(bot)
    typed = f"{assets[0]}, <https://cms.uplynk.com/#/assets/{assets[1]}|link> {present} {missing}"
    preview = preview_of(bot, form, library=MARKETING, assets=typed, channel=SUMMARY_CHANNEL)

    operation_id = preview["private_metadata"]
    assert preview["submit"]["text"] == "Add 2 assets"
    assert preview["notify_on_close"] is True
    shown = text_of_view(preview)
    assert "*Marketing Library*" in shown and MARKETING in shown
    assert "Will add: *2 assets*" in shown
    for asset_id, title in titles.items():
        assert f"{title} (`{asset_id}`)" in shown
    assert f"Not found in Uplynk (skipped): 1: `{missing}`" in shown
    assert stored(bot, operation_id).channel_id == SUMMARY_CHANNEL

    assert submit(bot, preview) == {"response_action": "clear"}
    summary = bot.summary(operation_id)
    assert summary.channel == SUMMARY_CHANNEL
    assert [p.body for p in patches(bot.simulator)] == [{"asset_ids": assets}]
    outcome = bot.slack.wait_for(
        lambda c: c.method == "chat.postEphemeral" and "Added 2 assets" in dump(c)
    )
    assert outcome.payload["channel"] == SUMMARY_CHANNEL and outcome.payload["user"] == USER
    assert stored(bot, operation_id).state == "done"


def test_message_shortcut_with_1500_ids_amid_prose_and_links(bot: Bot) -> None:
    catalogue = bot.simulator.catalogue
    ids = [f"{n:032x}" for n in range(0xA000, 0xA000 + 1500)]
    for n, asset_id in enumerate(ids):
        catalogue.add_asset(f"Clip {n}", asset_id, libraries=[MARKETING] if n < 7 else [])
    lines = ["Export from the CMS, 1,500 clips. Please add them <!here> :tada:"]
    for n, asset_id in enumerate(ids):
        if n % 3 == 0:
            lines.append(f"• <https://cms.uplynk.com/#/assets/{asset_id}|Clip {n}> (ready)")
        else:
            lines.append(f"clip {n}: {asset_id}, checked by QA; see ticket 12345")
    lines.append(f"(repeated: {ids[10]} {ids[11]})")
    form = open_form(bot, "\n".join(lines))
    shown = text_of_view(form)
    assert "Found *1500 asset ids* in the message (2 duplicates dropped)" in shown
    assert len(form["private_metadata"]) < 3000  # the ids stay on the server
    assets_block = next(b for b in form["blocks"] if b.get("block_id") == "assets")
    assert assets_block["optional"] is True

    preview = preview_of(bot, form, library=MARKETING, assets=None, channel=SUMMARY_CHANNEL)
    assert preview["submit"]["text"] == "Add 1493 assets"
    assert "Already in the library (skipped): 7" in text_of_view(preview)
    bot.simulator.clear_requests()
    assert submit(bot, preview) == {"response_action": "clear"}
    bot.summary(preview["private_metadata"], timeout=60)
    sent = [a for p in patches(bot.simulator) for a in p.body["asset_ids"]]
    assert sorted(sent) == sorted(ids[7:])
    assert len(sent) == len(set(sent))


def test_closing_the_preview_cancels_and_a_stale_submit_runs_nothing(bot: Bot) -> None:
    assets = free_assets(bot.simulator, MARKETING, 2)
    form = open_form(bot)
    preview = preview_of(bot, form, library=MARKETING, assets=" ".join(assets), channel="C0X")
    operation_id = preview["private_metadata"]

    response = bot.sender.view_closed(preview)
    assert response.status_code == 200
    bot.slack.views.close(form["id"])
    wait_state(bot, operation_id, "cancelled")

    bot.simulator.clear_requests()
    assert submit(bot, preview) == {"response_action": "clear"}
    refusal = bot.slack.wait_for(
        lambda c: c.method == "chat.postEphemeral" and "was cancelled" in dump(c)
    )
    assert refusal.payload["user"] == USER
    assert patches(bot.simulator) == []
    assert stored(bot, operation_id).state == "cancelled"


def test_closing_the_form_cancels_its_draft(bot: Bot) -> None:
    form = open_form(bot, "ids: " + "cd" * 16)
    draft = form["private_metadata"].split('"')[3]
    bot.sender.view_closed(form)
    wait_state(bot, draft, "cancelled")
    answer = submit(bot, form, library=MARKETING, assets=None, channel="C0X")
    assert answer["response_action"] == "update"
    assert "This form is cancelled; open it again." in text_of_view(answer["view"])
    assert "submit" not in answer["view"]
    assert [r for r in bot.simulator.requests if r.call in ("get_assets", "add")] == []


def test_slow_lookups_show_checking_then_views_update_fills_the_preview(bot: Bot) -> None:
    assets = free_assets(bot.simulator, MARKETING, 1)
    form = open_form(bot)
    bot.simulator.faults.set_latency("get_assets", 2.5)
    answer = submit(bot, form, library=MARKETING, assets=assets[0], channel=SUMMARY_CHANNEL)
    assert answer["response_action"] == "update"
    assert "Checking 1 asset" in text_of_view(answer["view"])
    assert "submit" not in answer["view"]
    update = bot.slack.wait_for(lambda c: c.method == "views.update", timeout=15)
    assert update.ok and update.payload["view_id"] == form["id"]
    preview = bot.slack.views.view(form["id"])
    assert preview["submit"]["text"] == "Add 1 asset"
    assert preview["private_metadata"] == answer["view"]["private_metadata"]


def test_double_submits_and_concurrent_preview_submits_add_once(bot: Bot) -> None:
    assets = free_assets(bot.simulator, MARKETING, 3)
    form = open_form(bot)
    values = {"library": MARKETING, "assets": " ".join(assets), "channel": SUMMARY_CHANNEL}
    with ThreadPoolExecutor(max_workers=3) as pool:
        answers = list(pool.map(lambda _: submit(bot, form, **values), range(3)))
    operation_ids = {a["view"]["private_metadata"] for a in answers}
    assert len(operation_ids) == 1  # one form, one operation
    preview = bot.slack.views.view(form["id"])
    assert preview["submit"]["text"] == "Add 3 assets"

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: submit(bot, preview), range(8)))
    assert all(r == {"response_action": "clear"} for r in results)
    operation_id = preview["private_metadata"]
    bot.summary(operation_id)

    def answered() -> bool:
        ephemerals = bot.slack.calls_of("chat.postEphemeral")
        return len([c for c in ephemerals if "nothing more was done" in dump(c)]) == 7

    bot.slack.wait_until(answered, timeout=20)
    assert [p.body for p in patches(bot.simulator)] == [{"asset_ids": assets}]
    # A Slack retry of the submission is acknowledged and ignored.
    retry = bot.sender.send_form(
        {"payload": "{}"}, headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "timeout"}
    )
    assert retry.status_code == 200
    assert len(patches(bot.simulator)) == 1


def test_a_trigger_id_works_once_and_for_three_seconds(bot: Bot) -> None:
    trigger = bot.slack.new_trigger()
    bot.sender.shortcut(trigger)
    bot.sender.shortcut(trigger)  # the same trigger again: Slack refuses the second views.open

    def both() -> list:
        calls = [c for c in bot.slack.calls_of("views.open") if c.payload["trigger_id"] == trigger]
        return calls if len(calls) == 2 else []

    first, second = bot.slack.wait_until(both)
    assert {first.error, second.error} == {None, "exchanged_trigger_id"}
    # The modal that did not open leaves no pending draft behind.
    store = OperationStore(bot.env["DATABASE_URL"])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            states = sorted(d.state for d in store.recent(USER, limit=5))
            if states == ["cancelled", "pending"]:
                break
            time.sleep(0.05)
    finally:
        store.dispose()
    assert states == ["cancelled", "pending"]


def test_the_options_offer_only_libraries_the_user_may_use_from_some_channel(bot: Bot) -> None:
    form = open_form(bot, user_id="U0EDITOR")  # S0EDITORS: "*", from C0EDIT only
    options = bot.sender.block_suggestion(form, "sports", user_id="U0EDITOR").json()["options"]
    assert [o["value"] for o in options] == [SPORTS]
    nobody = bot.sender.block_suggestion(form, "", user_id="U0NOBODY").json()["options"]
    assert nobody == []
    # The submission checks the chosen channel: not C0EDIT, so refused, and nothing added.
    # Someone else submitting this user's form is refused.
    asset = free_assets(bot.simulator, SPORTS, 1)[0]
    answer = submit(bot, form, library=SPORTS, assets=asset, channel="C0EDIT")
    assert "no longer known" in answer["errors"]["library"]
    answer = submit(bot, form, "U0EDITOR", library=SPORTS, assets=asset, channel="C0X")
    assert "You may not add to *Sports Highlights*" in text_of_view(answer["view"])
    assert "submit" not in answer["view"]
    assert patches(bot.simulator) == []


def wait_state(bot: Bot, operation_id: str, state: str, timeout: float = 10) -> None:
    store = OperationStore(bot.env["DATABASE_URL"])
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            operation = store.get(operation_id)
            if operation is not None and operation.state == state:
                return
            time.sleep(0.05)
    finally:
        store.dispose()
    raise AssertionError(f"{operation_id} never reached {state}")


def test_a_stopping_instance_answers_the_modal_without_doing_anything(start_bot) -> None:
    bot: Bot = start_bot(UPLYNK_BATCH_SIZE="100", ADDTOLIB_GRACE_SECONDS="20", process=True)
    assets = [f"{n:032x}" for n in range(0xB000, 0xB000 + 600)]
    for n, asset_id in enumerate(assets):
        bot.simulator.catalogue.add_asset(f"Bulk {n}", asset_id)
    form = open_form(bot)
    preview = preview_of(bot, form, library=MARKETING, assets=assets[0], channel=SUMMARY_CHANNEL)
    late_form = open_form(bot)
    bot.simulator.faults.set_latency("add", 1.5)  # a long job keeps the process draining
    _, running = bot.preview(f"{MARKETING} {' '.join(assets[1:])}")
    bot.click("addtolib_confirm", running)
    bot.slack.wait_until(lambda: any(r.call == "add" for r in bot.simulator.requests), 20)
    bot.process.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)  # the signal is handled on the server's own thread

    restarting = "addtolib is restarting; nothing was done. Try again in a moment."
    answer = submit(bot, late_form, library=MARKETING, assets=assets[0], channel="C0X")
    assert answer == {"response_action": "errors", "errors": {"library": restarting}}
    answer = submit(bot, preview)
    assert answer["response_action"] == "update"
    assert restarting in text_of_view(answer["view"]) and "submit" not in answer["view"]
    assert bot.sender.block_suggestion(late_form, "").json() == {"options": []}
    bot.process.proc.wait(30)
    assert stored(bot, preview["private_metadata"]).state == "pending"  # never confirmed
    assert assets[0] not in {a for p in patches(bot.simulator) for a in p.body["asset_ids"]}


def test_the_preview_submitted_to_two_instances_adds_once(start_bot) -> None:
    first: Bot = start_bot()
    second: Bot = start_bot()
    assets = free_assets(first.simulator, MARKETING, 2)
    form = open_form(first)
    preview = preview_of(first, form, library=MARKETING, assets=" ".join(assets), channel="C0X")
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda bot: submit(bot, preview), [first, second] * 2))
    assert all(a == {"response_action": "clear"} for a in answers)
    first.summary(preview["private_metadata"])

    def refusals() -> list:
        ephemerals = first.slack.calls_of("chat.postEphemeral")
        return [c for c in ephemerals if "nothing more was done" in dump(c)]

    first.slack.wait_until(lambda: len(refusals()) == 3, timeout=20)
    assert [p.body for p in patches(first.simulator)] == [{"asset_ids": assets}]
