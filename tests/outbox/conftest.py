"""Outbox fixtures: the store's database fixtures (SQLite always, PostgreSQL when configured),
a manual clock, a recording sender, and helpers that make clients the real engine decided."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from itertools import count
from typing import Any

import pytest
from sqlmodel import col, select

from tests.store import conftest as store_fixtures
from triage.domain.codes import Outcome, Zone
from triage.domain.facts import facts_from_dict, facts_to_dict
from triage.flows.engine import ClientEvent, ConversationState, Engine, recipient_facts
from triage.outbox.dispatcher import Dispatcher, DispatcherConfig
from triage.service.client_events import ConversationStore
from triage.store.db import SessionFactory
from triage.store.models import AuditEvent, Client, Conversation, Outbox
from triage_sandbox.outbox import ManualClock, RecordingSender

# The store's database fixtures, so every outbox test runs on SQLite and on PostgreSQL.
db_url = store_fixtures.db_url
backend = store_fixtures.backend
db_engine = store_fixtures.db_engine
sessions = store_fixtures.sessions

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

NON_EU = (
    "/start",
    "I found you by searching on Google",
    "I live in Singapore",
    "I want custody of my bitcoin",
)
EU = (
    "/start",
    "I found you by searching on Google",
    "I live in Germany",
    "I want custody of my bitcoin",
    "No, never",
)
UNDECIDED = (
    "/start",
    "I found you by searching on Google",
    "don't know",
    "no idea",
    "I want custody of my bitcoin",
)

_updates = count(1)


@pytest.fixture()
def clock() -> ManualClock:
    """Time that moves only when a test says so."""
    return ManualClock(START)


@pytest.fixture()
def sender(clock: ManualClock) -> RecordingSender:
    """The Telegram side: records what was sent and when."""
    return RecordingSender(clock)


@pytest.fixture()
def staff_sender(clock: ManualClock) -> RecordingSender:
    """The Slack side."""
    return RecordingSender(clock)


@pytest.fixture()
def store(sessions: SessionFactory, clock: ManualClock) -> ConversationStore:
    """The engine on the store, with the shipped follow-up sequences."""
    return ConversationStore(sessions, clock=clock.now)


def make_dispatcher(
    sessions: SessionFactory,
    engine: Engine,
    clock: ManualClock,
    senders: dict[str, Any],
    *,
    name: str = "worker-1",
    verdicts: Any = None,
    **config: Any,
) -> Dispatcher:
    """A dispatcher on the manual clock with deterministic jitter (the upper bound)."""
    settings = {"rate_limit": False, **config}
    return Dispatcher(
        sessions,
        senders=senders,
        profile=engine.profile,
        config=DispatcherConfig(**settings),
        clock=clock,
        name=name,
        jitter=lambda: 1.0,
        verdicts=verdicts,
    )


@pytest.fixture()
def dispatcher(
    sessions: SessionFactory,
    engine: Engine,
    clock: ManualClock,
    sender: RecordingSender,
    staff_sender: RecordingSender,
) -> Dispatcher:
    """A dispatcher without pacing (pacing has its own tests)."""
    return make_dispatcher(sessions, engine, clock, {"telegram": sender, "slack": staff_sender})


async def converse(
    store: ConversationStore,
    engine: Engine,
    clock: ManualClock,
    chat: str,
    texts: Sequence[str],
    *,
    language: str | None = None,
) -> int:
    """Play client messages through the real engine on the store; the client's id."""
    result = None
    for text in texts:
        kind = "start" if text.startswith("/start") else "message"
        event = ClientEvent(kind=kind, at=clock.now(), text=text, language=language)
        result = await store.handle(
            source="telegram",
            update_key=f"update:{next(_updates)}",
            channel="telegram",
            external_id=chat,
            event=event,
            engine=engine,
        )
        assert result is not None
    assert result is not None
    return result.client_id


async def edit_state(
    sessions: SessionFactory, client_id: int, change: Callable[[ConversationState], None]
) -> None:
    """Change a stored conversation state (stands in for an officer's decision)."""
    async with sessions() as s, s.begin():
        conv = (
            await s.exec(select(Conversation).where(Conversation.client_id == client_id))
        ).one()
        state = ConversationState.from_dict(json.loads(conv.state))
        change(state)
        conv.state = json.dumps(state.to_dict())
        # The facts the engine would store with it: the officer's zone, else the turn's.
        zone = facts_from_dict(json.loads(conv.facts)).zone if conv.facts else Zone.UNKNOWN
        conv.facts = json.dumps(facts_to_dict(recipient_facts(state, zone=zone)))
        conv.version += 1
        s.add(conv)


def officer_decides(outcome: str, zone: str) -> Callable[[ConversationState], None]:
    """An officer settles the residence and decides every inquiry."""

    def change(state: ConversationState) -> None:
        state.zone_override = zone
        state.inquiries = [
            replace(i, outcome=Outcome(outcome), decider="officer") for i in state.inquiries
        ]

    return change


async def rows(sessions: SessionFactory, client_id: int | None = None) -> list[Outbox]:
    """Outbox rows in id order."""
    stmt = select(Outbox).order_by(col(Outbox.id))
    if client_id is not None:
        stmt = stmt.where(Outbox.client_id == client_id)
    async with sessions() as s:
        return list((await s.exec(stmt)).all())


async def events(
    sessions: SessionFactory, client_id: int, *, prefix: str = "outbound_"
) -> list[tuple[str, dict[str, Any]]]:
    """A client's audit events (type, payload) in chain order."""
    stmt = (
        select(AuditEvent)
        .where(AuditEvent.client_id == client_id, col(AuditEvent.type).startswith(prefix))
        .order_by(col(AuditEvent.seq))
    )
    async with sessions() as s:
        found = (await s.exec(stmt)).all()
    return [(e.type, json.loads(e.payload or "{}")) for e in found]


async def client_row(sessions: SessionFactory, client_id: int) -> Client:
    """The client row."""
    async with sessions() as s:
        client = await s.get(Client, client_id)
    assert client is not None
    return client
