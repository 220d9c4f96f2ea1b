"""The drain job: APScheduler with a memory job store, one drain at a time, and a shutdown that
lets a drain in progress finish (a drain cut between send and mark-sent would resend)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from apscheduler.jobstores.memory import MemoryJobStore  # type: ignore[import-untyped]

from tests.outbox.conftest import NON_EU, converse, rows
from triage.flows.engine import Engine
from triage.outbox.dispatcher import Dispatcher, DispatcherConfig, DrainReport
from triage.outbox.scheduler import JOB_ID, OutboxScheduler
from triage.outbox.senders import Delivery, SentReceipt
from triage.service.client_events import ConversationStore
from triage.store.db import SessionFactory
from triage.store.models import utcnow
from triage_sandbox.outbox import ManualClock, RecordingSender

HANG_GUARD_SECONDS = 20.0


async def wait_for(condition: Callable[[], bool]) -> None:
    """Poll until `condition` holds; fail instead of hanging if it never does."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + HANG_GUARD_SECONDS
    while not condition():
        assert loop.time() < deadline, "condition never became true"
        await asyncio.sleep(0.01)


async def test_the_job_drains_the_outbox_and_keeps_nothing_itself(
    sessions: SessionFactory, engine: Engine
) -> None:
    now = ManualClock(utcnow())
    store = ConversationStore(sessions, clock=now.now)
    cid = await converse(store, engine, now, "s1", NON_EU)
    due = [r.id for r in await rows(sessions, cid) if r.due_at <= utcnow()]
    sender = RecordingSender()
    dispatcher = Dispatcher(
        sessions,
        senders={"telegram": sender},
        profile=engine.profile,
        config=DispatcherConfig(rate_limit=False),
    )
    scheduler = OutboxScheduler(dispatcher, interval_seconds=0.05)
    scheduler.start()
    try:
        job = scheduler.apscheduler.get_job(JOB_ID)
        assert (job.max_instances, job.coalesce, job.misfire_grace_time) == (1, True, None)
        assert isinstance(scheduler.apscheduler._jobstores["default"], MemoryJobStore)
        assert len(scheduler.apscheduler.get_jobs()) == 1
        await wait_for(lambda: len(sender.sent) >= len(due))
        await wait_for(lambda: scheduler.runs >= 2)
    finally:
        await scheduler.shutdown()
    assert not scheduler.running
    assert sorted(s.delivery.outbox_id for s in sender.sent) == sorted(due)
    assert scheduler.total.sent == len(due)


class HeldOpenSender:
    """A send that stays in flight until the test lets it finish."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.finish = asyncio.Event()
        self.sent: list[Delivery] = []

    async def send(self, delivery: Delivery) -> SentReceipt:
        self.entered.set()
        await self.finish.wait()
        self.sent.append(delivery)
        return SentReceipt()


async def test_shutdown_waits_for_the_drain_in_progress(
    sessions: SessionFactory, engine: Engine
) -> None:
    now = ManualClock(utcnow())
    store = ConversationStore(sessions, clock=now.now)
    cid = await converse(store, engine, now, "s2", ["/start"])
    sender = HeldOpenSender()
    dispatcher = Dispatcher(
        sessions,
        senders={"telegram": sender},
        profile=engine.profile,
        config=DispatcherConfig(rate_limit=False, batch_size=1),
    )
    scheduler = OutboxScheduler(dispatcher, interval_seconds=0.05)
    scheduler.start()
    await asyncio.wait_for(sender.entered.wait(), HANG_GUARD_SECONDS)
    stopping = asyncio.create_task(scheduler.shutdown())
    for _ in range(50):  # let the loop run: a shutdown that did not wait would finish now
        await asyncio.sleep(0)
    assert not stopping.done()  # the send is still in flight
    sender.finish.set()
    await asyncio.wait_for(stopping, HANG_GUARD_SECONDS)

    assert not scheduler.running
    (first, *rest) = await rows(sessions, cid)
    assert [d.outbox_id for d in sender.sent] == [first.id]
    assert first.status == "sent"  # marked, not cut off between send and mark
    assert all(r.status == "pending" for r in rest)  # no drain started after shutdown began


async def test_a_drain_requested_during_a_drain_runs_right_after_it(
    sessions: SessionFactory,
    engine: Engine,
) -> None:
    """A reply queued while the dispatcher is busy goes out after that drain, not a tick later."""
    calls: list[int] = []
    gate = asyncio.Event()

    class SlowDispatcher(Dispatcher):
        async def drain(self, **kwargs: object) -> DrainReport:  # type: ignore[override]
            calls.append(len(calls))
            if len(calls) == 1:
                await gate.wait()
            return DrainReport()

    sched = OutboxScheduler(
        SlowDispatcher(sessions, senders={"telegram": RecordingSender()}, profile=engine.profile),
        interval_seconds=3600,
    )
    sched.start()
    try:
        for _ in range(100):
            if calls:
                break
            await asyncio.sleep(0.01)
        sched.request_drain()  # the first drain is still running
        gate.set()
        for _ in range(200):
            if len(calls) >= 2:
                break
            await asyncio.sleep(0.01)
        assert len(calls) == 2
    finally:
        await sched.shutdown()
