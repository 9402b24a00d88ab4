"""Delivery (SPEC 12): the outbox of Slack calls owed, without Slack."""
