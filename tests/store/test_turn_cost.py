"""What one turn costs: its statements, and classifier calls, stay few (issue 8 item 1).

Counts, not timings: the statements a turn sends are deterministic, so a change that adds a
round trip per row (an ORM flush per object, a second lock of the client row) shows here. And
the ids a turn returns must be the rows it wrote, on both backends.
"""

from __future__ import annotations

import asyncio
import collections
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

import triage.flows.engine as engine_module
from tests.store.support import EU_CLIENT, NON_EU_CLIENT, converse
from triage.flows.engine import ConversationState, Engine
from triage.service.client_events import ConversationStore
from triage.store import audit
from triage.store.db import SessionFactory
from triage.store.models import AuditEvent, Decision, Message, Outbox

AT = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)


@contextmanager
def statements(db_engine: AsyncEngine) -> Iterator[list[str]]:
    """Every statement sent to the database while the block runs (first words only)."""
    sent: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(" ".join(statement.split()[:3]))

    sa_event.listen(db_engine.sync_engine, "before_cursor_execute", count)
    try:
        yield sent
    finally:
        sa_event.remove(db_engine.sync_engine, "before_cursor_execute", count)


async def test_a_turn_sends_one_statement_per_kind_of_row(
    db_engine: AsyncEngine, sessions: SessionFactory, engine: Engine, backend: str
) -> None:
    """Claim, client (created or locked in one statement), conversation, message, outbox rows
    (one multi-row INSERT), audit events (one multi-row INSERT), client and chain head (one
    UPDATE), state; a decision adds its inquiry and decision rows and the follow-up check."""
    store = ConversationStore(sessions)
    await converse(store, engine, external_id="warm", texts=NON_EU_CLIENT[:2])
    per_turn = []
    for i, text in enumerate(NON_EU_CLIENT):
        with statements(db_engine) as sent:
            await converse(store, engine, external_id="c", texts=[text], key_prefix=f"k{i}")
        per_turn.append(collections.Counter(sent))
    begin = 1 if backend == "sqlite" else 0  # PostgreSQL's BEGIN is not a cursor statement
    totals = [sum(c.values()) - begin for c in per_turn]
    # /start of a new client (creates the conversation), two answers, the deciding answer
    # (inquiry, decision, follow-up check), a message after the decision.
    assert totals[0] <= 9, per_turn[0]
    assert totals[1] <= 8 and totals[2] <= 8, per_turn[1:3]
    assert totals[3] <= 11, per_turn[3]
    assert totals[4] <= 8, per_turn[4]
    for counts in per_turn:
        assert counts["INSERT INTO audit_event"] == 1, counts
        assert counts["INSERT INTO outbox"] <= 1, counts
        assert counts["UPDATE client SET"] == 1, counts
        assert counts["SELECT client.id, client.channel,"] == 0, counts  # locked once, upfront


async def test_the_ids_a_turn_returns_are_the_rows_it_wrote(
    sessions: SessionFactory, engine: Engine
) -> None:
    store = ConversationStore(sessions)
    results = await converse(store, engine, external_id="ids", texts=EU_CLIENT)
    cid = results[0].client_id
    async with sessions() as s:
        events = (
            await s.exec(
                select(AuditEvent).where(AuditEvent.client_id == cid).order_by(col(AuditEvent.seq))
            )
        ).all()
        outbox = (
            await s.exec(select(Outbox).where(Outbox.client_id == cid).order_by(col(Outbox.id)))
        ).all()
        decisions = (
            await s.exec(
                select(Decision).where(Decision.client_id == cid).order_by(col(Decision.id))
            )
        ).all()
        messages = (
            await s.exec(select(Message).where(Message.client_id == cid).order_by(col(Message.id)))
        ).all()
        assert await audit.verify(s) == []
    assert [e.id for e in events] == [i for r in results for i in r.audit_event_ids]
    assert [o.id for o in outbox] == [i for r in results for i in r.outbox_ids]
    assert [d.id for d in decisions] == [i for r in results for i in r.decision_ids]
    by_id = {e.id: e for e in events}
    for result in results:
        payloads = [
            (by_id[i].type, json.loads(by_id[i].payload or "{}")) for i in result.audit_event_ids
        ]
        # The first event of a turn is its message, by id; queued rows and decisions by id.
        assert payloads[0][0] == "message_in"
        assert payloads[0][1]["message_id"] in {m.id for m in messages}
        queued = [p["outbox_id"] for t, p in payloads if t == "outbound_queued"]
        assert queued == list(result.outbox_ids)
        decided = [p["decision_id"] for t, p in payloads if t == "decision"]
        assert decided == list(result.decision_ids)
    rows = {o.id: o for o in outbox}
    for ev in events:
        if ev.type == "outbound_queued":
            p = json.loads(ev.payload or "{}")
            row = rows[p["outbox_id"]]
            assert (p["dedupe_key"], p["text"], p["buttons"]) == (
                row.dedupe_key,
                row.text,
                row.buttons,
            )


async def test_concurrent_turns_of_many_clients_all_commit_with_intact_chains(
    sessions: SessionFactory, engine: Engine
) -> None:
    """Many conversations at once (on SQLite they queue on the store's writer lock)."""
    store = ConversationStore(sessions)
    results = await asyncio.gather(
        *(converse(store, engine, external_id=f"many{i}", texts=NON_EU_CLIENT) for i in range(8))
    )
    assert all(len(r) == len(NON_EU_CLIENT) for r in results)
    async with sessions() as s:
        assert await audit.verify(s) == []


@pytest.mark.parametrize("script", [EU_CLIENT, NON_EU_CLIENT], ids=["eu", "non_eu"])
def test_a_turn_classifies_each_text_once(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, script: tuple[str, ...]
) -> None:
    """Optional steps, the first decision, re-evaluation and the gate's zone all read the same
    findings: within one turn no classifier runs twice on the same input."""
    calls: collections.Counter[tuple[str, str]] = collections.Counter()

    def counting(name: str) -> Any:
        real = getattr(engine_module, name)

        def wrapper(text: str, *args: Any, **kwargs: Any) -> Any:
            calls[(name, text + repr(sorted(kwargs.items())))] += 1
            return real(text, *args, **kwargs)

        return wrapper

    for name in ("classify_source", "classify_service", "classify_residence"):
        monkeypatch.setattr(engine_module, name, counting(name))
    state = ConversationState()
    for i, text in enumerate([*script, "by the way I also want custody"]):
        calls.clear()
        kind = "start" if text == "/start" else "message"
        turn = engine.handle(
            state,
            engine_module.ClientEvent(kind=kind, at=AT, text=text, language="en"),  # type: ignore[arg-type]
        )
        engine.recipient_facts(turn.state)  # what the turn stores for the gate
        repeated = {k: n for k, n in calls.items() if n > 1}
        assert not repeated, (i, text, repeated)
        state = turn.state
