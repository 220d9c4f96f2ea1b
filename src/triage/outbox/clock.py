"""Time for the dispatcher: wall time for the database, monotonic time for pacing."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Protocol

from triage.store.models import utcnow


class Clock(Protocol):
    """The three things the dispatcher asks of time; tests pass a manual one."""

    def now(self) -> datetime:
        """The current time, UTC, aware (compared with `due_at` and leases)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (rate limiting)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` (rate limiting)."""
        ...


class SystemClock:
    """The real clocks."""

    def now(self) -> datetime:
        """The current time, UTC, aware."""
        return utcnow()

    def monotonic(self) -> float:
        """`time.monotonic()`."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """`asyncio.sleep(seconds)`."""
        await asyncio.sleep(seconds)
