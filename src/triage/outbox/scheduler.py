"""The job that drains the outbox: one APScheduler 3 interval job per worker process.

The scheduler keeps nothing: it uses the default MemoryJobStore and the outbox table is the
truth (a job store shared between schedulers runs jobs twice or not at all, and a persistent
one would be a second copy of what the table already says). `max_instances=1` and
`coalesce=True` keep one drain at a time per process; `misfire_grace_time=None` runs a late
drain however late. Several processes may run this job at once: the claim's row lease keeps
each row with one of them.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]

from triage.outbox.dispatcher import Dispatcher, DrainReport

log = logging.getLogger(__name__)

JOB_ID = "drain"


class OutboxScheduler:
    """Runs `Dispatcher.drain` every `interval_seconds` on the running event loop."""

    def __init__(self, dispatcher: Dispatcher, *, interval_seconds: float = 1.0) -> None:
        if interval_seconds <= 0:
            raise ValueError(f"interval_seconds must be positive, not {interval_seconds}")
        self._dispatcher = dispatcher
        self._interval = interval_seconds
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopping = False
        self._again = False
        #: Counts of everything drained since start (for logs and tests).
        self.total = DrainReport()
        self.runs = 0

    @property
    def apscheduler(self) -> AsyncIOScheduler:
        """The underlying scheduler (to inspect the job; do not add jobs of your own)."""
        return self._scheduler

    @property
    def running(self) -> bool:
        """Whether the job is scheduled."""
        return bool(self._scheduler.running)

    async def _drain(self) -> None:
        if self._stopping:
            return
        self._idle.clear()
        try:
            while True:
                self._again = False
                report = await self._dispatcher.drain(stop=lambda: self._stopping)
                self.total.add(report)
                self.runs += 1
                if report.claimed:
                    log.info("outbox drained: %s", report)
                # Rows queued while this drain ran were asked for now, not at the next tick.
                if not self._again or self._stopping:
                    break
        finally:
            self._idle.set()

    def request_drain(self) -> None:
        """Drain as soon as possible: now when idle, or right after the drain in progress.

        APScheduler skips a run while one is going (max_instances=1), so a request made during
        a drain would otherwise wait for the next tick.
        """
        if not self._scheduler.running or self._stopping:
            return
        if not self._idle.is_set():
            self._again = True
            return
        job = self._scheduler.get_job(JOB_ID)
        if job is not None:
            job.modify(next_run_time=datetime.now(UTC))
            self._scheduler.wakeup()

    def start(self) -> None:
        """Schedule the drain job (first run now); call from inside the running event loop."""
        self._stopping = False
        self._scheduler.add_job(
            self._drain,
            "interval",
            seconds=self._interval,
            id=JOB_ID,
            replace_existing=True,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            next_run_time=datetime.now(UTC),
        )
        self._scheduler.start()

    async def shutdown(self) -> None:
        """Stop scheduling and wait for a drain in progress to finish.

        APScheduler's asyncio executor cancels running jobs on shutdown; a drain cancelled
        between a send and its mark-sent would send that row again later. So no new drain
        starts, the running one completes, and only then is the scheduler shut down.
        """
        if not self._scheduler.running:
            return
        self._stopping = True
        self._scheduler.pause()
        await self._idle.wait()
        self._scheduler.shutdown(wait=False)
        # AsyncIOScheduler.shutdown is carried out by a callback on the loop: let it run.
        await asyncio.sleep(0)
