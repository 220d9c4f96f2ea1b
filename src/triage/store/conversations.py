"""The engine on the store: one client event, handled exactly once, in one transaction.

`ConversationStore.handle` claims the update key, loads the conversation under a lock, runs the
pure engine, and commits the new state together with the evidence (the inbound message, one
audit event per engine event, decision rows, one audit event per queued message) and the outbox
rows. Nothing is sent here: the outbox dispatcher sends, through the gate.

Per-client serialisation:
- PostgreSQL: the client row is locked with `SELECT ... FOR UPDATE` first, then the
  conversation row. Every writer of a client's data takes the client row lock first, so two
  workers never interleave one conversation and never deadlock on it. A new client is created
  with `INSERT ... ON CONFLICT DO NOTHING` and then locked, so two first messages of the same
  client cannot both create it.
- SQLite: every transaction begins with `BEGIN IMMEDIATE` (see `triage.store.db`), i.e. holds
  the single database write lock from its first statement; writers queue, across processes too.

Redelivery: the `(source, key)` of the update is inserted with `ON CONFLICT DO NOTHING` in the
same transaction. If it already exists, `handle` returns None and writes nothing. A concurrent
duplicate waits for the first transaction (row lock / write lock) and then sees the key.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from triage.flows.engine import (
    ClientEvent,
    ConversationState,
    DecisionEvent,
    Engine,
    TurnResult,
)
from triage.outbox.followups import FollowUpRule, followups_after_turn, load_followups
from triage.store import audit
from triage.store.db import SessionFactory, insert_ignoring_conflicts
from triage.store.models import (
    Client,
    Conversation,
    Decision,
    Inquiry,
    Message,
    Outbox,
    ProcessedUpdate,
    utcnow,
)

#: A hook run inside the turn's transaction, after its evidence is appended:
#: `await hook(session, client=..., turn=..., event=..., ref=..., now=...)`.
AfterTurn = Callable[..., Awaitable[None]]


class ConcurrentUpdateError(Exception):
    """The conversation changed under us although it was locked: a bug, never retried silently."""


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
        after_turn: AfterTurn | None = None,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        #: Follow-up sequences queued with a decision (None: flows/followups.yaml; () for none).
        self._followups = load_followups() if followups is None else tuple(followups)
        #: Called in the turn's transaction after its evidence (staff notifications in Slack).
        self.after_turn = after_turn

    # --- reading ----------------------------------------------------------------------------

    async def client_id(self, channel: str, external_id: str) -> int | None:
        """The client's id, or None for someone who never wrote."""
        async with self._sessions() as session:
            stmt = select(Client.id).where(
                Client.channel == channel, Client.external_id == external_id
            )
            return (await session.exec(stmt)).one_or_none()

    async def state(self, channel: str, external_id: str) -> ConversationState | None:
        """The stored conversation state, or None for someone who never wrote."""
        async with self._sessions() as session:
            stmt = (
                select(Conversation.state)
                .join(Client, Client.id == Conversation.client_id)  # type: ignore[arg-type]
                .where(Client.channel == channel, Client.external_id == external_id)
            )
            raw = (await session.exec(stmt)).one_or_none()
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
        async with self._sessions() as session, session.begin():
            client = await self._lock_or_create_client(session, channel, external_id, now)
            assert client.id is not None
            if not await self._claim(session, source, update_key, client.id, now):
                return None
            conversation = await self._lock_or_create_conversation(session, client.id, now)
            state = ConversationState.from_dict(json.loads(conversation.state))
            if event.kind == "command":
                turn = engine.command(state, _command_name(event.text), event.at)
            else:
                turn = engine.handle(state, event)
            ref = f"{source}:{update_key}"

            client.last_activity_at = now
            if client.language is None and turn.state.language:
                client.language = turn.state.language
            if turn.state.restricted and client.restricted_at is None:
                client.restricted_at = now
            session.add(client)

            message = Message(
                client_id=client.id,
                direction="in",
                text=event.text or event.button or "",
                platform_at=event.at if event.at.tzinfo else event.at.replace(tzinfo=UTC),
                update_key=ref,
                created_at=now,
            )
            session.add(message)
            decisions = await self._record_decisions(session, client.id, turn, now)
            outbox = [
                Outbox(
                    dedupe_key=f"{ref}:{i}",
                    client_id=client.id,
                    channel=channel,
                    kind=intent.kind.value,
                    sender="bot",
                    text=intent.text,
                    buttons=[list(b) for b in intent.buttons],
                    reply=True,
                    slot=intent.slot,
                    status="pending",
                    due_at=now,
                    created_at=now,
                )
                for i, intent in enumerate(turn.outbound)
            ]
            outbox += await followups_after_turn(
                session,
                client=client,
                channel=channel,
                turn=turn,
                engine=engine,
                rules=self._followups,
                now=now,
            )
            session.add_all(outbox)
            await session.flush()

            events = self._evidence(event, ref, message, turn, decisions, outbox)
            rows = await audit.append_many(session, client.id, events, at=now)
            if self.after_turn is not None:
                await self.after_turn(
                    session, client=client, turn=turn, event=event, ref=ref, now=now
                )
            version = await self._save_state(session, conversation, turn.state, now)
        return HandleResult(
            client_id=client.id,
            version=version,
            turn=turn,
            outbox_ids=tuple(o.id for o in outbox if o.id is not None),
            audit_event_ids=tuple(r.id for r in rows if r.id is not None),
            decision_ids=tuple(d.id for _, d in decisions if d.id is not None),
        )

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
        async with self._sessions() as session, session.begin():
            client = await self._lock_or_create_client(session, channel, external_id, now)
            assert client.id is not None
            conversation = await self._lock_or_create_conversation(session, client.id, now)
            state = ConversationState.from_dict(json.loads(conversation.state))
            known = {(c["channel"], c["date"]) for c in state.crm}
            new = [c for c in contacts if (c["channel"], c["date"]) not in known]
            if not new:
                return client.id
            state.crm.extend(new)
            await audit.append(
                session, client.id, "crm_contacts_imported", {"contacts": new}, at=now
            )
            await self._save_state(session, conversation, state, now)
            return client.id

    # --- steps ------------------------------------------------------------------------------

    async def _lock_client(
        self, session: AsyncSession, channel: str, external_id: str
    ) -> Client | None:
        stmt = (
            select(Client)
            .where(Client.channel == channel, Client.external_id == external_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return (await session.exec(stmt)).one_or_none()

    async def _lock_or_create_client(
        self, session: AsyncSession, channel: str, external_id: str, now: datetime
    ) -> Client:
        client = await self._lock_client(session, channel, external_id)
        if client is not None:
            return client
        # Two first messages of one client may race here: one inserts, the other waits for it
        # (PostgreSQL unique index) and inserts nothing; both then lock the same row.
        stmt = (
            insert_ignoring_conflicts(session, Client)
            .values(
                channel=channel,
                external_id=external_id,
                created_at=now,
                last_activity_at=now,
                audit_seq=0,
                audit_head="",
            )
            .on_conflict_do_nothing(index_elements=["channel", "external_id"])
        )
        await session.exec(stmt)
        client = await self._lock_client(session, channel, external_id)
        assert client is not None
        return client

    async def _claim(
        self, session: AsyncSession, source: str, key: str, client_id: int, now: datetime
    ) -> bool:
        stmt = (
            insert_ignoring_conflicts(session, ProcessedUpdate)
            .values(source=source, key=key, client_id=client_id, created_at=now)
            .on_conflict_do_nothing(index_elements=["source", "key"])
            .returning(ProcessedUpdate.id)  # type: ignore[arg-type]
        )
        return (await session.exec(stmt)).scalar_one_or_none() is not None

    async def _lock_or_create_conversation(
        self, session: AsyncSession, client_id: int, now: datetime
    ) -> Conversation:
        stmt = (
            select(Conversation)
            .where(Conversation.client_id == client_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        conversation = (await session.exec(stmt)).one_or_none()
        if conversation is None:
            # The client row is locked, so nobody else can be creating this conversation.
            conversation = Conversation(
                client_id=client_id,
                state=json.dumps(ConversationState().to_dict()),
                version=0,
                updated_at=now,
            )
            session.add(conversation)
            await session.flush()
        return conversation

    async def _save_state(
        self,
        session: AsyncSession,
        conversation: Conversation,
        state: ConversationState,
        now: datetime,
    ) -> int:
        version = conversation.version + 1
        result = await session.exec(
            update(Conversation)
            .where(
                Conversation.id == conversation.id,  # type: ignore[arg-type]
                Conversation.version == conversation.version,  # type: ignore[arg-type]
            )
            .values(
                state=json.dumps(state.to_dict(), ensure_ascii=False),
                version=version,
                updated_at=now,
            )
        )
        if result.rowcount != 1:
            raise ConcurrentUpdateError(
                f"conversation {conversation.id} changed while locked (version {version - 1})"
            )
        return version

    async def _record_decisions(
        self, session: AsyncSession, client_id: int, turn: TurnResult, now: datetime
    ) -> list[tuple[DecisionEvent, Decision]]:
        recorded: list[tuple[DecisionEvent, Decision]] = []
        for de in turn.decisions:
            stmt = select(Inquiry).where(
                Inquiry.client_id == client_id, Inquiry.position == de.inquiry
            )
            inquiry = (await session.exec(stmt)).one_or_none()
            if inquiry is None:
                opened = (
                    turn.state.inquiries[de.inquiry]
                    if de.inquiry < len(turn.state.inquiries)
                    else None
                )
                inquiry = Inquiry(
                    client_id=client_id,
                    position=de.inquiry,
                    service=opened.service if opened else None,
                    opened_at=_aware(opened.opened_at if opened else None, now),
                )
            inquiry.outcome = de.decision.outcome.value
            inquiry.updated_at = now
            session.add(inquiry)
            await session.flush()
            assert inquiry.id is not None
            decision = Decision(
                inquiry_id=inquiry.id,
                client_id=client_id,
                outcome=de.decision.outcome.value,
                previous=de.previous,
                rules=json.dumps(list(de.decision.rules)),
                ruleset=de.decision.ruleset,
                reasons=json.dumps(list(de.decision.reasons), ensure_ascii=False),
                decider="bot",
                country=de.decision.country,
                at=now,
            )
            session.add(decision)
            recorded.append((de, decision))
        await session.flush()
        return recorded

    @staticmethod
    def _evidence(
        event: ClientEvent,
        ref: str,
        message: Message,
        turn: TurnResult,
        decisions: list[tuple[DecisionEvent, Decision]],
        outbox: list[Outbox],
    ) -> list[tuple[str, dict[str, Any]]]:
        """The audit events of one turn, in the order they happened."""
        events: list[tuple[str, dict[str, Any]]] = [
            (
                "message_in",
                {
                    "update": ref,
                    "message_id": message.id,
                    "kind": event.kind,
                    "text": message.text,
                    "platform_at": audit.iso_utc(message.platform_at)
                    if message.platform_at
                    else None,
                },
            )
        ]
        pending = list(decisions)
        for item in turn.events:
            payload = {k: v for k, v in item.items() if k != "type"}
            payload["update"] = ref
            kind = str(item.get("type", "event"))
            if kind == "decision" and pending:
                _, row = pending.pop(0)
                payload["decision_id"] = row.id
                payload["inquiry_id"] = row.inquiry_id
            events.append((kind, payload))
        # Decisions the engine did not report as events still get their evidence.
        for de, row in pending:
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
        for row in outbox:
            events.append(
                (
                    "outbound_queued",
                    {
                        "update": ref,
                        "outbox_id": row.id,
                        "dedupe_key": row.dedupe_key,
                        "kind": row.kind,
                        "sender": row.sender,
                        "slot": row.slot,
                        "text": row.text,
                        "buttons": row.buttons,
                    },
                )
            )
        return events
