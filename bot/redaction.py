"""A logging filter that keeps secrets (tokens, signing secret, API key, sig) out of logs."""

from __future__ import annotations

import logging
import re

from bot.config import ENV_NAMES, ConfigError, Settings
from bot.jsonlog import JsonFormatter

PATTERNS = [
    re.compile(r"xox[abposr]-[A-Za-z0-9-]+"),
    re.compile(r"xapp-[A-Za-z0-9-]+"),
    # A Workflow Builder execution's bot_access_token (function_executed, docs/SPEC.md §13).
    re.compile(r"xwfp-[A-Za-z0-9-]+"),
    re.compile(r"(?<=[?&]sig=)[0-9a-fA-F]+"),
    re.compile(r"(?<=[?&]msg=)[A-Za-z0-9%+/=]+"),
    # A response_url is a bearer credential for 30 minutes; slack_sdk's webhook client logs
    # it whole at DEBUG. Keep the host, mask the path (Slack's hooks and the stand-in's).
    re.compile(r"(?<=://hooks\.slack\.com/)[^\s'\",)]+"),
    re.compile(r"(?<=/)(?:commands|actions|response)/[^\s'\",)]+"),
]
MASK = "***"


class RedactSecrets(logging.Filter):
    """Rewrites each record's message with the settings' secrets and token shapes masked."""

    def __init__(self, settings: Settings):
        super().__init__()
        secrets = [
            settings.slack_bot_token,
            settings.slack_signing_secret,
            settings.slack_app_token,
            settings.uplynk_api_key,
        ]
        self.secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        for pattern in PATTERNS:
            text = pattern.sub(MASK, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        cleaned = self.redact(message)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        record.msg, record.args = cleaned, None
        return True


def log_level(settings: Settings) -> int:
    """The numeric level LOG_LEVEL names (DEBUG, INFO, WARNING, ERROR, CRITICAL)."""
    name = (settings.log_level or "INFO").strip().upper()
    levels = {n: logging.getLevelName(n) for n in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")}
    if name not in levels:
        raise ConfigError(
            f"{ENV_NAMES['log_level']} must be one of {', '.join(levels)}, "
            f"got {settings.log_level!r}"
        )
    return levels[name]


def configure_logging(settings: Settings, level: int | None = None) -> None:
    """Log to stderr through the redacting filter (attached to every root handler).

    `level` defaults to LOG_LEVEL (INFO); even DEBUG output goes through the filter.
    LOG_FORMAT=json writes each line as a JSON object (bot.jsonlog).
    """
    if level is None:
        level = log_level(settings)
    json_lines = log_format(settings) == "json"
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    # Alembic announces each of its plugins at INFO on every start: keep its warnings only.
    logging.getLogger("alembic").setLevel(max(level, logging.WARNING))
    redactor = RedactSecrets(settings)
    for handler in logging.getLogger().handlers:
        handler.addFilter(redactor)
        if json_lines:
            handler.setFormatter(JsonFormatter())


def log_format(settings: Settings) -> str:
    """LOG_FORMAT: `text` (default) or `json` (one JSON object a line)."""
    name = (settings.log_format or "text").strip().lower()
    if name not in ("text", "json"):
        raise ConfigError(
            f"{ENV_NAMES['log_format']} must be text or json, got {settings.log_format!r}"
        )
    return name
