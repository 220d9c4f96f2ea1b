"""Two dispatcher processes on one PostgreSQL outbox: every row sent once; a worker killed with
SIGKILL mid-drain loses nothing, and resends exactly the rows it had sent but not yet marked."""

from __future__ import annotations

import asyncio
import json
import pickle
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import col, select

from tests.outbox.conftest import NON_EU
from triage.domain.facts import facts_to_dict
from triage.domain.territory import Gazetteer
from triage.flows.engine import ClientEvent, ConversationState, Engine
from triage.outbox.followups import followup_dedupe_key, load_followups
from triage.store import audit
from triage.store.db import SessionFactory
from triage.store.models import AuditEvent, Client, Conversation, Outbox, utcnow

WORKER = Path(__file__).with_name("_worker.py")
ROWS = 1000
HANG_GUARD_SECONDS = 120.0  # a guard against hanging, not a speed requirement

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.parametrize("db_url", ["postgres"], indirect=True),
]


def _handed_off_state(engine: Engine) -> tuple[str, str]:
    """A handed-off non-EU client's state and recipient facts, as stored."""
    state = ConversationState(language="en")
    for line in NON_EU:
        kind = "start" if line.startswith("/start") else "message"
        engine.handle(state, ClientEvent(kind=kind, at=utcnow(), text=line))
    assert [i.outcome for i in state.inquiries] == ["HANDOFF_NON_EU"]
    facts = json.dumps(facts_to_dict(engine.recipient_facts(state)))
    return json.dumps(state.to_dict()), facts


async def _due_follow_ups(sessions: SessionFactory, engine: Engine) -> set[int]:
    """ROWS handed-off non-EU clients, each with its follow-up due now."""
    rule = load_followups()[0]
    state, facts = _handed_off_state(engine)
    now = utcnow()
    async with sessions() as s, s.begin():
        await s.exec(
            text(
                "CREATE TABLE send_log (id serial PRIMARY KEY, outbox_id int NOT NULL, "
                "worker text NOT NULL)"
            )
        )
        clients = [Client(channel="telegram", external_id=f"w{i}") for i in range(ROWS)]
        s.add_all(clients)
        await s.flush()
        ids = [c.id for c in clients if c.id is not None]
        s.add_all(Conversation(client_id=cid, state=state, facts=facts) for cid in ids)
        follow_ups = [
            Outbox(
                dedupe_key=followup_dedupe_key(rule.id, client_id=cid, inquiry=0),
                client_id=cid,
                channel="telegram",
                kind=rule.kind.value,
                sender="scheduler",
                text=rule.text("en", firm=engine.profile.display),
                unless=rule.unless,
                due_at=now - timedelta(seconds=1),
                created_at=now - rule.delay,
            )
            for cid in ids
        ]
        s.add_all(follow_ups)
        await s.flush()
        return {r.id for r in follow_ups if r.id is not None}


def _start(url: str, name: str, folder: Path) -> subprocess.Popen[bytes]:
    log = (folder / f"{name}.log").open("wb")
    return subprocess.Popen(
        [
            sys.executable,
            str(WORKER),
            url,
            name,
            str(folder),
            "--lease",
            "2",
            "--latency",
            "0.002",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )


async def _wait(
    check: Callable[[], Awaitable[bool]], procs: list[subprocess.Popen[bytes]], folder: Path
) -> None:
    """Poll an async condition; fail (with the workers' logs) instead of hanging."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + HANG_GUARD_SECONDS
    while not await check():
        for p in procs:
            if p.poll() is not None and p.returncode not in (0, -signal.SIGKILL):
                logs = "\n".join(f.read_text() for f in folder.glob("*.log"))
                pytest.fail(f"worker exited with {p.returncode}:\n{logs}")
        assert loop.time() < deadline, "workers did not finish: " + "\n".join(
            f.read_text()[-2000:] for f in folder.glob("*.log")
        )
        await asyncio.sleep(0.1)


async def _run_workers(
    db_url: str, sessions: SessionFactory, gazetteer: Gazetteer, folder: Path, *, kill_after: int
) -> tuple[list[subprocess.Popen[bytes]], int]:
    """Start workers A and B, let them drain; SIGKILL A after `kill_after` sends (0: never).

    Returns the processes and how many sends had been logged when A was killed.
    """
    (folder / "gazetteer.pickle").write_bytes(pickle.dumps(gazetteer, protocol=5))
    procs = [_start(db_url, "A", folder), _start(db_url, "B", folder)]

    async def ready() -> bool:
        return all((folder / f"{n}.ready").exists() for n in "AB")

    async def sends() -> int:
        async with sessions() as s:
            return int((await s.exec(text("SELECT count(*) FROM send_log"))).scalar_one())

    async def drained() -> bool:
        async with sessions() as s:
            stmt = select(Outbox.id).where(col(Outbox.status).in_(["pending", "sending"]))
            return (await s.exec(stmt.limit(1))).first() is None

    killed_at = 0
    try:
        await _wait(ready, procs, folder)
        (folder / "go").touch()
        if kill_after:

            async def enough() -> bool:
                return await sends() >= kill_after

            await _wait(enough, procs, folder)
            procs[0].send_signal(signal.SIGKILL)
            procs[0].wait()
            killed_at = await sends()
        await _wait(drained, procs, folder)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=HANG_GUARD_SECONDS)
    return procs, killed_at


async def _outcome(
    sessions: SessionFactory,
) -> tuple[Counter[int], dict[int, set[str]], dict[int, list[str]], list[str]]:
    """Sends per row, senders per row, outbound_sent workers per row, row statuses."""
    async with sessions() as s:
        log = (await s.exec(text("SELECT outbox_id, worker FROM send_log"))).all()
        marks = (
            await s.exec(select(AuditEvent.payload).where(AuditEvent.type == "outbound_sent"))
        ).all()
        statuses = list((await s.exec(select(Outbox.status))).all())
        breaks = await audit.verify(s)
    assert breaks == []  # every client's chain is intact after concurrent workers and a kill
    sends: Counter[int] = Counter(oid for oid, _ in log)
    senders: dict[int, set[str]] = {}
    for oid, worker in log:
        senders.setdefault(oid, set()).add(worker)
    marked: dict[int, list[str]] = {}
    for payload in marks:
        p = json.loads(payload or "{}")
        marked.setdefault(p["outbox_id"], []).append(p["worker"])
    return sends, senders, marked, statuses


async def test_two_worker_processes_send_each_of_1000_follow_ups_exactly_once(
    db_url: str, sessions: SessionFactory, engine: Engine, gazetteer: Gazetteer, tmp_path: Path
) -> None:
    ids = await _due_follow_ups(sessions, engine)
    procs, _ = await _run_workers(db_url, sessions, gazetteer, tmp_path, kill_after=0)

    assert [p.returncode for p in procs] == [0, 0]
    sends, senders, marked, statuses = await _outcome(sessions)
    assert sum(sends.values()) == ROWS and set(sends) == ids
    assert max(sends.values()) == 1
    assert statuses == ["sent"] * ROWS
    assert all(len(marked[oid]) == 1 for oid in ids)
    by_worker = Counter(w for ws in senders.values() for w in ws)
    assert by_worker["A"] > 0 and by_worker["B"] > 0  # both really drained


async def test_sigkill_mid_drain_loses_nothing_and_resends_only_unmarked_sends(
    db_url: str, sessions: SessionFactory, engine: Engine, gazetteer: Gazetteer, tmp_path: Path
) -> None:
    ids = await _due_follow_ups(sessions, engine)
    procs, killed_at = await _run_workers(db_url, sessions, gazetteer, tmp_path, kill_after=800)

    assert procs[0].returncode == -signal.SIGKILL and procs[1].returncode == 0
    sends, senders, marked, statuses = await _outcome(sessions)
    # No loss: every row sent and marked sent, exactly one mark each.
    assert set(sends) == ids and statuses == ["sent"] * ROWS
    assert all(len(marked[oid]) == 1 for oid in ids)
    # The at-least-once window: rows A sent but had not marked when it was killed.
    unmarked_by_a = {oid for oid, ws in senders.items() if "A" in ws and "A" not in marked[oid]}
    duplicates = {oid for oid, n in sends.items() if n > 1}
    assert duplicates == unmarked_by_a  # every resend is explained by the kill, and only those
    assert len(duplicates) <= 1  # a worker sends one row at a time
    assert all(sends[oid] == 2 and marked[oid] == ["B"] for oid in duplicates)
    assert 800 <= killed_at < ROWS and sum(sends.values()) == ROWS + len(duplicates)
    print(
        f"\nSIGKILL after {killed_at} sends: {ROWS} rows, {sum(sends.values())} sends, "
        f"{len(duplicates)} duplicate(s) in the send/mark window"
    )
