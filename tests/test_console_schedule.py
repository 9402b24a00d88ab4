"""`python -m bot console`: a scheduled add (SPEC 15), watched run with the `wait` clock word."""

from __future__ import annotations

from tests.test_console import MARKETING, NEW_A, NEW_B, button, console  # noqa: F401


def test_schedule_then_wait_runs_it_and_history_shows_its_time(console) -> None:  # noqa: F811
    console.step("")
    preview = console.step(f'/addtolib "Marketing Library" {NEW_A} {NEW_B} at 09:30')
    assert "When: " in preview and "your time: " in preview
    scheduled = console.step(str(button(preview, "Schedule: add 2 assets")))
    assert "Scheduled for" in scheduled and "will be added to Marketing Library" in scheduled
    assert "scheduled 2 assets for Marketing Library" in scheduled  # the thread opened
    assert button(scheduled, "Cancel")
    waiting = console.step("/addtolib history")
    assert "· scheduled · runs " in waiting
    ran = console.step("wait")
    assert "the clock moved on" in ran
    summary = ran.split("── #console (everyone) ──", 1)[1]
    assert "# Marketing Library" in summary and NEW_A in summary and NEW_B in summary
    assert "Ran as scheduled (for 20" in ran
    history = console.step("/addtolib history")
    assert "· done · scheduled for " in history and "(started " in history
    assert "Nothing is scheduled" in console.step("wait")
    assert "the clock moved on 5400 s" in console.step("wait 90m")
    console.quit()
