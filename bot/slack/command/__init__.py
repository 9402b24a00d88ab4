"""The /addtolib command and its buttons (docs/SPEC.md §2, §3): plan, confirm, run, undo."""
