"""The Uplynk simulator, driven with plain `requests` exactly as Uplynk's documentation does."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
import requests

from bot.config import DEMO_UPLYNK_API_KEY, DEMO_UPLYNK_USER_ID
from bot.simulator import DEMO_ASSET_IDS, DEMO_LIBRARY_IDS, UplynkSimulator

MARKETING = DEMO_LIBRARY_IDS["Marketing Library"]
A1, A2 = DEMO_ASSET_IDS[0], DEMO_ASSET_IDS[1]
ROOT = Path(__file__).resolve().parent.parent


def doc_signed(extra=None, *, owner=DEMO_UPLYNK_USER_ID, key=DEMO_UPLYNK_API_KEY, ts=None):
    """msg/sig the way Uplynk's documentation sample builds them (independent of bot code)."""
    msg = {"_owner": owner, "_timestamp": int(time.time()) if ts is None else ts}
    msg.update(extra or {})
    msg = base64.b64encode(zlib.compress(json.dumps(msg).encode("utf-8"), 9))
    sig = hmac.new(key.encode("utf-8"), msg, hashlib.sha256).hexdigest()
    return {"msg": msg, "sig": sig}


def call(sim, method, path, *, params=None, body=None, **signing):
    query = {**(params or {}), **doc_signed(**signing)}
    return requests.request(method, sim.url + path, params=query, json=body, timeout=5)


def assets_path(library_id=MARKETING):
    return f"/api/v4/libraries/{library_id}/assets"


def assert_error(response, status, code):
    assert response.status_code == status
    body = response.json()
    assert body["@type"] == "Error" and body["code"] == code
    assert body["status_code"] == status and body["title"]
    return body


# ------------------------------------------------------------ documented calls


def test_a_documentation_style_request_is_accepted(simulator):
    response = call(simulator, "GET", f"/api/v4/libraries/{MARKETING}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    library = response.json()
    assert library["@id"] == f"/api/v4/libraries/{MARKETING}"
    assert library["@type"] == "Library" and library["id"] == MARKETING
    assert library["desc"] == "Marketing Library"
    assert isinstance(library["allow_copy"], bool) and isinstance(library["is_ad"], bool)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", library["created"])
    assert library["owner_name"] and library["library_type"]
    assert library["asset_count"] == len(simulator.catalogue.library_assets(MARKETING))


def test_add_one_then_several_and_adding_is_idempotent(simulator):
    one = call(simulator, "PATCH", assets_path(), body={"asset_id": A1})
    assert one.status_code == 200 and one.json()["@type"] == "Library"
    several = call(simulator, "PATCH", assets_path(), body={"asset_ids": [A1, A2]})
    again = call(simulator, "PATCH", assets_path(), body={"asset_ids": [A1, A2]})
    assert several.status_code == again.status_code == 200
    assert several.json()["asset_count"] == again.json()["asset_count"]
    assert {A1, A2} <= simulator.catalogue.library_assets(MARKETING)


@pytest.mark.parametrize(
    "body",
    [
        {"asset_id": A1, "asset_ids": [A2]},
        {},
        {"asset_ids": []},
        {"asset_id": 7},
        ["not", "an", "object"],
    ],
)
def test_add_needs_exactly_one_of_asset_id_or_asset_ids(simulator, body):
    response = call(simulator, "PATCH", assets_path(), body=body)
    assert_error(response, 400, "bad_request")
    assert not {A1, A2} & simulator.catalogue.library_assets(MARKETING)


def test_add_names_unknown_asset_ids_and_changes_nothing(simulator):
    ghost = "0123abcd" * 4
    response = call(simulator, "PATCH", assets_path(), body={"asset_ids": [A1, ghost]})
    assert ghost in assert_error(response, 400, "bad_request")["title"]
    assert A1 not in simulator.catalogue.library_assets(MARKETING)


def test_unknown_library_is_404(simulator):
    missing = "9" * 32
    assert_error(call(simulator, "GET", f"/api/v4/libraries/{missing}"), 404, "not_found")
    response = call(simulator, "PATCH", assets_path(missing), body={"asset_id": A1})
    assert_error(response, 404, "not_found")


def test_a_forbidden_library_is_403(simulator):
    locked = simulator.catalogue.add_library("Legal Hold", forbidden=True)
    response = call(simulator, "PATCH", assets_path(locked.id), body={"asset_id": A1})
    assert_error(response, 403, "forbidden")


def test_remove_answers_the_library_with_a_message(simulator):
    call(simulator, "PATCH", assets_path(), body={"asset_ids": [A1, A2]})
    response = call(simulator, "DELETE", assets_path(), params={"ids": f"{A1},{A2}"})
    assert response.status_code == 200
    body = response.json()
    assert body["@type"] == "Library" and body["message"] == "Removed 2 assets from the library"
    assert not {A1, A2} & simulator.catalogue.library_assets(MARKETING)
    missing_ids = call(simulator, "DELETE", assets_path())
    assert_error(missing_ids, 400, "bad_request")


def test_find_libraries_is_a_paged_case_insensitive_search(simulator):
    response = call(
        simulator, "GET", "/api/v4/libraries", params={"search": "LIBRARY", "page_size": 1}
    )
    body = response.json()
    assert body["@type"] == "Collection" and body["total_items"] == 2
    assert [item["desc"] for item in body["items"]] == ["Marketing Library"]
    page2 = call(
        simulator,
        "GET",
        "/api/v4/libraries",
        params={"search": "library", "page": 2, "page_size": 1},
    ).json()
    assert [item["desc"] for item in page2["items"]] == ["Marketing Library Archive"]
    everything = call(simulator, "GET", "/api/v4/libraries").json()
    assert everything["total_items"] == len(DEMO_LIBRARY_IDS)
    bad = call(simulator, "GET", "/api/v4/libraries", params={"page": "zero"})
    assert_error(bad, 400, "bad_request")


def test_v2_asset_lookup_with_ids_inside_msg(simulator):
    held = DEMO_ASSET_IDS[2]
    response = call(simulator, "GET", "/api2/asset/get", extra={"ids": [A1, held, "f" * 32]})
    assert response.status_code == 200
    body = response.json()
    assert body["error"] == 0
    by_id = {asset["id"]: asset for asset in body["assets"]}
    assert set(by_id) == {A1, held}
    assert by_id[held]["libraries"] == [MARKETING]
    assert by_id[A1]["libraries"] == []
    assert {"id", "desc", "external_id", "libraries"} <= set(by_id[A1])


def test_v2_lookup_refuses_more_than_1000_ids_the_v2_way(simulator):
    ids = [f"{n:032x}" for n in range(1001)]
    response = call(simulator, "GET", "/api2/asset/get", extra={"ids": ids})
    assert response.status_code == 200
    body = response.json()
    assert body["error"] == 1 and "1000" in body["msg"]


def test_unknown_paths_and_methods(simulator):
    assert_error(call(simulator, "GET", "/api/v4/nothing"), 404, "not_found")
    assert_error(call(simulator, "POST", assets_path()), 405, "method_not_allowed")


# -------------------------------------------------------------- authentication


@pytest.mark.parametrize(
    "signing",
    [
        {"key": "not-the-key"},
        {"owner": "ffffffffffffffffffffffffffffffff"},
        {"ts": -600},
        {"ts": +600},
    ],
    ids=["wrong-signature", "wrong-owner", "ten-minutes-old", "ten-minutes-ahead"],
)
def test_bad_credentials_are_401(simulator, signing):
    if "ts" in signing:  # an offset from now, taken when the test runs (not when collected)
        signing = {"ts": int(time.time()) + signing["ts"]}
    response = call(simulator, "GET", f"/api/v4/libraries/{MARKETING}", **signing)
    assert_error(response, 401, "unauthorized")
    v2 = call(simulator, "GET", "/api2/asset/get", extra={"ids": [A1]}, **signing)
    assert v2.status_code == 401 and v2.json()["error"] == 1


def test_a_tampered_msg_is_401(simulator):
    genuine = doc_signed()
    forged = doc_signed({"ids": [A1]}, ts=int(time.time()))
    query = {"msg": forged["msg"], "sig": genuine["sig"]}
    response = requests.get(simulator.url + "/api2/asset/get", params=query, timeout=5)
    assert response.status_code == 401


def test_missing_msg_or_sig_is_401(simulator):
    response = requests.get(f"{simulator.url}/api/v4/libraries/{MARKETING}", timeout=5)
    assert_error(response, 401, "unauthorized")


def test_a_custom_key_and_owner():
    with UplynkSimulator(user_id="owner-2", api_key="key-2", seed_demo=False) as sim:
        sim.catalogue.add_library("Only One")
        ok = call(sim, "GET", "/api/v4/libraries", owner="owner-2", key="key-2")
        assert [i["desc"] for i in ok.json()["items"]] == ["Only One"]
        assert call(sim, "GET", "/api/v4/libraries").status_code == 401


# ------------------------------------------------------ recording and faults


def test_requests_are_recorded_without_msg_or_sig(simulator):
    call(simulator, "DELETE", assets_path(), params={"ids": A1})
    (recorded,) = simulator.requests
    assert (recorded.call, recorded.method, recorded.path) == ("remove", "DELETE", assets_path())
    assert recorded.query == {"ids": A1}
    simulator.clear_requests()
    assert simulator.requests == []


def test_latency_is_injected_per_call(simulator):
    simulator.faults.set_latency("get_library", 0.15)
    started = time.monotonic()
    call(simulator, "GET", "/api/v4/libraries")
    fast = time.monotonic() - started
    started = time.monotonic()
    call(simulator, "GET", f"/api/v4/libraries/{MARKETING}")
    assert time.monotonic() - started >= 0.15 > fast


def test_failures_are_injected_a_number_of_times(simulator):
    simulator.faults.fail("*", 503, times=2, retry_after=1)
    first = call(simulator, "GET", "/api/v4/libraries")
    second = call(simulator, "GET", f"/api/v4/libraries/{MARKETING}")
    assert_error(first, 503, "service_unavailable")
    assert first.headers["Retry-After"] == "1" and second.status_code == 503
    assert call(simulator, "GET", "/api/v4/libraries").status_code == 200


def test_a_hang_gets_no_answer(simulator):
    simulator.faults.timeout("get_library", 2)
    url = f"{simulator.url}/api/v4/libraries/{MARKETING}"
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(url, params=doc_signed(), timeout=0.2)
    assert call(simulator, "GET", f"/api/v4/libraries/{MARKETING}").status_code == 200


def test_chaos_fails_a_repeatable_share_of_requests_until_cleared(simulator):
    def statuses(seed):
        simulator.faults.clear()
        simulator.faults.chaos(0.5, (500, 503), seed=seed, call="get_library")
        path = f"/api/v4/libraries/{MARKETING}"
        return [call(simulator, "GET", path).status_code for _ in range(40)]

    first = statuses(7)
    assert first == statuses(7)  # the same seed rolls the same dice
    assert set(first) == {200, 500, 503} and 8 <= first.count(200) <= 32
    assert call(simulator, "GET", "/api/v4/libraries").status_code == 200  # other calls spared
    simulator.faults.clear()
    assert call(simulator, "GET", f"/api/v4/libraries/{MARKETING}").status_code == 200

    simulator.faults.configure({"chaos": [{"probability": 1, "statuses": [], "hang": 0.3}]})
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"{simulator.url}/api/v4/libraries", params=doc_signed(), timeout=5)
    with pytest.raises(ValueError):
        simulator.faults.chaos(1.5)


def test_control_endpoints(simulator):
    spec = {"latency": {"add": 0.01}, "fail": [{"call": "add", "status": 429, "times": 1}]}
    assert requests.post(f"{simulator.url}/_simulator/faults", json=spec, timeout=5).ok
    assert call(simulator, "PATCH", assets_path(), body={"asset_id": A1}).status_code == 429
    assert call(simulator, "PATCH", assets_path(), body={"asset_id": A1}).status_code == 200
    recorded = requests.get(f"{simulator.url}/_simulator/requests", timeout=5).json()["requests"]
    assert [r["call"] for r in recorded] == ["add", "add"]
    assert recorded[0]["body"] == {"asset_id": A1} and "sig" not in recorded[0]["query"]
    bad = requests.post(f"{simulator.url}/_simulator/faults", json={"fail": [{}]}, timeout=5)
    assert bad.status_code == 400
    assert requests.post(f"{simulator.url}/_simulator/reset", timeout=5).ok
    assert A1 not in simulator.catalogue.library_assets(MARKETING)
    assert simulator.requests == []


def test_control_endpoint_seeds_assets(simulator):
    seed = f"{simulator.url}/_simulator/assets"
    answer = requests.post(seed, json={"count": 3, "prefix": "bench"}, timeout=5)
    assert answer.status_code == 200
    ids = answer.json()["ids"]
    assert len(set(ids)) == 3 and all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    again = requests.post(seed, json={"count": 3, "prefix": "bench"}, timeout=5).json()["ids"]
    assert again == ids  # stable ids: seeding twice creates nothing new
    response = requests.get(
        f"{simulator.url}/api2/asset/get", params=doc_signed({"ids": ids}), timeout=5
    )
    assert sorted(a["id"] for a in response.json()["assets"]) == sorted(ids)
    assert call(simulator, "PATCH", assets_path(), body={"asset_ids": ids}).status_code == 200
    assert set(ids) <= simulator.catalogue.library_assets(MARKETING)
    for bad in ({}, {"count": 0}, {"count": "3"}, {"count": 2, "prefix": ""}):
        assert requests.post(seed, json=bad, timeout=5).status_code == 400
    requests.post(f"{simulator.url}/_simulator/reset", timeout=5)
    assert not set(ids) & set(simulator.catalogue.assets)


# --------------------------------------------------------------- demo and CLI


def test_demo_catalogue_is_deterministic_and_ready_for_a_demo(simulator):
    assert list(DEMO_LIBRARY_IDS) == [
        "Marketing Library",
        "Marketing Library Archive",
        "Ad Breaks",
        "Sports Highlights",
        "Newsroom Daily",
    ]
    assert hashlib.md5(b"library:Marketing Library").hexdigest() == MARKETING
    ids = list(DEMO_LIBRARY_IDS.values()) + DEMO_ASSET_IDS
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids) and len(set(ids)) == len(ids)
    assert len(DEMO_ASSET_IDS) >= 40
    assert not {A1, A2} & simulator.catalogue.library_assets(MARKETING)  # a demo adds them
    assert simulator.catalogue.library_assets(MARKETING)  # some are there already


OWNER, KEY = "0123456789abcdef0123456789abcdef", "a-configured-key"


def run_simulator(tmp_path, *args, env=None, dotenv=None):
    """`python -m bot simulator` in a clean directory (a .env there if given): (process, lines)."""
    if dotenv is not None:
        (tmp_path / ".env").write_text(dotenv)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("UPLYNK_")}
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "bot", "simulator", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
        env={**clean, "PYTHONPATH": str(ROOT), **(env or {})},
        # Ctrl-C must reach it even when this run was started in the background, where a
        # shell starts every process with SIGINT ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    lines = []
    while not lines or not lines[-1].startswith("(Marketing Library id:"):
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.strip())
    return process, lines


def stop(process):
    try:
        process.send_signal(signal.SIGINT)
        return process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
        process.stdout.close()


def library_status(url, **signing):
    path = f"{url}/api/v4/libraries/{MARKETING}"
    return requests.get(path, params=doc_signed(**signing), timeout=5).status_code


def test_python_m_simulator_prints_credentials_and_stops_on_ctrl_c(tmp_path):
    process, lines = run_simulator(tmp_path, "--latency", "0.01")
    try:
        url = lines[1].removeprefix("UPLYNK_API_URL=")
        assert url.startswith("http://127.0.0.1:")
        assert lines[2:4] == [
            f"UPLYNK_USER_ID={DEMO_UPLYNK_USER_ID}",
            f"UPLYNK_API_KEY={DEMO_UPLYNK_API_KEY}",
        ]
        assert len(lines) == 6 and lines[4].startswith('Try: /addtolib "Marketing Library"')
        response = requests.get(
            f"{url}/api/v4/libraries/{MARKETING}", params=doc_signed(), timeout=5
        )
        assert response.json()["desc"] == "Marketing Library"
    finally:
        assert stop(process) == 0


@pytest.mark.parametrize("source", ["environment", ".env", "flags"])
def test_configured_credentials_are_verified_and_the_demo_ones_refused(tmp_path, source):
    if source == "environment":
        launch = {"env": {"UPLYNK_USER_ID": OWNER, "UPLYNK_API_KEY": KEY}}
    elif source == ".env":
        launch = {"dotenv": f"UPLYNK_USER_ID={OWNER}\nUPLYNK_API_KEY={KEY}\n"}
    else:
        launch = {"args": ("--user-id", OWNER, "--api-key", KEY)}
    process, lines = run_simulator(tmp_path, *launch.pop("args", ()), **launch)
    try:
        url = lines[1].removeprefix("UPLYNK_API_URL=")
        assert len(lines) == 6 and lines[2] == f"UPLYNK_USER_ID={OWNER}"
        assert KEY not in "\n".join(lines) and DEMO_UPLYNK_API_KEY not in "\n".join(lines)
        assert library_status(url, owner=OWNER, key=KEY) == 200
        assert library_status(url) == 401  # the demo credentials
        assert library_status(url, owner=DEMO_UPLYNK_USER_ID, key=KEY) == 401
        assert library_status(url, owner=OWNER, key=DEMO_UPLYNK_API_KEY) == 401
    finally:
        assert stop(process) == 0


def test_flags_win_over_the_environment(tmp_path):
    process, lines = run_simulator(
        tmp_path,
        "--api-key",
        KEY,
        env={"UPLYNK_USER_ID": OWNER, "UPLYNK_API_KEY": "from-the-environment"},
    )
    try:
        url = lines[1].removeprefix("UPLYNK_API_URL=")
        assert library_status(url, owner=OWNER, key=KEY) == 200
        assert library_status(url, owner=OWNER, key="from-the-environment") == 401
    finally:
        assert stop(process) == 0


def test_half_configured_credentials_are_a_clear_error(tmp_path):
    process, lines = run_simulator(tmp_path, env={"UPLYNK_API_KEY": KEY})
    assert process.wait(timeout=10) == 2
    process.stdout.close()
    assert lines == [
        "configuration error: UPLYNK_USER_ID (--user-id) is not set; "
        "set both, or neither for the demo credentials"
    ]


def test_swallowed_assets_are_accepted_but_not_added(simulator):
    simulator.faults.swallow([A2.upper()])
    answer = call(simulator, "PATCH", assets_path(), body={"asset_ids": [A1, A2]})
    assert answer.status_code == 200
    held = simulator.catalogue.library_assets(MARKETING)
    assert A1 in held and A2 not in held
    simulator.faults.clear()
    call(simulator, "PATCH", assets_path(), body={"asset_id": A2})
    assert A2 in simulator.catalogue.library_assets(MARKETING)


def test_swallow_through_the_control_endpoint(simulator):
    requests.post(f"{simulator.url}/_simulator/faults", json={"swallow": [A1]}, timeout=5)
    assert call(simulator, "PATCH", assets_path(), body={"asset_id": A1}).status_code == 200
    assert A1 not in simulator.catalogue.library_assets(MARKETING)
