"""The recipient's facts as stored with each turn: `RecipientFacts` to plain data and back.

The engine establishes the facts when a turn or an officer's decision changes them; the store
keeps them beside the conversation state; the outbox reads them at send time and never
classifies anything itself. Unreadable data is an error here: the outbox then holds the row.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from triage.domain.codes import Outcome, ServiceCode, Zone
from triage.domain.gate import RecipientFacts

#: Facts when nothing is known of the recipient: the gate fails closed on them.
UNKNOWN_RECIPIENT = RecipientFacts(zone=Zone.UNKNOWN)


def facts_to_dict(facts: RecipientFacts) -> dict[str, Any]:
    """Plain, JSON-serialisable data for storage."""
    last = facts.last_client_message_at
    return {
        "zone": facts.zone.value,
        "outcomes": [o.value if o is not None else None for o in facts.outcomes],
        "served": [s.value for s in facts.served],
        "requested": [s.value for s in facts.requested],
        "last_client_message_at": last.isoformat() if last is not None else None,
        "restricted": facts.restricted,
        "pending": None if facts.pending is None else [s.value for s in facts.pending],
        "pending_products": (
            None if facts.pending_products is None else list(facts.pending_products)
        ),
        "language": facts.language,
    }


def facts_from_dict(data: dict[str, Any]) -> RecipientFacts:
    """Rebuild stored facts; raises ValueError (or KeyError, TypeError) on anything else."""
    last = data["last_client_message_at"]
    at = datetime.fromisoformat(last) if last is not None else None
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return RecipientFacts(
        zone=Zone(data["zone"]),
        outcomes=tuple(Outcome(o) if o is not None else None for o in data["outcomes"]),
        served=tuple(ServiceCode(s) for s in data["served"]),
        requested=tuple(ServiceCode(s) for s in data["requested"]),
        last_client_message_at=at,
        restricted=bool(data["restricted"]),
        # Facts stored before these keys existed: None means "every requested service not
        # served is pending" to the gate, which fails the same way closed.
        pending=_codes(data.get("pending")),
        pending_products=_names(data.get("pending_products")),
        language=data.get("language"),
    )


def _codes(value: Any) -> tuple[ServiceCode, ...] | None:
    return None if value is None else tuple(ServiceCode(s) for s in value)


def _names(value: Any) -> tuple[str, ...] | None:
    return None if value is None else tuple(str(s) for s in value)
