"""What draining a row costs: its statements stay few (issue 8 item 7).

Counts, not timings (the statements are deterministic). A row's judge loads the client (locked),
the row (locked) and the conversation state in one statement and appends its verdict with one
INSERT and one head UPDATE; the previous row's mark rides in the same transaction.
"""

from __future__ import annotations

import collections

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.outbox.conftest import NON_EU, converse
from tests.store.test_turn_cost import statements
from triage.flows.engine import Engine
from triage.outbox.dispatcher import Dispatcher
from triage.service.client_events import ConversationStore
from triage_sandbox.outbox import ManualClock, RecordingSender


async def test_a_drained_row_costs_few_statements(
    db_engine: AsyncEngine,
    store: ConversationStore,
    engine: Engine,
    clock: ManualClock,
    dispatcher: Dispatcher,
    sender: RecordingSender,
    backend: str,
) -> None:
    clients = 6
    for n in range(clients):
        await converse(store, engine, clock, f"chat-{n}", NON_EU[:1])
    with statements(db_engine) as sent:
        report = await dispatcher.drain_once()
    # /start queues two messages per client; a batch takes one per chat.
    assert report.claimed == clients and report.sent == clients, report
    assert len(sender.sent) == clients
    counts = collections.Counter(sent)
    begin = counts["BEGIN IMMEDIATE"] if backend == "sqlite" else 0
    per_row = (sum(counts.values()) - begin) / clients
    # Claim: SELECT + UPDATE. Per row: the load, the verdict's audit INSERT and head UPDATE,
    # the row's UPDATE; the mark: client lock, audit INSERT, head UPDATE, row UPDATE.
    # 8.3 now (COMMIT is not a cursor statement); 12.3 before the judge's three SELECTs
    # became one and its two flushes one.
    assert per_row <= 8.5, counts
    assert counts["SELECT conversation.state FROM"] == 0, counts  # read with the row
    assert counts["SELECT outbox.id, outbox.client_id,"] == 1, counts  # the claim, once
    assert counts["INSERT INTO audit_event"] == 2 * clients, counts  # verdict, then sent
