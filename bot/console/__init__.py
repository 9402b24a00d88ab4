"""`python -m bot console`: a terminal that plays Slack for the bot (see main.py)."""
