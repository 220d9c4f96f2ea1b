"""The long-polling loop against the Telegram sandbox with the real aiogram client.

A getUpdates batch is handled chat by chat in parallel, each chat's updates in Telegram's order;
the offset moves only past updates that were stored, so a failing one is fetched again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict

from triage.channels.telegram import (
    InboundEvent,
    TelegramPoller,
    build_bot,
    build_dispatcher,
)
from triage_sandbox.telegram import TelegramSandbox


class Recorder:
    """An inbound handler that takes a while, remembers the order and how many ran at once."""

    def __init__(self, *, fail_first: frozenset[str] = frozenset()) -> None:
        self.by_chat: dict[int, list[str]] = defaultdict(list)
        self.running = 0
        self.most_at_once = 0
        self.fail_first = set(fail_first)
        self.calls = 0

    async def __call__(self, event: InboundEvent) -> None:
        self.calls += 1
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            await asyncio.sleep(0.02)
            if event.event.text in self.fail_first:
                self.fail_first.discard(event.event.text)
                raise RuntimeError("database unavailable")
            self.by_chat[event.chat_id].append(event.event.text)
        finally:
            self.running -= 1


async def _poll_until(tg: TelegramSandbox, recorder: Recorder, stored: int) -> TelegramPoller:
    bot = build_bot(tg.token, tg.api_base)
    poller = TelegramPoller(bot=bot, dispatcher=build_dispatcher(recorder), timeout=1)
    task = asyncio.create_task(poller.run())
    try:
        async with asyncio.timeout(20):
            while sum(map(len, recorder.by_chat.values())) < stored or tg.pending_updates:
                await asyncio.sleep(0.02)
    finally:
        poller.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await bot.session.close()
    return poller


async def test_a_batch_runs_chats_in_parallel_and_each_chat_in_order() -> None:
    async with TelegramSandbox() as tg:
        chats = [7001, 7002, 7003, 7004]
        for i in range(5):  # interleaved, as several clients typing at once
            for chat in chats:
                await tg.push_text(user_id=chat, text=f"{chat}-{i}")
        recorder = Recorder()
        await _poll_until(tg, recorder, stored=20)
    for chat in chats:
        assert recorder.by_chat[chat] == [f"{chat}-{i}" for i in range(5)]
    assert recorder.most_at_once > 1, "the chats of one batch were handled one at a time"
    assert recorder.calls == 20  # nothing handled twice: the offset moved past the batch


async def test_an_update_that_fails_is_retried_and_its_chat_waits_for_it() -> None:
    async with TelegramSandbox() as tg:
        for i in range(3):
            await tg.push_text(user_id=7101, text=f"a-{i}")
            await tg.push_text(user_id=7102, text=f"b-{i}")
        recorder = Recorder(fail_first={"a-1"})
        poller = await _poll_until(tg, recorder, stored=6)
    assert recorder.by_chat[7101] == ["a-0", "a-1", "a-2"]
    assert recorder.by_chat[7102] == ["b-0", "b-1", "b-2"]
    assert poller.failures == 1
    assert not tg.pending_updates
