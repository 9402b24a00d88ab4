"""Saves a running operation's batch progress off the batch loop, then reports it."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait

from bot.core.outcomes import Progress
from bot.core.store import OperationStore

log = logging.getLogger(__name__)


class BatchRecorder:
    """Saves a running operation's progress off the batch loop, then reports it.

    Writing a row that holds 10,000 ids takes tens of milliseconds; done between batches it
    delayed every next batch (a 10,000-asset add took ~1.4x its floor). Saves run on a shared
    pool, one at a time per operation, newest snapshot only (older unsaved ones are skipped),
    and ``progress`` is called after the save, so a user never sees more progress than the
    database holds (crash recovery relies on it). ``close()`` waits for them all.
    """

    def __init__(
        self,
        pool: ThreadPoolExecutor,
        store: OperationStore,
        operation_id: str,
        progress: Progress | None,
        run_token: str | None = None,
    ):
        self._pool = pool
        self._store = store
        self._operation_id = operation_id
        self._progress = progress
        self._run_token = run_token
        #: True once a fenced save found that another run owns the operation.
        self.superseded = False
        self._lock = threading.Lock()  # guards _latest
        self._turn = threading.Lock()  # one save (and report) at a time
        self._latest: tuple[list[str], dict[str, str], int, int] | None = None
        self._total = 0
        self._started = False
        self._futures: list[Future] = []

    def start(self, total: int) -> None:
        self._total = total
        self._futures.append(self._pool.submit(self._save))

    def record(self, added: list[str], outcome: dict[str, str], done: int, total: int) -> None:
        with self._lock:
            self._latest = (list(added), dict(outcome), done, total)
        self._futures.append(self._pool.submit(self._save))

    def close(self) -> None:
        wait(self._futures)

    def _save(self) -> None:
        with self._turn:
            if not self._started:
                self._started = True
                self._report(0, self._total)
            with self._lock:
                latest, self._latest = self._latest, None
            if latest is None:
                return  # nothing new, or a newer snapshot was already saved
            added, outcome, done, total = latest
            try:
                saved = self._store.save(
                    self._operation_id, run_token=self._run_token, added_ids=added, outcome=outcome
                )
            except Exception:
                log.exception("could not save the progress of operation %s", self._operation_id)
                return
            if not saved:
                self.superseded = True
                return
            self._report(done, total)

    def _report(self, done: int, total: int) -> None:
        if self._progress is None:
            return
        try:
            self._progress(done, total)
        except Exception:
            log.exception("progress report failed (%d/%d)", done, total)
