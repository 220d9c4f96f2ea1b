"""Compliance officers resolve escalated inquiries (DESIGN.md invariant 5), one transaction each.

`Escalations.resolve` takes an officer's request (approve as EU restricted, approve as non-EU,
decline, ask the client) and, in one transaction with the client row locked:

- claims the request's key in `processed_update`, so a retried or double submission is a no-op;
- refuses anyone who is not a configured officer, and records the attempt in the client's
  audit chain ("officer_refused");
- checks that the inquiry is still escalated (two officers clicking at once: one decides, the
  other is told who did);
- with four-eyes on, records a first approval ("officer_approval", a `PendingApproval` row) and
  decides only when a different officer approves the same way;
- decides: a `Decision` row (decider "officer", the officer and the reason), the inquiry's
  outcome, the conversation state (outcome, decider, and the residence zone an approval
  settles), an "officer_decision" audit event, the client's neutral message in their language
  (queued; the gate judges it at send time), and the client's held messages queued again;
- or, for "ask the client", queues the officer's question (gated like any message);
- then hands an `OfficerDecided` event to the staff notifications in the same transaction,
  so the card update and the lead card commit with the decision or not at all.

What an officer may decide (the outcomes, rules, four-eyes, the reason required) is
`triage.domain.officer`; what a decision changes in the conversation is
`Engine.apply_officer_decision`. This module records and queues; it decides nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from triage.domain.codes import MessageKind, Outcome, Sender
from triage.domain.facts import facts_to_dict
from triage.domain.gate import RecipientFacts
from triage.domain.officer import (
    Approval,
    FirstApproval,
    FourEyes,
    OfficerAction,
    OfficerDecision,
    decision_of,
    four_eyes,
    text_problem,
)
from triage.flows.engine import ConversationState, Engine
from triage.flows.engine import Inquiry as StateInquiry
from triage.outbox.rows import OutboundRequest, enqueue_in, release_held_in
from triage.service.events import StaffNotifications
from triage.store import audit
from triage.store.db import SessionFactory, insert_ignoring_conflicts, write_transaction
from triage.store.models import (
    Client,
    Conversation,
    Decision,
    Inquiry,
    PendingApproval,
    ProcessedUpdate,
    utcnow,
)

log = logging.getLogger("triage.officer")


class Resolution(StrEnum):
    """What became of an officer's request."""

    DECIDED = "decided"
    #: Four-eyes: the first approval is recorded; a different officer must approve too.
    AWAITING_SECOND = "awaiting_second"
    ASKED = "asked"
    #: This request (the same key) was handled before: nothing changed.
    DUPLICATE = "duplicate"
    #: Not a compliance officer: refused and recorded.
    REFUSED = "refused"
    #: Four-eyes: the officer who gave the first approval cannot give the second.
    SAME_OFFICER = "same_officer"
    #: The inquiry is not escalated (any more): someone decided it, or new facts did.
    NOT_OPEN = "not_open"
    #: No such client or inquiry.
    UNKNOWN = "unknown"
    #: The reason (or the question) is empty or too long.
    INVALID = "invalid"


@dataclass(frozen=True)
class OfficerRequest:
    """One officer's request about one inquiry, as it came from Slack."""

    client_id: int
    #: Position of the inquiry in the conversation state.
    inquiry: int
    action: OfficerAction
    officer_id: str
    team_id: str
    #: The reason for a decision, or the question for the client.
    text: str
    #: What makes a retry of this request a no-op (a Slack view id and hash).
    key: str
    source: str = "slack"


@dataclass(frozen=True)
class OfficerDecided:
    """What a request changed, for the staff notifications written in the same transaction."""

    resolution: Resolution
    request: OfficerRequest
    client: Client
    #: The conversation state after the change.
    state: ConversationState
    #: The inquiry's outcome after the change.
    outcome: str | None
    #: When the request was carried out (the transaction's time).
    at: datetime
    #: The officers who approved or decided, first one first.
    approvals: tuple[Approval, ...] = ()
    decision_id: int | None = None
    #: Client messages queued (the neutral outcome message or the question).
    outbox_ids: tuple[int, ...] = ()
    #: Held rows queued again.
    released: tuple[int, ...] = ()


@dataclass(frozen=True)
class OfficerResult:
    """The answer to an officer: what happened, in words they can act on."""

    resolution: Resolution
    detail: str
    outcome: str | None = None
    approvals: tuple[Approval, ...] = field(default_factory=tuple)


def digest(key: str) -> str:
    """A short stable digest of a request key, for dedupe keys that must stay short."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


async def claim(
    session: AsyncSession, *, source: str, key: str, client_id: int | None, now: datetime
) -> bool:
    """Claim a request key in the caller's transaction; False when it was claimed before."""
    stmt = (
        insert_ignoring_conflicts(session, ProcessedUpdate)
        .values(source=source, key=key[:200], client_id=client_id, created_at=now)
        .on_conflict_do_nothing(index_elements=["source", "key"])
        .returning(col(ProcessedUpdate.id))
    )
    return (await session.exec(stmt)).scalar_one_or_none() is not None


async def seen(session: AsyncSession, *, source: str, key: str) -> bool:
    """Whether a request key was claimed before."""
    stmt = select(ProcessedUpdate.id).where(
        ProcessedUpdate.source == source, ProcessedUpdate.key == key[:200]
    )
    return (await session.exec(stmt)).first() is not None


async def load_state(
    session: AsyncSession, client_id: int, *, lock: bool = False
) -> tuple[Conversation | None, ConversationState]:
    """A client's conversation row and state (an empty state when there is none)."""
    stmt = select(Conversation).where(Conversation.client_id == client_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    conversation = (await session.exec(stmt)).one_or_none()
    if conversation is None:
        return None, ConversationState()
    return conversation, ConversationState.from_dict(json.loads(conversation.state))


class Escalations:
    """Resolves escalated inquiries for compliance officers."""

    def __init__(
        self,
        sessions: SessionFactory,
        *,
        engine: Engine,
        officers: Collection[str],
        four_eyes: bool = False,
        clock: Callable[[], datetime] = utcnow,
        staff: StaffNotifications | None = None,
    ) -> None:
        self._sessions = sessions
        self._engine = engine
        self._officers = frozenset(officers)
        self._four_eyes = four_eyes
        self._clock = clock
        #: Told of each request carried out, in its transaction (staff cards in Slack).
        self._staff = staff

    @property
    def four_eyes(self) -> bool:
        """Whether an approval needs two different officers."""
        return self._four_eyes

    def is_officer(self, user_id: str) -> bool:
        """Whether a Slack user may decide escalations."""
        return user_id in self._officers

    # --- refusals ---------------------------------------------------------------------------

    async def refuse(
        self,
        *,
        client_id: int,
        officer_id: str,
        team_id: str,
        action: str,
        inquiry: int | None,
        why: str,
        key: str,
        source: str = "slack",
    ) -> bool:
        """Record a refused attempt in the client's chain, once per key.

        False when there is no such client or the attempt was recorded before.
        """
        now = self._clock()
        async with self._sessions() as session, write_transaction(session):
            if await session.get(Client, client_id) is None:
                return False
            await audit.lock_client(session, client_id)
            if not await claim(session, source=source, key=key, client_id=client_id, now=now):
                return False
            await self._append_refusal(
                session,
                client_id=client_id,
                officer_id=officer_id,
                team_id=team_id,
                action=action,
                inquiry=inquiry,
                why=why,
                key=key,
                source=source,
                now=now,
            )
        return True

    @staticmethod
    async def _append_refusal(
        session: AsyncSession,
        *,
        client_id: int,
        officer_id: str,
        team_id: str,
        action: str,
        inquiry: int | None,
        why: str,
        key: str,
        source: str,
        now: datetime,
    ) -> None:
        payload = {
            "user_id": officer_id,
            "team_id": team_id,
            "action": action,
            "inquiry": inquiry,
            "why": why,
            "source": source,
            "key": key,
        }
        await audit.append(session, client_id, "officer_refused", payload, at=now)
        log.warning(
            "officer request refused",
            extra={"client_id": client_id, "user_id": officer_id, "team_id": team_id, "why": why},
        )

    # --- the decision -----------------------------------------------------------------------

    async def resolve(self, request: OfficerRequest) -> OfficerResult:
        """Carry out an officer's request exactly once (see the module docstring).

        The request's key is claimed only with an effect: a request refused as invalid or
        no longer open changes nothing, and the same form can be corrected and sent again.
        """
        now = self._clock()
        async with self._sessions() as session, write_transaction(session):
            if await session.get(Client, request.client_id) is None:
                return OfficerResult(Resolution.UNKNOWN, f"client {request.client_id} not found")
            client = await audit.lock_client(session, request.client_id)
            # The client row lock serialises requests about this client: seen-then-claim is safe.
            if await seen(session, source=request.source, key=request.key):
                return OfficerResult(Resolution.DUPLICATE, "this request was already handled")
            return await self._resolve(session, client, request, now)

    async def _resolve(
        self, session: AsyncSession, client: Client, request: OfficerRequest, now: datetime
    ) -> OfficerResult:
        if not self.is_officer(request.officer_id):
            why = "not a compliance officer (TRIAGE_COMPLIANCE_USERS)"
            await self._refused(session, request, why, now)
            return OfficerResult(
                Resolution.REFUSED, "Only compliance officers can decide escalated cases."
            )
        conversation, state = await load_state(session, request.client_id, lock=True)
        if conversation is None or not 0 <= request.inquiry < len(state.inquiries):
            return OfficerResult(
                Resolution.UNKNOWN,
                f"client {request.client_id} has no inquiry {request.inquiry + 1}",
            )
        inquiry = state.inquiries[request.inquiry]
        if inquiry.outcome is not Outcome.ESCALATE:
            by = "an officer" if inquiry.decider == "officer" else "the bot"
            return OfficerResult(
                Resolution.NOT_OPEN,
                f"This case is no longer open: it was decided {inquiry.outcome} by {by}.",
                outcome=inquiry.outcome,
            )
        problem = text_problem(request.action, request.text)
        if problem is not None:
            return OfficerResult(Resolution.INVALID, problem)
        text = request.text.strip()
        await self._claim(session, request, now)
        mine = Approval(request.officer_id, request.team_id, text, now)
        if request.action is OfficerAction.ASK:
            return await self._ask(session, client, state, request, mine, now)
        approvals: tuple[Approval, ...] = (mine,)
        pending = (
            await session.exec(
                select(PendingApproval).where(
                    PendingApproval.client_id == request.client_id,
                    PendingApproval.inquiry == request.inquiry,
                )
            )
        ).one_or_none()
        first = None
        if pending is not None:
            first = FirstApproval(
                OfficerAction(pending.action),
                Approval(pending.officer_id, pending.team_id, pending.reason, pending.created_at),
            )
        step = four_eyes(request.action, request.officer_id, required=self._four_eyes, first=first)
        if step is FourEyes.FIRST:
            return await self._first_approval(session, client, state, request, mine, now)
        if step is FourEyes.SAME_OFFICER:
            why = "four-eyes: the second approval must come from a different officer"
            await self._append_refusal(
                session,
                client_id=request.client_id,
                officer_id=request.officer_id,
                team_id=request.team_id,
                action=request.action.value,
                inquiry=request.inquiry,
                why=why,
                key=request.key,
                source=request.source,
                now=now,
            )
            return OfficerResult(
                Resolution.SAME_OFFICER,
                "You gave the first approval; a different officer must give the second.",
            )
        if step is FourEyes.SECOND and first is not None:
            approvals = (first.approval, mine)
        if pending is not None:
            await session.exec(delete(PendingApproval).where(PendingApproval.id == pending.id))  # type: ignore[arg-type]
        assert conversation is not None
        return await self._decide(
            session, client, conversation, state, request, approvals=approvals, now=now
        )

    @staticmethod
    async def _claim(session: AsyncSession, request: OfficerRequest, now: datetime) -> None:
        claimed = await claim(
            session, source=request.source, key=request.key, client_id=request.client_id, now=now
        )
        # Checked under the client row lock just before; losing it now is a bug.
        assert claimed, f"request key {request.key!r} was claimed concurrently"

    async def _refused(
        self, session: AsyncSession, request: OfficerRequest, why: str, now: datetime
    ) -> None:
        await self._claim(session, request, now)
        await self._append_refusal(
            session,
            client_id=request.client_id,
            officer_id=request.officer_id,
            team_id=request.team_id,
            action=request.action.value,
            inquiry=request.inquiry,
            why=why,
            key=request.key,
            source=request.source,
            now=now,
        )

    async def _first_approval(
        self,
        session: AsyncSession,
        client: Client,
        state: ConversationState,
        request: OfficerRequest,
        mine: Approval,
        now: datetime,
    ) -> OfficerResult:
        # A first approval of another kind is replaced: the two officers must agree.
        await session.exec(
            delete(PendingApproval).where(
                PendingApproval.client_id == request.client_id,  # type: ignore[arg-type]
                PendingApproval.inquiry == request.inquiry,  # type: ignore[arg-type]
            )
        )
        session.add(
            PendingApproval(
                client_id=request.client_id,
                inquiry=request.inquiry,
                action=request.action.value,
                officer_id=request.officer_id,
                team_id=request.team_id,
                reason=mine.reason,
                created_at=now,
            )
        )
        await session.flush()
        payload = {
            "inquiry": request.inquiry,
            "action": request.action.value,
            "officer_id": request.officer_id,
            "team_id": request.team_id,
            "reason": mine.reason,
            "waiting_for": "a second, different compliance officer",
            "source": request.source,
            "key": request.key,
        }
        await audit.append(session, request.client_id, "officer_approval", payload, at=now)
        effect = OfficerDecided(
            resolution=Resolution.AWAITING_SECOND,
            request=request,
            client=client,
            state=state,
            outcome=Outcome.ESCALATE.value,
            at=now,
            approvals=(mine,),
        )
        await self._notify(session, effect, now)
        return OfficerResult(
            Resolution.AWAITING_SECOND,
            "Your approval is recorded. A second compliance officer must approve too.",
            outcome=Outcome.ESCALATE.value,
            approvals=(mine,),
        )

    async def _ask(
        self,
        session: AsyncSession,
        client: Client,
        state: ConversationState,
        request: OfficerRequest,
        mine: Approval,
        now: datetime,
    ) -> OfficerResult:
        queued = await enqueue_in(
            session,
            OutboundRequest(
                client_id=request.client_id,
                text=mine.reason,
                kind=MessageKind.PROMPT.value,
                sender=Sender.COMPLIANCE.value,
                dedupe_key=f"officer:{digest(request.key)}:ask",
                context=self._context(request),
            ),
            now=now,
        )
        payload = {
            "inquiry": request.inquiry,
            "officer_id": request.officer_id,
            "team_id": request.team_id,
            "question": mine.reason,
            "outbox_id": queued.outbox_id,
            "source": request.source,
            "key": request.key,
        }
        await audit.append(session, request.client_id, "officer_question", payload, at=now)
        effect = OfficerDecided(
            resolution=Resolution.ASKED,
            request=request,
            client=client,
            state=state,
            outcome=Outcome.ESCALATE.value,
            at=now,
            approvals=(mine,),
            outbox_ids=(queued.outbox_id,),
        )
        await self._notify(session, effect, now)
        return OfficerResult(
            Resolution.ASKED,
            "Your question is queued for the client; the answer will appear in the case thread.",
            outcome=Outcome.ESCALATE.value,
            approvals=(mine,),
        )

    async def _decide(
        self,
        session: AsyncSession,
        client: Client,
        conversation: Conversation,
        state: ConversationState,
        request: OfficerRequest,
        *,
        approvals: tuple[Approval, ...],
        now: datetime,
    ) -> OfficerResult:
        decided = decision_of(request.action, approvals)
        outcome, zone, final = decided.outcome, decided.zone, decided.final
        inquiry = state.inquiries[request.inquiry]
        applied = self._engine.apply_officer_decision(state, request.inquiry, decided)
        previous = applied.previous.value if applied.previous else None
        row, decision = await self._record_decision(
            session, request, inquiry, decided, previous=previous, now=now
        )
        await self._save_state(session, conversation, state, applied.facts, now)

        payload: dict[str, Any] = {
            "inquiry": request.inquiry,
            "inquiry_id": row.id,
            "decision_id": decision.id,
            "action": request.action.value,
            "outcome": outcome.value,
            "previous": previous,
            "rules": list(decided.rules),
            "decider": "officer",
            "officer_id": final.officer_id,
            "team_id": final.team_id,
            "reason": final.reason,
            "approvals": [
                {"officer_id": a.officer_id, "team_id": a.team_id, "reason": a.reason}
                for a in approvals
            ],
            "zone_override": zone.value if zone is not None else None,
            "source": request.source,
            "key": request.key,
        }
        await audit.append(session, request.client_id, "officer_decision", payload, at=now)

        # The client is told (the gate judges it at send time); held messages are judged again.
        message = OutboundRequest(
            client_id=request.client_id,
            text=applied.message.text,
            kind=applied.message.kind.value,
            sender=Sender.COMPLIANCE.value,
            dedupe_key=f"officer:{digest(request.key)}:outcome",
            context=self._context(request),
        )
        queued = await enqueue_in(session, message, now=now)
        by = f"officer:{final.officer_id}"
        released = await release_held_in(
            session, request.client_id, now=now, by=by, reason=final.reason
        )
        effect = OfficerDecided(
            resolution=Resolution.DECIDED,
            request=request,
            client=client,
            state=state,
            outcome=outcome.value,
            at=now,
            approvals=approvals,
            decision_id=decision.id,
            outbox_ids=(queued.outbox_id,),
            released=tuple(released),
        )
        await self._notify(session, effect, now)
        extra: dict[str, object] = {"client_id": request.client_id, "inquiry": request.inquiry}
        extra |= {"outcome": outcome.value, "officer": final.officer_id}
        log.info("officer decision", extra={**extra, "decision_id": decision.id})
        return OfficerResult(
            Resolution.DECIDED,
            f"Decided: {outcome.value}.",
            outcome=outcome.value,
            approvals=approvals,
        )

    @staticmethod
    async def _record_decision(
        session: AsyncSession,
        request: OfficerRequest,
        inquiry: StateInquiry,
        decided: OfficerDecision,
        *,
        previous: str | None,
        now: datetime,
    ) -> tuple[Inquiry, Decision]:
        """The inquiry row's new outcome and the officer's `Decision` row (both flushed)."""
        row = (
            await session.exec(
                select(Inquiry).where(
                    Inquiry.client_id == request.client_id, Inquiry.position == request.inquiry
                )
            )
        ).one_or_none()
        if row is None:
            row = Inquiry(client_id=request.client_id, position=request.inquiry, opened_at=now)
        row.service = row.service or inquiry.service
        row.outcome = decided.outcome.value
        row.updated_at = now
        session.add(row)
        await session.flush()
        assert row.id is not None
        decision = Decision(
            inquiry_id=row.id,
            client_id=request.client_id,
            outcome=decided.outcome.value,
            previous=previous,
            rules=json.dumps(list(decided.rules)),
            ruleset=inquiry.ruleset or "",
            reasons=json.dumps(list(decided.reasons), ensure_ascii=False),
            decider="officer",
            officer_id=decided.final.officer_id,
            reason=decided.final.reason,
            country=inquiry.country,
            at=now,
        )
        session.add(decision)
        await session.flush()
        return row, decision

    @staticmethod
    async def _save_state(
        session: AsyncSession,
        conversation: Conversation,
        state: ConversationState,
        facts: RecipientFacts,
        now: datetime,
    ) -> None:
        version = conversation.version + 1
        result = await session.exec(
            update(Conversation)
            .where(
                Conversation.id == conversation.id,  # type: ignore[arg-type]
                Conversation.version == conversation.version,  # type: ignore[arg-type]
            )
            .values(
                state=json.dumps(state.to_dict(), ensure_ascii=False),
                facts=json.dumps(facts_to_dict(facts)),
                version=version,
                updated_at=now,
            )
        )
        if result.rowcount != 1:
            raise RuntimeError(f"conversation {conversation.id} changed while locked")

    async def _notify(self, session: AsyncSession, effect: OfficerDecided, now: datetime) -> None:
        if self._staff is not None:
            await self._staff.officer_decided(session, effect)

    @staticmethod
    def _context(request: OfficerRequest) -> dict[str, Any]:
        return {
            "officer_id": request.officer_id,
            "team_id": request.team_id,
            "action": request.action.value,
            "inquiry": request.inquiry,
            "source": request.source,
        }
