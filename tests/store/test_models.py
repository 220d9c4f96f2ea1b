"""Tables: aware UTC times on both backends, unique keys, SQLite durability settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine

from triage.store.db import SessionFactory
from triage.store.models import Client, Message, Outbox, ProcessedUpdate


async def _client(sessions: SessionFactory, external_id: str = "42") -> int:
    async with sessions() as s, s.begin():
        client = Client(channel="telegram", external_id=external_id)
        s.add(client)
        await s.flush()
        assert client.id is not None
        return client.id


async def test_times_read_back_aware_utc(sessions: SessionFactory) -> None:
    berlin = timezone(timedelta(hours=2))
    at = datetime(2026, 7, 1, 14, 30, 15, 123456, tzinfo=berlin)
    async with sessions() as s, s.begin():
        client = Client(channel="telegram", external_id="1", created_at=at, last_activity_at=at)
        s.add(client)
    async with sessions() as s:
        row = await s.get(Client, client.id)
        assert row is not None
        assert row.created_at.tzinfo is not None
        assert row.created_at.utcoffset() == timedelta(0)
        assert row.created_at == at
        assert row.created_at.hour == 12
        assert row.restricted_at is None


async def test_naive_times_are_refused(sessions: SessionFactory) -> None:
    with pytest.raises(StatementError, match="naive datetime"):
        async with sessions() as s, s.begin():
            s.add(Client(channel="telegram", external_id="1", created_at=datetime(2026, 1, 1)))


async def test_free_text_is_stored_verbatim(sessions: SessionFactory) -> None:
    cid = await _client(sessions)
    nasty = "Robert'); DROP TABLE client;-- \u202e\u200b Gеrmany \U0001f600 " + "x" * 4096
    async with sessions() as s, s.begin():
        msg = Message(client_id=cid, direction="in", text=nasty, platform_at=datetime.now(UTC))
        s.add(msg)
    async with sessions() as s:
        row = await s.get(Message, msg.id)
        assert row is not None and row.text == nasty
        assert await s.get(Client, cid) is not None


async def test_outbox_dedupe_key_is_unique(sessions: SessionFactory) -> None:
    cid = await _client(sessions)

    def row() -> Outbox:
        return Outbox(
            dedupe_key="telegram:update:1:0",
            client_id=cid,
            channel="telegram",
            kind="prompt",
            sender="bot",
            text="Hi",
            buttons=[["Yes", "yes"]],
        )

    async with sessions() as s, s.begin():
        s.add(row())
    with pytest.raises(IntegrityError):
        async with sessions() as s, s.begin():
            s.add(row())
    async with sessions() as s:
        stored = (await s.exec(Outbox.__table__.select())).all()  # type: ignore[attr-defined]
        assert len(stored) == 1
        assert stored[0].buttons == [["Yes", "yes"]]
        assert stored[0].status == "pending"


async def test_processed_update_is_unique_per_source(sessions: SessionFactory) -> None:
    async with sessions() as s, s.begin():
        s.add(ProcessedUpdate(source="telegram", key="update:1"))
        s.add(ProcessedUpdate(source="slack", key="update:1"))
    with pytest.raises(IntegrityError):
        async with sessions() as s, s.begin():
            s.add(ProcessedUpdate(source="telegram", key="update:1"))


async def test_sqlite_is_durable_and_locks_up_front(db_engine: AsyncEngine, backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("SQLite settings")
    async with db_engine.connect() as conn:
        assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
        assert (await conn.execute(text("PRAGMA synchronous"))).scalar() == 2  # FULL
        assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
        assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() >= 5000
