"""The thin Slack layer: a Bolt app, its listeners, background jobs and Block Kit messages."""
