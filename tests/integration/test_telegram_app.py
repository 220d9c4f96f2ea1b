"""The whole app (TriageApp) against the Telegram sandbox, through the real aiogram client.

Each test runs on SQLite and on PostgreSQL (when configured): a client talks to the bot over the
Bot API; the bot's replies leave through the outbox and the gate.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlmodel import col, func, select

from tests.store.conftest import db_url  # noqa: F401 - fixture
from triage.app import TriageApp
from triage.channels.telegram import WEBHOOK_PATH, split_text
from triage.flows.engine import Engine
from triage.outbox.dispatcher import DispatcherConfig
from triage.settings import Settings
from triage.store.models import AuditEvent, Client, Message, Outbox
from triage_sandbox.telegram import TelegramSandbox

FAST = DispatcherConfig(
    backoff_base_seconds=0.05, backoff_max_seconds=0.2, lease_seconds=40.0, per_chat_per_second=50
)


def settings_for(tg: TelegramSandbox, url: str, **extra: Any) -> Settings:
    return Settings(
        telegram_token=tg.token,
        telegram_api_base=tg.api_base,
        database_url=url,
        http_port=0,
        outbox_interval_seconds=0.2,
        **extra,
    )


@pytest.fixture
async def tg() -> AsyncIterator[TelegramSandbox]:
    async with TelegramSandbox() as sandbox:
        yield sandbox


@pytest.fixture
async def app(tg: TelegramSandbox, db_url: str, engine: Engine) -> AsyncIterator[TriageApp]:  # noqa: F811
    triage = TriageApp(settings_for(tg, db_url), engine=engine, dispatcher_config=FAST)
    await triage.start()
    try:
        yield triage
    finally:
        await triage.stop()


async def all_sent(app: TriageApp, external_id: str, timeout: float = 15) -> list[str]:
    """Wait until every outbox row of a client is settled (the mark-sent follows the send)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        async with app.sessions() as s:
            client = (await s.exec(select(Client).where(Client.external_id == external_id))).one()
            statuses = list(
                (await s.exec(select(Outbox.status).where(Outbox.client_id == client.id))).all()
            )
        if "sending" not in statuses and "pending" not in statuses:
            return statuses
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"outbox rows of {external_id} not settled: {statuses}")
        await asyncio.sleep(0.05)


async def texts(tg: TelegramSandbox, chat: int, n: int) -> list[str]:
    return [m["text"] for m in await tg.wait_sent(n, chat_id=chat, timeout=15)]


async def test_a_conversation_in_german_ends_in_a_decision(
    tg: TelegramSandbox, app: TriageApp
) -> None:
    await tg.push_start(user_id=501, language_code="de")
    welcome, question = await texts(tg, 501, 2)
    assert "Guten Tag" in welcome and "Wie sind Sie" in question
    await tg.push_text(user_id=501, text="Ich habe euren Namen gegoogelt", language_code="de")
    assert "Land" in (await texts(tg, 501, 1))[0]
    await tg.push_text(user_id=501, text="Wien", language_code="de")
    assert (await texts(tg, 501, 1))[0]  # the service question
    await tg.push_text(user_id=501, text="Bitcoin verwahren", language_code="de")
    assert "kontaktiert" in (await texts(tg, 501, 1))[0]  # prior contact, asked before serving
    await tg.push_text(user_id=501, text="Nein", language_code="de")
    (closing,) = await texts(tg, 501, 1)
    assert "Vielen Dank" in closing
    statuses = await all_sent(app, "501")
    async with app.sessions() as s:
        client = (await s.exec(select(Client).where(Client.external_id == "501"))).one()
        kinds = (
            await s.exec(select(AuditEvent.type).where(AuditEvent.client_id == client.id))
        ).all()
    assert "decision" in kinds and "outbound_sent" in kinds
    assert set(statuses) == {"sent"}


async def test_a_redelivered_update_changes_nothing(tg: TelegramSandbox, app: TriageApp) -> None:
    update = await tg.push_start(user_id=502, language_code="en")
    await texts(tg, 502, 2)
    await tg.redeliver(update["update_id"])
    await tg.push_text(user_id=502, text="a friend told me", language_code="en")
    await texts(tg, 502, 1)  # the residence question, and nothing for the redelivered /start
    async with app.sessions() as s:
        inbound = (
            await s.exec(
                select(func.count()).select_from(Message).where(Message.direction == "in")
            )
        ).one()
    assert inbound == 2
    assert [m["text"] for m in tg.sent(502)][0].startswith("Hello")
    assert len(tg.sent(502)) == 3
    assert app.state.duplicate_updates >= 1


async def test_a_button_press_answers_the_question(tg: TelegramSandbox, app: TriageApp) -> None:
    await tg.push_start(user_id=503, language_code="en")
    await texts(tg, 503, 2)
    await tg.push_text(user_id=503, text="hmm", language_code="en")
    (retry,) = await tg.wait_sent(1, chat_id=503, timeout=15)
    buttons = [b for row in retry["reply_markup"]["inline_keyboard"] for b in row]
    assert any(b["callback_data"] == "source:searched_name" for b in buttons)
    await tg.push_callback(
        user_id=503, data="source:searched_name", message_id=retry["message_id"]
    )
    (question,) = await texts(tg, 503, 1)
    assert "country" in question
    assert tg.callback_answers, "the button press was acknowledged"


async def test_commands_answer_in_the_client_language(tg: TelegramSandbox, app: TriageApp) -> None:
    await tg.push_text(user_id=504, text="/privacy", language_code="fr")
    (privacy,) = await texts(tg, 504, 1)
    assert "5" in privacy and "ans" in privacy
    await tg.push_text(user_id=504, text="/delete", language_code="fr")
    (erasure,) = await texts(tg, 504, 1)
    async with app.sessions() as s:
        client = (await s.exec(select(Client).where(Client.external_id == "504"))).one()
    assert client.restricted_at is not None
    assert erasure


async def test_rate_limited_sends_are_retried_not_lost(
    tg: TelegramSandbox, app: TriageApp
) -> None:
    tg.fail_next("sendMessage", status=429, retry_after=1)
    tg.fail_next("sendMessage", status=502, raw_body="<html>bad gateway</html>")
    await tg.push_start(user_id=505, language_code="en")
    sent = await texts(tg, 505, 2)
    assert sent[0].startswith("Hello") and "How did you" in sent[1]
    assert len(tg.sent(505)) == 2, "nothing doubled"


def test_long_texts_are_split_within_telegrams_limit() -> None:
    text = ("word " * 2000).strip()
    parts = split_text(text)
    assert len(parts) == 3
    assert all(len(p.encode("utf-16-le")) // 2 <= 4096 for p in parts)
    assert " ".join(parts) == text
    emoji = "😀" * 3000  # two UTF-16 units each
    assert all(len(p.encode("utf-16-le")) // 2 <= 4096 for p in split_text(emoji))


async def test_webhook_refuses_a_wrong_secret_and_stores_nothing(
    tg: TelegramSandbox,
    db_url: str,  # noqa: F811
    engine: Engine,
) -> None:
    settings = settings_for(
        tg, db_url, telegram_mode="webhook", telegram_webhook_secret="s3cret-token"
    )
    triage = TriageApp(settings, engine=engine, dispatcher_config=FAST)
    await triage.start()
    try:
        url = f"http://127.0.0.1:{triage.port}{WEBHOOK_PATH}"
        update = {
            "update_id": 1,
            "message": {
                "message_id": 1,
                "date": 1764662400,
                "chat": {"id": 77, "type": "private"},
                "from": {"id": 77, "is_bot": False, "first_name": "X"},
                "text": "hi",
            },
        }
        async with aiohttp.ClientSession() as http:
            for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
                async with http.post(url, json=update, headers=headers) as r:
                    assert r.status == 401
            async with triage.sessions() as s:
                assert (await s.exec(select(func.count()).select_from(Client))).one() == 0
            good = {"X-Telegram-Bot-Api-Secret-Token": "s3cret-token"}
            big = "x" * (2 * 1024 * 1024)
            async with http.post(url, data=big, headers=good) as r:
                assert r.status == 413
        # The real path: Telegram (the sandbox) delivers to the webhook with the secret.
        await triage.bot.set_webhook(url, secret_token="s3cret-token")
        await tg.push_text(user_id=77, text="hi", language_code="en")
        await tg.wait_sent(2, chat_id=77, timeout=15)
        assert all(d.ok for d in tg.deliveries)
        await all_sent(triage, "77")
        async with triage.sessions() as s:
            n = (await s.exec(select(func.count()).select_from(Client))).one()
            sent = (
                await s.exec(
                    select(func.count()).select_from(Outbox).where(col(Outbox.status) == "sent")
                )
            ).one()
        assert n == 1 and sent == 2
    finally:
        await triage.stop()


async def test_healthz_and_metrics(tg: TelegramSandbox, app: TriageApp) -> None:
    await tg.push_start(user_id=506, language_code="en")
    await texts(tg, 506, 2)
    # A message is counted as sent when its mark is committed, which follows the send: the
    # client can hold the reply before the counter moves (CI caught this race on PostgreSQL).
    await all_sent(app, "506")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{app.port}/healthz") as r:
            assert r.status == 200
            body = await r.json()
            assert body["database"] == "ok" and body["stored_updates"] >= 1
        async with http.get(f"http://127.0.0.1:{app.port}/metrics") as r:
            metrics = await r.text()
    assert "triage_turns_total 1.0" in metrics
    assert "triage_outbox_dead_rows 0.0" in metrics
    assert 'triage_gate_verdicts_total{kind="prompt",verdict="allowed"} 2.0' in metrics
    assert 'triage_messages_sent_total{channel="telegram"} 2.0' in metrics


async def test_triage_run_stops_cleanly_on_sigterm(tg: TelegramSandbox, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "TRIAGE_TELEGRAM_TOKEN": tg.token,
        "TRIAGE_TELEGRAM_API_BASE": tg.api_base,
        "TRIAGE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/run.db",
        "TRIAGE_HTTP_PORT": "0",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "triage.cli", "run"],
        env=env,
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        await tg.wait_until(lambda: tg.polling, timeout=60)
        await tg.push_start(user_id=507, language_code="en")
        await tg.wait_sent(2, chat_id=507, timeout=30)
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0
    assert proc.stderr is not None
    lines = [json.loads(line) for line in proc.stderr.read().splitlines() if line.startswith("{")]
    assert any(line["event"] == "triage stopped" for line in lines)


def _msg(chat: int, **extra: Any) -> dict[str, Any]:
    return {
        "message_id": 900 + chat,
        "date": 1764662400,
        "chat": {"id": chat, "type": "private", "first_name": "C"},
        "from": {"id": chat, "is_bot": False, "first_name": "C", "language_code": "en"},
        **extra,
    }


async def test_whatever_telegram_delivers_gets_an_answer_or_is_ignored(
    tg: TelegramSandbox, app: TriageApp, caplog: pytest.LogCaptureFixture
) -> None:
    sticker = {
        "file_id": "s1",
        "file_unique_id": "s1",
        "type": "regular",
        "width": 1,
        "height": 1,
        "is_animated": False,
        "is_video": False,
    }
    photo = [{"file_id": "p1", "file_unique_id": "p1", "width": 1, "height": 1}]
    voice = {"file_id": "v1", "file_unique_id": "v1", "duration": 2}
    await tg.push_update({"message": _msg(601, sticker=sticker)})
    await tg.push_update({"message": _msg(602, photo=photo, caption="this is me")})
    await tg.push_update({"message": _msg(603, voice=voice)})
    await tg.push_update({"message": _msg(604, text="hi", some_future_field={"x": 1})})
    await tg.push_update({"edited_message": {**_msg(605, text="edited"), "edit_date": 1}})
    group = _msg(606, text="hello group")
    group["chat"] = {"id": -1006, "type": "supergroup", "title": "Crypto chat"}
    await tg.push_update({"message": group})
    post = {"message_id": 1, "date": 1, "chat": {"id": -1007, "type": "channel"}, "text": "x"}
    await tg.push_update({"channel_post": post})
    # Private messages without words get the first question (asked again later, never silence).
    for chat in (601, 602, 603, 604):
        sent = await texts(tg, chat, 2)
        assert "How did you" in sent[1]
    await tg.wait_until(lambda: not tg.pending_updates, timeout=15)
    assert tg.sent(605) == [] and tg.sent(-1006) == [] and tg.sent(-1007) == []
    assert not [r for r in caplog.records if r.levelno >= 40], "no error or traceback logged"


async def test_an_english_intake_through_a_referral_deep_link_is_declined(
    tg: TelegramSandbox, app: TriageApp
) -> None:
    await tg.push_start(user_id=608, payload="NW-7Q2K", language_code="en")
    await texts(tg, 608, 2)
    for text in ("my friend sent me a link", "Dublin", "swap BTC to ETH"):
        await tg.push_text(user_id=608, text=text, language_code="en")
        await texts(tg, 608, 1)
    state = await app.store.state("telegram", "608")
    assert state is not None and state.inquiries[0].outcome == "DECLINE"
    assert any("NW-7Q2K" in r for r in state.inquiries[0].reasons)
    assert "not able to take your request further" in tg.sent(608)[-1]["text"]
