"""Composition root: builds the objects of the product from settings, and runs them.

Nothing else reads the environment. `TriageApp` is the production process (`triage run`): the
Telegram adapter (long polling or webhook), Slack when configured, the outbox dispatcher on an
APScheduler job, and an HTTP server with `/healthz`, `/metrics`, the Telegram webhook and
`/slack/events`. The demo and the integration tests build the same object against the sandbox
servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web
from sqlalchemy import text

from triage.domain.profile import CompanyProfile
from triage.flows.engine import Engine
from triage.flows.spec import FlowSpec
from triage.geodata import load_gazetteer
from triage.observability import Metrics
from triage.settings import Settings, load_flow, load_profile

if TYPE_CHECKING:  # imported where used: `triage check` and the CLI start without them
    from triage.channels.slack import SlackChannel
    from triage.channels.telegram import InboundEvent, TelegramPoller, TelegramSender
    from triage.outbox.dispatcher import DispatcherConfig
    from triage.outbox.senders import ChannelSender

log = logging.getLogger("triage.app")


def build_engine(profile: CompanyProfile, flow: FlowSpec | None = None) -> Engine:
    """An engine for one company profile, with the shipped flow and the real gazetteer."""
    return Engine(flow or load_flow(), profile, load_gazetteer())


def engine_from_settings(settings: Settings) -> Engine:
    """The engine the settings describe."""
    profile = load_profile(Path(settings.company_profile))
    return build_engine(profile, load_flow(settings.flows_dir))


@dataclass
class RunState:
    """What the running process has done, for /healthz and the logs."""

    started_at: datetime
    stored_updates: int = 0
    duplicate_updates: int = 0


class TriageApp:
    """The whole product in one process, built from settings."""

    def __init__(
        self,
        settings: Settings,
        *,
        engine: Engine | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], datetime] | None = None,
        dispatcher_config: DispatcherConfig | None = None,
    ) -> None:
        from triage.channels.telegram import build_bot, build_dispatcher
        from triage.outbox.dispatcher import Dispatcher, DispatcherConfig
        from triage.outbox.scheduler import OutboxScheduler
        from triage.service.client_events import ConversationStore
        from triage.store.db import make_engine, make_sessionmaker

        self.settings = settings
        self.engine = engine or engine_from_settings(settings)
        self.metrics = metrics or Metrics()
        self.db = make_engine(settings.database_url)
        self.sessions = make_sessionmaker(self.db)
        from triage.outbox.followups import load_followups

        self._clock = clock
        self.slack = self._build_slack()
        store_kwargs: dict[str, Any] = {} if clock is None else {"clock": clock}
        self.store = ConversationStore(
            self.sessions,
            followups=load_followups(Path(settings.flows_dir) / "followups.yaml"),
            # Staff cards in Slack are outbox rows written in the turn's own transaction.
            staff=self.slack.staff if self.slack is not None else None,
            **store_kwargs,
        )
        self.bot = build_bot(settings.telegram_token, settings.telegram_api_base)
        self.telegram = build_dispatcher(self._on_telegram_event)
        senders: dict[str, ChannelSender] = {"telegram": self._telegram_sender()}
        if self.slack is not None:
            senders["slack"] = self.slack.sender
        self.dispatcher = Dispatcher(
            self.sessions,
            senders=senders,
            profile=self.engine.profile,
            config=dispatcher_config
            or DispatcherConfig(lease_seconds=settings.outbox_lease_seconds),
            name=settings.worker_id or None,
            metrics=self.metrics,
            # A blocked sales reply gets a notice in its Slack thread, committed with the verdict.
            verdicts=self.slack.staff if self.slack is not None else None,
        )
        # Housekeeping apart from the outbox's own scheduler (which runs only the drain).
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        self.housekeeping = AsyncIOScheduler(timezone=UTC)
        self.outbox = OutboxScheduler(
            self.dispatcher, interval_seconds=settings.outbox_interval_seconds
        )
        self.state = RunState(started_at=datetime.now(UTC))
        self._poller: TelegramPoller | None = None
        self._poll_task: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    # --- parts ----------------------------------------------------------------------------

    def _telegram_sender(self) -> TelegramSender:
        from triage.channels.telegram import TelegramSender

        return TelegramSender(self.bot)

    def _build_slack(self) -> SlackChannel | None:
        if not self.settings.slack_enabled:
            return None
        from triage.channels.slack import SlackChannel
        from triage.store.models import utcnow

        return SlackChannel(
            settings=self.settings,
            sessions=self.sessions,
            engine=self.engine,
            metrics=self.metrics,
            clock=self._clock or utcnow,
            # Bound now, called later: the outbox scheduler is built after the channel.
            on_queued=self.kick_outbox,
        )

    async def _on_telegram_event(self, inbound: InboundEvent) -> None:
        """Store one Telegram event (exactly once), then let the outbox send the replies."""
        result = await self.store.handle(
            source="telegram",
            update_key=inbound.update_key,
            channel="telegram",
            external_id=str(inbound.chat_id),
            event=inbound.event,
            engine=self.engine,
        )
        if result is None:
            self.state.duplicate_updates += 1
            self.metrics.duplicates.inc()
            log.info("duplicate update ignored", extra={"update": inbound.update_key})
            return
        self.state.stored_updates += 1
        self.metrics.turns.inc()
        for de in result.turn.decisions:
            self.metrics.decisions.labels(de.decision.outcome.value, "bot").inc()
        log.info(
            "turn stored",
            extra={
                "client_id": result.client_id,
                "update": inbound.update_key,
                "version": result.version,
                "outbox": len(result.outbox_ids),
            },
        )
        self.kick_outbox()

    def kick_outbox(self) -> None:
        """Drain now rather than at the next tick (a reply should not wait a second)."""
        self.outbox.request_drain()

    async def drain_now(self) -> int:
        """Drain the outbox once, here and now (the demo, tests); how many rows were claimed."""
        report = await self.dispatcher.drain()
        return report.claimed

    async def outbox_status(self, outbox_id: int) -> str:
        """The status of one outbox row (and the gate's reason when it did not go out)."""
        from triage.store.models import Outbox, OutboxStatus

        async with self.sessions() as session:
            row = await session.get(Outbox, outbox_id)
        if row is None:
            return "unknown"
        if row.status in (OutboxStatus.BLOCKED, OutboxStatus.HELD) and row.verdict_reason:
            return f"{row.status} ({row.verdict_reason})"
        return row.status

    def web_app(self) -> web.Application:
        """The HTTP server's routes: health, metrics, webhooks."""
        from triage.channels.telegram import MAX_BODY, register_webhook

        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        if self.settings.telegram_mode == "webhook":
            register_webhook(
                app,
                dispatcher=self.telegram,
                bot=self.bot,
                secret=self.settings.telegram_webhook_secret,
            )
        if self.slack is not None:
            self.slack.register(app)
        return app

    async def _healthz(self, _request: web.Request) -> web.Response:
        try:
            async with self.db.connect() as conn:
                await asyncio.wait_for(conn.execute(text("SELECT 1")), 5)
            db = "ok"
        except Exception as exc:
            db = f"unavailable: {type(exc).__name__}"
        body = {
            "status": "ok" if db == "ok" else "degraded",
            "database": db,
            "telegram_mode": self.settings.telegram_mode,
            "slack": self.slack is not None,
            "outbox": "running" if self.outbox.running else "stopped",
            "stored_updates": self.state.stored_updates,
        }
        return web.json_response(body, status=200 if db == "ok" else 503)

    async def _metrics(self, _request: web.Request) -> web.Response:
        await self.refresh_gauges()
        return web.Response(body=self.metrics.render(), content_type="text/plain")

    async def refresh_gauges(self) -> None:
        """Outbox lag, dead rows and open escalations, read from the database."""
        from triage.store.metrics import read_gauges

        with contextlib.suppress(Exception):
            g = await read_gauges(self.sessions, now=datetime.now(UTC))
            self.metrics.outbox_lag.set(g.outbox_lag_seconds)
            self.metrics.outbox_dead.set(g.dead_rows)
            self.metrics.open_escalations.set(g.open_escalations)
            self.metrics.oldest_escalation.set(g.oldest_escalation_seconds)

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Migrate, serve HTTP, start the outbox and the Telegram intake."""
        from triage.channels.telegram import WEBHOOK_PATH, TelegramPoller
        from triage.store.db import upgrade_async

        await upgrade_async(self.settings.database_url)
        # Conversations saved before their facts were stored with them (migration 0006).
        filled = await self.store.fill_missing_facts(self.engine)
        if filled:
            log.info("recipient facts filled in", extra={"conversations": filled})
        self._runner = web.AppRunner(self.web_app(), shutdown_timeout=2.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.http_host, self.settings.http_port)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.settings.http_port
        self.outbox.start()
        if self.slack is not None:
            await self.slack.start()
            # One reminder per overdue case, however many workers run this job.
            self.housekeeping.add_job(
                self.slack.remind_overdue_cases,
                "interval",
                minutes=5,
                id="slack-case-sla",
                replace_existing=True,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
                next_run_time=datetime.now(UTC),
            )
        self.housekeeping.start()
        if self.settings.telegram_mode == "polling":
            # getUpdates and a webhook exclude each other: polling removes the webhook.
            await self.bot.delete_webhook(drop_pending_updates=False)
            self._poller = TelegramPoller(bot=self.bot, dispatcher=self.telegram)
            self._poll_task = asyncio.create_task(self._poller.run(), name="telegram-polling")
        elif self.settings.telegram_webhook_url:
            url = self.settings.telegram_webhook_url.rstrip("/")
            if not url.endswith(WEBHOOK_PATH):
                url += WEBHOOK_PATH
            await self.bot.set_webhook(
                url,
                secret_token=self.settings.telegram_webhook_secret,
                allowed_updates=self.telegram.resolve_used_update_types(),
            )
        log.info(
            "triage running",
            extra={
                "port": self.port,
                "mode": self.settings.telegram_mode,
                "worker": self.dispatcher.name,
            },
        )

    async def stop(self) -> None:
        """Stop taking updates, finish the update and the drain in hand, close everything."""
        if self._poller is not None:
            self._poller.stop()
        if self._poll_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._poll_task, 30)
        if self._runner is not None:
            await self._runner.cleanup()
        await self.outbox.shutdown()
        if self.housekeeping.running:
            self.housekeeping.shutdown(wait=False)
        if self.slack is not None:
            await self.slack.stop()
        await self.bot.session.close()
        await self.db.dispose()
        log.info("triage stopped")


async def run_until_signalled(settings: Settings) -> None:
    """`triage run`: start, wait for SIGTERM or SIGINT, stop cleanly."""
    import signal

    app = TriageApp(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await app.start()
    try:
        await stop.wait()
    finally:
        await app.stop()
