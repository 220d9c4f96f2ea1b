"""One outbox row: the type every sender builds, and `queue`, the one way to write rows.

A turn's bot messages, its follow-ups, a sales reply relayed from Slack, an officer's message
and a scheduled job all become an `OutboxRow` and are written by `queue`; each written row gets
one "outbound_queued" audit event of one shape (`OutboxRow.queued_event`). Nothing here sends or
judges: the dispatcher judges every row at send time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from triage.store import audit
from triage.store.models import Outbox, OutboxStatus

__all__ = ["OutboxRow", "OutboxStatus", "Queued", "queue"]

_OUTBOX = Outbox.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class OutboxRow:
    """A message on its way out, as queued (the gate judges it when it is due)."""

    #: Identifies the request: the same key twice queues once (an update ref, a job id).
    dedupe_key: str
    client_id: int
    #: The client's channel, or a staff channel ("slack") for staff rows.
    channel: str
    #: A `MessageKind` value for client messages; free for staff rows ("lead_card", ...).
    kind: str
    #: A `Sender` value for client messages ("bot", "sales", "compliance", "scheduler").
    sender: str
    text: str
    #: Not before this time.
    due_at: datetime
    created_at: datetime
    buttons: tuple[tuple[str, str], ...] = ()
    #: The sender says it answers the client's last message (the gate checks the window).
    reply: bool = False
    #: The flow slot a bot question asks for.
    slot: str | None = None
    #: A cancel condition checked at send time (see `triage.outbox.rows.CANCEL_CONDITIONS`).
    unless: str | None = None
    #: Where the row came from, for the evidence (an update ref, a Slack user and ts).
    context: Mapping[str, Any] = field(default_factory=dict)

    def columns(self) -> dict[str, Any]:
        """The `outbox` column values of the new row (pending, never attempted)."""
        return {
            "dedupe_key": self.dedupe_key,
            "client_id": self.client_id,
            "channel": self.channel,
            "kind": self.kind,
            "sender": self.sender,
            "text": self.text,
            "buttons": [list(b) for b in self.buttons],
            "reply": self.reply,
            "slot": self.slot,
            "status": OutboxStatus.PENDING.value,
            "attempts": 0,
            "due_at": self.due_at,
            "unless": self.unless,
            "created_at": self.created_at,
        }

    def queued_event(self, outbox_id: int) -> tuple[str, dict[str, Any]]:
        """The "outbound_queued" audit event of this row once written as `outbox_id`."""
        return (
            "outbound_queued",
            {
                "outbox_id": outbox_id,
                "dedupe_key": self.dedupe_key,
                "channel": self.channel,
                "kind": self.kind,
                "sender": self.sender,
                "slot": self.slot,
                "text": self.text,
                "buttons": [list(b) for b in self.buttons],
                "reply": self.reply,
                "due_at": audit.iso_utc(self.due_at),
                "unless": self.unless,
                "context": dict(self.context),
            },
        )


@dataclass(frozen=True)
class Queued:
    """A row `queue` wrote, with its id."""

    row: OutboxRow
    outbox_id: int


_QUEUE: dict[str, Any] = {}


def _statement(dialect: str) -> Any:
    """The multi-row INSERT, built once per backend (compiled once, then only run)."""
    found = _QUEUE.get(dialect)
    if found is None:
        if dialect == "postgresql":
            insert: Any = pg_insert
        elif dialect == "sqlite":
            insert = sqlite_insert
        else:
            raise ValueError(f"database {dialect!r} is not supported (use SQLite or PostgreSQL)")
        found = _QUEUE[dialect] = (
            insert(_OUTBOX)
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(_OUTBOX.c.id, _OUTBOX.c.dedupe_key)
        )
    return found


async def queue(conn: AsyncConnection, rows: Sequence[OutboxRow]) -> list[Queued]:
    """Write rows in one statement, in the caller's transaction; returns the rows written.

    A row whose dedupe key is already queued is left out (a redelivered request queues once).
    The caller appends each written row's `queued_event` to the client's audit chain.
    """
    if not rows:
        return []
    result = await conn.execute(_statement(conn.dialect.name), [r.columns() for r in rows])
    # RETURNING order is not guaranteed (SQLite): match the ids by dedupe_key (unique).
    ids = {key: row_id for row_id, key in result.all()}
    return [Queued(r, ids[r.dedupe_key]) for r in rows if r.dedupe_key in ids]
