"""Scheduled adds (docs/SPEC.md §15): the time grammar, time zones, the due-run store and loop."""
