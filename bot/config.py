"""Settings read from the environment (and a .env file), with one-line errors for missing ones."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from dotenv import find_dotenv, load_dotenv

DEMO_UPLYNK_USER_ID = "5a1c0ffee5a1c0ffee5a1c0ffee5a1c0"
DEMO_UPLYNK_API_KEY = "demo-api-key-not-a-secret"
#: Seconds Slack waits for an answer to an interaction such as the library menu's options.
SLACK_ANSWER_WITHIN = 3.0


class ConfigError(Exception):
    """A configuration problem, phrased as one line for the operator."""


@dataclass(frozen=True)
class Settings:
    """Every knob of the bot; see .env.example for what each one means."""

    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    slack_api_url: str = "https://slack.com/api/"
    uplynk_user_id: str | None = None
    uplynk_api_key: str | None = None
    uplynk_api_url: str = "https://services.uplynk.com"
    uplynk_batch_size: int = 100
    database_url: str = "sqlite:///addtolib.db"
    policy_path: str = "policy.toml"
    notify_channel: str | None = None
    max_assets: int = 5000
    confirm_ttl: int = 900
    undo_window: int = 86400
    usergroup_ttl: int = 300
    workers: int = 32
    lease_seconds: float = 60
    delivery_timeout: int = 3600
    port: int = 3000
    log_level: str = "INFO"
    approval_channel: str | None = None
    approval_ttl: int = 86400
    uplynk_concurrency: int = 1
    log_format: str = "text"
    grace_seconds: int = 30
    library_fresh: float = 5.0
    library_wait: float = 2.0
    request_timeout: float = 10.0
    web_concurrency: int = 1
    web_threads: int = 16
    post_rate: float = 1.0
    delivery_backoff: float = 1.0
    uplynk_timeout: float = 30.0
    uplynk_backoff: float = 0.5
    home_refresh_seconds: float = 10.0
    schedule_grace: int = 3600
    schedule_horizon: int = 90 * 86400
    schedule_poll: float = 1.0
    zone_ttl: int = 3600
    outbox_lease: float = 120.0
    retention_days: float = 30.0
    prune_every: float = 3600.0


# Settings field -> environment variable.
ENV_NAMES = {
    "slack_bot_token": "SLACK_BOT_TOKEN",
    "slack_signing_secret": "SLACK_SIGNING_SECRET",
    "slack_app_token": "SLACK_APP_TOKEN",
    "slack_api_url": "SLACK_API_URL",
    "uplynk_user_id": "UPLYNK_USER_ID",
    "uplynk_api_key": "UPLYNK_API_KEY",
    "uplynk_api_url": "UPLYNK_API_URL",
    "uplynk_batch_size": "UPLYNK_BATCH_SIZE",
    "database_url": "DATABASE_URL",
    "policy_path": "ADDTOLIB_POLICY",
    "notify_channel": "ADDTOLIB_NOTIFY_CHANNEL",
    "max_assets": "ADDTOLIB_MAX_ASSETS",
    "confirm_ttl": "ADDTOLIB_CONFIRM_TTL",
    "undo_window": "ADDTOLIB_UNDO_WINDOW",
    "usergroup_ttl": "ADDTOLIB_USERGROUP_TTL",
    "workers": "ADDTOLIB_WORKERS",
    "lease_seconds": "ADDTOLIB_LEASE_SECONDS",
    "delivery_timeout": "ADDTOLIB_DELIVERY_TIMEOUT",
    "port": "PORT",
    "log_level": "LOG_LEVEL",
    "approval_channel": "ADDTOLIB_APPROVAL_CHANNEL",
    "approval_ttl": "ADDTOLIB_APPROVAL_TTL",
    "uplynk_concurrency": "UPLYNK_CONCURRENCY",
    "log_format": "LOG_FORMAT",
    "grace_seconds": "ADDTOLIB_GRACE_SECONDS",
    "library_fresh": "ADDTOLIB_LIBRARY_FRESH",
    "library_wait": "ADDTOLIB_LIBRARY_WAIT",
    "request_timeout": "ADDTOLIB_REQUEST_TIMEOUT",
    "web_concurrency": "WEB_CONCURRENCY",
    "web_threads": "WEB_THREADS",
    "post_rate": "ADDTOLIB_POST_RATE",
    "delivery_backoff": "ADDTOLIB_DELIVERY_BACKOFF",
    "uplynk_timeout": "UPLYNK_TIMEOUT",
    "uplynk_backoff": "UPLYNK_BACKOFF",
    "home_refresh_seconds": "ADDTOLIB_HOME_REFRESH_SECONDS",
    "schedule_grace": "ADDTOLIB_SCHEDULE_GRACE",
    "schedule_horizon": "ADDTOLIB_SCHEDULE_HORIZON",
    "schedule_poll": "ADDTOLIB_SCHEDULE_POLL",
    "zone_ttl": "ADDTOLIB_TZ_TTL",
    "outbox_lease": "ADDTOLIB_OUTBOX_LEASE",
    "retention_days": "ADDTOLIB_RETENTION_DAYS",
    "prune_every": "ADDTOLIB_PRUNE_EVERY",
}

# Seconds where 0 means "always" (look Uplynk up on every keystroke, do not wait for it).
MAY_BE_ZERO = frozenset({"library_fresh", "library_wait"})

# What each run mode cannot start without.
REQUIRED = {
    "serve": ("slack_bot_token", "slack_signing_secret", "uplynk_user_id", "uplynk_api_key"),
    "socket": ("slack_bot_token", "slack_app_token", "uplynk_user_id", "uplynk_api_key"),
}


def load_env_file() -> None:
    """Load `.env` from the working directory (or a parent); set variables win over it."""
    # usecwd: without it, python-dotenv searches upward from this module's own directory.
    load_dotenv(find_dotenv(usecwd=True), override=False)


def load_settings(
    env: Mapping[str, str] | None = None,
    require: Iterable[str] = (),
    dotenv: bool = True,
) -> Settings:
    """Build Settings from `env` (default: os.environ after loading .env); raise ConfigError."""
    if env is None:
        if dotenv:
            load_env_file()
        env = os.environ
    values: dict[str, Any] = {}
    for field in fields(Settings):
        name = ENV_NAMES[field.name]
        raw = env.get(name, "").strip()
        if not raw:
            continue
        if field.name in MAY_BE_ZERO:
            values[field.name] = _seconds(name, raw)
        elif field.type in ("int", "float"):
            kind, word = (int, "a whole number") if field.type == "int" else (float, "a number")
            try:
                number = kind(raw)
            except ValueError:
                raise ConfigError(f"{name} must be {word}, got {raw!r}") from None
            if not 0 < number < float("inf"):
                raise ConfigError(f"{name} must be greater than zero, got {number}")
            values[field.name] = number
        else:
            values[field.name] = raw
    settings = Settings(**values)
    if settings.library_wait >= SLACK_ANSWER_WITHIN:
        # The options answer must reach Slack within 3 s, policy check and network included.
        raise ConfigError(
            f"{ENV_NAMES['library_wait']} must be under {SLACK_ANSWER_WITHIN:g} seconds "
            f"(Slack's wait for the library menu), got {settings.library_wait:g}"
        )
    for field_name in ("outbox_lease", "prune_every"):
        if getattr(settings, field_name) <= 0:
            raise ConfigError(f"{ENV_NAMES[field_name]} must be more than zero seconds")
    for field_name in require:
        if not getattr(settings, field_name):
            raise ConfigError(f"missing required environment variable {ENV_NAMES[field_name]}")
    return settings


def _seconds(name: str, raw: str) -> float:
    try:
        number = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not 0 <= number < float("inf"):
        raise ConfigError(f"{name} must be zero or more seconds, got {raw}")
    return number
