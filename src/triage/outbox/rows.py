"""Writing to the outbox and reading its reports, outside the dispatcher.

`enqueue` is the way in for every sender that is not the conversation engine (the engine's
messages are queued by `ConversationStore.handle` in the turn's transaction): a sales reply
relayed from Slack, an officer's message, a scheduled job. It writes the row and its
"outbound_queued" audit event in one transaction; the dedupe key makes a retried request a no-op.
Nothing here sends or judges: the dispatcher judges every row at send time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from triage.domain.codes import MessageKind, Sender
from triage.outbox.row import OutboxRow, queue
from triage.store import audit
from triage.store.db import SessionFactory, write_transaction
from triage.store.models import Outbox, OutboxStatus, utcnow

#: Channels whose rows go to staff (lead cards, case cards), not to a client: the client gate
#: does not apply to them. Every other channel is a client's and is gated (fail closed).
STAFF_CHANNELS = frozenset({"slack"})

#: Cancels a row at send time if a sales reply to the same client was sent after it was queued.
SALES_REPLIED = "sales_replied"
CANCEL_CONDITIONS = frozenset({SALES_REPLIED})

_DEDUPE_KEY_MAX = 200


class EnqueueError(ValueError):
    """A request the outbox refuses; the message says what was wrong."""


@dataclass(frozen=True)
class OutboundRequest:
    """A message some part of the product wants sent (the gate decides at send time)."""

    client_id: int
    text: str
    #: A `MessageKind` value for client messages; free for staff rows ("lead_card", ...).
    kind: str
    #: A `Sender` value for client messages ("sales", "compliance", "scheduler", "bot").
    sender: str
    #: Identifies the request: the same key twice queues once (a Slack event id, a job id).
    dedupe_key: str
    #: None: the client's own channel. A staff channel ("slack") for staff rows.
    channel: str | None = None
    buttons: tuple[tuple[str, str], ...] = ()
    #: The sender says it answers the client's last message (the gate checks the window).
    reply: bool = False
    #: Not before this time; None: now.
    due_at: datetime | None = None
    #: A cancel condition (see CANCEL_CONDITIONS).
    unless: str | None = None
    slot: str | None = None
    #: Where the request came from, for the evidence (a Slack user and ts, an officer id).
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Enqueued:
    """The row a request is in; `created` is False when the dedupe key was already queued."""

    outbox_id: int
    created: bool


@dataclass(frozen=True)
class DeadRow:
    """A row the dispatcher gave up on, for the operators' report."""

    outbox_id: int
    client_id: int
    channel: str
    kind: str
    sender: str
    attempts: int
    last_error: str | None
    due_at: datetime
    created_at: datetime


def _validate(request: OutboundRequest, channel: str, client_channel: str) -> None:
    if not request.dedupe_key or len(request.dedupe_key) > _DEDUPE_KEY_MAX:
        raise EnqueueError(f"dedupe_key must be 1 to {_DEDUPE_KEY_MAX} characters")
    if not request.text.strip():
        raise EnqueueError("text is empty: there is nothing to send")
    if request.unless is not None and request.unless not in CANCEL_CONDITIONS:
        known = ", ".join(sorted(CANCEL_CONDITIONS))
        raise EnqueueError(f"unless: {request.unless!r} is not a known condition ({known})")
    if channel in STAFF_CHANNELS:
        return
    if channel != client_channel:
        raise EnqueueError(
            f"client {request.client_id} is on {client_channel!r}, not {channel!r}: "
            "client messages go to the client's own channel"
        )
    try:
        Sender(request.sender)
        MessageKind(request.kind)
    except ValueError as exc:
        raise EnqueueError(f"not a client message: {exc}") from None


async def enqueue_in(
    session: AsyncSession, request: OutboundRequest, *, now: datetime
) -> Enqueued:
    """Queue a message inside the caller's transaction (row + "outbound_queued" event)."""
    client = await audit.lock_client(session, request.client_id)
    channel = request.channel or client.channel
    _validate(request, channel, client.channel)
    row = OutboxRow(
        dedupe_key=request.dedupe_key,
        client_id=request.client_id,
        channel=channel,
        kind=request.kind,
        sender=request.sender,
        text=request.text,
        due_at=request.due_at or now,
        created_at=now,
        buttons=tuple((str(b[0]), str(b[1])) for b in request.buttons),
        reply=request.reply,
        slot=request.slot,
        unless=request.unless,
        context=request.context,
    )
    written = await queue(await session.connection(), [row])
    if not written:
        found = (
            await session.exec(
                select(Outbox.id, Outbox.client_id).where(Outbox.dedupe_key == request.dedupe_key)
            )
        ).one()
        existing_id, existing_client = found
        if existing_client != request.client_id:
            raise EnqueueError(
                f"dedupe_key {request.dedupe_key!r} is already used for another client"
            )
        assert existing_id is not None
        return Enqueued(existing_id, created=False)
    new_id = written[0].outbox_id
    event, payload = row.queued_event(new_id)
    await audit.append(session, request.client_id, event, payload, at=now)
    return Enqueued(new_id, created=True)


async def enqueue(
    sessions: SessionFactory, request: OutboundRequest, *, now: datetime | None = None
) -> Enqueued:
    """Queue a message in its own transaction (row + "outbound_queued" event)."""
    async with sessions() as session, write_transaction(session):
        return await enqueue_in(session, request, now=now or utcnow())


async def release_held_in(
    session: AsyncSession, client_id: int, *, now: datetime, by: str, reason: str = ""
) -> list[int]:
    """Put a client's held rows back in the queue, inside the caller's transaction.

    Call it in the transaction that records an officer's decision: the dispatcher then judges
    the rows again against the new facts. The attempt count starts again from zero.
    """
    await audit.lock_client(session, client_id)
    stmt = (
        select(Outbox)
        .where(Outbox.client_id == client_id, Outbox.status == OutboxStatus.HELD.value)
        .order_by(col(Outbox.id))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    rows = list((await session.exec(stmt)).all())
    events: list[tuple[str, Mapping[str, Any]]] = []
    for row in rows:
        events.append(
            (
                "outbound_released",
                {
                    "outbox_id": row.id,
                    "by": by,
                    "reason": reason,
                    "held_because": row.verdict_reason,
                },
            )
        )
        row.status = OutboxStatus.PENDING.value
        row.attempts = 0
        row.next_attempt_at = None
        row.locked_by = None
        row.locked_until = None
        session.add(row)
    if events:
        await audit.append_many(session, client_id, events, at=now)
    return [row.id for row in rows if row.id is not None]


async def release_held(
    sessions: SessionFactory,
    client_id: int,
    *,
    by: str,
    reason: str = "",
    now: datetime | None = None,
) -> list[int]:
    """Put a client's held rows back in the queue in a transaction of their own."""
    async with sessions() as session, write_transaction(session):
        return await release_held_in(session, client_id, now=now or utcnow(), by=by, reason=reason)


async def dead_rows(
    sessions: SessionFactory, *, client_id: int | None = None, limit: int = 100
) -> list[DeadRow]:
    """The rows given up on, oldest first (for the operators)."""
    stmt = select(Outbox).where(Outbox.status == OutboxStatus.DEAD.value)
    if client_id is not None:
        stmt = stmt.where(Outbox.client_id == client_id)
    stmt = stmt.order_by(col(Outbox.created_at), col(Outbox.id)).limit(limit)
    async with sessions() as session:
        rows = (await session.exec(stmt)).all()
    return [
        DeadRow(
            outbox_id=r.id,
            client_id=r.client_id,
            channel=r.channel,
            kind=r.kind,
            sender=r.sender,
            attempts=r.attempts,
            last_error=r.last_error,
            due_at=r.due_at,
            created_at=r.created_at,
        )
        for r in rows
        if r.id is not None
    ]
