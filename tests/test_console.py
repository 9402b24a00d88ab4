"""`python -m bot console` end to end: a scripted session in a subprocess, plain output."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bot.console.render import block_lines, mrkdwn, to_plain
from bot.core.parsing import ParseError, parse_command
from bot.simulator import DEMO_ASSET_IDS, DEMO_LIBRARY_IDS

REPO_ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 60
MARKETING = DEMO_LIBRARY_IDS["Marketing Library"]
# Two demo assets not yet in Marketing Library, and a third for the refused user.
NEW_A, NEW_B, OTHER = DEMO_ASSET_IDS[0], DEMO_ASSET_IDS[1], DEMO_ASSET_IDS[5]


def console_env() -> dict[str, str]:
    """This environment without anything that would point the console elsewhere."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("UPLYNK_", "SLACK_", "ADDTOLIB_")) and k != "DATABASE_URL"
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


class ConsoleProcess:
    """Drives the console line by line: each step ends at the echo of a marker comment."""

    def __init__(self, cwd: Path, *args: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "console", *args],
            cwd=cwd,
            env=console_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )
        self.deadline = time.monotonic() + TIMEOUT
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.transcript: list[str] = []
        self.steps = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def step(self, line: str) -> str:
        """Send `line`; return everything printed until the console is ready for the next."""
        self.steps += 1
        marker = f"# end of step {self.steps}"
        self.proc.stdin.write(f"{line}\n{marker}\n")
        self.proc.stdin.flush()
        return self._until(f"> {marker}")

    def _until(self, wanted: str) -> str:
        out = []
        while True:
            remaining = self.deadline - time.monotonic()
            try:
                line = self.lines.get(timeout=max(remaining, 0.01))
            except queue.Empty:
                self.proc.kill()
                pytest.fail("console timed out; output so far:\n" + self.text(out))
            if line is None:
                pytest.fail(f"console exited ({self.stderr()}); output:\n" + self.text(out))
            if line == wanted:
                return "\n".join(out)
            out.append(line)
            self.transcript.append(line)

    def text(self, out: list[str]) -> str:
        return "\n".join(self.transcript[: -len(out) or None] + out)

    def stderr(self) -> str:
        self.proc.wait(timeout=5)
        return self.proc.stderr.read()

    def quit(self) -> str:
        rest, _ = self.proc.communicate("quit\n", timeout=max(self.deadline - time.monotonic(), 1))
        assert self.proc.returncode == 0, self.proc.stderr
        return rest


@pytest.fixture
def console(tmp_path: Path):
    process = ConsoleProcess(tmp_path)
    yield process
    if process.proc.poll() is None:
        process.proc.kill()
        process.proc.wait(timeout=5)


def button(output: str, label: str) -> int:
    """The number the console gave the button labelled `label` (the last one shown)."""
    numbers = re.findall(rf"\[(\d+)\] {re.escape(label)}(?:\s|$)", output)
    assert numbers, f"no [N] {label} button in:\n{output}"
    return int(numbers[-1])


def rendered(markdown: str) -> str:
    return to_plain(mrkdwn(markdown))


def test_add_confirm_undo_history_refusal_and_parse_error(console, tmp_path):
    banner = console.step("")
    assert "embedded simulator" in banner and "U0DEMO" in banner
    assert "\x1b[" not in banner

    preview = console.step(f'/addtolib "Marketing Library" {NEW_A} {NEW_B}')
    assert "only you can see this" in preview
    assert f"Marketing Library ({MARKETING})" in preview
    confirm = button(preview, "Add 2 assets")
    assert button(preview, "Cancel") == confirm + 1

    done = console.step(str(confirm))
    assert "Added 2 assets to Marketing Library" in done
    summary = done.split("── #console (everyone) ──", 1)[1]
    assert "# Marketing Library" in summary
    assert f"id: {MARKETING}" in summary
    assert NEW_A in summary and NEW_B in summary
    assert "↳ thread in #notify" in done  # the notification thread
    undo = button(summary, "Undo")

    undone = console.step(str(undo))
    assert "replaces" in undone
    assert "Undone by @U0DEMO" in undone
    assert re.search(rf"removed .*{NEW_A}", undone)

    history = console.step("/addtolib history")
    assert "Your recent operations" in history
    assert "Marketing Library" in history and "undone" in history

    text = f'"Marketing Library" {NEW_A} not-an-id'
    with pytest.raises(ParseError) as parse_error:
        parse_command(text)
    bad = console.step(f"/addtolib {text}")
    assert rendered(f":warning: {parse_error.value.message}") in bad
    assert "Checking" not in bad

    assert "play another Slack user" in console.step("help")
    assert "a button number" in console.step("hello")

    console.step("user U0NOBODY")
    refused = console.step(f'/addtolib "Marketing Library" {OTHER}')
    assert "You may not add" in refused
    assert "[[allow]]" in refused  # names the rule that was missing
    assert "Add 1 asset" not in refused
    assert "denied" in console.step("/addtolib history")

    console.quit()
    assert (tmp_path / "addtolib-console.db").exists()


def test_scripted_stdin_gives_plain_output(tmp_path):
    script = f'/addtolib "Marketing Library" {NEW_A}\n/addtolib help\nquit\n'
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "console", "--user", "U0ADMIN"],
        input=script,
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=tmp_path,
        env=console_env(),
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "\x1b[" not in out
    assert f'> /addtolib "Marketing Library" {NEW_A}' in out
    assert "you are U0ADMIN" in out
    assert "[1] Add 1 asset  [2] Cancel" in out
    assert "You may add to every library." in out


def test_mrkdwn_reads_like_slack_shows_it():
    text = (
        "*Added (2):* `abc` by <@U0DEMO> in <#C0NOTIFY> <!date^1700000000^{date}|2023-11-14> "
        "<https://example.com/x|the thread> <https://example.com/y> :warning: &lt;b&gt; _it_"
    )
    shown = to_plain(mrkdwn(text, channels={"C0NOTIFY": "notify"}))
    assert shown == (
        "Added (2): abc by @U0DEMO in #notify 2023-11-14 the thread https://example.com/y ⚠ <b> it"
    )
    assert to_plain(mrkdwn("Usage:\n```a *b*\nc```")) == "Usage:\n│ a *b*\n│ c"


def test_blocks_number_buttons_in_order():
    message = {
        "text": "fallback",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "Marketing Library"}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": "*id*\n`f612`"}]},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "Asked by <@U1>"}]},
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": "*Ad Breaks*"},
                "accessory": {"type": "button", "text": {"type": "plain_text", "text": "Pick"}},
            },
            {
                "type": "actions",
                "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": "Add 2 assets"}},
                    {"type": "button", "text": {"type": "plain_text", "text": "Cancel"}},
                ],
            },
        ],
    }
    assert to_plain(block_lines(message, [7, 8, 9])) == (
        "# Marketing Library\nid: f612\nAsked by @U1\nAd Breaks   [7] Pick\n"
        "[8] Add 2 assets  [9] Cancel"
    )
