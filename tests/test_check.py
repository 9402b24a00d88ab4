"""`python -m bot check`: all ok on a good deployment; each misconfiguration named, exit 1."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.check import main as check_main
from bot.config import load_settings
from bot.core.delivery.outbox import Outbox, Owed
from bot.core.store import OperationStore
from bot.simulator import UplynkSimulator
from bot.slack_standin import SlackStandIn
from tests.bot_process import REPO_ROOT, free_port
from tests.fixtures_bot import MARKETING, NOTIFY, POLICY

TOKEN = "xoxb-check-good-token"
APPROVALS = "C0APPROVE"


@pytest.fixture
def slack_with_token() -> Iterator[SlackStandIn]:
    """A stand-in that, like Slack, accepts only the real bot token."""
    standin = SlackStandIn(token=TOKEN).start()
    standin.add_channel(NOTIFY, "addtolib-log")
    standin.add_channel(APPROVALS, "approvals", is_private=True, is_member=True)
    try:
        yield standin
    finally:
        standin.stop()


@pytest.fixture
def env(
    simulator: UplynkSimulator, slack_with_token: SlackStandIn, database_url: str, tmp_path: Path
) -> dict[str, str]:
    store = OperationStore(database_url)
    store.create_schema()  # a deployed database: migrated
    store.dispose()
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    return {
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_SIGNING_SECRET": "a-signing-secret",
        "SLACK_API_URL": slack_with_token.url,
        "UPLYNK_API_URL": simulator.url,
        "UPLYNK_USER_ID": simulator.user_id,
        "UPLYNK_API_KEY": simulator.api_key,
        "DATABASE_URL": database_url,
        "ADDTOLIB_POLICY": str(policy),
        "ADDTOLIB_NOTIFY_CHANNEL": NOTIFY,
        "ADDTOLIB_APPROVAL_CHANNEL": APPROVALS,
    }


def run(env: dict[str, str]) -> tuple[int, list[str]]:
    lines: list[str] = []
    code = check_main(settings=load_settings(env=env), out=lines.append)
    return code, lines


def line(lines: list[str], name: str) -> str:
    found = [text for text in lines if text.startswith(name + " ")]
    assert len(found) == 1, lines
    return found[0]


def test_all_ok_on_a_good_configuration(env: dict[str, str]) -> None:
    code, lines = run(env)
    assert code == 0, lines
    names = ["variables", "policy", "slack", "uplynk", "database", "outbox", "notify channel"]
    assert [text.split("  ")[0] for text in lines] == [*names, "approval channel"]
    assert all(" ok" in text and "FAIL" not in text for text in lines), lines
    assert "#addtolib-log" in line(lines, "notify channel")
    assert "schema at revision" in line(lines, "database")


def test_the_command_line_prints_one_line_per_check(env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "check"],
        env={"PATH": "/usr/bin:/bin", **env},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(result.stdout.strip().splitlines()) == 8


def test_a_wrong_uplynk_key_is_refused_credentials_and_never_printed(
    env: dict[str, str],
) -> None:
    wrong = "wrong-key-0123456789abcdef"
    code, lines = run({**env, "UPLYNK_API_KEY": wrong})
    assert code == 1
    assert "Uplynk refused the credentials in UPLYNK_USER_ID / UPLYNK_API_KEY (401)" in line(
        lines, "uplynk"
    )
    assert wrong not in "\n".join(lines)


def test_an_unknown_library_id_in_the_policy_is_named(env: dict[str, str], tmp_path: Path) -> None:
    unknown = "0123456789abcdef0123456789abcdef"
    policy = tmp_path / "other.toml"
    policy.write_text(f'[[allow]]\nlibraries = ["{unknown}"]\nusers = ["U0USER"]\n')
    code, lines = run({**env, "ADDTOLIB_POLICY": str(policy)})
    assert code == 1
    text = line(lines, "policy")
    assert "FAIL" in text and str(policy) in text and unknown in text
    assert "[[allow]] entry 1" in text
    assert "FAIL" not in line(lines, "uplynk")


def test_a_mistyped_protect_id_is_named(env: dict[str, str], tmp_path: Path) -> None:
    # A [[protect]] whose id names no library protects nothing: check says so (docs/SPEC.md §16).
    mistyped = MARKETING[:-1] + ("0" if MARKETING[-1] != "0" else "1")
    policy = tmp_path / "protect.toml"
    policy.write_text(
        POLICY + f'\n[[protect]]\nlibraries = ["{MARKETING}"]\napprovers = ["U0LEAD"]\n'
        f'\n[[protect]]\nlibraries = ["{mistyped}"]\napprovers = ["U0LEAD"]\n'
    )
    code, lines = run({**env, "ADDTOLIB_POLICY": str(policy)})
    assert code == 1
    text = line(lines, "policy")
    assert "FAIL" in text and f"Uplynk has no library {mistyped} ([[protect]] entry 2)" in text
    assert MARKETING not in text  # the well-typed one (also in [[allow]]) was found
    policy.write_text(
        POLICY + f'\n[[protect]]\nlibraries = ["{MARKETING}"]\napprovers = ["U0LEAD"]\n'
    )
    code, lines = run({**env, "ADDTOLIB_POLICY": str(policy)})
    assert code == 0 and " ok (" in line(lines, "policy"), lines


def test_a_broken_policy_names_the_file_and_line(env: dict[str, str], tmp_path: Path) -> None:
    policy = tmp_path / "broken.toml"
    policy.write_text('admins = ["U0ADMIN"]\n\n[[allow]]\nlibraries = "not a list"\nusers = []\n')
    code, lines = run({**env, "ADDTOLIB_POLICY": str(policy)})
    assert code == 1
    assert f"{policy}" in line(lines, "policy") and "line 4" in line(lines, "policy")


def test_an_unreachable_database_is_named(env: dict[str, str]) -> None:
    url = f"postgresql+psycopg://addtolib:s3cretpw@127.0.0.1:{free_port()}/addtolib"
    code, lines = run({**env, "DATABASE_URL": url})
    assert code == 1
    text = line(lines, "database")
    assert "cannot connect to DATABASE_URL=" in text and "s3cretpw" not in "\n".join(lines)


def test_a_database_behind_the_code_says_run_migrate(env: dict[str, str], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'missing.db'}"
    code, lines = run({**env, "DATABASE_URL": url})
    assert code == 1
    assert "python -m bot migrate" in line(lines, "database")
    assert not (tmp_path / "missing.db").exists()  # the check created nothing


def test_a_bad_slack_token_is_named(env: dict[str, str]) -> None:
    code, lines = run({**env, "SLACK_BOT_TOKEN": "xoxb-revoked-token"})
    assert code == 1
    assert "SLACK_BOT_TOKEN was refused by Slack (invalid_auth)" in line(lines, "slack")
    assert "xoxb-revoked-token" not in "\n".join(lines)


def test_channels_unknown_to_slack_are_named(env: dict[str, str]) -> None:
    code, lines = run({**env, "ADDTOLIB_NOTIFY_CHANNEL": "C0GONE", "ADDTOLIB_APPROVAL_CHANNEL": ""})
    assert code == 1
    assert "ADDTOLIB_NOTIFY_CHANNEL=C0GONE: no such channel" in line(lines, "notify channel")
    assert "ok (not set" in line(lines, "approval channel")


def test_a_missing_variable_is_named(env: dict[str, str]) -> None:
    code, lines = run({k: v for k, v in env.items() if k != "SLACK_SIGNING_SECRET"})
    assert code == 1
    assert line(lines, "variables").endswith("FAIL: missing SLACK_SIGNING_SECRET")


def test_undeliverable_and_long_waiting_slack_messages_are_named(env: dict[str, str]) -> None:
    store = OperationStore(env["DATABASE_URL"])
    try:
        box = Outbox(store)
        box.add([Owed("post", "event", channel="C0GONE", args={"text": "x"})])
        entry = box.claim(box.candidates()[0].id)
        box.failed(entry, "channel_not_found")
        code, lines = run(env)
        assert code == 1
        assert "1 Slack message(s) could not be delivered" in line(lines, "outbox")
        assert "channel_not_found" in line(lines, "outbox")
    finally:
        store.dispose()
