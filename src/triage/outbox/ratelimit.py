"""Pacing: at most 30 messages in any second per bot and one per second per chat (Telegram's
limits), counted at the moment of sending.

Two mechanisms, one for planning and one for the promise:

- `reserve`: GCRA ("theoretical arrival time") token buckets in integer nanoseconds plan the
  sends: they say how long a row should wait before it is judged, and refuse a slot that is too
  far away (the dispatcher puts that row back). A reservation is not a send: the judge
  transaction between the slot and the send takes a varying time, so a late first send and
  on-time later ones could still put 31 sends inside one second (H10 in BENCHMARKS.md).
- `acquire_send` (or `send_wait` + `record_send`), right before the send: a sliding window of
  the actual send times. A send at `now` is allowed only when the oldest of the last `limit`
  sends is at least one window (1 s plus a small margin) before `now`; then no window of one
  second holds more than `limit` sends, overall or per chat, measured where the sends happen.

Rates at or above 1/s allow `floor(rate)` sends in any one-second window; a rate below 1/s
allows one send per `1/rate` seconds. The margin (1 ms by default) absorbs the difference
between the time recorded here and the time a sender stamps just after.

The limiter is in-process: each dispatcher process paces itself. Several worker processes
share Telegram's budget, so give each `overall / workers` (a shared limiter is a later step).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Protocol

_NS = 1_000_000_000
#: Idle per-chat buckets are dropped once there are this many, so memory stays bounded.
_PRUNE_AT = 10_000
#: Added to every send window by default (see the module docstring).
DEFAULT_MARGIN_SECONDS = 0.001


def _ns(seconds: float) -> int:
    return round(seconds * _NS)


def _check_rate(rate: float) -> None:
    if not rate > 0 or math.isinf(rate):
        raise ValueError(f"rate must be a positive number of messages per second, not {rate}")


class TokenBucket:
    """`rate` tokens per second, at most `burst` of them at once."""

    def __init__(self, rate: float, burst: int = 1) -> None:
        _check_rate(rate)
        if burst < 1:
            raise ValueError(f"burst must be at least 1, not {burst}")
        # Rounded up: a token never comes earlier than 1/rate after the previous one.
        self._interval = math.ceil(_NS / rate)
        self._burst = burst
        self._tat: int | None = None

    def ready_at(self, now_ns: int) -> int:
        """The earliest time (ns) a token is available, not before `now_ns`."""
        if self._tat is None:
            return now_ns
        return max(now_ns, self._tat - (self._burst - 1) * self._interval)

    def take(self, at_ns: int) -> None:
        """Spend one token at `at_ns` (which must be at or after `ready_at`)."""
        self._tat = (at_ns if self._tat is None else max(self._tat, at_ns)) + self._interval

    def pause_until(self, until_ns: int) -> None:
        """No token before `until_ns` (the server asked us to wait)."""
        floor = until_ns + (self._burst - 1) * self._interval
        self._tat = floor if self._tat is None else max(self._tat, floor)

    def idle(self, now_ns: int) -> bool:
        """Whether the bucket is full again (and can be forgotten)."""
        return self._tat is None or self._tat <= now_ns


class SendWindow:
    """The actual send times of one stream: at most `limit` in any window of `window` seconds.

    `rate` >= 1: `floor(rate)` sends per second; `rate` < 1: one send per `1/rate` seconds.
    `margin` seconds are added to the window.
    """

    def __init__(self, rate: float, *, margin: float = DEFAULT_MARGIN_SECONDS) -> None:
        _check_rate(rate)
        if margin < 0 or math.isinf(margin):
            raise ValueError(f"margin must be zero or a positive number of seconds, not {margin}")
        self.limit = math.floor(rate) if rate >= 1 else 1
        self.window_ns = (_NS if rate >= 1 else math.ceil(_NS / rate)) + _ns(margin)
        self._times: deque[int] = deque(maxlen=self.limit)
        self._paused_until = 0

    def ready_at(self, now_ns: int) -> int:
        """The earliest time (ns), not before `now_ns`, at which one more send keeps the limit.

        A send at `t` keeps every window [s, s + window) at `limit` or fewer when the oldest of
        the last `limit` sends is at or before `t - window`: the windows that hold `t` start
        after it, so they hold at most `limit - 1` earlier sends.
        """
        at = max(now_ns, self._paused_until)
        if len(self._times) == self.limit:
            at = max(at, self._times[0] + self.window_ns)
        return at

    def record(self, at_ns: int) -> None:
        """A send happened at `at_ns` (on the same monotonic clock as every other)."""
        # A reading that went back (two clocks mixed up) counts as the latest send, which only
        # makes the next sends wait longer.
        self._times.append(max(at_ns, self._times[-1]) if self._times else at_ns)

    def pause_until(self, until_ns: int) -> None:
        """No send before `until_ns`."""
        self._paused_until = max(self._paused_until, until_ns)

    def idle(self, now_ns: int) -> bool:
        """Whether no earlier send or pause constrains a send at `now_ns` any more."""
        last = self._times[-1] if self._times else None
        return self._paused_until <= now_ns and (last is None or last + self.window_ns <= now_ns)


@dataclass(frozen=True)
class Slot:
    """The answer to a reservation: how long to wait, and whether the tokens were taken."""

    wait: float
    granted: bool


class SleepClock(Protocol):
    """What `acquire_send` needs of a clock (the dispatcher's `Clock` has both)."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds`."""
        ...


class _Chat:
    __slots__ = ("bucket", "window")

    def __init__(self, rate: float, burst: int, margin: float) -> None:
        self.bucket = TokenBucket(rate, burst)
        self.window = SendWindow(rate, margin=margin)

    def idle(self, now_ns: int) -> bool:
        return self.bucket.idle(now_ns) and self.window.idle(now_ns)


class RateLimiter:
    """At most `overall_per_second` sends overall and `per_chat_per_second` per chat.

    Either limit may be None (no limit of that kind). Times are seconds on a monotonic clock.
    `reserve` plans (see the module docstring); `acquire_send`, right before each send, keeps
    the promise.
    """

    def __init__(
        self,
        *,
        overall_per_second: float | None = 30.0,
        per_chat_per_second: float | None = 1.0,
        burst: int = 1,
        margin_seconds: float = DEFAULT_MARGIN_SECONDS,
    ) -> None:
        self._overall = TokenBucket(overall_per_second, burst) if overall_per_second else None
        self._overall_window = (
            SendWindow(overall_per_second, margin=margin_seconds) if overall_per_second else None
        )
        self._per_chat = per_chat_per_second
        self._burst = burst
        self._margin = margin_seconds
        if per_chat_per_second is not None:
            # Validates the numbers once, up front.
            _Chat(per_chat_per_second, burst, margin_seconds)
        self._chats: dict[str, _Chat] = {}

    def _chat(self, key: str) -> _Chat | None:
        if self._per_chat is None:
            return None
        chat = self._chats.get(key)
        if chat is None:
            chat = self._chats[key] = _Chat(self._per_chat, self._burst, self._margin)
        return chat

    def reserve(self, key: str, now: float, *, max_wait: float = math.inf) -> Slot:
        """Take a send slot for chat `key`, unless it is more than `max_wait` seconds away.

        A granted slot is spent whether or not the message is then sent. A refused one spends
        nothing; `wait` says when to come back. The slot is a plan: call `acquire_send` right
        before the send all the same.
        """
        now_ns = _ns(now)
        chat = self._chat(key)
        at = self._send_ready_at(chat, now_ns)
        if self._overall is not None:
            at = max(at, self._overall.ready_at(now_ns))
        if chat is not None:
            at = max(at, chat.bucket.ready_at(now_ns))
        wait = (at - now_ns) / _NS
        if wait > max_wait:
            return Slot(wait, granted=False)
        if self._overall is not None:
            self._overall.take(at)
        if chat is not None:
            chat.bucket.take(at)
        if len(self._chats) > _PRUNE_AT:
            self._prune(now_ns)
        return Slot(wait, granted=True)

    def _send_ready_at(self, chat: _Chat | None, now_ns: int) -> int:
        at = now_ns
        if self._overall_window is not None:
            at = self._overall_window.ready_at(now_ns)
        if chat is not None:
            at = max(at, chat.window.ready_at(now_ns))
        return at

    def send_wait(self, key: str, now: float) -> float:
        """Seconds until a send to chat `key` keeps both limits (0.0: it may go at `now`)."""
        now_ns = _ns(now)
        return (self._send_ready_at(self._chat(key), now_ns) - now_ns) / _NS

    def record_send(self, key: str, now: float) -> None:
        """A send to chat `key` happens at `now`: it counts in the windows from then on.

        Call it with no await between `send_wait` saying 0 and the send itself.
        """
        now_ns = _ns(now)
        chat = self._chat(key)
        if self._overall_window is not None:
            self._overall_window.record(now_ns)
        if chat is not None:
            chat.window.record(now_ns)

    async def acquire_send(self, key: str, clock: SleepClock) -> float:
        """Wait until a send to chat `key` keeps both limits, then count it; the seconds waited.

        Call it right before the send, with nothing awaited between its return and the send:
        the time counted is the moment of sending.
        """
        waited = 0.0
        while True:
            now = clock.monotonic()
            wait = self.send_wait(key, now)
            if wait <= 0:
                self.record_send(key, now)
                return waited
            waited += wait
            await clock.sleep(wait)

    def pause(self, key: str, until: float) -> None:
        """No send to chat `key` before `until` (a 429 with retry_after for that chat)."""
        chat = self._chat(key)
        if chat is not None:
            chat.bucket.pause_until(_ns(until))
            chat.window.pause_until(_ns(until))

    def _prune(self, now_ns: int) -> None:
        for key in [k for k, c in self._chats.items() if c.idle(now_ns)]:
            del self._chats[key]
