"""Staff notifications as outbox rows, written in the transaction of what caused them.

Slack posts go through the outbox like client messages (a Slack outage delays them, loses
nothing), but as staff rows: channel "slack", not judged by the client gate. Each row's text is
a `StaffPost` (JSON): post a card, reply in a card's thread, or edit a card. Cards are tracked
per inquiry in `slack_thread` (lead, case, decline); the row for the card is written with its
`slack_thread` row, and the Slack sender fills in the thread's ts once Slack has it.

Writers, all inside the caller's transaction with the client row locked:
- `StaffCards.turn_decided` (a `TurnDecided` event of `ConversationStore.handle`): the client's
  message mirrored into the client's open threads; for each decision of the turn a lead card
  (sales), a case card (compliance) or a decline notice (compliance), and edits of the cards it
  changes.
- `StaffCards.officer_decided` (an `OfficerDecided` event of `Escalations.resolve`): the case
  card edited (waiting for a second officer, or decided by whom and why), a note in the case
  thread, the lead card on approval.
- `StaffCards.gate_verdict` (the dispatcher's `GateVerdict`): a sales reply the gate blocked or
  held gets a notice in its thread saying why and what would be allowed.
- `StaffCards.remind_overdue_cases`, the SLA job: one reminder per undecided case.
And `StaffCards.relay_sales_reply` queues a reply typed in a lead's thread for the client
(exactly once per Slack event), for the gate to judge at send time.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import and_, delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from triage.channels.slack_cards import (
    CaseStatus,
    ClientView,
    SlackMessage,
    case_card,
    client_view,
    client_words_note,
    decline_card,
    erasure_note,
    gate_notice,
    inquiry_view,
    lead_card,
    officer_note,
    reminder_note,
    service_name,
)
from triage.channels.slack_text import from_slack
from triage.domain.codes import PROCEED, MessageKind, Outcome, Sender, Verdict
from triage.domain.gate import GateResult, RecipientFacts
from triage.domain.officer import APPROVALS, Approval, OfficerAction
from triage.flows.engine import ConversationState, Engine
from triage.outbox.dispatcher import GateVerdict
from triage.outbox.facts import stored_facts
from triage.outbox.rows import OutboundRequest, enqueue_in
from triage.service.events import TurnDecided
from triage.service.officer_requests import (
    OfficerDecided,
    Resolution,
    claim,
    digest,
    load_state,
)
from triage.store import audit
from triage.store.db import SessionFactory, write_transaction
from triage.store.models import (
    Client,
    Inquiry,
    Outbox,
    PendingApproval,
    SlackRelay,
    SlackThread,
)

log = logging.getLogger("triage.slack")

#: The outbox channel of staff rows.
STAFF_CHANNEL = "slack"
#: `processed_update.source` of requests from Slack.
SOURCE = "slack"

ThreadKind = Literal["lead", "case", "decline"]
Op = Literal["post", "reply", "update"]
_OPS = ("post", "reply", "update")
_DEDUPE_MAX = 200


@dataclass(frozen=True)
class StaffPost:
    """What one staff outbox row asks the Slack sender to do; stored as the row's text."""

    op: Op
    thread: int
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    #: Card version of a post or an edit (0 for thread replies).
    version: int = 0

    def dumps(self) -> str:
        """The row text."""
        return json.dumps(
            {
                "op": self.op,
                "thread": self.thread,
                "version": self.version,
                "text": self.text,
                "blocks": self.blocks,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )

    @classmethod
    def loads(cls, raw: str) -> StaffPost:
        """Parse a row text; ValueError when it is not a staff post."""
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"staff row text is not JSON: {exc}") from None
        if not isinstance(data, dict) or data.get("op") not in _OPS:
            raise ValueError("staff row text has no valid op")
        if not isinstance(data.get("thread"), int) or not isinstance(data.get("text"), str):
            raise ValueError("staff row text needs a thread id and a text")
        blocks = data.get("blocks") or []
        if not isinstance(blocks, list):
            raise ValueError("staff row blocks must be a list")
        return cls(
            op=data["op"],
            thread=data["thread"],
            text=data["text"],
            blocks=blocks,
            version=int(data.get("version") or 0),
        )


@dataclass(frozen=True)
class RelayResult:
    """What became of a message typed in a Slack thread."""

    status: Literal["queued", "duplicate", "not_a_lead_thread", "empty"]
    outbox_id: int | None = None
    client_id: int | None = None


def _key(*parts: object) -> str:
    key = ":".join(str(p) for p in parts)
    if len(key) <= _DEDUPE_MAX:
        return key
    return key[:120] + ":" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


def allowed_hint(result: GateResult, facts: RecipientFacts, *, reply_window_hours: float) -> str:
    """What could go to this client now, in words for sales (DOMAIN.md R5, R6)."""
    if facts.restricted:
        return "only messages the law requires: the client asked for erasure."
    if Outcome.DECLINE in facts.outcomes:
        return (
            "only neutral messages (no offers, products, links or follow-ups): "
            "the client was declined."
        )
    if result.verdict is Verdict.HELD:
        return (
            "nothing until a compliance officer decides this case; this reply is kept and "
            "judged again after the decision."
        )
    if facts.served:
        services = ", ".join(service_name(s.value) for s in facts.served)
        return (
            f"answers to the client's own questions about {services}, within "
            f"{reply_window_hours:g} h of their last message; no other products or services, "
            "no links or handles, no promotional wording, no follow-ups."
        )
    return "answers to the client's own recent questions, without promotion."


class StaffCards:
    """Writes the staff's Slack cards and thread notes as outbox rows (see the module)."""

    def __init__(self, *, engine: Engine, sales_channel: str, compliance_channel: str) -> None:
        self._engine = engine
        self._channels: Mapping[ThreadKind, str] = {
            "lead": sales_channel,
            "case": compliance_channel,
            "decline": compliance_channel,
        }

    @property
    def reply_window_hours(self) -> float:
        """The company profile's reply window."""
        return float(self._engine.profile.reply_window_hours)

    # --- lookups ------------------------------------------------------------------------------

    @staticmethod
    async def threads(session: AsyncSession, client_id: int) -> list[SlackThread]:
        """A client's card threads, oldest first."""
        stmt = (
            select(SlackThread)
            .where(SlackThread.client_id == client_id)
            .order_by(col(SlackThread.id))
        )
        return list((await session.exec(stmt)).all())

    @staticmethod
    async def thread_at(session: AsyncSession, channel: str, ts: str) -> SlackThread | None:
        """The card posted at (channel, ts), if it is one of ours."""
        stmt = select(SlackThread).where(SlackThread.channel == channel, SlackThread.ts == ts)
        return (await session.exec(stmt)).first()

    # --- writing rows ---------------------------------------------------------------------------

    async def _enqueue(
        self,
        session: AsyncSession,
        thread: SlackThread,
        post: StaffPost,
        *,
        kind: str,
        key: str,
        now: datetime,
    ) -> int:
        queued = await enqueue_in(
            session,
            OutboundRequest(
                client_id=thread.client_id,
                text=post.dumps(),
                kind=kind,
                sender=Sender.BOT.value,
                dedupe_key=_key(key),
                channel=STAFF_CHANNEL,
                context={
                    "slack_thread": thread.id,
                    "op": post.op,
                    "slack_channel": thread.channel,
                },
            ),
            now=now,
        )
        return queued.outbox_id

    async def _new_card(
        self,
        session: AsyncSession,
        *,
        client_id: int,
        inquiry: int,
        kind: ThreadKind,
        now: datetime,
        render: Callable[[int], SlackMessage],
    ) -> SlackThread:
        thread = SlackThread(
            client_id=client_id,
            inquiry=inquiry,
            kind=kind,
            channel=self._channels[kind],
            queued_version=1,
            shown_version=0,
            created_at=now,
        )
        session.add(thread)
        await session.flush()
        assert thread.id is not None
        message = render(thread.id)
        post = StaffPost("post", thread.id, message.text, message.blocks, version=1)
        await self._enqueue(
            session, thread, post, kind=f"{kind}_card", key=f"slack:{thread.id}:post", now=now
        )
        return thread

    async def _edit_card(
        self, session: AsyncSession, thread: SlackThread, message: SlackMessage, now: datetime
    ) -> None:
        assert thread.id is not None
        thread.queued_version += 1
        session.add(thread)
        post = StaffPost(
            "update", thread.id, message.text, message.blocks, version=thread.queued_version
        )
        await self._enqueue(
            session,
            thread,
            post,
            kind="card_update",
            key=f"slack:{thread.id}:v{thread.queued_version}",
            now=now,
        )

    async def _note(
        self,
        session: AsyncSession,
        thread: SlackThread,
        message: SlackMessage,
        *,
        kind: str,
        key: str,
        now: datetime,
    ) -> int:
        assert thread.id is not None
        post = StaffPost("reply", thread.id, message.text, message.blocks)
        return await self._enqueue(session, thread, post, kind=kind, key=key, now=now)

    # --- rendering with the current facts -------------------------------------------------------

    def _view(self, client: Client, state: ConversationState) -> ClientView:
        return client_view(client, state)

    async def _case_status(
        self, session: AsyncSession, client_id: int, state: ConversationState, position: int
    ) -> CaseStatus:
        inquiry = state.inquiries[position]
        if inquiry.outcome is not Outcome.ESCALATE:
            return CaseStatus("closed", outcome=inquiry.outcome)
        pending = (
            await session.exec(
                select(PendingApproval).where(
                    PendingApproval.client_id == client_id, PendingApproval.inquiry == position
                )
            )
        ).one_or_none()
        if pending is None:
            return CaseStatus("open")
        first = Approval(pending.officer_id, pending.team_id, pending.reason, pending.created_at)
        return CaseStatus(
            "awaiting_second", approvals=(first,), pending_action=OfficerAction(pending.action)
        )

    def _lead(self, c: ClientView, state: ConversationState, position: int) -> SlackMessage:
        return lead_card(
            c, inquiry_view(state, position), reply_window_hours=self.reply_window_hours
        )

    # --- the ConversationStore hook -------------------------------------------------------------

    async def turn_decided(self, session: AsyncSession, decided: TurnDecided) -> None:
        """Mirror the client's message into their open threads; post and edit cards."""
        client, turn, event, ref, now = (
            decided.client,
            decided.turn,
            decided.event,
            decided.ref,
            decided.at,
        )
        assert client.id is not None
        threads = await self.threads(session, client.id)
        if not threads and not turn.decisions:
            return
        state = turn.state
        by_key = {(t.inquiry, t.kind): t for t in threads}
        before: dict[int, str | None] = {i: inq.outcome for i, inq in enumerate(state.inquiries)}
        for de in turn.decisions:
            before[de.inquiry] = de.previous
        erasure = any(e.get("type") == "erasure_requested" for e in turn.events)
        words = next(
            (str(e.get("text") or "") for e in turn.events if e.get("type") == "client_message"),
            "",
        )
        for thread in threads:
            was = before.get(thread.inquiry)
            open_lead = thread.kind == "lead" and was in {o.value for o in PROCEED}
            open_case = thread.kind == "case" and was == Outcome.ESCALATE.value
            if not (open_lead or open_case):
                continue
            if erasure:
                await self._note(
                    session,
                    thread,
                    erasure_note(),
                    kind="erasure_note",
                    key=f"slack:{thread.id}:erasure",
                    now=now,
                )
            elif words.strip() and not (state.restricted or client.restricted_at):
                await self._note(
                    session,
                    thread,
                    client_words_note(words, at=_stamp(event.at)),
                    kind="client_words",
                    key=f"slack:{thread.id}:in:{digest(ref)}",
                    now=now,
                )
        view = self._view(client, state) if turn.decisions else None
        for de in turn.decisions:
            assert view is not None
            await self._on_decision(session, client, state, view, de.inquiry, by_key, now)

    async def _on_decision(
        self,
        session: AsyncSession,
        client: Client,
        state: ConversationState,
        view: ClientView,
        position: int,
        by_key: dict[tuple[int, str], SlackThread],
        now: datetime,
    ) -> None:
        assert client.id is not None
        outcome = state.inquiries[position].outcome
        lead = by_key.get((position, "lead"))
        case = by_key.get((position, "case"))
        iv = inquiry_view(state, position)
        if outcome in {o.value for o in PROCEED} or outcome == Outcome.DECLINE.value:
            if lead is not None:
                await self._edit_card(session, lead, self._lead(view, state, position), now)
            elif outcome != Outcome.DECLINE.value:
                by_key[(position, "lead")] = await self._new_card(
                    session,
                    client_id=client.id,
                    inquiry=position,
                    kind="lead",
                    now=now,
                    render=lambda _tid: self._lead(view, state, position),
                )
            if case is not None:
                # New facts settled the case without an officer: no more buttons.
                await session.exec(
                    delete(PendingApproval).where(
                        PendingApproval.client_id == client.id,  # type: ignore[arg-type]
                        PendingApproval.inquiry == position,  # type: ignore[arg-type]
                    )
                )
                status = CaseStatus("closed", outcome=outcome)
                await self._edit_card(
                    session, case, case_card(view, iv, thread_id=case.id or 0, status=status), now
                )
            if outcome == Outcome.DECLINE.value and (position, "decline") not in by_key:
                by_key[(position, "decline")] = await self._new_card(
                    session,
                    client_id=client.id,
                    inquiry=position,
                    kind="decline",
                    now=now,
                    render=lambda _tid: decline_card(view, iv),
                )
            return
        if outcome == Outcome.ESCALATE.value:
            if lead is not None:
                await self._edit_card(session, lead, self._lead(view, state, position), now)
            status = await self._case_status(session, client.id, state, position)
            if case is not None:
                await self._edit_card(
                    session, case, case_card(view, iv, thread_id=case.id or 0, status=status), now
                )
            else:
                by_key[(position, "case")] = await self._new_card(
                    session,
                    client_id=client.id,
                    inquiry=position,
                    kind="case",
                    now=now,
                    render=lambda tid: case_card(view, iv, thread_id=tid, status=status),
                )

    # --- the Escalations hook -------------------------------------------------------------------

    async def officer_decided(self, session: AsyncSession, effect: OfficerDecided) -> None:
        """Edit the case card, note the step in its thread, post the lead card on approval."""
        now = effect.at
        request = effect.request
        client = effect.client
        assert client.id is not None
        state = effect.state
        position = request.inquiry
        threads = {(t.inquiry, t.kind): t for t in await self.threads(session, client.id)}
        case = threads.get((position, "case"))
        view = self._view(client, state)
        iv = inquiry_view(state, position)
        step = f"slack:officer:{digest(request.key)}"
        if effect.resolution is Resolution.ASKED:
            if case is not None:
                note = officer_note(OfficerAction.ASK, effect.approvals[-1], final=False)
                await self._note(
                    session, case, note, kind="officer_note", key=f"{step}:note", now=now
                )
            return
        if effect.resolution is Resolution.AWAITING_SECOND:
            status = CaseStatus(
                "awaiting_second",
                approvals=effect.approvals,
                pending_action=request.action,
            )
        elif effect.resolution is Resolution.DECIDED:
            status = CaseStatus("decided", outcome=effect.outcome, approvals=effect.approvals)
        else:
            return
        if case is not None:
            assert case.id is not None
            await self._edit_card(
                session, case, case_card(view, iv, thread_id=case.id, status=status), now
            )
            note = officer_note(
                request.action,
                effect.approvals[-1],
                final=effect.resolution is Resolution.DECIDED,
            )
            await self._note(session, case, note, kind="officer_note", key=f"{step}:note", now=now)
        if effect.resolution is not Resolution.DECIDED:
            return
        lead = threads.get((position, "lead"))
        if lead is not None:
            await self._edit_card(session, lead, self._lead(view, state, position), now)
        elif request.action in APPROVALS:
            await self._new_card(
                session,
                client_id=client.id,
                inquiry=position,
                kind="lead",
                now=now,
                render=lambda _tid: self._lead(view, state, position),
            )

    # --- the dispatcher's verdict listener ------------------------------------------------------

    async def gate_verdict(self, session: AsyncSession, verdict: GateVerdict) -> None:
        """A sales reply from a Slack thread that the gate stopped gets a notice there."""
        row, result, now = verdict.row, verdict.result, verdict.at
        if result.verdict is Verdict.ALLOWED or row.sender != Sender.SALES.value:
            return
        relay = (
            await session.exec(select(SlackRelay).where(SlackRelay.outbox_id == row.id))
        ).one_or_none()
        if relay is None:
            return
        thread = await session.get(SlackThread, relay.thread_id)
        client = await session.get(Client, row.client_id)
        if thread is None or client is None:
            return
        conversation, _ = await load_state(session, row.client_id)
        try:
            facts = stored_facts(
                conversation.facts if conversation is not None else None,
                restricted=client.restricted_at is not None,
            )
            allowed = allowed_hint(result, facts, reply_window_hours=self.reply_window_hours)
        except Exception:  # the notice must not fail the verdict's transaction
            log.exception("gate notice: the client's facts could not be read")
            allowed = "ask compliance: the client's status could not be read."
        notice = gate_notice(
            verdict=result.verdict.value,
            reason=result.reason,
            allowed=allowed,
            reply=row.text,
            user_id=relay.user_id,
        )
        await self._note(
            session,
            thread,
            notice,
            kind="gate_notice",
            key=f"slack:notice:{row.id}:{result.verdict.value}",
            now=now,
        )

    # --- inbound: a sales reply typed in a lead's thread ----------------------------------------

    async def relay_sales_reply(
        self,
        sessions: SessionFactory,
        *,
        channel: str,
        thread_ts: str,
        user_id: str,
        text: str,
        ts: str,
        key: str,
        now: datetime,
    ) -> RelayResult:
        """Queue a reply typed in a lead's thread for the client, once per Slack event."""
        async with sessions() as session, write_transaction(session):
            thread = await self.thread_at(session, channel, thread_ts)
            if thread is None or thread.kind != "lead" or thread.id is None:
                return RelayResult("not_a_lead_thread")
            await audit.lock_client(session, thread.client_id)
            if not await claim(
                session, source=SOURCE, key=key, client_id=thread.client_id, now=now
            ):
                return RelayResult("duplicate", client_id=thread.client_id)
            plain = from_slack(text)
            if not plain:
                return RelayResult("empty", client_id=thread.client_id)
            queued = await enqueue_in(
                session,
                OutboundRequest(
                    client_id=thread.client_id,
                    text=plain,
                    kind=MessageKind.REPLY.value,
                    sender=Sender.SALES.value,
                    dedupe_key=_key("slack", "reply", channel, ts),
                    reply=True,
                    context={
                        "slack_user": user_id,
                        "slack_channel": channel,
                        "slack_ts": ts,
                        "slack_thread": thread.id,
                    },
                ),
                now=now,
            )
            if queued.created:
                session.add(
                    SlackRelay(
                        outbox_id=queued.outbox_id,
                        thread_id=thread.id,
                        user_id=user_id,
                        ts=ts,
                        created_at=now,
                    )
                )
            return RelayResult("queued", queued.outbox_id, thread.client_id)

    # --- the SLA job ----------------------------------------------------------------------------

    async def remind_overdue_cases(
        self, sessions: SessionFactory, *, now: datetime, sla_hours: float
    ) -> int:
        """Queue one reminder in each undecided case older than the SLA; how many were new."""
        cutoff = now - timedelta(hours=sla_hours)
        stmt = (
            select(SlackThread)
            .join(
                Inquiry,
                and_(
                    col(Inquiry.client_id) == col(SlackThread.client_id),
                    col(Inquiry.position) == col(SlackThread.inquiry),
                ),
            )
            .where(
                SlackThread.kind == "case",
                col(SlackThread.created_at) <= cutoff,
                Inquiry.outcome == Outcome.ESCALATE.value,
            )
            .order_by(col(SlackThread.id))
        )
        async with sessions() as session:
            overdue = list((await session.exec(stmt)).all())
        created = 0
        for thread in overdue:
            async with sessions() as session, write_transaction(session):
                await audit.lock_client(session, thread.client_id)
                before = await session.exec(
                    select(Outbox.id).where(Outbox.dedupe_key == f"slack:sla:{thread.id}")
                )
                if before.first() is not None:
                    continue
                waited = (now - thread.created_at).total_seconds() / 3600
                note = reminder_note(waited_hours=waited, sla_hours=sla_hours)
                await self._note(
                    session,
                    thread,
                    note,
                    kind="sla_reminder",
                    key=f"slack:sla:{thread.id}",
                    now=now,
                )
                created += 1
        return created
