"""Follow-up sequences: queued with a non-EU handoff only, judged again when due, cancelled by
a sales reply, and blocked when the client turned out to be in the EU in the meantime."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.outbox.conftest import (
    EU,
    NON_EU,
    UNDECIDED,
    converse,
    edit_state,
    events,
    officer_decides,
    rows,
)
from triage.domain.codes import MessageKind, Outcome
from triage.flows.engine import Engine
from triage.outbox.dispatcher import Dispatcher
from triage.outbox.followups import (
    DEFAULT_FOLLOWUPS,
    load_followups,
    parse_delay,
    parse_followups,
)
from triage.outbox.rows import OutboundRequest, enqueue
from triage.service.client_events import ConversationStore
from triage.settings import ConfigError
from triage.store.db import SessionFactory
from triage.store.models import Outbox
from triage_sandbox.outbox import ManualClock, RecordingSender

THREE_DAYS = timedelta(days=3)


def _follow_ups(found: list[Outbox]) -> list[Outbox]:
    return [r for r in found if r.kind == "follow_up"]


def test_the_shipped_sequence() -> None:
    (rule,) = load_followups()
    assert (rule.after_outcome, rule.delay, rule.kind) == (
        Outcome.HANDOFF_NON_EU,
        THREE_DAYS,
        MessageKind.FOLLOW_UP,
    )
    assert rule.unless == "sales_replied"
    prompts = {p.stem for p in (DEFAULT_FOLLOWUPS.parent / "prompts").glob("*.yaml")}
    assert prompts <= set(rule.texts)  # a text in every language the bot speaks
    assert "Acme" in rule.text("de", firm="Acme") and rule.text("xx", firm="A") == rule.text(
        "en", firm="A"
    )


def _doc(**change: Any) -> dict[str, Any]:
    raw = yaml.safe_load(Path(DEFAULT_FOLLOWUPS).read_text(encoding="utf-8"))
    raw["followups"][0].update(change)
    return dict(raw)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"after_outcome": "SERVE_EU_RESTRICTED"}, "only HANDOFF_NON_EU"),
        ({"after_outcome": "ESCALATE"}, "only HANDOFF_NON_EU"),
        ({"after_outcome": "LATER"}, "not an outcome"),
        ({"delay": "3 weeks"}, "delay"),
        ({"delay": "0d"}, "delay"),
        ({"kind": "spam"}, "spam"),
        ({"unless": "client_replied"}, "not a known condition"),
        ({"text": {"de": "Hallo"}}, "with en"),
        ({"text": {"en": "Hi {name}"}}, "only {firm}"),
        ({"id": "Still Interested!"}, "id"),
    ],
)
def test_a_bad_sequence_is_refused_with_a_message(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match="followups\\[0\\]") as err:
        parse_followups(_doc(**change), source="followups.yaml")
    assert message in str(err.value)


def test_delays() -> None:
    assert parse_delay("3d") == THREE_DAYS
    assert parse_delay("1.5h") == timedelta(minutes=90)
    assert parse_delay("45s") == timedelta(seconds=45)


async def test_queued_with_a_non_eu_handoff_only(
    sessions: SessionFactory,
    store: ConversationStore,
    engine: Engine,
    clock: ManualClock,
) -> None:
    non_eu = await converse(store, engine, clock, "900", NON_EU, language="de")
    eu = await converse(store, engine, clock, "901", EU)
    undecided = await converse(store, engine, clock, "902", UNDECIDED)

    (row,) = _follow_ups(await rows(sessions, non_eu))
    assert _follow_ups(await rows(sessions, eu)) == []
    assert _follow_ups(await rows(sessions, undecided)) == []
    assert row.due_at == clock.now() + THREE_DAYS and row.status == "pending"
    assert (row.sender, row.unless, row.reply) == ("scheduler", "sales_replied", False)
    assert row.text == load_followups()[0].text("de", firm=engine.profile.display)
    queued = [p for t, p in await events(sessions, non_eu) if t == "outbound_queued"]
    assert [p["text"] for p in queued if p["outbox_id"] == row.id] == [row.text]
    # The client writes again: the decision stands, nothing more is queued.
    await converse(store, engine, clock, "900", ["Thanks, I'll wait"])
    assert len(_follow_ups(await rows(sessions, non_eu))) == 1


async def test_store_without_sequences_queues_none(
    sessions: SessionFactory, engine: Engine, clock: ManualClock
) -> None:
    store = ConversationStore(sessions, clock=clock.now, followups=())
    cid = await converse(store, engine, clock, "903", NON_EU)
    assert _follow_ups(await rows(sessions, cid)) == []


async def test_sent_when_due_to_a_client_still_outside_the_eu(
    sessions: SessionFactory,
    store: ConversationStore,
    engine: Engine,
    clock: ManualClock,
    sender: RecordingSender,
    dispatcher: Dispatcher,
) -> None:
    cid = await converse(store, engine, clock, "904", NON_EU)
    await dispatcher.drain()
    (row,) = _follow_ups(await rows(sessions, cid))
    assert row.text not in sender.texts_to(cid)
    clock.advance(THREE_DAYS.total_seconds() - 1)
    await dispatcher.drain()
    assert row.text not in sender.texts_to(cid)
    clock.advance(1)
    assert (await dispatcher.drain()).sent == 1
    assert sender.texts_to(cid)[-1] == row.text


async def test_cancelled_when_a_sales_reply_was_sent_after_it_was_queued(
    sessions: SessionFactory,
    store: ConversationStore,
    engine: Engine,
    clock: ManualClock,
    sender: RecordingSender,
    dispatcher: Dispatcher,
) -> None:
    cid = await converse(store, engine, clock, "905", NON_EU)
    await dispatcher.drain()
    clock.advance(3600)
    reply = OutboundRequest(
        client_id=cid,
        text="Happy to help with custody: here are our terms.",
        kind="reply",
        sender="sales",
        dedupe_key="slack:905",
        reply=True,
    )
    await enqueue(sessions, reply, now=clock.now())
    assert (await dispatcher.drain()).sent == 1
    clock.advance(THREE_DAYS.total_seconds())

    report = await dispatcher.drain()

    (row,) = _follow_ups(await rows(sessions, cid))
    assert report.cancelled == 1 and row.status == "cancelled"
    assert row.text not in sender.texts_to(cid)
    cancelled = [p for t, p in await events(sessions, cid) if t == "outbound_cancelled"]
    assert [p["outbox_id"] for p in cancelled] == [row.id]
    assert "sales reply" in cancelled[0]["reason"]


async def test_blocked_when_due_after_the_client_turned_out_to_live_in_the_eu(
    sessions: SessionFactory,
    store: ConversationStore,
    engine: Engine,
    clock: ManualClock,
    sender: RecordingSender,
    dispatcher: Dispatcher,
) -> None:
    cid = await converse(store, engine, clock, "906", NON_EU)
    await dispatcher.drain()
    (row,) = _follow_ups(await rows(sessions, cid))
    # The follow-up is queued; then the client says they live in the EU after all.
    await converse(store, engine, clock, "906", ["Sorry, I moved to Berlin, Germany last month"])
    clock.advance(THREE_DAYS.total_seconds())

    # Undecided (the bot escalated): held for an officer, not sent.
    assert (await dispatcher.drain()).held == 1
    # The officer settles it: EU resident, served under the restriction. Judged again: blocked.
    await edit_state(sessions, cid, officer_decides("SERVE_EU_RESTRICTED", "EU"))
    await dispatcher.release_held(cid, by="officer:U1", reason="lives in Germany")
    assert (await dispatcher.drain()).blocked == 1

    assert row.text not in sender.texts_to(cid)
    assert [r.status for r in _follow_ups(await rows(sessions, cid))] == ["blocked"]
    verdicts = [
        (t, p["verdict"])
        for t, p in await events(sessions, cid)
        if p.get("outbox_id") == row.id and "verdict" in p
    ]
    assert verdicts == [("outbound_held", "held"), ("outbound_blocked", "blocked")]


async def test_blocked_at_send_time_when_the_facts_changed_without_a_new_message(
    sessions: SessionFactory,
    store: ConversationStore,
    engine: Engine,
    clock: ManualClock,
    sender: RecordingSender,
    dispatcher: Dispatcher,
) -> None:
    cid = await converse(store, engine, clock, "907", NON_EU)
    await dispatcher.drain()
    (row,) = _follow_ups(await rows(sessions, cid))
    # An officer reviewing the lead finds an EU address: the stored facts change directly.
    await edit_state(sessions, cid, officer_decides("SERVE_EU_RESTRICTED", "EU"))
    clock.advance(THREE_DAYS.total_seconds())

    assert (await dispatcher.drain()).blocked == 1
    assert row.text not in sender.texts_to(cid)
    (stored,) = _follow_ups(await rows(sessions, cid))
    assert stored.status == "blocked" and "EU/EEA" in (stored.verdict_reason or "")
