"""The console's `workflow`: the step runs; DM preview, click, outputs (SPEC 13)."""

from __future__ import annotations

from tests.test_console import MARKETING, NEW_A, NEW_B, button
from tests.test_console import console as console  # the fixture


def test_workflow_plays_the_step_preview_by_dm_click_and_outputs(console) -> None:
    console.step("")
    preview = console.step(f'workflow "Marketing Library" {NEW_A} {NEW_B}')
    assert "Workflow Builder ran the step Fx" in preview
    assert "── direct message to @U0DEMO ──" in preview
    assert f"Marketing Library ({MARKETING})" in preview
    assert "completed" not in preview  # nothing runs before the requester's click

    done = console.step(str(button(preview, "Add 2 assets")))
    assert "✅ Added 2 assets to Marketing Library." in done
    assert "completed; outputs: operation_id=" in done
    assert "added=2, already_present=0, not_found=0" in done

    refused = console.step(f"workflow {MARKETING} {NEW_A} as U0NOBODY")
    assert "── direct message to @U0NOBODY ──" in refused
    assert "You may not add assets" in refused
    assert "failed: You may not add assets: you (U0NOBODY)" in refused
    console.quit()
