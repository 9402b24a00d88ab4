"""End to end over signed HTTP: the App Home (SPEC 14), its buttons, its refresh, event retries."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.core.operation import State
from bot.core.store import OperationStore
from bot.slack_standin.events import app_home_opened, new_event_id, send_event
from bot.slack_standin.views import validate_home
from tests.fixtures_bot import (
    AD_BREAKS,
    ADMIN,
    ARCHIVE,
    MARKETING,
    USER,
    Bot,
    button_value,
    free_assets,
    patches,
    stored,
    texts,
)
from tests.fixtures_slack import SIGNING_SECRET

LEAD = "U0LEAD"
APPROVALS = "C0APPROVALS"
PROMO = "fedcba9876543210fedcba9876543210"

POLICY = f"""
admins = ["{ADMIN}"]

[[allow]]
libraries = ["{MARKETING}", "{ARCHIVE}", "{AD_BREAKS}", "{PROMO}"]
users = ["{USER}"]

[[protect]]
libraries = ["{AD_BREAKS}"]
approvers = ["{LEAD}"]
"""


@pytest.fixture
def start(start_bot: Callable[..., Bot], tmp_path: Path) -> Callable[..., Bot]:
    path = tmp_path / "home.toml"
    path.write_text(POLICY)

    def starter(**env: str) -> Bot:
        env.setdefault("ADDTOLIB_APPROVAL_CHANNEL", APPROVALS)
        env.setdefault("ADDTOLIB_HOME_REFRESH_SECONDS", "0.5")
        return start_bot(ADDTOLIB_POLICY=str(path), **env)

    return starter


def publishes(bot: Bot, user: str) -> list[Any]:
    return [c for c in bot.slack.calls_of("views.publish") if c.payload.get("user_id") == user]


def open_home(bot: Bot, user: str, **options: Any) -> Any:
    """Slack's app_home_opened for `user`, signed, to the bot's Events API URL."""
    response = send_event(
        app_home_opened(user), url=bot.sender.url, signing_secret=SIGNING_SECRET, **options
    )
    assert response.status_code == 200, response.text
    return response


def home(bot: Bot, user: str, after: int = 0, contains: str = "", timeout: float = 15) -> dict:
    """The first Home published for `user` after the first `after` ones that holds `contains`."""
    call = bot.slack.wait_until(
        lambda: next(
            (
                c
                for c in publishes(bot, user)[after:]
                if c.ok and contains in "\n".join(texts(c.payload["view"]))
            ),
            None,
        ),
        timeout=timeout,
    )
    view = call.payload["view"]
    validate_home(view)  # what Slack accepts: type home, at most 100 blocks, valid blocks
    return {**bot.slack.views.home(user), "blocks": view["blocks"]}


def view_text(view: dict) -> str:
    return "\n".join(texts(view["blocks"]))


def buttons(view: dict) -> list[tuple[str, str]]:
    found = []
    for block in view["blocks"]:
        elements = block.get("elements") if block["type"] == "actions" else [block.get("accessory")]
        found += [(e["action_id"], e["value"]) for e in elements or [] if e and e.get("value")]
    return found


def click_on_home(bot: Bot, view: dict, action_id: str, value: str, user: str, **kw: Any):
    """A button on the Home, as Slack sends it: container `view`, the view, no response_url."""
    payload = bot.sender.block_actions_payload(action_id, value, user_id=user, **kw)
    del payload["response_url"]
    payload.pop("channel", None)
    payload["container"] = {"type": "view", "view_id": view["id"]}
    payload["view"] = view
    response = bot.sender.interaction(payload)
    assert response.status_code == 200, response.text
    return response


def run_one(bot: Bot, library: str, count: int, user: str = USER) -> tuple[str, list[str]]:
    assets = free_assets(bot.simulator, library, count)
    _, operation_id = bot.preview(f"{library} {' '.join(assets)}", user_id=user)
    assert operation_id
    bot.click("addtolib_confirm", operation_id, user_id=user)
    return operation_id, assets


def wait_state(bot: Bot, operation_id: str, state: str, timeout: float = 20) -> None:
    bot.slack.wait_until(lambda: stored(bot, operation_id).state == state, timeout=timeout)


def test_opening_the_home_publishes_it_within_3_s_with_the_users_operations(start) -> None:
    bot = start()
    operation_id, _ = run_one(bot, MARKETING, 2)
    wait_state(bot, operation_id, "done")
    bot.slack.wait_until(lambda: stored(bot, operation_id).notify_ts)  # its thread is posted

    started = time.monotonic()
    open_home(bot, USER)
    view = home(bot, USER, timeout=3)
    print(f"Home published {time.monotonic() - started:.2f} s after app_home_opened")
    assert time.monotonic() - started < 3
    text = view_text(view)
    assert "Marketing Library" in text and "`done`" in text and "2 added" in text
    assert ("addtolib_undo", operation_id) in buttons(view)
    assert ("addtolib_home_add", "home") in buttons(view)
    assert "Libraries you may add to" in text and "Ad Breaks" in text
    assert "|thread>" in text  # a link to the notification thread
    assert "Health" not in text  # admins only


def test_undo_from_home_removes_exactly_what_was_added(start) -> None:
    bot = start()
    before = set(bot.simulator.catalogue.library_assets(MARKETING))
    assert before, "the demo Marketing Library holds assets already"
    present = sorted(before)[0]  # asked for again: already there, so never removed by undo
    assets = free_assets(bot.simulator, MARKETING, 3)
    _, operation_id = bot.preview(f"{MARKETING} {' '.join(assets)} {present}")
    bot.click("addtolib_confirm", operation_id)
    wait_state(bot, operation_id, "done")
    assert stored(bot, operation_id).present_ids == [present]
    assert bot.simulator.catalogue.library_assets(MARKETING) == before | set(assets)

    open_home(bot, USER)
    view = home(bot, USER, contains="`done`")
    count = len(publishes(bot, USER))
    click_on_home(bot, view, "addtolib_undo", operation_id, USER)
    wait_state(bot, operation_id, "undone")
    assert bot.simulator.catalogue.library_assets(MARKETING) == before
    assert sorted(stored(bot, operation_id).removed_ids) == sorted(assets)
    # The Home shows it at once, without another open; no button to undo twice.
    after = home(bot, USER, after=count, contains="`undone`")
    assert ("addtolib_undo", operation_id) not in buttons(after)


def test_an_approvers_approve_from_home_runs_exactly_one_patch(start) -> None:
    bot = start()
    assets = free_assets(bot.simulator, AD_BREAKS, 2)
    _, operation_id = bot.preview(f"{AD_BREAKS} {' '.join(assets)}")
    bot.click("addtolib_confirm", operation_id)
    wait_state(bot, operation_id, "awaiting_approval")
    request = bot.slack.wait_until(
        lambda: next(
            (
                c
                for c in bot.slack.calls_of("chat.postMessage", ok=True)
                if button_value(c, "addtolib_approve") == operation_id
            ),
            None,
        )
    )

    open_home(bot, LEAD)
    view = home(bot, LEAD, contains="Waiting for your approval")
    assert ("addtolib_approve", operation_id) in buttons(view)
    assert ("addtolib_deny", operation_id) in buttons(view)
    # The requester sees theirs, with Cancel; nothing has been added.
    open_home(bot, USER)
    assert ("addtolib_cancel", operation_id) in buttons(
        home(bot, USER, contains="waiting for approval")
    )
    assert patches(bot.simulator) == []

    # 8 concurrent Approve clicks, half on the Home and half on the approval message.
    message = {"ts": request.ts, "text": request.payload.get("text"), "blocks": request.blocks}

    def approve(i: int) -> int:
        if i % 2:
            return click_on_home(bot, view, "addtolib_approve", operation_id, LEAD).status_code
        response, _ = bot.click(
            "addtolib_approve", operation_id, user_id=LEAD, channel_id=APPROVALS, message=message
        )
        return response.status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        assert list(pool.map(approve, range(8))) == [200] * 8
    wait_state(bot, operation_id, "done")
    assert [p.body for p in patches(bot.simulator)] == [{"asset_ids": assets}]
    # The approver's Home no longer asks them.
    count = len(publishes(bot, LEAD))
    open_home(bot, LEAD)
    assert "Waiting for your approval" not in view_text(home(bot, LEAD, after=count))
    assert len(patches(bot.simulator)) == 1


def test_add_assets_on_the_home_opens_the_modal(start) -> None:
    bot = start()
    open_home(bot, USER)
    view = home(bot, USER)
    trigger = bot.slack.new_trigger()
    response = bot.sender.block_actions_payload("addtolib_home_add", "home", user_id=USER)
    del response["response_url"]
    response["trigger_id"] = trigger
    response["container"] = {"type": "view", "view_id": view["id"]}
    response["view"] = view
    assert bot.sender.interaction(response).status_code == 200
    opened = bot.slack.wait_until(lambda: bot.slack.views.opened_by(trigger))
    assert opened["callback_id"] == "addtolib_modal"
    assert {b.get("block_id") for b in opened["blocks"]} >= {"library", "assets", "channel"}


def test_150_operations_give_a_valid_home(start, migrated_database_url: str) -> None:
    bot = start()
    store = OperationStore(migrated_database_url)
    try:
        for i in range(150):
            store.create(
                user_id=USER,
                channel_id="C0GENERAL",
                library_id=AD_BREAKS,
                library_name=f"Ad Breaks {i}",
                requested_ids=[f"{i:032x}"],
                new_ids=[f"{i:032x}"],
                state=State.AWAITING_APPROVAL.value,
                confirmed_at=datetime.now(UTC),
            )
            store.create(
                user_id=USER,
                channel_id="C0GENERAL",
                library_id=MARKETING,
                library_name="Marketing Library",
                requested_ids=[f"{i:032x}"],
                added_ids=[f"{i:032x}"],
                state=State.DONE.value,
            )
    finally:
        store.dispose()
    open_home(bot, ADMIN)
    view = home(bot, ADMIN, contains="Waiting for your approval")
    assert len(view["blocks"]) <= 100
    text = view_text(view)
    assert "… and 140 more" in text and "Recent operations (everyone)" in text
    assert "Health (admins)" in text and "Outbox" in text
    open_home(bot, USER)
    mine = home(bot, USER, contains="Your requests waiting for approval")
    assert len(mine["blocks"]) <= 100 and "… and 140 more" in view_text(mine)


def test_a_library_named_promo_channel_pings_nobody(start, migrated_database_url: str) -> None:
    bot = start()
    bot.simulator.catalogue.add_library("Promo <!channel>", PROMO)
    store = OperationStore(migrated_database_url)
    try:
        store.create(
            user_id=USER,
            channel_id="C0GENERAL",
            library_id=PROMO,
            library_name="Promo <!channel>",
            requested_ids=["a" * 32],
            added_ids=["a" * 32],
            state=State.DONE.value,
        )
    finally:
        store.dispose()
    open_home(bot, USER)
    view = home(bot, USER, contains="Promo")
    parsed = "\n".join(texts(view["blocks"], parsed_only=True))
    assert "<!channel>" not in parsed and "<!" not in parsed.replace("<!date^", "")
    assert "Promo &lt;!channel&gt;" in parsed


def test_after_an_operation_finishes_the_home_is_published_again(start) -> None:
    bot = start()
    open_home(bot, USER)
    home(bot, USER, contains="Nothing yet")
    count = len(publishes(bot, USER))
    operation_id, _ = run_one(bot, MARKETING, 2)
    wait_state(bot, operation_id, "done")
    view = home(bot, USER, after=count, contains="`done`")
    assert ("addtolib_undo", operation_id) in buttons(view)


def test_a_retried_event_whose_first_delivery_never_arrived_is_handled(start) -> None:
    bot = start()
    open_home(bot, USER, retry_num=1, retry_reason="http_timeout")
    assert "Your recent operations" in view_text(home(bot, USER))


def test_the_same_event_id_delivered_twice_is_handled_once(start) -> None:
    bot = start()
    event_id = new_event_id()
    open_home(bot, USER, event_id=event_id)
    open_home(bot, USER, event_id=event_id, retry_num=1)
    home(bot, USER)
    # A later event (another id) is handled; by then the duplicate would have been too.
    open_home(bot, ADMIN)
    home(bot, ADMIN)
    open_home(bot, USER, event_id=event_id, retry_num=2, retry_reason="http_error")
    open_home(bot, ADMIN)
    home(bot, ADMIN, after=1)
    assert len(publishes(bot, USER)) == 1
