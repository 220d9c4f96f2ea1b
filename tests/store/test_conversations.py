"""The engine on the store: restarts, redelivery, concurrency, evidence first.

Every test runs on SQLite and on PostgreSQL. "Concurrently" means `asyncio.gather` over
separate sessions (separate connections), so the database's locks do the serialising: the row
lock on PostgreSQL, the `BEGIN IMMEDIATE` write lock on SQLite.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import col, select

from tests.store.support import EU_CLIENT, converse, event, row_counts
from triage.domain.codes import IN_SCOPE
from triage.domain.facts import facts_from_dict
from triage.domain.profile import CompanyProfile
from triage.domain.territory import Gazetteer
from triage.flows.engine import ConversationState, Engine
from triage.flows.spec import FlowSpec
from triage.service.client_events import ConversationStore, HandleResult
from triage.store import audit
from triage.store.db import SessionFactory, create_all, make_engine, make_sessionmaker
from triage.store.models import AuditEvent, Client, Conversation, Message, Outbox

AT = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)


def _turn(result: HandleResult | None) -> tuple[list[str], list[str], list[str]]:
    """What a turn said and did, without row ids and update keys."""
    assert result is not None
    turn = result.turn
    return (
        [o.text for o in turn.outbound],
        [str(e.get("type")) for e in turn.events],
        [d.decision.outcome.value for d in turn.decisions],
    )


async def _handle(
    store: ConversationStore, engine: Engine, *, external_id: str, key: str, text: str, i: int
) -> HandleResult | None:
    return await store.handle(
        source="telegram",
        update_key=key,
        channel="telegram",
        external_id=external_id,
        event=event(text, AT + timedelta(minutes=i)),
        engine=engine,
    )


async def _snapshot(sessions: SessionFactory) -> dict[str, Any]:
    """Everything a turn could change: row counts, chain heads, conversation versions."""
    async with sessions() as s:
        heads = (await s.exec(select(Client.id, Client.audit_seq, Client.audit_head))).all()
        convs = (
            await s.exec(select(Conversation.client_id, Conversation.version, Conversation.state))
        ).all()
    return {
        "counts": await row_counts(sessions),
        "heads": sorted(heads),
        "conversations": sorted(convs),
    }


async def _chains_intact(sessions: SessionFactory) -> None:
    async with sessions() as s:
        assert await audit.verify(s) == []


async def test_conversation_resumes_at_the_same_step_after_a_restart(
    db_url: str, flow: FlowSpec, profile: CompanyProfile, gazetteer: Gazetteer
) -> None:
    """A worker restart (new database engine, new store, new engine) in the middle of intake
    changes nothing: the restarted conversation says and decides exactly what an uninterrupted
    one says and decides."""
    first = make_engine(db_url)
    await create_all(first)
    store = ConversationStore(make_sessionmaker(first))
    bot = Engine(flow, profile, gazetteer)
    uninterrupted = [
        _turn(await _handle(store, bot, external_id="u", key=f"u-{i}", text=t, i=i))
        for i, t in enumerate(EU_CLIENT)
    ]
    restarted = [
        _turn(await _handle(store, bot, external_id="r", key=f"r-{i}", text=t, i=i))
        for i, t in enumerate(EU_CLIENT[:3])
    ]
    before = await store.state("telegram", "r")
    assert before is not None and before.pending == "residence"
    await first.dispose()

    second = make_engine(db_url)
    try:
        store = ConversationStore(make_sessionmaker(second))
        bot = Engine(flow, profile, gazetteer)
        resumed = await store.state("telegram", "r")
        assert resumed == before
        for i, t in enumerate(EU_CLIENT[3:], start=3):
            restarted.append(
                _turn(await _handle(store, bot, external_id="r", key=f"r-{i}", text=t, i=i))
            )
        assert restarted == uninterrupted
        assert uninterrupted[-1][2] == ["SERVE_EU_RESTRICTED"]
        assert await store.state("telegram", "r") == await store.state("telegram", "u")
        sessions = make_sessionmaker(second)
        async with sessions() as s:
            versions = (await s.exec(select(Conversation.version))).all()
        assert versions == [len(EU_CLIENT), len(EU_CLIENT)]
        await _chains_intact(sessions)
    finally:
        await second.dispose()


async def test_redelivered_update_changes_nothing(
    sessions: SessionFactory, engine: Engine
) -> None:
    store = ConversationStore(sessions)
    await converse(store, engine, external_id="7", texts=EU_CLIENT[:3], key_prefix="k")
    before = await _snapshot(sessions)

    again = await _handle(store, engine, external_id="7", key="k-1", text=EU_CLIENT[1], i=1)
    assert again is None
    # The key decides, not the content: a redelivery is never handled as a new message.
    other = await _handle(store, engine, external_id="7", key="k-2", text="I live in Paris", i=9)
    assert other is None
    assert await _snapshot(sessions) == before


async def test_same_update_delivered_concurrently_has_one_effect(
    sessions: SessionFactory, engine: Engine
) -> None:
    store = ConversationStore(sessions)
    await converse(store, engine, external_id="7", texts=EU_CLIENT[:1], key_prefix="k")
    before = await row_counts(sessions)

    results = await asyncio.gather(
        *(
            _handle(store, engine, external_id="7", key="k-1", text=EU_CLIENT[1], i=1)
            for _ in range(5)
        )
    )
    done = [r for r in results if r is not None]
    assert len(done) == 1
    after = await row_counts(sessions)
    assert after["message"] == before["message"] + 1
    assert after["processed_update"] == before["processed_update"] + 1
    assert after["outbox"] == before["outbox"] + len(done[0].outbox_ids)
    assert after["audit_event"] == before["audit_event"] + len(done[0].audit_event_ids)
    assert after["client"] == before["client"] == 1
    assert done[0].version == 2
    await _chains_intact(sessions)


async def test_same_first_update_of_a_new_client_concurrently(
    sessions: SessionFactory, engine: Engine
) -> None:
    store = ConversationStore(sessions)
    results = await asyncio.gather(
        *(_handle(store, engine, external_id="9", key="n-0", text="/start", i=0) for _ in range(4))
    )
    assert sum(r is not None for r in results) == 1
    counts = await row_counts(sessions)
    assert counts["client"] == 1 and counts["conversation"] == 1
    assert counts["message"] == 1 and counts["processed_update"] == 1
    await _chains_intact(sessions)


async def test_two_first_messages_of_a_new_client_concurrently_make_one_client(
    sessions: SessionFactory, engine: Engine
) -> None:
    store = ConversationStore(sessions)
    a, b = await asyncio.gather(
        _handle(store, engine, external_id="5", key="a", text="/start", i=0),
        _handle(store, engine, external_id="5", key="b", text="Hi, I want custody", i=0),
    )
    assert a is not None and b is not None
    assert a.client_id == b.client_id
    assert sorted([a.version, b.version]) == [1, 2]
    counts = await row_counts(sessions)
    assert counts["client"] == 1 and counts["conversation"] == 1
    assert counts["message"] == 2 and counts["processed_update"] == 2
    async with sessions() as s:
        client = await s.get(Client, a.client_id)
        assert client is not None
        assert client.audit_seq == counts["audit_event"]
        ins = (
            await s.exec(
                select(AuditEvent.payload).where(
                    AuditEvent.client_id == a.client_id, AuditEvent.type == "message_in"
                )
            )
        ).all()
    assert sorted(json.loads(p or "{}")["update"] for p in ins) == ["telegram:a", "telegram:b"]
    await _chains_intact(sessions)


def _queued(events: Sequence[AuditEvent]) -> dict[int, Mapping[str, Any]]:
    found: dict[int, Mapping[str, Any]] = {}
    for ev in events:
        if ev.type == "outbound_queued":
            payload = json.loads(ev.payload or "{}")
            assert payload["outbox_id"] not in found, "one outbound_queued event per outbox row"
            found[payload["outbox_id"]] = {**payload, "created_at": ev.created_at}
    return found


async def test_every_outbox_row_has_its_audit_event(
    sessions: SessionFactory, engine: Engine
) -> None:
    store = ConversationStore(sessions)
    results = await converse(store, engine, external_id="3", texts=EU_CLIENT)
    cid = results[0].client_id
    async with sessions() as s:
        rows = (await s.exec(select(Outbox).where(Outbox.client_id == cid))).all()
        events = (
            await s.exec(
                select(AuditEvent).where(AuditEvent.client_id == cid).order_by(col(AuditEvent.seq))
            )
        ).all()
    queued = _queued(events)
    assert rows and set(queued) == {r.id for r in rows}
    for row in rows:
        ev = queued[row.id or 0]
        assert (ev["text"], ev["kind"], ev["dedupe_key"]) == (row.text, row.kind, row.dedupe_key)
        # Written by the same transaction: the same transaction time.
        assert ev["created_at"] == row.created_at
    assert sum(len(r.outbox_ids) for r in results) == len(rows)


async def test_each_turn_stores_the_recipient_facts_the_gate_reads(
    sessions: SessionFactory, engine: Engine
) -> None:
    store = ConversationStore(sessions)
    results = await converse(store, engine, external_id="5", texts=EU_CLIENT)
    cid = results[0].client_id
    async with sessions() as s:
        conv = (await s.exec(select(Conversation).where(Conversation.client_id == cid))).one()
    state = ConversationState.from_dict(json.loads(conv.state))
    assert conv.facts is not None
    stored = facts_from_dict(json.loads(conv.facts))
    assert stored == engine.recipient_facts(state)
    assert stored.zone in IN_SCOPE and stored.outcomes == tuple(i.outcome for i in state.inquiries)

    # A conversation saved before facts were stored (migration 0006) gets them at start.
    async with sessions() as s, s.begin():
        conv.facts = None
        s.add(conv)
    assert await store.fill_missing_facts(engine) == 1
    assert await store.fill_missing_facts(engine) == 0
    async with sessions() as s:
        refilled = (
            await s.exec(select(Conversation.facts).where(Conversation.client_id == cid))
        ).one()
    assert refilled is not None and facts_from_dict(json.loads(refilled)) == stored


async def test_a_failure_before_commit_leaves_no_outbox_row_and_no_evidence(
    sessions: SessionFactory, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outbox rows and their evidence commit together or not at all; the update stays
    unclaimed, so the redelivery is handled in full."""
    store = ConversationStore(sessions)
    await converse(store, engine, external_id="3", texts=EU_CLIENT[:2], key_prefix="k")
    before = await _snapshot(sessions)
    real = audit.append_many

    async def append_then_crash(*args: Any, **kwargs: Any) -> list[AuditEvent]:
        await real(*args, **kwargs)  # outbox rows and audit events are flushed by now
        raise RuntimeError("crash before commit")

    monkeypatch.setattr(audit, "append_many", append_then_crash)
    with pytest.raises(RuntimeError, match="crash before commit"):
        await _handle(store, engine, external_id="3", key="k-2", text=EU_CLIENT[2], i=2)
    assert await _snapshot(sessions) == before

    monkeypatch.setattr(audit, "append_many", real)
    redelivered = await _handle(store, engine, external_id="3", key="k-2", text=EU_CLIENT[2], i=2)
    assert redelivered is not None and redelivered.outbox_ids
    async with sessions() as s:
        messages = (await s.exec(select(Message.update_key).order_by(col(Message.id)))).all()
    assert messages == ["telegram:k-0", "telegram:k-1", "telegram:k-2"]
    await _chains_intact(sessions)
