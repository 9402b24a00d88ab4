"""UplynkClient against the simulator over real HTTP: calls, batching, retries, typed errors."""

from __future__ import annotations

import logging
import re
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.config import ConfigError, Settings
from bot.simulator import DEMO_ASSET_IDS, DEMO_LIBRARY_IDS
from bot.uplynk import (
    Asset,
    Library,
    UplynkBadRequest,
    UplynkClient,
    UplynkError,
    UplynkForbidden,
    UplynkNotFound,
    UplynkRateLimited,
    UplynkTimeout,
    UplynkUnauthorized,
    UplynkUnavailable,
)
from bot.uplynk.errors import error_for_v2
from tests.bot_process import free_port
from tests.fixtures_uplynk import make_client

MARKETING = DEMO_LIBRARY_IDS["Marketing Library"]
A1, A2 = DEMO_ASSET_IDS[0], DEMO_ASSET_IDS[1]
UNKNOWN_LIBRARY = "0" * 32


def api_calls(sim, call):
    return [r for r in sim.requests if r.call == call]


def make_assets(sim, count, prefix="Bulk clip"):
    return [sim.catalogue.add_asset(f"{prefix} {n:03d}").id for n in range(count)]


# ----------------------------------------------------------------- happy paths


def test_add_one_asset_sends_asset_id_only(simulator, uplynk_client):
    result = uplynk_client.add_assets(MARKETING, [A1])
    assert result.ok and result.succeeded_ids == [A1]
    assert A1 in simulator.catalogue.library_assets(MARKETING)
    (request,) = api_calls(simulator, "add")
    assert request.method == "PATCH"
    assert request.path == f"/api/v4/libraries/{MARKETING}/assets"
    assert request.body == {"asset_id": A1}
    assert "msg" not in request.query and "sig" not in request.query
    library = result.last_library
    assert library.id == MARKETING and library.desc == "Marketing Library"
    assert library.asset_count == len(simulator.catalogue.library_assets(MARKETING))


def test_add_several_assets_sends_asset_ids_only(simulator, uplynk_client):
    result = uplynk_client.add_assets(MARKETING, [A1, A2])
    assert result.ok
    (request,) = api_calls(simulator, "add")
    assert request.body == {"asset_ids": [A1, A2]}
    assert {A1, A2} <= simulator.catalogue.library_assets(MARKETING)


def test_250_ids_go_in_three_batches_of_at_most_100(simulator, uplynk_client):
    ids = make_assets(simulator, 250)
    progress = []
    result = uplynk_client.add_assets(
        MARKETING, ids, on_batch=lambda batch, done, total: progress.append((done, total))
    )
    assert result.ok and result.succeeded_ids == ids and result.failed_ids == []
    bodies = [r.body for r in api_calls(simulator, "add")]
    assert [len(b["asset_ids"]) for b in bodies] == [100, 100, 50]
    assert all("asset_id" not in b for b in bodies)
    assert progress == [(100, 250), (200, 250), (250, 250)]
    assert set(ids) <= simulator.catalogue.library_assets(MARKETING)


def test_a_last_batch_of_one_uses_asset_id(simulator):
    client = make_client(simulator, batch_size=2)
    client.add_assets(MARKETING, DEMO_ASSET_IDS[:3])
    bodies = [r.body for r in api_calls(simulator, "add")]
    assert bodies == [{"asset_ids": DEMO_ASSET_IDS[:2]}, {"asset_id": DEMO_ASSET_IDS[2]}]


def test_remove_assets_in_batches(simulator):
    client = make_client(simulator, batch_size=2)
    client.add_assets(MARKETING, [A1, A2, DEMO_ASSET_IDS[5]])
    result = client.remove_assets(MARKETING, [A1, A2, DEMO_ASSET_IDS[5]])
    assert result.ok
    removes = api_calls(simulator, "remove")
    assert [r.method for r in removes] == ["DELETE", "DELETE"]
    assert [r.query["ids"] for r in removes] == [f"{A1},{A2}", DEMO_ASSET_IDS[5]]
    assert not {A1, A2, DEMO_ASSET_IDS[5]} & simulator.catalogue.library_assets(MARKETING)
    assert result.last_library.id == MARKETING


def test_get_library(uplynk_client):
    library = uplynk_client.get_library(MARKETING)
    assert library == Library(
        id=MARKETING,
        desc="Marketing Library",
        allow_copy=True,
        is_ad=False,
        created="2023-03-14T09:26:53Z",
        owner_name="Demo Media Group",
        library_type="standard",
        asset_count=library.asset_count,
    )
    assert library.asset_count >= 1


def test_find_libraries_by_name_follows_pages(simulator, uplynk_client):
    found = uplynk_client.find_libraries("MARKETING", page_size=1)
    assert [lib.desc for lib in found] == ["Marketing Library", "Marketing Library Archive"]
    pages = api_calls(simulator, "find_libraries")
    assert [(r.query["page"], r.query["page_size"]) for r in pages] == [("1", "1"), ("2", "1")]
    assert all(r.query["search"] == "MARKETING" for r in pages)


def test_find_libraries_stops_at_max_pages(simulator, uplynk_client):
    for n in range(7):
        simulator.catalogue.add_library(f"Promo Library {n}")
    found = uplynk_client.find_libraries("promo library", page_size=2, max_pages=2)
    assert len(found) == 4
    assert len(api_calls(simulator, "find_libraries")) == 2


def test_find_libraries_with_no_match(uplynk_client):
    assert uplynk_client.find_libraries("no such library") == []


def test_get_assets_with_their_libraries(simulator, uplynk_client):
    held = DEMO_ASSET_IDS[2]  # "Summer Sale Teaser", seeded into the Marketing Library
    missing = "f" * 32
    assets = uplynk_client.get_assets([A1, held, missing])
    assert set(assets) == {A1, held}
    assert assets[held].libraries == frozenset({MARKETING})
    assert assets[A1].libraries == frozenset()
    assert assets[held].desc == "Summer Sale Teaser"
    assert assets[held].external_id == "PROMO-2024-003"
    (request,) = api_calls(simulator, "get_assets")
    assert request.path == "/api2/asset/get" and request.query == {}
    assert request.params == {"ids": [A1, held, missing]}  # inside msg, v2 style


def test_get_assets_asks_1000_ids_a_call(simulator, uplynk_client):
    ids = [f"{n:032x}" for n in range(1500)]
    assert uplynk_client.get_assets(ids) == {}
    calls = api_calls(simulator, "get_assets")
    assert [len(r.params["ids"]) for r in calls] == [1000, 500]


# ---------------------------------------------------------------------- errors


def test_unknown_library_is_not_found_and_stops_the_remaining_batches(simulator):
    client = make_client(simulator, batch_size=2)
    seen = []
    result = client.add_assets(
        UNKNOWN_LIBRARY, DEMO_ASSET_IDS[:5], on_batch=lambda b, d, t: seen.append((d, t))
    )
    assert not result.ok
    assert result.failed_ids == DEMO_ASSET_IDS[:5] and result.succeeded_ids == []
    assert len(api_calls(simulator, "add")) == 1  # the other batches were not sent
    assert all(isinstance(b.error, UplynkNotFound) for b in result.batches)
    assert len(result.errors) == 1
    assert str(result.errors[0]) == "Uplynk could not find that library (404)"
    assert seen == [(2, 5), (4, 5), (5, 5)]
    with pytest.raises(UplynkNotFound) as info:
        client.get_library(UNKNOWN_LIBRARY)
    assert info.value.status == 404 and info.value.code == "not_found"


def test_unknown_asset_is_a_bad_request_naming_it(simulator, uplynk_client):
    bogus = "abcdef12" * 4
    result = uplynk_client.add_assets(MARKETING, [A1, bogus])
    (error,) = result.errors
    assert isinstance(error, UplynkBadRequest)
    assert error.status == 400 and bogus in error.user_message
    assert A1 not in simulator.catalogue.library_assets(MARKETING)


def test_a_failed_batch_does_not_stop_the_next_ones(simulator):
    client = make_client(simulator, batch_size=2)
    simulator.faults.fail("add", 500, times=1)  # 500 is not retried
    result = client.add_assets(MARKETING, DEMO_ASSET_IDS[:6])
    assert [b.ok for b in result.batches] == [False, True, True]
    assert result.failed_ids == DEMO_ASSET_IDS[:2]
    assert result.succeeded_ids == DEMO_ASSET_IDS[2:6]
    assert isinstance(result.batches[0].error, UplynkUnavailable)
    assert len(api_calls(simulator, "add")) == 3


def test_wrong_api_key_is_unauthorized_with_an_admin_hint(simulator):
    client = UplynkClient(simulator.url, simulator.user_id, "wrong-key", backoff_factor=0.01)
    with pytest.raises(UplynkUnauthorized) as info:
        client.get_library(MARKETING)
    message = str(info.value)
    assert message == info.value.user_message
    assert "(401)" in message and "UPLYNK_API_KEY" in message and "wrong-key" not in message
    assert len(simulator.requests) == 1  # a 401 is never retried


def test_wrong_key_on_v2_is_unauthorized_too(simulator):
    client = UplynkClient(simulator.url, simulator.user_id, "wrong-key")
    with pytest.raises(UplynkUnauthorized):
        client.get_assets([A1])


def test_forbidden_library_is_forbidden(simulator, uplynk_client):
    locked = simulator.catalogue.add_library("Legal Hold", forbidden=True)
    result = uplynk_client.add_assets(locked.id, [A1, A2])
    (error,) = result.errors
    assert isinstance(error, UplynkForbidden) and error.status == 403
    assert "(403)" in str(error)
    simulator.faults.fail("get_library", 403)
    with pytest.raises(UplynkForbidden):
        uplynk_client.get_library(MARKETING)


def test_429_after_every_retry_is_rate_limited(simulator, uplynk_client):
    simulator.faults.fail("get_library", 429, times=10)
    with pytest.raises(UplynkRateLimited) as info:
        uplynk_client.get_library(MARKETING)
    assert len(api_calls(simulator, "get_library")) == 5
    assert "(429)" in str(info.value) and "tried 5 times" in str(info.value)


def test_503_after_every_retry_is_unavailable(simulator, uplynk_client):
    simulator.faults.fail("add", 503, times=10)
    result = uplynk_client.add_assets(MARKETING, [A1])
    (error,) = result.errors
    assert type(error) is UplynkUnavailable
    assert str(error) == "Uplynk is busy (503); tried 5 times"
    assert len(api_calls(simulator, "add")) == 5


def test_two_503s_then_success(simulator, uplynk_client):
    simulator.faults.fail("add", 503, times=2)
    result = uplynk_client.add_assets(MARKETING, [A1, A2])
    assert result.ok
    assert len(api_calls(simulator, "add")) == 3
    assert {A1, A2} <= simulator.catalogue.library_assets(MARKETING)


@pytest.mark.parametrize("status", [502, 504])
def test_other_gateway_errors_are_retried(simulator, uplynk_client, status):
    simulator.faults.fail("find_libraries", status, times=1)
    assert uplynk_client.find_libraries("Ad Breaks")
    assert len(api_calls(simulator, "find_libraries")) == 2


def test_4xx_are_not_retried(simulator, uplynk_client):
    simulator.faults.fail("get_library", 400, times=5)
    with pytest.raises(UplynkBadRequest):
        uplynk_client.get_library(MARKETING)
    assert len(api_calls(simulator, "get_library")) == 1


def test_retry_after_is_honoured(simulator):
    client = make_client(simulator, backoff_factor=0, backoff_max=5.0)
    simulator.faults.fail("get_library", 503, times=1, retry_after=1)
    started = time.monotonic()
    client.get_library(MARKETING)
    assert time.monotonic() - started >= 0.9
    first, second = api_calls(simulator, "get_library")
    assert second.at - first.at >= 0.9


def test_retry_after_is_capped_at_backoff_max(simulator):
    client = make_client(simulator, backoff_max=0.2)
    simulator.faults.fail("get_library", 429, times=1, retry_after=120)
    started = time.monotonic()
    client.get_library(MARKETING)
    assert time.monotonic() - started < 2


def test_a_hung_uplynk_surfaces_as_a_timeout(simulator):
    client = make_client(simulator, timeout=(1.0, 0.3))
    simulator.faults.timeout("add", 5)
    started = time.monotonic()
    result = client.add_assets(MARKETING, [A1])
    assert time.monotonic() - started < 2
    (error,) = result.errors
    assert isinstance(error, UplynkTimeout) and isinstance(error, UplynkUnavailable)
    assert str(error) == "Uplynk did not answer within 0.3 s"
    assert len(api_calls(simulator, "add")) == 1  # a read timeout is not blindly re-sent
    assert client.get_library(MARKETING).id == MARKETING  # the next call works


def test_connection_refused_is_unavailable():
    nothing_listens = f"http://127.0.0.1:{free_port()}"
    client = UplynkClient(nothing_listens, "u", "k", max_retries=2, backoff_factor=0.01)
    with pytest.raises(UplynkUnavailable) as info:
        client.get_library(MARKETING)
    assert not isinstance(info.value, UplynkTimeout)
    assert str(info.value) == "Could not reach Uplynk (connection failed); tried 3 times"


def test_v2_error_body_becomes_a_bad_request_with_its_text():
    error = error_for_v2({"error": 1, "msg": "Too many ids"})
    assert isinstance(error, UplynkBadRequest)
    assert str(error) == "Uplynk rejected the request: Too many ids"
    assert isinstance(error_for_v2({"error": 1, "msg": "Invalid signature"}), UplynkUnauthorized)


# --------------------------------------------------------------------- secrets


def test_no_log_record_or_exception_reveals_the_key_or_sig(simulator, caplog):
    key = "top-secret-key-4242"
    simulator.api_key = key
    client = make_client(simulator, timeout=(1.0, 0.3))
    sent_urls = []
    client._session.hooks["response"].append(lambda r, *a, **k: sent_urls.append(r.url))
    caplog.set_level(logging.DEBUG)
    errors: list[UplynkError] = []

    client.get_library(MARKETING)
    client.find_libraries("marketing", page_size=1)
    client.get_assets([A1])
    client.add_assets(MARKETING, [A1, A2])
    simulator.faults.fail("add", 503, times=10)
    errors += client.add_assets(MARKETING, [A1]).errors
    simulator.faults.clear()
    simulator.faults.timeout("get_library", 3)
    with pytest.raises(UplynkTimeout) as timeout:
        client.get_library(MARKETING)
    errors.append(timeout.value)
    with pytest.raises(UplynkNotFound) as missing:
        client.get_library(UNKNOWN_LIBRARY)
    errors.append(missing.value)
    simulator.api_key = "rotated"
    with pytest.raises(UplynkUnauthorized) as refused:
        client.get_library(MARKETING)
    errors.append(refused.value)

    sigs = {m.group(1) for url in sent_urls for m in [re.search(r"[?&]sig=([0-9a-f]+)", url)]}
    msgs = {re.search(r"[?&]msg=([^&]+)", url).group(1) for url in sent_urls}
    assert len(sigs) >= 2  # v4 calls signed in the same second share a sig
    texts = [record.getMessage() for record in caplog.records]
    for error in errors:
        texts += [str(error), repr(error), "".join(traceback.format_exception(error))]
    blob = "\n".join(texts)
    assert "uplynk GET /api/v4/libraries/" in blob  # the client does log its calls
    assert key not in blob
    for secret in sigs | msgs:
        assert secret not in blob
    assert not re.search(r"\b[0-9a-f]{64}\b", blob)


# ----------------------------------------------------------------- construction


def test_from_settings():
    settings = Settings(
        uplynk_user_id="u1",
        uplynk_api_key="k1",
        uplynk_api_url="http://127.0.0.1:9/",
        uplynk_batch_size=25,
    )
    client = UplynkClient.from_settings(settings)
    assert client.base_url == "http://127.0.0.1:9" and client.batch_size == 25
    assert "k1" not in repr(client)
    with pytest.raises(ConfigError, match="UPLYNK_API_KEY"):
        UplynkClient.from_settings(Settings(uplynk_user_id="u1"))


def test_models_accept_both_library_shapes():
    lib = Library.from_api({"@id": "/api/v4/libraries/abc", "desc": "X", "assets": ["a", "b"]})
    assert lib.id == "abc" and lib.asset_count == 2 and lib.owner_name is None
    assert Library.from_api({"id": "abc", "desc": "X"}).asset_count is None
    asset = Asset.from_api({"id": "a1", "desc": "d", "libraries": [{"id": "L1"}, "L2"]})
    assert asset.libraries == frozenset({"L1", "L2"}) and asset.external_id is None


def test_one_client_serves_many_threads_and_the_simulator_answers_in_parallel(simulator):
    from concurrent.futures import ThreadPoolExecutor

    client = make_client(simulator)
    simulator.faults.set_latency("add", 0.2)
    ids = make_assets(simulator, 16, prefix="Parallel clip")
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda i: client.add_assets(MARKETING, [i]), ids))
    assert time.monotonic() - started < 1.5  # 16 x 0.2 s would be 3.2 s if serialised
    assert all(r.ok for r in results)
    assert set(ids) <= simulator.catalogue.library_assets(MARKETING)
    assert len(api_calls(simulator, "add")) == 16


def test_as_many_calls_as_the_bot_makes_at_once_reuse_their_connections(simulator, caplog):
    # ADDTOLIB_WORKERS jobs, each with its two preview look-ups in flight: every connection
    # goes back to the pool (urllib3 warns and drops each one that does not fit).
    settings = Settings(
        uplynk_api_url=simulator.url,
        uplynk_user_id=simulator.user_id,
        uplynk_api_key=simulator.api_key,
        workers=32,
    )
    simulator.faults.set_latency("get_library", 0.3)
    calls = settings.workers * 2
    start = threading.Barrier(calls)

    def call(_: int) -> str:
        start.wait()
        return client.get_library(MARKETING).id

    caplog.set_level(logging.WARNING, logger="urllib3.connectionpool")
    with UplynkClient.from_settings(settings) as client, ThreadPoolExecutor(calls) as pool:
        assert set(pool.map(call, range(calls))) == {MARKETING}
        assert simulator.peak_in_flight("get_library") == calls
    assert [r.getMessage() for r in caplog.records if "pool is full" in r.getMessage()] == []
