"""Typed domain events the use cases hand to the services that react in the same transaction.

A turn (`TurnDecided`) and an officer's request (`OfficerDecided`, in `officer_requests`) are
handed to the staff notifications (`StaffNotifications`, implemented by the Slack staff cards)
inside the transaction that records them: what the notifications write commits with the event,
or not at all. The gate's verdict at send time is the outbox's own event
(`triage.outbox.dispatcher.GateVerdict`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from sqlmodel.ext.asyncio.session import AsyncSession

from triage.flows.engine import ClientEvent, TurnResult
from triage.store.models import Client

if TYPE_CHECKING:
    from triage.service.officer_requests import OfficerDecided


@dataclass(frozen=True)
class TurnDecided:
    """A client event was handled: the turn's result, with the client row the turn locked."""

    client: Client
    turn: TurnResult
    event: ClientEvent
    #: The update's reference ("telegram:<update id>").
    ref: str
    at: datetime


class StaffNotifications(Protocol):
    """Reacts to the use cases' events inside their transactions (cards, notes, notices)."""

    async def turn_decided(self, session: AsyncSession, event: TurnDecided) -> None:
        """A client's turn was recorded."""
        ...

    async def officer_decided(self, session: AsyncSession, event: OfficerDecided) -> None:
        """An officer's request was carried out (a decision, a first approval, a question)."""
        ...
