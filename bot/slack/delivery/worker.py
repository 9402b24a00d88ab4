"""The delivery worker: takes due outbox entries, paces them per channel, calls Slack."""

from __future__ import annotations

import http.client
import logging
import random
import socket
import threading
import time
import urllib.error
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeGuard

import requests
import urllib3
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import metrics
from bot.core import retention
from bot.core.delivery.outbox import MAX_LOST, Entry, Outbox, Owed
from bot.core.operation import Operation
from bot.slack.delivery.owing import NOTIFY, problem_notice
from bot.slack.delivery.pacing import Pacer
from bot.slack.delivery.rendering import Renderer

log = logging.getLogger(__name__)

#: Slack errors that say "try again later", whatever the HTTP status.
TRANSIENT_ERRORS = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited"}
)
#: A Workflow Builder step's completion answered with these: the execution's own token is
#: no longer good (Slack revokes it); the app's bot token completes it instead (docs/SPEC.md §13).
TOKEN_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "token_expired", "token_revoked", "account_inactive"}
)
#: Slack's answer to completing an execution that is already complete (or unknown): done.
ALREADY_COMPLETED = "function_execution_not_found"
#: Errors after which the summary may still reach its channel through the response_url.
FALLBACK_ERRORS = frozenset({"not_in_channel", "channel_not_found"})
#: The message an entry posts is recorded on the operation under these columns.
RECORDED = {"summary": ("summary_channel", "summary_ts"), NOTIFY: ("notify_channel", "notify_ts")}
#: The reason recorded for an answer lost on the requester's response_url.
RESPONSE_URL_LOST = "answer lost on the response_url"
BACKOFF_BASE = 1.0
BACKOFF_CAP = 30.0
HTTP_TIMEOUT = 10.0  # seconds a Slack call may take (its claim is renewed meanwhile)
STATS_EVERY = 5.0  # seconds between refreshes of the outbox gauges


class Lost(Exception):
    """The request may have reached Slack but its answer did not reach us."""


class NotSent(Exception):
    """The request certainly did not reach Slack (connection refused, name lookup...)."""


class TakenOver(Exception):
    """The claim is no longer ours: another instance delivers the entry; post nothing."""


def delivery_client(token: str | None, base_url: str) -> WebClient:
    """A WebClient without retry handlers: the worker's own pacing and retries decide, and a
    built-in retry of a connection error could post a message twice."""
    client = WebClient(token=token, base_url=base_url, timeout=int(HTTP_TIMEOUT))
    client.retry_handlers = []
    return client


def backoff(attempts: int, base: float = BACKOFF_BASE) -> float:
    """Capped exponential backoff with jitter: 1, 2, 4, ... 30 s (times `base`)."""
    delay = base * min(BACKOFF_CAP, 2 ** max(0, attempts - 1))
    return delay * random.uniform(0.8, 1.2)


class DeliveryWorker:
    """Runs in every serving process; any number of instances share one outbox safely."""

    def __init__(
        self,
        outbox: Outbox,
        client: WebClient,
        render: Renderer,
        *,
        timeout: float = 3600,
        pacer: Pacer | None = None,
        backoff_base: float = BACKOFF_BASE,
        threads: int = 4,
        poll: float = 1.0,
        on_failure: Callable[[Entry, Operation | None, str], list[Owed]] = problem_notice,
        retention_days: float | None = None,
        prune_every: float = 3600.0,
        on_completed: Callable[[str], object] | None = None,
    ):
        self.outbox = outbox
        self.store = outbox.store
        self.client = client
        # response_url posts wait as long as Web API calls.
        self.http_timeout = float(client.timeout or HTTP_TIMEOUT)
        self.render = render
        self.timeout = timeout
        self.pacer = pacer or Pacer()
        self.backoff_base = backoff_base
        self.threads = threads
        self.poll = poll
        self.on_failure = on_failure
        self.retention_days = retention_days  # None: never prune (docs/SPEC.md §16)
        self.prune_every = prune_every
        # A step's completion was taken by Slack: record it (and forget its token).
        self.on_completed = on_completed or (lambda execution_id: None)
        self.results: Counter[str] = Counter()  # deliveries by result, for /metrics
        self._inflight: set[int] = set()  # claimed here (or being claimed), not finished
        self._claims: dict[int, Entry] = {}  # claimed here, being delivered: renewed
        self._finished = 0  # deliveries finished here, so wait_idle notices one in between
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="addtolib-deliver")
        self._thread: threading.Thread | None = None
        self._renewer: threading.Thread | None = None
        self._renewer_stop = threading.Event()
        self._http = requests.Session()
        self._stats_at = 0.0
        self._pruned_at: float | None = None
        self._pruning = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> DeliveryWorker:
        self.store.enqueue_listeners.append(self.wake)
        self._thread = threading.Thread(target=self._run, name="addtolib-delivery", daemon=True)
        self._thread.start()
        self._renewer = threading.Thread(
            target=self._renew_claims, name="addtolib-delivery-claims", daemon=True
        )
        self._renewer.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Claim nothing more; let calls in flight finish (what is queued stays queued)."""
        self._stop.set()
        self._wake.set()
        if self.wake in self.store.enqueue_listeners:
            self.store.enqueue_listeners.remove(self.wake)
        if self._thread is not None:
            self._thread.join(timeout)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._renewer_stop.set()  # after the pool: claims in flight stay renewed to the end
        if self._renewer is not None:
            self._renewer.join(timeout)

    def wake(self) -> None:
        self._wake.set()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until nothing is in flight here and nothing is due (what waits for a backoff
        or another instance does not count); True if so within `timeout`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                busy, finished = bool(self._inflight), self._finished
            if not busy and not self.outbox.candidates(limit=1):
                with self._lock:  # nothing was claimed or finished while we looked
                    if not self._inflight and self._finished == finished:
                        return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    # -- dispatching -----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                wait = self._dispatch()
            except Exception:
                log.exception("delivery: dispatching failed; will try again")
                wait = self.poll
            self._wake.wait(wait)

    def _dispatch(self) -> float:
        """Claim what may go now; returns how long to sleep before looking again."""
        soonest = self.poll
        if self._free() == 0:
            return soonest
        for entry in self.outbox.candidates(limit=200):
            if self._stop.is_set() or self._free() == 0:
                break
            with self._lock:
                if entry.id in self._inflight:
                    continue
            channel = _pace_key(entry)
            wait = self.pacer.wait_time(channel)
            if wait > 0:
                soonest = min(soonest, wait)
                continue
            with self._lock:  # in flight from before the claim: wait_idle never sees a gap
                self._inflight.add(entry.id)
            claimed = self.outbox.claim(entry.id)
            if claimed is None:
                with self._lock:
                    self._inflight.discard(entry.id)
                continue  # another instance took it
            self.pacer.take(channel)
            self._pool.submit(self._deliver, claimed)
        self._prune_if_due()
        if time.monotonic() - self._stats_at >= STATS_EVERY:
            self._stats_at = time.monotonic()
            stats = self.outbox.stats()
            metrics.outbox_observed(stats.depth, stats.oldest_age)
        due = self.outbox.next_due()
        if due is not None:
            soonest = min(soonest, (due - datetime.now(UTC)).total_seconds())
        return max(0.01, soonest)

    def _renew_claims(self) -> None:
        """Renew the claims of the deliveries running here, three times a lease: a slow
        Slack call (or response_url) keeps its entry; another instance never takes it over."""
        every = self.outbox.lease.total_seconds() / 3
        while not self._renewer_stop.wait(every):
            with self._lock:
                held = list(self._claims.values())
            for entry in held:
                try:
                    if not self.outbox.renew(entry):
                        log.warning("outbox entry %s: claim taken over; not posting", entry.id)
                except Exception:  # the database is away: the next round tries again
                    log.exception("could not renew the claim on outbox entry %s", entry.id)

    def _prune_if_due(self) -> None:
        """Retention (docs/SPEC.md §16), every `prune_every` s, on a thread of its own."""
        if self.retention_days is None:
            return
        now = time.monotonic()
        if self._pruned_at is not None and now - self._pruned_at < self.prune_every:
            return
        if not self._pruning.acquire(blocking=False):
            return  # the last prune is still running
        self._pruned_at = now
        threading.Thread(target=self._prune, name="addtolib-prune", daemon=True).start()

    def _prune(self) -> None:
        try:
            retention.prune(self.store, self.retention_days or 0)
        except Exception:
            log.exception("pruning old outbox entries and journal batches failed")
        finally:
            self._pruning.release()

    def _free(self) -> int:
        with self._lock:
            return self.threads - len(self._inflight)

    # -- one delivery ----------------------------------------------------------------------

    def _deliver(self, entry: Entry) -> None:
        called = False
        with self._lock:
            self._claims[entry.id] = entry
        try:
            called = self._attempt(entry)
        except TakenOver:
            log.warning("outbox entry %s: its claim was taken over; posted nothing", entry.id)
            self._count("taken_over")
        except Exception:
            log.exception("delivery of outbox entry %s failed unexpectedly", entry.id)
            try:
                self._retry(entry, "unexpected error (see the logs)")
            except Exception:  # e.g. the database is away: the lease runs out, it is retaken
                log.exception("could not reschedule outbox entry %s", entry.id)
        finally:
            if not called:
                self.pacer.refund(_pace_key(entry))
            with self._lock:
                self._claims.pop(entry.id, None)
                self._inflight.discard(entry.id)
                self._finished += 1
            self.wake()

    def _attempt(self, entry: Entry) -> bool:
        """Deliver one claimed entry; returns whether Slack was called."""
        operation = self.store.get(entry.operation_id) if entry.operation_id else None
        if entry.lost >= MAX_LOST:
            self._fail(entry, operation, "answer lost twice; not posted again (may have landed)")
            return False
        if (
            entry.kind != "update"
            and entry.template == "notify_parent"
            and _has_thread(operation, entry.channel)
        ):
            self.outbox.skipped(entry, "thread already posted")
            self._count("skipped")
            return False
        thread_ts = None
        if entry.thread:
            thread_ts = self._thread_ts(entry, operation)
            if thread_ts is None:
                self._fail(entry, operation, "its thread's parent message was never posted")
                return False
        target = None
        if entry.kind == "update":
            target = self._target(entry, operation)
            if target is None:
                self._fail(entry, operation, f"no posted message {entry.target!r} to update")
                return False
        try:
            message = self.render(entry, operation)
        except Exception as exc:
            log.exception("outbox entry %s could not be rendered", entry.id)
            self._fail(entry, operation, f"could not render: {exc}")
            return False
        if entry.args.get("via_response_url") and self._via_response_url(entry, operation, message):
            return True
        self._fence(entry)
        try:
            answer = self._call(entry, message, thread_ts, target)
        except SlackApiError as exc:
            self._slack_error(entry, operation, message, exc)
        except Lost as exc:
            self._retry(entry, f"answer lost: {exc}", lost=True)
        except NotSent as exc:
            self._retry(entry, f"not reachable: {exc}")
        else:
            if entry.kind == "complete":
                self.on_completed(entry.args.get("execution_id") or "")
            self._sent(entry, answer.get("channel") or entry.channel, answer.get("ts"))
        return True

    def _call(
        self,
        entry: Entry,
        message: dict[str, Any],
        thread_ts: str | None,
        target: tuple[str, str] | None,
    ) -> dict[str, Any]:
        try:
            if entry.kind == "complete":
                return self._complete(message)
            if entry.kind == "home":
                answer = self.client.views_publish(user_id=entry.user_id or "", **message)
            elif entry.kind == "update" and target is not None:
                answer = self.client.chat_update(channel=target[0], ts=target[1], **message)
            elif entry.kind == "ephemeral":
                # Owed gives an ephemeral entry its channel and user ("": Slack refuses it).
                answer = self.client.chat_postEphemeral(
                    channel=entry.channel or "", user=entry.user_id or "", **message
                )
            else:
                extra: dict[str, Any] = {"thread_ts": thread_ts} if thread_ts else {}
                answer = self.client.chat_postMessage(
                    channel=entry.channel or "", **extra, **message
                )
        except SlackApiError:
            raise
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, ConnectionRefusedError | socket.gaierror):
                raise NotSent(str(reason)) from exc
            raise Lost(str(reason)) from exc
        except (TimeoutError, ConnectionError, http.client.HTTPException) as exc:
            raise Lost(type(exc).__name__) from exc
        except ValueError as exc:  # an answer that is not JSON (an HTML error page): not posted
            raise NotSent(f"unreadable answer: {exc}") from exc
        return dict(answer.data) if isinstance(answer.data, dict) else {}

    def _fence(self, entry: Entry) -> None:
        """Before any call that may post: the claim must still be ours (a compare-and-set that
        also marks the call as started); raises TakenOver otherwise."""
        if not self.outbox.calling(entry):
            raise TakenOver(f"outbox entry {entry.id}")

    def _complete(self, message: dict[str, Any]) -> dict[str, Any]:
        """functions.completeSuccess / completeError of a Workflow Builder step, with the
        execution's token while it lives, else (or once Slack refuses it) the bot token."""
        args = dict(message)
        method, token = args.pop("method"), args.pop("token", None)
        clients = [self.client]
        if token:
            clients.insert(0, delivery_client(token, self.client.base_url))
        for i, client in enumerate(clients):
            call = (
                client.functions_completeSuccess
                if method == "functions.completeSuccess"
                else client.functions_completeError
            )
            try:
                answer = call(**args)
            except SlackApiError as exc:
                error = (exc.response.data or {}).get("error") if exc.response else None
                if error == ALREADY_COMPLETED:
                    return {"ok": True, "already": True}
                if error in TOKEN_ERRORS and i + 1 < len(clients):
                    log.info("step completion: the execution's token was refused (%s)", error)
                    continue
                raise
            return dict(answer.data) if isinstance(answer.data, dict) else {}
        return {}  # pragma: no cover - the loop returns or raises

    def _target(self, entry: Entry, operation: Operation | None) -> tuple[str, str] | None:
        """(channel, ts) of the message an update changes: the one its target entry posted
        (the lane delivered that entry first), or the operation's recorded thread parent."""
        if (
            entry.target == NOTIFY
            and operation
            and operation.notify_ts
            and operation.notify_channel  # recorded together with notify_ts (RECORDED)
        ):
            return operation.notify_channel, operation.notify_ts
        return self.outbox.posted(entry.operation_id, entry.target or "")

    def _via_response_url(self, entry: Entry, operation: Operation | None, message: dict) -> bool:
        """Replace the requester's own message on their response_url while it lasts (a
        notice owed by DM otherwise); True if that settled it. A used-up or expired URL, or
        one that could not be reached, leaves the direct message to send.

        An answer lost on the response_url (the notice may have arrived) is never followed by
        the direct message: the notice is repeated on the response_url only, where a repeat
        replaces the message rather than adding one.
        """
        url = operation.response_url if operation else None
        if not url:
            return False
        lost_there = bool(entry.lost) and (entry.error or "").startswith(RESPONSE_URL_LOST)
        if entry.lost and not lost_there:
            return False  # the direct message's answer was lost: repeat that, nothing else
        body = {"response_type": "ephemeral", "replace_original": True, **message}
        self._fence(entry)
        try:
            answer = self._http.post(url, json=body, timeout=self.http_timeout)
        except requests.RequestException as exc:
            if _surely_unsent(exc) and not lost_there:
                log.info(
                    "outbox entry %s: response_url unreachable (%s); direct message", entry.id, exc
                )
                return False
            self._retry(entry, f"{RESPONSE_URL_LOST}: {type(exc).__name__}", lost=True)
            return True
        if answer.status_code != 200 and lost_there:
            reason = (
                f"{RESPONSE_URL_LOST}, then it answered {answer.status_code}; not sent by "
                "direct message as well (the first may have arrived)"
            )
            self._fail(entry, operation, reason)
            return True
        if answer.status_code != 200:
            log.info(
                "outbox entry %s: response_url answered %s; direct message",
                entry.id,
                answer.status_code,
            )
            return False
        self._count("sent")
        self.outbox.sent(entry, None, None)
        return True

    def _thread_ts(self, entry: Entry, operation: Operation | None) -> str | None:
        if entry.thread == NOTIFY and _has_thread(operation, entry.channel):
            return operation.notify_ts
        posted = self.outbox.posted(entry.operation_id, entry.thread or "")
        return posted[1] if posted and posted[0] == entry.channel else None

    def _slack_error(
        self, entry: Entry, operation: Operation | None, message: dict, exc: SlackApiError
    ) -> None:
        response = exc.response
        status = getattr(response, "status_code", None) or 200
        data = response.data if isinstance(getattr(response, "data", None), dict) else {}
        error = data.get("error") or f"HTTP {status}"
        if status == 429:
            wait = _retry_after(response)
            self.pacer.hold(_pace_key(entry), wait)
            self._count("ratelimited")
            self.outbox.retry_later(entry, wait, "ratelimited", deadline=self.timeout)
        elif status >= 500 or error in TRANSIENT_ERRORS:
            self._retry(entry, f"{error} (HTTP {status})")
        elif error in FALLBACK_ERRORS and entry.fallback_url:
            self._fallback(entry, operation, message, error)
        else:
            self._fail(entry, operation, error)

    def _fallback(
        self, entry: Entry, operation: Operation | None, message: dict, error: str
    ) -> None:
        """Not in the channel: post through the command's response_url (docs/SPEC.md §12)."""
        body = {"response_type": "in_channel", "replace_original": False, **message}
        assert entry.fallback_url is not None  # _slack_error falls back only with one
        self._fence(entry)
        try:
            answer = self._http.post(entry.fallback_url, json=body, timeout=self.http_timeout)
        except requests.RequestException as exc:
            if _surely_unsent(exc):
                self._retry(entry, f"{error}; response_url unreachable: {type(exc).__name__}")
            else:
                self._retry(entry, f"{error}; response_url answer lost", lost=True)
            return
        if answer.status_code == 200:
            log.info("outbox entry %s: %s, delivered through the response_url", entry.id, error)
            self._count("fallback")
            self.outbox.sent(entry, None, None)
        elif answer.status_code >= 500:
            self._retry(entry, f"{error}; response_url HTTP {answer.status_code}")
        else:
            self._fail(entry, operation, f"{error}; response_url refused it ({answer.text[:100]})")

    # -- outcomes --------------------------------------------------------------------------

    def _sent(self, entry: Entry, channel: str | None, ts: str | None) -> None:
        columns = RECORDED.get(entry.key or "")
        fields = dict(zip(columns, (channel, ts), strict=True)) if columns and ts else None
        if not self.outbox.sent(entry, channel, ts, fields):
            log.warning("outbox entry %s: delivered, but its claim had been taken over", entry.id)
        self._count("sent")

    def _retry(self, entry: Entry, reason: str, *, lost: bool = False) -> None:
        state = self.outbox.retry_later(
            entry,
            backoff(entry.attempts, self.backoff_base),
            reason,
            lost=lost,
            deadline=self.timeout,
        )
        if state == "failed":
            self._count("failed")
            log.warning("gave up on outbox entry %s (%s): %s", entry.id, entry.template, reason)
        else:
            self._count("retried")
            log.info("outbox entry %s (%s) will be retried: %s", entry.id, entry.template, reason)

    def _fail(self, entry: Entry, operation: Operation | None, reason: str) -> None:
        log.warning(
            "could not deliver %s for operation %s to %s: %s",
            entry.template,
            entry.operation_id,
            entry.channel or entry.user_id,
            reason,
        )
        self.outbox.failed(entry, reason, then=self.on_failure(entry, operation, reason))
        self._count("failed")

    def _count(self, result: str) -> None:
        with self._lock:
            self.results[result] += 1
        metrics.DELIVERIES.labels(result).inc()


def _surely_unsent(exc: requests.RequestException) -> bool:
    """Connecting failed (refused, no such host, connect timeout): nothing reached the far end.
    Any other failure (a read timeout, a dropped connection) may follow a delivered request."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if not isinstance(exc, requests.ConnectionError):
        return False
    reason = getattr(exc.args[0] if exc.args else None, "reason", None)
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


def _has_thread(operation: Operation | None, channel: str | None) -> TypeGuard[Operation]:
    return bool(operation and operation.notify_ts and operation.notify_channel == channel)


def _pace_key(entry: Entry) -> str:
    # An update that names no channel is paced on its own (its channel is known only later).
    return entry.channel or entry.user_id or f"{entry.kind}:{entry.operation_id}"


def _retry_after(response: Any) -> float:
    headers = getattr(response, "headers", None) or {}
    for name in ("Retry-After", "retry-after"):
        value = headers.get(name)
        if isinstance(value, list):
            value = value[0] if value else None
        if value:
            try:
                return max(0.0, float(value))
            except ValueError:
                break
    return 1.0
