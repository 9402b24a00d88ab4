"""The simulator's libraries and assets: a deterministic demo catalogue in thread-safe memory."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


def demo_id(kind: str, name: str) -> str:
    """A stable 32-hex id for a demo object (md5 of kind and name)."""
    return hashlib.md5(f"{kind}:{name}".encode()).hexdigest()


@dataclass
class SimLibrary:
    """A library as the simulator stores it."""

    id: str
    desc: str
    allow_copy: bool = True
    is_ad: bool = False
    created: str = "2024-01-15T09:30:00Z"
    owner_name: str = "Demo Media Group"
    library_type: str = "standard"
    forbidden: bool = False
    assets: set[str] = field(default_factory=set)

    def to_api(self) -> dict[str, Any]:
        """The Library object of docs/SPEC.md, plus asset_count."""
        return {
            "@id": f"/api/v4/libraries/{self.id}",
            "@type": "Library",
            "id": self.id,
            "desc": self.desc,
            "allow_copy": self.allow_copy,
            "is_ad": self.is_ad,
            "created": self.created,
            "owner_name": self.owner_name,
            "library_type": self.library_type,
            "asset_count": len(self.assets),
        }


@dataclass
class SimAsset:
    """An asset as the simulator stores it."""

    id: str
    desc: str
    external_id: str | None = None
    duration: float = 30.0


# name -> (allow_copy, is_ad, created, library_type)
_DEMO_LIBRARIES = {
    "Marketing Library": (True, False, "2023-03-14T09:26:53Z", "standard"),
    "Marketing Library Archive": (False, False, "2021-11-02T16:40:00Z", "standard"),
    "Ad Breaks": (True, True, "2022-06-21T08:00:00Z", "ad"),
    "Sports Highlights": (True, False, "2023-08-30T19:15:27Z", "standard"),
    "Newsroom Daily": (False, False, "2024-02-05T05:45:10Z", "standard"),
}

# (title, external_id, duration seconds, names of the libraries already holding it)
_DEMO_ASSETS: list[tuple[str, str, float, tuple[str, ...]]] = [
    ("Spring Launch Promo 30s", "PROMO-2024-001", 30.0, ()),
    ("Spring Launch Promo 15s", "PROMO-2024-002", 15.0, ()),
    ("Summer Sale Teaser", "PROMO-2024-003", 20.0, ("Marketing Library",)),
    ("Brand Anthem 60s", "PROMO-2024-004", 60.0, ("Marketing Library",)),
    ("Holiday Campaign Cutdown", "PROMO-2023-017", 30.0, ("Marketing Library Archive",)),
    ("Product Reveal Trailer", "PROMO-2024-005", 95.0, ()),
    ("Behind the Scenes: Studio Tour", "PROMO-2024-006", 184.0, ("Marketing Library",)),
    ("Customer Story: Harbor Foods", "PROMO-2024-007", 122.0, ()),
    ("New Season Sizzle Reel", "PROMO-2024-008", 75.0, ()),
    ("Back to School Promo", "PROMO-2023-021", 30.0, ("Marketing Library Archive",)),
    ("Ad Spot: Northwind Coffee 30s", "AD-NW-0030", 30.0, ("Ad Breaks",)),
    ("Ad Spot: Northwind Coffee 15s", "AD-NW-0015", 15.0, ("Ad Breaks",)),
    ("Ad Spot: Contoso Motors 30s", "AD-CM-0030", 30.0, ("Ad Breaks",)),
    ("Ad Spot: Fabrikam Insurance 20s", "AD-FI-0020", 20.0, ()),
    ("Ad Spot: Tailspin Airlines 30s", "AD-TA-0030", 30.0, ()),
    ("Ad Spot: Litware Mobile 10s", "AD-LM-0010", 10.0, ("Ad Breaks",)),
    ("Ad Spot: Adventure Works Outdoor 30s", "AD-AW-0030", 30.0, ()),
    ("Ad Spot: Wide World Travel 15s", "AD-WW-0015", 15.0, ()),
    ("Sponsor Bumper: Proseware", "AD-PW-0005", 5.0, ("Ad Breaks",)),
    ("Ad Spot: Woodgrove Bank 30s", "AD-WB-0030", 30.0, ()),
    ("Match Highlights: Rovers vs United", "SPT-2024-0412", 412.0, ("Sports Highlights",)),
    ("Match Highlights: City vs Athletic", "SPT-2024-0413", 398.0, ("Sports Highlights",)),
    ("Top 10 Goals of the Month", "SPT-2024-0401", 521.0, ("Sports Highlights",)),
    ("Cup Final Extended Highlights", "SPT-2024-0520", 905.0, ()),
    ("Post-Match Interview: Coach Alvarez", "SPT-2024-0414", 240.0, ()),
    ("Race Day Recap: Grand Prix", "SPT-2024-0602", 610.0, ()),
    ("Tennis Open: Semi-Final Highlights", "SPT-2024-0615", 480.0, ("Sports Highlights",)),
    ("Basketball Playoffs Game 7 Recap", "SPT-2024-0618", 555.0, ()),
    ("Marathon Finish Line Moments", "SPT-2024-0421", 300.0, ()),
    ("Weekly Sports Roundup", "SPT-2024-0623", 720.0, ()),
    ("Morning Headlines", "NEWS-2024-0701-AM", 600.0, ("Newsroom Daily",)),
    ("Evening Bulletin", "NEWS-2024-0701-PM", 1320.0, ("Newsroom Daily",)),
    ("Weather Outlook: Week Ahead", "NEWS-2024-0702-WX", 180.0, ("Newsroom Daily",)),
    ("City Council Vote Explained", "NEWS-2024-0702-01", 240.0, ()),
    ("Markets Wrap", "NEWS-2024-0702-02", 210.0, ()),
    ("Election Night Special: Key Moments", "NEWS-2024-0705-EL", 1500.0, ()),
    ("Traffic and Transit Update", "NEWS-2024-0703-TR", 120.0, ("Newsroom Daily",)),
    ("Health Desk: Summer Heat Tips", "NEWS-2024-0703-HD", 195.0, ()),
    ("Tech Review: Foldable Phones", "NEWS-2024-0704-TC", 330.0, ()),
    ("Community Spotlight: Riverside Garden", "NEWS-2024-0704-CS", 270.0, ("Newsroom Daily",)),
]

DEMO_LIBRARY_IDS: dict[str, str] = {name: demo_id("library", name) for name in _DEMO_LIBRARIES}
DEMO_ASSET_IDS: list[str] = [demo_id("asset", title) for title, *_ in _DEMO_ASSETS]


class Catalogue:
    """Libraries and assets in memory; every method is safe to call from many threads."""

    def __init__(self, seed_demo: bool = True) -> None:
        self._lock = threading.RLock()
        self._libraries: dict[str, SimLibrary] = {}
        self._assets: dict[str, SimAsset] = {}
        self._seed_demo = seed_demo
        if seed_demo:
            self.seed_demo()

    def seed_demo(self) -> None:
        """Load the demo libraries and assets (deterministic ids)."""
        with self._lock:
            for name, (allow_copy, is_ad, created, kind) in _DEMO_LIBRARIES.items():
                self.add_library(
                    name, allow_copy=allow_copy, is_ad=is_ad, created=created, library_type=kind
                )
            for title, external_id, duration, libs in _DEMO_ASSETS:
                self.add_asset(
                    title,
                    external_id=external_id,
                    duration=duration,
                    libraries=[DEMO_LIBRARY_IDS[name] for name in libs],
                )

    def reset(self) -> None:
        """Forget everything and reseed (if this catalogue was seeded)."""
        with self._lock:
            self._libraries.clear()
            self._assets.clear()
            if self._seed_demo:
                self.seed_demo()

    # ------------------------------------------------------------- building

    def add_library(
        self,
        desc: str,
        id: str | None = None,
        *,
        allow_copy: bool = True,
        is_ad: bool = False,
        created: str = "2024-01-15T09:30:00Z",
        owner_name: str = "Demo Media Group",
        library_type: str = "standard",
        forbidden: bool = False,
        assets: Iterable[str] = (),
    ) -> SimLibrary:
        """Create (or replace) a library; `forbidden` makes every change to it answer 403."""
        lib = SimLibrary(
            id=(id or demo_id("library", desc)).lower(),
            desc=desc,
            allow_copy=allow_copy,
            is_ad=is_ad,
            created=created,
            owner_name=owner_name,
            library_type=library_type,
            forbidden=forbidden,
            assets=set(assets),
        )
        with self._lock:
            self._libraries[lib.id] = lib
        return lib

    def add_asset(
        self,
        desc: str,
        id: str | None = None,
        *,
        external_id: str | None = None,
        duration: float = 30.0,
        libraries: Iterable[str] = (),
    ) -> SimAsset:
        """Create (or replace) an asset, optionally placing it in `libraries` (ids)."""
        asset = SimAsset(
            id=(id or demo_id("asset", desc)).lower(),
            desc=desc,
            external_id=external_id,
            duration=duration,
        )
        with self._lock:
            self._assets[asset.id] = asset
            for lib_id in libraries:
                self._libraries[lib_id].assets.add(asset.id)
        return asset

    # -------------------------------------------------------------- reading

    @property
    def libraries(self) -> dict[str, SimLibrary]:
        with self._lock:
            return dict(self._libraries)

    @property
    def assets(self) -> dict[str, SimAsset]:
        with self._lock:
            return dict(self._assets)

    def library(self, library_id: str) -> SimLibrary | None:
        with self._lock:
            return self._libraries.get(library_id.lower())

    def library_assets(self, library_id: str) -> set[str]:
        with self._lock:
            return set(self._libraries[library_id.lower()].assets)

    def library_json(self, library_id: str) -> dict[str, Any] | None:
        with self._lock:
            lib = self._libraries.get(library_id.lower())
            return lib.to_api() if lib else None

    def unknown_assets(self, asset_ids: Iterable[str]) -> list[str]:
        with self._lock:
            return [i for i in asset_ids if i.lower() not in self._assets]

    def search(self, text: str) -> list[dict[str, Any]]:
        """Libraries whose desc contains `text` (case-insensitive), by name then id."""
        needle = text.casefold()
        with self._lock:
            hits = [lib for lib in self._libraries.values() if needle in lib.desc.casefold()]
            return [lib.to_api() for lib in sorted(hits, key=lambda lib: (lib.desc, lib.id))]

    def lookup(self, asset_ids: Iterable[str]) -> list[dict[str, Any]]:
        """v2 asset objects for the known ids among `asset_ids` (unknown ones are skipped)."""
        out = []
        with self._lock:
            for raw in dict.fromkeys(asset_ids):
                asset = self._assets.get(raw.lower())
                if asset is None:
                    continue
                holders = sorted(
                    lib.id for lib in self._libraries.values() if asset.id in lib.assets
                )
                out.append(
                    {
                        "id": asset.id,
                        "desc": asset.desc,
                        "external_id": asset.external_id,
                        "duration": asset.duration,
                        "libraries": holders,
                    }
                )
        return out

    # ------------------------------------------------------------- changing

    def add_to_library(self, library_id: str, asset_ids: Iterable[str]) -> dict[str, Any]:
        """Add (idempotently) and return the Library object."""
        with self._lock:
            lib = self._libraries[library_id.lower()]
            lib.assets.update(i.lower() for i in asset_ids)
            return lib.to_api()

    def remove_from_library(
        self, library_id: str, asset_ids: Iterable[str]
    ) -> tuple[dict[str, Any], int]:
        """Remove the given ids; return the Library object and how many were removed."""
        with self._lock:
            lib = self._libraries[library_id.lower()]
            wanted = {i.lower() for i in asset_ids}
            removed = len(lib.assets & wanted)
            lib.assets -= wanted
            return lib.to_api(), removed
