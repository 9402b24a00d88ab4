"""/metrics with several web processes (SPEC 16): prometheus_client's multiprocess mode."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Callable
from pathlib import Path

import requests
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures_bot import MARKETING, Bot, free_assets
from tests.ops_support import wait_until

ACKS = "addtolib_ack_seconds_count"


def value(text: str, name: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and not sample.labels:
                return sample.value
    raise AssertionError(f"{name} not in /metrics")


def scrape(bot: Bot, name: str) -> float:
    # A new connection each time: whichever process accepts it answers.
    response = requests.get(bot.process.url + "/metrics", timeout=5)
    assert response.status_code == 200
    return value(response.text, name)


def web_processes(bot: Bot) -> list[int]:
    pid = bot.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return sorted(int(child) for child in children)


def acks_of(folder: Path, pid: int, scratch: Path) -> float:
    """One process's own acknowledgement count, from its file alone (the collector's path)."""
    scratch.mkdir(exist_ok=True)
    for old in scratch.iterdir():
        old.unlink()
    source = folder / f"histogram_{pid}.db"
    if not source.exists():
        return 0
    shutil.copy(source, scratch)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(scratch))
    return registry.get_sample_value(ACKS) or 0


def test_two_web_processes_report_the_same_aggregated_counter(
    start_bot: Callable[..., Bot], tmp_path: Path
) -> None:
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_999999.db").write_bytes(b"stale")  # a previous run's: emptied at start
    bot = start_bot(procfile=True, WEB_CONCURRENCY="2", PROMETHEUS_MULTIPROC_DIR=str(folder))
    assert not (folder / "counter_999999.db").exists()
    wait_until(lambda: len(web_processes(bot)) == 2)
    first, second = web_processes(bot)
    sent = 0

    def both_answered() -> bool:
        nonlocal sent
        assert bot.command("help")[0].status_code == 200  # each on a new connection
        sent += 1
        own = [acks_of(folder, pid, tmp_path / "one") for pid in (first, second)]
        return all(own) and sum(own) == sent

    wait_until(both_answered, timeout=20)  # both processes counted some of them
    assert {scrape(bot, ACKS) for _ in range(20)} == {sent}


def test_a_replaced_web_process_leaves_no_live_gauge_behind(
    start_bot: Callable[..., Bot], tmp_path: Path
) -> None:
    folder = tmp_path / "metrics"
    bot = start_bot(procfile=True, WEB_CONCURRENCY="2", PROMETHEUS_MULTIPROC_DIR=str(folder))
    wait_until(lambda: len(web_processes(bot)) == 2)
    old = web_processes(bot)
    bot.simulator.faults.set_latency("add", 60)  # the job stays running
    _, operation_id = bot.preview(f"{MARKETING} {free_assets(bot.simulator, MARKETING, 1)[0]}")
    bot.click("addtolib_confirm", operation_id)
    wait_until(lambda: scrape(bot, "addtolib_jobs_running") == 1)
    # A process writes its live-gauge file when it first touches a live gauge: the one running
    # the job has, the other may not have yet (it depends on which process took which request).
    before = {f.name for f in folder.iterdir()}
    assert any(f"gauge_livesum_{pid}.db" in before for pid in old), before

    for pid in old:  # a crash, not a stop: nothing of theirs runs at exit
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: len(set(web_processes(bot)) - set(old)) == 2)
    wait_until(lambda: requests.get(bot.process.url + "/healthz", timeout=5).ok)
    assert scrape(bot, "addtolib_jobs_running") == 0  # the dead one's 1 went with it
    left = {f.name for f in folder.iterdir()}
    assert not any(f"gauge_livesum_{pid}.db" in left for pid in old), left
    assert any(f"counter_{pid}.db" in left for pid in old)  # counters keep their counts
