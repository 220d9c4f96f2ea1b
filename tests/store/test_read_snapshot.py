"""`read_snapshot`: reads that agree with each other and hold up no writer (both backends).

`triage audit verify` and `triage evidence export` read under it while the bot may be writing.
"""

from __future__ import annotations

import asyncio

from sqlmodel import SQLModel, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from tests.store.support import converse
from triage.flows.engine import Engine
from triage.service.client_events import ConversationStore
from triage.store import audit
from triage.store.db import SessionFactory, read_snapshot
from triage.store.models import AuditEvent, Client

SHORT_TEXTS = ("/start", "A friend told me about you")


async def _count(session: AsyncSession, model: type[SQLModel]) -> int:
    return int((await session.exec(select(func.count()).select_from(model))).one())


async def test_a_reader_sees_one_snapshot_and_the_writer_goes_on(
    sessions: SessionFactory, engine: Engine
) -> None:
    store = ConversationStore(sessions)
    await converse(store, engine, external_id="1", texts=SHORT_TEXTS)
    async with sessions() as reader, read_snapshot(reader):
        clients, events = await _count(reader, Client), await _count(reader, AuditEvent)
        # A whole conversation is written and committed while the reader is open. On SQLite a
        # reader that took the write lock (BEGIN IMMEDIATE) would make this wait 30 s and fail.
        await asyncio.wait_for(
            converse(store, engine, external_id="2", texts=SHORT_TEXTS), timeout=10
        )
        assert await _count(reader, Client) == clients
        assert await _count(reader, AuditEvent) == events
        assert await audit.verify(reader) == []
    async with sessions() as after:
        assert await _count(after, Client) == clients + 1
        assert await _count(after, AuditEvent) > events
