"""Who may add to which library: the TOML permission policy, deny by default (docs/SPEC.md §4)."""

from __future__ import annotations

import logging
import os
import re
import threading
import time
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

from slack_sdk.errors import SlackApiError

__all__ = ["AllowRule", "Decision", "Policy", "PolicyError", "ProtectRule", "UsergroupCache"]

log = logging.getLogger(__name__)

GroupsOf = Callable[[str], set[str]]

_TOP_LEVEL_KEYS = ("admins", "allow", "protect")
_ENTRY_KEYS = ("libraries", "users", "usergroups", "channels")
_PROTECT_KEYS = ("libraries", "approvers", "approver_usergroups", "approvals")
_LIBRARY_ID = re.compile(r"[0-9a-fA-F]{8,32}")
_ID_PATTERNS = {
    # Slack ids: a kind letter and upper-case letters/digits (W… are Enterprise Grid users).
    "users": (re.compile(r"[UW][A-Z0-9]+"), "Slack user ids (U… or W…)"),
    "usergroups": (re.compile(r"S[A-Z0-9]+"), "Slack user group ids (S…)"),
    "channels": (re.compile(r"[CGD][A-Z0-9]+"), "Slack channel ids (C…, G… or D…)"),
}
_ALLOW_HEADER = re.compile(r"^[ \t]*\[\[[ \t]*allow[ \t]*\]\]", re.MULTILINE)
_PROTECT_HEADER = re.compile(r"^[ \t]*\[\[[ \t]*protect[ \t]*\]\]", re.MULTILINE)


class PolicyError(Exception):
    """The policy file is malformed; the message names the file and, where known, the line."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


@dataclass(frozen=True)
class AllowRule:
    """One `[[allow]]` entry; `index` is its 1-based position in the file."""

    index: int
    libraries: frozenset[str]
    users: frozenset[str] = frozenset()
    usergroups: frozenset[str] = frozenset()
    channels: frozenset[str] = frozenset()

    def covers(self, library_id: str) -> bool:
        return "*" in self.libraries or library_id in self.libraries

    def allows_channel(self, channel_id: str | None) -> bool:
        return not self.channels or channel_id in self.channels


@dataclass(frozen=True)
class ProtectRule:
    """One `[[protect]]` entry (docs/SPEC.md §7): a condition on top of `[[allow]]`, no grant."""

    index: int
    libraries: frozenset[str]
    approvers: frozenset[str] = frozenset()
    approver_usergroups: frozenset[str] = frozenset()
    approvals: int = 1

    def covers(self, library_id: str) -> bool:
        return "*" in self.libraries or library_id in self.libraries


class Policy:
    """A loaded policy. Build with `load`, `from_text`, `from_dict` or `deny_all`."""

    def __init__(
        self,
        admins: Iterable[str] = (),
        rules: Iterable[AllowRule] = (),
        *,
        source: str = "<policy>",
        deny_reason: str | None = None,
        protections: Iterable[ProtectRule] = (),
    ) -> None:
        self.admins = frozenset(admins)
        self.rules = tuple(rules)
        self.protections = tuple(protections)
        self.source = source
        self.deny_reason = deny_reason

    # -- construction --------------------------------------------------------------------

    @classmethod
    def deny_all(cls, reason: str) -> Policy:
        return cls(deny_reason=reason)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Policy:
        """Read a policy file; a missing file gives a policy that refuses everything."""
        try:
            raw = open(path, "rb").read()  # noqa: SIM115 - one-shot read
        except FileNotFoundError:
            return cls.deny_all(
                f"No permission policy is configured (ADDTOLIB_POLICY={os.fspath(path)} "
                "not found); an administrator must create one."
            )
        except OSError as exc:
            raise PolicyError(f"{os.fspath(path)}: cannot read the policy file: {exc}") from exc
        return cls.from_bytes(raw, source=os.fspath(path))

    @classmethod
    def from_bytes(cls, raw: bytes, source: str = "<policy>") -> Policy:
        """A policy file's content, as read (it must be UTF-8)."""
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PolicyError(f"{source}: the policy file is not UTF-8 ({exc})") from exc
        return cls.from_text(text, source=source)

    @classmethod
    def from_text(cls, text: str, source: str = "<policy>") -> Policy:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"{source}: invalid TOML: {exc}") from exc
        return cls.from_dict(data, source=source, text=text)

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], source: str = "<policy>", text: str | None = None
    ) -> Policy:
        """Validate parsed TOML; `text`, when given, is used to name lines in errors."""
        return _Validator(source, text or "").policy(data)

    # -- queries -------------------------------------------------------------------------

    def current(self) -> Policy:
        """The policy in force: this one (a PolicyHolder answers its latest)."""
        return self

    @property
    def usergroups(self) -> frozenset[str]:
        """Every user group the policy refers to (what a UsergroupCache must resolve)."""
        groups = [rule.usergroups for rule in self.rules]
        groups += [rule.approver_usergroups for rule in self.protections]
        return frozenset().union(*groups)

    def is_admin(self, user_id: str) -> bool:
        return user_id in self.admins

    def check(
        self, user_id: str, library_id: str, channel_id: str | None, groups_of: GroupsOf
    ) -> Decision:
        """May `user_id` add assets to `library_id` from `channel_id`?"""
        if self.is_admin(user_id):
            return Decision(True, "admin")
        if self.deny_reason is not None:
            return Decision(False, self.deny_reason)
        library_id = library_id.lower()
        # "*" asks whether the user may add to any library at all (and why not).
        anywhere = library_id == "*"
        which = "any library" if anywhere else f"library {library_id}"
        covering = [rule for rule in self.rules if anywhere or rule.covers(library_id)]
        if not covering:
            return Decision(
                False,
                f"library {library_id} is not named in any [[allow]] entry of the permission "
                "policy (and you are not an admin)",
            )
        naming_user = _Membership(user_id, groups_of).rules_naming_user(covering)
        if not naming_user:
            return Decision(
                False,
                f"you (<@{user_id}>) are not named in any [[allow]] entry for {which} "
                "(directly or through a user group)",
            )
        for rule, how in naming_user:
            if rule.allows_channel(channel_id):
                return Decision(True, f"[[allow]] entry {rule.index} names {how}")
        channels = sorted(set().union(*(rule.channels for rule, _ in naming_user)))
        shown = ", ".join(f"<#{c}>" for c in channels)
        entry = "entry" if len(naming_user) == 1 else "entries"
        verb = "allows" if len(naming_user) == 1 else "allow"
        subject = "naming you" if anywhere else "for this library"
        return Decision(False, f"the [[allow]] {entry} {subject} only {verb} channels {shown}")

    # -- approvals (docs/SPEC.md §7) ------------------------------------------------------------

    def protections_for(self, library_id: str | None) -> list[ProtectRule]:
        """The `[[protect]]` entries covering this library (empty: it needs no approval)."""
        if not library_id:
            return []
        return [rule for rule in self.protections if rule.covers(library_id.lower())]

    def may_approve(self, user_id: str, library_id: str, groups_of: GroupsOf) -> bool:
        """Admins approve every protected library; others must be named by a covering entry.

        That the requester never approves their own operation is the workflow's rule.
        """
        covering = self.protections_for(library_id)
        if not covering:
            return False
        if self.is_admin(user_id):
            return True
        return any(self._names_approver(rule, user_id, groups_of) for rule in covering)

    def approvals_missing(
        self, library_id: str | None, approvers: Iterable[str], groups_of: GroupsOf
    ) -> int:
        """How many more distinct approvals the most demanding unmet entry still needs."""
        people = set(approvers)
        missing = 0
        for rule in self.protections_for(library_id):
            counted = sum(1 for who in people if self._counts_for(rule, who, groups_of))
            missing = max(missing, rule.approvals - counted)
        return missing

    def approvals_needed(self, library_id: str | None) -> int:
        return max((rule.approvals for rule in self.protections_for(library_id)), default=0)

    def _counts_for(self, rule: ProtectRule, user_id: str, groups_of: GroupsOf) -> bool:
        return self.is_admin(user_id) or self._names_approver(rule, user_id, groups_of)

    @staticmethod
    def _names_approver(rule: ProtectRule, user_id: str, groups_of: GroupsOf) -> bool:
        if user_id in rule.approvers:
            return True
        return bool(rule.approver_usergroups and rule.approver_usergroups & groups_of(user_id))

    def allowed_libraries(
        self, user_id: str, channel_id: str | None, groups_of: GroupsOf, any_channel: bool = False
    ) -> set[str] | Literal["*"]:
        """The library ids this user may add to from this channel (from some channel with
        `any_channel`), or "*" for any."""
        if self.is_admin(user_id):
            return "*"
        if self.deny_reason is not None:
            return set()
        naming_user = _Membership(user_id, groups_of).rules_naming_user(self.rules)
        libraries: set[str] = set()
        for rule, _ in naming_user:
            if any_channel or rule.allows_channel(channel_id):
                if "*" in rule.libraries:
                    return "*"
                libraries |= rule.libraries
        return libraries


class _Membership:
    """Answers "does this rule name the user?", asking Slack for groups at most once."""

    def __init__(self, user_id: str, groups_of: GroupsOf) -> None:
        self.user_id = user_id
        self._groups_of = groups_of
        self._groups: set[str] | None = None

    def rules_naming_user(self, rules: Iterable[AllowRule]) -> list[tuple[AllowRule, str]]:
        found = []
        for rule in rules:
            how = self._how_named(rule)
            if how is not None:
                found.append((rule, how))
        return found

    def _how_named(self, rule: AllowRule) -> str | None:
        if self.user_id in rule.users:
            return "you"
        if not rule.usergroups:
            return None
        if self._groups is None:
            self._groups = set(self._groups_of(self.user_id))
        shared = sorted(rule.usergroups & self._groups)
        return f"your user group <!subteam^{shared[0]}>" if shared else None


class _Validator:
    """Checks the parsed TOML against the schema, naming entries and lines in errors."""

    def __init__(self, source: str, text: str) -> None:
        self.source = source
        self.lines = text.splitlines()
        self.allow_header_lines = [
            text.count("\n", 0, match.start()) + 1 for match in _ALLOW_HEADER.finditer(text)
        ]
        self.protect_header_lines = [
            text.count("\n", 0, match.start()) + 1 for match in _PROTECT_HEADER.finditer(text)
        ]

    def policy(self, data: Mapping[str, Any]) -> Policy:
        unknown = sorted(set(data) - set(_TOP_LEVEL_KEYS))
        if unknown:
            self.fail(
                f"unknown setting `{unknown[0]}` (expected {_or(_TOP_LEVEL_KEYS)})",
                self.key_line(unknown[0]),
            )
        admins = self.id_list(data.get("admins", []), "admins", "users", None)
        entries = data.get("allow", [])
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            self.fail("`allow` must be a list of [[allow]] tables", self.key_line("allow"))
        rules = [self.rule(index, entry) for index, entry in enumerate(entries, start=1)]
        guards = data.get("protect", [])
        if not isinstance(guards, list) or not all(isinstance(e, dict) for e in guards):
            self.fail("`protect` must be a list of [[protect]] tables", self.key_line("protect"))
        protections = [
            self.protect(index, entry, admins) for index, entry in enumerate(guards, start=1)
        ]
        return Policy(admins, rules, source=self.source, protections=protections)

    def protect(self, index: int, entry: Mapping[str, Any], admins: frozenset[str]) -> ProtectRule:
        where = f"[[protect]] entry {index}"
        for key in entry:
            if key not in _PROTECT_KEYS:
                self.fail(
                    f"{where}: unknown key `{key}` (expected {_or(_PROTECT_KEYS)})",
                    self.entry_line(index, key, "protect"),
                )
        if "libraries" not in entry:
            self.fail(
                f'{where} has no `libraries` (list library ids, or "*" for all)',
                self.entry_line(index, None, "protect"),
            )
        libraries = self.libraries(index, entry["libraries"], "protect")
        approvers = self.id_list(entry.get("approvers", []), "approvers", "users", index, "protect")
        groups = self.id_list(
            entry.get("approver_usergroups", []),
            "approver_usergroups",
            "usergroups",
            index,
            "protect",
        )
        approvals = entry.get("approvals", 1)
        line = self.entry_line(index, "approvals", "protect")
        if isinstance(approvals, bool) or not isinstance(approvals, int) or approvals < 1:
            self.fail(
                f"{where}: `approvals` must be a whole number, at least 1, not {approvals!r}", line
            )
        people = len(approvers | admins)
        if not groups and approvals > people:
            self.fail(
                f"{where} needs {approvals} distinct approvals but only {people} "
                "people (its `approvers` and the admins) may approve",
                line,
            )
        return ProtectRule(index, libraries, approvers, groups, approvals)

    def rule(self, index: int, entry: Mapping[str, Any]) -> AllowRule:
        where = f"[[allow]] entry {index}"
        for key in entry:
            if key not in _ENTRY_KEYS:
                self.fail(
                    f"{where}: unknown key `{key}` (expected {_or(_ENTRY_KEYS)})",
                    self.entry_line(index, key),
                )
        if "libraries" not in entry:
            self.fail(
                f'{where} has no `libraries` (list library ids, or "*" for all)',
                self.entry_line(index),
            )
        libraries = self.libraries(index, entry["libraries"])
        users = self.id_list(entry.get("users", []), "users", "users", index)
        groups = self.id_list(entry.get("usergroups", []), "usergroups", "usergroups", index)
        channels = self.id_list(entry.get("channels", []), "channels", "channels", index)
        if not users and not groups:
            self.fail(f"{where} names no `users` and no `usergroups`", self.entry_line(index))
        return AllowRule(index, libraries, users, groups, channels)

    def libraries(self, index: int, value: Any, table: str = "allow") -> frozenset[str]:
        where = f"[[{table}]] entry {index}"
        line = self.entry_line(index, "libraries", table)
        if not isinstance(value, list) or not value:
            self.fail(f'{where}: `libraries` must be a non-empty list of ids or "*"', line)
        for item in value:
            if not isinstance(item, str) or not (item == "*" or _LIBRARY_ID.fullmatch(item)):
                self.fail(
                    f'{where}: `libraries` must hold library ids (hexadecimal) or "*", '
                    f"not {item!r} (names are not accepted: they can change)",
                    line,
                )
        return frozenset(item.lower() for item in value)

    def id_list(
        self, value: Any, key: str, kind: str, index: int | None, table: str = "allow"
    ) -> frozenset[str]:
        """Validate a list of Slack ids: top-level when `index` is None, else in an entry."""
        pattern, description = _ID_PATTERNS[kind]
        if index is None:
            where, line = "", self.key_line(key)
        else:
            where, line = f"[[{table}]] entry {index}: ", self.entry_line(index, key, table)
        if not isinstance(value, list):
            self.fail(f"{where}`{key}` must be a list of {description}", line)
        for item in value:
            if not isinstance(item, str) or not pattern.fullmatch(item):
                self.fail(f"{where}`{key}` must hold {description}, not {item!r}", line)
        return frozenset(value)

    def key_line(self, key: str) -> int | None:
        """The line of a top-level `key = ...` (before the first table header)."""
        headers = self.allow_header_lines + self.protect_header_lines
        end = min(headers) - 1 if headers else len(self.lines)
        return self._find_key(key, 0, end) or self._find_key(key, 0, len(self.lines))

    def entry_line(self, index: int, key: str | None = None, table: str = "allow") -> int | None:
        """The line of the index-th `[[table]]` header, or of `key` inside that entry."""
        headers = self.protect_header_lines if table == "protect" else self.allow_header_lines
        if index > len(headers):
            return None  # e.g. written as an inline array of tables
        header = headers[index - 1]
        if key is None:
            return header
        following = [n for n in self._next_headers() if n > header]
        end = following[0] - 1 if following else len(self.lines)
        return self._find_key(key, header, end) or header

    def _next_headers(self) -> list[int]:
        return [n for n, line in enumerate(self.lines, 1) if line.lstrip().startswith("[")]

    def _find_key(self, key: str, start: int, end: int) -> int | None:
        pattern = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
        for number in range(start + 1, end + 1):
            if pattern.match(self.lines[number - 1]):
                return number
        return None

    def fail(self, problem: str, line: int | None) -> NoReturn:
        at = f" (line {line})" if line else ""
        raise PolicyError(f"{self.source}{at}: {problem}")


def _or(words: Iterable[str]) -> str:
    quoted = [f"`{w}`" for w in words]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1] if len(quoted) > 1 else quoted[0]


class UsergroupCache:
    """Resolves user group members with Slack's usergroups.users.list, cached for `ttl` s.

    Only the groups in `group_ids` (those the policy refers to) are looked up. A failed
    look-up counts as "no members" (fail closed) and is retried after `error_ttl` s.
    """

    def __init__(
        self,
        client: Any,
        ttl: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        group_ids: Iterable[str] = (),
        error_ttl: float = 10.0,
    ) -> None:
        self.client = client
        self.ttl = ttl
        self.error_ttl = min(error_ttl, ttl)
        self.clock = clock
        self._group_ids = frozenset(group_ids)
        self._lock = threading.Lock()
        self._fetch_locks: dict[str, threading.Lock] = {}
        self._members: dict[str, tuple[float, frozenset[str]]] = {}  # gid -> (expiry, users)

    @property
    def group_ids(self) -> frozenset[str]:
        return self._group_ids

    def set_group_ids(self, group_ids: Iterable[str]) -> None:
        with self._lock:
            self._group_ids = frozenset(group_ids)

    def invalidate(self) -> None:
        with self._lock:
            self._members.clear()

    def groups_of(self, user_id: str) -> set[str]:
        return {gid for gid in sorted(self.group_ids) if user_id in self.members(gid)}

    def members(self, group_id: str) -> frozenset[str]:
        cached = self._cached(group_id)
        if cached is not None:
            return cached
        # One fetch per group at a time; other groups and cache hits are not held up.
        with self._fetch_lock(group_id):
            cached = self._cached(group_id)
            if cached is not None:
                return cached
            users, ok = self._fetch(group_id)
            expiry = self.clock() + (self.ttl if ok else self.error_ttl)
            with self._lock:
                self._members[group_id] = (expiry, users)
            return users

    def known_members(self, group_id: str) -> frozenset[str]:
        """The members as cached now, asking Slack nothing (empty when not cached)."""
        return self._cached(group_id) or frozenset()

    def _cached(self, group_id: str) -> frozenset[str] | None:
        with self._lock:
            entry = self._members.get(group_id)
        if entry is not None and self.clock() < entry[0]:
            return entry[1]
        return None

    def _fetch_lock(self, group_id: str) -> threading.Lock:
        with self._lock:
            return self._fetch_locks.setdefault(group_id, threading.Lock())

    def _fetch(self, group_id: str) -> tuple[frozenset[str], bool]:
        try:
            response = self.client.usergroups_users_list(usergroup=group_id)
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            log.warning("usergroups.users.list failed for %s: %s", group_id, error or exc)
            return frozenset(), False
        except OSError as exc:  # network failure or timeout
            log.warning("usergroups.users.list failed for %s: %s", group_id, exc)
            return frozenset(), False
        if not response.get("ok", False):
            log.warning("usergroups.users.list failed for %s: %s", group_id, response.get("error"))
            return frozenset(), False
        return frozenset(response.get("users") or ()), True
