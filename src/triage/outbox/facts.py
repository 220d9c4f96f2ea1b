"""The recipient's facts as the outbound gate sees them, built from a conversation state."""

from __future__ import annotations

from datetime import UTC, datetime

from triage.domain.codes import Outcome, ServiceCode
from triage.domain.gate import RecipientFacts
from triage.flows.engine import ConversationState, Engine


def _aware(value: str) -> datetime:
    at = datetime.fromisoformat(value)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def recipient_facts(
    state: ConversationState, engine: Engine, *, restricted: bool = False
) -> RecipientFacts:
    """What the firm knows about the client of `state` now (zone with an officer's override).

    `restricted` adds a restriction known outside the state (the client row's erasure mark);
    it can only tighten what the state says, never lift it.
    """
    outcomes = tuple(i.outcome for i in state.inquiries)
    served = tuple(
        ServiceCode(i.service)
        for i in state.inquiries
        if i.service and i.outcome is Outcome.SERVE_EU_RESTRICTED
    )
    requested = tuple(ServiceCode(i.service) for i in state.inquiries if i.service)
    last = _aware(state.last_client_at) if state.last_client_at else None
    return RecipientFacts(
        zone=engine.recipient_zone(state),
        outcomes=outcomes,
        served=served,
        requested=requested,
        last_client_message_at=last,
        restricted=state.restricted or restricted,
    )
