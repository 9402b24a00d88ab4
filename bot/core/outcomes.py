"""What the use cases answer: who asked, and the outcome of each step (plain dataclasses)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bot.core.approvals.outcomes import ApprovalView
from bot.core.operation import Operation
from bot.uplynk.models import Library

# progress(done_ids, total_ids) is called as batches finish.
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Requester:
    """Who typed the command, and where."""

    user_id: str
    team_id: str | None
    channel_id: str | None


@dataclass(frozen=True)
class Planned:
    """A pending operation with its preview, waiting for a click."""

    operation: Operation
    library: Library
    titles: dict[str, str] = field(default_factory=dict)  # asset id -> Uplynk title (desc)
    # The library is protected (docs/SPEC.md §7): who must approve, for the preview to say.
    approval: ApprovalView | None = None


@dataclass(frozen=True)
class NeedsPick:
    """The library name matched several libraries; the requester picks one."""

    operation: Operation
    name: str
    candidates: list[Library]


@dataclass(frozen=True)
class Refused:
    """The request was refused; `message` says why (fit for Slack)."""

    message: str
    operation: Operation | None = None


@dataclass(frozen=True)
class Executed:
    """An operation that ran (fully, partly or not at all).

    ``superseded``: this run lost its fence (its lease was taken back and another run owns
    the operation); it stopped, and the run that replaced it reports the outcome.
    """

    operation: Operation
    library: Library | None
    errors: list[str] = field(default_factory=list)
    superseded: bool = False


@dataclass(frozen=True)
class Undone:
    """An undo that ran."""

    operation: Operation
    library: Library | None
    errors: list[str] = field(default_factory=list)
