"""Scheduled adds in Slack (docs/SPEC.md §15)."""
