"""`python -m bot check`: read-only deployment checks, one line each; exit 0 only if all pass."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import create_engine
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from bot.config import ENV_NAMES, REQUIRED, ConfigError, Settings, load_settings
from bot.core import schema
from bot.core.delivery.outbox import Outbox
from bot.core.policy import Policy, PolicyError
from bot.core.store import OperationStore, normalize_url
from bot.redaction import RedactSecrets, log_format, log_level
from bot.uplynk.client import UplynkClient
from bot.uplynk.errors import UplynkError, UplynkNotFound, UplynkUnauthorized


@dataclass(frozen=True)
class Result:
    name: str
    ok: bool
    text: str  # "ok", "ok (detail)", or what to fix

    def line(self) -> str:
        return f"{self.name:<17} {self.text if self.ok else 'FAIL: ' + self.text}"


def run_checks(settings: Settings) -> Iterator[Result]:
    """Every check, in order; none of them changes anything."""
    uplynk = _uplynk(settings)
    slack = WebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url, timeout=10)
    try:
        yield check_variables(settings)
        yield check_policy(settings, uplynk)
        yield check_slack(settings, slack)
        yield check_uplynk(settings, uplynk)
        database = check_database(settings)
        yield database
        yield check_outbox(settings, database.ok)
        yield check_channel(settings, slack, "notify_channel", "no notification threads")
        yield check_channel(
            settings, slack, "approval_channel", "approval requests go to approvers by DM"
        )
    finally:
        if uplynk is not None:
            uplynk.close()


def _uplynk(settings: Settings) -> UplynkClient | None:
    if not (settings.uplynk_user_id and settings.uplynk_api_key):
        return None
    # One retry at most: a check should answer in seconds, not back off for a minute.
    return UplynkClient(
        settings.uplynk_api_url,
        settings.uplynk_user_id,
        settings.uplynk_api_key,
        timeout=(3.05, 10.0),
        max_retries=1,
        backoff_max=1.0,
    )


def check_variables(settings: Settings) -> Result:
    missing = [ENV_NAMES[name] for name in REQUIRED["serve"] if not getattr(settings, name)]
    try:
        log_level(settings)
        log_format(settings)
    except ConfigError as exc:
        return Result("variables", False, str(exc))
    if missing:
        return Result("variables", False, "missing " + ", ".join(missing))
    return Result("variables", True, "ok")


def check_policy(settings: Settings, uplynk: UplynkClient | None) -> Result:
    path = settings.policy_path
    where = f"{ENV_NAMES['policy_path']}={path}"
    if not Path(path).is_file():
        return Result("policy", False, f"{where}: file not found (every change would be refused)")
    try:
        policy = Policy.load(path)
    except PolicyError as exc:
        return Result("policy", False, exc.message)
    # Every library id the file names, with where: a mistyped [[protect]] id protects nothing.
    wanted: dict[str, list[str]] = {}
    entries = [("allow", rule.index, rule.libraries) for rule in policy.rules]
    entries += [("protect", rule.index, rule.libraries) for rule in policy.protections]
    for table, index, libraries in entries:
        for library_id in sorted(libraries - {"*"}):
            wanted.setdefault(library_id.lower(), []).append(f"[[{table}]] entry {index}")
    if not wanted:
        return Result("policy", True, "ok")
    if uplynk is None:
        return Result("policy", False, f"{path}: cannot look its library ids up without Uplynk")
    unknown = []
    for library_id, places in wanted.items():
        try:
            uplynk.get_library(library_id)
        except UplynkNotFound:
            unknown.append(f"{library_id} ({', '.join(places)})")
        except UplynkError as exc:
            return Result(
                "policy", False, f"{path}: could not look up its libraries: {exc.user_message}"
            )
    if unknown:
        return Result("policy", False, f"{path}: Uplynk has no library " + ", ".join(unknown))
    return Result("policy", True, f"ok ({len(wanted)} libraries found in Uplynk)")


def check_slack(settings: Settings, slack: WebClient) -> Result:
    name = ENV_NAMES["slack_bot_token"]
    if not settings.slack_bot_token:
        return Result("slack", False, f"{name} is not set")
    try:
        answer = slack.auth_test()
    except SlackApiError as exc:
        error = exc.response.get("error")
        if error in ("invalid_auth", "not_authed", "account_inactive", "token_revoked"):
            return Result("slack", False, f"{name} was refused by Slack ({error})")
        return Result("slack", False, f"auth.test failed: {error}")
    except OSError as exc:
        return Result("slack", False, f"cannot reach Slack at {settings.slack_api_url}: {exc}")
    return Result("slack", True, f"ok (team {answer.get('team')}, bot user {answer.get('user')})")


def check_uplynk(settings: Settings, uplynk: UplynkClient | None) -> Result:
    if uplynk is None:
        names = (ENV_NAMES["uplynk_user_id"], ENV_NAMES["uplynk_api_key"])
        return Result("uplynk", False, f"{names[0]} and {names[1]} must both be set")
    try:
        uplynk.find_libraries("", page_size=1, max_pages=1)
    except UplynkUnauthorized:
        return Result(
            "uplynk",
            False,
            f"Uplynk refused the credentials in {ENV_NAMES['uplynk_user_id']} / "
            f"{ENV_NAMES['uplynk_api_key']} (401)",
        )
    except UplynkError as exc:
        return Result(
            "uplynk",
            False,
            f"{ENV_NAMES['uplynk_api_url']}={settings.uplynk_api_url}: {exc.user_message}",
        )
    return Result("uplynk", True, "ok (signed call accepted)")


def check_database(settings: Settings) -> Result:
    name = ENV_NAMES["database_url"]
    try:
        url = normalize_url(settings.database_url)
    except Exception as exc:
        return Result("database", False, f"{name} is not a database URL ({type(exc).__name__})")
    shown = url.render_as_string(hide_password=True)
    is_file = url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
    if is_file and url.database and not os.path.exists(url.database):
        # Connecting would create an empty file: a check changes nothing.
        return Result(
            "database", False, f"{name}={shown}: no such file (run `python -m bot migrate`)"
        )
    engine = create_engine(url, poolclass=NullPool, **_connect_args(url))
    try:
        current = schema.current_revision(engine)
    except Exception as exc:
        reason = str(getattr(exc, "orig", exc) or type(exc).__name__).strip().splitlines()[0]
        if url.password:
            reason = reason.replace(url.password, "***")
        return Result("database", False, f"cannot connect to {name}={shown}: {reason}")
    finally:
        engine.dispose()
    head = schema.head_revision()
    if current != head:
        found = f"revision {current}" if current else "no migrations applied"
        return Result(
            "database",
            False,
            f"{name}={shown}: schema at {found}, the code needs {head}: "
            "run `python -m bot migrate`",
        )
    return Result("database", True, f"ok (schema at revision {head})")


def check_outbox(settings: Settings, database_ok: bool) -> Result:
    """Slack messages waiting for more than a minute, and ones that could not be delivered."""
    if not database_ok:
        return Result("outbox", False, "not checked: the database check failed")
    store = OperationStore(settings.database_url)
    try:
        outbox = Outbox(store)
        problems, stats = outbox.problems(older_than=60), outbox.stats()
    except Exception as exc:
        return Result("outbox", False, f"cannot read the outbox: {type(exc).__name__}")
    finally:
        store.dispose()
    if problems:
        return Result("outbox", False, "; ".join(problems))
    return Result("outbox", True, f"ok ({stats.depth} waiting, none failed)")


def _connect_args(url: URL) -> dict:
    if url.get_backend_name() == "postgresql":
        return {"connect_args": {"connect_timeout": 5}}
    return {}


def check_channel(settings: Settings, slack: WebClient, field: str, unset: str) -> Result:
    name = ENV_NAMES[field]
    label = field.replace("_", " ")
    channel = getattr(settings, field)
    if not channel:
        return Result(label, True, f"ok (not set: {unset})")
    if not settings.slack_bot_token:
        return Result(label, False, f"cannot check {name} without SLACK_BOT_TOKEN")
    try:
        info = slack.conversations_info(channel=channel)["channel"]
    except SlackApiError as exc:
        error = exc.response.get("error")
        if error == "missing_scope":
            return Result(label, False, "add the channels:read and groups:read scopes to the app")
        if error == "channel_not_found":
            return Result(
                label,
                False,
                f"{name}={channel}: no such channel, or a private one the bot is not in "
                "(invite the bot)",
            )
        return Result(label, False, f"{name}={channel}: conversations.info failed: {error}")
    except OSError as exc:
        return Result(label, False, f"cannot reach Slack at {settings.slack_api_url}: {exc}")
    if info.get("is_archived"):
        return Result(label, False, f"{name}={channel} (#{info.get('name')}) is archived")
    if info.get("is_private") and not info.get("is_member"):
        return Result(label, False, f"{name}={channel}: invite the bot to #{info.get('name')}")
    return Result(label, True, f"ok (#{info.get('name')})")


def main(
    argv: list[str] | None = None,
    settings: Settings | None = None,
    out: Callable[[str], None] = print,
) -> int:
    """Print one line per check; 0 only when every check passed."""
    try:
        settings = settings or load_settings()
    except ConfigError as exc:
        out(Result("variables", False, str(exc)).line())
        return 1
    redact = RedactSecrets(settings).redact
    passed = True
    for result in run_checks(settings):
        out(redact(result.line()))
        passed = passed and result.ok
    return 0 if passed else 1
