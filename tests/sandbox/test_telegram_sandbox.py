"""The Telegram sandbox, driven by the real aiogram 3 client over HTTP (no in-process mocks).

Every wait is on a condition (the sandbox's asyncio.Condition or an awaited task); the only
clock-bound waits are the long-poll timeout test (1 s, by design) and a 0.2 s client timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import (
    BotCommand,
    CallbackQuery,
    ChatFullInfo,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from triage_sandbox.telegram import (
    DEFAULT_TOKEN,
    SandboxError,
    TelegramSandbox,
    parse_entities,
)

USER = 42
BOT_ID = int(DEFAULT_TOKEN.split(":")[0])


# ------------------------------------------------------------------------------- fixtures


@pytest.fixture
async def tg() -> AsyncIterator[TelegramSandbox]:
    async with TelegramSandbox(webhook_max_attempts=3, webhook_retry_delay=0.01) as sandbox:
        yield sandbox


class LoopbackSession(AiohttpSession):
    """aiogram's real HTTP session, minus the 250 ms pause its close() makes for TLS shutdown
    (there is no TLS on loopback; the pause alone would cost seconds across the suite)."""

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


def make_bot(tg: TelegramSandbox, *, token: str | None = None, timeout: float = 30) -> Bot:
    session = LoopbackSession(api=TelegramAPIServer.from_base(tg.api_base), timeout=timeout)
    return Bot(token or tg.token, session=session)


@pytest.fixture
async def bot(tg: TelegramSandbox) -> AsyncIterator[Bot]:
    client = make_bot(tg)
    yield client
    await client.session.close()


def menu_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(text="Yes", callback_data="yes"),
                InlineKeyboardButton(text="No", callback_data="no"),
            ]
        ]
    )


def build_router(seen: list[int] | None = None) -> Router:
    """A fresh echo router per test (a Router can be attached to one Dispatcher only)."""
    router = Router()

    @router.message(CommandStart(deep_link=True))
    async def start_with_link(message: Message, command: CommandObject) -> None:
        await message.answer(f"welcome via {command.args}")

    @router.message(CommandStart())
    async def start(message: Message) -> None:
        await message.answer("welcome")

    @router.message(Command("menu"))
    async def menu(message: Message) -> None:
        await message.answer("Pick one", reply_markup=menu_keyboard())

    @router.message(Command("reply"))
    async def webhook_reply(message: Message) -> Any:
        # Returned, not awaited: with handle_in_background=False aiogram answers the webhook
        # request with this call, and Telegram (the sandbox) carries it out.
        return message.answer("sent as a webhook reply")

    @router.message(F.contact)
    async def contact(message: Message) -> None:
        assert message.contact is not None and message.from_user is not None
        own = message.contact.user_id == message.from_user.id
        await message.answer(f"phone {message.contact.phone_number} own={own}")

    @router.message(F.text)
    async def echo(message: Message, event_update: Update) -> None:
        if seen is not None:
            seen.append(event_update.update_id)
        await message.answer(f"echo: {message.text}")

    @router.callback_query()
    async def pressed(query: CallbackQuery) -> None:
        await query.answer(f"got {query.data}")
        assert isinstance(query.message, Message)
        await query.message.edit_text(f"you chose {query.data}")

    return router


@contextlib.asynccontextmanager
async def polling(tg: TelegramSandbox, bot: Bot, router: Router) -> AsyncIterator[Dispatcher]:
    """aiogram's own long-polling loop against the sandbox, stopped cleanly afterwards."""
    dp = Dispatcher()
    dp.include_router(router)
    task = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=10))
    await tg.wait_until(lambda: tg.polling)
    try:
        yield dp
    finally:
        await dp.stop_polling()
        await task


@contextlib.asynccontextmanager
async def webhook_app(
    bot: Bot, router: Router, *, secret: str | None, in_background: bool = True
) -> AsyncIterator[str]:
    """The bot's webhook endpoint (aiogram SimpleRequestHandler) on 127.0.0.1:0; yields its URL."""
    dp = Dispatcher()
    dp.include_router(router)
    app = web.Application()
    SimpleRequestHandler(
        dispatcher=dp, bot=bot, secret_token=secret, handle_in_background=in_background
    ).register(app, path="/tg/webhook")
    runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/tg/webhook"
    finally:
        await runner.cleanup()


class ManualClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ---------------------------------------------------------------------------- Bot API basics


async def test_get_me_unknown_token_and_unknown_method(tg: TelegramSandbox, bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.is_bot, me.username) == (BOT_ID, True, "triage_sandbox_bot")

    stranger = make_bot(tg, token="999:WRONG")
    with pytest.raises(TelegramUnauthorizedError):
        await stranger.get_me()
    await stranger.session.close()

    async with aiohttp.ClientSession() as http:
        async with http.post(f"{tg.api_base}/bot{tg.token}/noSuchMethod") as resp:
            assert resp.status == 404
            assert await resp.json() == {
                "ok": False,
                "error_code": 404,
                "description": "Not Found",
            }
        async with http.get(f"{tg.api_base}/bot{tg.token}/GETME") as resp:  # case-insensitive
            assert (await resp.json())["result"]["id"] == BOT_ID


async def test_json_urlencoded_and_multipart_bodies(tg: TelegramSandbox, bot: Bot) -> None:
    await tg.push_text(user_id=USER, text="hi")
    url = f"{tg.api_base}/bot{tg.token}/sendMessage"
    markup = {"inline_keyboard": [[{"text": "Go", "callback_data": "go"}]]}
    async with aiohttp.ClientSession() as http:
        body = {"chat_id": USER, "text": "as json", "reply_markup": markup}
        async with http.post(url, json=body) as resp:
            assert (await resp.json())["result"]["reply_markup"] == markup
        form = {"chat_id": str(USER), "text": "as form", "reply_markup": json.dumps(markup)}
        async with http.post(url, data=form) as resp:
            assert (await resp.json())["result"]["reply_markup"] == markup
        multipart = aiohttp.FormData(quote_fields=False)
        multipart.add_field("chat_id", str(USER))
        multipart.add_field("text", "as multipart")
        multipart.add_field("document", b"%PDF", filename="x.pdf")  # forces multipart/form-data
        async with http.post(url, data=multipart) as resp:
            assert (await resp.json())["result"]["text"] == "as multipart"
    # What aiogram 3.31 itself sends: a form body, nested objects as JSON strings.
    await bot.send_message(USER, "via aiogram", reply_markup=menu_keyboard())
    params = tg.calls_to("sendMessage")[-1].params
    assert params["chat_id"] == str(USER)
    assert isinstance(params["reply_markup"], str)
    assert [m["text"] for m in tg.sent(USER)] == [
        "as json",
        "as form",
        "as multipart",
        "via aiogram",
    ]


# ------------------------------------------------------------------------- long polling mode


async def test_polling_echo_through_aiogram_dispatcher(tg: TelegramSandbox, bot: Bot) -> None:
    async with polling(tg, bot, build_router()):
        update = await tg.push_text(user_id=USER, text="hello", language_code="de")
        Update.model_validate(update)
        [reply] = await tg.wait_sent(chat_id=USER)
        # aiogram confirmed the update with its next getUpdates offset.
        await tg.wait_until(lambda: not tg.pending_updates)
    message = Message.model_validate(reply)
    assert message.text == "echo: hello"
    assert message.from_user is not None and message.from_user.id == BOT_ID
    assert message.chat.id == USER and message.chat.type == "private"
    assert update["message"]["from"]["language_code"] == "de"


async def test_deep_link_start_and_shared_contact(tg: TelegramSandbox, bot: Bot) -> None:
    async with polling(tg, bot, build_router()):
        start = await tg.push_start(user_id=USER, payload="ref-campaign_7", language_code="fr")
        assert start["message"]["text"] == "/start ref-campaign_7"
        assert start["message"]["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
        await tg.push_start(user_id=USER)
        own = await tg.push_contact(user_id=USER, phone_number="+4915112345678")
        await tg.push_contact(user_id=USER, phone_number="+33612345678", contact_user_id=0)
        replies = await tg.wait_sent(4, chat_id=USER)
    assert [r["text"] for r in replies] == [
        "welcome via ref-campaign_7",
        "welcome",
        "phone +4915112345678 own=True",
        "phone +33612345678 own=False",
    ]
    # A later push without language_code keeps what the user's client said before.
    assert own["message"]["from"]["language_code"] == "fr"
    assert Update.model_validate(own).message.contact.user_id == USER  # type: ignore[union-attr]
    with pytest.raises(SandboxError, match="deep-link payload"):
        await tg.push_start(user_id=USER, payload="has space")


async def test_inline_button_callback_is_answered_and_message_edited(
    tg: TelegramSandbox, bot: Bot
) -> None:
    async with polling(tg, bot, build_router()):
        await tg.push_text(user_id=USER, text="/menu")
        [menu] = await tg.wait_sent(chat_id=USER)
        assert [b["callback_data"] for b in menu["reply_markup"]["inline_keyboard"][0]] == [
            "yes",
            "no",
        ]
        seq = tg.events()[-1]["seq"]
        update = await tg.push_callback(user_id=USER, button_text="No")
        events = await tg.wait_events(2, after=seq, kinds={"answer_callback", "edit_text"})
    query = Update.model_validate(update).callback_query
    assert query is not None and query.data == "no"
    assert isinstance(query.message, Message) and query.message.message_id == menu["message_id"]
    assert {e["kind"] for e in events} == {"answer_callback", "edit_text"}
    assert tg.callback_answers == [
        {"callback_query_id": query.id, "text": "got no", "show_alert": False, "url": None}
    ]
    [edited] = tg.sent(USER)
    assert edited["text"] == "you chose no"
    assert "reply_markup" not in edited  # editing the text without a keyboard removes it
    assert edited["edit_date"] >= edited["date"]
    with pytest.raises(SandboxError, match="no message with inline buttons"):
        await tg.push_callback(user_id=USER, data="yes")


async def test_redelivered_update_keeps_its_id_and_ids_can_jump(
    tg: TelegramSandbox, bot: Bot
) -> None:
    seen: list[int] = []
    async with polling(tg, bot, build_router(seen)):
        first = await tg.push_text(user_id=USER, text="once")
        await tg.wait_sent(chat_id=USER)
        await tg.wait_until(lambda: not tg.pending_updates)  # confirmed by the bot
        again = await tg.redeliver(first["update_id"])
        await tg.wait_sent(chat_id=USER)
        tg.jump_update_ids(1000)
        later = await tg.push_text(user_id=USER, text="after a quiet week")
        await tg.wait_sent(chat_id=USER)
    assert again == first
    assert later["update_id"] == first["update_id"] + 1001
    assert seen == [first["update_id"], first["update_id"], later["update_id"]]


async def test_get_updates_offset_limit_allowed_updates_and_long_poll(
    tg: TelegramSandbox, bot: Bot
) -> None:
    ids = [(await tg.push_text(user_id=USER, text=f"m{i}"))["update_id"] for i in range(3)]
    assert [u.update_id for u in await bot.get_updates()] == ids  # unconfirmed: all three
    assert [u.update_id for u in await bot.get_updates(offset=ids[1])] == ids[1:]
    assert [u.update_id for u in await bot.get_updates(offset=-1)] == ids[2:]  # forgets the rest
    assert [u["update_id"] for u in tg.pending_updates] == ids[2:]
    assert [u.update_id for u in await bot.get_updates(limit=1)] == ids[2:]

    parked = asyncio.create_task(bot.get_updates(offset=ids[2] + 1, timeout=10))
    await tg.wait_until(lambda: tg.polling)
    pushed = await tg.push_text(user_id=USER, text="wakes the poll")
    assert [u.update_id for u in await parked] == [pushed["update_id"]]

    started = time.monotonic()
    assert await bot.get_updates(offset=pushed["update_id"] + 1, timeout=1) == []
    assert time.monotonic() - started >= 0.9  # the server held the empty poll for `timeout`

    await bot.get_updates(allowed_updates=["callback_query"])
    await tg.push_text(user_id=USER, text="not wanted")
    assert tg.pending_updates == [] and len(tg.filtered_updates) == 1
    await bot.get_updates(allowed_updates=[])  # back to the default set
    await tg.push_text(user_id=USER, text="wanted")
    assert len(tg.pending_updates) == 1


async def test_second_poller_and_webhook_get_409_conflict(tg: TelegramSandbox, bot: Bot) -> None:
    other = make_bot(tg)
    parked = asyncio.create_task(bot.get_updates(timeout=10))
    await tg.wait_until(lambda: tg.polling)
    assert await other.get_updates() == []  # the newer request wins ...
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates request"):
        await parked  # ... and the parked one is terminated, as Telegram does

    parked = asyncio.create_task(bot.get_updates(timeout=10))
    await tg.wait_until(lambda: tg.polling)
    assert await other.set_webhook("http://127.0.0.1:9/hook")
    with pytest.raises(TelegramConflictError, match="terminated by setWebhook request"):
        await parked
    with pytest.raises(TelegramConflictError, match="webhook is active"):
        await bot.get_updates()
    assert await bot.delete_webhook()
    assert await bot.get_updates() == []
    await other.session.close()


# ------------------------------------------------------------------------------ webhook mode


async def test_webhook_delivery_with_secret_token(tg: TelegramSandbox, bot: Bot) -> None:
    async with webhook_app(bot, build_router(), secret="s3cret") as url:
        assert await bot.set_webhook(url, secret_token="s3cret", allowed_updates=["message"])
        update = await tg.push_text(user_id=USER, text="via webhook")
        [reply] = await tg.wait_sent(chat_id=USER)
        info = await bot.get_webhook_info()
    assert reply["text"] == "echo: via webhook"
    [delivery] = tg.deliveries
    assert (delivery.update_id, delivery.status, delivery.attempt) == (update["update_id"], 200, 1)
    assert delivery.secret_token == "s3cret"
    assert (info.url, info.pending_update_count, info.allowed_updates) == (url, 0, ["message"])


async def test_webhook_reply_is_carried_out(tg: TelegramSandbox, bot: Bot) -> None:
    async with webhook_app(bot, build_router(), secret="s3cret", in_background=False) as url:
        await bot.set_webhook(url, secret_token="s3cret")
        await tg.push_text(user_id=USER, text="/reply")
        [reply] = await tg.wait_sent(chat_id=USER)
    assert reply["text"] == "sent as a webhook reply"
    assert tg.events()[-1]["via"] == "webhook_reply"
    assert tg.calls_to("sendMessage")[-1].via == "webhook_reply"


async def test_webhook_wrong_or_missing_secret_is_refused_and_retried(
    tg: TelegramSandbox, bot: Bot
) -> None:
    async with webhook_app(bot, build_router(), secret="s3cret") as url:
        await bot.set_webhook(url, secret_token="wrong")
        first = await tg.push_text(user_id=USER, text="forged?")
        await tg.wait_deliveries(3)
        await tg.wait_until(lambda: not tg.pending_updates)  # gave up after 3 attempts
        await bot.set_webhook(url)  # no secret at all
        second = await tg.push_text(user_id=USER, text="no secret")
        await tg.wait_deliveries(6)
        await tg.wait_until(lambda: not tg.pending_updates)
        info = await bot.get_webhook_info()
    assert [(d.update_id, d.attempt, d.status) for d in tg.deliveries] == [
        (first["update_id"], 1, 401),
        (first["update_id"], 2, 401),
        (first["update_id"], 3, 401),
        (second["update_id"], 1, 401),
        (second["update_id"], 2, 401),
        (second["update_id"], 3, 401),
    ]
    assert [d.secret_token for d in tg.deliveries] == ["wrong"] * 3 + [None] * 3
    assert tg.sent() == []  # the bot never saw the update
    assert info.last_error_message == "Wrong response from the webhook: 401 Unauthorized"


async def test_webhook_delivers_chats_in_parallel_and_each_chat_in_order(
    tg: TelegramSandbox, bot: Bot
) -> None:
    running: list[int] = []
    most = 0
    seen: dict[int, list[str]] = {}

    async def slow(request: web.Request) -> web.Response:
        nonlocal most
        update = await request.json()
        chat = update["message"]["chat"]["id"]
        assert chat not in running, "two updates of one chat were delivered at once"
        running.append(chat)
        most = max(most, len(running))
        await asyncio.sleep(0.03)
        seen.setdefault(chat, []).append(update["message"]["text"])
        running.remove(chat)
        return web.Response(text="{}", content_type="application/json")

    app = web.Application()
    app.router.add_post("/hook", slow)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        await bot.set_webhook(f"http://127.0.0.1:{runner.addresses[0][1]}/hook", max_connections=3)
        for i in range(4):
            for chat in (601, 602, 603, 604):
                await tg.push_text(user_id=chat, text=f"{chat}-{i}")
        await tg.wait_deliveries(16)
        await tg.wait_until(lambda: not tg.pending_updates)
    finally:
        await runner.cleanup()
    assert seen == {chat: [f"{chat}-{i}" for i in range(4)] for chat in (601, 602, 603, 604)}
    assert most == 3  # max_connections, as Telegram: never more at once


async def test_unreachable_webhook_is_recorded(tg: TelegramSandbox, bot: Bot) -> None:
    async with webhook_app(bot, build_router(), secret=None) as url:
        pass  # bound, then closed: nothing listens on that port any more
    await bot.set_webhook(url)
    await tg.push_text(user_id=USER, text="anyone?")
    deliveries = await tg.wait_deliveries(3)
    assert all(d.status is None and d.error and not d.ok for d in deliveries)


# ----------------------------------------------------------------- errors, limits, and faults


async def test_text_limits_formatting_and_bad_requests(tg: TelegramSandbox, bot: Bot) -> None:
    await tg.push_text(user_id=USER, text="hi")
    assert (await bot.send_message(USER, "x" * 4096)).text == "x" * 4096
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(USER, "x" * 4097)
    await bot.send_message(USER, "😀" * 2048)  # 4096 UTF-16 code units
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(USER, "😀" * 2049)
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(USER, "   ")

    html = await bot.send_message(
        USER, "<b>Hi</b> &lt;3 <a href='https://x.org'>x</a>", parse_mode="HTML"
    )
    assert html.text == "Hi <3 x"
    assert [(e.type, e.offset, e.length) for e in html.entities or []] == [
        ("bold", 0, 2),
        ("text_link", 6, 1),
    ]
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(USER, "client wrote: 1 < 2 > 0", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="Character '.' is reserved"):
        await bot.send_message(USER, "Done.", parse_mode="MarkdownV2")
    md = await bot.send_message(USER, "*Done*\\.", parse_mode="MarkdownV2")
    assert md.text == "Done." and md.entities and md.entities[0].type == "bold"

    too_long_data = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="x", callback_data="d" * 65)]]
    )
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(USER, "buttons", reply_markup=too_long_data)
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(777, "who?")
    await tg.block_bot(USER)
    with pytest.raises(TelegramForbiddenError, match="blocked"):
        await bot.send_message(USER, "still there?")


def test_entity_offsets_are_utf16_code_units() -> None:
    text, entities = parse_entities("😀 <b>bold</b>", "HTML")
    assert text == "😀 bold"
    assert entities == [{"type": "bold", "offset": 3, "length": 4}]
    text, entities = parse_entities("[site](https://x.org/a\\)b) `c\\`d`", "MarkdownV2")
    assert text == "site c`d"
    assert entities == [
        {"type": "text_link", "offset": 0, "length": 4, "url": "https://x.org/a)b"},
        {"type": "code", "offset": 5, "length": 3},
    ]


async def test_injected_faults_reach_aiogram_as_its_exceptions(
    tg: TelegramSandbox, bot: Bot
) -> None:
    await tg.push_text(user_id=USER, text="hi")
    tg.fail_next("sendMessage", status=429, retry_after=2)
    with pytest.raises(TelegramRetryAfter) as retry:
        await bot.send_message(USER, "one")
    assert retry.value.retry_after == 2
    assert (await bot.send_message(USER, "one")).text == "one"  # a fault fires once

    tg.fail_next("sendMessage", status=500, times=2)
    for _ in range(2):
        with pytest.raises(TelegramServerError):
            await bot.send_message(USER, "two")
    tg.fail_next("sendMessage", status=502, raw_body="<html>502 Bad Gateway</html>")
    with pytest.raises(ClientDecodeError):  # nginx's HTML page is not JSON: not a server error
        await bot.send_message(USER, "three")
    tg.fail_next("getMe", disconnect=True)
    with pytest.raises(TelegramNetworkError):
        await bot.get_me()
    assert [m["text"] for m in tg.sent(USER)] == ["one"]
    assert [c.status for c in tg.calls_to("sendMessage")] == [429, 200, 500, 500, 502]


async def test_delayed_answer_still_takes_effect_after_client_timeout(
    tg: TelegramSandbox,
) -> None:
    impatient = make_bot(tg, timeout=0.2)
    await tg.push_text(user_id=USER, text="hi")
    tg.delay_next("sendMessage", 0.5)
    with pytest.raises(TelegramNetworkError, match="timeout"):
        await impatient.send_message(USER, "lost answer")
    # The client saw a timeout, yet the message was sent: the ambiguity a sender must handle.
    await tg.wait_until(lambda: len(tg.sent(USER)) == 1)
    await impatient.session.close()


async def test_rate_limits_answer_429_with_retry_after() -> None:
    clock = ManualClock()
    async with TelegramSandbox(clock=clock) as tg:
        bot = make_bot(tg)
        for user_id in range(1, 32):
            await tg.push_text(user_id=user_id, text="hi")
        tg.enforce_rate_limits()
        await bot.send_message(1, "first")
        with pytest.raises(TelegramRetryAfter) as retry:
            await bot.send_message(1, "too soon for this chat")
        assert retry.value.retry_after == 1
        clock.now += 1.0
        await bot.send_message(1, "a second later")

        clock.now += 5.0
        for user_id in range(2, 32):  # 30 chats in the same second: the overall limit
            await bot.send_message(user_id, "burst")
        with pytest.raises(TelegramRetryAfter):
            await bot.send_message(1, "the 31st this second")
        clock.now += 1.0
        await bot.send_message(1, "next second")
        tg.enforce_rate_limits(False)
        await bot.send_message(1, "no limits now")
        await bot.send_message(1, "none at all")
        assert len(tg.sent()) == 35
        await bot.session.close()


# ------------------------------------------------------------------------ the other methods


async def test_edit_delete_commands_chat_actions_keyboards_and_get_chat(
    tg: TelegramSandbox, bot: Bot
) -> None:
    await tg.push_text(user_id=USER, text="hi", first_name="Ana", username="ana_k")
    sent = await bot.send_message(USER, "Pick", reply_markup=menu_keyboard())
    edited = await bot.edit_message_reply_markup(chat_id=USER, message_id=sent.message_id)
    assert isinstance(edited, Message) and edited.reply_markup is None
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_reply_markup(chat_id=USER, message_id=sent.message_id)
    with pytest.raises(TelegramBadRequest, match="message can't be edited"):
        await bot.edit_message_text("x", chat_id=USER, message_id=1)  # the client's message
    assert await bot.delete_message(USER, sent.message_id)
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("gone", chat_id=USER, message_id=sent.message_id)
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(USER, sent.message_id)

    assert await bot.send_chat_action(USER, "typing")
    commands = [
        BotCommand(command="start", description="Begin"),
        BotCommand(command="help", description="Help"),
    ]
    assert await bot.set_my_commands(commands, language_code="de")
    got = await bot.get_my_commands(language_code="de")
    assert [(c.command, c.description) for c in got] == [("start", "Begin"), ("help", "Help")]
    assert tg.commands(language_code="de")[0] == {"command": "start", "description": "Begin"}
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Bad Cmd", description="x")])

    share = ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text="Share my number", request_contact=True)]],
        resize_keyboard=True,
    )
    plain = await bot.send_message(USER, "Your number?", reply_markup=share)
    assert plain.reply_markup is None  # Telegram echoes inline keyboards only
    keyboard = tg.reply_keyboard(USER)
    assert keyboard is not None and keyboard["keyboard"][0][0]["request_contact"] is True
    await bot.send_message(USER, "Thanks", reply_markup=ReplyKeyboardRemove())
    assert tg.reply_keyboard(USER) is None

    chat = await bot.get_chat(USER)
    assert isinstance(chat, ChatFullInfo)
    assert (chat.id, chat.type, chat.first_name, chat.username) == (
        USER,
        "private",
        "Ana",
        "ana_k",
    )
    assert [e["kind"] for e in tg.events()] == [
        "send",
        "edit_reply_markup",
        "delete",
        "chat_action",
        "send",
        "send",
    ]


async def test_raw_and_group_updates_validate_in_aiogram(tg: TelegramSandbox, bot: Bot) -> None:
    base = await tg.push_text(user_id=USER, text="original")
    edited = dict(base["message"], text="edited", edit_date=base["message"]["date"] + 5)
    await tg.push_update({"edited_message": edited})
    sticker = {
        "message_id": 99,
        "from": base["message"]["from"],
        "chat": base["message"]["chat"],
        "date": base["message"]["date"],
        "sticker": {
            "file_id": "F",
            "file_unique_id": "U",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
        },
        "a_field_from_the_future": {"x": 1},
    }
    await tg.push_update({"message": sticker})
    group = await tg.push_text(user_id=USER, text="/help@triage_sandbox_bot", chat_id=-100123)
    updates = await bot.get_updates()
    assert [u.event_type for u in updates] == ["message", "edited_message", "message", "message"]
    assert updates[2].message is not None and updates[2].message.sticker is not None
    assert group["message"]["chat"]["type"] == "supergroup"
    assert group["message"]["entities"][0]["length"] == len("/help@triage_sandbox_bot")
    assert (await bot.send_message(-100123, "hello group")).chat.id == -100123

    forged = {"id": "forged-1", "from": base["message"]["from"], "chat_instance": "1", "data": "x"}
    await tg.push_update({"callback_query": forged})
    assert await bot.answer_callback_query("forged-1")
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query("forged-1")  # a query is answered once


# ---------------------------------------------------------------- control API and lifecycle


async def test_http_control_api(tg: TelegramSandbox, bot: Bot) -> None:
    control = tg.control_base
    async with aiohttp.ClientSession() as http:

        async def post(path: str, body: dict[str, Any]) -> tuple[int, Any]:
            async with http.post(f"{control}/{path}", json=body) as resp:
                return resp.status, await resp.json()

        async def get(path: str) -> Any:
            async with http.get(f"{control}/{path}") as resp:
                assert resp.status == 200
                return (await resp.json())["result"]

        status, pushed = await post(
            "text", {"user_id": 7, "text": "bonjour", "language_code": "fr"}
        )
        assert status == 200 and pushed["ok"]
        [update] = await bot.get_updates()
        assert update.message is not None and update.message.text == "bonjour"

        sent = await bot.send_message(7, "Choose", reply_markup=menu_keyboard())
        status, waited = await post("wait_sent", {"chat_id": 7, "timeout": 5})
        assert waited["result"][0]["message_id"] == sent.message_id

        watcher = asyncio.create_task(get("events?chat_id=7&after=1&timeout=5"))
        await bot.edit_message_text("Choose again", chat_id=7, message_id=sent.message_id)
        assert [e["kind"] for e in await watcher] == ["edit_text"]

        status, body = await post("callback", {"user_id": 7, "data": "yes"})
        assert status == 400 and "no message with inline buttons" in body["description"]
        await bot.edit_message_reply_markup(
            chat_id=7, message_id=sent.message_id, reply_markup=menu_keyboard()
        )
        status, body = await post("callback", {"user_id": 7, "data": "yes"})
        assert status == 200 and body["result"]["callback_query"]["data"] == "yes"

        status, _ = await post(
            "faults", {"method": "sendMessage", "status": 429, "retry_after": 3}
        )
        with pytest.raises(TelegramRetryAfter):
            await bot.send_message(7, "x")
        status, body = await post("redeliver", {"update_id": update.update_id})
        assert body["result"]["update_id"] == update.update_id
        status, body = await post("text", {"user_id": 7})
        assert status == 400 and "text" in body["description"]
        status, body = await post("text", {"user_id": 7, "text": "x", "colour": "red"})
        assert status == 400 and "colour" in body["description"]
        status, body = await post("wait_sent", {"chat_id": 7, "timeout": 0.05})
        assert status == 408

        transcript = await get("messages?chat_id=7")
        assert [m["text"] for m in transcript] == ["bonjour", "Choose again"]  # 429: not sent
        state = await get("")
        assert state["api_base"] == tg.api_base and state["pending_update_count"] == 3
        assert [c["status"] for c in await get("calls?method=sendMessage")] == [200, 429]


async def test_stop_wakes_a_parked_long_poll_fast() -> None:
    tg = await TelegramSandbox().start()
    bot = make_bot(tg)
    parked = asyncio.create_task(bot.get_updates(timeout=30))
    await tg.wait_until(lambda: tg.polling)
    started = time.monotonic()
    await tg.stop()
    assert time.monotonic() - started < 1.0
    assert await parked == []
    await bot.session.close()


async def test_standalone_process_prints_api_base_and_stops_on_sigterm() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "triage_sandbox.telegram",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        api_base = (await asyncio.wait_for(proc.stdout.readline(), 15)).decode().strip()
        assert api_base.startswith("http://127.0.0.1:")
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{api_base}/bot{DEFAULT_TOKEN}/getMe") as resp:
                assert (await resp.json())["result"]["is_bot"] is True
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
