"""The Uplynk simulator's HTTP side: routes, msg/sig checks, control endpoints, and its CLI."""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import re
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bot.config import DEMO_UPLYNK_API_KEY, DEMO_UPLYNK_USER_ID, ConfigError, load_env_file
from bot.simulator.catalogue import DEMO_ASSET_IDS, DEMO_LIBRARY_IDS, Catalogue
from bot.simulator.faults import Faults
from bot.uplynk.signing import decode_msg, verify

log = logging.getLogger("bot.simulator")

CLOCK_SKEW = 300  # seconds a _timestamp may be off
MAX_LOOKUP_IDS = 1000
MAX_BODY = 8 * 1024 * 1024
_SECRETS = re.compile(r"(?i)\b(sig|msg)=[^&\s]*")

ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    429: "too_many_requests",
    500: "internal_server_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}
ERROR_TITLES = {
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass(frozen=True)
class RecordedRequest:
    """One API request as the simulator received it (msg and sig left out)."""

    call: str
    method: str
    path: str
    query: dict[str, str]
    body: Any
    params: dict[str, Any] = field(default_factory=dict)  # msg content without _owner/_timestamp
    at: float = 0.0


class ApiError(Exception):
    """An error answer: a v4 Error object, or a v2 {"error": 1, "msg": ...} body."""

    def __init__(self, status: int, title: str, *, v2: bool = False) -> None:
        super().__init__(title)
        self.status = status
        self.title = title
        self.v2 = v2

    def body(self) -> dict[str, Any]:
        if self.v2:
            return {"error": 1, "msg": self.title}
        return {
            "@type": "Error",
            "code": ERROR_CODES.get(self.status, "error"),
            "status_code": self.status,
            "title": self.title,
        }


@dataclass
class ApiRequest:
    """What a route handler needs: path groups, query, JSON body, msg parameters."""

    groups: dict[str, str]
    query: dict[str, str]
    body: Any
    params: dict[str, Any]


# ------------------------------------------------------------------ routes


def _library(sim: UplynkSimulator, library_id: str, *, changing: bool = False) -> str:
    lib = sim.catalogue.library(library_id)
    if lib is None:
        raise ApiError(404, "Not Found")
    if changing and lib.forbidden:
        raise ApiError(403, "Forbidden")
    return lib.id


def _ids_from_body(body: Any) -> list[str]:
    if not isinstance(body, dict):
        raise ApiError(400, "Body must be a JSON object with asset_id or asset_ids")
    if ("asset_id" in body) == ("asset_ids" in body):
        raise ApiError(400, "Send exactly one of asset_id or asset_ids")
    ids = [body["asset_id"]] if "asset_id" in body else body["asset_ids"]
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
        raise ApiError(400, "asset_id must be a string; asset_ids a non-empty list of strings")
    return ids


def _name_unknown(unknown: list[str]) -> str:
    shown = ", ".join(unknown[:20])
    more = f" and {len(unknown) - 20} more" if len(unknown) > 20 else ""
    return f"Unknown asset ids: {shown}{more}"


def add_assets(sim: UplynkSimulator, req: ApiRequest) -> dict[str, Any]:
    lib_id = _library(sim, req.groups["library"], changing=True)
    ids = _ids_from_body(req.body)
    unknown = sim.catalogue.unknown_assets(ids)
    if unknown:
        raise ApiError(400, _name_unknown(unknown))
    swallowed = sim.faults.swallowed(ids)
    return sim.catalogue.add_to_library(lib_id, [i for i in ids if i not in swallowed])


def remove_assets(sim: UplynkSimulator, req: ApiRequest) -> dict[str, Any]:
    lib_id = _library(sim, req.groups["library"], changing=True)
    ids = [i.strip() for i in req.query.get("ids", "").split(",") if i.strip()]
    if not ids:
        raise ApiError(400, "ids is required (comma-separated asset ids)")
    library, removed = sim.catalogue.remove_from_library(lib_id, ids)
    plural = "" if removed == 1 else "s"
    return {**library, "message": f"Removed {removed} asset{plural} from the library"}


def get_library(sim: UplynkSimulator, req: ApiRequest) -> dict[str, Any]:
    body = sim.catalogue.library_json(_library(sim, req.groups["library"]))
    assert body is not None
    return body


def _positive_int(query: dict[str, str], name: str, default: int, maximum: int) -> int:
    raw = query.get(name, "")
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise ApiError(400, f"{name} must be a whole number from 1 to {maximum}")
    return int(raw)


def find_libraries(sim: UplynkSimulator, req: ApiRequest) -> dict[str, Any]:
    page = _positive_int(req.query, "page", 1, 1_000_000)
    page_size = _positive_int(req.query, "page_size", 20, 1000)
    hits = sim.catalogue.search(req.query.get("search", ""))
    start = (page - 1) * page_size
    return {
        "@id": "/api/v4/libraries",
        "@type": "Collection",
        "items": hits[start : start + page_size],
        "total_items": len(hits),
        "page": page,
        "page_size": page_size,
    }


def get_assets(sim: UplynkSimulator, req: ApiRequest) -> dict[str, Any]:
    ids = req.params.get("ids")
    if isinstance(ids, str):
        ids = [i.strip() for i in ids.split(",") if i.strip()]
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise ApiError(200, "ids is required: a list of asset ids", v2=True)
    if len(ids) > MAX_LOOKUP_IDS:
        raise ApiError(200, f"Too many ids: at most {MAX_LOOKUP_IDS} per call", v2=True)
    return {"assets": sim.catalogue.lookup(ids), "error": 0}


_LIBRARY_ASSETS = re.compile(r"^/api/v4/libraries/(?P<library>[^/]+)/assets/?$")
Handler = Callable[["UplynkSimulator", ApiRequest], dict[str, Any]]
Route = tuple[str, re.Pattern[str], str, Handler]
ROUTES: list[Route] = [
    ("PATCH", _LIBRARY_ASSETS, "add", add_assets),
    ("DELETE", _LIBRARY_ASSETS, "remove", remove_assets),
    ("GET", re.compile(r"^/api/v4/libraries/(?P<library>[^/]+)/?$"), "get_library", get_library),
    ("GET", re.compile(r"^/api/v4/libraries/?$"), "find_libraries", find_libraries),
    ("GET", re.compile(r"^/api2/asset/get/?$"), "get_assets", get_assets),
]


def authenticate(sim: UplynkSimulator, query: dict[str, str], v2: bool) -> dict[str, Any]:
    """Check msg/sig, owner and clock; return the msg parameters (without _owner/_timestamp)."""
    msg, sig = query.get("msg"), query.get("sig")
    if not msg or not sig:
        raise ApiError(401, "Missing msg or sig", v2=v2)
    if not verify(msg, sig, sim.api_key):
        raise ApiError(401, "Invalid signature", v2=v2)
    try:
        payload = decode_msg(msg)
    except ValueError:
        raise ApiError(401, "msg could not be decoded", v2=v2) from None
    if payload.get("_owner") != sim.user_id:
        raise ApiError(401, "Unknown owner", v2=v2)
    stamp = payload.get("_timestamp")
    if not isinstance(stamp, int | float) or isinstance(stamp, bool):
        raise ApiError(401, "Missing _timestamp", v2=v2)
    if abs(time.time() - stamp) > CLOCK_SKEW:
        raise ApiError(401, "Timestamp is more than 5 minutes from the server's clock", v2=v2)
    return {k: v for k, v in payload.items() if not k.startswith("_")}


def _peek_params(query: dict[str, str]) -> dict[str, Any]:
    try:
        payload = decode_msg(query.get("msg", ""))
    except ValueError:
        return {}
    return {k: v for k, v in payload.items() if not k.startswith("_")}


MAX_SEED = 100_000


def seed_assets(sim: UplynkSimulator, spec: dict[str, Any]) -> list[str]:
    """Control endpoint: create `count` assets named `prefix` 0..count-1; return their ids.

    Ids are stable (md5 of the prefix and number), so seeding twice creates nothing new.
    """
    count = spec.get("count")
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_SEED:
        raise ValueError(f"count must be a whole number from 1 to {MAX_SEED}")
    prefix = spec.get("prefix", "seeded")
    if not isinstance(prefix, str) or not prefix:
        raise ValueError("prefix must be a non-empty string")
    return [sim.catalogue.add_asset(f"{prefix} {i}").id for i in range(count)]


# ----------------------------------------------------------------- handler


class _Handler(BaseHTTPRequestHandler):
    """Dispatches one request to a route or a control endpoint."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # keep-alive answers without the 40 ms delayed-ACK stall
    server_version = "UplynkSimulator/1.0"
    server: _Server

    def do_GET(self) -> None:
        self._dispatch()

    do_PATCH = do_DELETE = do_POST = do_PUT = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("simulator: %s", _SECRETS.sub(r"\1=[redacted]", format % args))

    def _dispatch(self) -> None:
        sim = self.server.sim
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        body = self._read_body()
        if url.path.startswith("/_simulator/"):
            return self._control(sim, url.path, body)
        path_known = False
        for method, pattern, call, handler in ROUTES:
            match = pattern.match(url.path)
            if not match:
                continue
            path_known = True
            if method == self.command:
                return self._api(sim, call, handler, match.groupdict(), url.path, query, body)
        if path_known:
            return self._send(405, ApiError(405, "Method Not Allowed").body())
        return self._send(404, ApiError(404, "Not Found").body())

    def _api(
        self,
        sim: UplynkSimulator,
        call: str,
        handler: Handler,
        groups: dict[str, str],
        path: str,
        query: dict[str, str],
        body: Any,
    ) -> None:
        sim.entered(call, +1)
        try:
            return self._api_answer(sim, call, handler, groups, path, query, body)
        finally:
            sim.entered(call, -1)

    def _api_answer(
        self,
        sim: UplynkSimulator,
        call: str,
        handler: Handler,
        groups: dict[str, str],
        path: str,
        query: dict[str, str],
        body: Any,
    ) -> None:
        v2 = path.startswith("/api2/")
        sim.record(
            RecordedRequest(
                call=call,
                method=self.command,
                path=path,
                query={k: v for k, v in query.items() if k not in ("msg", "sig")},
                body=body,
                params=_peek_params(query),
                at=time.time(),
            )
        )
        action = sim.faults.next_action(call)
        if action.delay:
            sim.sleep(action.delay)
        if action.hang:
            sim.sleep(action.hang)
            self.close_connection = True
            return None
        try:
            if action.status is not None:
                title = ERROR_TITLES.get(action.status, ERROR_CODES.get(action.status, "Error"))
                raise ApiError(action.status, title, v2=v2)
            params = authenticate(sim, query, v2)
            answer = handler(sim, ApiRequest(groups, query, body, params))
        except ApiError as exc:
            headers = {"Retry-After": action.retry_after} if action.retry_after else {}
            return self._send(exc.status, exc.body(), headers)
        return self._send(200, answer)

    def _control(self, sim: UplynkSimulator, path: str, body: Any) -> None:
        if not ipaddress.ip_address(self.client_address[0]).is_loopback:
            return self._send(403, ApiError(403, "Control endpoints answer loopback only").body())
        if path == "/_simulator/requests" and self.command == "GET":
            peaks = {call: sim.peak_in_flight(call) for call in ("add", "remove", "get_assets")}
            requests = [asdict(r) for r in sim.requests]
            return self._send(200, {"requests": requests, "peak_in_flight": peaks})
        if path == "/_simulator/reset" and self.command == "POST":
            sim.reset()
            return self._send(200, {"ok": True})
        if path == "/_simulator/faults" and self.command == "POST":
            try:
                sim.faults.configure(body if isinstance(body, dict) else {})
            except (KeyError, TypeError, ValueError) as exc:
                return self._send(400, ApiError(400, f"Bad fault spec: {exc}").body())
            return self._send(200, {"ok": True})
        if path == "/_simulator/assets" and self.command == "POST":
            try:
                ids = seed_assets(sim, body if isinstance(body, dict) else {})
            except (TypeError, ValueError) as exc:
                return self._send(400, ApiError(400, f"Bad seed spec: {exc}").body())
            return self._send(200, {"ok": True, "ids": ids})
        return self._send(404, ApiError(404, "Not Found").body())

    def _read_body(self) -> Any:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if length <= 0:
            return None
        raw = self.rfile.read(min(length, MAX_BODY))
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode("utf-8", "replace")

    def _send(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(body).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    sim: UplynkSimulator


class _Server6(_Server):
    address_family = socket.AF_INET6


# --------------------------------------------------------------- simulator


class UplynkSimulator:
    """An in-process Uplynk emulator over real HTTP; see docs/ARCHITECTURE.md."""

    def __init__(
        self,
        user_id: str = DEMO_UPLYNK_USER_ID,
        api_key: str = DEMO_UPLYNK_API_KEY,
        host: str = "127.0.0.1",
        port: int = 0,
        seed_demo: bool = True,
    ) -> None:
        self.user_id = user_id
        self.api_key = api_key
        self.host = host
        self.port = port
        self.catalogue = Catalogue(seed_demo=seed_demo)
        self.faults = Faults()
        self._requests: list[RecordedRequest] = []
        self._in_flight: dict[str, int] = {}
        self._peak_in_flight: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"UplynkSimulator({self.url if self._server else 'stopped'})"

    def start(self) -> UplynkSimulator:
        server_class = _Server6 if ":" in self.host else _Server
        self._stopping.clear()
        self._server = server_class((self.host, self.port), _Handler)
        self._server.sim = self
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="uplynk-simulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping in latency or hang faults
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> UplynkSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the simulator is not started")
        host, port = self._server.server_address[:2]
        assert isinstance(host, str)  # an AF_INET or AF_INET6 address
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        if ":" in str(host):
            host = f"[{host}]"
        return f"http://{host}:{port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()
            self._peak_in_flight.clear()

    def peak_in_flight(self, call: str) -> int:
        """The most requests of `call` that were being handled at one time."""
        with self._lock:
            return self._peak_in_flight.get(call, 0)

    def entered(self, call: str, delta: int) -> None:
        """Count a request of `call` in (+1) or out (-1) of the handler."""
        with self._lock:
            now = self._in_flight.get(call, 0) + delta
            self._in_flight[call] = now
            self._peak_in_flight[call] = max(self._peak_in_flight.get(call, 0), now)

    def reset(self) -> None:
        """Back to the seeded catalogue, no faults, no recorded requests."""
        self.faults.clear()
        self.clear_requests()
        self.catalogue.reset()

    def sleep(self, seconds: float) -> None:
        self._stopping.wait(seconds)


# --------------------------------------------------------------------- CLI


def simulator_credentials(user_id: str | None, api_key: str | None) -> tuple[str, str] | None:
    """(owner, key) from the flags, else UPLYNK_USER_ID/UPLYNK_API_KEY (environment or .env).

    None when neither is set anywhere: the simulator then uses the demo credentials.
    """
    load_env_file()
    user_id = (user_id or os.environ.get("UPLYNK_USER_ID") or "").strip()
    api_key = (api_key or os.environ.get("UPLYNK_API_KEY") or "").strip()
    if not user_id and not api_key:
        return None
    if not user_id or not api_key:
        missing = "UPLYNK_USER_ID (--user-id)" if not user_id else "UPLYNK_API_KEY (--api-key)"
        raise ConfigError(f"{missing} is not set; set both, or neither for the demo credentials")
    return user_id, api_key


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """`python -m bot simulator [--host H] [--port N] [--latency S]`: serve until Ctrl-C."""
    parser = argparse.ArgumentParser(
        prog="python -m bot simulator", description="Run the Uplynk API simulator."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8081, help="port (default 8081; 0 = any)")
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds added to every API call"
    )
    parser.add_argument(
        "--user-id", help="the owner id requests must carry (default: UPLYNK_USER_ID)"
    )
    parser.add_argument("--api-key", help="the key requests are signed with (UPLYNK_API_KEY)")
    args = parser.parse_args(argv)
    try:
        credentials = simulator_credentials(args.user_id, args.api_key)
    except ConfigError as exc:
        print(f"configuration error: {exc}")
        return 2
    sim = (
        UplynkSimulator(*credentials, host=args.host, port=args.port)
        if credentials
        else UplynkSimulator(host=args.host, port=args.port)
    )
    if args.latency > 0:
        sim.faults.set_latency("*", args.latency)
    try:
        sim.start()
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
        return 1
    marketing = DEMO_LIBRARY_IDS["Marketing Library"]
    print(f"Uplynk simulator listening on {sim.url}  (Ctrl-C to stop)")
    print(f"UPLYNK_API_URL={sim.url}")
    print(f"UPLYNK_USER_ID={sim.user_id}")
    if credentials:  # the key is a secret: say where it came from, never print it
        print("UPLYNK_API_KEY: the configured key (not shown); demo credentials are refused")
    else:
        print(f"UPLYNK_API_KEY={sim.api_key}")
    print(f'Try: /addtolib "Marketing Library" {DEMO_ASSET_IDS[0]} {DEMO_ASSET_IDS[1]}')
    print(f"     (Marketing Library id: {marketing})", flush=True)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("stopping the simulator")
    finally:
        sim.stop()
    return 0
