"""Forged and odd Telegram deliveries not covered by tests/integration/test_telegram_app.py.

Covered there already: a missing or wrong secret -> 401, a 2 MB body with Content-Length ->
413, a redelivered update. Slack forgery (bad signature, stale timestamp, replay inside the
5-minute window, a button naming another case, a non-officer) is in tests/channels/.

Every test runs on SQLite, and on PostgreSQL when TRIAGE_TEST_POSTGRES_URL is set (a fresh
schema each, the store tests' `db_url` fixture): "nothing written" and "handled once" are
claims about the database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from sqlmodel import func, select

from tests.reliability.test_outage import CONFIG, _settings
from tests.store.conftest import db_url  # noqa: F401 - fixture: sqlite, postgres
from triage.app import TriageApp
from triage.channels.telegram import WEBHOOK_PATH
from triage.flows.engine import Engine
from triage.store import audit
from triage.store.models import AuditEvent, Client, Message, ProcessedUpdate
from triage_sandbox.telegram import TelegramSandbox

SECRET = "s" * 256  # the longest secret Telegram allows


def update(update_id: int, chat: int, message_id: int, text: str) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": message_id,
            "date": 1764662400 + message_id,
            "chat": {"id": chat, "type": "private"},
            "from": {"id": chat, "is_bot": False, "first_name": "X", "language_code": "en"},
            "text": text,
        },
    }


@pytest.fixture
async def hook(
    db_url: str,  # noqa: F811
    engine: Engine,
) -> AsyncIterator[tuple[TriageApp, str]]:
    async with TelegramSandbox() as tg:
        settings = _settings(
            tg,
            db_url,
            telegram_mode="webhook",
            telegram_webhook_secret=SECRET,
        )
        app = TriageApp(settings, engine=engine, dispatcher_config=CONFIG)
        await app.start()
        try:
            yield app, f"http://127.0.0.1:{app.port}{WEBHOOK_PATH}"
        finally:
            await app.stop()


async def counts(app: TriageApp) -> tuple[int, int, int]:
    async with app.sessions() as s:
        return (
            (await s.exec(select(func.count()).select_from(Client))).one(),
            (await s.exec(select(func.count()).select_from(ProcessedUpdate))).one(),
            (await s.exec(select(func.count()).select_from(AuditEvent))).one(),
        )


async def test_overlong_or_near_miss_secret_is_refused_and_writes_nothing(
    hook: tuple[TriageApp, str],
) -> None:
    app, url = hook
    forged = [
        SECRET + "s",  # 257 characters, the real secret as its prefix
        SECRET[:-1],  # 255: a prefix of the real one
        SECRET[:-1] + "S",  # same length, one letter differs
        # (" " + SECRET is accepted: HTTP strips whitespace around header values, RFC 9110.)
        "s" * 10_000,
    ]
    async with aiohttp.ClientSession() as http:
        for secret in forged:
            headers = {"X-Telegram-Bot-Api-Secret-Token": secret}
            async with http.post(url, json=update(1, 71, 1, "hi"), headers=headers) as r:
                # Over 8 KB the HTTP parser refuses the header line itself (400).
                assert r.status == (401 if len(secret) < 8000 else 400), secret[:20]
    assert await counts(app) == (0, 0, 0)


async def test_a_body_over_1_mb_without_content_length_is_refused(
    hook: tuple[TriageApp, str],
) -> None:
    """Chunked transfer has no Content-Length for the adapter's guard to check; aiohttp's
    client_max_size must still stop it before anything is parsed or stored."""
    app, url = hook
    big = update(2, 72, 1, "x" * (1024 * 1024 + 10))

    async def chunks() -> AsyncIterator[bytes]:
        import json

        data = json.dumps(big).encode()
        for i in range(0, len(data), 64 * 1024):
            yield data[i : i + 64 * 1024]

    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data=chunks(), headers=headers) as r:
            assert r.status == 413
    assert await counts(app) == (0, 0, 0)


async def test_update_ids_that_jump_and_go_back_are_each_handled_once(
    hook: tuple[TriageApp, str],
) -> None:
    """update_id becomes random after a quiet week: nothing may assume it grows."""
    app, url = hook
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    sequence = [
        update(10, 73, 1, "/start"),
        update(10 + 10**9, 73, 2, "I googled your name"),  # a jump
        update(11, 73, 3, "Canada"),  # lower than the last one: a new message all the same
        update(11, 73, 3, "Canada"),  # the same update again: a duplicate
        update(10 + 10**9, 73, 2, "I googled your name"),  # and the jumped one again
        update(5, 74, 1, "/start"),  # another chat, lowest id of all
    ]
    async with aiohttp.ClientSession() as http:
        for u in sequence:
            async with http.post(url, json=u, headers=headers) as r:
                assert r.status == 200
    async with app.sessions() as s:
        keys = sorted((await s.exec(select(ProcessedUpdate.key))).all())
        inbound = (await s.exec(select(func.count()).select_from(Message))).one()
        assert await audit.verify(s) == []
    assert keys == ["msg:73:1", "msg:73:2", "msg:73:3", "msg:74:1"]
    assert inbound >= 4
    assert app.state.duplicate_updates == 2
    assert app.state.stored_updates == 4


async def test_polling_after_an_update_id_jump_loses_nothing(
    db_url: str,  # noqa: F811
    engine: Engine,
) -> None:
    async with TelegramSandbox() as tg:
        app = TriageApp(
            _settings(tg, db_url),
            engine=engine,
            dispatcher_config=CONFIG,
        )
        await app.start()
        try:
            await tg.push_start(user_id=75, language_code="en")
            await tg.wait_sent(2, chat_id=75, timeout=15)
            tg.jump_update_ids(10**9)
            await tg.push_text(user_id=75, text="a friend told me", language_code="en")
            await tg.wait_sent(1, chat_id=75, timeout=15)
            await tg.wait_until(lambda: not tg.pending_updates, timeout=15)
            assert app.state.stored_updates == 2 and app.state.duplicate_updates == 0
        finally:
            await app.stop()
