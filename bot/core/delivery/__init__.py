"""Delivery (docs/SPEC.md §12): the outbox of Slack calls owed, without Slack."""
