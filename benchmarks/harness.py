"""Benchmark harness: child processes (simulator, Slack stand-in, web server), load, stats.

Starting processes, signing requests and reading payloads are the tests' helpers
(tests/bot_process.py, tests/slack_requests.py), so both drive the bot the same way.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import requests

from bot.config import DEMO_UPLYNK_API_KEY, DEMO_UPLYNK_USER_ID, ENV_NAMES, Settings
from bot.simulator.catalogue import DEMO_ASSET_IDS, DEMO_LIBRARY_IDS
from bot.slack_standin.server import SlackStandIn
from bot.slack_standin.socket_mode import SocketModeStandIn
from bot.uplynk.signing import sign
from tests import slack_requests
from tests.bot_process import REPO_ROOT, BotProcess, free_port, procfile_command
from tests.slack_requests import SlackSender, button_value

LOOPBACK = "127.0.0.1"
SIGNING_SECRET = "benchmark-signing-secret-not-a-secret"
BOT_TOKEN = "xoxb-benchmark-token"
ADMIN = "U0BENCHADMIN"
CHANNEL = "C0BENCH"
CHANNEL_NAME = "bench"
NOTIFY = "C0BENCHNOTIFY"
TEAM = "T0001"
MARKETING = DEMO_LIBRARY_IDS["Marketing Library"]
#: Two demo assets that the seeded Marketing Library does not hold yet.
DEMO_PAIR = tuple(DEMO_ASSET_IDS[:2])
BARE_BOLT_APP = "tests.tiny_bolt_app"
APP_TOKEN = "xapp-1-A0ADDTOLIB-1-benchmark"  # the Socket Mode app-level token
#: ADDTOLIB_WORKERS as the benchmarks run the bot (its default): previews planned at once.
BOT_WORKERS = Settings().workers
STOP_GRACE = 5.0  # seconds a child has to stop after SIGTERM before it is killed


def preview_floor(count: int, uplynk_latency: float) -> float:
    """Seconds `count` previews take at best: one Uplynk round trip each (the two look-ups run
    together), BOT_WORKERS at a time."""
    return count * uplynk_latency / BOT_WORKERS


# ----------------------------------------------------------------------------- results


@dataclass
class Row:
    """One line of the results table."""

    benchmark: str
    measure: str
    result: str
    baseline: str = ""
    goal: str = ""
    met: bool | None = None

    def markdown(self) -> str:
        met = {True: "yes", False: "**no**", None: "—"}[self.met]
        cells = [self.benchmark, self.measure, self.result, self.baseline or "—"]
        cells += [self.goal or "—", met]
        return "| " + " | ".join(c.replace("|", "/") for c in cells) + " |"


TABLE_HEADER = (
    "| Benchmark | Measure | Result | Baseline (same run) | Goal | Met? |\n"
    "|---|---|---|---|---|---|"
)


@dataclass
class Outcome:
    """What one benchmark module returns: table rows and the raw numbers behind them."""

    rows: list[Row]
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what limits the numbers, in words

    def to_json(self) -> dict[str, Any]:
        rows = [asdict(r) for r in self.rows]
        return {"rows": rows, "notes": self.notes, "details": self.details}


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[min(len(ordered), int(rank)) - 1]


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def machine_info() -> dict[str, Any]:
    """CPU model, cores, Python and the versions of what is being measured."""
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for package in ("tornado", "slack_bolt", "slack_sdk", "requests", "SQLAlchemy"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "?"
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "packages": versions,
    }


class CpuMeter:
    """How much of the machine's CPU others used while a benchmark ran (shared machines).

    Ours is this process plus every descendant it has reaped (its children, and through
    them the web processes); everything else busy on the machine meanwhile is foreign.
    """

    def __init__(self) -> None:
        self.start = (self._busy(), self._ours(), time.monotonic())

    @staticmethod
    def _busy() -> float:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
        return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _ours() -> float:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    def stop(self) -> dict[str, float]:
        busy0, ours0, wall0 = self.start
        wall = time.monotonic() - wall0
        busy, ours = self._busy() - busy0, self._ours() - ours0
        foreign = max(0.0, busy - ours)
        cores = os.cpu_count() or 1
        return {
            "wall_s": round(wall, 1),
            "cpu_ours_s": round(ours, 1),
            "cpu_foreign_s": round(foreign, 1),
            "foreign_share_of_machine": round(foreign / (wall * cores), 3) if wall else 0.0,
            "loadavg_1min_end": round(os.getloadavg()[0], 2),
        }


# ---------------------------------------------------------------------------- processes


class Context:
    """Run-wide settings and every child started, so that all of them get stopped.

    With ``pin`` (and at least two CPUs) the servers under test get the last CPU to
    themselves and everything else (this process and its load threads, the simulator,
    the stand-in) shares the others, so the load generator does not steal the bot's core.
    """

    def __init__(self, work_dir: Path, quick: bool = False, pin: bool = True) -> None:
        self.work_dir = work_dir
        self.quick = quick
        self.children: list[BotProcess] = []
        self.log = print
        cpus = sorted(os.sched_getaffinity(0))
        if pin and len(cpus) >= 2:
            self.server_cpus: set[int] | None = {cpus[-1]}
            self.other_cpus: set[int] | None = set(cpus[:-1])
            os.sched_setaffinity(0, self.other_cpus)
        else:
            self.server_cpus = self.other_cpus = None

    @property
    def pinning(self) -> str:
        if self.server_cpus is None:
            return "none"
        others = ",".join(map(str, sorted(self.other_cpus or ())))
        server = min(self.server_cpus)
        return f"servers under test on CPU {server}; load, simulator, stand-in on CPU {others}"

    def spawn(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        *,
        port: int | None = None,
        health_path: str = "/healthz",
        ready: Callable[[], bool] | None = None,
        under_test: bool = False,
    ) -> BotProcess:
        """Start ``argv`` with exactly ``env`` (see child_env), logging to ``<name>.log``;
        ready once ``GET health_path`` on ``port`` answers 200, or ``ready()`` says so."""
        child = BotProcess(
            env,
            port=port,
            argv=argv,
            base_env={},
            log_path=self.work_dir / f"{name}.log",
            startup_timeout=30,
            ready=ready,
            health_path=health_path,
            cpus=self.server_cpus if under_test else self.other_cpus,
        )
        self.children.append(child)
        return child.start()

    def stop(self, child: BotProcess) -> None:
        child.stop(STOP_GRACE)
        with contextlib.suppress(ValueError):
            self.children.remove(child)

    def stop_all(self) -> None:
        for child in reversed(self.children):
            child.stop(STOP_GRACE)
        self.children.clear()


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a child: ours without any bot setting (blank ones shadow a .env)."""
    env = {k: v for k, v in os.environ.items() if k not in ("WEB_CONCURRENCY", "WEB_THREADS")}
    for name in ENV_NAMES.values():
        env[name] = ""
    env["PYTHONUNBUFFERED"] = "1"
    paths = (str(REPO_ROOT), os.environ.get("PYTHONPATH"))
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env.update(extra or {})
    return env


# ---------------------------------------------------------------------------- simulator


class Simulator:
    """`python -m bot simulator` in its own process, driven through its control endpoints."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.user_id = DEMO_UPLYNK_USER_ID
        self.api_key = DEMO_UPLYNK_API_KEY
        self.http = requests.Session()
        self.child: BotProcess | None = None

    def start(self) -> Simulator:
        argv = [sys.executable, "-m", "bot", "simulator", "--host", LOOPBACK]
        argv += ["--port", str(self.port)]
        self.child = self.ctx.spawn(
            "simulator", argv, child_env(), port=self.port, health_path="/_simulator/requests"
        )
        return self

    def stop(self) -> None:
        if self.child is not None:
            self.ctx.stop(self.child)
            self.child = None

    def _post(self, path: str, body: Any = None) -> dict[str, Any]:
        answer = self.http.post(f"{self.url}{path}", json=body, timeout=60)
        answer.raise_for_status()
        return answer.json()

    def reset(self) -> None:
        """Demo catalogue back, no faults, no recorded requests."""
        self._post("/_simulator/reset")

    def latency(self, seconds_by_call: dict[str, float]) -> None:
        self._post("/_simulator/faults", {"clear": True, "latency": seconds_by_call})

    def round_trip(self) -> float:
        """Seconds for one signed GET of a library straight to the simulator: one Uplynk call."""
        started = time.perf_counter()
        answer = requests.get(
            f"{self.url}/api/v4/libraries/{MARKETING}",
            params=sign({}, self.user_id, self.api_key),
            timeout=30,
        )
        answer.raise_for_status()
        return time.perf_counter() - started

    def seed(self, count: int, prefix: str) -> list[str]:
        return self._post("/_simulator/assets", {"count": count, "prefix": prefix})["ids"]

    def requests(self) -> list[dict[str, Any]]:
        answer = self.http.get(f"{self.url}/_simulator/requests", timeout=60)
        answer.raise_for_status()
        return answer.json()["requests"]


# ---------------------------------------------------------------------------- stand-in


class StandIn:
    """`python -m bot.slack_standin.server` in its own process; its calls read over HTTP."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.port = free_port()
        self.base = f"http://{LOOPBACK}:{self.port}"
        self.api_url = f"{self.base}/api/"
        self.http = requests.Session()
        self.child: BotProcess | None = None

    def start(self) -> StandIn:
        argv = [sys.executable, "-m", "bot.slack_standin.server", "-q"]
        argv += ["--host", LOOPBACK, "--port", str(self.port)]
        self.child = self.ctx.spawn("slack-standin", argv, child_env(), port=self.port)
        return self

    def stop(self) -> None:
        if self.child is not None:
            self.ctx.stop(self.child)
            self.child = None

    def response_url(self, key: str) -> str:
        return f"{self.base}/response/{key}"

    def calls(self) -> list[dict[str, Any]]:
        answer = self.http.get(f"{self.base}/_standin/calls", timeout=60)
        answer.raise_for_status()
        return answer.json()

    def reset(self) -> None:
        self.http.post(f"{self.base}/_standin/reset", timeout=30).raise_for_status()

    def wait(
        self,
        done: Callable[[list[dict[str, Any]]], bool],
        timeout: float,
        interval: float = 0.05,
    ) -> tuple[bool, list[dict[str, Any]]]:
        """Poll the recorded calls until ``done(calls)``; (met, last calls seen)."""
        deadline = time.monotonic() + timeout
        while True:
            calls = self.calls()
            if done(calls):
                return True, calls
            if time.monotonic() >= deadline:
                return False, calls
            time.sleep(interval)


class SocketStandIn(StandIn):
    """The stand-in in this process with Socket Mode on: envelopes are sent from here.

    Its Web API, response_urls and recorded calls are served over HTTP as the child's are;
    ``socket_mode`` delivers envelopes and records acks (and their latency) itself.
    """

    def __init__(self, ctx: Context, app_token: str = APP_TOKEN) -> None:
        super().__init__(ctx)
        self.app_token = app_token
        self.server: SlackStandIn | None = None

    def start(self) -> SocketStandIn:
        self.server = SlackStandIn(LOOPBACK, self.port).start()
        self.server.socket_mode.enable(self.app_token)
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    @property
    def socket_mode(self) -> SocketModeStandIn:
        assert self.server is not None
        return self.server.socket_mode


def summary_calls(calls: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Library summaries posted in the command's channel, by operation id."""
    found = {}
    for call in calls:
        if call["method"] != "chat.postMessage" or call.get("error"):
            continue
        if call["payload"].get("channel") == NOTIFY:
            continue
        value = button_value(call, "addtolib_undo") or button_value(call, "addtolib_retry")
        if value:
            found.setdefault(value, call)
    return found


def notify_details_ids(calls: Iterable[dict[str, Any]]) -> set[str]:
    """Operation ids whose details reached the notification thread."""
    ids = set()
    for call in calls:
        payload = call["payload"]
        if call["method"] == "chat.postMessage" and payload.get("channel") == NOTIFY:
            match = re.search(r"Operation `([0-9a-f]{32})`", payload.get("text") or "")
            if match:
                ids.add(match.group(1))
    return ids


def previews(calls: Iterable[dict[str, Any]], prefix: str) -> dict[str, dict[str, Any]]:
    """Confirmation previews (they carry an addtolib_confirm button) by response_url key."""
    found = {}
    for call in calls:
        key = call.get("key") or ""
        if call["method"] != "response_url" or not key.startswith(prefix) or call.get("error"):
            continue
        if button_value(call, "addtolib_confirm"):
            found.setdefault(key, call)
    return found


# ---------------------------------------------------------------------------- the bot


class Server:
    """The Procfile's web command (``python -m bot web``) with its settings, on a free port.

    ``app`` (the bare-Bolt baseline) replaces it with ``python -m <module>``, which serves that
    app with the same server (bot.web.serve) in a single process.
    """

    def __init__(self, ctx: Context, name: str, env: dict[str, str], app: str | None = None):
        self.ctx = ctx
        self.name = name
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        procfile_env, argv = procfile_command("web")
        if argv[:3] != ["python", "-m", "bot"]:
            raise RuntimeError(f"unexpected Procfile web command: {argv!r}")
        argv[0] = sys.executable
        if app is not None:
            argv = [sys.executable, "-m", app]
        self.argv = argv
        self.env = child_env({**procfile_env, **env, "PORT": str(self.port)})
        self.child: BotProcess | None = None

    def start(self) -> Server:
        self.child = self.ctx.spawn(self.name, self.argv, self.env, port=self.port, under_test=True)
        return self

    def stop(self) -> None:
        if self.child is not None:
            self.ctx.stop(self.child)
            self.child = None

    def worker_pids(self) -> list[int]:
        pid = self.child.pid if self.child is not None else None
        assert pid is not None
        path = Path(f"/proc/{pid}/task/{pid}/children")
        return [int(p) for p in path.read_text().split()]

    def worker_rss_kib(self) -> int:
        """VmRSS of the (single) web process, in KiB."""
        pids = self.worker_pids()
        if len(pids) != 1:
            raise RuntimeError(f"expected one web process, found {pids}")
        for line in Path(f"/proc/{pids[0]}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS line")


def worker_cpu_seconds(server: Server) -> float:
    """User + system CPU seconds used so far by the server's web process(es)."""
    total = 0
    for pid in server.worker_pids():
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def bot_env(sim: Simulator, standin: StandIn, **extra: str) -> dict[str, str]:
    """Settings for the real bot: simulator, stand-in, SQLite in the work dir, admin policy."""
    work = sim.ctx.work_dir
    policy = work / "policy.toml"
    policy.write_text(f'admins = ["{ADMIN}"]\n')
    db = work / f"bench-{time.monotonic_ns()}.db"
    env = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": standin.api_url,
        "UPLYNK_API_URL": sim.url,
        "UPLYNK_USER_ID": sim.user_id,
        "UPLYNK_API_KEY": sim.api_key,
        "DATABASE_URL": f"sqlite:///{db}",
        "ADDTOLIB_POLICY": str(policy),
        "ADDTOLIB_NOTIFY_CHANNEL": NOTIFY,
    }
    env.update(extra)
    return env


def start_bot(ctx: Context, sim: Simulator, standin: StandIn, **extra: str) -> Server:
    return Server(ctx, "bot", bot_env(sim, standin, **extra)).start()


def start_bare_bolt(ctx: Context, standin: StandIn) -> Server:
    env = {
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": standin.api_url,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
    }
    return Server(ctx, "bare-bolt", env, app=BARE_BOLT_APP).start()


def start_socket_bot(
    ctx: Context, sim: Simulator, standin: SocketStandIn, **extra: str
) -> BotProcess:
    """The Procfile's worker (`python -m bot socket`), once it has opened its WebSocket."""
    settings, argv = procfile_command("worker")
    if argv[:1] != ["python"]:
        raise RuntimeError(f"unexpected Procfile worker command: {argv!r}")
    argv[0] = sys.executable
    env = bot_env(sim, standin, SLACK_APP_TOKEN=standin.app_token, **extra)
    socket_mode = standin.socket_mode
    before = len(socket_mode.connections)
    return ctx.spawn(
        "bot-socket",
        argv,
        child_env({**settings, **env}),
        ready=lambda: len(socket_mode.connections) > before,
        under_test=True,
    )


# ---------------------------------------------------------------------------- Slack side


def command_fields(
    text: str, response_url: str, user_id: str = ADMIN, channel: str = CHANNEL
) -> dict[str, str]:
    """A /addtolib slash command as Slack sends it: HTTP form fields, or an envelope's payload."""
    return slack_requests.command_fields(
        text,
        response_url=response_url,
        trigger_id=SlackSender.trigger_id(),
        user_id=user_id,
        user_name=user_id.lower(),
        channel_id=channel,
        channel_name=CHANNEL_NAME,
        team_id=TEAM,
    )


class Sender:
    """Slack's side of POST /slack/events: signed slash commands and clicks on one Session,
    each timed from sending to the whole answer read."""

    def __init__(self, base_url: str, secret: str = SIGNING_SECRET, timeout: float = 30) -> None:
        self.session = requests.Session()
        # Loopback only: skip proxy and .netrc look-ups, which cost the load generator CPU.
        self.session.trust_env = False
        self.slack = SlackSender(base_url, secret, timeout=timeout, session=self.session)
        self.url = self.slack.url
        self.stale_retries = 0

    def post(self, fields: dict[str, str]) -> tuple[requests.Response, float]:
        """Sign and POST; (response, seconds from sending to the whole answer read)."""
        body, headers = self.slack.signed_form(fields)
        started = time.perf_counter()
        try:
            response = self.slack.raw(body, headers)
        except requests.ConnectionError:
            # the server closes keep-alive connections left idle; a request sent on one just
            # as it closes is reset before the server read it. Send it again, timed afresh.
            self.stale_retries += 1
            started = time.perf_counter()
            response = self.slack.raw(body, headers)
        _ = response.content
        return response, time.perf_counter() - started

    def command(
        self, text: str, response_url: str, user_id: str = ADMIN, channel: str = CHANNEL
    ) -> tuple[requests.Response, float]:
        return self.post(command_fields(text, response_url, user_id, channel))

    def click(
        self, action_id: str, value: str, response_url: str, user_id: str = ADMIN
    ) -> tuple[requests.Response, float]:
        payload = self.slack.block_actions_payload(
            action_id,
            value,
            user_id=user_id,
            user_name=user_id.lower(),
            channel_id=CHANNEL,
            channel_name=CHANNEL_NAME,
            team_id=TEAM,
            response_url=response_url,
        )
        return self.post({"payload": json.dumps(payload)})

    def close(self) -> None:
        self.session.close()


def add_text(asset_ids: Iterable[str], library: str = '"Marketing Library"') -> str:
    return f"{library} {' '.join(asset_ids)}"


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def fmt_s(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 100 else f"{seconds:,.0f} s"
