"""Command-line modes: console, serve, web, socket, simulator, history, migrate, check."""

from __future__ import annotations

import argparse
import json
import sys

from bot.config import REQUIRED, ConfigError, load_settings
from bot.core.policy import PolicyError

MODES = {
    "console": "play the Slack side in this terminal (embedded Uplynk simulator by default)",
    "serve": "Slack's HTTP endpoint: POST /slack/events, GET /healthz on $PORT",
    "web": "production (Procfile web): serve on $PORT in $WEB_CONCURRENCY processes",
    "socket": "Slack Socket Mode (needs SLACK_APP_TOKEN)",
    "simulator": "the Uplynk API emulator alone on a port",
    "history": "export the operation log (audit trail) as JSON lines",
    "migrate": "bring the database schema to the newest version (also done at start-up)",
    "check": "check the deployed configuration, changing nothing; exit 0 only if all is well",
}


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="python -m bot",
        description="addtolib: add Uplynk assets to a library from Slack, with preview and undo.",
    )
    modes = root.add_subparsers(dest="mode", metavar="MODE")
    for name, help_text in MODES.items():
        modes.add_parser(name, help=help_text, description=help_text, add_help=False)
    return root


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args, rest = parser().parse_known_args(argv[:1])
    rest = argv[1:]
    if args.mode is None:
        parser().print_help()
        return 2
    try:
        return RUNNERS[args.mode](rest)
    except (ConfigError, PolicyError) as exc:
        print(f"addtolib: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def run_serve(argv: list[str]) -> int:
    options = argparse.ArgumentParser(prog="python -m bot serve")
    options.add_argument("--port", type=int, help="default: $PORT or 3000")
    args = options.parse_args(argv)
    from bot.server import start_http

    settings = load_settings(require=REQUIRED["serve"])
    start_http(settings, port=args.port or settings.port)
    return 0


def run_web(argv: list[str]) -> int:
    argparse.ArgumentParser(prog="python -m bot web").parse_args(argv)
    from bot import web_processes

    # First: prometheus_client reads this variable when it is imported.
    made = web_processes.prepare_metrics_dir()
    try:
        settings = load_settings(require=REQUIRED["serve"])
        from bot.redaction import configure_logging
        from bot.server import start_web

        configure_logging(settings)
        return start_web(settings)
    finally:
        web_processes.remove_metrics_dir(made)


def run_socket(argv: list[str]) -> int:
    argparse.ArgumentParser(prog="python -m bot socket").parse_args(argv)
    from bot.server import start_socket_mode

    start_socket_mode(load_settings(require=REQUIRED["socket"]))
    return 0


def run_simulator(argv: list[str]) -> int:
    from bot.simulator.server import main as simulator_main

    return simulator_main(argv)


def run_console(argv: list[str]) -> int:
    from bot.console.main import main as console_main

    return console_main(argv)


def run_history(argv: list[str]) -> int:
    options = argparse.ArgumentParser(
        prog="python -m bot history", description="Export operations as JSON lines, newest first."
    )
    options.add_argument("--user", help="only this Slack user id's operations")
    options.add_argument("--library", help="only this library id")
    options.add_argument("--limit", type=int, default=1000)
    args = options.parse_args(argv)
    from bot.core.store import OperationStore

    store = OperationStore(load_settings().database_url)
    store.create_schema()
    for operation in store.recent(user_id=args.user, library_id=args.library, limit=args.limit):
        record = operation.to_dict()
        # A response_url lets its holder post into the channel for 30 minutes: not for auditors.
        record.pop("response_url", None)
        print(json.dumps(record, default=str))
    return 0


def run_migrate(argv: list[str]) -> int:
    options = argparse.ArgumentParser(
        prog="python -m bot migrate",
        description="Apply the database migrations (DATABASE_URL) up to the newest one.",
    )
    options.parse_args(argv)
    from bot.core import schema
    from bot.core.store import OperationStore

    store = OperationStore(load_settings().database_url)
    try:
        before = schema.upgrade(store.engine)
        after = schema.current_revision(store.engine)
    finally:
        store.dispose()
    if before == after:
        print(f"database schema already at revision {after}")
    else:
        print(f"database schema upgraded from {before or 'nothing'} to {after}")
    return 0


def run_check(argv: list[str]) -> int:
    argparse.ArgumentParser(
        prog="python -m bot check",
        description="Check variables, policy, Slack, Uplynk, database and channels (read-only).",
    ).parse_args(argv)
    from bot.check import main as check_main

    return check_main()


RUNNERS = {
    "serve": run_serve,
    "web": run_web,
    "socket": run_socket,
    "simulator": run_simulator,
    "console": run_console,
    "history": run_history,
    "migrate": run_migrate,
    "check": run_check,
}
