"""`python -m bot console`: the `shortcut` word plays the modal as a form, end to end."""

from __future__ import annotations

from tests.test_console import MARKETING, NEW_A, NEW_B, console  # noqa: F401 - fixture

SPORTS_ID = "2ab444ebade338545af84bf12b5f8107"


def test_shortcut_form_preview_confirm_and_message_shortcut_cancel(console) -> None:  # noqa: F811
    console.step("")
    out = console.step(f"shortcut\nMarket\n1\n{NEW_A} zz12\n\n{NEW_A} {NEW_B}\ny")
    assert "[1] Marketing Library" in out and "[2] Marketing Library Archive" in out
    assert "Sports Highlights" not in out.split("Pick a number", 1)[0]
    assert "⚠ assets: This is not an asset id: `zz12`" in out
    preview = out.split("── modal: Add assets ──")[-1]
    assert f"Marketing Library ({MARKETING})" in preview
    assert f"Spring Launch Promo 30s ({NEW_A})" in preview
    assert "[y] Add 2 assets  [n] Cancel: y" in out
    assert "Added 2 assets to Marketing Library" in out
    assert "── #console (everyone) ──" in out and "# Marketing Library" in out

    message = f"CMS export: <https://cms.uplynk.com/#/assets/{NEW_A}|Teaser>, {NEW_B} and {NEW_A}."
    out = console.step(f"shortcut message {message}\nsports\n1\n\n\nn")
    assert "Found 2 asset ids in the message (1 duplicate dropped)" in out
    assert f"Sports Highlights ({SPORTS_ID})" in out
    assert "(closed the modal: the request is cancelled)" in out
    history = console.step("/addtolib history")
    assert "Sports Highlights · 2 requested, 0 added · cancelled" in history
    console.quit()
