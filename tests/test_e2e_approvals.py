"""End to end over signed HTTP: approvals for [[protect]]ed libraries (SPEC 7)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.slack_standin import SlackCall
from tests.fixtures_bot import (
    AD_BREAKS,
    ADMIN,
    ARCHIVE,
    MARKETING,
    NOTIFY,
    OTHER,
    USER,
    Bot,
    button_value,
    dump,
    free_assets,
    patches,
    stored,
    text_of,
)

LEAD = "U0LEAD"
LEAD2 = "U0LEADTWO"
GROUP_LEAD = "U0GROUPLEAD"
LEADS = "S0LEADS"
APPROVALS = "C0APPROVALS"
SOURCE = "C0GENERAL"

POLICY = f"""
admins = ["{ADMIN}"]

[[allow]]
libraries = ["{MARKETING}", "{ARCHIVE}", "{AD_BREAKS}"]
users = ["{USER}", "{OTHER}"]

[[protect]]
libraries = ["{AD_BREAKS}"]
approvers = ["{LEAD}"]
approver_usergroups = ["{LEADS}"]

[[protect]]
libraries = ["{ARCHIVE}"]
approvers = ["{LEAD}", "{LEAD2}"]
approvals = 2
"""


@pytest.fixture
def start(start_bot: Callable[..., Bot], tmp_path: Path) -> Callable[..., Bot]:
    """start(**env) -> a bot whose policy protects Ad Breaks (1 approval) and the Archive (2)."""
    path = tmp_path / "protect.toml"
    path.write_text(POLICY)

    def starter(**env: str) -> Bot:
        env.setdefault("ADDTOLIB_APPROVAL_CHANNEL", APPROVALS)
        return start_bot(ADDTOLIB_POLICY=str(path), **env)

    return starter


def requests_in(bot: Bot, channel: str, operation_id: str) -> list[SlackCall]:
    """Approval requests posted to `channel` for this operation."""
    return [
        c
        for c in bot.slack.calls_of("chat.postMessage", ok=True)
        if c.channel == channel and button_value(c, "addtolib_approve") == operation_id
    ]


def ask(bot: Bot, library: str, count: int, user: str = USER) -> tuple[str, str, list[str]]:
    """Preview and confirm; returns (operation id, the confirm click's key, assets)."""
    assets = free_assets(bot.simulator, library, count)
    _, operation_id = bot.preview(f"{library} {' '.join(assets)}", user_id=user)
    assert operation_id
    _, key = bot.click("addtolib_confirm", operation_id, user_id=user)
    bot.reply(key, "Waiting for approval")
    return operation_id, key, assets


def summary(bot: Bot, operation_id: str, timeout: float = 20) -> SlackCall:
    """The Library summary in the requester's channel (not the approval request)."""
    return bot.slack.wait_for(
        lambda c: (
            c.method == "chat.postMessage" and c.channel == SOURCE and operation_id in dump(c)
        ),
        timeout=timeout,
    )


def current(bot: Bot, channel: str, ts: str) -> dict:
    message = bot.slack.message(channel, ts)
    assert message is not None
    return message


def has_buttons(message: dict) -> bool:
    return any(b.get("type") == "actions" for b in message.get("blocks") or [])


def refusal(bot: Bot, action: str, operation_id: str, user: str) -> str:
    _, key = bot.click(action, operation_id, user_id=user)
    answer = bot.reply(key, ":warning:")
    assert answer.payload.get("response_type") == "ephemeral"
    assert not answer.payload.get("replace_original")
    return text_of(answer)


def test_protected_confirm_waits_refuses_others_and_an_approver_runs_it_once(start) -> None:
    bot = start()
    operation_id, key, assets = ask(bot, AD_BREAKS, 2)
    waiting = text_of(bot.reply(key, "Waiting for approval"))
    assert f"<@{LEAD}>" in waiting and f"<!subteam^{LEADS}>" in waiting and "an admin" in waiting
    assert button_value(bot.reply(key, "Waiting for approval"), "addtolib_cancel") == operation_id
    assert patches(bot.simulator) == []
    assert stored(bot, operation_id).state == "awaiting_approval"

    [request] = bot.slack.wait_until(lambda: requests_in(bot, APPROVALS, operation_id))
    body = text_of(request)
    assert "Ad Breaks" in body and AD_BREAKS in body and "*2 assets*" in body
    assert f"<@{USER}>" in body and f"<#{SOURCE}>" in body
    for asset in assets:
        assert bot.simulator.catalogue.assets[asset].desc in body and asset in body
    elements = [e for b in request.blocks if b["type"] == "actions" for e in b["elements"]]
    assert [(e["action_id"], e.get("style"), e["value"]) for e in elements] == [
        ("addtolib_approve", "primary", operation_id),
        ("addtolib_deny", "danger", operation_id),
    ]

    # The requester, an admin who is not a party, a stranger: no Uplynk call for any refusal.
    bot.simulator.clear_requests()
    assert "cannot approve your own request" in refusal(bot, "addtolib_approve", operation_id, USER)
    assert f"Only <@{LEAD}>" in refusal(bot, "addtolib_approve", operation_id, OTHER)
    assert f"Only <@{LEAD}>" in refusal(bot, "addtolib_deny", operation_id, OTHER)
    assert bot.simulator.requests == []

    _, _approver_key = bot.click("addtolib_approve", operation_id, user_id=LEAD)
    posted = text_of(summary(bot, operation_id))
    assert f"Asked by <@{USER}>, approved by <@{LEAD}>" in posted
    assert [p.body for p in patches(bot.simulator)] == [{"asset_ids": assets}]
    assert set(assets) <= bot.simulator.catalogue.library_assets(AD_BREAKS)
    assert "Added 2 assets" in text_of(bot.reply(key, "Added 2 assets"))  # requester's message
    operation = stored(bot, operation_id)
    assert operation.state == "done" and sorted(operation.added_ids) == sorted(assets)

    decided = current(bot, APPROVALS, request.ts)
    assert not has_buttons(decided)
    assert f"Approved by <@{LEAD}>" in str(decided["blocks"])
    assert bot.slack.calls_of("chat.update")

    # A second decision is refused to the clicker alone, with no Uplynk call.
    bot.simulator.clear_requests()
    assert "already approved" in refusal(bot, "addtolib_approve", operation_id, LEAD)
    assert "already approved" in refusal(bot, "addtolib_deny", operation_id, ADMIN)
    assert bot.simulator.requests == []

    # The notification thread tells the story; history shows who approved.
    thread = bot.slack.wait_until(
        lambda: [
            c
            for c in bot.slack.calls_of("chat.postMessage")
            if c.channel == NOTIFY and "Approved by" in dump(c)
        ]
    )
    assert thread[0].payload.get("thread_ts")
    _response, history_key = bot.command("history", user_id=USER)
    assert f"approved by <@{LEAD}>" in text_of(bot.reply(history_key, "approved by"))


def test_an_admin_requester_cannot_approve_their_own_and_dms_go_to_each_approver(start) -> None:
    bot = start(ADDTOLIB_APPROVAL_CHANNEL="")
    operation_id, _, _ = ask(bot, ARCHIVE, 1, user=ADMIN)
    # Delivered from the outbox, after the requester's answer: wait for both DMs.
    bot.slack.wait_until(
        lambda: requests_in(bot, LEAD, operation_id) and requests_in(bot, LEAD2, operation_id)
    )
    dms = {LEAD: requests_in(bot, LEAD, operation_id), LEAD2: requests_in(bot, LEAD2, operation_id)}
    assert all(len(calls) == 1 for calls in dms.values()), dms
    assert requests_in(bot, APPROVALS, operation_id) == []
    bot.simulator.clear_requests()
    assert "your own request" in refusal(bot, "addtolib_approve", operation_id, ADMIN)
    assert bot.simulator.requests == [] and stored(bot, operation_id).state == "awaiting_approval"


def test_deny_adds_nothing_and_tells_the_requester(start) -> None:
    bot = start()
    operation_id, key, _ = ask(bot, AD_BREAKS, 1)
    [request] = bot.slack.wait_until(lambda: requests_in(bot, APPROVALS, operation_id))
    bot.click("addtolib_deny", operation_id, user_id=LEAD)
    told = bot.reply(key, "denied your request")
    assert f"<@{LEAD}> denied your request" in text_of(told)
    assert told.payload["replace_original"] is True
    operation = stored(bot, operation_id)
    assert operation.state == "rejected" and operation.rejected_by == LEAD
    bot.slack.wait_until(lambda: "Denied by" in str(current(bot, APPROVALS, request.ts)))
    assert not has_buttons(current(bot, APPROVALS, request.ts))
    assert f"denied by <@{LEAD}>" in refusal(bot, "addtolib_approve", operation_id, ADMIN)
    assert patches(bot.simulator) == []


def test_a_member_of_an_approver_usergroup_may_approve(start) -> None:
    bot = start()
    bot.slack.set_usergroup(LEADS, [GROUP_LEAD])
    operation_id, _, assets = ask(bot, AD_BREAKS, 1)
    bot.click("addtolib_approve", operation_id, user_id=GROUP_LEAD)
    assert f"approved by <@{GROUP_LEAD}>" in text_of(summary(bot, operation_id))
    assert [p.body for p in patches(bot.simulator)] == [{"asset_id": assets[0]}]


def test_two_approvals_need_two_distinct_approvers(start) -> None:
    bot = start()
    operation_id, _, assets = ask(bot, ARCHIVE, 2)
    [request] = bot.slack.wait_until(lambda: requests_in(bot, APPROVALS, operation_id))

    _, first = bot.click("addtolib_approve", operation_id, user_id=LEAD)
    assert "waiting for 1 more" in text_of(bot.reply(first, "recorded"))
    shown = bot.slack.wait_until(
        lambda: (
            "Approved so far" in str(current(bot, APPROVALS, request.ts))
            and current(bot, APPROVALS, request.ts)
        )
    )
    assert f"Approved so far by <@{LEAD}> (1 of 2)" in str(shown["blocks"])
    assert has_buttons(shown)

    assert "already approved" in refusal(bot, "addtolib_approve", operation_id, LEAD)
    assert patches(bot.simulator) == [] and stored(bot, operation_id).state == "awaiting_approval"

    bot.click("addtolib_approve", operation_id, user_id=LEAD2)
    posted = text_of(summary(bot, operation_id))
    assert f"approved by <@{LEAD}>, <@{LEAD2}>" in posted
    assert [p.body for p in patches(bot.simulator)] == [{"asset_ids": assets}]
    assert not has_buttons(current(bot, APPROVALS, request.ts))


def test_a_late_approve_after_the_ttl_runs_nothing_and_says_so(start) -> None:
    bot = start(ADDTOLIB_APPROVAL_TTL="1")
    operation_id, key, _ = ask(bot, AD_BREAKS, 1)
    [request] = bot.slack.wait_until(lambda: requests_in(bot, APPROVALS, operation_id))
    time.sleep(1.5)  # past the 1 s TTL; the sweep (every 15 s) has not run yet
    text = refusal(bot, "addtolib_approve", operation_id, LEAD)
    assert "This approval request expired (requests last 1 s); nothing was added" in text
    assert stored(bot, operation_id).state == "expired"
    assert "expired unapproved" in text_of(bot.reply(key, "expired unapproved"))
    assert "Expired" in str(current(bot, APPROVALS, request.ts))
    assert not has_buttons(current(bot, APPROVALS, request.ts))
    assert "expired" in refusal(bot, "addtolib_approve", operation_id, LEAD)
    assert patches(bot.simulator) == []


def test_the_lease_sweep_expires_stale_requests_and_tells_the_requester(start) -> None:
    # A 1 s lease sweeps every 0.25 s; no click is involved.
    bot = start(ADDTOLIB_APPROVAL_TTL="1", ADDTOLIB_LEASE_SECONDS="1")
    operation_id, key, _ = ask(bot, AD_BREAKS, 1)
    [request] = bot.slack.wait_until(lambda: requests_in(bot, APPROVALS, operation_id))
    assert "expired unapproved" in text_of(bot.reply(key, "expired unapproved", timeout=20))
    assert stored(bot, operation_id).state == "expired"
    bot.slack.wait_until(lambda: "Expired" in str(current(bot, APPROVALS, request.ts)))
    assert patches(bot.simulator) == []


def test_cancel_withdraws_the_request(start) -> None:
    bot = start()
    operation_id, _key, _ = ask(bot, AD_BREAKS, 1)
    [request] = bot.slack.wait_until(lambda: requests_in(bot, APPROVALS, operation_id))
    _, cancel_key = bot.click("addtolib_cancel", operation_id)
    bot.reply(cancel_key, "Cancelled")
    bot.slack.wait_until(lambda: "Withdrawn" in str(current(bot, APPROVALS, request.ts)))
    assert "withdrew this request" in refusal(bot, "addtolib_approve", operation_id, LEAD)
    assert stored(bot, operation_id).state == "cancelled" and patches(bot.simulator) == []


def test_an_unprotected_library_still_runs_at_once(start) -> None:
    bot = start()
    assets = free_assets(bot.simulator, MARKETING, 1)
    _, operation_id = bot.preview(f"{MARKETING} {assets[0]}")
    bot.click("addtolib_confirm", operation_id)
    summary(bot, operation_id)
    assert len(patches(bot.simulator)) == 1
    assert [c for c in bot.slack.calls_of("chat.postMessage") if c.channel == APPROVALS] == []
    assert stored(bot, operation_id).state == "done"


def test_retry_of_an_approved_operation_needs_no_new_approval(start) -> None:
    bot = start()
    bot.simulator.faults.fail("add", 400, times=1)
    operation_id, _, assets = ask(bot, AD_BREAKS, 1)
    # Delivered from the outbox and rendered as stored then: wait for it while it has buttons.
    bot.slack.wait_until(lambda: requests_in(bot, APPROVALS, operation_id))
    bot.click("addtolib_approve", operation_id, user_id=LEAD)
    failed = summary(bot, operation_id)
    assert button_value(failed, "addtolib_retry") == operation_id
    assert stored(bot, operation_id).state == "failed"

    _, key = bot.click("addtolib_retry", operation_id)  # the requester, no approver involved
    assert f"approved by <@{LEAD}>" in text_of(bot.reply(key, "Added (1)"))
    assert stored(bot, operation_id).state == "done"
    assert assets[0] in bot.simulator.catalogue.library_assets(AD_BREAKS)
    assert len(requests_in(bot, APPROVALS, operation_id)) == 1  # no second request
