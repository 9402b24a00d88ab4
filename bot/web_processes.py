"""`python -m bot web`: WEB_CONCURRENCY server processes on one socket, each replaced if it dies.

The parent empties the Prometheus multiprocess directory, binds the socket, brings the schema
up to date and forks the children, each serving as `python -m bot serve` does. It forwards
SIGTERM/SIGINT to them and waits while they drain; a child that dies otherwise is replaced.
Every child that exits has its live gauges removed (``mark_process_dead``), as prometheus_client's
multiprocess documentation asks of a child-exit hook.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.config import Settings

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: A child that dies this soon after it started, this many times in a row, is not replaced.
QUICK_EXIT_SECONDS = 5.0
QUICK_EXITS_TO_GIVE_UP = 5


def prepare_metrics_dir() -> str | None:
    """Point PROMETHEUS_MULTIPROC_DIR at an empty directory; returns one made here, to remove.

    Must run before prometheus_client is imported: it picks its value store at import time.
    Children made by fork inherit the variable with the rest of the environment.
    """
    given = os.environ.get(MULTIPROC_ENV, "").strip()
    if not given:
        made = tempfile.mkdtemp(prefix="addtolib-metrics-")
        os.environ[MULTIPROC_ENV] = made
        return made
    folder = Path(given)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):  # a previous run's files would be counted again
        stale.unlink()
    return None


def run(settings: Settings, serve_child: Callable[[list[socket.socket]], None]) -> int:
    """Fork ``settings.web_concurrency`` children running ``serve_child(sockets)``; wait."""
    from prometheus_client import multiprocess  # after prepare_metrics_dir()

    from bot.web import listen

    sockets = listen(port=settings.port)
    children: dict[int, float] = {}  # pid -> when it started
    stopping = False

    def spawn() -> None:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM):
                    signal.signal(sig, signal.SIG_DFL)
                serve_child(sockets)
                code = 0
            except BaseException:
                log.exception("web process %d failed", os.getpid())
            finally:
                logging.shutdown()
                os._exit(code)
        children[pid] = time.monotonic()
        log.info("started web process %d", pid)

    def forward(signum: int, frame: Any) -> None:
        nonlocal stopping
        if not stopping:
            log.info("received signal %d: stopping %d web processes", signum, len(children))
            # Children drain for up to the grace period; one still running after it is killed.
            signal.alarm(settings.grace_seconds + 10)
        stopping = True
        for pid in list(children):
            _signal(pid, signum)

    def kill_stragglers(signum: int, frame: Any) -> None:
        for pid in list(children):
            log.warning("web process %d did not stop in time; killing it", pid)
            _signal(pid, signal.SIGKILL)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGALRM, kill_stragglers)
    for _ in range(settings.web_concurrency):
        spawn()
    quick_exits = 0
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        started = children.pop(pid, None)
        if started is None:
            continue
        multiprocess.mark_process_dead(pid)
        if stopping:
            continue
        log.warning("web process %d exited (status %d); starting another", pid, status)
        quick_exits = quick_exits + 1 if time.monotonic() - started < QUICK_EXIT_SECONDS else 0
        if quick_exits >= QUICK_EXITS_TO_GIVE_UP:
            log.error("web processes keep dying at start-up; giving up")
            forward(signal.SIGTERM, None)
            continue
        spawn()
    for sock in sockets:
        sock.close()
    log.info("stopped")
    return 1 if quick_exits >= QUICK_EXITS_TO_GIVE_UP else 0


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def remove_metrics_dir(made: str | None) -> None:
    if made:
        shutil.rmtree(made, ignore_errors=True)
