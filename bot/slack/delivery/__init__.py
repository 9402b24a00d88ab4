"""Delivery (docs/SPEC.md §12): what each event owes Slack, its rendering, pacing, the worker."""
