"""Pacing: never more than 30 messages in any second overall, nor more than one per chat, on a
simulated clock (nothing sleeps)."""

from __future__ import annotations

import math

import pytest
from sqlmodel import select

from tests.outbox.conftest import NON_EU, converse, make_dispatcher
from triage.flows.engine import Engine
from triage.outbox.ratelimit import RateLimiter, TokenBucket
from triage.outbox.rows import OutboundRequest, enqueue
from triage.outbox.testing import ManualClock, RecordingSender
from triage.store.conversations import ConversationStore
from triage.store.db import SessionFactory
from triage.store.models import Client, Conversation

SECOND = 1_000_000_000


def most_in_any_window(times_ns: list[int], window: int = SECOND) -> int:
    """The largest number of times (integer ns, no rounding) in one window [t, t + window)."""
    times = sorted(times_ns)
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_window_counter() -> None:
    assert most_in_any_window([0, SECOND // 2, SECOND - 1, SECOND, SECOND * 3 // 2]) == 3
    assert most_in_any_window([0, SECOND, 2 * SECOND]) == 1
    assert most_in_any_window([]) == 0


def test_overall_bucket_spaces_sends_to_the_rate() -> None:
    limiter = RateLimiter(overall_per_second=30, per_chat_per_second=None)
    slots = [round(limiter.reserve(f"chat{i}", 0.0).wait * SECOND) for i in range(61)]
    assert slots[0] == 0
    assert most_in_any_window(slots) == 30
    assert slots[30] > SECOND  # the 31st send is more than a second after the first


def test_per_chat_bucket_and_refused_reservations_spend_nothing() -> None:
    limiter = RateLimiter(overall_per_second=30, per_chat_per_second=1)
    assert limiter.reserve("a", 10.0).wait == 0.0
    refused = limiter.reserve("a", 10.0, max_wait=0.25)
    assert not refused.granted and refused.wait == pytest.approx(1.0)
    # The refusal took no token: another chat goes right after the first send's spacing.
    assert limiter.reserve("b", 10.0).wait == pytest.approx(1 / 30, abs=1e-9)
    assert limiter.reserve("a", 11.0).wait == 0.0
    limiter.pause("a", 20.0)
    assert limiter.reserve("a", 12.0, max_wait=math.inf).wait == pytest.approx(8.0)


def test_bucket_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(0)
    with pytest.raises(ValueError, match="burst"):
        TokenBucket(1, burst=0)
    with pytest.raises(ValueError, match="rate"):
        RateLimiter(per_chat_per_second=-1)


async def _clients_like(sessions: SessionFactory, template: int, n: int) -> list[int]:
    """n more clients in the template client's (handed-off, non-EU) state."""
    async with sessions() as s, s.begin():
        state = (
            await s.exec(select(Conversation.state).where(Conversation.client_id == template))
        ).one()
        made = [Client(channel="telegram", external_id=f"rl{i}") for i in range(n)]
        s.add_all(made)
        await s.flush()
        ids = [c.id for c in made if c.id is not None]
        s.add_all(Conversation(client_id=i, state=state) for i in ids)
    return ids


@pytest.mark.parametrize("paced", [True, False], ids=["paced", "unpaced"])
async def test_dispatcher_never_exceeds_30_per_second_or_1_per_second_per_chat(
    sessions: SessionFactory,
    store: ConversationStore,
    engine: Engine,
    clock: ManualClock,
    sender: RecordingSender,
    paced: bool,
) -> None:
    template = await converse(store, engine, clock, "rl", NON_EU)
    busy = [template, *await _clients_like(sessions, template, 59)]
    expected: dict[int, list[str]] = {}
    for n, cid in enumerate(busy):
        for k in range(3 if n < 10 else 1):
            text = f"Reply {k} to client {cid}: custody fees are 0.1% a year."
            request = OutboundRequest(
                client_id=cid,
                text=text,
                kind="reply",
                sender="sales",
                dedupe_key=f"rl:{cid}:{k}",
                reply=True,
            )
            await enqueue(sessions, request, now=clock.now())
            expected.setdefault(cid, []).append(text)
    dispatcher = make_dispatcher(sessions, engine, clock, {"telegram": sender}, rate_limit=paced)
    total = sum(map(len, expected.values()))

    deferred = 0
    for _ in range(1000):
        report = await dispatcher.drain()
        deferred += report.deferred
        if sum(1 for s in sender.sent if "custody fees" in s.delivery.text) == total:
            break
        clock.advance(0.05)

    replies = [s for s in sender.sent if "custody fees" in s.delivery.text]
    assert len(replies) == total
    for cid, texts in expected.items():
        assert [s.delivery.text for s in replies if s.delivery.client_id == cid] == texts
    overall = most_in_any_window([s.at_ns for s in sender.sent])
    per_chat = max(
        most_in_any_window([s.at_ns for s in sender.sent if s.delivery.client_id == cid])
        for cid in busy
    )
    if paced:
        assert overall <= 30 and per_chat == 1
        assert deferred > 0  # the busy chats had to wait for their second and third replies
    else:
        # The same traffic without the limiter breaks both limits: the check above can fail.
        assert overall > 30 and per_chat > 1
