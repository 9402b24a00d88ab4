"""gunicorn settings for `gunicorn bot.wsgi:app` (the Procfile's web process)."""

import os

bind = f"0.0.0.0:{os.environ.get('PORT', '3000')}"
# Threads, not processes, carry concurrency: listeners acknowledge at once and the slow
# Uplynk work runs on the bot's own pool, so one worker with threads keeps memory low.
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
# gthread, except that the poller reads each request whole before a thread runs it, and drops
# a connection that has not sent one within 10 s: stalled clients cannot take the threads.
worker_class = "bot.gunicorn_worker.PrereadThreadWorker"
threads = int(os.environ.get("GUNICORN_THREADS", "16"))
timeout = 60
# SIGTERM: running operations stop after their current batch, within this grace period.
graceful_timeout = int(os.environ.get("ADDTOLIB_GRACE_SECONDS") or "30")  # blank: default
accesslog = None
