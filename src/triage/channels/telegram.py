"""Telegram adapter (aiogram 3): updates in, outbox deliveries out. It translates, never decides.

Inbound: a router (built in a factory, so each test and worker gets a fresh one) turns messages,
/start with its deep-link parameter, commands, shared contacts and inline-button presses into
engine events and hands them to an `InboundHandler` (the store: one transaction, exactly once per
update key). Nothing here sends a client message: the engine's replies are outbox rows that the
dispatcher judges with the gate and then gives to `TelegramSender`.

Polling is our own small loop rather than `Dispatcher.start_polling`, because aiogram's loop
confirms an update (moves the offset past it) even when its handler failed; ours retries the
same update until it is stored, so a database outage loses nothing. In webhook mode aiogram's
handler answers 500 when the handler fails, and Telegram redelivers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.methods import GetUpdates
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from aiohttp import web

from triage.flows.engine import ClientEvent
from triage.outbox.senders import Delivery, PermanentSendError, SentReceipt, TransientSendError

log = logging.getLogger("triage.telegram")

#: Telegram's limit for one message's text.
MAX_MESSAGE = 4096
#: Commands the bot answers; everything else a client types is a message.
COMMANDS = ("help", "privacy", "delete")
#: Webhook path on the product's HTTP server.
WEBHOOK_PATH = "/telegram/webhook"
#: Bodies larger than this are refused before parsing (Telegram's updates are far smaller).
MAX_BODY = 1024 * 1024


@dataclass(frozen=True)
class InboundEvent:
    """One client action from Telegram, with the key that makes redelivery a no-op."""

    update_key: str
    chat_id: int
    event: ClientEvent


InboundHandler = Callable[[InboundEvent], Awaitable[None]]


def _at(message: Message) -> datetime:
    date = message.date
    return date if date.tzinfo else date.replace(tzinfo=UTC)


def _language(message: Message | CallbackQuery) -> str | None:
    user = message.from_user
    return user.language_code if user is not None else None


def _key(message: Message) -> str:
    # update_id may jump or be reused after a quiet week; (chat, message id) never repeats.
    return f"msg:{message.chat.id}:{message.message_id}"


def build_router(on_event: InboundHandler) -> Router:
    """A fresh router translating Telegram updates into engine events."""
    router = Router(name="triage-telegram")
    # Prospects talk to the bot one to one. In a group the bot would be talking to people who
    # never asked it anything, so group and channel traffic is ignored (and never answered).
    router.message.filter(F.chat.type == "private")
    router.callback_query.filter(F.message.chat.type == "private")

    @router.message(CommandStart())
    async def on_start(message: Message, command: CommandObject) -> None:
        param = (command.args or "").strip() or None
        text = f"/start {param}" if param else "/start"
        event = ClientEvent(
            kind="start",
            at=_at(message),
            text=text,
            language=_language(message),
            start_param=param,
        )
        await on_event(InboundEvent(_key(message), message.chat.id, event))

    @router.message(Command(*COMMANDS))
    async def on_command(message: Message, command: CommandObject) -> None:
        event = ClientEvent(
            kind="command",
            at=_at(message),
            text=f"/{command.command}",
            language=_language(message),
        )
        await on_event(InboundEvent(_key(message), message.chat.id, event))

    @router.message(F.contact)
    async def on_contact(message: Message) -> None:
        contact = message.contact
        assert contact is not None
        own = message.from_user is not None and contact.user_id == message.from_user.id
        # Only the client's own number says anything about them; a forwarded card does not.
        event = ClientEvent(
            kind="contact",
            at=_at(message),
            language=_language(message),
            phone=contact.phone_number if own else None,
            text="" if own else f"[contact card of {contact.first_name}]",
        )
        await on_event(InboundEvent(_key(message), message.chat.id, event))

    @router.message()
    async def on_message(message: Message) -> None:
        # Photos, stickers and voice notes carry no words we can read: the engine gets an empty
        # message and asks again rather than staying silent.
        text = message.text or message.caption or ""
        event = ClientEvent(
            kind="message", at=_at(message), text=text, language=_language(message)
        )
        await on_event(InboundEvent(_key(message), message.chat.id, event))

    @router.callback_query()
    async def on_button(query: CallbackQuery) -> None:
        # Acknowledge first: the button stops spinning. This is not a message to the client.
        with contextlib.suppress(TelegramBadRequest):
            await query.answer()
        message = query.message
        chat_id = message.chat.id if message is not None else query.from_user.id
        event = ClientEvent(
            kind="button",
            at=datetime.now(UTC),
            text="",
            language=_language(query),
            button=query.data or "",
        )
        await on_event(InboundEvent(f"cb:{query.id}", chat_id, event))
        if isinstance(message, Message):
            # The question was answered: remove its buttons so they cannot be pressed twice.
            with contextlib.suppress(TelegramBadRequest):
                await message.edit_reply_markup(reply_markup=None)

    return router


def build_dispatcher(on_event: InboundHandler) -> Dispatcher:
    """A dispatcher with the triage router (one per worker or test)."""
    dp = Dispatcher()
    dp.include_router(build_router(on_event))
    return dp


def build_bot(token: str, api_base: str) -> Bot:
    """An aiogram Bot talking to `api_base` (Telegram's, or the sandbox's)."""
    session = AiohttpSession(api=TelegramAPIServer.from_base(api_base.rstrip("/")))
    return Bot(token=token, session=session)


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = MAX_MESSAGE) -> list[str]:
    """Split a text into parts within Telegram's limit, at paragraph, line or word breaks."""
    if _utf16_len(text) <= limit:
        return [text]
    parts: list[str] = []
    rest = text
    while _utf16_len(rest) > limit:
        window = rest[:limit]
        while _utf16_len(window) > limit:
            window = window[:-1]
        cut = max(window.rfind("\n\n"), window.rfind("\n"), window.rfind(" "))
        if cut < limit // 2:
            cut = len(window)
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        parts.append(rest)
    return [p for p in parts if p]


def _markup(buttons: tuple[tuple[str, str], ...]) -> InlineKeyboardMarkup | None:
    rows = [
        [InlineKeyboardButton(text=str(label)[:64], callback_data=str(data)[:64])]
        for label, data in buttons
    ]
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


class TelegramSender:
    """Delivers judged outbox rows to Telegram chats (the outbox's ChannelSender)."""

    def __init__(self, bot: Bot) -> None:
        self._bot = bot

    async def send(self, delivery: Delivery) -> SentReceipt:
        """Send one delivery; long texts in several messages, buttons on the last one."""
        parts = split_text(delivery.text)
        ids: list[str] = []
        try:
            for i, part in enumerate(parts):
                last = i == len(parts) - 1
                sent = await self._bot.send_message(
                    chat_id=int(delivery.external_id),
                    text=part,
                    reply_markup=_markup(delivery.buttons) if last else None,
                )
                ids.append(str(sent.message_id))
        except TelegramRetryAfter as exc:
            raise TransientSendError(
                f"telegram 429: {exc.message}", retry_after=exc.retry_after
            ) from exc
        except (TimeoutError, TelegramServerError, TelegramNetworkError, ClientDecodeError) as exc:
            # ClientDecodeError: a proxy's HTML error page (a 502 from nginx) instead of JSON.
            raise TransientSendError(f"telegram unavailable: {type(exc).__name__}: {exc}") from exc
        except (
            TelegramForbiddenError,
            TelegramBadRequest,
            TelegramNotFound,
            TelegramUnauthorizedError,
        ) as exc:
            raise PermanentSendError(f"telegram refused: {exc}") from exc
        return SentReceipt(message_id=",".join(ids))


def _chat_of(update: Update) -> object:
    """The chat an update belongs to (its lane: one chat's updates are handled in order)."""
    message = update.message or update.edited_message or update.channel_post
    if message is not None:
        return ("chat", message.chat.id)
    query = update.callback_query
    if query is not None:
        if query.message is not None:
            return ("chat", query.message.chat.id)
        return ("user", query.from_user.id)
    return ("update", update.update_id)


class TelegramPoller:
    """Long polling that confirms an update only after it was stored (or deliberately skipped)."""

    def __init__(
        self,
        *,
        bot: Bot,
        dispatcher: Dispatcher,
        timeout: int = 25,
        max_backoff: float = 30.0,
        parallel: int = 16,
    ) -> None:
        self._bot = bot
        #: How many chats of one getUpdates batch are handled at once.
        self._parallel = max(1, parallel)
        self._dp = dispatcher
        self._timeout = timeout
        self._max_backoff = max_backoff
        self._stop = asyncio.Event()
        self._offset: int | None = None
        self.processed = 0
        self.failures = 0

    def stop(self) -> None:
        """Ask the loop to stop after the update in hand (a parked long poll is cancelled)."""
        self._stop.set()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def _get_updates(self) -> list[Update]:
        request = GetUpdates(
            offset=self._offset,
            timeout=self._timeout,
            allowed_updates=self._dp.resolve_used_update_types(),
        )
        fetch = asyncio.ensure_future(self._bot(request, request_timeout=self._timeout + 10))
        stopping = asyncio.ensure_future(self._stop.wait())
        done, _ = await asyncio.wait({fetch, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if fetch not in done:
            fetch.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await fetch
            return []
        stopping.cancel()
        return list(fetch.result())

    async def run(self) -> None:
        """Poll until stopped. A batch is stored before the next offset is requested."""
        backoff = 1.0
        while not self._stop.is_set():
            try:
                updates = await self._get_updates()
                backoff = 1.0
            except TelegramRetryAfter as exc:
                await self._sleep(exc.retry_after)
                continue
            except (
                TimeoutError,
                TelegramNetworkError,
                TelegramServerError,
                ClientDecodeError,
            ) as exc:
                log.warning("getUpdates failed: %s; retrying in %.1fs", exc, backoff)
                await self._sleep(backoff + random.uniform(0, backoff / 2))
                backoff = min(backoff * 2, self._max_backoff)
                continue
            if not await self._handle_batch(updates):
                return

    async def _handle_batch(self, updates: list[Update]) -> bool:
        """Store a getUpdates batch: chats in parallel, each chat's updates in order.

        The offset then moves past the longest run of stored updates (in Telegram's order), so
        an update that was not stored is fetched again; those stored after it come back too
        and are recognised as redeliveries. False when asked to stop before all were stored.
        """
        lanes: dict[object, list[Update]] = {}
        for update in updates:
            lanes.setdefault(_chat_of(update), []).append(update)
        stored: set[int] = set()
        limit = asyncio.Semaphore(self._parallel)

        async def lane(items: list[Update]) -> None:
            async with limit:
                for update in items:
                    if not await self._handle(update):
                        return
                    stored.add(update.update_id)

        if len(lanes) == 1:
            await lane(updates)
        else:
            await asyncio.gather(*(lane(items) for items in lanes.values()))
        for update in updates:
            if update.update_id not in stored:
                return False
            self._offset = update.update_id + 1
        return True

    async def _handle(self, update: Update) -> bool:
        """Handle one update until it is stored; False when asked to stop before that."""
        backoff = 0.5
        while True:
            try:
                await self._dp.feed_update(self._bot, update)
                self.processed += 1
                return True
            except Exception as exc:  # anything unstored is retried, never dropped
                self.failures += 1
                log.error(
                    "update %s not stored (%s: %s); retrying in %.1fs",
                    update.update_id,
                    type(exc).__name__,
                    exc,
                    backoff,
                )
                if self._stop.is_set():
                    return False
                await self._sleep(backoff + random.uniform(0, backoff / 2))
                backoff = min(backoff * 2, self._max_backoff)


def register_webhook(
    app: web.Application, *, dispatcher: Dispatcher, bot: Bot, secret: str
) -> None:
    """Serve Telegram's webhook at WEBHOOK_PATH; a wrong secret gets 401 and a log line."""
    from aiogram.webhook.aiohttp_server import SimpleRequestHandler

    # handle_in_background=False: answer 200 only once the update is stored, so a failure is a
    # 500 and Telegram redelivers.
    handler = SimpleRequestHandler(
        dispatcher=dispatcher, bot=bot, handle_in_background=False, secret_token=secret
    )

    async def guarded(request: web.Request) -> web.StreamResponse:
        if request.content_length is not None and request.content_length > MAX_BODY:
            log.warning("telegram webhook: body of %s bytes refused", request.content_length)
            return web.Response(status=413, text="body too large")
        response = await handler.handle(request)
        if response.status == 401:
            log.warning(
                "telegram webhook: refused a request with a missing or wrong secret token from %s",
                request.remote,
            )
        return response

    app.router.add_post(WEBHOOK_PATH, guarded)
