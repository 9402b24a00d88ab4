"""`at <time>` / `in <duration>` (docs/SPEC.md §15): parsed as typed, resolved in a time zone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.core.text import escape_mrkdwn

__all__ = [
    "KEYWORDS",
    "When",
    "WhenError",
    "check_window",
    "local_text",
    "parse_when",
    "resolve",
    "zone",
]

#: The words that start a schedule clause after the assets.
KEYWORDS = ("at", "in")

_DATE = r"(?P<date>\d{4}-\d{2}-\d{2})"
_TIME = r"(?P<time>\d{1,2}:\d{2}(?::\d{2})?)"
_ZONE = r"(?P<zone>UTC|Z|GMT|[+-]\d{2}:?\d{2})"
_AT = re.compile(rf"^(?:{_DATE}(?:\s+|T))?{_TIME}(?:\s*{_ZONE})?$", re.IGNORECASE)
# Seconds (`s`) are not in docs/SPEC.md §15; they are accepted for tests and demos.
_IN = re.compile(r"^(?P<count>\d{1,6})\s*(?P<unit>s|m|h|d)$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

AT_HINT = (
    "`at YYYY-MM-DD HH:MM` or `at HH:MM` (your Slack time zone; add `UTC` or an offset such as "
    "`+01:00` for another), or `in 90m` / `in 2h` / `in 3d`"
)


class WhenError(ValueError):
    """A schedule clause that cannot be read, or a time refused; `.message` is for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class When:
    """A schedule clause as typed: a wall-clock time (maybe a date, maybe an explicit zone), or
    a duration from now. `text` is the clause as the user wrote it (for messages)."""

    text: str
    day: date | None = None
    clock: time | None = None
    offset: timedelta | None = None  # `UTC` / `+01:00`: not the requester's zone
    after: timedelta | None = None  # `in 90m`


def parse_when(keyword: str, text: str) -> When:
    """Read the words after `at` or `in`; raises WhenError naming the accepted forms."""
    clause = " ".join(text.split())
    shown = "`" + escape_mrkdwn(f"{keyword} {clause}"[:60]).replace("`", "'") + "`"
    if keyword.lower() == "in":
        match = _IN.match(clause)
        if not match:
            raise WhenError(f"{shown} is not a time I can read. Use {AT_HINT}.")
        seconds = int(match["count"]) * _UNITS[match["unit"].lower()]
        if seconds <= 0:
            raise WhenError(f"{shown} is now, not later: give a duration, e.g. `in 90m`.")
        return When(text=f"in {clause}", after=timedelta(seconds=seconds))
    match = _AT.match(clause)
    if not match:
        raise WhenError(f"{shown} is not a time I can read. Use {AT_HINT}.")
    try:
        day = date.fromisoformat(match["date"]) if match["date"] else None
        parts = [int(p) for p in match["time"].split(":")] + [0]
        clock = time(parts[0], parts[1], parts[2])
    except ValueError:
        raise WhenError(f"{shown} is not a real date or time. Use {AT_HINT}.") from None
    return When(text=f"at {clause}", day=day, clock=clock, offset=_offset(match["zone"], shown))


def _offset(text: str | None, shown: str) -> timedelta | None:
    if text is None:
        return None
    if text.upper() in ("UTC", "Z", "GMT"):
        return timedelta(0)
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:])
    if hours > 14 or minutes > 59:
        raise WhenError(f"{shown}: `{text}` is not a UTC offset (at most ±14:00).")
    sign = -1 if text[0] == "-" else 1
    return sign * timedelta(hours=hours, minutes=minutes)


def zone(name: str | None) -> tzinfo:
    """A time zone by its IANA name (Slack's `tz`); UTC for none or an unknown name."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def resolve(when: When, now: datetime, zone_name: str | None) -> datetime:
    """The UTC instant `when` names, typed at `now` by someone in `zone_name`.

    `HH:MM` alone is the next such time (today if still ahead, else tomorrow).
    """
    if when.after is not None:
        return now.astimezone(UTC) + when.after
    assert when.clock is not None
    place: tzinfo = timezone(when.offset) if when.offset is not None else zone(zone_name)
    local_now = now.astimezone(place)
    day = when.day or local_now.date()
    moment = datetime.combine(day, when.clock, tzinfo=place)
    if when.day is None and moment <= local_now:
        moment = datetime.combine(day + timedelta(days=1), when.clock, tzinfo=place)
    # Round-trip through UTC: a wall-clock time in a DST gap becomes a real instant.
    return moment.astimezone(UTC)


def check_window(run_at: datetime, now: datetime, horizon_seconds: int) -> str | None:
    """Why `run_at` cannot be scheduled (in the past, or beyond the horizon), or None."""
    if run_at <= now:
        return (
            f"That time is in the past ({_ago(now - run_at)} ago); give a time that is still "
            "ahead. Nothing was scheduled."
        )
    if run_at - now > timedelta(seconds=horizon_seconds):
        return (
            f"That time is too far ahead: at most {_span(horizon_seconds)} from now "
            "(ADDTOLIB_SCHEDULE_HORIZON). Nothing was scheduled."
        )
    return None


def local_text(moment: datetime, zone_name: str | None) -> str:
    """`2026-12-24 09:00 Europe/Paris`: the time as the requester reads it."""
    local = moment.astimezone(zone(zone_name))
    shown = local.strftime("%Y-%m-%d %H:%M:%S" if local.second else "%Y-%m-%d %H:%M")
    return f"{shown} {zone_name or 'UTC'}"


def _ago(delta: timedelta) -> str:
    return _span(max(1, int(delta.total_seconds())))


def _span(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if (seconds >= size and seconds % size == 0) or seconds >= size * 2:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{seconds} second{'' if seconds == 1 else 's'}"
