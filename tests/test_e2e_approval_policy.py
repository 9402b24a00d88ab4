"""End to end over signed HTTP: approvals against a policy that changes under them (SPEC 7).

The last approval re-checks the requester's [[allow]]; an admin's withdrawal tells the
requester; a request whose [[protect]] a reload removed can still be decided by an admin.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

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
from tests.test_e2e_approvals import (
    APPROVALS,
    LEAD,
    LEAD2,
    POLICY,
    ask,
    current,
    has_buttons,
    refusal,
    requests_in,
)

RELOAD_DEADLINE = 10  # seconds: the policy's promise (docs/SPEC.md §4)
WITHOUT_USER = POLICY.replace(f'users = ["{USER}", "{OTHER}"]', f'users = ["{OTHER}"]')
UNPROTECTED = POLICY.replace(
    f'[[protect]]\nlibraries = ["{AD_BREAKS}"]', f'[[protect]]\nlibraries = ["{MARKETING}"]'
)


@pytest.fixture
def policy_path(tmp_path: Path) -> Path:
    path = tmp_path / "protect.toml"
    path.write_text(POLICY)
    return path


@pytest.fixture
def start(start_bot: Callable[..., Bot], policy_path: Path) -> Callable[..., Bot]:
    def starter(**env: str) -> Bot:
        env.setdefault("ADDTOLIB_APPROVAL_CHANNEL", APPROVALS)
        return start_bot(ADDTOLIB_POLICY=str(policy_path), **env)

    return starter


def preview_of(bot: Bot, library: str, user: str = USER) -> str:
    assets = free_assets(bot.simulator, library, 1)
    call, _ = bot.preview(f"{library} {assets[0]}", user_id=user)
    return text_of(call)


def until(condition: Callable[[], bool], what: str) -> None:
    """Poll the running bot until `condition` holds, within the reload promise."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < RELOAD_DEADLINE, f"not within 10 s: {what}"
        time.sleep(0.3)


def test_approve_after_the_requester_lost_their_allow_runs_nothing_and_tells_both(
    start, policy_path: Path
) -> None:
    bot = start()
    operation_id, key, _ = ask(bot, AD_BREAKS, 2)
    [request] = bot.slack.wait_until(lambda: requests_in(bot, APPROVALS, operation_id))

    policy_path.write_text(WITHOUT_USER)
    until(lambda: "You may not add" in preview_of(bot, MARKETING), "U0USER is refused")

    bot.simulator.clear_requests()
    _, approver_key = bot.click("addtolib_approve", operation_id, user_id=LEAD)
    told_lead = bot.reply(approver_key, "may no longer add")
    assert told_lead.payload.get("response_type") == "ephemeral"
    assert f"<@{USER}> may no longer add to this library" in text_of(told_lead)
    assert "nothing was run" in text_of(told_lead)

    told_user = bot.reply(key, "may no longer add")  # on the requester's confirmation
    text = text_of(told_user)
    assert f"approved by <@{LEAD}>, but you may no longer add to that library" in text
    assert "not named in any [[allow]] entry" in text and "nothing was added" in text

    assert patches(bot.simulator) == []
    operation = stored(bot, operation_id)
    assert operation.state == "denied" and operation.added_ids == []
    assert "[[allow]]" in (operation.denial_reason or "")
    bot.slack.wait_until(lambda: "may no longer add" in str(current(bot, APPROVALS, request.ts)))
    assert not has_buttons(current(bot, APPROVALS, request.ts))
    # A second approver's click finds it closed; the thread tells the story.
    assert "may no longer add" in refusal(bot, "addtolib_approve", operation_id, ADMIN)
    bot.slack.wait_until(
        lambda: [
            c
            for c in bot.slack.calls_of("chat.postMessage")
            if c.channel == NOTIFY and "may no longer add" in dump(c)
        ]
    )
    assert patches(bot.simulator) == []


def test_the_recheck_is_against_the_policy_in_force_at_the_last_approval(
    start, policy_path: Path
) -> None:
    # Two approvals needed: the right is lost after the first, found gone at the second.
    bot = start()
    operation_id, key, _ = ask(bot, ARCHIVE, 1)
    _, first = bot.click("addtolib_approve", operation_id, user_id=LEAD)
    assert "waiting for 1 more" in text_of(bot.reply(first, "recorded"))
    policy_path.write_text(WITHOUT_USER)
    until(lambda: "You may not add" in preview_of(bot, MARKETING), "U0USER is refused")
    _, second = bot.click("addtolib_approve", operation_id, user_id=LEAD2)
    assert "may no longer add" in text_of(bot.reply(second, "may no longer add"))
    assert f"<@{LEAD}>, <@{LEAD2}>" in text_of(bot.reply(key, "may no longer add"))
    assert patches(bot.simulator) == [] and stored(bot, operation_id).state == "denied"


def test_an_admins_withdrawal_tells_the_requester(start) -> None:
    bot = start()
    operation_id, key, _ = ask(bot, AD_BREAKS, 1)
    [request] = bot.slack.wait_until(lambda: requests_in(bot, APPROVALS, operation_id))
    _, admin_key = bot.click("addtolib_cancel", operation_id, user_id=ADMIN)
    bot.reply(admin_key, "Cancelled")

    told = bot.reply(key, "withdrew your request")
    assert f"<@{ADMIN}> withdrew your request to add 1 asset" in text_of(told)
    assert "nothing was added" in text_of(told)
    operation = stored(bot, operation_id)
    assert operation.state == "cancelled" and operation.rejected_by == ADMIN
    bot.slack.wait_until(
        lambda: f"Withdrawn by <@{ADMIN}>" in str(current(bot, APPROVALS, request.ts))
    )
    assert f"<@{ADMIN}> withdrew this request" in refusal(
        bot, "addtolib_approve", operation_id, LEAD
    )
    _, history_key = bot.command("history", user_id=USER)
    assert f"withdrawn by <@{ADMIN}>" in text_of(bot.reply(history_key, "withdrawn by"))
    assert patches(bot.simulator) == []


def test_the_requesters_own_withdrawal_sends_them_no_notice(start) -> None:
    bot = start()
    operation_id, key, _ = ask(bot, AD_BREAKS, 1)
    [request] = bot.slack.wait_until(lambda: requests_in(bot, APPROVALS, operation_id))
    _, cancel_key = bot.click("addtolib_cancel", operation_id)
    bot.reply(cancel_key, "Cancelled")
    bot.slack.wait_until(
        lambda: f"Withdrawn by <@{USER}>" in str(current(bot, APPROVALS, request.ts))
    )
    assert not [c for c in bot.replies(key) if "withdrew" in dump(c) or "withdrawn" in dump(c)]
    assert not [
        c
        for c in bot.slack.calls_of("chat.postMessage")
        if c.channel == USER and "withdr" in dump(c)
    ]


def test_an_admin_decides_a_request_whose_protection_a_reload_removed(
    start, policy_path: Path
) -> None:
    bot = start()
    approved_id, approved_key, assets = ask(bot, AD_BREAKS, 1)
    denied_id, denied_key, _ = ask(bot, AD_BREAKS, 1)
    bot.slack.wait_until(lambda: requests_in(bot, APPROVALS, denied_id))

    policy_path.write_text(UNPROTECTED)
    until(lambda: "Request approval" not in preview_of(bot, AD_BREAKS), "Ad Breaks unprotected")

    bot.simulator.clear_requests()
    text = refusal(bot, "addtolib_approve", approved_id, LEAD)
    assert "no longer protected" in text and "Only an admin" in text
    assert "your own request" in refusal(bot, "addtolib_approve", approved_id, USER)
    assert bot.simulator.requests == []
    assert stored(bot, approved_id).state == "awaiting_approval"

    bot.click("addtolib_approve", approved_id, user_id=ADMIN)
    assert "Added 1 asset" in text_of(bot.reply(approved_key, "Added 1 asset"))
    assert [p.body for p in patches(bot.simulator)] == [{"asset_id": assets[0]}]
    assert stored(bot, approved_id).state == "done"

    bot.click("addtolib_deny", denied_id, user_id=ADMIN)
    assert f"<@{ADMIN}> denied your request" in text_of(bot.reply(denied_key, "denied your"))
    assert stored(bot, denied_id).state == "rejected"
    assert len(patches(bot.simulator)) == 1


def test_the_preview_of_a_protected_library_says_it_needs_approval(start) -> None:
    bot = start()
    assets = free_assets(bot.simulator, AD_BREAKS, 2)
    call, operation_id = bot.preview(f"{AD_BREAKS} {' '.join(assets)}")
    text = text_of(call)
    assert f"needs 1 approval by <@{LEAD}>, members of <!subteam^S0LEADS> or an admin" in text
    buttons = [e for b in call.payload["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [(e["text"]["text"], e["action_id"]) for e in buttons] == [
        ("Request approval", "addtolib_confirm"),
        ("Cancel", "addtolib_cancel"),
    ]
    assert button_value(call, "addtolib_confirm") == operation_id
    assert "Add 2 assets" not in text

    two = preview_of(bot, ARCHIVE)
    assert f"needs 2 approvals by <@{LEAD}>, <@{LEAD2}> or an admin" in two
    plain = preview_of(bot, MARKETING)
    assert "Add 1 asset" in plain and "approval" not in plain.lower()
