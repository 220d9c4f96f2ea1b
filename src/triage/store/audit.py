"""The audit log: one hash chain per client, append-only, verifiable.

Each event stores `payload_hash = sha256(canonical payload)` and
`hash = sha256(prev_hash + canonical_json({client_id, seq, type, payload_hash, created_at,
prev_hash}))`. The payload itself is outside the hash, so erasure can tombstone it (set it to
NULL) and the chain still verifies. The client row carries the chain head (`audit_seq`,
`audit_head`), written in the same transaction as every append: deleting the newest events or
appending a well-formed forged event is detected too. An attacker who rewrites the whole chain
*and* the head is caught only by an anchor kept outside the database (a later step).

Appends are serialised per client by locking the client row (`SELECT ... FOR UPDATE` on
PostgreSQL; on SQLite every transaction holds the database write lock from `BEGIN IMMEDIATE`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from triage.store.models import AuditEvent, Client, utcnow

#: `prev_hash` of the first event of every chain.
GENESIS = "0" * 64


class AuditError(Exception):
    """The chain cannot be appended to (for example, the client does not exist)."""


@dataclass(frozen=True)
class Break:
    """The first broken link of one client's chain."""

    client_id: int
    #: The seq of the broken event (for deleted events: the first missing seq).
    seq: int | None
    #: The row id of the broken event; None when the event is gone.
    event_id: int | None
    problem: str

    def __str__(self) -> str:
        where = f"event seq {self.seq}" if self.seq is not None else "chain"
        row = f" (row id {self.event_id})" if self.event_id is not None else ""
        return f"client {self.client_id}: {where}{row}: {self.problem}"


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable in an audit payload")


def canonical_json(value: object) -> str:
    """Deterministic JSON: sorted keys, no whitespace, UTF-8 text, no NaN."""
    return json.dumps(
        value,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        default=_json_default,
    )


def sha256_hex(text: str) -> str:
    """SHA-256 of UTF-8 text, hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def iso_utc(at: datetime) -> str:
    """A UTC ISO 8601 timestamp with microseconds (what both backends keep)."""
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at!r}")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def event_hash(
    *, client_id: int, seq: int, type: str, payload_hash: str, created_at: datetime, prev_hash: str
) -> str:
    """The hash of one chain link."""
    body = canonical_json(
        {
            "client_id": client_id,
            "seq": seq,
            "type": type,
            "payload_hash": payload_hash,
            "created_at": iso_utc(created_at),
            "prev_hash": prev_hash,
        }
    )
    return sha256_hex(prev_hash + body)


async def lock_client(session: AsyncSession, client_id: int) -> Client:
    """Load the client row, locked for the rest of the transaction (PostgreSQL)."""
    stmt = (
        select(Client)
        .where(Client.id == client_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    client = (await session.exec(stmt)).one_or_none()
    if client is None:
        raise AuditError(f"client {client_id} does not exist")
    return client


async def append(
    session: AsyncSession,
    client_id: int,
    type: str,
    payload: Mapping[str, Any],
    *,
    at: datetime | None = None,
) -> AuditEvent:
    """Append one event to a client's chain inside the caller's transaction."""
    (event,) = await append_many(session, client_id, [(type, payload)], at=at)
    return event


async def append_many(
    session: AsyncSession,
    client_id: int,
    events: Sequence[tuple[str, Mapping[str, Any]]],
    *,
    at: datetime | None = None,
) -> list[AuditEvent]:
    """Append events in order, locking the client once. Flushes; the caller commits."""
    client = await lock_client(session, client_id)
    created_at = (at or utcnow()).astimezone(UTC)
    seq, prev = client.audit_seq, client.audit_head or GENESIS
    rows: list[AuditEvent] = []
    for type_, payload in events:
        seq += 1
        payload_text = canonical_json(dict(payload))
        payload_hash = sha256_hex(payload_text)
        digest = event_hash(
            client_id=client_id,
            seq=seq,
            type=type_,
            payload_hash=payload_hash,
            created_at=created_at,
            prev_hash=prev,
        )
        rows.append(
            AuditEvent(
                client_id=client_id,
                seq=seq,
                type=type_,
                payload=payload_text,
                payload_hash=payload_hash,
                prev_hash=prev,
                hash=digest,
                created_at=created_at,
            )
        )
        prev = digest
    client.audit_seq, client.audit_head = seq, prev
    session.add_all([*rows, client])
    await session.flush()
    return rows


async def tombstone(session: AsyncSession, event_id: int) -> None:
    """Erase an event's payload; its hash stays, so the chain still verifies."""
    event = await session.get(AuditEvent, event_id)
    if event is None:
        raise AuditError(f"audit event {event_id} does not exist")
    event.payload = None
    session.add(event)
    await session.flush()


def check_chain(
    client_id: int, head_seq: int, head_hash: str, events: Iterable[AuditEvent]
) -> Break | None:
    """The first broken link of one client's chain (events in seq order), or None."""
    expected, prev = 1, GENESIS
    last: AuditEvent | None = None
    for ev in events:

        def broken(problem: str, ev: AuditEvent = ev) -> Break:
            return Break(client_id, ev.seq, ev.id, problem)

        if ev.seq != expected:
            missing = f"{expected}" if ev.seq == expected + 1 else f"{expected}..{ev.seq - 1}"
            return broken(f"seq {missing} missing before this event: rows were deleted")
        if ev.seq > head_seq:
            return broken(
                f"beyond the chain head recorded for the client (seq {head_seq}): inserted"
            )
        if ev.payload is not None and sha256_hex(ev.payload) != ev.payload_hash:
            return broken("payload does not match its payload_hash: the payload was changed")
        if ev.prev_hash != prev:
            return broken(
                "prev_hash does not match the previous event's hash: inserted or changed"
            )
        digest = event_hash(
            client_id=ev.client_id,
            seq=ev.seq,
            type=ev.type,
            payload_hash=ev.payload_hash,
            created_at=ev.created_at,
            prev_hash=ev.prev_hash,
        )
        if digest != ev.hash or ev.client_id != client_id:
            return broken("hash does not match the event's content: the row was changed")
        expected, prev, last = expected + 1, ev.hash, ev
    if expected - 1 < head_seq:
        missing = f"{expected}" if expected == head_seq else f"{expected}..{head_seq}"
        return Break(
            client_id,
            expected,
            None,
            f"seq {missing} missing at the end of the chain (head is seq {head_seq}): deleted",
        )
    if last is not None and last.hash != head_hash:
        return Break(
            client_id,
            last.seq,
            last.id,
            "hash differs from the chain head recorded for the client",
        )
    return None


async def verify(session: AsyncSession, client_id: int | None = None) -> list[Break]:
    """Check every chain (or one client's); one Break per broken chain, first break only."""
    breaks: list[Break] = []
    clients_stmt = select(Client.id, Client.audit_seq, Client.audit_head).order_by(col(Client.id))
    if client_id is not None:
        clients_stmt = clients_stmt.where(Client.id == client_id)
    clients = (await session.exec(clients_stmt)).all()
    if client_id is not None and not clients:
        orphans = await session.exec(
            select(AuditEvent.id).where(AuditEvent.client_id == client_id).limit(1)
        )
        if orphans.first() is not None:
            breaks.append(Break(client_id, None, None, "events of a client row that is missing"))
        return breaks
    for cid, head_seq, head_hash in clients:
        assert cid is not None
        events = await session.exec(
            select(AuditEvent).where(AuditEvent.client_id == cid).order_by(col(AuditEvent.seq))
        )
        found = check_chain(cid, head_seq, head_hash, events.all())
        if found is not None:
            breaks.append(found)
    if client_id is None:
        known = select(Client.id)
        orphan_ids = await session.exec(
            select(AuditEvent.client_id)
            .where(col(AuditEvent.client_id).not_in(known))
            .distinct()
            .order_by(col(AuditEvent.client_id))
        )
        for cid in orphan_ids.all():
            breaks.append(Break(cid, None, None, "events of a client row that is missing"))
    return breaks
