"""The use case "handle a client event": one event, handled exactly once, in one transaction.

`ConversationStore.handle` claims the update key, loads the conversation under a lock, runs the
pure engine, and commits the new state together with the evidence (the inbound message, one
audit event per engine event, decision rows, one audit event per queued message) and the outbox
rows. Nothing is sent here: the outbox dispatcher sends, through the gate.

Per-client serialisation:
- PostgreSQL: the client row is locked first, then the conversation row (`SELECT ... FOR
  UPDATE`). Every writer of a client's data takes the client row lock first, so two workers
  never interleave one conversation and never deadlock on it. The client row is created or
  locked by one `INSERT ... ON CONFLICT DO UPDATE ... RETURNING` (the update sets a column to
  its own value: it only takes the row lock), so two first messages of the same client cannot
  both create it.
- SQLite: every transaction begins with `BEGIN IMMEDIATE` (see `triage.store.db`), i.e. holds
  the single database write lock from its first statement; writers queue, across processes too.
  Within one process the store's writers first queue on an asyncio.Lock per database
  (`write_transaction`), in order, instead of sleep-polling in SQLite's busy handler.

The turn's rows are written with SQLAlchemy Core statements built once (`store.turns`): the
outbox rows and the audit events with one multi-row INSERT each, the client row's activity and
chain head with one UPDATE (`audit.append_many` with the row the turn locked).

Redelivery: the `(source, key)` of the update is inserted with `ON CONFLICT DO NOTHING` in the
same transaction. If it already exists, `handle` returns None and writes nothing. A concurrent
duplicate waits for the first transaction (row lock / write lock) and then sees the key.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel.ext.asyncio.session import AsyncSession

from triage.domain.codes import Sender
from triage.domain.facts import facts_to_dict
from triage.domain.gate import RecipientFacts
from triage.flows.engine import (
    ClientEvent,
    ConversationState,
    DecisionEvent,
    Engine,
    TurnResult,
)
from triage.outbox.followups import FollowUpRule, followups_after_turn, load_followups
from triage.outbox.row import OutboxRow, Queued, queue
from triage.service.events import StaffNotifications, TurnDecided
from triage.store import audit
from triage.store.db import SessionFactory, write_transaction
from triage.store.models import (
    utcnow,
)
from triage.store.turns import (
    CLIENT_TABLE,
    CONVERSATION_TABLE,
    ClientRow,
    ConcurrentUpdateError,
    ConversationRow,
    turn_statements,
)


@dataclass(frozen=True)
class HandleResult:
    """What one handled update committed."""

    client_id: int
    #: The conversation's version after this turn.
    version: int
    turn: TurnResult
    outbox_ids: tuple[int, ...]
    audit_event_ids: tuple[int, ...]
    decision_ids: tuple[int, ...]


@dataclass(frozen=True)
class _Recorded:
    """A decision row written by the turn."""

    event: DecisionEvent
    id: int
    inquiry_id: int


def _aware(value: str | None, default: datetime) -> datetime:
    if not value:
        return default
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return default
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _command_name(text: str) -> str:
    word = text.strip().split(maxsplit=1)[0] if text.strip() else ""
    return word.lstrip("/").split("@", 1)[0].lower()


class ConversationStore:
    """Runs the engine on stored conversations; one transaction per client event."""

    def __init__(
        self,
        sessions: SessionFactory,
        *,
        clock: Callable[[], datetime] = utcnow,
        followups: Sequence[FollowUpRule] | None = None,
        staff: StaffNotifications | None = None,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        #: Follow-up sequences queued with a decision (None: flows/followups.yaml; () for none).
        self._followups = load_followups() if followups is None else tuple(followups)
        #: Told of each turn in its transaction, after its evidence (staff cards in Slack).
        self._staff = staff

    # --- reading ----------------------------------------------------------------------------

    async def client_id(self, channel: str, external_id: str) -> int | None:
        """The client's id, or None for someone who never wrote."""
        async with self._sessions() as session:
            stmt = select(CLIENT_TABLE.c.id).where(
                CLIENT_TABLE.c.channel == channel, CLIENT_TABLE.c.external_id == external_id
            )
            conn = await session.connection()
            found: int | None = (await conn.execute(stmt)).scalar_one_or_none()
            return found

    async def state(self, channel: str, external_id: str) -> ConversationState | None:
        """The stored conversation state, or None for someone who never wrote."""
        async with self._sessions() as session:
            stmt = (
                select(CONVERSATION_TABLE.c.state)
                .join(CLIENT_TABLE, CLIENT_TABLE.c.id == CONVERSATION_TABLE.c.client_id)
                .where(
                    CLIENT_TABLE.c.channel == channel, CLIENT_TABLE.c.external_id == external_id
                )
            )
            conn = await session.connection()
            raw = (await conn.execute(stmt)).scalar_one_or_none()
        return None if raw is None else ConversationState.from_dict(json.loads(raw))

    # --- the turn ---------------------------------------------------------------------------

    async def handle(
        self,
        *,
        source: str,
        update_key: str,
        channel: str,
        external_id: str,
        event: ClientEvent,
        engine: Engine,
    ) -> HandleResult | None:
        """Handle one client event exactly once; None when the update was already handled."""
        now = self._clock()
        async with self._sessions() as session, write_transaction(session):
            conn = await session.connection()
            client = await self._lock_or_create_client(conn, channel, external_id, now)
            if not await self._claim(conn, source, update_key, client.id, now):
                return None
            conversation = await self._lock_or_create_conversation(conn, client.id, now)
            state = ConversationState.from_dict(json.loads(conversation.state))
            if event.kind == "command":
                turn = engine.command(state, _command_name(event.text), event.at)
            else:
                turn = engine.handle(state, event)
            ref = f"{source}:{update_key}"

            client_values: dict[str, Any] = {"last_activity_at": now}
            if client.language is None and turn.state.language:
                client_values["language"] = turn.state.language
            if turn.state.restricted and client.restricted_at is None:
                client_values["restricted_at"] = now
            for key, value in client_values.items():
                setattr(client, key, value)

            text = event.text or event.button or ""
            platform_at = event.at if event.at.tzinfo else event.at.replace(tzinfo=UTC)
            message = {"text": text, "platform_at": platform_at, "update_key": ref}
            message_id = (
                await conn.execute(
                    turn_statements(conn).message,
                    {"client_id": client.id, "direction": "in", "created_at": now, **message},
                )
            ).scalar_one()
            decisions = await self._record_decisions(conn, client.id, turn, now)
            recipient = engine.recipient_facts(turn.state)
            rows = await self._turn_rows(
                session, client, channel, turn, engine, recipient, ref=ref, now=now
            )
            outbox = await queue(conn, rows)

            events = self._evidence(
                event, ref, message_id, text, platform_at, turn, decisions, outbox
            )
            appended = await audit.append_many(
                session, client.id, events, at=now, client=client, client_values=client_values
            )
            if self._staff is not None:
                decided = TurnDecided(client.orm(session), turn, event, ref, now)
                await self._staff.turn_decided(session, decided)
            facts = json.dumps(facts_to_dict(recipient))
            version = await self._save_state(conn, conversation, turn.state, facts, now)
        return HandleResult(
            client_id=client.id,
            version=version,
            turn=turn,
            outbox_ids=tuple(q.outbox_id for q in outbox),
            audit_event_ids=tuple(r.id for r in appended),
            decision_ids=tuple(d.id for d in decisions),
        )

    async def _turn_rows(
        self,
        session: AsyncSession,
        client: ClientRow,
        channel: str,
        turn: TurnResult,
        engine: Engine,
        recipient: RecipientFacts,
        *,
        ref: str,
        now: datetime,
    ) -> list[OutboxRow]:
        """The turn's outbox rows: the bot's messages, then the follow-ups its decisions call
        for (judged by the gate with the facts after the turn before they are queued)."""
        context = {"update": ref}
        rows = [
            OutboxRow(
                dedupe_key=f"{ref}:{i}",
                client_id=client.id,
                channel=channel,
                kind=intent.kind.value,
                sender=Sender.BOT.value,
                text=intent.text,
                due_at=now,
                created_at=now,
                buttons=intent.buttons,
                reply=True,
                slot=intent.slot,
                context=context,
            )
            for i, intent in enumerate(turn.outbound)
        ]
        rows += await followups_after_turn(
            session,
            client_id=client.id,
            channel=channel,
            decided=[(de.inquiry, de.decision.outcome) for de in turn.decisions],
            facts=replace(recipient, restricted=True) if client.restricted_at else recipient,
            language=turn.state.language or client.language,
            profile=engine.profile,
            rules=self._followups,
            now=now,
            context=context,
        )
        return rows

    async def seed_crm(
        self, *, channel: str, external_id: str, crm: Sequence[Mapping[str, Any]]
    ) -> int:
        """Record firm-side contacts from the CRM before the person writes (DOMAIN.md R7).

        Each contact ({channel, date YYYY-MM-DD, note}) becomes a fact of the conversation
        that the policy weighs, and an audit event. Returns the client id.
        """
        now = self._clock()
        contacts = [
            {
                "channel": str(c.get("channel", "?")),
                "date": str(c["date"]),
                "note": str(c.get("note", "")),
            }
            for c in crm
        ]
        async with self._sessions() as session, write_transaction(session):
            conn = await session.connection()
            client = await self._lock_or_create_client(conn, channel, external_id, now)
            conversation = await self._lock_or_create_conversation(conn, client.id, now)
            state = ConversationState.from_dict(json.loads(conversation.state))
            known = {(c["channel"], c["date"]) for c in state.crm}
            new = [c for c in contacts if (c["channel"], c["date"]) not in known]
            if not new:
                return client.id
            state.crm.extend(new)
            await audit.append(
                session,
                client.id,
                "crm_contacts_imported",
                {"contacts": new},
                at=now,
                client=client,
            )
            await self._save_state(conn, conversation, state, conversation.facts, now)
            return client.id

    async def fill_missing_facts(self, engine: Engine, *, batch: int = 500) -> int:
        """Store the recipient's facts of conversations saved before they were stored with each
        turn (migration 0006); returns how many were filled. Until then the gate holds their
        rows (an unknown recipient). A conversation a turn saves meanwhile is left to the turn.
        """
        filled = 0
        while True:
            async with self._sessions() as session, write_transaction(session):
                conn = await session.connection()
                found = (
                    await conn.execute(
                        select(
                            CONVERSATION_TABLE.c.id,
                            CONVERSATION_TABLE.c.state,
                            CONVERSATION_TABLE.c.version,
                        )
                        .where(CONVERSATION_TABLE.c.facts.is_(None))
                        .order_by(CONVERSATION_TABLE.c.id)
                        .limit(batch)
                    )
                ).all()
                for conversation_id, raw, version in found:
                    state = ConversationState.from_dict(json.loads(raw))
                    facts = json.dumps(facts_to_dict(engine.recipient_facts(state)))
                    await conn.execute(
                        update(CONVERSATION_TABLE)
                        .where(
                            CONVERSATION_TABLE.c.id == conversation_id,
                            CONVERSATION_TABLE.c.version == version,
                            CONVERSATION_TABLE.c.facts.is_(None),
                        )
                        .values(facts=facts)
                    )
                filled += len(found)
            if len(found) < batch:
                return filled

    # --- steps ------------------------------------------------------------------------------

    async def _lock_or_create_client(
        self, conn: AsyncConnection, channel: str, external_id: str, now: datetime
    ) -> ClientRow:
        """Create the client if new, lock its row, read it: one statement.

        Two first messages of one client may race here (PostgreSQL): one inserts, the other
        waits for it (unique index) and then locks the row it made.
        """
        values = {
            "channel": channel,
            "external_id": external_id,
            "language": None,
            "created_at": now,
            "last_activity_at": now,
            "restricted_at": None,
            "audit_seq": 0,
            "audit_head": "",
        }
        row = (await conn.execute(turn_statements(conn).client, values)).one()
        return ClientRow(**row._mapping)

    async def _claim(
        self, conn: AsyncConnection, source: str, key: str, client_id: int, now: datetime
    ) -> bool:
        params = {"source": source, "key": key, "client_id": client_id, "created_at": now}
        found = await conn.execute(turn_statements(conn).claim, params)
        return found.scalar_one_or_none() is not None

    async def _lock_or_create_conversation(
        self, conn: AsyncConnection, client_id: int, now: datetime
    ) -> ConversationRow:
        statements = turn_statements(conn)
        found = (
            await conn.execute(statements.conversation, {"client_id": client_id})
        ).one_or_none()
        if found is not None:
            return ConversationRow(*found)
        # The client row is locked, so nobody else can be creating this conversation.
        state = json.dumps(ConversationState().to_dict())
        new_id = (
            await conn.execute(
                statements.new_conversation,
                {"client_id": client_id, "state": state, "version": 0, "updated_at": now},
            )
        ).scalar_one()
        return ConversationRow(new_id, state, 0, None)

    async def _save_state(
        self,
        conn: AsyncConnection,
        conversation: ConversationRow,
        state: ConversationState,
        facts: str | None,
        now: datetime,
    ) -> int:
        version = conversation.version + 1
        result = await conn.execute(
            turn_statements(conn).save_state,
            {
                "conversation_id": conversation.id,
                "old_version": conversation.version,
                "state": json.dumps(state.to_dict(), ensure_ascii=False),
                "facts": facts,
                "version": version,
                "updated_at": now,
            },
        )
        if result.rowcount != 1:
            raise ConcurrentUpdateError(
                f"conversation {conversation.id} changed while locked (version {version - 1})"
            )
        return version

    async def _record_decisions(
        self, conn: AsyncConnection, client_id: int, turn: TurnResult, now: datetime
    ) -> list[_Recorded]:
        """Per decision: its inquiry row (created or its outcome moved), then the decision."""
        recorded: list[_Recorded] = []
        statements = turn_statements(conn)
        for de in turn.decisions:
            opened = (
                turn.state.inquiries[de.inquiry]
                if de.inquiry < len(turn.state.inquiries)
                else None
            )
            outcome = de.decision.outcome.value
            inquiry_id = (
                await conn.execute(
                    statements.inquiry,
                    {
                        "client_id": client_id,
                        "position": de.inquiry,
                        "service": opened.service if opened else None,
                        "outcome": outcome,
                        "opened_at": _aware(opened.opened_at if opened else None, now),
                        "updated_at": now,
                    },
                )
            ).scalar_one()
            decision_id = (
                await conn.execute(
                    statements.decision,
                    {
                        "inquiry_id": inquiry_id,
                        "client_id": client_id,
                        "outcome": outcome,
                        "previous": de.previous,
                        "rules": json.dumps(list(de.decision.rules)),
                        "ruleset": de.decision.ruleset,
                        "reasons": json.dumps(list(de.decision.reasons), ensure_ascii=False),
                        "decider": "bot",
                        "country": de.decision.country,
                        "at": now,
                    },
                )
            ).scalar_one()
            recorded.append(_Recorded(de, decision_id, inquiry_id))
        return recorded

    @staticmethod
    def _evidence(
        event: ClientEvent,
        ref: str,
        message_id: int,
        text: str,
        platform_at: datetime,
        turn: TurnResult,
        decisions: list[_Recorded],
        outbox: list[Queued],
    ) -> list[tuple[str, dict[str, Any]]]:
        """The audit events of one turn, in the order they happened."""
        events: list[tuple[str, dict[str, Any]]] = [
            (
                "message_in",
                {
                    "update": ref,
                    "message_id": message_id,
                    "kind": event.kind,
                    "text": text,
                    "platform_at": audit.iso_utc(platform_at),
                },
            )
        ]
        pending = list(decisions)
        for item in turn.events:
            payload = {k: v for k, v in item.items() if k != "type"}
            payload["update"] = ref
            kind = str(item.get("type", "event"))
            if kind == "decision" and pending:
                row = pending.pop(0)
                payload["decision_id"] = row.id
                payload["inquiry_id"] = row.inquiry_id
            events.append((kind, payload))
        # Decisions the engine did not report as events still get their evidence.
        for row in pending:
            de = row.event
            events.append(
                (
                    "decision",
                    {
                        "update": ref,
                        "decision_id": row.id,
                        "inquiry_id": row.inquiry_id,
                        "inquiry": de.inquiry,
                        "outcome": de.decision.outcome.value,
                        "rules": list(de.decision.rules),
                        "reasons": list(de.decision.reasons),
                        "ruleset": de.decision.ruleset,
                        "decider": "bot",
                        "previous": de.previous,
                        "country": de.decision.country,
                    },
                )
            )
        events.extend(q.row.queued_event(q.outbox_id) for q in outbox)
        return events
