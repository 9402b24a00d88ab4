"""Library, Asset and batch-result dataclasses built from Uplynk API answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.uplynk.errors import UplynkError


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class Library:
    """An Uplynk library as the bot shows it."""

    id: str
    desc: str
    allow_copy: bool
    is_ad: bool
    created: str
    owner_name: str | None = None
    library_type: str | None = None
    asset_count: int | None = None

    @classmethod
    def from_api(cls, obj: dict[str, Any]) -> Library:
        """Build from a Library object (docs/SPEC.md) (tolerating missing optional fields)."""
        lib_id = obj.get("id")
        if not lib_id and isinstance(obj.get("@id"), str):
            lib_id = obj["@id"].rstrip("/").rsplit("/", 1)[-1]
        count: int | None = None
        if isinstance(obj.get("asset_count"), int) and not isinstance(obj["asset_count"], bool):
            count = obj["asset_count"]
        elif isinstance(obj.get("assets"), list):
            count = len(obj["assets"])
        return cls(
            id=str(lib_id or ""),
            desc=str(obj.get("desc") or ""),
            allow_copy=bool(obj.get("allow_copy", False)),
            is_ad=bool(obj.get("is_ad", False)),
            created=str(obj.get("created") or ""),
            owner_name=_opt_str(obj.get("owner_name")),
            library_type=_opt_str(obj.get("library_type")),
            asset_count=count,
        )


@dataclass(frozen=True)
class Asset:
    """An Uplynk asset with the ids of the libraries holding it."""

    id: str
    desc: str
    external_id: str | None
    libraries: frozenset[str] = frozenset()

    @classmethod
    def from_api(cls, obj: dict[str, Any]) -> Asset:
        """Build from a v2 asset; `libraries` may list id strings or objects with an "id"."""
        libs: set[str] = set()
        for item in obj.get("libraries") or ():
            if isinstance(item, str):
                libs.add(item)
            elif isinstance(item, dict) and item.get("id"):
                libs.add(str(item["id"]))
        return cls(
            id=str(obj.get("id") or ""),
            desc=str(obj.get("desc") or ""),
            external_id=_opt_str(obj.get("external_id")),
            libraries=frozenset(libs),
        )


@dataclass
class BatchResult:
    """One add/remove call: its ids, the Library it returned, or the error it met."""

    ids: list[str]
    library: Library | None = None
    error: UplynkError | None = None
    # Uplynk answered 429/5xx on the way (even if a retry then succeeded).
    overloaded: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class BulkResult:
    """Every batch of one add/remove operation, in order."""

    batches: list[BatchResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(batch.ok for batch in self.batches)

    @property
    def succeeded_ids(self) -> list[str]:
        return [i for batch in self.batches if batch.ok for i in batch.ids]

    @property
    def failed_ids(self) -> list[str]:
        return [i for batch in self.batches if not batch.ok for i in batch.ids]

    @property
    def last_library(self) -> Library | None:
        for batch in reversed(self.batches):
            if batch.library is not None:
                return batch.library
        return None

    @property
    def errors(self) -> list[UplynkError]:
        """Distinct errors, in the order they happened."""
        seen: list[UplynkError] = []
        for batch in self.batches:
            if batch.error is not None and all(batch.error is not e for e in seen):
                seen.append(batch.error)
        return seen
