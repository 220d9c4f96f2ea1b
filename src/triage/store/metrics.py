"""Gauges read from the database for `/metrics`: outbox lag, dead rows, open escalations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import func, select

from triage.domain.codes import Outcome
from triage.store.db import SessionFactory
from triage.store.models import Inquiry, Outbox, OutboxStatus, open_due_at


@dataclass(frozen=True)
class Gauges:
    """What an operator watches."""

    outbox_lag_seconds: float
    dead_rows: int
    open_escalations: int
    oldest_escalation_seconds: float


async def read_gauges(sessions: SessionFactory, *, now: datetime) -> Gauges:
    """Read the gauges in one short read-only session."""
    async with sessions() as session:
        oldest_due = (
            await session.exec(select(func.min(Outbox.due_at)).where(open_due_at(Outbox) <= now))
        ).one()
        dead = (
            await session.exec(
                select(func.count())
                .select_from(Outbox)
                .where(Outbox.status == OutboxStatus.DEAD.value)
            )
        ).one()
        esc_count, esc_oldest = (
            await session.exec(
                select(func.count(), func.min(Inquiry.updated_at)).where(
                    Inquiry.outcome == Outcome.ESCALATE.value
                )
            )
        ).one()

    def age(at: datetime | None) -> float:
        if at is None:
            return 0.0
        from datetime import UTC

        at = at if at.tzinfo else at.replace(tzinfo=UTC)
        return max(0.0, (now - at).total_seconds())

    return Gauges(
        outbox_lag_seconds=age(oldest_due),
        dead_rows=int(dead),
        open_escalations=int(esc_count),
        oldest_escalation_seconds=age(esc_oldest),
    )
