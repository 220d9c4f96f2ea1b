"""Crashes and the outbox's attempt count: a row a crashed worker never tried is not its fault.

Found by the full crash loop (RELIABILITY.md, B4); fixed by charging the attempt in the judge
transaction instead of at claim time. Runs on SQLite, and on PostgreSQL when
TRIAGE_TEST_POSTGRES_URL is set (the store tests' fixtures).
"""

from __future__ import annotations

import contextlib

import pytest

from tests.outbox.conftest import (  # noqa: F401 - fixtures: clock, sender, store
    clock,
    converse,
    make_dispatcher,
    rows,
    sender,
    store,
)
from tests.outbox.test_retries import DyingSender, WorkerKilled
from tests.store.conftest import db_engine, db_url, sessions  # noqa: F401
from triage.flows.engine import Engine
from triage.outbox.dispatcher import DispatcherConfig
from triage.service.client_events import ConversationStore
from triage.store.db import SessionFactory
from triage_sandbox.outbox import ManualClock, RecordingSender


async def test_regression_b4_rows_a_crashed_worker_never_tried_do_not_go_dead(
    sessions: SessionFactory,  # noqa: F811
    store: ConversationStore,  # noqa: F811
    engine: Engine,
    clock: ManualClock,  # noqa: F811
    sender: RecordingSender,  # noqa: F811
) -> None:
    """B4: a batch claim adds one attempt to every row it takes. A worker that dies while
    sending the batch's first row (a SIGKILL, an OOM kill, a poison message) leaves the other
    rows `sending` with an attempt they never had; after `max_attempts` such crashes they are
    declared dead ("claimed N times without a result") although no worker ever judged or sent
    them, and their clients never get the reply. Only the row being sent when the worker died
    should be charged (it may be the poison)."""
    poison = await converse(store, engine, clock, "b4-poison", ["/start"])
    innocent = await converse(store, engine, clock, "b4-innocent", ["/start"])
    limit = 3
    lease = DispatcherConfig().lease_seconds
    for n in range(limit):
        # Each worker claims the first row of both chats, then dies sending the first one.
        doomed = make_dispatcher(
            sessions,
            engine,
            clock,
            {"telegram": DyingSender(sender, after_send=False)},
            name=f"crashing-{n}",
            max_attempts=limit,
        )
        with contextlib.suppress(WorkerKilled):
            await doomed.drain()
        clock.advance(lease + 1)

    healthy = make_dispatcher(
        sessions, engine, clock, {"telegram": sender}, name="healthy", max_attempts=limit
    )
    await healthy.drain()
    poison_first = (await rows(sessions, poison))[0]
    innocent_first = (await rows(sessions, innocent))[0]
    # The row that was being sent at every crash may well end dead: that is the poison rule.
    assert poison_first.status == "dead"
    # The innocent chat's first row was never judged nor sent by a crashing worker.
    assert innocent_first.status == "sent", (innocent_first.status, innocent_first.last_error)
    assert [s.delivery.outbox_id for s in sender.sent].count(innocent_first.id) == 1


async def test_a_row_whose_judging_always_fails_runs_out_of_attempts(
    sessions: SessionFactory,  # noqa: F811
    store: ConversationStore,  # noqa: F811
    engine: Engine,
    clock: ManualClock,  # noqa: F811
    sender: RecordingSender,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The other side of B4's fix: the attempt is charged in the judge transaction, so when
    that transaction itself fails every time, the failure is still counted (in a transaction
    of its own) and the row ends dead instead of being retried forever."""
    client = await converse(store, engine, clock, "b4-judge-fails", ["/start"])
    limit = 3
    dispatcher = make_dispatcher(
        sessions, engine, clock, {"telegram": sender}, name="w", max_attempts=limit
    )

    async def broken(*_: object, **__: object) -> None:
        raise RuntimeError("the verdict cannot be recorded")

    monkeypatch.setattr(dispatcher, "_cancel_reason", broken)
    lease = DispatcherConfig().lease_seconds
    for _ in range(limit):
        await dispatcher.drain_once()
        clock.advance(lease + 1)
    monkeypatch.undo()
    await dispatcher.drain()
    first = (await rows(sessions, client))[0]
    assert first.status == "dead", (first.status, first.attempts)
    assert first.id not in [s.delivery.outbox_id for s in sender.sent]
