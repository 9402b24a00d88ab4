"""UplynkClient: signed, retried, time-limited calls to the Uplynk API, with batching."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ProtocolError
from urllib3.util.retry import Retry

from bot import metrics
from bot.uplynk.errors import (
    UplynkError,
    UplynkForbidden,
    UplynkNotFound,
    UplynkRateLimited,
    UplynkTimeout,
    UplynkUnauthorized,
    UplynkUnavailable,
    error_for_status,
    error_for_v2,
)
from bot.uplynk.limiter import AdaptiveLimit
from bot.uplynk.models import Asset, BatchResult, BulkResult, Library
from bot.uplynk.signing import sign

log = logging.getLogger("bot.uplynk")

LOOKUP_BATCH = 1000
RETRY_STATUSES = (429, 502, 503, 504)
# Errors after which the remaining batches would fail the same way: stop sending them.
STOPPING_ERRORS = (UplynkNotFound, UplynkUnauthorized, UplynkForbidden)

OnBatch = Callable[[BatchResult, int, int], None]
# before_batch(number, ids): called just before a batch is sent (number counts from 1).
BeforeBatch = Callable[[int, list[str]], None]
# Statuses that say Uplynk is overloaded: the adaptive limit halves when one is seen.
OVERLOAD_STATUSES = frozenset({429, 500, 502, 503, 504})

_SECRET_QUERY = re.compile(r"(?i)\b(sig|msg)=[^&\s'\"]*")


# Per thread: who wants to hear of a Retry-After before urllib3 sleeps on it (the adaptive
# limit of the batch this thread is sending, so that other batches hold back too).
_retry_after_listener = threading.local()


class _CappedRetry(Retry):
    """urllib3 Retry whose Retry-After wait never exceeds backoff_max."""

    def parse_retry_after(self, retry_after: str) -> float:
        seconds = min(super().parse_retry_after(retry_after), self.backoff_max)
        listener = getattr(_retry_after_listener, "pause", None)
        if listener is not None:
            listener(seconds)
        return seconds


class _RedactQuery(logging.Filter):
    """Scrub msg=/sig= from urllib3's own debug lines (they log full URLs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:
            return True
        if "sig=" in text or "msg=" in text:
            record.msg = _SECRET_QUERY.sub(r"\1=[redacted]", text)
            record.args = None
        return True


def _install_urllib3_redaction() -> None:
    for name in ("urllib3.connectionpool", "urllib3.util.retry", "urllib3.connection"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactQuery) for f in logger.filters):
            logger.addFilter(_RedactQuery())


_install_urllib3_redaction()


def _seconds(value: float) -> str:
    return f"{value:g} s"


def _chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _unique(ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def _call_name(method: str, path: str) -> str:
    """A metric label per kind of call (never an id: labels must stay few)."""
    if path.startswith("/api2/asset/get"):
        return "get_assets"
    if path.endswith("/assets"):
        return {"PATCH": "add_assets", "DELETE": "remove_assets"}.get(method, method.lower())
    if path == "/api/v4/libraries":
        return "find_libraries"
    if path.startswith("/api/v4/libraries/"):
        return "get_library"
    return f"{method.lower()} other"


class UplynkClient:
    """A thread-safe client for the Uplynk calls of docs/SPEC.md §1."""

    def __init__(
        self,
        base_url: str,
        user_id: str,
        api_key: str,
        batch_size: int = 100,
        timeout: tuple[float, float] = (3.05, 30.0),
        max_retries: int = 4,
        backoff_factor: float = 0.5,
        backoff_max: float = 8.0,
        concurrency: int = 1,
        pool_size: int = 32,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.concurrency = concurrency
        # The lowest adaptive limit a job reached (for logs and tests); None before any job.
        self.last_limit: AdaptiveLimit | None = None
        self.base_url = base_url.rstrip("/")
        self.user_id = user_id
        self._api_key = api_key
        self.batch_size = batch_size
        self.timeout = timeout
        self.max_retries = max_retries
        retry = _CappedRetry(
            total=max_retries,
            connect=max_retries,
            read=False,
            status=max_retries,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=None,
            backoff_factor=backoff_factor,
            backoff_max=backoff_max,
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        self._session = requests.Session()
        # pool_size: kept-alive connections; a request beyond it opens (and then drops) a new
        # one, which for real Uplynk is a fresh TLS handshake and a urllib3 warning each time.
        adapter = HTTPAdapter(max_retries=retry, pool_connections=4, pool_maxsize=pool_size)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers.update({"Accept": "application/json", "User-Agent": "addtolib"})

    @classmethod
    def from_settings(cls, settings: Any) -> UplynkClient:
        """Build from bot.config.Settings; ConfigError when the Uplynk credentials are missing."""
        from bot.config import ENV_NAMES, ConfigError

        for name in ("uplynk_user_id", "uplynk_api_key"):
            if not getattr(settings, name):
                raise ConfigError(f"missing required environment variable {ENV_NAMES[name]}")
        return cls(
            settings.uplynk_api_url,
            settings.uplynk_user_id,
            settings.uplynk_api_key,
            batch_size=settings.uplynk_batch_size,
            concurrency=settings.uplynk_concurrency,
            timeout=(3.05, settings.uplynk_timeout),
            backoff_factor=settings.uplynk_backoff,
            # Every job thread may have its batches (or its preview's two look-ups) in flight
            # at once, and the modal's threads theirs (bot.slack.wiring.UI_THREADS).
            pool_size=settings.workers * max(settings.uplynk_concurrency, 2) + 32,
        )

    def __repr__(self) -> str:
        return f"UplynkClient({self.base_url!r}, user_id={self.user_id!r})"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> UplynkClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- calls

    def get_library(self, library_id: str) -> Library:
        """GET /api/v4/libraries/{id}."""
        body = self._request("GET", f"/api/v4/libraries/{quote(library_id, safe='')}")
        return Library.from_api(body)

    def find_libraries(
        self, search: str, page_size: int = 100, max_pages: int = 10
    ) -> list[Library]:
        """Libraries whose name contains `search`, following pages up to `max_pages`."""
        found: list[Library] = []
        for page in range(1, max_pages + 1):
            body = self._request(
                "GET",
                "/api/v4/libraries",
                query={"search": search, "page": page, "page_size": page_size},
            )
            items = body.get("items") or []
            found.extend(Library.from_api(item) for item in items if isinstance(item, dict))
            total = body.get("total_items")
            if not items or (isinstance(total, int) and len(found) >= total):
                break
        return found

    def get_assets(self, asset_ids: Iterable[str]) -> dict[str, Asset]:
        """Look assets up, 1000 ids a call (several at once with concurrency > 1); ids Uplynk
        does not know are absent."""

        def look_up(chunk: list[str]) -> dict[str, Any]:
            return self._request("GET", "/api2/asset/get", v2_params={"ids": chunk}, what="asset")

        chunks = list(_chunks(_unique(asset_ids), LOOKUP_BATCH))
        if self.concurrency > 1 and len(chunks) > 1:
            # Up to `concurrency` look-ups at once (a 10,000-asset read-back is 10 calls).
            workers = min(self.concurrency, len(chunks))
            with ThreadPoolExecutor(workers, thread_name_prefix="uplynk-lookup") as pool:
                bodies = list(pool.map(look_up, chunks))
        else:
            bodies = [look_up(chunk) for chunk in chunks]
        found: dict[str, Asset] = {}
        for body in bodies:
            for item in body.get("assets") or []:
                if isinstance(item, dict) and item.get("id"):
                    asset = Asset.from_api(item)
                    found[asset.id] = asset
        return found

    def add_assets(
        self,
        library_id: str,
        asset_ids: Iterable[str],
        on_batch: OnBatch | None = None,
        *,
        before_batch: BeforeBatch | None = None,
    ) -> BulkResult:
        """Add assets in batches: {"asset_id"} for one, {"asset_ids"} for several.

        Up to ``concurrency`` batches are in flight at once (an adaptive limit, see
        AdaptiveLimit); ``on_batch`` is then called as batches finish, in any order.
        """
        path = f"/api/v4/libraries/{quote(library_id, safe='')}/assets"

        def send(batch: list[str]) -> dict[str, Any]:
            body: dict[str, Any] = (
                {"asset_id": batch[0]} if len(batch) == 1 else {"asset_ids": batch}
            )
            return self._request("PATCH", path, json_body=body)

        ids = _unique(asset_ids)
        if self.concurrency > 1:
            return self._bulk_concurrent(ids, send, on_batch, before_batch)
        return self._bulk(ids, send, on_batch, before_batch)

    def remove_assets(
        self, library_id: str, asset_ids: Iterable[str], on_batch: OnBatch | None = None
    ) -> BulkResult:
        """Remove assets in batches: DELETE ...?ids=a,b."""
        path = f"/api/v4/libraries/{quote(library_id, safe='')}/assets"

        def send(batch: list[str]) -> dict[str, Any]:
            return self._request("DELETE", path, query={"ids": ",".join(batch)})

        return self._bulk(_unique(asset_ids), send, on_batch)

    # -------------------------------------------------------------- plumbing

    def _bulk(
        self,
        ids: list[str],
        send: Callable[[list[str]], dict[str, Any]],
        on_batch: OnBatch | None,
        before_batch: BeforeBatch | None = None,
    ) -> BulkResult:
        result = BulkResult()
        stopped: UplynkError | None = None
        done = 0
        for number, batch in enumerate(_chunks(ids, self.batch_size), start=1):
            if stopped is not None:
                outcome = BatchResult(batch, None, stopped)
            else:
                outcome = self._send_batch(number, batch, send, before_batch)
                if isinstance(outcome.error, STOPPING_ERRORS):
                    stopped = outcome.error
            result.batches.append(outcome)
            done += len(batch)
            _report(on_batch, outcome, done, len(ids))
        return result

    def _bulk_concurrent(
        self,
        ids: list[str],
        send: Callable[[list[str]], dict[str, Any]],
        on_batch: OnBatch | None,
        before_batch: BeforeBatch | None,
    ) -> BulkResult:
        """_bulk with several batches in flight under an adaptive limit."""
        limit = self.last_limit = AdaptiveLimit(
            self.concurrency, on_change=metrics.uplynk_limit_changed
        )
        batches = list(_chunks(ids, self.batch_size))
        outcomes: list[BatchResult | None] = [None] * len(batches)
        lock = threading.Lock()
        state: dict[str, Any] = {"done": 0, "stopped": None}

        def run(index: int, batch: list[str]) -> None:
            _retry_after_listener.pause = limit.pause
            overloaded = True
            try:
                outcome = self._send_batch(index + 1, batch, send, before_batch)
                overloaded = outcome.overloaded
            finally:
                _retry_after_listener.pause = None
                limit.release(overloaded=overloaded)
            finish(index, outcome)

        def finish(index: int, outcome: BatchResult) -> None:
            with lock:
                outcomes[index] = outcome
                if isinstance(outcome.error, STOPPING_ERRORS) and state["stopped"] is None:
                    state["stopped"] = outcome.error
                state["done"] += len(outcome.ids)
                _report(on_batch, outcome, state["done"], len(ids))

        futures = []
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="uplynk-batch") as pool:
            for index, batch in enumerate(batches):
                limit.acquire()
                with lock:
                    stopped = state["stopped"]
                if stopped is not None:
                    limit.release(overloaded=False)
                    finish(index, BatchResult(batch, None, stopped))
                    continue
                futures.append(pool.submit(run, index, batch))
        for future in futures:
            future.result()  # a callback's crash (e.g. the journal's write) is not swallowed
        return BulkResult([o for o in outcomes if o is not None])

    def _send_batch(
        self,
        number: int,
        batch: list[str],
        send: Callable[[list[str]], dict[str, Any]],
        before_batch: BeforeBatch | None,
    ) -> BatchResult:
        if before_batch is not None:
            before_batch(number, batch)
        _last_overload.seen = False
        try:
            outcome = BatchResult(batch, Library.from_api(send(batch)), None)
        except UplynkError as exc:
            outcome = BatchResult(batch, None, exc)
            outcome.overloaded = isinstance(exc, UplynkRateLimited | UplynkUnavailable)
            return outcome
        outcome.overloaded = bool(getattr(_last_overload, "seen", False))
        return outcome

    def _request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        json_body: Any = None,
        v2_params: dict[str, Any] | None = None,
        what: str = "library",
    ) -> dict[str, Any]:
        params = {**(query or {}), **sign(v2_params or {}, self.user_id, self._api_key)}
        started = time.monotonic()
        status = "unreachable"
        try:
            code, body = self._send(method, path, params, json_body, started, what)
            status = str(code)
            return body
        except UplynkTimeout:
            status = "timeout"
            raise
        except UplynkError as exc:
            status = str(exc.status) if exc.status else status
            raise
        finally:
            metrics.uplynk_call(_call_name(method, path), status, time.monotonic() - started)

    def _send(
        self,
        method: str,
        path: str,
        params: dict[str, Any],
        json_body: Any,
        started: float,
        what: str,
    ) -> tuple[int, dict[str, Any]]:
        try:
            response = self._session.request(
                method,
                self.base_url + path,
                params=params,
                json=json_body,
                timeout=self.timeout,
            )
        except requests.exceptions.ConnectTimeout:
            error: UplynkError = UplynkTimeout(
                f"Uplynk did not accept a connection within {_seconds(self.timeout[0])}; "
                f"tried {self.max_retries + 1} times"
            )
        except requests.exceptions.Timeout:
            error = UplynkTimeout(f"Uplynk did not answer within {_seconds(self.timeout[1])}")
        except requests.exceptions.RetryError:
            error = UplynkUnavailable(f"Uplynk kept failing; tried {self.max_retries + 1} times")
        except requests.exceptions.ConnectionError as exc:
            # Connection failures are retried; a connection dropped mid-answer is not (the
            # request may have been applied): urllib3 re-raises its ProtocolError at once.
            dropped = bool(exc.args) and isinstance(exc.args[0], ProtocolError)
            tries = "once" if dropped else f"{self.max_retries + 1} times"
            how = "dropped the connection" if dropped else "connection failed"
            error = UplynkUnavailable(f"Could not reach Uplynk ({how}); tried {tries}")
        except requests.exceptions.RequestException as exc:
            error = UplynkUnavailable(f"Could not call Uplynk ({type(exc).__name__})")
        else:
            return response.status_code, self._handle(method, path, response, started, what)
        elapsed = (time.monotonic() - started) * 1000
        log.warning("uplynk %s %s failed after %.0f ms: %s", method, path, elapsed, error)
        raise error

    def _handle(
        self, method: str, path: str, response: requests.Response, started: float, what: str
    ) -> dict[str, Any]:
        elapsed = (time.monotonic() - started) * 1000
        status = response.status_code
        attempts = self._attempts(response)
        level = logging.DEBUG if status < 400 else logging.WARNING
        log.log(
            level,
            "uplynk %s %s -> %d in %.0f ms (%d attempt%s)",
            method,
            path,
            status,
            elapsed,
            attempts,
            "" if attempts == 1 else "s",
        )
        try:
            body = response.json()
        except ValueError:
            body = None
        if status >= 400:
            raise error_for_status(status, body, what=what, attempts=attempts)
        if not isinstance(body, dict):
            raise UplynkError(
                f"Uplynk sent an answer the bot could not read ({status})", status=status
            )
        if path.startswith("/api2/") and body.get("error"):
            raise error_for_v2(body, status=status)
        return body

    def _attempts(self, response: requests.Response) -> int:
        retries = getattr(response.raw, "retries", None)
        history = getattr(retries, "history", None)
        if history is None:
            return 1
        if any(entry.status in OVERLOAD_STATUSES for entry in history):
            _last_overload.seen = True  # a retry got past it, but Uplynk was overloaded
        return len(history) + 1


# Per thread: whether the last request needed a retry because Uplynk was overloaded.
_last_overload = threading.local()


def _report(on_batch: OnBatch | None, outcome: BatchResult, done: int, total: int) -> None:
    if on_batch is None:
        return
    try:
        on_batch(outcome, done, total)
    except Exception:
        log.exception("on_batch callback failed (%d/%d)", done, total)
