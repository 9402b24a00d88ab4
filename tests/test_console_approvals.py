"""The console can do what approvers do in Slack: switch user, approve or deny a request."""

from __future__ import annotations

from pathlib import Path

from bot.simulator import DEMO_ASSET_IDS, DEMO_LIBRARY_IDS
from tests.test_console import ConsoleProcess, button

AD_BREAKS = DEMO_LIBRARY_IDS["Ad Breaks"]


def test_a_protected_library_waits_for_the_lead_who_approves_or_denies(tmp_path: Path) -> None:
    console = ConsoleProcess(tmp_path)
    try:
        first, second = DEMO_ASSET_IDS[0], DEMO_ASSET_IDS[1]
        preview = console.step(f'/addtolib "Ad Breaks" {first}')
        assert "needs 1 approval by @U0LEAD or an admin" in preview  # docs/SPEC.md §7
        asked = console.step(str(button(preview, "Request approval")))
        assert "── #approvals (everyone) ──" in asked and "Approval needed" in asked
        assert "Waiting for approval by @U0LEAD or an admin" in asked
        own = console.step(str(button(asked, "Approve")))
        assert "You cannot approve your own request" in own and "Added" not in own

        console.step("user U0LEAD")
        approved = console.step(str(button(asked, "Approve")))
        assert "Approved by @U0LEAD." in approved
        assert "Asked by @U0DEMO, approved by @U0LEAD" in approved
        assert "Added 1 asset to Ad Breaks" in approved

        console.step("user U0DEMO")
        preview = console.step(f'/addtolib "Ad Breaks" {second}')
        asked = console.step(str(button(preview, "Request approval")))
        console.step("user U0LEAD")
        denied = console.step(str(button(asked, "Deny")))
        assert "Denied by @U0LEAD; nothing was added." in denied
        assert "@U0LEAD denied your request to add 1 asset to Ad Breaks" in denied
        console.quit()
    finally:
        if console.proc.poll() is None:
            console.proc.kill()
