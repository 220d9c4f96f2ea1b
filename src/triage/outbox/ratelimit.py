"""Pacing: token buckets per chat and overall (Telegram: about 30 messages/s per bot and one
message per second per chat).

The buckets are GCRA ("theoretical arrival time") token buckets kept in integer nanoseconds, so
that `rate` per second is never exceeded by rounding: the interval between tokens is rounded up.
With the default burst of 1, no window of one second ever holds more than `rate` sends.

The limiter is in-process: each dispatcher process paces itself. Several worker processes
share Telegram's budget, so give each `overall / workers` (a shared limiter is a later step).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

_NS = 1_000_000_000
#: Idle per-chat buckets are dropped once there are this many, so memory stays bounded.
_PRUNE_AT = 10_000


def _ns(seconds: float) -> int:
    return round(seconds * _NS)


class TokenBucket:
    """`rate` tokens per second, at most `burst` of them at once."""

    def __init__(self, rate: float, burst: int = 1) -> None:
        if not rate > 0 or math.isinf(rate):
            raise ValueError(f"rate must be a positive number of messages per second, not {rate}")
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


@dataclass(frozen=True)
class Slot:
    """The answer to a reservation: how long to wait, and whether the tokens were taken."""

    wait: float
    granted: bool


class RateLimiter:
    """At most `overall_per_second` sends overall and `per_chat_per_second` per chat.

    Either limit may be None (no limit of that kind). Times are seconds on a monotonic clock.
    """

    def __init__(
        self,
        *,
        overall_per_second: float | None = 30.0,
        per_chat_per_second: float | None = 1.0,
        burst: int = 1,
    ) -> None:
        self._overall = TokenBucket(overall_per_second, burst) if overall_per_second else None
        self._per_chat = per_chat_per_second
        self._burst = burst
        if per_chat_per_second is not None:
            TokenBucket(per_chat_per_second, burst)  # validates the numbers once, up front
        self._chats: dict[str, TokenBucket] = {}

    def _chat(self, key: str) -> TokenBucket | None:
        if self._per_chat is None:
            return None
        bucket = self._chats.get(key)
        if bucket is None:
            bucket = self._chats[key] = TokenBucket(self._per_chat, self._burst)
        return bucket

    def reserve(self, key: str, now: float, *, max_wait: float = math.inf) -> Slot:
        """Take a send slot for chat `key`, unless it is more than `max_wait` seconds away.

        A granted slot is spent whether or not the message is then sent. A refused one spends
        nothing; `wait` says when to come back.
        """
        now_ns = _ns(now)
        chat = self._chat(key)
        at = now_ns
        if self._overall is not None:
            at = max(at, self._overall.ready_at(now_ns))
        if chat is not None:
            at = max(at, chat.ready_at(now_ns))
        wait = (at - now_ns) / _NS
        if wait > max_wait:
            return Slot(wait, granted=False)
        if self._overall is not None:
            self._overall.take(at)
        if chat is not None:
            chat.take(at)
        if len(self._chats) > _PRUNE_AT:
            self._prune(now_ns)
        return Slot(wait, granted=True)

    def pause(self, key: str, until: float) -> None:
        """No send to chat `key` before `until` (a 429 with retry_after for that chat)."""
        chat = self._chat(key)
        if chat is not None:
            chat.pause_until(_ns(until))

    def _prune(self, now_ns: int) -> None:
        for key in [k for k, b in self._chats.items() if b.idle(now_ns)]:
            del self._chats[key]
