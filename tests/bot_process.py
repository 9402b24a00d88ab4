"""Run the bot (or any server) as a real subprocess and wait until it is ready.

Shared by the tests and the benchmarks (benchmarks/harness.py).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def procfile_command(process: str) -> tuple[dict[str, str], list[str]]:
    """A Procfile process (`web`, `worker`): its `env NAME=value` settings and its argv."""
    for line in (REPO_ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{process}:"):
            words = shlex.split(line.partition(":")[2])
            if words and words[0] == "env":
                words.pop(0)
            settings = {}
            while words and "=" in words[0] and not words[0].startswith("-"):
                name, _, value = words.pop(0).partition("=")
                settings[name] = value
            return settings, words
    raise RuntimeError(f"the Procfile has no {process}: line")


def gunicorn_path() -> str:
    candidate = Path(sys.executable).parent / "gunicorn"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("gunicorn")
    if found is None:
        raise RuntimeError("gunicorn is not installed")
    return found


class BotProcess:
    """A server subprocess: ``python -m bot serve`` by default, or gunicorn.

    ``env`` is added to ``base_env`` (the current environment by default; ``PORT`` is set
    to ``port``). ``argv`` replaces the command line; ``procfile=True`` runs the Procfile's
    web command; ``gunicorn=True`` runs ``gunicorn <app>`` with one worker and 8 threads.
    Output goes to ``log_path`` (a temp file by default). Start-up waits for
    ``GET health_path`` to answer 200, or for ``ready()`` (Socket Mode serves no HTTP).
    ``cpus`` pins the process (and what it forks).
    """

    def __init__(
        self,
        env: dict[str, str] | None = None,
        *,
        port: int | None = None,
        argv: Sequence[str] | None = None,
        gunicorn: bool = False,
        procfile: bool = False,
        app: str = "bot.wsgi:app",
        host: str = "127.0.0.1",
        cwd: str | Path = REPO_ROOT,
        log_path: str | Path | None = None,
        startup_timeout: float = 15.0,
        ready: Callable[[], bool] | None = None,
        health_path: str = "/healthz",
        base_env: Mapping[str, str] | None = None,
        cpus: set[int] | None = None,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        procfile_env: dict[str, str] = {}
        if argv is not None:
            self.argv = list(argv)
        elif procfile:  # the Procfile's web command, run with this interpreter
            procfile_env, words = procfile_command("web")
            self.argv = [sys.executable if word == "python" else word for word in words]
        elif gunicorn:
            self.argv = [
                gunicorn_path(),
                app,
                "-b",
                f"{host}:{self.port}",
                "--threads",
                "8",
                "-w",
                "1",
                "--graceful-timeout",
                "5",
                "--chdir",
                str(cwd),
            ]
        else:
            self.argv = [sys.executable, "-m", "bot", "serve"]
        base = os.environ if base_env is None else base_env
        self.env = {**base, **procfile_env, "PYTHONUNBUFFERED": "1", "PORT": str(self.port)}
        self.env.update(env or {})
        self.cwd = str(cwd)
        if log_path is None:
            fd, name = tempfile.mkstemp(prefix="botprocess-", suffix=".log")
            os.close(fd)
            log_path = name
        self.log_path = Path(log_path)
        self.startup_timeout = startup_timeout
        self.ready = ready
        self.health_path = health_path
        self.cpus = cpus
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def events_url(self) -> str:
        return f"{self.url}/slack/events"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def returncode(self) -> int | None:
        return self.proc.poll() if self.proc else None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def output(self) -> str:
        """Everything the process wrote to stdout/stderr so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def print_output(self, label: str = "") -> None:
        print(f"----- {label or ' '.join(self.argv)} (log {self.log_path}) -----")
        print(self.output())
        print("----- end -----")

    def start(self) -> BotProcess:
        """Start and wait until it is ready (see the class); on failure print the log."""
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: kill() reaches gunicorn's workers
                preexec_fn=self._pin if self.cpus else None,
            )
        deadline = time.monotonic() + self.startup_timeout
        last_error: object = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.print_output("exited during start-up")
                raise RuntimeError(
                    f"{self.argv!r} exited with {self.proc.returncode} during start-up:\n"
                    + self.output()[-4000:]
                )
            if self.ready is not None:
                if self.ready():
                    return self
                time.sleep(0.05)
                continue
            try:
                if requests.get(f"{self.url}{self.health_path}", timeout=1).status_code == 200:
                    return self
            except requests.RequestException as exc:
                last_error = exc
            time.sleep(0.05)
        self.print_output("did not become healthy")
        self.stop()
        raise RuntimeError(
            f"{self.argv!r} not healthy within {self.startup_timeout}s ({last_error}):\n"
            + self.output()[-4000:]
        )

    def _pin(self) -> None:
        # In the child before exec: the affinity is inherited by gunicorn's forked workers.
        os.sched_setaffinity(0, self.cpus or set())

    def _signal_group(self, sig: int) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, wait up to ``timeout`` s, then SIGKILL. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.proc.wait(5)
        self._signal_group(signal.SIGKILL)  # stray children of this process's group
        return self.proc.returncode

    def kill(self) -> int | None:
        """SIGKILL the whole process group at once (a crash)."""
        if self.proc is None:
            return None
        self._signal_group(signal.SIGKILL)
        self.proc.wait(5)
        return self.proc.returncode

    def __enter__(self) -> BotProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
