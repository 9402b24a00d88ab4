"""The adaptive concurrency limit: halving, growth, ceiling, pauses and real threads."""

from __future__ import annotations

import threading

from bot.uplynk.limiter import GROW_AFTER, AdaptiveLimit


def test_starts_at_the_ceiling_and_halves_on_overload() -> None:
    changes: list[tuple[int, int]] = []
    limit = AdaptiveLimit(8, on_change=lambda a, b: changes.append((a, b)))
    assert limit.limit == 8
    limit.acquire()
    limit.release(overloaded=True)
    limit.acquire()
    limit.release(overloaded=True)
    assert limit.limit == 2
    assert limit.lowest == 2
    assert changes == [(8, 4), (4, 2)]


def test_never_below_one_and_grows_back_to_the_ceiling_only() -> None:
    limit = AdaptiveLimit(2)
    for _ in range(3):
        limit.acquire()
        limit.release(overloaded=True)
    assert limit.limit == 1
    for _ in range(GROW_AFTER):
        limit.acquire()
        limit.release(overloaded=False)
    assert limit.limit == 2
    for _ in range(GROW_AFTER * 3):
        limit.acquire()
        limit.release(overloaded=False)
    assert limit.limit == 2


def test_an_overload_resets_the_run_of_successes() -> None:
    limit = AdaptiveLimit(4)
    limit.acquire()
    limit.release(overloaded=True)  # 2
    for _ in range(GROW_AFTER - 1):
        limit.acquire()
        limit.release(overloaded=False)
    limit.acquire()
    limit.release(overloaded=True)  # 1, the run of 3 forgotten
    for _ in range(GROW_AFTER - 1):
        limit.acquire()
        limit.release(overloaded=False)
    assert limit.limit == 1


def test_pause_holds_new_batches_until_the_clock_passes_it() -> None:
    now = [100.0]
    limit = AdaptiveLimit(2, clock=lambda: now[0])
    limit.pause(5)
    started = threading.Event()

    def worker() -> None:
        limit.acquire()
        started.set()

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    assert not started.wait(0.3)
    now[0] = 106.0
    with limit._cond:
        limit._cond.notify_all()
    assert started.wait(5)
    thread.join(5)


def test_threads_never_exceed_the_limit() -> None:
    limit = AdaptiveLimit(3)
    seen: list[int] = []
    lock = threading.Lock()
    gate = threading.Barrier(3, timeout=5)

    def worker(i: int) -> None:
        limit.acquire()
        with lock:
            seen.append(limit.in_flight)
        if i < 3:
            gate.wait()  # the first three overlap for sure
        limit.release(overloaded=False)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert max(seen) <= 3
    assert limit.peak_in_flight == 3
    assert limit.in_flight == 0
