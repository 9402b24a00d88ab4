"""`at <time>` / `in <duration>` (SPEC 15): the grammar with ids and quoted names, and resolving."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.parsing import AddCommand, ParseError, parse_command
from bot.core.schedule.when import When, check_window, parse_when, resolve
from bot.core.schedule.zones import UserZones

HEX = "0123456789abcdef"
hex_ids = st.text(HEX, min_size=8, max_size=32)
library_ids = st.text(HEX + "ABCDEF", min_size=32, max_size=32)
separators = st.sampled_from([" ", ", ", ";", "\n", " ,\n", "\t"])
# Names with the schedule's words in them: `at` must never be read out of a quoted name.
name_words = st.sampled_from(
    ["Launch", "at", "in", "09:00", "2026-12-24", "UTC", "+01:00", "90m", "Ad", "Breaks", "é"]
)
quoted_names = st.lists(name_words, min_size=1, max_size=6).map(" ".join)
# One word, not hex, not quoted, not a link: the schedule words themselves included.
bare_names = st.sampled_from(["at", "in", "AT", "Marketing", "launch@9", "in-2h", "09:00"])


@st.composite
def whens(draw) -> tuple[str, When]:
    """A schedule clause as typed, and what it must parse to."""
    kind = draw(st.sampled_from(["date", "time", "in"]))
    if kind == "in":
        count = draw(st.integers(1, 999))
        unit = draw(st.sampled_from(["s", "m", "h", "d", "M", "H"]))
        seconds = count * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit.lower()]
        text = f"in {count}{unit}"
        return text, When(text=text, after=timedelta(seconds=seconds))
    clock = draw(st.times().map(lambda t: t.replace(microsecond=0)))
    with_seconds = draw(st.booleans())
    if not with_seconds:
        clock = clock.replace(second=0)
    shown = clock.strftime("%H:%M:%S" if with_seconds else "%H:%M")
    zone, offset = draw(
        st.sampled_from(
            [
                ("", None),
                (" UTC", timedelta(0)),
                (" +01:00", timedelta(hours=1)),
                (" -05:30", -timedelta(hours=5, minutes=30)),
                (" +0200", timedelta(hours=2)),
            ]
        )
    )
    day = draw(st.dates(date(2000, 1, 1), date(2099, 12, 31))) if kind == "date" else None
    clause = f"{day.isoformat()} {shown}{zone}" if day else f"{shown}{zone}"
    return f"at {clause}", When(text=f"at {clause}", day=day, clock=clock, offset=offset)


@settings(max_examples=400, deadline=None, database=None)
@given(
    library=st.one_of(
        library_ids.map(lambda i: (i, i.lower(), None)),
        quoted_names.map(lambda n: (f'"{n}"', None, n)),
        bare_names.map(lambda n: (n, None, n)),
    ),
    assets=st.lists(hex_ids, min_size=1, max_size=6, unique_by=str.lower),
    seps=st.lists(separators, min_size=7, max_size=7),
    when=st.one_of(st.none(), whens()),
)
def test_the_schedule_clause_is_never_part_of_the_library_or_an_id(
    library, assets, seps, when
) -> None:
    typed, library_id, library_name = library
    text = typed + seps[0] + "".join(a + seps[i + 1] for i, a in enumerate(assets))
    if when is not None:
        text += when[0]
    command = parse_command(text)
    assert isinstance(command, AddCommand)
    assert command.library.id == library_id
    assert command.library.name == library_name
    assert list(command.asset_ids) == [a.lower() for a in assets]
    assert command.when == (when[1] if when else None)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("lib 7a08bca2 at", "needs a time"),
        ("lib 7a08bca2 at tomorrow", "not a time I can read"),
        ("lib 7a08bca2 at 25:00", "not a real date or time"),
        ("lib 7a08bca2 at 2026-02-30 10:00", "not a real date or time"),
        ("lib 7a08bca2 in 0m", "is now"),
        ("lib 7a08bca2 in 2 weeks", "not a time I can read"),
        ("lib 7a08bca2 at 10:00 +15:00", "not a UTC offset"),
        ("lib at 10:00", "No asset ids"),
    ],
)
def test_unreadable_clauses_are_refused_by_name(text: str, says: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_command(text)
    assert says in caught.value.message


NOW = datetime(2026, 3, 28, 22, 30, tzinfo=UTC)


def test_hh_mm_is_the_next_such_time_in_the_zone() -> None:
    # 22:30 UTC is 23:30 in Paris (winter time): 23:45 is today, 09:00 tomorrow.
    assert resolve(parse_when("at", "23:45"), NOW, "Europe/Paris") == datetime(
        2026, 3, 28, 22, 45, tzinfo=UTC
    )
    # Tomorrow (29 March) Paris is on summer time (+02:00).
    assert resolve(parse_when("at", "09:00"), NOW, "Europe/Paris") == datetime(
        2026, 3, 29, 7, 0, tzinfo=UTC
    )
    assert resolve(parse_when("at", "09:00 UTC"), NOW, "Europe/Paris") == datetime(
        2026, 3, 29, 9, 0, tzinfo=UTC
    )
    assert resolve(parse_when("at", "2026-12-24 09:00 +01:00"), NOW, "Asia/Tokyo") == datetime(
        2026, 12, 24, 8, 0, tzinfo=UTC
    )
    assert resolve(parse_when("in", "90m"), NOW, "Asia/Tokyo") == NOW + timedelta(minutes=90)
    # An unknown or missing zone reads as UTC.
    assert resolve(parse_when("at", "23:00"), NOW, "Mars/Olympus") == datetime(
        2026, 3, 28, 23, 0, tzinfo=UTC
    )
    assert resolve(When(text="at 23:00", clock=time(23)), NOW, None).hour == 23


def test_a_wall_clock_time_in_a_dst_gap_is_a_real_instant() -> None:
    # 02:30 on 29 March 2026 does not exist in Paris; it reads as 03:30 local (01:30 UTC).
    moment = resolve(parse_when("at", "2026-03-29 02:30"), NOW, "Europe/Paris")
    assert moment.tzinfo == UTC and moment - NOW < timedelta(hours=4)


def test_the_window_refuses_the_past_and_beyond_the_horizon() -> None:
    assert "in the past" in check_window(NOW - timedelta(seconds=1), NOW, 3600)
    assert "too far ahead" in check_window(NOW + timedelta(hours=2), NOW, 3600)
    assert "1 hour" in check_window(NOW + timedelta(hours=2), NOW, 3600)
    assert check_window(NOW + timedelta(minutes=59), NOW, 3600) is None


def test_zones_are_cached_for_their_ttl_and_failures_read_as_utc() -> None:
    asked: list[str] = []
    clock = [0.0]

    def lookup(user: str) -> str:
        asked.append(user)
        if user == "U0DOWN":
            raise ConnectionError("slack down")
        return "Asia/Kolkata"

    zones = UserZones(lookup, ttl=60, clock=lambda: clock[0])
    assert zones("U1") == "Asia/Kolkata" and zones("U1") == "Asia/Kolkata"
    assert asked == ["U1"]
    clock[0] = 61
    zones("U1")
    assert asked == ["U1", "U1"]
    assert zones("U0DOWN") is None and zones("U0DOWN") is None
    assert asked.count("U0DOWN") == 2  # a failure is not kept
