"""The dispatcher: claim due rows under a lease, judge each at send time, record, send, mark.

One row goes through these steps, each in a transaction of its own:

1. **Claim** (one short transaction for a batch): due rows that are `pending`, or `sending`
   with an expired lease (a crashed worker's), oldest `due_at` first, `FOR UPDATE SKIP LOCKED`
   on PostgreSQL so that concurrent workers take disjoint rows. Only the oldest unfinished row
   of each chat is claimable, so a chat's messages leave in order even when one of them waits
   for a retry. The rows become `sending` with `locked_by` and `locked_until`. The attempt is
   counted when the row is judged (step 3), not when it is claimed: a worker that dies while
   sending one row of its batch has not tried the others, and they must not go dead for it.
   SQLite ignores the row lock; run one dispatcher there (its transactions are serialised by
   `BEGIN IMMEDIATE` anyway).
2. **Pace**: the rate limiter gives the row a slot; a slot further away than
   `max_inline_wait` (a chat that just got a message) puts the row back for later, so one busy
   chat never stalls the batch.
3. **Judge and record** (client row locked, like every writer of the client's data): a follow-up
   made moot by a sales reply is cancelled; a client message is judged by the gate against the
   client's facts *now* (the facts the last turn stored and the client row); the verdict, text and
   reason are appended to the client's audit chain and committed. Blocked and held rows stop
   here, never sent. Staff rows (channel "slack") are recorded without the client gate.
4. **Send** through the channel's `ChannelSender`, outside any transaction, right after the
   rate limiter counts it (`RateLimiter.acquire_send`: the limits hold for the actual sends).
5. **Mark** sent (with an "outbound_sent" event), or record the failure: a transient one is
   retried with exponential backoff and jitter (at least the server's `retry_after`) until
   `max_attempts`, then the row is `dead`; a permanent one is `dead` at once.

The mark of a sent row is committed in the transaction that judges the next row of the batch
(one commit per row instead of two), or on its own when the batch ends, before any pacing
wait, and whenever that transaction fails. So a worker never sends a row while another row it
sent is unmarked: the unmarked window is still one row per worker, from its send to the next
judge's commit (a few milliseconds longer than a mark of its own).

Delivery is at least once: a worker that dies between 4 and 5 leaves its row `sending`; after
the lease expires another worker judges and sends it again. See `triage.outbox`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import secrets
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Protocol

from sqlalchemy import and_, bindparam, or_, update
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from triage.domain.codes import MessageKind, Sender, Verdict
from triage.domain.gate import GateResult, OutboundMessage, judge
from triage.domain.profile import CompanyProfile
from triage.observability import Metrics
from triage.outbox.clock import Clock, SystemClock
from triage.outbox.facts import stored_facts
from triage.outbox.ratelimit import RateLimiter
from triage.outbox.rows import (
    SALES_REPLIED,
    STAFF_CHANNELS,
    DeadRow,
    dead_rows,
    release_held,
)
from triage.outbox.senders import (
    ChannelSender,
    Delivery,
    PermanentSendError,
    SentReceipt,
    TransientSendError,
)
from triage.store import audit
from triage.store.db import SessionFactory, write_transaction
from triage.store.models import Client, Conversation, Outbox, OutboxStatus, open_due_at

log = logging.getLogger(__name__)

#: Stored error texts are cut to this length (a 5xx page can be long).
_ERROR_MAX = 2000


@dataclass(frozen=True)
class GateVerdict:
    """The gate judged a client's row at send time (the event a verdict listener is told)."""

    row: Outbox
    result: GateResult
    at: datetime


class VerdictListener(Protocol):
    """Told of each gated row's verdict inside the transaction that records it: what it writes
    commits with the verdict (a notice to the sender), and if it raises the row is judged again."""

    async def gate_verdict(self, session: AsyncSession, verdict: GateVerdict) -> None:
        """React to one verdict."""
        ...


@dataclass(frozen=True)
class DispatcherConfig:
    """How the dispatcher claims, paces and retries."""

    #: Rows claimed per transaction.
    batch_size: int = 50
    #: How long a claim is good for. Must cover pacing and one send of the whole batch's worst
    #: row; a worker that overruns it may see its row taken over (and sent twice).
    lease_seconds: float = 120.0
    #: Attempts before a row is dead (each claim counts as one).
    max_attempts: int = 8
    #: Backoff after the n-th failed attempt: min(max, base * 2**(n-1)), times 0.5-1.0 jitter.
    backoff_base_seconds: float = 2.0
    backoff_max_seconds: float = 900.0
    #: A send that has not answered by then counts as a transient failure.
    send_timeout_seconds: float = 30.0
    #: `drain` claims batch after batch while they come back full, at most this many.
    max_batches: int = 20
    rate_limit: bool = True
    overall_per_second: float = 30.0
    per_chat_per_second: float = 1.0
    #: A row whose slot is further away than this goes back to the queue instead of waiting.
    max_inline_wait_seconds: float = 0.25

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, int | float) and not isinstance(value, bool) and value <= 0:
                raise ValueError(f"dispatcher setting {f.name} must be positive, not {value}")
        if self.backoff_max_seconds < self.backoff_base_seconds:
            raise ValueError("backoff_max_seconds must be at least backoff_base_seconds")
        floor = self.send_timeout_seconds + self.max_inline_wait_seconds
        if self.lease_seconds <= floor:
            raise ValueError(
                f"lease_seconds ({self.lease_seconds}) must exceed send_timeout_seconds plus "
                f"max_inline_wait_seconds ({floor}), or sends would outlive their lease"
            )


@dataclass
class DrainReport:
    """What one drain did, row by row outcome."""

    claimed: int = 0
    sent: int = 0
    blocked: int = 0
    held: int = 0
    cancelled: int = 0
    #: Send attempts that failed (each is also counted in `dead` when it was the last).
    failed: int = 0
    dead: int = 0
    #: Put back for later by the rate limiter.
    deferred: int = 0
    #: Taken over by another worker after this one's lease expired.
    skipped: int = 0
    #: Unexpected errors (database); the row is retried after its lease expires.
    errors: int = 0

    def add(self, other: DrainReport) -> None:
        """Add another report's counts to this one."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def stopped(self, stop: Stop) -> None:
        """Count a row that was judged and not sent."""
        if stop is Stop.SKIPPED:
            self.skipped += 1
        elif stop is Stop.DEAD:
            self.dead += 1
        elif stop is Stop.CANCELLED:
            self.cancelled += 1
        elif stop is Stop.BLOCKED:
            self.blocked += 1
        else:
            self.held += 1


class Stop(Enum):
    """Why a judged row is not sent (and the status it is left in)."""

    #: Another worker holds the row now (this one's lease expired); left as it is.
    SKIPPED = None
    DEAD = OutboxStatus.DEAD
    CANCELLED = OutboxStatus.CANCELLED
    BLOCKED = OutboxStatus.BLOCKED
    HELD = OutboxStatus.HELD

    @property
    def status(self) -> OutboxStatus:
        """The status the row is released in (not for SKIPPED: that row is not ours)."""
        assert self.value is not None, "a skipped row is not released"
        status: OutboxStatus = self.value
        return status


#: The row's stop when the gate does not allow it.
_STOPPED_BY = {Verdict.BLOCKED: Stop.BLOCKED, Verdict.HELD: Stop.HELD}


@dataclass(frozen=True)
class _Claimed:
    id: int
    client_id: int
    channel: str
    kind: str
    attempts: int


@dataclass(frozen=True)
class _Unmarked:
    """A row that was sent and whose mark is not committed yet."""

    claimed: _Claimed
    receipt: SentReceipt
    #: When the send returned (the row's `sent_at` and the "outbound_sent" event's time).
    at: datetime
    #: The same moment on the monotonic clock (the mark is retried for 90 % of the lease
    #: from then).
    monotonic: float


#: The statements of a row's judge and mark, built once (compiled once, then only run).
#: The row being judged with its client (locked first, like every writer of the client's
#: data; PostgreSQL locks a statement's rows in the order of its FROM list) and the
#: recipient facts the gate needs (stored with the last turn), in one statement.
_JUDGE_LOAD = (
    select(Client, Outbox, Conversation.facts)
    .select_from(Client)
    .join(Outbox, col(Outbox.client_id) == col(Client.id))
    .outerjoin(Conversation, col(Conversation.client_id) == col(Client.id))
    .where(col(Client.id) == bindparam("client_id"), col(Outbox.id) == bindparam("outbox_id"))
    .with_for_update(of=[Client, Outbox])  # type: ignore[list-item]
    .execution_options(populate_existing=True)
)
#: A sales reply sent to the client after a row was queued (it cancels a follow-up).
_SALES_REPLY_AFTER = (
    select(Outbox.id)
    .where(
        col(Outbox.client_id) == bindparam("client_id"),
        col(Outbox.sender) == Sender.SALES.value,
        col(Outbox.status) == OutboxStatus.SENT.value,
        col(Outbox.sent_at) > bindparam("created_at"),
    )
    .limit(1)
)
#: A row that was sent is `sent`, whoever holds it now.
_MARK_SENT = (
    update(Outbox)
    .where(col(Outbox.id) == bindparam("row_id"), col(Outbox.status) != OutboxStatus.SENT.value)
    .values(
        status=OutboxStatus.SENT.value,
        sent_at=bindparam("at"),
        locked_by=None,
        locked_until=None,
        next_attempt_at=None,
        last_error=None,
    )
)


def default_worker_name() -> str:
    """host:pid:random, unique per dispatcher instance."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{secrets.token_hex(4)}"


class Dispatcher:
    """Drains the outbox through the gate to the channel senders."""

    def __init__(
        self,
        sessions: SessionFactory,
        *,
        senders: Mapping[str, ChannelSender],
        profile: CompanyProfile,
        config: DispatcherConfig | None = None,
        clock: Clock | None = None,
        name: str | None = None,
        jitter: Callable[[], float] = random.random,
        verdicts: VerdictListener | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._sessions = sessions
        #: Prometheus counters of verdicts, sends and channel errors (None: not counted).
        self._metrics = metrics
        self._senders = dict(senders)
        #: Told of every gate verdict inside the transaction that records it (Slack notices).
        self._verdicts = verdicts
        self._profile = profile
        self._config = config or DispatcherConfig()
        self._clock: Clock = clock or SystemClock()
        self._name = name or default_worker_name()
        self._jitter = jitter
        c = self._config
        self._limiter = (
            RateLimiter(
                overall_per_second=c.overall_per_second, per_chat_per_second=c.per_chat_per_second
            )
            if c.rate_limit
            else None
        )
        self._claim_due, self._take = self._claim_statements()

    @property
    def name(self) -> str:
        """This worker's name, written to `locked_by` and to the audit events."""
        return self._name

    @property
    def config(self) -> DispatcherConfig:
        """The settings in force."""
        return self._config

    # --- the drain ------------------------------------------------------------------------------

    async def drain(self, *, stop: Callable[[], bool] | None = None) -> DrainReport:
        """Drain batch after batch, at most `max_batches` (the scheduled job).

        Another batch follows while the last one was full, or while it finished rows: a
        finished row lets the next message of its chat be claimed (one row per chat a batch),
        so a turn's several messages leave in one drain. `stop` is asked before each batch: a
        shutting-down worker finishes its batch (its rows are claimed) and claims no more.
        """
        total = DrainReport()
        for _ in range(self._config.max_batches):
            if stop is not None and stop():
                break
            report = await self.drain_once()
            total.add(report)
            finished = report.sent + report.blocked + report.held + report.cancelled + report.dead
            if report.claimed == 0 or (report.claimed < self._config.batch_size and not finished):
                break
        return total

    async def drain_once(self) -> DrainReport:
        """Claim one batch of due rows and take each through gate, evidence and send."""
        report = DrainReport()
        claimed = await self._claim()
        report.claimed = len(claimed)
        unmarked: _Unmarked | None = None
        for row in claimed:
            try:
                unmarked = await self._process(row, report, unmarked)
            except Exception:
                # `_process` recorded the previous row's send (or gave up on it, after retrying
                # for most of its lease) before raising. This row stays claimed and is taken
                # again when its lease expires.
                unmarked = None
                report.errors += 1
                log.exception("outbox row %s: unexpected error, retried after the lease", row.id)
                await self._charge_attempt(row)
        if unmarked is not None:
            try:
                await self._settle(unmarked, report)
            except Exception:
                report.errors += 1
                log.exception(
                    "outbox row %s: sent, but recording it failed; sent again after the lease",
                    unmarked.claimed.id,
                )
        return report

    def _update_mine(self, row: _Claimed) -> Any:
        """An UPDATE of a claimed row that applies only while this worker still holds it."""
        return update(Outbox).where(
            col(Outbox.id) == row.id,
            col(Outbox.status) == OutboxStatus.SENDING.value,
            col(Outbox.locked_by) == self._name,
        )

    async def _charge_attempt(self, row: _Claimed) -> None:
        """Count an attempt for a row whose processing raised (its verdict may have rolled back).

        Otherwise a row whose judging fails every time would be retried forever, never dead.
        """
        try:
            async with self._sessions() as session, write_transaction(session):
                await session.exec(self._update_mine(row).values(attempts=Outbox.attempts + 1))
        except Exception:
            log.warning("outbox row %s: could not count the failed attempt", row.id, exc_info=True)

    async def _claim(self) -> list[_Claimed]:
        if not self._senders:
            return []
        now = self._clock.now()
        lease_until = now + timedelta(seconds=self._config.lease_seconds)
        async with self._sessions() as session, write_transaction(session):
            claimed = [
                _Claimed(r.id, r.client_id, r.channel, r.kind, r.attempts + 1)
                for r in (await session.exec(self._claim_due, params={"now": now})).all()
            ]
            if not claimed:
                return []
            params = {"ids": [c.id for c in claimed], "until": lease_until}
            await session.exec(self._take, params=params)
        return claimed

    def _claim_statements(self) -> tuple[Any, Any]:
        """The claim's two statements, built once per dispatcher (its channels are fixed)."""
        now = bindparam("now")
        # A chat's messages go out in order: a row waits while an earlier row of the same
        # client and channel is unfinished (waiting for a retry, paced, or being sent by another
        # worker). So a batch holds at most one row per chat, and no worker overtakes another.
        #
        # "Unfinished and due by now" is `open_due_at(...) <= now` on both sides (an earlier
        # row is due before the candidate or at the same time, and the candidate is due): the
        # expression of `ix_outbox_open_due_at`, whose statistics tell the planner how few
        # unfinished rows are due (H12; from status and due_at it expected 800 k at 1 M
        # clients). Bounding the earlier rows by now also keeps PostgreSQL from hashing every
        # unfinished row, follow-ups due in days included, on each claim (H7).
        earlier = aliased(Outbox)
        earlier_unfinished = (
            select(earlier.id)
            .where(
                earlier.client_id == Outbox.client_id,
                earlier.channel == Outbox.channel,
                open_due_at(earlier) <= now,
                or_(
                    col(earlier.due_at) < Outbox.due_at,
                    and_(col(earlier.due_at) == Outbox.due_at, col(earlier.id) < Outbox.id),
                ),
            )
            .exists()
        )
        due = (
            select(Outbox.id, Outbox.client_id, Outbox.channel, Outbox.kind, Outbox.attempts)
            .where(
                or_(
                    col(Outbox.status) == OutboxStatus.PENDING.value,
                    and_(
                        col(Outbox.status) == OutboxStatus.SENDING.value,
                        col(Outbox.locked_until) < now,
                    ),
                ),
                # Implied by the next line, and there for SQLite: its planner ranges the
                # `(status, due_at)` index with it (without it, every pending row is read).
                col(Outbox.due_at) <= now,
                open_due_at(Outbox) <= now,
                or_(col(Outbox.next_attempt_at).is_(None), col(Outbox.next_attempt_at) <= now),
                col(Outbox.channel).in_(sorted(self._senders)),
                ~earlier_unfinished,
            )
            .order_by(col(Outbox.due_at), col(Outbox.id))
            .limit(self._config.batch_size)
            .with_for_update(skip_locked=True)
        )
        take = (
            update(Outbox)
            .where(col(Outbox.id).in_(bindparam("ids", expanding=True)))
            .values(
                status=OutboxStatus.SENDING.value,
                locked_by=self._name,
                locked_until=bindparam("until"),
            )
        )
        return due, take

    def _pace_key(self, row: _Claimed) -> str:
        # Staff cards go to one Slack channel per kind; client messages to the client's chat.
        if row.channel in STAFF_CHANNELS:
            return f"{row.channel}:staff:{row.kind}"
        return f"{row.channel}:client:{row.client_id}"

    async def _process(
        self, row: _Claimed, report: DrainReport, unmarked: _Unmarked | None
    ) -> _Unmarked | None:
        """Take one row through pace, judge, send; the row if it was sent and is not marked yet.

        `unmarked` (the previous row, sent) is marked in this row's judge transaction, or on
        its own before any wait; it is never left unmarked when this returns or raises, except
        when recording it failed for most of its lease (the exception says so).
        """
        key = self._pace_key(row)
        if self._limiter is not None:
            slot = self._limiter.reserve(
                key, self._clock.monotonic(), max_wait=self._config.max_inline_wait_seconds
            )
            if unmarked is not None and (not slot.granted or slot.wait > 0):
                # No waiting, nor deferring, with a sent row unmarked.
                await self._settle(unmarked, report)
                unmarked = None
            if not slot.granted:
                await self._defer(row, slot.wait)
                report.deferred += 1
                return None
            if slot.wait > 0:
                await self._clock.sleep(slot.wait)
        try:
            judged = await self._judge(row, unmarked)
        except Exception:
            if unmarked is None:
                raise
            # The previous row's mark rolled back with this verdict (the database went away,
            # or the verdict failed): record it on its own, retried while the database is
            # away, then judge this row once more, alone.
            log.warning(
                "outbox row %s: judging it with the mark of row %s failed; marking on its own",
                row.id,
                unmarked.claimed.id,
                exc_info=True,
            )
            await self._settle(unmarked, report)
            judged = await self._judge(row)
        else:
            if unmarked is not None:
                self._count_sent(unmarked, report)
        if isinstance(judged, Stop):
            report.stopped(judged)
            return None
        try:
            if self._limiter is not None:
                # Counted at the moment of sending: nothing is awaited between this and the
                # send (asyncio.timeout runs the send in this task, with no loop turn first).
                await self._limiter.acquire_send(key, self._clock)
            async with asyncio.timeout(self._config.send_timeout_seconds):
                receipt = await self._senders[row.channel].send(judged)
        except TransientSendError as exc:
            self._count_error(row.channel, "transient")
            await self._failed(
                row, key=key, error=str(exc), retry_after=exc.retry_after, report=report
            )
        except PermanentSendError as exc:
            self._count_error(row.channel, "permanent")
            await self._failed(row, key=key, error=str(exc), permanent=True, report=report)
        except TimeoutError:
            timeout = self._config.send_timeout_seconds
            error = f"no answer within {timeout} s"
            await self._failed(row, key=key, error=error, report=report)
        except Exception as exc:
            # An adapter bug is retried like an outage and ends dead, never silently dropped.
            log.exception("outbox row %s: sender raised an unexpected error", row.id)
            await self._failed(row, key=key, error=repr(exc), report=report)
        else:
            return _Unmarked(row, receipt, self._clock.now(), self._clock.monotonic())
        return None

    async def _settle(self, unmarked: _Unmarked, report: DrainReport) -> None:
        """Mark a sent row in a transaction of its own (retried while the database is away)."""
        await self._mark_sent_persistently(unmarked)
        self._count_sent(unmarked, report)

    def _count_sent(self, unmarked: _Unmarked, report: DrainReport) -> None:
        """A sent row's mark is committed: count it in the report and the metrics."""
        report.sent += 1
        if self._metrics is not None:
            self._metrics.sent.labels(unmarked.claimed.channel).inc()

    # --- step 2: put back for later -----------------------------------------------------------

    async def _defer(self, row: _Claimed, wait: float) -> None:
        later = self._clock.now() + timedelta(seconds=wait)
        async with self._sessions() as session, write_transaction(session):
            await session.exec(
                self._update_mine(row).values(
                    status=OutboxStatus.PENDING.value,
                    locked_by=None,
                    locked_until=None,
                    next_attempt_at=later,
                )
            )

    # --- step 3: judge and record ---------------------------------------------------------------

    async def _judge(
        self, claimed: _Claimed, unmarked: _Unmarked | None = None
    ) -> Delivery | Stop:
        """Judge one claimed row and commit the verdict: a Delivery when it may be sent, else
        why it stops here.

        `unmarked`, a row sent before, is marked sent in the same transaction (first, so that
        this row's judge sees it sent: a sales reply cancels a follow-up behind it).
        """
        now = self._clock.now()
        async with self._sessions() as session, write_transaction(session):
            # Client rows are locked in id order (two workers doing the same never deadlock).
            if unmarked is not None and unmarked.claimed.client_id < claimed.client_id:
                await self._record_sent(session, unmarked)
                unmarked = None
            # The client row first, like every writer of the client's data (no deadlocks),
            # then the outbox row, and the recipient facts the gate needs: one statement.
            loaded = (
                await session.exec(
                    _JUDGE_LOAD, params={"client_id": claimed.client_id, "outbox_id": claimed.id}
                )
            ).one_or_none()
            if unmarked is not None:
                await self._record_sent(session, unmarked)
            if loaded is None:
                return Stop.SKIPPED
            client, row, raw_facts = loaded
            if row.status != OutboxStatus.SENDING or row.locked_by != self._name:
                return Stop.SKIPPED
            row.locked_until = now + timedelta(seconds=self._config.lease_seconds)
            # The attempt is charged here, with the verdict and before the send: a row whose
            # sending kills the worker (a poison message) still runs out of attempts.
            row.attempts += 1
            base = self._payload(row)
            stopped = await self._stop_before_gate(session, client, row, base, now)
            if stopped is not None:
                return stopped
            gated = row.channel not in STAFF_CHANNELS
            result = (
                self._verdict(row, client=client, raw_facts=raw_facts, now=now)
                if gated
                else _STAFF
            )
            row.verdict = result.verdict.value
            row.verdict_reason = result.reason
            event = {
                **base,
                "gated": gated,
                "verdict": result.verdict.value,
                "reason": result.reason,
                "rules": list(result.rules),
                "judged_kind": result.judged_kind.value if result.judged_kind else None,
            }
            await audit.append(
                session, row.client_id, f"outbound_{row.verdict}", event, at=now, client=client
            )
            if gated and self._metrics is not None:
                self._metrics.gate.labels(result.verdict.value, row.kind).inc()
            if gated and self._verdicts is not None:
                await self._verdicts.gate_verdict(session, GateVerdict(row, result, now))
            if result.verdict is not Verdict.ALLOWED:
                stop = _STOPPED_BY[result.verdict]
                self._release(row, stop.status)
                session.add(row)
                return stop
            session.add(row)
            assert row.id is not None
            return Delivery(
                outbox_id=row.id,
                client_id=row.client_id,
                channel=row.channel,
                external_id=client.external_id,
                text=row.text,
                buttons=tuple((str(b[0]), str(b[1])) for b in row.buttons),
                kind=row.kind,
                dedupe_key=row.dedupe_key,
                attempt=row.attempts,
            )

    async def _stop_before_gate(
        self,
        session: AsyncSession,
        client: Client,
        row: Outbox,
        base: dict[str, Any],
        now: datetime,
    ) -> Stop | None:
        """Dead (judged too often without a result) or cancelled (made moot by a sales reply)
        before the gate is asked, with its audit event; None when the gate is to judge it."""
        if row.attempts > self._config.max_attempts:
            reason = (
                f"judged {row.attempts - 1} times without a result: the workers holding "
                "it stopped before finishing"
            )
            self._release(row, OutboxStatus.DEAD)
            row.last_error = reason
            session.add(row)
            dead = {**base, "attempts": row.attempts, "reason": reason}
            await audit.append(
                session, row.client_id, "outbound_dead", dead, at=now, client=client
            )
            log.warning("outbox row %s dead: %s", row.id, reason)
            return Stop.DEAD
        cancel = await self._cancel_reason(session, row)
        if cancel:
            self._release(row, OutboxStatus.CANCELLED)
            session.add(row)
            event = {**base, "reason": cancel}
            await audit.append(
                session, row.client_id, "outbound_cancelled", event, at=now, client=client
            )
            return Stop.CANCELLED
        return None

    def _payload(self, row: Outbox) -> dict[str, Any]:
        return {
            "outbox_id": row.id,
            "dedupe_key": row.dedupe_key,
            "channel": row.channel,
            "kind": row.kind,
            "sender": row.sender,
            "text": row.text,
            "buttons": row.buttons,
            "reply": row.reply,
            "due_at": audit.iso_utc(row.due_at),
            "attempt": row.attempts,
            "worker": self._name,
        }

    @staticmethod
    def _release(row: Outbox, status: OutboxStatus) -> None:
        row.status = status.value
        row.locked_by = None
        row.locked_until = None

    async def _cancel_reason(self, session: AsyncSession, row: Outbox) -> str:
        if row.unless is None:
            return ""
        if row.unless != SALES_REPLIED:
            # Only conditions this code knows are stored (see rows.CANCEL_CONDITIONS); a row from
            # a newer version is left to the gate rather than guessed about.
            return ""
        params = {"client_id": row.client_id, "created_at": row.created_at}
        reply = (await session.exec(_SALES_REPLY_AFTER, params=params)).first()
        if reply is None:
            return ""
        return f"a sales reply (outbox row {reply}) was sent after this row was queued"

    def _verdict(
        self, row: Outbox, *, client: Client, raw_facts: str | None, now: datetime
    ) -> GateResult:
        """The gate's verdict with the client's current facts; anything unclear is held."""
        if row.channel != client.channel:
            return GateResult(
                Verdict.HELD,
                f"row is for channel {row.channel!r} but the client is on {client.channel!r}",
                ("R6",),
            )
        try:
            msg = OutboundMessage(
                Sender(row.sender), MessageKind(row.kind), row.text, now, reply=row.reply
            )
        except ValueError as exc:
            return GateResult(Verdict.HELD, f"not a client message the gate knows: {exc}", ("R6",))
        try:
            # No conversation: nothing is known, and the gate fails closed on that.
            facts = stored_facts(raw_facts, restricted=client.restricted_at is not None)
        except Exception as exc:
            return GateResult(
                Verdict.HELD, f"the client's facts could not be established: {exc!r}", ("R6",)
            )
        return judge(msg, facts, self._profile)

    # --- step 5: mark ---------------------------------------------------------------------------

    async def _mark_sent_persistently(self, unmarked: _Unmarked) -> None:
        """Record a send that happened, retrying while the database is away.

        The message has reached the client: giving up here would leave the row `sending`, and
        after its lease another drain would send it again. So the mark is retried with backoff
        for as long as this worker's lease lasts (a crash of the process is the only window
        left for a second send).
        """
        claimed = unmarked.claimed
        # From the send, not from now: a failed attempt to mark it with the next row's verdict
        # may have taken a while already.
        deadline = unmarked.monotonic + self._config.lease_seconds * 0.9
        delay = 0.1
        for attempt in range(1, 61):
            try:
                async with self._sessions() as session, write_transaction(session):
                    await self._record_sent(session, unmarked)
                return
            except Exception:
                if self._clock.monotonic() >= deadline or attempt == 60:
                    raise
                log.warning(
                    "outbox row %s: sent, but recording it failed; retrying in %.1fs",
                    claimed.id,
                    delay,
                )
                await asyncio.sleep(delay * (0.5 + self._jitter() / 2))
                delay = min(delay * 2, 5.0)

    def _count_error(self, channel: str, kind: str) -> None:
        if self._metrics is not None:
            self._metrics.channel_errors.labels(channel, kind).inc()

    async def _record_sent(self, session: AsyncSession, unmarked: _Unmarked) -> None:
        """Mark a sent row inside the caller's transaction (with its "outbound_sent" event)."""
        claimed, now = unmarked.claimed, unmarked.at
        sent = {
            "outbox_id": claimed.id,
            "attempt": claimed.attempts,
            "worker": self._name,
            "message_id": unmarked.receipt.message_id,
        }
        # The append locks the client row first, like every writer of the client's data.
        await audit.append(session, claimed.client_id, "outbound_sent", sent, at=now)
        # It was sent, whoever holds the row now: a worker that took it over after our
        # lease expired must not send it again, so the status says so in any case.
        result = await session.exec(_MARK_SENT, params={"row_id": claimed.id, "at": now})
        if result.rowcount != 1:
            # Another worker sent it too (this one overran its lease): the client got it
            # twice, and the evidence says so.
            note = {**sent, "reason": "already marked sent by another worker"}
            await audit.append(session, claimed.client_id, "outbound_duplicate", note, at=now)
            log.warning("outbox row %s sent twice (lease overrun)", claimed.id)

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        """Seconds before the next attempt after the `attempt`-th failed one."""
        c = self._config
        delay = min(c.backoff_max_seconds, c.backoff_base_seconds * 2.0 ** (attempt - 1))
        # Half fixed, half random: spreads retries of many rows that failed together.
        delay *= 0.5 + 0.5 * self._jitter()
        return max(delay, retry_after or 0.0)

    async def _failed(
        self,
        claimed: _Claimed,
        *,
        key: str,
        error: str,
        report: DrainReport,
        retry_after: float | None = None,
        permanent: bool = False,
    ) -> None:
        now = self._clock.now()
        report.failed += 1
        dead = permanent or claimed.attempts >= self._config.max_attempts
        delay = None if dead else self.backoff(claimed.attempts, retry_after)
        if retry_after and self._limiter is not None:
            self._limiter.pause(key, self._clock.monotonic() + retry_after)
        async with self._sessions() as session, write_transaction(session):
            await audit.lock_client(session, claimed.client_id)
            row = await session.get(
                Outbox, claimed.id, with_for_update=True, populate_existing=True
            )
            mine = (
                row is not None
                and row.status == OutboxStatus.SENDING
                and row.locked_by == self._name
            )
            next_at = now + timedelta(seconds=delay) if delay is not None else None
            events: list[tuple[str, Mapping[str, Any]]] = [
                (
                    "outbound_failed",
                    {
                        "outbox_id": claimed.id,
                        "attempt": claimed.attempts,
                        "worker": self._name,
                        "error": error[:_ERROR_MAX],
                        "permanent": permanent,
                        "retry_after": retry_after,
                        "next_attempt_at": audit.iso_utc(next_at) if next_at and mine else None,
                    },
                )
            ]
            if row is not None and mine:
                row.last_error = error[:_ERROR_MAX]
                if dead:
                    self._release(row, OutboxStatus.DEAD)
                    why = "permanent failure" if permanent else f"{claimed.attempts} attempts"
                    events.append(
                        (
                            "outbound_dead",
                            {
                                "outbox_id": claimed.id,
                                "attempts": claimed.attempts,
                                "worker": self._name,
                                "reason": f"gave up after {why}: {error[:_ERROR_MAX]}",
                            },
                        )
                    )
                    report.dead += 1
                    log.warning("outbox row %s dead: %s", claimed.id, error)
                else:
                    self._release(row, OutboxStatus.PENDING)
                    row.next_attempt_at = next_at
                session.add(row)
            await audit.append_many(session, claimed.client_id, events, at=now)

    # --- reports and releases -------------------------------------------------------------------

    async def release_held(self, client_id: int, *, by: str, reason: str = "") -> list[int]:
        """Queue a client's held rows again (after an officer decided); the next drain judges
        them against the new facts."""
        return await release_held(
            self._sessions, client_id, by=by, reason=reason, now=self._clock.now()
        )

    async def dead_rows(self, *, client_id: int | None = None, limit: int = 100) -> list[DeadRow]:
        """The rows given up on (see `triage.outbox.rows.dead_rows`)."""
        return await dead_rows(self._sessions, client_id=client_id, limit=limit)


#: Staff rows (lead cards, case cards) go to the firm's own people, not to the client.
_STAFF = GateResult(
    Verdict.ALLOWED, "staff message: addressed to the firm's staff, not to a client", ()
)
