"""Planning (docs/SPEC.md §3.1-3.3): resolve the library, check permission, store a preview."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from concurrent.futures import Future
from datetime import datetime, timedelta
from typing import Any

from bot.core.approvals.outcomes import ApprovalView
from bot.core.operation import Operation, State
from bot.core.operations.base import UseCase
from bot.core.outcomes import NeedsPick, Planned, Refused, Requester
from bot.core.parsing import AddCommand, LibraryRef
from bot.core.schedule.when import check_window
from bot.core.text import escape_mrkdwn
from bot.uplynk.errors import UplynkError, UplynkNotFound
from bot.uplynk.models import Library

PICKED_ALREADY = "A library was already picked for this request; nothing more was done."


class Planning(UseCase):
    """plan, pick_library, draft and plan_draft (the modal), and the previews' expiry."""

    # -- planning -------------------------------------------------------------------------

    def plan(
        self, who: Requester, command: AddCommand, response_url: str | None = None
    ) -> Planned | NeedsPick | Refused:
        """Resolve the library, check permission, look up the assets and store a preview."""
        if not self._may_add_anywhere(who):
            return self._deny(who, command.asset_ids, None, None, self._blanket_refusal(who))
        schedule: dict[str, Any] = {}
        if command.when is not None:  # docs/SPEC.md §15: a refused time changes nothing
            timing = self.when(who, command.when)
            if isinstance(timing, Refused):
                return timing
            schedule = {"run_at": timing[0], "run_zone": timing[1]}
        # The assets are looked up while the library is resolved: one Uplynk round trip.
        lookup = self._look_up(command.asset_ids)
        try:
            found = self._resolve_library(command.library)
        except UplynkError as exc:
            return Refused(self._uplynk_message(exc, command.library))
        if isinstance(found, Refused):
            return found
        if isinstance(found, list):
            operation = self.store.create(
                team_id=who.team_id,
                channel_id=who.channel_id,
                user_id=who.user_id,
                library_name=command.library.name,
                requested_ids=list(command.asset_ids),
                response_url=response_url,
                **schedule,
            )
            return NeedsPick(operation, command.library.name or "", found)
        return self._preview(
            who, found, list(command.asset_ids), response_url, lookup=lookup, schedule=schedule
        )

    def pick_library(
        self, operation_id: str, library_id: str, user_id: str
    ) -> Planned | NeedsPick | Refused:
        """Continue a plan once the requester picked one of several libraries."""
        operation = self.store.get(operation_id)
        if operation is None:
            return Refused(
                "That choice no longer matches a waiting request; run the command again."
            )
        if operation.library_id is not None:
            return Refused(PICKED_ALREADY)  # the same answer as losing the compare-and-set
        if operation.user_id != user_id:
            return Refused(f"Only <@{operation.user_id}> can choose the library for this request.")
        if operation.state != State.PENDING:
            return Refused(f"This request is already {operation.state}.")
        lookup = self._look_up(operation.requested_ids)
        try:
            library = self.uplynk.get_library(library_id)
        except UplynkError as exc:
            return Refused(self._uplynk_message(exc, LibraryRef(id=library_id, name=None)))
        who = Requester(operation.user_id, operation.team_id, operation.channel_id)
        planned = self._preview(
            who,
            library,
            list(operation.requested_ids),
            operation.response_url,
            operation,
            lookup=lookup,
        )
        return planned

    def _look_up(self, asset_ids: Iterable[str]) -> Future:
        """Start looking the assets up now (their answer is needed once the library is known)."""
        return self._lookups.submit(self.uplynk.get_assets, list(asset_ids))

    def draft(self, who: Requester, asset_ids: list[str] | tuple[str, ...]) -> Operation:
        """A pending operation with asset ids and no library yet: what a modal keeps on the
        server (ids found in a message, too many for the view) until it is submitted."""
        return self.store.create(
            team_id=who.team_id,
            channel_id=who.channel_id,
            user_id=who.user_id,
            requested_ids=list(asset_ids),
        )

    def plan_draft(
        self,
        draft_id: str,
        user_id: str,
        library_id: str,
        channel_id: str,
        more_ids: list[str] | tuple[str, ...] = (),
        run_at: datetime | None = None,
    ) -> Planned | NeedsPick | Refused:
        """Plan a draft once its form is submitted: its ids plus `more_ids`, summary to
        `channel_id` (the permission check uses that channel)."""
        operation = self.store.get(draft_id) if draft_id else None
        if operation is None or operation.library_id is not None:
            return Refused("This form was already submitted, or has expired; open it again.")
        if operation.user_id != user_id:
            return Refused(f"Only <@{operation.user_id}> can submit this form.")
        if operation.state != State.PENDING:
            return Refused(f"This form is {operation.state}; open it again.")
        requested = list(dict.fromkeys([*operation.requested_ids, *more_ids]))
        schedule: dict[str, Any] = {}
        if run_at is not None:  # the modal's `when` (docs/SPEC.md §15)
            reason = check_window(run_at, self.now(), self.schedule_horizon)
            if reason:
                return Refused(reason)
            schedule = {"run_at": run_at, "run_zone": self.zone_of(user_id)}
        self.store.update(draft_id, requested_ids=requested, channel_id=channel_id, **schedule)
        return self.pick_library(draft_id, library_id, user_id)

    def _preview(
        self,
        who: Requester,
        library: Library,
        asset_ids: list[str],
        response_url: str | None,
        existing: Operation | None = None,
        *,
        lookup: Future | None = None,
        schedule: dict | None = None,
    ) -> Planned | Refused:
        decision = self.policy.check(who.user_id, library.id, who.channel_id, self.groups_of)
        if not decision.allowed:
            if existing is not None:
                denied = self.store.transition(
                    existing.id,
                    State.PENDING,
                    State.DENIED,
                    require={"library_id": None},
                    denial_reason=decision.reason,
                )
                if denied is None:
                    return Refused(PICKED_ALREADY)
                return Refused(
                    f"You may not add to *{escape_mrkdwn(library.desc)}*: {decision.reason}"
                )
            return self._deny(who, asset_ids, library, response_url, decision.reason)
        try:
            assets = lookup.result() if lookup is not None else self.uplynk.get_assets(asset_ids)
        except UplynkError as exc:
            return Refused(f"Could not look up the assets: {escape_mrkdwn(exc.user_message)}")
        missing = [a for a in asset_ids if a not in assets]
        present = [a for a in asset_ids if a in assets and library.id in assets[a].libraries]
        new = [a for a in asset_ids if a in assets and library.id not in assets[a].libraries]
        preview = {
            "library_id": library.id,
            "library_name": library.desc,
            "new_ids": new,
            "present_ids": present,
            "missing_ids": missing,
            "asset_titles": {a: assets[a].desc for a in [*new, *present] if assets[a].desc},
            # What the summary shows of the library, so that its delivery never asks Uplynk.
            "library_facts": {
                "desc": library.desc,
                "allow_copy": library.allow_copy,
                "is_ad": library.is_ad,
                "created": library.created,
            },
        }
        if existing is None:
            operation = self.store.create(
                team_id=who.team_id,
                channel_id=who.channel_id,
                user_id=who.user_id,
                requested_ids=asset_ids,
                response_url=response_url,
                **preview,
                **(schedule or {}),
            )
        else:
            # The pick is a compare-and-set: of two quick clicks, only the first one's preview
            # is stored (and shown); the other is refused.
            picked = self.store.update(
                existing.id, require={"library_id": None, "state": State.PENDING}, **preview
            )
            if picked is None:
                return Refused(PICKED_ALREADY)
            operation = picked
        if not new:
            # Nothing to add: the preview is the whole answer; the operation is closed.
            operation = self.store.transition(operation.id, State.PENDING, State.DONE) or operation
        titles = {a: asset.desc for a, asset in assets.items()}
        return Planned(operation, library, titles, self.approval_needed(operation))

    def approval_needed(self, operation: Operation) -> ApprovalView | None:
        """Who must approve this pending operation before it runs (None: nobody need)."""
        if not operation.new_ids or operation.state != State.PENDING:
            return None
        return self.approvals.view(operation) if self.approvals.required(operation) else None

    def _resolve_library(self, ref: LibraryRef) -> Library | list[Library] | Refused:
        if ref.id:
            return self.uplynk.get_library(ref.id)
        name = ref.name or ""
        candidates = self.uplynk.find_libraries(name)
        exact = [lib for lib in candidates if lib.desc.casefold() == name.casefold()]
        if len(exact) == 1:
            return exact[0]
        if exact:
            return exact
        if candidates:
            return candidates[:10]
        everything = self.uplynk.find_libraries("")
        by_name = {lib.desc: lib for lib in everything}
        close = difflib.get_close_matches(name, list(by_name), n=3, cutoff=0.4)
        if not close:
            close = [
                d for d in by_name if set(d.casefold().split()) & set(name.casefold().split())
            ][:3]
        hint = ", ".join(f"*{escape_mrkdwn(d)}*" for d in close) if close else "none"
        return Refused(f"No library is named *{escape_mrkdwn(name)}*. Closest matches: {hint}.")

    def _may_add_anywhere(self, who: Requester) -> bool:
        allowed = self.policy.allowed_libraries(who.user_id, who.channel_id, self.groups_of)
        return allowed == "*" or bool(allowed)

    def _blanket_refusal(self, who: Requester) -> str:
        decision = self.policy.check(who.user_id, "*", who.channel_id, self.groups_of)
        return decision.reason

    def _deny(
        self,
        who: Requester,
        asset_ids: list[str] | tuple[str, ...],
        library: Library | None,
        response_url: str | None,
        reason: str,
    ) -> Refused:
        operation = self.store.create(
            team_id=who.team_id,
            channel_id=who.channel_id,
            user_id=who.user_id,
            library_id=library.id if library else None,
            library_name=library.desc if library else None,
            requested_ids=list(asset_ids),
            response_url=response_url,
            state=State.DENIED,
            denial_reason=reason,
        )
        where = f" to *{escape_mrkdwn(library.desc)}*" if library else ""
        return Refused(f"You may not add assets{where}: {reason}", operation)

    def expire_stale_previews(self) -> int:
        """Close previews nobody clicked within the confirmation TTL (so history is honest)."""
        return self.store.expire_pending(self.now() - timedelta(seconds=self.confirm_ttl))

    def _uplynk_message(self, exc: UplynkError, ref: LibraryRef) -> str:
        if isinstance(exc, UplynkNotFound) and ref.id:
            return f"Uplynk has no library with id `{ref.id}` (404)."
        return escape_mrkdwn(exc.user_message)
