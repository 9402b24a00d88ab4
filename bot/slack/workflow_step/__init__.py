"""The Workflow Builder step (docs/SPEC.md §13)."""
