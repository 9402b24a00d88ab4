"""The console's world: Uplynk (embedded simulator), Slack stand-in, demo policy, the bot."""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from slack_bolt import App

from bot.config import ENV_NAMES, Settings, load_settings
from bot.console.clock import ConsoleClock
from bot.core.policy import Policy
from bot.redaction import configure_logging
from bot.server import start_delivery, start_heartbeat, start_schedule
from bot.simulator import DEMO_LIBRARY_IDS, UplynkSimulator
from bot.simulator.catalogue import demo_id
from bot.slack.app import build_app
from bot.slack.wiring import Services, build_services
from bot.slack_standin import SlackStandIn

DEMO_USER = "U0DEMO"
DEMO_ADMIN = "U0ADMIN"
DEMO_LEAD = "U0LEAD"  # approves changes to the protected demo library
PROTECTED_LIBRARY = "Ad Breaks"
CONSOLE_CHANNEL = "C0CONSOLE"
NOTIFY_CHANNEL = "C0NOTIFY"
APPROVAL_CHANNEL = "C0APPROVALS"
CHANNEL_NAMES = {
    CONSOLE_CHANNEL: "console",
    NOTIFY_CHANNEL: "notify",
    APPROVAL_CHANNEL: "approvals",
}
DATABASE_URL = "sqlite:///addtolib-console.db"
BOT_TOKEN = "xoxb-console"
UPLYNK_VARIABLES = ("UPLYNK_API_URL", "UPLYNK_USER_ID", "UPLYNK_API_KEY")
# Extra simulator assets for trying long jobs (`bulk N`): the demo catalogue holds only 40.
BULK_ASSETS = 2000


def demo_policy(user: str) -> Policy:
    """`user` may add to every demo library; DEMO_ADMIN is an admin; anyone else is refused.

    Ad Breaks is protected: a change there waits for DEMO_LEAD (or the admin) to approve it.
    """
    return Policy.from_dict(
        {
            "admins": [DEMO_ADMIN],
            "allow": [{"libraries": sorted(DEMO_LIBRARY_IDS.values()), "users": [user]}],
            "protect": [
                {"libraries": [DEMO_LIBRARY_IDS[PROTECTED_LIBRARY]], "approvers": [DEMO_LEAD]}
            ],
        },
        source="<console demo policy>",
    )


def bulk_asset_ids(count: int = BULK_ASSETS) -> list[str]:
    return [demo_id("asset", f"Bulk Clip {n:04d}") for n in range(1, count + 1)]


def _seed_bulk(simulator: UplynkSimulator) -> None:
    for n, asset_id in enumerate(bulk_asset_ids(), start=1):
        simulator.catalogue.add_asset(f"Bulk Clip {n:04d}", asset_id, external_id=f"BULK-{n:04d}")


@dataclass
class World:
    """Everything the console runs in-process; close() stops it all."""

    settings: Settings
    services: Services
    app: App
    standin: SlackStandIn
    simulator: UplynkSimulator | None
    policy_note: str
    bulk_ids: list[str] = field(default_factory=list)
    clock: ConsoleClock = field(default_factory=ConsoleClock)

    def close(self) -> None:
        self.services.close()
        self.standin.stop()
        if self.simulator is not None:
            self.simulator.stop()


def open_world(
    env: Mapping[str, str],
    user: str,
    usergroups: dict[str, list[str]] | None = None,
    latency: float = 0.0,
    verbose: bool = False,
) -> World:
    """Start the simulator (unless UPLYNK_* are all set), the stand-in, and the bot's services.

    Only the process environment is read (no .env), and no SLACK_* variable: a production
    .env must not point a practice session at a real workspace.
    """
    chosen = {k: v for k, v in env.items() if k in ENV_NAMES.values() and k[:6] != "SLACK_"}
    base = load_settings(env=chosen, dotenv=False)
    if chosen.get("ADDTOLIB_POLICY", "").strip():
        policy, policy_note = Policy.load(base.policy_path), f"policy file {base.policy_path}"
    else:
        policy = demo_policy(user)
        policy_note = (
            f"demo policy: {user} may add to the demo libraries, {DEMO_ADMIN} is an admin, "
            f"anyone else is refused; {PROTECTED_LIBRARY} needs approval by {DEMO_LEAD} "
            f"(`user {DEMO_LEAD}`) or the admin"
        )
    with contextlib.ExitStack() as cleanup:
        simulator = None
        if not all(env.get(name, "").strip() for name in UPLYNK_VARIABLES):
            simulator = cleanup.enter_context(UplynkSimulator(host="127.0.0.1", port=0))
            _seed_bulk(simulator)
            if latency > 0:
                simulator.faults.set_latency("*", latency)
            base = replace(
                base,
                uplynk_api_url=simulator.url,
                uplynk_user_id=simulator.user_id,
                uplynk_api_key=simulator.api_key,
            )
        standin = cleanup.enter_context(SlackStandIn("127.0.0.1", 0, usergroups, token=BOT_TOKEN))
        settings = replace(
            base,
            slack_bot_token=BOT_TOKEN,
            slack_signing_secret=secrets.token_hex(16),
            slack_api_url=standin.url,
            database_url=env.get("DATABASE_URL", "").strip() or DATABASE_URL,
            notify_channel=base.notify_channel or NOTIFY_CHANNEL,
            approval_channel=base.approval_channel or APPROVAL_CHANNEL,
        )
        configure_logging(settings, level=logging.INFO if verbose else logging.ERROR)
        services = build_services(settings, policy=policy)
        cleanup.callback(services.close)
        clock = ConsoleClock()  # `wait` moves it forward (docs/SPEC.md §15)
        clock.use_in(services)
        # Report what a killed session left running before the first prompt.
        start_heartbeat(services, sweep_now=True)
        start_delivery(services)
        start_schedule(services)
        app = build_app(services)
        cleanup.pop_all()  # started: World.close() stops them from now on
    bulk = bulk_asset_ids() if simulator is not None else []
    return World(settings, services, app, standin, simulator, policy_note, bulk, clock)
