"""The Uplynk emulator: real HTTP, in-memory catalogue, latency and failure injection."""

from bot.simulator.catalogue import DEMO_ASSET_IDS, DEMO_LIBRARY_IDS, Catalogue
from bot.simulator.faults import Faults
from bot.simulator.server import RecordedRequest, UplynkSimulator, main

__all__ = [
    "DEMO_ASSET_IDS",
    "DEMO_LIBRARY_IDS",
    "Catalogue",
    "Faults",
    "RecordedRequest",
    "UplynkSimulator",
    "main",
]
