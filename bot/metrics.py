"""Prometheus metrics: the metric objects (a leaf module: any layer may import it) and /metrics."""

from __future__ import annotations

import os
import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

OPERATIONS = Counter(
    "addtolib_operations",
    "Operations that reached a final state, by that state",
    ["state"],
)
ASSETS_ADDED = Counter("addtolib_assets_added", "Assets added to a library by an operation")
UPLYNK_CALLS = Counter(
    "addtolib_uplynk_calls",
    "Calls to the Uplynk API, by call and HTTP status (or timeout/unreachable)",
    ["call", "status"],
)
UPLYNK_LATENCY = Histogram(
    "addtolib_uplynk_call_seconds",
    "Uplynk call duration, retries included",
    ["call"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
ACK_LATENCY = Histogram(
    "addtolib_ack_seconds",
    "Time to answer a request from Slack (the acknowledgement)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5),
)
JOBS_QUEUED = Gauge(
    "addtolib_jobs_queued", "Jobs waiting for a worker thread", multiprocess_mode="livesum"
)
JOBS_RUNNING = Gauge(
    "addtolib_jobs_running", "Jobs running on a worker thread", multiprocess_mode="livesum"
)
OUTBOX_DEPTH = Gauge(
    "addtolib_outbox_depth", "Slack messages waiting in the outbox", multiprocess_mode="max"
)
OUTBOX_OLDEST = Gauge(
    "addtolib_outbox_oldest_seconds",
    "Age of the oldest Slack message waiting in the outbox",
    multiprocess_mode="max",
)
UPLYNK_LIMIT_CHANGES = Counter(
    "addtolib_uplynk_concurrency_changes",
    "Changes of the adaptive limit on add batches in flight (lowered on 429/5xx, raised after "
    "a run of successes)",
    ["direction"],
)
UPLYNK_LIMIT = Gauge(
    "addtolib_uplynk_concurrency_limit",
    "The adaptive limit on add batches in flight, as last set",
    multiprocess_mode="max",
)
SCHEDULED = Counter("addtolib_scheduled", "Adds scheduled for a later time (docs/SPEC.md §15)")
SCHEDULE_LATENESS = Histogram(
    "addtolib_schedule_lateness_seconds",
    "How late a scheduled add started (claimed) after its time, by the database's clock",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600),
)
DELIVERIES = Counter(
    "addtolib_slack_deliveries",
    "Outbox deliveries to Slack by result (sent, fallback, retried, ratelimited, skipped, failed, "
    "taken_over)",
    ["result"],
)


def operation_finished(state: str, count: int = 1) -> None:
    """Count operations that reached `state` (a final one)."""
    if count > 0:
        OPERATIONS.labels(state).inc(count)


def outbox_observed(depth: int, oldest_seconds: float) -> None:
    OUTBOX_DEPTH.set(depth)
    OUTBOX_OLDEST.set(oldest_seconds)


def uplynk_limit_changed(before: int, after: int) -> None:
    UPLYNK_LIMIT_CHANGES.labels("lowered" if after < before else "raised").inc()
    UPLYNK_LIMIT.set(after)


def uplynk_call(call: str, status: str, seconds: float) -> None:
    global _last_uplynk
    UPLYNK_CALLS.labels(call, status).inc()
    UPLYNK_LATENCY.labels(call).observe(seconds)
    _last_uplynk = (call, status, time.time())


#: (call, status, unix time) of this process's last Uplynk call, for the admins' App Home.
_last_uplynk: tuple[str, str, float] | None = None


def last_uplynk_call() -> tuple[str, str, float] | None:
    return _last_uplynk


def exposition() -> tuple[bytes, str]:
    """(body, content type) of GET /metrics: this process, or every worker in multiprocess mode."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
