"""Approvals (docs/SPEC.md §7): the two-person rule, its storage and what it answers."""
