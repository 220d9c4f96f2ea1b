"""The tables of the store (SQLModel). Times are UTC and timezone-aware on every backend.

Evidence tables (`message`, `decision`, `audit_event`) are append-only: corrections are new
rows. `conversation.state` and `inquiry.outcome` are the current view, rebuilt from evidence
if ever in doubt.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Dialect,
    Index,
    Text,
    UniqueConstraint,
    case,
    literal_column,
    text,
)
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel, col

#: Constraint names that are stable across backends, so SQLite batch migrations can find them.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, UTC, aware."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC that always reads back timezone-aware.

    PostgreSQL returns aware values from `timestamptz`; SQLite returns naive ones, which are
    UTC because only UTC is ever written. Naive values are refused on the way in: a naive time
    is a bug (whose clock?), not something to guess about.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware time")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# The `type: ignore[call-overload]` below: SQLModel's Field overloads do not cover
# sa_type + nullable + index together; the runtime accepts them.


class Client(SQLModel, table=True):
    """A person writing to the firm on one channel (a Telegram chat, ...)."""

    __table_args__ = (UniqueConstraint("channel", "external_id"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=32)
    external_id: str = Field(max_length=128)
    language: str | None = Field(default=None, max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_activity_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    #: The client asked for erasure: processing is restricted from then on.
    restricted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: Head of the client's audit chain (last seq and its hash). Kept in the same transaction
    #: as each append, so deleting the newest events is detected too, and the client row is the
    #: lock that serialises appends.
    audit_seq: int = Field(default=0)
    audit_head: str = Field(default="", max_length=64)


class Conversation(SQLModel, table=True):
    """The engine's state for one client (`ConversationState.to_dict()` as JSON)."""

    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="client.id", unique=True)
    state: str = Field(sa_type=Text)
    #: What the outbound gate knows of the client (`triage.domain.facts`, as JSON), established
    #: by the engine with the state; the outbox reads it at send time. NULL: nothing is known.
    facts: str | None = Field(default=None, sa_type=Text)
    #: Incremented on every save; a save that finds another version fails (optimistic check).
    version: int = Field(default=0)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Message(SQLModel, table=True):
    """A message in either direction, as it was received or sent."""

    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="client.id", index=True)
    direction: str = Field(max_length=3)  # "in" | "out"
    text: str = Field(sa_type=Text)
    #: The platform's own timestamp (Telegram `date`, Slack `event_time`), when there is one.
    platform_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: The update that carried an inbound message ("telegram:update:123").
    update_key: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Inquiry(SQLModel, table=True):
    """One client asking for one service; `outcome` is the current decision."""

    __table_args__ = (UniqueConstraint("client_id", "position"),)

    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="client.id")
    #: Index of the inquiry in the conversation state (0 = the first).
    position: int
    service: str | None = Field(default=None, max_length=32)
    outcome: str | None = Field(default=None, max_length=32)
    opened_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Decision(SQLModel, table=True):
    """A decision on an inquiry, by the bot or an officer; append-only."""

    id: int | None = Field(default=None, primary_key=True)
    inquiry_id: int = Field(foreign_key="inquiry.id", index=True)
    client_id: int = Field(foreign_key="client.id", index=True)
    outcome: str = Field(max_length=32)
    previous: str | None = Field(default=None, max_length=32)
    #: JSON list of rule ids ("R1", ...).
    rules: str = Field(sa_type=Text)
    ruleset: str = Field(max_length=64)
    #: JSON list of reasons a person can read.
    reasons: str = Field(sa_type=Text)
    decider: str = Field(max_length=16)  # "bot" | "officer"
    officer_id: str | None = Field(default=None, max_length=64)
    #: The officer's reason (required for officer decisions).
    reason: str | None = Field(default=None, sa_type=Text)
    country: str | None = Field(default=None, max_length=16)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class OutboxStatus(StrEnum):
    """Where an outbox row is on its way out; the values are what the `status` column stores."""

    #: Waiting to be due.
    PENDING = "pending"
    #: Claimed by a dispatcher under a lease.
    SENDING = "sending"
    SENT = "sent"
    #: The gate said no, for good.
    BLOCKED = "blocked"
    #: The gate said not yet: judged again after an officer decides.
    HELD = "held"
    #: Given up after failed sends (or judged too often without a result).
    DEAD = "dead"
    #: A follow-up made moot (a sales reply was sent after it was queued).
    CANCELLED = "cancelled"


#: The statuses of a row that may still go out (waiting, or being sent by a worker).
UNFINISHED_STATUSES = (OutboxStatus.PENDING, OutboxStatus.SENDING)


#: The due time of an unfinished (pending or sending) outbox row, NULL for a finished one. The
#: dispatcher's claim filters on it as well as on status and due_at: PostgreSQL collects
#: statistics for an expression index, so it knows that almost no unfinished row is due
#: (follow-ups wait days). From status and due_at alone it multiplies two selectivities (1 in
#: 6 rows unfinished, 5 in 6 rows due: sent rows are in the past) and, at 1 M clients,
#: expected 800 k due rows and scanned the table on every claim (1.2 s; BENCHMARKS.md).
_UNFINISHED_SQL = ", ".join(f"'{status.value}'" for status in UNFINISHED_STATUSES)
OPEN_DUE_AT_SQL = f"(CASE WHEN status IN ({_UNFINISHED_SQL}) THEN due_at END)"


def open_due_at(outbox: Any) -> Any:
    """OPEN_DUE_AT_SQL for `Outbox` or an alias of it, in a query.

    The statuses are literals, not parameters, so that the expression is the index's own and
    the planner uses its statistics (also in a prepared statement's generic plan).
    """
    unfinished = [literal_column(f"'{status.value}'") for status in UNFINISHED_STATUSES]
    return case((col(outbox.status).in_(unfinished), outbox.due_at))


class Outbox(SQLModel, table=True):
    """A client-bound message waiting for the gate and the dispatcher (the one way out)."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_status_due_at", "status", "due_at"),
        # An expression index for its statistics as much as for lookups: see OPEN_DUE_AT_SQL.
        Index("ix_outbox_open_due_at", text(OPEN_DUE_AT_SQL)),
    )

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(max_length=200, unique=True)
    client_id: int = Field(foreign_key="client.id", index=True)
    channel: str = Field(max_length=32)
    kind: str = Field(max_length=32)
    sender: str = Field(max_length=32)
    text: str = Field(sa_type=Text)
    #: [[label, callback data], ...]
    buttons: list[Any] = Field(default_factory=list, sa_type=JSON)
    #: The sender says it answers the client's last message.
    reply: bool = Field(default=False)
    #: The flow slot a bot question asks for.
    slot: str | None = Field(default=None, max_length=64)
    #: An `OutboxStatus` value.
    status: str = Field(default=OutboxStatus.PENDING.value, max_length=16)
    verdict: str | None = Field(default=None, max_length=16)
    verdict_reason: str | None = Field(default=None, sa_type=Text)
    attempts: int = Field(default=0)
    locked_by: str | None = Field(default=None, max_length=128)
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    due_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    #: Not before this time (a retry's backoff or a rate-limit deferral); NULL = at `due_at`.
    #: Kept apart from `due_at` so the time a message was meant for stays on record.
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: The last send failure, as the sender reported it.
    last_error: str | None = Field(default=None, sa_type=Text)
    #: A condition that cancels the row at send time ("sales_replied": a sales reply was sent
    #: after the row was queued). Stored on the row: the row, not the configuration, is the truth.
    unless: str | None = Field(default=None, max_length=32)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ProcessedUpdate(SQLModel, table=True):
    """An update or request already handled: its key makes redelivery a no-op."""

    __tablename__ = "processed_update"
    __table_args__ = (UniqueConstraint("source", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=32)
    key: str = Field(max_length=200)
    #: Indexed: a client's evidence pack and purge select their updates (migration 0004).
    client_id: int | None = Field(default=None, foreign_key="client.id", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AuditEvent(SQLModel, table=True):
    """One link of a client's hash chain (see `triage.store.audit`)."""

    __tablename__ = "audit_event"
    __table_args__ = (UniqueConstraint("client_id", "seq"),)

    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="client.id")
    seq: int
    type: str = Field(max_length=64)
    #: Canonical JSON of the payload; NULL once tombstoned (erasure). The chain keeps its hash.
    payload: str | None = Field(default=None, sa_type=Text)
    payload_hash: str = Field(max_length=64)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PendingApproval(SQLModel, table=True):
    """The first officer's approval of an escalated inquiry, waiting for a second (four-eyes).

    A working row, not evidence: the approval itself is an "officer_approval" audit event. The
    row goes when the second officer approves, or when the case is decided otherwise.
    """

    __tablename__ = "pending_approval"
    __table_args__ = (UniqueConstraint("client_id", "inquiry"),)

    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="client.id")
    #: Position of the inquiry in the conversation state.
    inquiry: int
    #: "approve_eu" | "approve_non_eu"
    action: str = Field(max_length=32)
    officer_id: str = Field(max_length=64)
    team_id: str = Field(default="", max_length=64)
    reason: str = Field(sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SlackThread(SQLModel, table=True):
    """A card about one inquiry posted to Slack (lead, case, decline notice), and its thread.

    The row is written with the card's outbox row, before the card is posted; `ts` is filled in
    when Slack has it. Card edits carry increasing versions, and an edit older than the one on
    screen is never applied (a retried edit must not bring back a stale card).
    """

    __tablename__ = "slack_thread"
    __table_args__ = (
        UniqueConstraint("client_id", "inquiry", "kind"),
        Index("ix_slack_thread_channel_ts", "channel", "ts"),
    )

    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="client.id")
    inquiry: int
    #: "lead" | "case" | "decline"
    kind: str = Field(max_length=16)
    #: The Slack channel id the card goes to.
    channel: str = Field(max_length=32)
    #: The card's Slack message ts (= the thread's ts), once posted.
    ts: str | None = Field(default=None, max_length=32)
    #: The newest card version queued, and the one Slack shows.
    queued_version: int = Field(default=1)
    shown_version: int = Field(default=0)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    posted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class SlackRelay(SQLModel, table=True):
    """A message typed in a Slack thread and queued for the client: which row, which thread."""

    __tablename__ = "slack_relay"

    id: int | None = Field(default=None, primary_key=True)
    outbox_id: int = Field(foreign_key="outbox.id", unique=True)
    thread_id: int = Field(foreign_key="slack_thread.id", index=True)
    user_id: str = Field(max_length=64)
    ts: str = Field(max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
