"""Test doubles for the outbox: an in-memory sender and a clock that only moves when told.

For tests only; production senders are the Telegram and Slack adapters.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from triage.outbox.senders import Delivery, SentReceipt

_NS = 1_000_000_000


class ManualClock:
    """Wall and monotonic time that advance only by `advance` and `sleep` (no real waiting).

    Time is kept in whole nanoseconds, so sums of sleeps carry no floating-point drift and a
    send at a reserved slot happens exactly at it.
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self._start = start
        self._elapsed_ns = 0
        #: Every sleep asked for, in order.
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        """Start time plus the time advanced so far (to the microsecond)."""
        return self._start + timedelta(microseconds=self._elapsed_ns // 1000)

    def monotonic(self) -> float:
        """Seconds advanced so far."""
        return self._elapsed_ns / _NS

    def monotonic_ns(self) -> int:
        """Nanoseconds advanced so far."""
        return self._elapsed_ns

    async def sleep(self, seconds: float) -> None:
        """Advance by `seconds` at once."""
        self.sleeps.append(seconds)
        self.advance(max(0.0, seconds))

    def advance(self, seconds: float) -> None:
        """Let time pass."""
        self._elapsed_ns += round(seconds * _NS)


@dataclass(frozen=True)
class Sent:
    """One delivery the RecordingSender accepted, and when (monotonic seconds and ns)."""

    delivery: Delivery
    at: float
    at_ns: int = 0


class RecordingSender:
    """Records every delivery; can be told to fail some of them first."""

    def __init__(self, clock: ManualClock | None = None) -> None:
        self._clock = clock
        self.sent: list[Sent] = []
        #: Every call, failed ones too.
        self.calls: list[Delivery] = []
        self._failures: dict[int, deque[Exception]] = {}
        self._always: Exception | None = None

    def fail_next(self, outbox_id: int, *errors: Exception) -> None:
        """The next sends of this row raise these errors, one per call, in order."""
        self._failures.setdefault(outbox_id, deque()).extend(errors)

    def fail_always(self, error: Exception | None) -> None:
        """Every send raises `error` (None: stop failing)."""
        self._always = error

    async def send(self, delivery: Delivery) -> SentReceipt:
        """Record the delivery, or raise the failure prepared for it."""
        self.calls.append(delivery)
        queued = self._failures.get(delivery.outbox_id)
        if queued:
            raise queued.popleft()
        if self._always is not None:
            raise self._always
        at_ns = self._clock.monotonic_ns() if self._clock is not None else 0
        self.sent.append(Sent(delivery, at_ns / _NS, at_ns))
        return SentReceipt(message_id=f"m{len(self.sent)}")

    def texts_to(self, client_id: int) -> list[str]:
        """The texts delivered to one client, in order."""
        return [s.delivery.text for s in self.sent if s.delivery.client_id == client_id]
