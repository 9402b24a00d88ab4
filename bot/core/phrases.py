"""Phrases the use cases share: durations, id samples and "already handled" refusals."""

from __future__ import annotations

from bot.core.operation import Operation, State


def duration(seconds: int) -> str:
    """86400 -> '24 h', 900 -> '15 min', 1 -> '1 s'."""
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def id_sample(ids: list[str], shown: int = 3) -> str:
    """`a`, `b`, `c` and N more: a short list of ids for an error line."""
    text = ", ".join(f"`{i}`" for i in ids[:shown])
    return text + (f" and {len(ids) - shown} more" if len(ids) > shown else "")


def already_handled(operation: Operation) -> str:
    """Why a click on an operation in this state does nothing."""
    by = {
        State.CONFIRMED: "is already confirmed and running",
        State.RUNNING: "is already running",
        State.DONE: "has already been carried out",
        State.PARTIAL: "has already run (partly)",
        State.FAILED: "has already run and failed; use Retry",
        State.CANCELLED: "was cancelled",
        State.EXPIRED: "has expired",
        State.DENIED: "was refused",
        State.UNDONE: f"was already undone by <@{operation.undone_by}>",
        State.INTERRUPTED: "was interrupted; use Retry",
        State.UNDOING: "is being undone",
        State.PENDING: "is still waiting for confirmation",
    }.get(operation.state, f"is {operation.state}")
    return f"This operation {by}; nothing more was done."
