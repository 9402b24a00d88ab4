"""The long-lived objects listeners and jobs share: settings, clients, store, policy, pools."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, cast

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from bot import metrics
from bot.config import Settings
from bot.core.delivery.outbox import Outbox
from bot.core.heartbeat import Heartbeat
from bot.core.home import HomeQuery, home_refresh
from bot.core.library_directory import LibraryDirectory
from bot.core.operation import Operation
from bot.core.policy import Policy, UsergroupCache
from bot.core.policy_holder import PolicyHolder
from bot.core.schedule.runner import ScheduleRunner
from bot.core.schedule.zones import UserZones
from bot.core.seen_events import SeenEvents
from bot.core.steps import WorkflowSteps
from bot.core.store import OperationStore
from bot.core.workflow import Workflow
from bot.slack.delivery.owing import Owing, approval_recipients
from bot.slack.delivery.pacing import Pacer
from bot.slack.delivery.rendering import Renderer
from bot.slack.delivery.worker import DeliveryWorker, delivery_client
from bot.slack.home.publish import HomeRenderer
from bot.slack.notify import Notifier
from bot.uplynk.client import UplynkClient

log = logging.getLogger(__name__)
#: Threads for the modal's Slack and Uplynk calls (type-ahead refresh, modal previews).
UI_THREADS = 8


@dataclass
class Services:
    """Everything a job needs; built once per process by build_services()."""

    settings: Settings
    client: WebClient
    store: OperationStore
    uplynk: UplynkClient
    policy: Policy | PolicyHolder
    usergroups: UsergroupCache
    workflow: Workflow
    notifier: Notifier
    pool: ThreadPoolExecutor
    heartbeat: Heartbeat | None = None  # once a server starts it
    scheduler: ScheduleRunner | None = None  # likewise
    outbox: Outbox | None = None
    delivery: DeliveryWorker | None = None  # started by bot.server.start_delivery
    inflight: set[Future] = field(default_factory=set)
    # Quick Slack calls that must not queue behind Uplynk work (a trigger id lasts 3 s), and
    # the library list behind the modal's type-ahead.
    ui_pool: ThreadPoolExecutor | None = None
    directory: LibraryDirectory | None = None
    draining: threading.Event = field(default_factory=threading.Event)
    seen_events: SeenEvents | None = None  # each Slack event_id handled once (docs/SPEC.md §14)
    steps: WorkflowSteps | None = None  # Workflow Builder step executions (docs/SPEC.md §13)

    def refresh_home(self, *user_ids: str) -> None:
        """Publish these users' App Homes again (paced, coalesced: bot.core.home)."""
        if self.outbox is not None:
            self.outbox.add(home_refresh(user_ids, self.settings.home_refresh_seconds))

    def groups_of(self, user_id: str) -> set[str]:
        return self.usergroups.groups_of(user_id)

    def submit(self, job: Callable[..., None], *args: Any) -> Future:
        """Run network work off Bolt's listener threads, so acknowledgements never wait."""
        metrics.JOBS_QUEUED.inc()
        future = self.pool.submit(_counted, job, self, *args)
        self.inflight.add(future)
        future.add_done_callback(self.inflight.discard)
        return future

    def submit_ui(self, job: Callable[..., None], *args: Any) -> Future:
        """Like submit, on the small pool kept free for views.open and the type-ahead list."""
        future = (self.ui_pool or self.pool).submit(job, self, *args)
        self.inflight.add(future)
        future.add_done_callback(self.inflight.discard)
        return future

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every submitted job has finished (the console and tests use this)."""
        started = time.monotonic()
        _done, not_done = wait(list(self.inflight), timeout=timeout)
        if not_done or self.delivery is None:
            return not not_done
        # What the jobs owe Slack is delivered from the outbox: wait for that too.
        left = None if timeout is None else max(0.0, timeout - (time.monotonic() - started))
        return self.delivery.wait_idle(left)

    def stop_taking_work(self) -> None:
        """SIGTERM: refuse new requests, and let running operations stop after their batch."""
        if not self.draining.is_set():
            log.info("stopping: no new work; running operations stop after their current batch")
        self.draining.set()
        self.workflow.stop_new_batches()
        if self.heartbeat is not None:
            self.heartbeat.stop_sweeping()
        if self.scheduler is not None:  # what comes due now is for another instance
            self.scheduler.stop()

    def drain(self, grace: float) -> bool:
        """stop_taking_work(), then wait up to `grace` seconds for the jobs in flight."""
        self.stop_taking_work()
        finished = self.wait_idle(timeout=grace)
        if not finished:
            log.warning("%d jobs still running after %g s; leaving them", len(self.inflight), grace)
        return finished

    def not_ready(self) -> str | None:
        """Why GET /readyz should answer 503 (None when ready)."""
        if self.draining.is_set():
            return "shutting_down"
        return None if self.store.ping() else "database_unavailable"

    def close(self) -> None:
        if isinstance(self.policy, PolicyHolder):
            self.policy.stop()
        if self.heartbeat is not None:
            self.heartbeat.stop()
        if self.scheduler is not None:
            self.scheduler.stop()
        self.pool.shutdown(wait=False, cancel_futures=True)
        if self.delivery is not None:
            self.delivery.stop()
        if self.ui_pool is not None:
            self.ui_pool.shutdown(wait=False, cancel_futures=True)
        self.store.dispose()


def _counted(job: Callable[..., None], *args: Any) -> None:
    """Run a job, moving it from the queued to the running gauge and out again."""
    metrics.JOBS_QUEUED.dec()
    metrics.JOBS_RUNNING.inc()
    try:
        job(*args)
    finally:
        metrics.JOBS_RUNNING.dec()


def slack_client(settings: Settings) -> WebClient:
    client = WebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url)
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=2))
    return client


def _slack_zone(client: WebClient, user_id: str) -> str | None:
    """The user's time zone as Slack knows it (users.info -> user.tz, an IANA name)."""
    user = client.users_info(user=user_id).get("user") or {}
    return user.get("tz") or None


def build_services(settings: Settings, policy: Policy | PolicyHolder | None = None) -> Services:
    """Wire the parts together from settings (policy loaded from ADDTOLIB_POLICY if not given)."""
    client = slack_client(settings)
    store = OperationStore(settings.database_url)
    store.create_schema()
    uplynk = UplynkClient.from_settings(settings)
    # One PolicyHolder, shared by the jobs and the workflow: a policy edit swaps in here.
    if not isinstance(policy, PolicyHolder):
        policy = PolicyHolder(None if policy else settings.policy_path, policy).watch()
    usergroups = UsergroupCache(client, ttl=settings.usergroup_ttl, group_ids=policy.usergroups)
    policy.on_change(lambda fresh: usergroups.set_group_ids(fresh.usergroups))
    owing = Owing(
        settings.notify_channel,
        approval_channel=settings.approval_channel,
        approvers=lambda view: approval_recipients(view, usergroups.members, policy.admins),
        asked=lambda operation: workflow.approvals.store.get(operation.id) is not None,
        home_every=settings.home_refresh_seconds,
        home_watchers=lambda operation: deciders(policy, usergroups, operation),
    )
    workflow = Workflow(
        store,
        uplynk,
        cast(Policy, policy),  # the holder stands in for a Policy (PolicyHolder.__getattr__)
        usergroups.groups_of,
        confirm_ttl=settings.confirm_ttl,
        undo_window=settings.undo_window,
        owed=owing,
        # A batch presumed lost may be answered as late as one request can take.
        batch_grace=max(settings.lease_seconds, sum(uplynk.timeout)),
        approval_ttl=settings.approval_ttl,
        lookup_threads=settings.workers + UI_THREADS,
        zone_of=UserZones(lambda user: _slack_zone(client, user), ttl=settings.zone_ttl),
        schedule_grace=settings.schedule_grace,
        schedule_horizon=settings.schedule_horizon,
    )
    outbox = Outbox(store, lease_seconds=settings.outbox_lease)
    steps = WorkflowSteps(store)
    store.finish_listeners.append(steps.settle)  # an operation's end completes its step
    ui_pool = ThreadPoolExecutor(max_workers=UI_THREADS, thread_name_prefix="addtolib-ui")
    directory = LibraryDirectory(
        uplynk.find_libraries,
        ui_pool,
        fresh=settings.library_fresh,
        wait=settings.library_wait,
    )
    notifier = Notifier(client, store, settings.notify_channel)
    home = HomeRenderer(
        HomeQuery(
            store,
            policy,
            usergroups.groups_of,
            workflow.approvals.approvers_of,
            outbox,
            metrics.last_uplynk_call,
        ),
        notifier,
        directory,
    )
    delivery = DeliveryWorker(
        outbox,
        delivery_client(settings.slack_bot_token, settings.slack_api_url),
        Renderer(
            lambda op: workflow.approvals.approvers_of([op]).get(op.id, []),
            approval_view=workflow.approvals.view,
            home=home,
            step=steps.get,
        ),
        timeout=settings.delivery_timeout,
        pacer=Pacer(rate=settings.post_rate),
        backoff_base=settings.delivery_backoff,
        retention_days=settings.retention_days,
        prune_every=settings.prune_every,
        on_completed=steps.completed,
    )
    return Services(
        ui_pool=ui_pool,
        directory=directory,
        seen_events=SeenEvents(store),
        steps=steps,
        settings=settings,
        client=client,
        store=store,
        uplynk=uplynk,
        policy=policy,
        usergroups=usergroups,
        workflow=workflow,
        notifier=notifier,
        pool=ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="addtolib-job"),
        outbox=outbox,
        delivery=delivery,
    )


def deciders(
    policy: Policy | PolicyHolder, usergroups: UsergroupCache, operation: Operation
) -> list[str]:
    """Who may decide the operation's approval request, for their App Homes: the approvers the
    policy names, the cached members of its approver groups (asking Slack nothing: this runs
    inside the transaction that records the event), and the admins."""
    rules = policy.protections_for(operation.library_id)
    users = set(policy.admins) | {u for rule in rules for u in rule.approvers}
    for rule in rules:
        for group in rule.approver_usergroups:
            users |= usergroups.known_members(group)
    users.discard(operation.user_id)
    return sorted(users)
