"""Failures: transient ones are retried with backoff until they succeed or the row is dead;
permanent ones are dead at once; a crashed worker's rows are taken over after the lease."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.outbox.conftest import NON_EU, converse, events, make_dispatcher, rows
from triage.flows.engine import Engine
from triage.outbox.dispatcher import Dispatcher, DispatcherConfig
from triage.outbox.rows import OutboundRequest, enqueue
from triage.outbox.senders import Delivery, PermanentSendError, SentReceipt, TransientSendError
from triage.service.client_events import ConversationStore
from triage.store.db import SessionFactory
from triage_sandbox.outbox import ManualClock, RecordingSender


async def _queued_reply(
    sessions: SessionFactory,
    store: ConversationStore,
    engine: Engine,
    clock: ManualClock,
    dispatcher: Dispatcher,
    chat: str,
) -> tuple[int, int]:
    """A handed-off client whose intake messages are out, and one sales reply queued."""
    cid = await converse(store, engine, clock, chat, NON_EU)
    await dispatcher.drain()
    request = OutboundRequest(
        client_id=cid,
        text="Custody fees are 0.1% a year.",
        kind="reply",
        sender="sales",
        dedupe_key=f"slack:{chat}",
        reply=True,
    )
    return cid, (await enqueue(sessions, request, now=clock.now())).outbox_id


async def test_transient_failure_is_retried_after_retry_after_then_sent_once(
    sessions: SessionFactory,
    store: ConversationStore,
    engine: Engine,
    clock: ManualClock,
    sender: RecordingSender,
    dispatcher: Dispatcher,
) -> None:
    cid, oid = await _queued_reply(sessions, store, engine, clock, dispatcher, "800")
    sender.fail_next(oid, TransientSendError("429 Too Many Requests", retry_after=30))

    first = await dispatcher.drain()
    assert (first.failed, first.sent, first.dead) == (1, 0, 0)
    row = [r for r in await rows(sessions, cid) if r.id == oid][0]
    assert row.status == "pending" and row.attempts == 1 and row.locked_by is None
    assert row.next_attempt_at == clock.now() + timedelta(seconds=30)  # retry_after > backoff 2 s
    assert row.last_error == "429 Too Many Requests"

    clock.advance(29)
    assert (await dispatcher.drain()).claimed == 0
    clock.advance(1)
    assert (await dispatcher.drain()).sent == 1

    assert [d.outbox_id for d in sender.calls].count(oid) == 2
    assert [s.delivery.outbox_id for s in sender.sent].count(oid) == 1
    mine = [t for t, p in await events(sessions, cid) if p.get("outbox_id") == oid]
    assert mine == [
        "outbound_queued",
        "outbound_allowed",
        "outbound_failed",
        "outbound_allowed",
        "outbound_sent",
    ]


async def test_transient_failures_back_off_exponentially_then_the_row_is_dead(
    sessions: SessionFactory,
    store: ConversationStore,
    engine: Engine,
    clock: ManualClock,
    sender: RecordingSender,
) -> None:
    dispatcher = make_dispatcher(sessions, engine, clock, {"telegram": sender}, max_attempts=4)
    cid, oid = await _queued_reply(sessions, store, engine, clock, dispatcher, "801")
    sender.fail_always(TransientSendError("502 Bad Gateway"))

    waits: list[float] = []
    for _ in range(10):
        report = await dispatcher.drain()
        row = [r for r in await rows(sessions, cid) if r.id == oid][0]
        if row.status == "dead":
            break
        assert report.failed == 1 and row.next_attempt_at is not None
        wait = (row.next_attempt_at - clock.now()).total_seconds()
        waits.append(wait)
        clock.advance(wait)

    assert row.status == "dead" and row.attempts == 4
    assert waits == [2.0, 4.0, 8.0]  # base 2 s, doubling (jitter fixed at its upper bound)
    assert [d.outbox_id for d in sender.calls].count(oid) == 4
    assert oid not in [s.delivery.outbox_id for s in sender.sent]
    dead = await dispatcher.dead_rows()
    assert [(d.outbox_id, d.attempts, d.last_error) for d in dead] == [(oid, 4, "502 Bad Gateway")]
    mine = [t for t, p in await events(sessions, cid) if p.get("outbox_id") == oid]
    assert mine.count("outbound_allowed") == 4 and mine.count("outbound_failed") == 4
    assert mine[-1] == "outbound_dead"
    assert (await dispatcher.drain()).claimed == 0


async def test_jitter_spreads_retries_within_half_to_full_backoff(
    sessions: SessionFactory, engine: Engine, clock: ManualClock, sender: RecordingSender
) -> None:
    low = Dispatcher(sessions, senders={}, profile=engine.profile, jitter=lambda: 0.0)
    high = Dispatcher(sessions, senders={}, profile=engine.profile, jitter=lambda: 1.0)
    assert [low.backoff(n, None) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]
    assert [high.backoff(n, None) for n in (1, 2, 3)] == [2.0, 4.0, 8.0]
    assert high.backoff(20, None) == DispatcherConfig().backoff_max_seconds
    assert low.backoff(1, 60.0) == 60.0


async def test_permanent_failure_is_dead_at_once(
    sessions: SessionFactory,
    store: ConversationStore,
    engine: Engine,
    clock: ManualClock,
    sender: RecordingSender,
    dispatcher: Dispatcher,
) -> None:
    cid, oid = await _queued_reply(sessions, store, engine, clock, dispatcher, "802")
    sender.fail_next(oid, PermanentSendError("403 Forbidden: bot was blocked by the user"))

    report = await dispatcher.drain()

    assert (report.failed, report.dead) == (1, 1)
    assert [d.outbox_id for d in await dispatcher.dead_rows(client_id=cid)] == [oid]
    clock.advance(3600)
    assert (await dispatcher.drain()).claimed == 0
    assert [d.outbox_id for d in sender.calls].count(oid) == 1
    failed = [p for t, p in await events(sessions, cid) if t == "outbound_failed"]
    assert failed[-1]["permanent"] is True and "blocked" in failed[-1]["error"]


class WorkerKilled(BaseException):
    """Stands in for SIGKILL: not an Exception, so nothing in the dispatcher catches it."""


class DyingSender:
    """Records the delivery (or not), then dies before the dispatcher can mark the row."""

    def __init__(self, inner: RecordingSender, *, after_send: bool) -> None:
        self.inner = inner
        self.after_send = after_send

    async def send(self, delivery: Delivery) -> SentReceipt:
        if self.after_send:
            await self.inner.send(delivery)
        raise WorkerKilled


@pytest.mark.parametrize("after_send", [False, True], ids=["before-send", "after-send"])
async def test_a_dead_workers_row_is_taken_over_after_its_lease(
    sessions: SessionFactory,
    store: ConversationStore,
    engine: Engine,
    clock: ManualClock,
    sender: RecordingSender,
    dispatcher: Dispatcher,
    after_send: bool,
) -> None:
    cid, oid = await _queued_reply(sessions, store, engine, clock, dispatcher, "803")
    doomed = make_dispatcher(
        sessions, engine, clock, {"telegram": DyingSender(sender, after_send=after_send)}, name="A"
    )
    with pytest.raises(WorkerKilled):
        await doomed.drain()
    survivor = make_dispatcher(sessions, engine, clock, {"telegram": sender}, name="B")

    assert (await survivor.drain()).claimed == 0  # the lease still holds
    clock.advance(DispatcherConfig().lease_seconds + 1)
    assert (await survivor.drain()).sent == 1

    # At least once: a worker killed after the send but before mark-sent causes one resend.
    assert [s.delivery.outbox_id for s in sender.sent].count(oid) == (2 if after_send else 1)
    assert [r for r in await rows(sessions, cid) if r.id == oid][0].status == "sent"
    mine = [
        (t, p.get("worker")) for t, p in await events(sessions, cid) if p.get("outbox_id") == oid
    ]
    assert mine[1:] == [
        ("outbound_allowed", "A"),
        ("outbound_allowed", "B"),
        ("outbound_sent", "B"),
    ]


async def test_a_row_that_keeps_killing_workers_ends_dead(
    sessions: SessionFactory,
    store: ConversationStore,
    engine: Engine,
    clock: ManualClock,
    sender: RecordingSender,
    dispatcher: Dispatcher,
) -> None:
    cid, oid = await _queued_reply(sessions, store, engine, clock, dispatcher, "804")
    lease = DispatcherConfig().lease_seconds
    for n in range(3):
        doomed = make_dispatcher(
            sessions,
            engine,
            clock,
            {"telegram": DyingSender(sender, after_send=False)},
            name=f"A{n}",
            max_attempts=2,
        )
        if n < 2:
            with pytest.raises(WorkerKilled):
                await doomed.drain()
        else:
            assert (await doomed.drain()).dead == 1
        clock.advance(lease + 1)

    assert [d.outbox_id for d in await dispatcher.dead_rows()] == [oid]
    assert oid not in [s.delivery.outbox_id for s in sender.sent]
    assert [t for t, p in await events(sessions, cid) if p.get("outbox_id") == oid][-1] == (
        "outbound_dead"
    )


async def test_a_chat_keeps_its_order_while_its_first_message_waits_for_a_retry(
    sessions: SessionFactory,
    store: ConversationStore,
    engine: Engine,
    clock: ManualClock,
    sender: RecordingSender,
    dispatcher: Dispatcher,
) -> None:
    waiting = await converse(store, engine, clock, "805", ["/start"])
    other = await converse(store, engine, clock, "806", ["/start"])
    welcome, question = [r for r in await rows(sessions, waiting)]
    sender.fail_next(welcome.id, TransientSendError("429", retry_after=1))

    await dispatcher.drain()

    # The other chat is not held up; this chat's question does not overtake its welcome.
    assert len(sender.texts_to(other)) == 2
    assert sender.texts_to(waiting) == []
    clock.advance(2)
    await dispatcher.drain()
    await dispatcher.drain()
    assert sender.texts_to(waiting) == [welcome.text, question.text]
