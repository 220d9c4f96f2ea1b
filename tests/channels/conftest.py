"""Slack end to end: the real Bolt app on 127.0.0.1:0, the real slack_sdk client against the Slack
sandbox, the real dispatcher with `SlackSender` (and a RecordingSender for Telegram), the real
engine on the store. Every test runs on SQLite, and on PostgreSQL when it is configured.

Nothing waits on a fixed sleep: the dispatcher is drained explicitly, Bolt answers only after its
listener ran (`process_before_response`), and the sandbox records each call before answering.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import count
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlmodel import col, func, select

from tests.outbox.conftest import EU, NON_EU, UNDECIDED  # noqa: F401 - shared scripts
from tests.store.conftest import backend, db_engine, db_url, sessions  # noqa: F401 - fixtures
from triage.channels.slack import MAX_BODY, SlackChannel
from triage.flows.engine import ClientEvent, ConversationState, Engine
from triage.observability import Metrics
from triage.outbox.dispatcher import Dispatcher, DispatcherConfig, DrainReport
from triage.service.client_events import ConversationStore
from triage.settings import Settings
from triage.store.db import SessionFactory
from triage.store.models import AuditEvent, Conversation, Outbox, SlackThread
from triage_sandbox.outbox import ManualClock, RecordingSender
from triage_sandbox.slack import SlackChannel as SandboxChannel
from triage_sandbox.slack import SlackSandbox, SlackUser
from triage_sandbox.slack_signing import (
    Delivery,
    SignedRequest,
    block_actions_payload,
    deliver,
    event_callback_body,
    event_request,
    interaction_request,
    view_submission_payload,
)

SECRET = "channels-test-signing-secret"
SALES = "C0SALES"
COMPLIANCE = "C0COMPLY"
OFFICER_1 = "U0OFFICER1"
OFFICER_2 = "U0OFFICER2"
SALES_USER = "U0SALES01"
INTRUDER = "U0INTRUDE"
OTHER_TEAM = "T0OTHER"

_updates = count(1)


@dataclass
class Rig:
    """Everything a Slack test drives."""

    slack: SlackSandbox
    channel: SlackChannel
    store: ConversationStore
    dispatcher: Dispatcher
    telegram: RecordingSender
    sessions: SessionFactory
    engine: Engine
    clock: ManualClock
    metrics: Metrics
    url: str
    http: aiohttp.ClientSession

    # --- the client side -------------------------------------------------------------------------

    async def converse(self, chat: str, texts: Sequence[str], *, language: str = "en") -> int:
        """Client messages through the real engine on the store (with the Slack hook)."""
        result = None
        for text in texts:
            kind = "start" if text.startswith("/start") else "message"
            event = ClientEvent(kind=kind, at=self.clock.now(), text=text, language=language)
            result = await self.store.handle(
                source="telegram",
                update_key=f"update:{next(_updates)}",
                channel="telegram",
                external_id=chat,
                event=event,
                engine=self.engine,
            )
            assert result is not None
        assert result is not None
        return result.client_id

    async def drain(self) -> DrainReport:
        """Run the dispatcher until nothing is due (cards first, then their thread replies)."""
        total = DrainReport()
        while True:
            report = await self.dispatcher.drain()
            total.add(report)
            if report.claimed == 0:
                return total

    # --- the Slack side --------------------------------------------------------------------------

    async def post(self, request: SignedRequest) -> Delivery:
        """POST a signed request to the app's /slack/events."""
        return await deliver(self.url, request, session=self.http)

    def cards(self, channel: str) -> list[dict[str, Any]]:
        """Top-level messages the app posted in a channel, as posted."""
        return [m for m in self.slack.messages(channel=channel) if "thread_ts" not in m]

    def thread(self, channel: str, ts: str) -> list[dict[str, Any]]:
        """Replies the app posted in a thread."""
        return self.slack.messages(channel=channel, thread_ts=ts)

    def current(self, channel: str, ts: str) -> dict[str, Any]:
        """A message as people see it now (edits applied)."""
        message = self.slack.message(channel, ts)
        assert message is not None
        return message

    def sales_reply_event(
        self, card_ts: str, text: str, *, user: str = SALES_USER
    ) -> dict[str, Any]:
        """A person's reply in the lead card's thread, as an event_callback body."""
        event = self.slack.post_as_user(channel=SALES, user=user, text=text, thread_ts=card_ts)
        return event_callback_body(event)

    def signed_event(self, body: dict[str, Any], **kwargs: Any) -> SignedRequest:
        """Sign an Events API body with the app's secret."""
        return event_request(body, signing_secret=SECRET, **kwargs)

    def click_payload(self, user: str, card: dict[str, Any], action: str) -> dict[str, Any]:
        """A block_actions payload: `user` clicked `case:<action>` on the card."""
        return block_actions_payload(
            user_id=user,
            channel_id=COMPLIANCE,
            action_id=f"case:{action}",
            message=card,
            response_url=self.slack.response_url(
                channel=COMPLIANCE, message_ts=card["ts"], user=user
            ),
        )

    async def click(self, user: str, card: dict[str, Any], action: str) -> Delivery:
        """Click a case card's button."""
        return await self.post(self.signed_interaction(self.click_payload(user, card, action)))

    async def open_modal(self, user: str, card: dict[str, Any], action: str) -> dict[str, Any]:
        """Click a button and return the modal it opened."""
        mark = self.slack.mark("views")
        response = await self.click(user, card, action)
        assert response.status == 200, response.body
        (opened,) = self.slack.records("views", since=mark)
        assert opened["method"] == "views.open"
        return dict(opened["view"])

    @staticmethod
    def submission_payload(user: str, view: dict[str, Any], text: str) -> dict[str, Any]:
        """A view_submission payload: the modal submitted with `text` as the reason."""
        return view_submission_payload(user_id=user, values={"reason": {"text": text}}, view=view)

    def submission(self, user: str, view: dict[str, Any], text: str) -> SignedRequest:
        """The modal submitted with `text` as the reason (or the question), signed."""
        return self.signed_interaction(self.submission_payload(user, view, text))

    @staticmethod
    def signed_interaction(payload: dict[str, Any], **kwargs: Any) -> SignedRequest:
        """Sign an interactivity payload with the app's secret."""
        return interaction_request(payload, signing_secret=SECRET, **kwargs)

    async def decide(self, user: str, card: dict[str, Any], action: str, text: str) -> Delivery:
        """Click, fill in the modal, submit."""
        view = await self.open_modal(user, card, action)
        return await self.post(self.submission(user, view, text))

    def refused(self, reason: str) -> float:
        """How many Slack requests were refused for `reason` (the Prometheus counter)."""
        value = self.metrics.registry.get_sample_value(
            "triage_refused_requests_total", {"source": "slack", "reason": reason}
        )
        return value or 0.0

    # --- the store -------------------------------------------------------------------------------

    async def audit(self, client_id: int, type_: str) -> list[dict[str, Any]]:
        """A client's audit payloads of one type, in chain order."""
        stmt = (
            select(AuditEvent)
            .where(AuditEvent.client_id == client_id, AuditEvent.type == type_)
            .order_by(col(AuditEvent.seq))
        )
        async with self.sessions() as s:
            return [json.loads(e.payload or "{}") for e in (await s.exec(stmt)).all()]

    async def state(self, client_id: int) -> ConversationState:
        """A client's conversation state."""
        async with self.sessions() as s:
            raw = (
                await s.exec(select(Conversation.state).where(Conversation.client_id == client_id))
            ).one()
        return ConversationState.from_dict(json.loads(raw))

    async def rows(self, client_id: int, *, channel: str | None = None) -> list[Outbox]:
        """A client's outbox rows in id order."""
        stmt = select(Outbox).where(Outbox.client_id == client_id).order_by(col(Outbox.id))
        if channel is not None:
            stmt = stmt.where(Outbox.channel == channel)
        async with self.sessions() as s:
            return list((await s.exec(stmt)).all())

    async def thread_row(self, client_id: int, kind: str) -> SlackThread:
        """A client's card thread of one kind."""
        async with self.sessions() as s:
            return (
                await s.exec(
                    select(SlackThread).where(
                        SlackThread.client_id == client_id, SlackThread.kind == kind
                    )
                )
            ).one()

    async def count(self, model: Any) -> int:
        """Rows in a table."""
        async with self.sessions() as s:
            return int((await s.exec(select(func.count()).select_from(model))).one())


RigFactory = Callable[..., Any]


@pytest.fixture()
async def make_rig(
    sessions: SessionFactory,  # noqa: F811 - the store's fixture
    engine: Engine,
) -> AsyncIterator[RigFactory]:
    """Builds a rig (settings overridable), and tears everything down after the test."""
    stack: list[Callable[[], Any]] = []

    async def build(**overrides: Any) -> Rig:
        slack = SlackSandbox(
            users=[
                SlackUser(id=OFFICER_1, name="olga"),
                SlackUser(id=OFFICER_2, name="oskar"),
                SlackUser(id=SALES_USER, name="sam"),
                SlackUser(id=INTRUDER, name="ivan", team_id=OTHER_TEAM),
            ],
            channels=[
                SandboxChannel(id=SALES, name="sales"),
                SandboxChannel(id=COMPLIANCE, name="compliance", is_private=True),
            ],
        )
        await slack.start()
        stack.append(slack.stop)
        values: dict[str, Any] = {
            "slack_bot_token": slack.bot_token,
            "slack_signing_secret": SECRET,
            "slack_api_base": slack.api_base,
            "slack_sales_channel": SALES,
            "slack_compliance_channel": COMPLIANCE,
            "compliance_users": f"{OFFICER_1},{OFFICER_2}",
            "four_eyes": False,
            "case_sla_hours": 24.0,
            **overrides,
        }
        settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
        clock = ManualClock(datetime.now(UTC))
        metrics = Metrics()
        channel = SlackChannel(
            settings=settings, sessions=sessions, engine=engine, metrics=metrics, clock=clock.now
        )
        store = ConversationStore(sessions, clock=clock.now, followups=(), staff=channel.staff)
        telegram = RecordingSender(clock)
        dispatcher = Dispatcher(
            sessions,
            senders={"telegram": telegram, "slack": channel.sender},
            profile=engine.profile,
            config=DispatcherConfig(rate_limit=False),
            clock=clock,
            name="test-worker",
            jitter=lambda: 1.0,
            verdicts=channel.staff,
        )
        web_app = web.Application(client_max_size=MAX_BODY)
        channel.register(web_app)
        runner = web.AppRunner(web_app, shutdown_timeout=0.5, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        stack.append(runner.cleanup)
        stack.append(channel.stop)
        http = aiohttp.ClientSession()
        stack.append(http.close)
        port = runner.addresses[0][1]
        return Rig(
            slack=slack,
            channel=channel,
            store=store,
            dispatcher=dispatcher,
            telegram=telegram,
            sessions=sessions,
            engine=engine,
            clock=clock,
            metrics=metrics,
            url=f"http://127.0.0.1:{port}/slack/events",
            http=http,
        )

    yield build
    for close in reversed(stack):
        await close()


@pytest.fixture()
async def rig(make_rig: RigFactory) -> Rig:
    """A rig with the default settings (four-eyes off)."""
    built: Rig = await make_rig()
    return built


def has_banner(message: dict[str, Any]) -> bool:
    """Whether a lead card carries the EU/EEA restriction banner."""
    return any(b.get("block_id") == "restrictions" for b in message.get("blocks") or [])


def buttons(message: dict[str, Any]) -> list[str]:
    """The action ids of a message's buttons."""
    return [
        e["action_id"]
        for b in message.get("blocks") or []
        if b.get("type") == "actions"
        for e in b.get("elements", [])
    ]


def text_of(message: dict[str, Any]) -> str:
    """Every text of a message (fallback and blocks), joined."""
    parts = [str(message.get("text") or "")]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                parts.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(message.get("blocks") or [])
    return "\n".join(parts)
