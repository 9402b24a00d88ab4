"""Plain, Slack-free logic: command parsing, permission policy, operation store, workflow."""
