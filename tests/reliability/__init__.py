"""Reliability suite (issue 6): retries, concurrency, forgery, fuzzing, chaos and log hygiene."""
