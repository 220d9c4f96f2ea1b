"""The baselines: bare aiogram bots written the fast way (async handlers and async filters only).

aiogram 3 runs a synchronous handler or filter in a worker thread (about 5x slower), so every
handler and filter here is a coroutine: `CommandStart()` and `StateFilter(...)` are async filters.

- `FsmBot`: the three-question intake on a `MemoryStorage` FSM, fed with `Dispatcher.feed_update`
  in process. It builds each reply (`message.answer(...)` makes the `SendMessage` request) but
  sends nothing, as `ConversationStore.handle` queues outbox rows and sends nothing; it persists
  nothing.
- `EchoBot`: an echo bot over HTTP against the Telegram sandbox, by long polling
  (`Dispatcher.start_polling`) or by webhook (`SimpleRequestHandler`, aiogram's defaults).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from aiogram import Bot, Dispatcher, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.filters import CommandStart, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.types import Message, Update
from aiohttp import web

WELCOME = "Hello! I am the assistant of Northwind Digital."
QUESTIONS = (
    "How did you hear about us?",
    "Which country do you live in?",
    "Which service are you interested in?",
)
DONE = "Thank you. A colleague will contact you here shortly."
LATER = "Thank you, we have noted your message."


class Intake(StatesGroup):
    """The intake's states: one per question, then decided."""

    source = State()
    residence = State()
    service = State()
    decided = State()


def intake_router(sink: list[Any]) -> Router:
    """The three-question intake; replies are built into `sink`, not sent."""
    router = Router(name="baseline-intake")

    @router.message(CommandStart())
    async def start(message: Message, state: FSMContext) -> None:
        await state.set_state(Intake.source)
        sink.append(message.answer(WELCOME))
        sink.append(message.answer(QUESTIONS[0]))

    @router.message(StateFilter(Intake.source))
    async def source(message: Message, state: FSMContext) -> None:
        await state.update_data(source=message.text)
        await state.set_state(Intake.residence)
        sink.append(message.answer(QUESTIONS[1]))

    @router.message(StateFilter(Intake.residence))
    async def residence(message: Message, state: FSMContext) -> None:
        await state.update_data(residence=message.text)
        await state.set_state(Intake.service)
        sink.append(message.answer(QUESTIONS[2]))

    @router.message(StateFilter(Intake.service))
    async def service(message: Message, state: FSMContext) -> None:
        await state.update_data(service=message.text)
        await state.set_state(Intake.decided)
        sink.append(message.answer(DONE))

    @router.message(StateFilter(Intake.decided))
    async def later(message: Message, state: FSMContext) -> None:
        data = await state.get_data()
        await state.update_data(later=[*data.get("later", []), message.text])
        sink.append(message.answer(LATER))

    return router


def raw_message_update(update_id: int, chat_id: int, text: str) -> dict[str, Any]:
    """A private-chat text message update as Telegram sends it."""
    user = {"id": chat_id, "is_bot": False, "first_name": "Client", "language_code": "en"}
    message: dict[str, Any] = {
        "message_id": update_id,
        "date": int(datetime.now(UTC).timestamp()),
        "chat": {"id": chat_id, "type": "private", "first_name": "Client"},
        "from": user,
        "text": text,
    }
    if text.startswith("/"):
        command = text.split()[0]
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
    return {"update_id": update_id, "message": message}


class FsmBot:
    """The in-process baseline: `feed_update` on a fresh dispatcher with a MemoryStorage FSM."""

    def __init__(self) -> None:
        self.bot = Bot("42:TEST")
        self.sink: list[Any] = []
        self.dispatcher = Dispatcher(storage=MemoryStorage())
        self.dispatcher.include_router(intake_router(self.sink))
        self._next = 1

    def updates(self, chat_id: int, script: Sequence[str]) -> list[Update]:
        """Parsed updates for one client's script (parsing is not part of the measurement)."""
        out = []
        for text in script:
            raw = raw_message_update(self._next, chat_id, text)
            self._next += 1
            out.append(Update.model_validate(raw, context={"bot": self.bot}))
        return out

    async def feed(self, update: Update) -> None:
        """Handle one update through the dispatcher."""
        await self.dispatcher.feed_update(self.bot, update)

    async def close(self) -> None:
        """Close the bot's (unused) HTTP session."""
        await self.bot.session.close()


def echo_router() -> Router:
    """Echo every text message back."""
    router = Router(name="baseline-echo")

    @router.message()
    async def echo(message: Message) -> None:
        await message.answer(message.text or "?")

    return router


class EchoBot:
    """A bare aiogram echo bot on the sandbox, by long polling or by webhook."""

    def __init__(self, *, token: str, api_base: str, mode: str) -> None:
        self.mode = mode
        session = AiohttpSession(api=TelegramAPIServer.from_base(api_base))
        self.bot = Bot(token, session=session)
        self.dispatcher = Dispatcher()
        self.dispatcher.include_router(echo_router())
        self._task: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None

    async def start(self, secret: str = "bench-secret") -> None:
        """Start polling, or serve the webhook on 127.0.0.1 and register it."""
        if self.mode == "polling":
            await self.bot.delete_webhook()
            self._task = asyncio.create_task(
                self.dispatcher.start_polling(self.bot, handle_signals=False, polling_timeout=5)
            )
            return
        from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application

        app = web.Application()
        SimpleRequestHandler(
            dispatcher=self.dispatcher, bot=self.bot, secret_token=secret
        ).register(app, path="/webhook")
        setup_application(app, self.dispatcher, bot=self.bot)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        await self.bot.set_webhook(f"http://127.0.0.1:{port}/webhook", secret_token=secret)

    async def stop(self) -> None:
        """Stop polling or the webhook server; close the session."""
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self.dispatcher.stop_polling()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, 10)
        if self._runner is not None:
            with contextlib.suppress(Exception):
                await self.bot.delete_webhook()
            await self._runner.cleanup()
        await self.bot.session.close()
