"""Tamper evidence: rows changed, deleted, inserted or reordered by hand in SQL are found.

Each client gets a real conversation through `ConversationStore.handle`; then one kind of
tampering is done with plain SQL, as someone with database access would. `triage audit verify`
(the real command, in a subprocess) must exit 1 and name the first broken event; an intact
store, and an erased (tombstoned) payload, verify with exit 0.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import select

from tests.store.support import EU_CLIENT, converse, run_cli
from triage.flows.engine import Engine
from triage.service.client_events import ConversationStore
from triage.store import audit
from triage.store.db import SessionFactory, write_transaction
from triage.store.models import AuditEvent, Client, UTCDateTime

#: Two turns: enough events for a victim in the middle with neighbours on both sides.
SHORT = ("/start", "A friend told me about you")


@dataclass(frozen=True)
class Target:
    """The chain being tampered with: its client, a victim event in the middle, its head."""

    client_id: int
    #: seq of the client's second message (their own words: the likeliest thing to forge).
    k: int
    head: int
    rows: dict[int, AuditEvent]


async def _target(sessions: SessionFactory, client_id: int) -> Target:
    async with sessions() as s:
        client = await s.get(Client, client_id)
        assert client is not None
        events = (
            await s.exec(
                select(AuditEvent)
                .where(AuditEvent.client_id == client_id)
                .order_by(AuditEvent.seq)  # type: ignore[arg-type]
            )
        ).all()
    k = [e.seq for e in events if e.type == "message_in"][1]
    assert 1 < k < client.audit_seq - 1
    return Target(client_id, k, client.audit_seq, {e.seq: e for e in events})


def _forged_payload(row: AuditEvent) -> str:
    payload = json.loads(row.payload or "{}")
    payload["text"] = "I live in Singapore"
    return audit.canonical_json(payload)


_AT = bindparam("at", type_=UTCDateTime())


async def _change_payload(conn: AsyncConnection, t: Target) -> None:
    await conn.execute(
        text("UPDATE audit_event SET payload = :p WHERE client_id = :c AND seq = :s"),
        {"p": _forged_payload(t.rows[t.k]), "c": t.client_id, "s": t.k},
    )


async def _change_payload_and_its_hash(conn: AsyncConnection, t: Target) -> None:
    p = _forged_payload(t.rows[t.k])
    await conn.execute(
        text(
            "UPDATE audit_event SET payload = :p, payload_hash = :h "
            "WHERE client_id = :c AND seq = :s"
        ),
        {"p": p, "h": audit.sha256_hex(p), "c": t.client_id, "s": t.k},
    )


async def _change_type(conn: AsyncConnection, t: Target) -> None:
    await conn.execute(
        text("UPDATE audit_event SET type = 'question' WHERE client_id = :c AND seq = :s"),
        {"c": t.client_id, "s": t.k},
    )


async def _change_time(conn: AsyncConnection, t: Target) -> None:
    at = t.rows[t.k].created_at - timedelta(days=3)
    await conn.execute(
        text(
            "UPDATE audit_event SET created_at = :at WHERE client_id = :c AND seq = :s"
        ).bindparams(_AT),
        {"at": at, "c": t.client_id, "s": t.k},
    )


async def _delete_middle(conn: AsyncConnection, t: Target) -> None:
    await conn.execute(
        text("DELETE FROM audit_event WHERE client_id = :c AND seq = :s"),
        {"c": t.client_id, "s": t.k},
    )


async def _delete_last(conn: AsyncConnection, t: Target) -> None:
    await conn.execute(
        text("DELETE FROM audit_event WHERE client_id = :c AND seq = :s"),
        {"c": t.client_id, "s": t.head},
    )


async def _insert_forged(conn: AsyncConnection, t: Target) -> None:
    """A well-formed event appended after the head: right seq, right prev_hash, right hash."""
    last = t.rows[t.head]
    payload = audit.canonical_json({"text": "I was never contacted by the firm"})
    payload_hash = audit.sha256_hex(payload)
    at = last.created_at + timedelta(seconds=1)
    digest = audit.event_hash(
        client_id=t.client_id,
        seq=t.head + 1,
        type="message_in",
        payload_hash=payload_hash,
        created_at=at,
        prev_hash=last.hash,
    )
    await conn.execute(
        text(
            "INSERT INTO audit_event "
            "(client_id, seq, type, payload, payload_hash, prev_hash, hash, created_at) "
            "VALUES (:c, :s, 'message_in', :p, :ph, :prev, :h, :at)"
        ).bindparams(_AT),
        {
            "c": t.client_id,
            "s": t.head + 1,
            "p": payload,
            "ph": payload_hash,
            "prev": last.hash,
            "h": digest,
            "at": at,
        },
    )


async def _reorder(conn: AsyncConnection, t: Target) -> None:
    """Swap two neighbours' seq (through a free value: (client_id, seq) is unique)."""
    for old, new in ((t.k, -1), (t.k + 1, t.k), (-1, t.k + 1)):
        await conn.execute(
            text("UPDATE audit_event SET seq = :new WHERE client_id = :c AND seq = :old"),
            {"new": new, "old": old, "c": t.client_id},
        )


async def _rewrite_with_valid_hash(conn: AsyncConnection, t: Target) -> None:
    """Rewrite one event completely, its own hashes recomputed: the next link breaks."""
    row = t.rows[t.k]
    p = _forged_payload(row)
    ph = audit.sha256_hex(p)
    digest = audit.event_hash(
        client_id=t.client_id,
        seq=t.k,
        type=row.type,
        payload_hash=ph,
        created_at=row.created_at,
        prev_hash=row.prev_hash,
    )
    await conn.execute(
        text(
            "UPDATE audit_event SET payload = :p, payload_hash = :ph, hash = :h "
            "WHERE client_id = :c AND seq = :s"
        ),
        {"p": p, "ph": ph, "h": digest, "c": t.client_id, "s": t.k},
    )


@dataclass(frozen=True)
class Case:
    """One kind of tampering and the break it must produce."""

    name: str
    apply: Callable[[AsyncConnection, Target], Awaitable[None]]
    #: The seq verify must name, from the target.
    seq: Callable[[Target], int]
    problem: str
    #: Whether the named event is a row that still exists (verify names its row id and type).
    has_row: bool = True


CASES = [
    Case("payload changed", _change_payload, lambda t: t.k, "the payload was changed"),
    Case(
        "payload and payload_hash changed",
        _change_payload_and_its_hash,
        lambda t: t.k,
        "hash does not match the event's content",
    ),
    Case("type changed", _change_type, lambda t: t.k, "hash does not match the event's content"),
    Case("time changed", _change_time, lambda t: t.k, "hash does not match the event's content"),
    Case(
        "middle row deleted",
        _delete_middle,
        lambda t: t.k + 1,
        "missing before this event: rows were deleted",
    ),
    Case(
        "last row deleted",
        _delete_last,
        lambda t: t.head,
        "missing at the end of the chain",
        has_row=False,
    ),
    Case("forged row inserted", _insert_forged, lambda t: t.head + 1, "beyond the chain head"),
    Case(
        "seq reordered",
        _reorder,
        lambda t: t.k,
        "prev_hash does not match the previous event's hash",
    ),
    Case(
        "row rewritten with valid hashes",
        _rewrite_with_valid_hash,
        lambda t: t.k + 1,
        "prev_hash does not match the previous event's hash",
    ),
]


async def _tamper(db_engine: AsyncEngine, case: Case, target: Target) -> None:
    async with db_engine.begin() as conn:
        await case.apply(conn, target)


async def test_tombstoned_payload_still_verifies(sessions: SessionFactory, engine: Engine) -> None:
    store = ConversationStore(sessions)
    cid = (await converse(store, engine, external_id="1", texts=EU_CLIENT))[0].client_id
    target = await _target(sessions, cid)
    async with sessions() as s, s.begin():
        await audit.tombstone(s, target.rows[target.k].id or 0)
    async with sessions() as s:
        row = await s.get(AuditEvent, target.rows[target.k].id)
        assert row is not None and row.payload is None
        assert await audit.verify(s) == []


_BROKEN = re.compile(r"^BROKEN client (\d+): (.*)$", re.MULTILINE)


async def test_audit_verify_command_names_each_broken_event(
    db_url: str, sessions: SessionFactory, db_engine: AsyncEngine, engine: Engine, tmp_path: Path
) -> None:
    """One client per kind of tampering, one intact, one erased: the real command, each time."""
    store = ConversationStore(sessions)
    ids = []
    for n in range(len(CASES) + 2):
        results = await converse(store, engine, external_id=str(n), texts=SHORT)
        ids.append(results[0].client_id)
    *victims, intact, erased = ids
    erased_target = await _target(sessions, erased)
    async with sessions() as s, s.begin():
        await audit.tombstone(s, erased_target.rows[erased_target.k].id or 0)

    async with sessions() as s:
        assert await audit.verify(s) == []

    targets = {}
    for case, cid in zip(CASES, victims, strict=True):
        targets[cid] = (case, await _target(sessions, cid))
        await _tamper(db_engine, case, targets[cid][1])

    # The library names the same first break per chain, and nothing else ...
    async with sessions() as s:
        breaks = {b.client_id: b for b in await audit.verify(s)}
    assert set(breaks) == set(victims)
    for cid, (case, target) in targets.items():
        b = breaks[cid]
        assert (b.seq, b.event_id is not None) == (case.seq(target), case.has_row), case.name
        assert case.problem in b.problem, (case.name, b)

    # ... and so does the command, one line per broken chain, exit 1.
    after = run_cli(["audit", "verify"], db_url=db_url, cwd=tmp_path)
    assert after.returncode == 1, after.stdout + after.stderr
    reported = {int(cid): line for cid, line in _BROKEN.findall(after.stdout)}
    assert set(reported) == set(victims), after.stdout
    for cid, (case, target) in targets.items():
        line, b = reported[cid], breaks[cid]
        assert line.startswith(f"event seq {case.seq(target)}"), (case.name, line)
        assert case.problem in line, (case.name, line)
        if case.has_row:
            assert f"(row id {b.event_id}, type " in line, (case.name, line)
    assert f"{len(victims)} broken chain(s) of {len(ids)} checked" in after.stderr

    # An intact chain with an erased (tombstoned) payload: exit 0.
    one = run_cli(["audit", "verify", "--client", str(erased)], db_url=db_url, cwd=tmp_path)
    assert one.returncode == 0 and "OK: 1 chain(s) intact" in one.stdout, one.stdout + one.stderr
    assert intact not in reported


async def test_regression_verify_snapshot_while_the_bot_writes(
    sessions: SessionFactory, engine: Engine
) -> None:
    """Verify must see heads and events from one snapshot while chains keep growing.

    Found by CI on PostgreSQL: verify read the client heads and the events in two statements;
    under READ COMMITTED an append committed between them looked like a forged event
    ("beyond the chain head ...: inserted"). The writer below appends as fast as it can while
    verify runs again and again; every verify must find every chain intact.
    """
    store = ConversationStore(sessions)
    cids = [
        (await converse(store, engine, external_id=str(n), texts=SHORT))[0].client_id
        for n in range(3)
    ]
    stop = asyncio.Event()
    appended = 0

    async def write() -> None:
        nonlocal appended
        while not stop.is_set():
            for cid in cids:
                async with sessions() as s, write_transaction(s):
                    client = await audit.lock_client(s, cid)
                    await audit.append(s, cid, "note", {"n": appended}, client=client)
                appended += 1
            await asyncio.sleep(0)

    writer = asyncio.create_task(write())
    rounds = 0
    deadline = asyncio.get_running_loop().time() + 60
    try:
        # At least 40 rounds, and on until the writer has really grown the chains meanwhile.
        while rounds < 40 or (appended <= 10 and asyncio.get_running_loop().time() < deadline):
            async with sessions() as s:
                assert await audit.verify(s) == []
            async with sessions() as s:
                assert await audit.verify(s, cids[0]) == []
            rounds += 1
            await asyncio.sleep(0)
    finally:
        stop.set()
        await writer
    assert appended > 10, appended  # the chains really grew while verify ran
