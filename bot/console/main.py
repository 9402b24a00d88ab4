"""`python -m bot console`: try the bot in a terminal, without Slack or Uplynk."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys

from bot.console.demo import (
    CHANNEL_NAMES,
    CONSOLE_CHANNEL,
    DEMO_ADMIN,
    DEMO_USER,
    World,
    open_world,
)
from bot.console.modal import ModalForm
from bot.console.render import PlainScreen, RichScreen, Screen
from bot.console.session import Note, Progress, Session, Shown
from bot.core.schedule.when import WhenError, parse_when
from bot.simulator import DEMO_ASSET_IDS, DEMO_LIBRARY_IDS

USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,}")
BUTTON = re.compile(r"\[?(\d+)\]?")
BULK_LIBRARY = "Sports Highlights"
HELP = f"""Console words:
  /addtolib ...        run the slash command (/addtolib help for the bot's own help)
  N                    press button [N]
  user U0ADMIN         play another Slack user ({DEMO_ADMIN} is the demo admin)
  channel C0OTHER      type in another channel
  bulk N [LIBRARY]     /addtolib LIBRARY (default "{BULK_LIBRARY}") with N simulator clips
  shortcut             the global shortcut: the modal as a form (library, assets, channel)
  shortcut message T   the message shortcut on a message whose text is T
  home                 open the app's Home tab (what waits for you, your recent operations)
  wait [90m]           move the clock on (90m, 2h, 3d), or to the next scheduled add, and
                       watch what comes due run (/addtolib LIBRARY ASSETS at 09:00 / in 2h)
  workflow LIB IDS [as U0X]  Workflow Builder runs the step "Add assets to a library" for you
                       (or for U0X): the preview comes by DM; the outputs show when it ends
  demo                 the demo libraries and assets
  quit                 leave (Ctrl-D too)"""


def parse_args(argv: list[str]) -> argparse.Namespace:
    options = argparse.ArgumentParser(
        prog="python -m bot console",
        description="Play the Slack side in this terminal: type /addtolib commands, "
        "press buttons by number. Uses an embedded Uplynk simulator unless UPLYNK_API_URL, "
        "UPLYNK_USER_ID and UPLYNK_API_KEY are set.",
    )
    options.add_argument("--user", default=DEMO_USER, help=f"Slack user id (default {DEMO_USER})")
    options.add_argument(
        "--channel", default=CONSOLE_CHANNEL, help=f"channel id (default {CONSOLE_CHANNEL})"
    )
    options.add_argument(
        "--latency", type=float, default=0.0, help="seconds the embedded simulator adds per call"
    )
    options.add_argument(
        "--usergroup",
        action="append",
        default=[],
        metavar="S0GROUP=U1,U2",
        help="a Slack user group and its members, for policies that name groups (repeatable)",
    )
    options.add_argument("--plain", action="store_true", help="plain text even on a terminal")
    options.add_argument(
        "-v", "--verbose", action="store_true", help="log warnings and info to stderr"
    )
    args = options.parse_args(argv)
    args.usergroups = {}
    for spec in args.usergroup:
        group, _, users = spec.partition("=")
        members = [u for u in users.split(",") if u]
        if not re.fullmatch(r"S[A-Z0-9]+", group) or not all(map(USER_ID.fullmatch, members)):
            options.error(f"--usergroup wants S0GROUP=U1,U2, not {spec!r}")
        args.usergroups[group] = members
    if not USER_ID.fullmatch(args.user):
        options.error(f"--user must be a Slack user id like {DEMO_USER}, not {args.user!r}")
    if not CHANNEL_ID.fullmatch(args.channel):
        options.error(f"--channel must be a channel id like {CONSOLE_CHANNEL}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    interactive = sys.stdin.isatty()
    fancy = interactive and sys.stdout.isatty() and not args.plain
    world = open_world(os.environ, args.user, args.usergroups, args.latency, verbose=args.verbose)
    assert world.settings.slack_signing_secret is not None  # open_world makes one
    try:
        session = Session(
            world.app,
            world.services,
            world.standin,
            world.settings.slack_signing_secret,
            args.user,
            args.channel,
            dict(CHANNEL_NAMES),
        )
        screen: Screen = RichScreen(session) if fancy else PlainScreen(session)
        screen.info(banner(world, session))
        Console(world, session, screen).run(interactive)
    finally:
        world.close()
    return 0


def banner(world: World, session: Session) -> str:
    lines = ["addtolib console: you play Slack; the bot runs here for real."]
    if world.simulator is not None:
        marketing, sports = DEMO_LIBRARY_IDS["Marketing Library"], DEMO_LIBRARY_IDS[BULK_LIBRARY]
        a, b = DEMO_ASSET_IDS[0], DEMO_ASSET_IDS[1]
        lines += [
            f"Uplynk: embedded simulator at {world.simulator.url} (type demo to list it)",
            f'  libraries: "Marketing Library" {marketing}, "{BULK_LIBRARY}" {sports}',
            f"  assets: {a} {b}",
            f'  try: /addtolib "Marketing Library" {a} {b}',
        ]
    else:
        lines.append(f"Uplynk: {world.settings.uplynk_api_url} (from UPLYNK_API_URL)")
    notify = session.channel_name(world.settings.notify_channel)
    database = world.settings.database_url
    lines += [
        f"Slack: you are {session.user} in #{session.channel_name(session.channel)}; "
        f"notifications go to #{notify}",
        f"Permissions: {world.policy_note}",
        f"Database: {database} (kept between sessions"
        + ("; the simulator starts afresh)" if world.simulator is not None else ")"),
        "Type help for the console's words, quit to leave.",
    ]
    return "\n".join(lines)


class Console:
    """The read-eval-print loop: one input line, then every message it caused."""

    def __init__(self, world: World, session: Session, screen: Screen):
        self.interactive = False
        self.world = world
        self.session = session
        self.screen = screen

    def run(self, interactive: bool) -> None:
        self.interactive = interactive
        while True:
            # What arrived meanwhile (the start-up sweep, a job left running after Ctrl-C).
            self.show([e for e in self.session.poll() if not isinstance(e, Progress)])
            try:
                line = self.screen.ask() if interactive else sys.stdin.readline()
            except (EOFError, KeyboardInterrupt):
                self.screen.info("")
                return
            if not interactive:
                if not line:
                    return
                line = line.rstrip("\n")
                if line.strip():
                    self.screen.echo(line)
            try:
                if self.handle(line.strip()) is False:
                    return
            except KeyboardInterrupt:
                self.screen.info("(stopped waiting; the bot carries on in the background)")

    def handle(self, line: str) -> bool | None:
        """Act on one input line; False ends the session."""
        word, _, rest = line.partition(" ")
        rest = rest.strip()
        if not line or line.startswith("#"):
            return None
        if word == "/addtolib":
            self.send(rest)
        elif word.startswith("/"):
            self.screen.info(f"Only /addtolib is installed here, not {word}.")
        elif button := BUTTON.fullmatch(line):
            self.show(self.session.press(int(button.group(1))))
            self.settle()
            opened = self.session.opened_by_click()  # the Home's `Add assets`
            if opened is not None:
                ModalForm(self).fill(opened)
        elif word == "workflow":
            self.workflow(rest)
        elif word == "home":
            self.show(self.session.home())
            self.settle()
        elif word in ("quit", "exit", "q"):
            return False
        elif word in ("help", "?"):
            self.screen.info(HELP)
        elif word == "user":
            self.switch_user(rest)
        elif word == "channel":
            self.switch_channel(rest)
        elif word == "bulk":
            self.bulk(rest)
        elif word == "shortcut":
            ModalForm(self).run(rest)
        elif word == "demo":
            self.screen.info(self.demo())
        elif word == "wait":
            self.wait(rest)
        elif word == "addtolib":
            self.screen.info(f"Slash commands start with a slash: /addtolib {rest}")
        elif word == "history":
            self.screen.info(f"History is a command: /addtolib history {rest}".rstrip())
        elif word in ("undo", "retry", "confirm", "cancel"):
            self.screen.info(f"{word.capitalize()} is a button: type the number shown beside it.")
        else:
            self.screen.info("Type /addtolib …, a button number, or help.")
        return None

    def send(self, text: str) -> None:
        self.show(self.session.command(text))
        self.settle()

    def show(self, events: list[Shown | Note]) -> None:
        for event in events:
            self.screen.show(event)

    def settle(self) -> None:
        """Wait for the bot's jobs, driving the progress bar, then show what they sent."""
        pending: list[Shown | Note] = []
        try:
            with self.screen.working() as bar:
                while True:
                    idle = self.session.idle(0.1)
                    for event in self.session.poll():
                        if isinstance(event, Progress):
                            bar.update(event)
                        else:
                            pending.append(event)
                    if idle:
                        break
        finally:
            self.show(pending)

    def switch_user(self, user: str) -> None:
        if not user:
            self.screen.info(f"You are {self.session.user}.")
        elif USER_ID.fullmatch(user):
            self.session.user = user
            self.screen.info(f"You are now {user}.")
        else:
            self.screen.info(f"A Slack user id looks like {DEMO_ADMIN}.")

    def switch_channel(self, channel: str) -> None:
        if CHANNEL_ID.fullmatch(channel):
            self.session.channel = channel
            self.screen.info(f"You are now in #{self.session.channel_name(channel)}.")
        else:
            self.screen.info(f"A channel id looks like {CONSOLE_CHANNEL}.")

    def bulk(self, rest: str) -> None:
        words = shlex.split(rest) if rest.count('"') % 2 == 0 else rest.split()
        if not words or not words[0].isdigit() or int(words[0]) < 1:
            self.screen.info("bulk N [LIBRARY]: e.g. bulk 300")
            return
        ids = self.world.bulk_ids[: int(words[0])]
        if not ids:
            self.screen.info("bulk needs the embedded simulator (UPLYNK_* are set).")
            return
        library = " ".join(words[1:]) or BULK_LIBRARY
        self.screen.info(f'(sending /addtolib "{library}" with {len(ids)} simulator clip ids)')
        self.send(f'"{library}" ' + " ".join(ids))

    def wait(self, rest: str) -> None:
        """Move the console's clock on (docs/SPEC.md §15) and run what came due."""
        services, clock = self.world.services, self.world.clock
        if rest:
            try:
                after = parse_when("in", rest).after
            except WhenError:
                after = None
            if after is None:
                self.screen.info(
                    "wait 90m, wait 2h, wait 3d, or wait alone for the next scheduled add."
                )
                return
            seconds = after.total_seconds()
        else:
            due = services.workflow.schedules.next_due_in(clock.ahead())
            if due is None:
                self.screen.info("Nothing is scheduled.")
                return
            seconds = max(0.0, due.total_seconds())
        clock.skip(seconds)
        self.screen.info(
            f"(the clock moved on {round(seconds)} s: it is now "
            f"{clock.now():%Y-%m-%d %H:%M:%S} UTC here)"
        )
        if services.scheduler is not None:
            services.scheduler.look()  # what came due is claimed and handed to the work pool
        self.settle()

    def workflow(self, rest: str) -> None:
        words = shlex.split(rest) if rest.count('"') % 2 == 0 else rest.split()
        requester = self.session.user
        if len(words) >= 2 and words[-2] == "as":
            requester = words[-1]
            words = words[:-2]
            if not USER_ID.fullmatch(requester):
                self.screen.info(f"as wants a Slack user id like {DEMO_ADMIN}.")
                return
        if len(words) < 2:
            self.screen.info(
                'workflow LIBRARY ASSETS [as U0X], e.g. workflow "Marketing Library" …'
            )
            return
        self.show(self.session.workflow(words[0], " ".join(words[1:]), requester))
        self.settle()

    def demo(self) -> str:
        if self.world.simulator is None:
            return "The demo catalogue lives in the embedded simulator; UPLYNK_* are set."
        catalogue = self.world.simulator.catalogue
        names = {lib.id: lib.desc for lib in catalogue.libraries.values()}
        lines = ["Demo libraries:"]
        lines += [f"  {lib_id}  {name}" for name, lib_id in DEMO_LIBRARY_IDS.items()]
        lines.append("Demo assets (and the libraries already holding them):")
        for asset in catalogue.lookup(DEMO_ASSET_IDS[:12]):
            held = ", ".join(names.get(i, i) for i in asset["libraries"]) or "-"
            lines.append(f"  {asset['id']}  {asset['desc']}  ({held})")
        lines.append(f"  … {len(DEMO_ASSET_IDS) - 12} more; bulk N adds simulator clips.")
        return "\n".join(lines)
