"""`python -m bot`: modes listed, start-up refusals that name the problem in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OURS = ("SLACK_", "UPLYNK_", "ADDTOLIB_", "DATABASE_URL")
CLEAN = {k: v for k, v in os.environ.items() if not k.startswith(OURS)}


def run(*args: str, env: dict[str, str] | None = None, cwd: Path = REPO):
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={**CLEAN, **(env or {})},
    )


def test_help_lists_every_mode() -> None:
    result = run("--help")
    assert result.returncode == 0
    for mode in ("console", "serve", "socket", "simulator", "history"):
        assert mode in result.stdout


def test_missing_variable_stops_serve_with_one_line(tmp_path: Path) -> None:
    result = run("serve", cwd=tmp_path)
    assert result.returncode == 2
    expected = "addtolib: missing required environment variable SLACK_BOT_TOKEN"
    assert result.stderr.strip() == expected


def test_socket_mode_needs_the_app_token(tmp_path: Path) -> None:
    env = {"SLACK_BOT_TOKEN": "xoxb-1", "UPLYNK_USER_ID": "u", "UPLYNK_API_KEY": "k"}
    result = run("socket", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "SLACK_APP_TOKEN" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_bad_number_is_named(tmp_path: Path) -> None:
    result = run("serve", env={"UPLYNK_BATCH_SIZE": "lots"}, cwd=tmp_path)
    assert result.returncode == 2
    assert "UPLYNK_BATCH_SIZE must be a whole number" in result.stderr


def test_malformed_policy_stops_start_up_naming_the_line(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('admins = ["U1"]\n[[allow]]\nlibraries = ["*"\nusers = ["U2"]\n')
    env = {
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": "s" * 32,
        "UPLYNK_USER_ID": "u",
        "UPLYNK_API_KEY": "k",
        "ADDTOLIB_POLICY": str(policy),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}",
    }
    result = run("serve", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "policy.toml" in result.stderr and "line" in result.stderr
