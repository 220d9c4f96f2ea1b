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
A caller that already holds the lock passes its client row to `append_many` (one statement
less); the events go in with one multi-row INSERT, and the head moves with one UPDATE.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any, Protocol

from sqlalchemy import bindparam, cast, insert, literal, union_all, update
from sqlalchemy import null as null_
from sqlalchemy import select as sa_select
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from triage.store.models import AuditEvent, Client, utcnow

#: `prev_hash` of the first event of every chain.
GENESIS = "0" * 64


_EVENTS = AuditEvent.__table__  # type: ignore[attr-defined]
_CLIENTS = Client.__table__  # type: ignore[attr-defined]
#: Built once (compiled once): RETURNING order is not guaranteed on SQLite, so ids are
#: matched by seq, which is unique per client.
_INSERT_EVENTS = insert(_EVENTS).returning(_EVENTS.c.id, _EVENTS.c.seq)
#: UPDATE client SET <columns> WHERE id = :client_id, one per set of columns.
_HEAD_UPDATES: dict[frozenset[str], Any] = {}


def _head_update(columns: frozenset[str]) -> Any:
    stmt = _HEAD_UPDATES.get(columns)
    if stmt is None:
        stmt = _HEAD_UPDATES[columns] = (
            update(_CLIENTS)
            .where(_CLIENTS.c.id == bindparam("client_id"))
            .values({name: bindparam(name) for name in sorted(columns)})
        )
    return stmt


class AuditError(Exception):
    """The chain cannot be appended to (for example, the client does not exist)."""


class ChainHolder(Protocol):
    """A client row whose lock the caller holds: its id and chain head (a `Client` or alike)."""

    id: int | None
    audit_seq: int
    audit_head: str


@dataclass(frozen=True)
class Appended:
    """One event as `append_many` wrote it (the row's columns, with its new id)."""

    id: int
    client_id: int
    seq: int
    type: str
    payload: str | None
    payload_hash: str
    prev_hash: str
    hash: str
    created_at: datetime


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


#: Built once: every writer of a client's data starts with it.
_LOCK_CLIENT = (
    select(Client)
    .where(Client.id == bindparam("client_id"))
    .with_for_update()
    .execution_options(populate_existing=True)
)


async def lock_client(session: AsyncSession, client_id: int) -> Client:
    """Load the client row, locked for the rest of the transaction (PostgreSQL)."""
    client = (await session.exec(_LOCK_CLIENT, params={"client_id": client_id})).one_or_none()
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
    client: ChainHolder | None = None,
) -> Appended:
    """Append one event to a client's chain inside the caller's transaction."""
    (event,) = await append_many(session, client_id, [(type, payload)], at=at, client=client)
    return event


async def append_many(
    session: AsyncSession,
    client_id: int,
    events: Sequence[tuple[str, Mapping[str, Any]]],
    *,
    at: datetime | None = None,
    client: ChainHolder | None = None,
    client_values: Mapping[str, Any] | None = None,
) -> list[Appended]:
    """Append events in order; the caller commits.

    `client`: the client's row, already locked by the caller in this transaction (its chain
    head is read from it, and moved on it); without it the row is locked here.
    `client_values`: other columns of the client row to set in the same UPDATE as the head.
    """
    if client is None:
        client = await lock_client(session, client_id)
    elif client.id != client_id:
        raise AuditError(f"client row {client.id} passed for client {client_id}")
    created_at = (at or utcnow()).astimezone(UTC)
    seq, prev = client.audit_seq, client.audit_head or GENESIS
    rows: list[dict[str, Any]] = []
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
            {
                "client_id": client_id,
                "seq": seq,
                "type": type_,
                "payload": payload_text,
                "payload_hash": payload_hash,
                "prev_hash": prev,
                "hash": digest,
                "created_at": created_at,
            }
        )
        prev = digest
    if not rows and not client_values:
        return []
    conn = await session.connection()
    ids: dict[int, int] = {}
    if rows:
        # One statement for all rows (multi-row VALUES).
        result = await conn.execute(_INSERT_EVENTS, rows)
        ids = {row_seq: row_id for row_id, row_seq in result.all()}
    values = {**(client_values or {}), "audit_seq": seq, "audit_head": prev}
    await conn.execute(_head_update(frozenset(values)), {**values, "client_id": client_id})
    _set_loaded(client, values)
    return [Appended(id=ids[r["seq"]], **r) for r in rows]


def _set_loaded(client: ChainHolder, values: Mapping[str, Any]) -> None:
    """Keep the caller's row object in step with what was written, without a second UPDATE."""
    if isinstance(client, Client):
        for key, value in values.items():
            set_committed_value(client, key, value)
    else:
        for key, value in values.items():
            setattr(client, key, value)


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


#: Rows fetched per round trip when chains are read.
_VERIFY_BATCH = 5_000


def _verify_statement(client_id: int | None) -> Any:
    """Chain heads and events in ONE statement, so both come from one snapshot.

    Read in two statements, a chain appended to between them looks broken: on PostgreSQL's
    READ COMMITTED every statement sees the data committed when it starts, so the bot
    writing while `triage audit verify` runs gave false "inserted" breaks. One statement sees
    one snapshot on every backend and isolation level. Each client's head row (`kind` 0)
    comes first, then its events (`kind` 1) in seq order.
    """
    ev, cl = _EVENTS.c, _CLIENTS.c

    def null(column: Any) -> Any:
        return cast(null_(), column.type)

    heads = sa_select(
        literal(0).label("kind"),
        cl.id.label("client_id"),
        null(ev.id).label("id"),
        cl.audit_seq.label("seq"),
        null(ev.type).label("type"),
        null(ev.payload).label("payload"),
        null(ev.payload_hash).label("payload_hash"),
        null(ev.prev_hash).label("prev_hash"),
        cl.audit_head.label("hash"),
        null(ev.created_at).label("created_at"),
    )
    events = sa_select(
        literal(1).label("kind"),
        ev.client_id,
        ev.id,
        ev.seq,
        ev.type,
        ev.payload,
        ev.payload_hash,
        ev.prev_hash,
        ev.hash,
        ev.created_at,
    )
    if client_id is not None:
        heads = heads.where(cl.id == client_id)
        events = events.where(ev.client_id == client_id)
    both = union_all(heads, events).subquery("chain")
    return (
        sa_select(both)
        .order_by(both.c.client_id, both.c.kind, both.c.seq)
        .execution_options(yield_per=_VERIFY_BATCH)
    )


async def verify(session: AsyncSession, client_id: int | None = None) -> list[Break]:
    """Check every chain (or one client's); one Break per broken chain, first break only.

    One ordered pass over heads and events together (see `_verify_statement`): each client's
    run of events is checked against the head on its client row. Events whose client row is
    missing, and client rows whose events are all missing, are found in the same pass.
    """
    found: list[Break] = []
    orphans: list[Break] = []
    current: int | None = None
    head: tuple[int, str] | None = None
    run: list[Any] = []

    def check() -> None:
        if current is None:
            return
        if head is None:
            orphans.append(Break(current, None, None, "events of a client row that is missing"))
            return
        broken = check_chain(current, *head, run)
        if broken is not None:
            found.append(broken)

    result = await session.stream(_verify_statement(client_id))
    async for partition in result.partitions(_VERIFY_BATCH):
        for row in partition:
            if row.client_id != current:
                check()
                current, head, run = row.client_id, None, []
            if row.kind == 0:
                head = (row.seq, row.hash)
            else:
                run.append(row)
    check()
    return found + orphans
