"""Approvals in Slack (docs/SPEC.md §7): the Approve/Deny buttons, their jobs and messages."""
