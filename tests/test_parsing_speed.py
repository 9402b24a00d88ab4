"""A megabyte of separators parses in linear time (it used to take seconds before the ack)."""

from __future__ import annotations

import time

from bot.core.parsing import AddCommand, HelpCommand, parse_command

MEGABYTE_OF_SEPARATORS = " ," * 500_000
# The bound, in this thread's CPU time and best of three runs, so that a busy shared
# CPU (other tests run beside this one) does not make a linear parser look slow; the
# quadratic one took about 7 s on this input.
BOUND_SECONDS = 0.1


def best_time(text: str) -> tuple[float, object]:
    times, result = [], None
    for _ in range(3):
        started = time.thread_time()
        result = parse_command(text)
        times.append(time.thread_time() - started)
    return min(times), result


def test_a_megabyte_of_separators_alone_is_help_within_100_ms() -> None:
    elapsed, result = best_time(MEGABYTE_OF_SEPARATORS)
    assert isinstance(result, HelpCommand)
    assert elapsed < BOUND_SECONDS, f"{elapsed:.3f} s"


def test_a_command_padded_with_a_megabyte_of_separators_parses_within_100_ms() -> None:
    text = f'"Marketing Library"{MEGABYTE_OF_SEPARATORS} 7a08bca2{MEGABYTE_OF_SEPARATORS}'
    elapsed, result = best_time(text)
    assert (
        result == AddCommand(library=result.library, asset_ids=("7a08bca2",), duplicates=())
        and result.library.name == "Marketing Library"
    )
    assert elapsed < BOUND_SECONDS, f"{elapsed:.3f} s"
