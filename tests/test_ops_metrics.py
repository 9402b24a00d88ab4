"""GET /metrics after a real operation, and GET /readyz with the database up and down."""

from __future__ import annotations

import contextlib
import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from bot.config import load_settings
from bot.core.store import normalize_url
from bot.slack.app import build_app
from bot.slack.wiring import build_services
from bot.web import make_threaded_server, make_wsgi_app
from tests.fixtures_bot import MARKETING, Bot, free_assets, stored


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_metrics_count_an_end_to_end_operation(start_bot: Callable[..., Bot]) -> None:
    bot = start_bot(procfile=True)
    assets = free_assets(bot.simulator, MARKETING, 3)
    _, operation_id = bot.preview(f'"Marketing Library" {" ".join(assets)}')
    bot.click("addtolib_confirm", operation_id)
    bot.summary(operation_id)
    bot.slack.wait_until(lambda: stored(bot, operation_id).state == "done")
    response = requests.get(bot.process.url + "/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    found = samples(response.text)
    assert found[("addtolib_operations_total", (("state", "done"),))] >= 1
    assert found[("addtolib_assets_added_total", ())] == 3
    add_calls = ("addtolib_uplynk_calls_total", (("call", "add_assets"), ("status", "200")))
    assert found[add_calls] == 1
    assert found[("addtolib_uplynk_calls_total", (("call", "get_assets"), ("status", "200")))] >= 1
    assert found[("addtolib_uplynk_call_seconds_count", (("call", "add_assets"),))] == 1
    assert found[("addtolib_ack_seconds_count", ())] >= 2  # the command and the click
    assert ("addtolib_jobs_queued", ()) in found and ("addtolib_jobs_running", ()) in found
    assert requests.get(bot.process.url + "/readyz", timeout=5).status_code == 200


class Proxy:
    """A TCP proxy in front of PostgreSQL: closing it is the database going away."""

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        for s in self.sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


@pytest.fixture
def served(bot_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, Callable[[], None]]]:
    """The bot's WSGI app in-process on a database that can be taken down; (url, take_down)."""
    url = normalize_url(bot_env["DATABASE_URL"])
    if url.get_backend_name() == "postgresql":
        proxy = Proxy(url.host or "127.0.0.1", url.port or 5432)
        database = url.set(host="127.0.0.1", port=proxy.port).render_as_string(False)

        def take_down() -> None:
            proxy.close()
    else:
        folder = tmp_path / "db"
        folder.mkdir()
        database = f"sqlite:///{folder / 'addtolib.db'}"

        def take_down() -> None:
            shutil.rmtree(folder)  # the file is gone: nothing can be opened any more

    settings = load_settings(env={**bot_env, "DATABASE_URL": database})
    services = build_services(settings)
    server = make_threaded_server(
        make_wsgi_app(build_app(services), ready=services.not_ready), "127.0.0.1", 0
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def down() -> None:
        take_down()
        services.store.engine.dispose()  # pooled connections went with it

    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", down
    finally:
        server.shutdown()
        server.server_close()
        services.close()


def test_readyz_is_503_when_the_database_is_down(served: tuple[str, Callable[[], None]]) -> None:
    url, take_down = served
    assert requests.get(url + "/readyz", timeout=5).status_code == 200
    take_down()
    response = requests.get(url + "/readyz", timeout=30)
    assert response.status_code == 503
    assert response.json() == {"ok": False, "error": "database_unavailable"}
    assert requests.get(url + "/healthz", timeout=5).status_code == 200  # liveness: still alive
