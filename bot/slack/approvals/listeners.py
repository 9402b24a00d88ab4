"""Bolt listeners for the Approve and Deny buttons: acknowledge, hand the decision to a job."""

from __future__ import annotations

from bot.slack.approvals import jobs
from bot.slack.command.listeners import button

on_approve = button(jobs.approve)
on_deny = button(jobs.deny)
