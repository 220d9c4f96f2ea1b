"""The one way out: every row is judged at send time, recorded first, sent at most once when
allowed, and never sent when blocked or held (DESIGN.md invariants 1-3)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
from sqlmodel import select

from tests.outbox.conftest import (
    EU,
    NON_EU,
    UNDECIDED,
    client_row,
    converse,
    edit_state,
    events,
    make_dispatcher,
    officer_decides,
    rows,
)
from triage.flows.engine import Engine
from triage.outbox.dispatcher import Dispatcher
from triage.outbox.rows import EnqueueError, OutboundRequest, enqueue
from triage.outbox.senders import Delivery, SentReceipt
from triage.service.client_events import ConversationStore
from triage.store.db import SessionFactory
from triage.store.models import AuditEvent, Client, Conversation
from triage_sandbox.outbox import ManualClock, RecordingSender


@dataclass
class EvidenceFirstSender:
    """At the moment of each send, looks (from another session) for the committed verdict."""

    sessions: SessionFactory
    inner: RecordingSender
    seen: list[bool] = field(default_factory=list)

    async def send(self, delivery: Delivery) -> SentReceipt:
        async with self.sessions() as s:
            found = await s.exec(
                select(AuditEvent.payload).where(
                    AuditEvent.client_id == delivery.client_id,
                    AuditEvent.type == "outbound_allowed",
                )
            )
            payloads = [json.loads(p or "{}") for p in found.all()]
        self.seen.append(
            any(
                p["outbox_id"] == delivery.outbox_id and p["attempt"] == delivery.attempt
                for p in payloads
            )
        )
        return await self.inner.send(delivery)


def sales_reply(client_id: int, text: str, key: str, **extra: object) -> OutboundRequest:
    return OutboundRequest(
        client_id=client_id,
        text=text,
        kind=str(extra.pop("kind", "reply")),
        sender=str(extra.pop("sender", "sales")),
        dedupe_key=key,
        reply=bool(extra.pop("reply", True)),
        **extra,  # type: ignore[arg-type]
    )


async def test_allowed_messages_are_recorded_then_sent_exactly_once(
    sessions: SessionFactory,
    store: ConversationStore,
    engine: Engine,
    clock: ManualClock,
    sender: RecordingSender,
) -> None:
    cid = await converse(store, engine, clock, "100", NON_EU)
    due = [r for r in await rows(sessions, cid) if r.due_at <= clock.now()]
    assert len(due) >= 4  # welcome, three questions, the holding reply
    checking = EvidenceFirstSender(sessions, sender)
    dispatcher = make_dispatcher(sessions, engine, clock, {"telegram": checking})

    report = await dispatcher.drain()

    assert report.sent == len(due) and report.claimed == len(due)
    assert [s.delivery.outbox_id for s in sender.sent] == [r.id for r in due]
    assert sender.texts_to(cid) == [r.text for r in due]
    assert all(s.delivery.external_id == "100" for s in sender.sent)
    assert checking.seen == [True] * len(due)
    # Drained again: nothing is sent twice.
    again = await dispatcher.drain()
    assert again.claimed == 0 and len(sender.sent) == len(due)
    stored = {r.id: r for r in await rows(sessions, cid)}
    recorded = await events(sessions, cid)
    for row in due:
        assert stored[row.id].status == "sent" and stored[row.id].verdict == "allowed"
        assert stored[row.id].sent_at == clock.now()
        mine = [(t, p) for t, p in recorded if p.get("outbox_id") == row.id]
        assert [t for t, _ in mine] == ["outbound_queued", "outbound_allowed", "outbound_sent"]
        allowed = mine[1][1]
        assert allowed["text"] == row.text and allowed["verdict"] == "allowed"
        assert allowed["reason"] and allowed["gated"] is True and allowed["worker"] == "worker-1"


async def test_blocked_and_held_rows_are_recorded_and_never_sent(
    sessions: SessionFactory,
    store: ConversationStore,
    engine: Engine,
    clock: ManualClock,
    sender: RecordingSender,
    dispatcher: Dispatcher,
) -> None:
    eu = await converse(store, engine, clock, "200", EU)
    undecided = await converse(store, engine, clock, "300", UNDECIDED)
    await dispatcher.drain()  # the bot's own neutral messages go out
    before = len(sender.sent)
    upsell = "Have you seen our new staking product? Earn up to 5% APY."
    blocked_reply = await enqueue(sessions, sales_reply(eu, upsell, "slack:1"), now=clock.now())
    blocked_follow_up = await enqueue(
        sessions,
        sales_reply(
            eu, "Are you still interested?", "job:1", kind="follow_up", sender="scheduler"
        ),
        now=clock.now(),
    )
    held = await enqueue(
        sessions,
        sales_reply(undecided, "Here is how our custody service works.", "slack:2"),
        now=clock.now(),
    )

    report = await dispatcher.drain()

    assert (report.blocked, report.held, report.sent) == (2, 1, 0)
    assert len(sender.sent) == before
    assert all(d.outbox_id not in (blocked_reply.outbox_id, held.outbox_id) for d in sender.calls)
    stored = {r.id: r for r in await rows(sessions)}
    expected = {
        blocked_reply.outbox_id: ("blocked", eu, upsell),
        blocked_follow_up.outbox_id: ("blocked", eu, "Are you still interested?"),
        held.outbox_id: ("held", undecided, "Here is how our custody service works."),
    }
    for outbox_id, (verdict, cid, text) in expected.items():
        row = stored[outbox_id]
        assert row.status == verdict and row.verdict == verdict and row.verdict_reason
        assert row.locked_by is None and row.sent_at is None
        mine = [(t, p) for t, p in await events(sessions, cid) if p.get("outbox_id") == outbox_id]
        assert [t for t, _ in mine] == ["outbound_queued", f"outbound_{verdict}"]
        payload = mine[1][1]
        assert payload["text"] == text and payload["verdict"] == verdict
        assert payload["reason"] == row.verdict_reason
    assert "promotion" in (stored[blocked_reply.outbox_id].verdict_reason or "")
    assert "officer" in (stored[held.outbox_id].verdict_reason or "")
    # Blocked and held rows are not taken again.
    assert (await dispatcher.drain()).claimed == 0
    assert len(sender.sent) == before


async def test_held_row_is_judged_again_after_release(
    sessions: SessionFactory,
    store: ConversationStore,
    engine: Engine,
    clock: ManualClock,
    sender: RecordingSender,
    dispatcher: Dispatcher,
) -> None:
    cid = await converse(store, engine, clock, "400", UNDECIDED)
    await dispatcher.drain()
    text = "Here is how our custody service works."
    held = await enqueue(sessions, sales_reply(cid, text, "slack:3"), now=clock.now())
    assert (await dispatcher.drain()).held == 1

    # Released before anything changed: judged again, held again.
    assert await dispatcher.release_held(cid, by="officer:U1", reason="asked the client") == [
        held.outbox_id
    ]
    assert (await dispatcher.drain()).held == 1
    assert text not in sender.texts_to(cid)

    await edit_state(sessions, cid, officer_decides("HANDOFF_NON_EU", "OUTSIDE"))
    await dispatcher.release_held(cid, by="officer:U1", reason="approved: lives in Singapore")
    report = await dispatcher.drain()

    assert report.sent == 1
    assert sender.texts_to(cid)[-1] == text
    assert sender.texts_to(cid).count(text) == 1
    mine = [t for t, p in await events(sessions, cid) if p.get("outbox_id") == held.outbox_id]
    assert mine == [
        "outbound_queued",
        "outbound_held",
        "outbound_released",
        "outbound_held",
        "outbound_released",
        "outbound_allowed",
        "outbound_sent",
    ]
    assert (await rows(sessions, cid))[-1].status == "sent"


async def test_staff_rows_skip_the_client_gate_and_client_rows_cannot(
    sessions: SessionFactory,
    store: ConversationStore,
    engine: Engine,
    clock: ManualClock,
    sender: RecordingSender,
    staff_sender: RecordingSender,
    dispatcher: Dispatcher,
) -> None:
    cid = await converse(store, engine, clock, "500", UNDECIDED)
    card = OutboundRequest(
        client_id=cid,
        channel="slack",
        text="Case: residence unclear. Approve / Decline / Ask client",
        kind="case_card",
        sender="bot",
        dedupe_key="case:500:0",
        buttons=(("Approve", "approve"), ("Decline", "decline")),
    )
    queued = await enqueue(sessions, card, now=clock.now())
    await dispatcher.drain()

    assert [s.delivery.outbox_id for s in staff_sender.sent] == [queued.outbox_id]
    assert staff_sender.sent[0].delivery.buttons == (
        ("Approve", "approve"),
        ("Decline", "decline"),
    )
    assert queued.outbox_id not in [s.delivery.outbox_id for s in sender.sent]
    allowed = [p for t, p in await events(sessions, cid) if t == "outbound_allowed"]
    assert [p["gated"] for p in allowed if p["outbox_id"] == queued.outbox_id] == [False]
    # A client message must be a message kind the gate knows, on the client's own channel.
    with pytest.raises(EnqueueError, match="not a client message"):
        await enqueue(
            sessions,
            OutboundRequest(
                client_id=cid, text="x", kind="case_card", sender="bot", dedupe_key="k1"
            ),
        )
    with pytest.raises(EnqueueError, match="client's own channel"):
        await enqueue(
            sessions,
            OutboundRequest(
                client_id=cid,
                channel="whatsapp",
                text="x",
                kind="reply",
                sender="sales",
                dedupe_key="k2",
            ),
        )


async def test_enqueue_is_idempotent_and_recorded(
    sessions: SessionFactory,
    store: ConversationStore,
    engine: Engine,
    clock: ManualClock,
) -> None:
    cid = await converse(store, engine, clock, "600", NON_EU)
    other = await converse(store, engine, clock, "601", NON_EU)
    request = sales_reply(cid, "Custody fees are 0.1% a year.", "slack:event:Ev1")
    first = await enqueue(sessions, request, now=clock.now())
    second = await enqueue(sessions, request, now=clock.now())

    assert first.created and not second.created and first.outbox_id == second.outbox_id
    queued = [p for t, p in await events(sessions, cid) if t == "outbound_queued"]
    assert [p["outbox_id"] for p in queued].count(first.outbox_id) == 1
    assert [p for p in queued if p["outbox_id"] == first.outbox_id][0]["text"] == request.text
    with pytest.raises(EnqueueError, match="another client"):
        await enqueue(sessions, sales_reply(other, "x", "slack:event:Ev1"), now=clock.now())


async def test_unknown_or_unreadable_facts_fail_closed(
    sessions: SessionFactory,
    store: ConversationStore,
    engine: Engine,
    clock: ManualClock,
    sender: RecordingSender,
    dispatcher: Dispatcher,
) -> None:
    async with sessions() as s, s.begin():
        stranger = Client(channel="telegram", external_id="700")
        s.add(stranger)
        await s.flush()
        assert stranger.id is not None
        stranger_id = stranger.id
    broken = await converse(store, engine, clock, "701", NON_EU)
    erased = await converse(store, engine, clock, "702", NON_EU)
    await dispatcher.drain()
    async with sessions() as s, s.begin():
        conv = (await s.exec(select(Conversation).where(Conversation.client_id == broken))).one()
        conv.facts = "{not json"
        s.add(conv)
        client = await s.get(Client, erased)
        assert client is not None
        client.restricted_at = clock.now()
        s.add(client)
    before = len(sender.sent)
    text = "Custody fees are 0.1% a year."
    no_facts = await enqueue(sessions, sales_reply(stranger_id, text, "a"), now=clock.now())
    unreadable = await enqueue(sessions, sales_reply(broken, text, "b"), now=clock.now())
    restricted = await enqueue(sessions, sales_reply(erased, text, "c"), now=clock.now())

    report = await dispatcher.drain()

    assert len(sender.sent) == before and report.sent == 0
    stored = {r.id: r for r in await rows(sessions)}
    assert stored[no_facts.outbox_id].status == "held"
    assert stored[unreadable.outbox_id].status == "held"
    assert "could not be established" in (stored[unreadable.outbox_id].verdict_reason or "")
    assert stored[restricted.outbox_id].status == "blocked"
    assert "erasure" in (stored[restricted.outbox_id].verdict_reason or "")
    assert (await client_row(sessions, erased)).restricted_at is not None
