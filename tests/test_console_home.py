"""The console's `home`: the current user's App Home, rendered, and its buttons work (SPEC 14)."""

from __future__ import annotations

from tests.test_console import MARKETING, NEW_A, NEW_B, button
from tests.test_console import console as console  # the fixture


def test_home_shows_the_users_operations_and_its_undo_and_add_buttons_work(console) -> None:
    console.step("")
    empty = console.step("home")
    assert "── your App Home ──" in empty
    assert "Nothing yet" in empty and f"Marketing Library ({MARKETING})" in empty

    preview = console.step(f'/addtolib "Marketing Library" {NEW_A} {NEW_B}')
    console.step(str(button(preview, "Add 2 assets")))

    shown = console.step("home")
    assert "your App Home · published again" in shown
    assert "Marketing Library · 2 requested, 2 added · done" in shown
    undone = console.step(str(button(shown, "Undo")))
    assert "undid this: removed" in undone  # the notification thread
    assert "2 removed · undone" in undone  # the Home, published again after the click
    assert "] Undo" not in undone.split("your App Home", 1)[1]

    # Add assets opens the modal (the shortcut's), played as a form: pick, type, cancel.
    modal = console.step(f"{button(undone, 'Add assets')}\nMarket\n1\n{NEW_A}\n\nn")
    assert "── modal: Add assets ──" in modal and "[1] Marketing Library" in modal
    assert "(closed the modal: the request is cancelled)" in modal
    console.quit()
