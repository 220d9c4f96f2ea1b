"""Item 5: Slack acknowledgements: concurrent signed button clicks on case cards, ack latency.

What is measured is the product's Slack adapter (`triage.channels.slack.SlackChannel`), not a
stand-in: its Bolt app (signature and timestamp check, `process_before_response=True`) on an
aiohttp server on 127.0.0.1, the real slack_sdk client against `SlackSandbox`, the store on
SQLite. Escalated clients are made by real conversations (answers the rules cannot settle);
the dispatcher posts their case cards to the sandbox. Then `clicks` signed `block_actions`
requests (made with `triage_sandbox.slack_signing`) are sent at once:

- officers clicking a case button: Bolt acks, the listener checks the case (a read) and opens
  the reason modal (`views.open` on the sandbox) before the HTTP response is written;
- someone who is not an officer clicking: the refusal goes into the client's audit chain (a
  write transaction) and an ephemeral message, then the response.

Slack wants every ack within 3 s. The latency is the HTTP request's, from send to response.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from itertools import count
from typing import Any

from bench.common import Config, database, example_engine, latency_summary, spread

SECRET = "bench-signing-secret"
SALES = "C0SALES"
COMPLIANCE = "C0COMPLY"
OFFICERS = ("U0OFFICER1", "U0OFFICER2")
INTRUDER = "U0INTRUDE"
UNDECIDED = (
    "/start",
    "I found you by searching on Google",
    "don't know",
    "no idea",
    "I want custody of my bitcoin",
)
_updates = count(1)


async def run(cfg: Config, *, profile: bool = False) -> dict[str, Any]:
    """The clicks on SQLite and on PostgreSQL; the headline is the worst p99."""
    import logging

    from bench.common import postgres_base

    # Each refused click is a warning of the product's; hundreds of them would bury the table.
    for name in ("triage.officer", "triage.slack", "triage.slack.bolt"):
        logging.getLogger(name).setLevel(logging.ERROR)
    out: dict[str, Any] = {"clicks": cfg.slack_clicks, "adapter": "triage.channels.slack"}
    backends = ["sqlite"] + (["postgres"] if postgres_base(cfg) else [])
    for backend in backends:
        out[backend] = await run_on(cfg, backend)
    out["slack_ack_p99_ms"] = max(out[b]["slack_ack_p99_ms"] for b in backends)
    out["limit_ms"] = 3000
    return out


async def run_on(cfg: Config, backend: str) -> dict[str, Any]:
    """Case cards for a few escalated clients, then rounds of concurrent clicks."""
    import aiohttp
    from aiohttp import web

    from triage.channels.slack import MAX_BODY, SlackChannel
    from triage.flows.engine import ClientEvent
    from triage.outbox.dispatcher import Dispatcher, DispatcherConfig
    from triage.service.client_events import ConversationStore
    from triage.settings import Settings
    from triage.store.db import make_engine, make_sessionmaker
    from triage_sandbox.outbox import RecordingSender
    from triage_sandbox.slack import SlackChannel as SandboxChannel
    from triage_sandbox.slack import SlackSandbox, SlackUser
    from triage_sandbox.slack_signing import block_actions_payload, interaction_request

    engine = example_engine()
    slack = SlackSandbox(
        users=[SlackUser(id=o, name=o.lower()) for o in OFFICERS]
        + [SlackUser(id=INTRUDER, name="ivan")],
        channels=[
            SandboxChannel(id=SALES, name="sales"),
            SandboxChannel(id=COMPLIANCE, name="compliance", is_private=True),
        ],
    )
    await slack.start()
    out: dict[str, Any] = {}
    try:
        async with database(cfg, backend, "slack") as url:
            settings = Settings(  # type: ignore[call-arg]
                _env_file=None,
                slack_bot_token=slack.bot_token,
                slack_signing_secret=SECRET,
                slack_api_base=slack.api_base,
                slack_sales_channel=SALES,
                slack_compliance_channel=COMPLIANCE,
                compliance_users=",".join(OFFICERS),
            )
            db = make_engine(url)
            sessions = make_sessionmaker(db)
            channel = SlackChannel(settings=settings, sessions=sessions, engine=engine)
            store = ConversationStore(sessions, followups=(), staff=channel.staff)
            dispatcher = Dispatcher(
                sessions,
                senders={"telegram": RecordingSender(), "slack": channel.sender},
                profile=engine.profile,
                config=DispatcherConfig(rate_limit=False),
            )
            cases = 5 if cfg.quick else 10
            for c in range(cases):
                for text in UNDECIDED:
                    kind = "start" if text.startswith("/start") else "message"
                    await store.handle(
                        source="telegram",
                        update_key=f"slack-bench:{next(_updates)}",
                        channel="telegram",
                        external_id=f"case{c}",
                        event=ClientEvent(
                            kind=kind, at=datetime.now(UTC), text=text, language="en"
                        ),
                        engine=engine,
                    )
            while (await dispatcher.drain_once()).claimed:
                pass
            cards = [
                m
                for m in slack.messages(channel=COMPLIANCE)
                if "thread_ts" not in m and m.get("blocks")
            ]
            if not cards:
                raise RuntimeError("no case card was posted to the compliance channel")
            out["case_cards"] = len(cards)
            web_app = web.Application(client_max_size=MAX_BODY)
            channel.register(web_app)
            runner = web.AppRunner(web_app, shutdown_timeout=0.5, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            endpoint = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
            connector = aiohttp.TCPConnector(limit=cfg.slack_clicks)
            http = aiohttp.ClientSession(connector=connector)
            try:

                def request(n: int, user: str, action: str) -> Any:
                    card = cards[n % len(cards)]
                    payload = block_actions_payload(
                        user_id=user,
                        channel_id=COMPLIANCE,
                        action_id=f"case:{action}",
                        message=card,
                        response_url=slack.response_url(
                            channel=COMPLIANCE, message_ts=card["ts"], user=user
                        ),
                    )
                    return interaction_request(payload, signing_secret=SECRET)

                async def click(signed: Any) -> tuple[float, int]:
                    t0 = time.perf_counter()
                    async with http.post(
                        endpoint, data=signed.body, headers=dict(signed.headers)
                    ) as response:
                        await response.read()
                        return time.perf_counter() - t0, response.status

                async def burst(user_of: Any, action: str) -> dict[str, Any]:
                    signed = [request(n, user_of(n), action) for n in range(cfg.slack_clicks)]
                    results = await asyncio.gather(*(click(s) for s in signed))
                    latencies = [lat for lat, _ in results]
                    bad = sum(1 for _, status in results if status != 200)
                    return {**latency_summary(latencies), "non_200": bad}

                await burst(lambda n: OFFICERS[n % 2], "decline")  # warm-up
                kinds = {
                    "officer_opens_modal": (lambda n: OFFICERS[n % 2], "decline"),
                    "non_officer_refused": (lambda _n: INTRUDER, "approve_eu"),
                }
                for name, (user_of, action) in kinds.items():
                    runs = [await burst(user_of, action) for _ in range(cfg.repeats)]
                    out[name] = {
                        "p99_ms": spread([r["p99_ms"] for r in runs], 1)["median"],
                        "p99_ms_spread": spread([r["p99_ms"] for r in runs], 1),
                        "p50_ms": spread([r["p50_ms"] for r in runs], 1)["median"],
                        "max_ms": max(r["max_ms"] for r in runs),
                        "non_200": sum(r["non_200"] for r in runs),
                    }
                out["views_opened"] = len(slack.views())
                out["ephemerals"] = len(slack.ephemerals(user=INTRUDER))
            finally:
                await http.close()
                await runner.cleanup()
                await channel.stop()
                await db.dispose()
    finally:
        await slack.stop()
    out["slack_ack_p99_ms"] = max(
        out["officer_opens_modal"]["p99_ms"], out["non_officer_refused"]["p99_ms"]
    )
    return out
