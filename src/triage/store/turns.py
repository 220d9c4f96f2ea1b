"""The rows one client event touches, read and written with SQLAlchemy Core statements.

The statements are built once per backend (`turn_statements`) and then only run with
parameters: built per call, each would be constructed, coerced and hashed for the compiled
cache again on every turn. The service layer's `ConversationStore` runs them in its
transaction; nothing here decides anything or knows the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import make_transient_to_detached
from sqlmodel.ext.asyncio.session import AsyncSession

from triage.store.models import (
    Client,
    Conversation,
    Decision,
    Inquiry,
    Message,
    ProcessedUpdate,
)

# The turn writes through SQLAlchemy Core on the session's connection: one statement per row
# set, no unit-of-work flushes (the ORM objects of these rows were never read back).
CLIENT_TABLE = Client.__table__  # type: ignore[attr-defined]
CONVERSATION_TABLE = Conversation.__table__  # type: ignore[attr-defined]
MESSAGE_TABLE = Message.__table__  # type: ignore[attr-defined]
INQUIRY_TABLE = Inquiry.__table__  # type: ignore[attr-defined]
DECISION_TABLE = Decision.__table__  # type: ignore[attr-defined]
PROCESSED_TABLE = ProcessedUpdate.__table__  # type: ignore[attr-defined]


class TurnStatements:
    """The turn's statements, built once per backend and run with parameters only.

    Built per call, each statement would be constructed, coerced and hashed for the compiled
    cache again on every turn; these objects are compiled once and then reused.
    """

    def __init__(self, dialect: str) -> None:
        if dialect == "postgresql":
            upsert: Any = pg_insert
        elif dialect == "sqlite":
            upsert = sqlite_insert
        else:
            raise ValueError(f"database {dialect!r} is not supported (use SQLite or PostgreSQL)")
        # Create the client if new, and lock its row, in one statement: on PostgreSQL
        # ON CONFLICT DO UPDATE locks the existing row (the update sets a column to its own
        # value); SQLite's transaction holds the write lock already.
        self.client = (
            upsert(CLIENT_TABLE)
            .on_conflict_do_update(
                index_elements=["channel", "external_id"],
                set_={"last_activity_at": CLIENT_TABLE.c.last_activity_at},
            )
            .returning(*CLIENT_TABLE.c)
        )
        self.claim = (
            upsert(PROCESSED_TABLE)
            .on_conflict_do_nothing(index_elements=["source", "key"])
            .returning(PROCESSED_TABLE.c.id)
        )
        self.conversation = (
            select(
                CONVERSATION_TABLE.c.id,
                CONVERSATION_TABLE.c.state,
                CONVERSATION_TABLE.c.version,
                CONVERSATION_TABLE.c.facts,
            )
            .where(CONVERSATION_TABLE.c.client_id == bindparam("client_id"))
            .with_for_update()
        )
        self.new_conversation = insert(CONVERSATION_TABLE).returning(CONVERSATION_TABLE.c.id)
        self.save_state = (
            update(CONVERSATION_TABLE)
            .where(
                CONVERSATION_TABLE.c.id == bindparam("conversation_id"),
                CONVERSATION_TABLE.c.version == bindparam("old_version"),
            )
            .values(
                state=bindparam("state"),
                facts=bindparam("facts"),
                version=bindparam("version"),
                updated_at=bindparam("updated_at"),
            )
        )
        self.message = insert(MESSAGE_TABLE).returning(MESSAGE_TABLE.c.id)
        inquiry = upsert(INQUIRY_TABLE)
        self.inquiry = inquiry.on_conflict_do_update(
            index_elements=["client_id", "position"],
            set_={"outcome": inquiry.excluded.outcome, "updated_at": inquiry.excluded.updated_at},
        ).returning(INQUIRY_TABLE.c.id)
        self.decision = insert(DECISION_TABLE).returning(DECISION_TABLE.c.id)


_STATEMENTS: dict[str, TurnStatements] = {}


def turn_statements(conn: AsyncConnection) -> TurnStatements:
    """The turn's statements for the backend of `conn`."""
    name = conn.dialect.name
    found = _STATEMENTS.get(name)
    if found is None:
        found = _STATEMENTS[name] = TurnStatements(name)
    return found


class ConcurrentUpdateError(Exception):
    """The conversation changed under us although it was locked: a bug, never retried silently."""


@dataclass
class ClientRow:
    """The client row as the turn locked it (the columns of `Client`, without the ORM)."""

    id: int
    channel: str
    external_id: str
    language: str | None
    created_at: datetime
    last_activity_at: datetime
    restricted_at: datetime | None
    audit_seq: int
    audit_head: str

    def orm(self, session: AsyncSession) -> Client:
        """The same row as a `Client` of the session, without reading it again."""
        found = session.sync_session.identity_map.get(
            session.sync_session.identity_key(Client, self.id)  # type: ignore[arg-type]
        )
        if isinstance(found, Client):
            return found
        client = Client(
            id=self.id,
            channel=self.channel,
            external_id=self.external_id,
            language=self.language,
            created_at=self.created_at,
            last_activity_at=self.last_activity_at,
            restricted_at=self.restricted_at,
            audit_seq=self.audit_seq,
            audit_head=self.audit_head,
        )
        make_transient_to_detached(client)
        session.add(client)
        return client


@dataclass(frozen=True)
class ConversationRow:
    """The conversation row as the turn locked it."""

    id: int
    state: str
    version: int
    #: The recipient's facts as stored (JSON), None before the first turn.
    facts: str | None
