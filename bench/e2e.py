"""Item 2: end to end over HTTP: a client's message into the Telegram sandbox, the bot's reply out.

The subject is the real `TriageApp` (aiogram adapter, ConversationStore on SQLite, the outbox
dispatcher on its APScheduler job, TelegramSender) against `TelegramSandbox`, by long polling
and by webhook. `clients` clients talk at once, each playing a script of `E2E_CONVERSATIONS`
(the intake, then /help): a step is timed from the push of the client's message to the moment
the sandbox has received every reply the engine gives to it (1 or 2 messages).

The baseline is a bare aiogram echo bot (`baseline.EchoBot`) on the same sandbox, the same
clients and the same closed loop (one reply per message), measured in the same process.

The app runs with the product's settings except the outbox rate limiter, which is off: the
sandbox does not enforce Telegram's limits and the echo bot does not pace either, so with it on
the comparison would measure the 1 message/s per chat pacing (a second reply to /start waits a
second), not the stack. One extra run with the product's default pacing is reported as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from bench.baseline import EchoBot
from bench.common import (
    E2E_CONVERSATIONS,
    Config,
    closed_loop,
    database,
    example_engine,
    latency_summary,
    median_of,
    ratio,
    replies_per_turn,
    summarize_runs,
)
from bench.profiling import maybe_profile

_users = itertools.count(700_000_000)


class KickCounter(logging.Handler):
    """Counts APScheduler's "skipped: maximum number of running instances reached": a kick of
    the outbox (`TriageApp.kick_outbox`) that met a running drain and was dropped; the rows it
    was for wait for the next interval."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.dropped = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "maximum number of running instances" in record.getMessage():
            self.dropped += 1


@contextlib.contextmanager
def counting_dropped_kicks() -> Iterator[KickCounter]:
    """Attach a KickCounter to APScheduler's logger (without printing its warnings)."""
    logger = logging.getLogger("apscheduler.scheduler")
    counter = KickCounter()
    level, propagate = logger.level, logger.propagate
    logger.addHandler(counter)
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    try:
        yield counter
    finally:
        logger.removeHandler(counter)
        logger.setLevel(level)
        logger.propagate = propagate


def timed_sandbox() -> Any:
    """A TelegramSandbox that stamps each sendMessage and wakes whoever waits for that chat."""
    from triage_sandbox.telegram import TelegramSandbox

    class TimedSandbox(TelegramSandbox):
        def __init__(self) -> None:
            super().__init__()
            self.replies: dict[int, int] = defaultdict(int)
            self._waiting: dict[int, tuple[int, asyncio.Future[float]]] = {}

        async def _send_message(self, p: Any) -> dict[str, Any]:
            message = await super()._send_message(p)
            chat = int(message["chat"]["id"])
            self.replies[chat] += 1
            waiting = self._waiting.get(chat)
            if waiting is not None and self.replies[chat] >= waiting[0]:
                if not waiting[1].done():
                    waiting[1].set_result(time.perf_counter())
            return message

        async def wait_replies(self, chat: int, total: int, timeout: float) -> None:
            if self.replies[chat] >= total:
                return
            future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
            self._waiting[chat] = (total, future)
            try:
                await asyncio.wait_for(future, timeout)
            finally:
                self._waiting.pop(chat, None)

    return TimedSandbox()


async def _drive(
    tg: Any, clients: int, scripts: list[tuple[str, ...]], replies: list[list[int]]
) -> Any:
    """N clients, each message after the previous one's replies arrived."""
    users = {i: next(_users) for i in range(clients)}
    expected: dict[int, int] = defaultdict(int)

    def steps(i: int) -> list[tuple[str, int]]:
        s = i % len(scripts)
        return list(zip(scripts[s], replies[s], strict=True))

    async def step(i: int, _j: int, item: tuple[str, int]) -> None:
        text, n = item
        user = users[i]
        expected[user] += n
        await tg.push_text(user_id=user, text=text, language_code="en")
        await tg.wait_replies(user, expected[user], timeout=30.0)

    return await closed_loop(clients, steps, step)


async def echo_run(mode: str, clients: int) -> dict[str, Any]:
    """The echo bot: messages per second (one reply each) and latency."""
    tg = timed_sandbox()
    await tg.start()
    bot = EchoBot(token=tg.token, api_base=tg.api_base, mode=mode)
    try:
        await bot.start()
        scripts = list(E2E_CONVERSATIONS)
        ones = [[1] * len(s) for s in scripts]
        await _drive(tg, 2, scripts, ones)  # warm-up
        loop = await _drive(tg, clients, scripts, ones)
    finally:
        await bot.stop()
        await tg.stop()
    return {
        "updates_per_s": round(loop.per_second, 1),
        **latency_summary(loop.latencies),
        "errors": loop.errors,
    }


async def app_run(
    cfg: Config,
    mode: str,
    clients: int,
    engine: Any,
    *,
    rate_limit: bool = False,
    profile_name: str | None = None,
) -> dict[str, Any]:
    """The real TriageApp: turns per second (message in, every reply out) and latency."""
    from triage.app import TriageApp
    from triage.channels.telegram import WEBHOOK_PATH
    from triage.outbox.dispatcher import DispatcherConfig
    from triage.settings import Settings

    scripts = list(E2E_CONVERSATIONS)
    replies = [replies_per_turn(engine, s) for s in scripts]
    tg = timed_sandbox()
    await tg.start()
    try:
        async with database(cfg, "sqlite", f"e2e-{mode}") as url:
            secret = "bench-webhook-secret"
            settings = Settings(  # type: ignore[call-arg]
                _env_file=None,
                telegram_token=tg.token,
                telegram_api_base=tg.api_base,
                database_url=url,
                http_port=0,
                telegram_mode=mode,
                telegram_webhook_secret=secret,
            )
            app = TriageApp(
                settings,
                engine=engine,
                dispatcher_config=DispatcherConfig(rate_limit=rate_limit),
            )
            await app.start()
            try:
                if mode == "webhook":
                    await app.bot.set_webhook(
                        f"http://127.0.0.1:{app.port}{WEBHOOK_PATH}", secret_token=secret
                    )
                await _drive(tg, 2, scripts, replies)  # warm-up
                with (
                    maybe_profile(profile_name is not None, profile_name or "", mode),
                    counting_dropped_kicks() as kicks,
                ):
                    loop = await _drive(tg, clients, scripts, replies)
            finally:
                await app.stop()
    finally:
        await tg.stop()
    return {
        "turns_per_s": round(loop.per_second, 1),
        **latency_summary(loop.latencies),
        "errors": loop.errors,
        "outbox_kicks_dropped": kicks.dropped,
        "outbox_drain_runs": app.outbox.runs,
    }


async def run(cfg: Config, *, profile: bool = False) -> dict[str, Any]:
    """Interleaved rounds: echo and app, polling and webhook; then one run with pacing on."""
    engine = example_engine()
    runs: dict[str, list[dict[str, Any]]] = {
        "echo_polling": [],
        "echo_webhook": [],
        "polling": [],
        "webhook": [],
    }
    for r in range(cfg.repeats):
        for mode in ("polling", "webhook"):
            runs[f"echo_{mode}"].append(await echo_run(mode, cfg.e2e_clients))
            prof = f"e2e_{mode}" if profile and r == 0 else None
            runs[mode].append(await app_run(cfg, mode, cfg.e2e_clients, engine, profile_name=prof))
    out: dict[str, Any] = {"clients": cfg.e2e_clients, "repeats": cfg.repeats}
    for name in ("polling", "webhook"):
        out[name] = summarize_runs(runs[name], ("turns_per_s", "p50_ms", "p99_ms"))
        out[name]["errors"] = sum(x["errors"] for x in runs[name])
        out[name]["outbox_kicks_dropped"] = [x["outbox_kicks_dropped"] for x in runs[name]]
        echo = summarize_runs(runs[f"echo_{name}"], ("updates_per_s", "p50_ms", "p99_ms"))
        out[f"baseline_echo_{name}"] = echo
        per_round = [
            a["turns_per_s"] / b["updates_per_s"]
            for a, b in zip(runs[name], runs[f"echo_{name}"], strict=True)
        ]
        # The median of the rounds' ratios (each round: echo bot, then app, back to back).
        out[f"ratio_{name}"] = round(median_of(per_round), 4)
        out[f"ratio_{name}_per_round"] = [round(x, 4) for x in per_round]
        out[f"ratio_{name}_of_medians"] = ratio(out[name]["turns_per_s"], echo["updates_per_s"])
    out["baseline_echo"] = {
        "updates_per_s": out["baseline_echo_polling"]["updates_per_s"],
        "note": "echo bot by long polling; the webhook echo is baseline_echo_webhook",
    }
    if not cfg.quick:
        out["polling_default_pacing"] = await app_run(
            cfg, "polling", cfg.e2e_clients, engine, rate_limit=True
        )
    return out
