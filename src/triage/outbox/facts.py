"""The recipient's facts at send time, read from what the last turn stored.

The engine establishes the facts with each turn and each officer decision, and the store keeps
them beside the conversation state; this module only reads them. It never classifies: a
recipient with no stored facts, or facts that cannot be read, is unknown, and the gate fails
closed on an unknown recipient.
"""

from __future__ import annotations

import json
from dataclasses import replace

from triage.domain.facts import UNKNOWN_RECIPIENT, facts_from_dict
from triage.domain.gate import RecipientFacts


def stored_facts(raw: str | None, *, restricted: bool = False) -> RecipientFacts:
    """The facts stored as `raw` (None: nothing is known); raises ValueError when unreadable.

    `restricted` adds a restriction known outside the facts (the client row's erasure mark); it
    can only tighten what the facts say, never lift it.
    """
    if raw is None:
        facts = UNKNOWN_RECIPIENT
    else:
        try:
            facts = facts_from_dict(json.loads(raw))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"the stored recipient facts cannot be read: {exc!r}") from exc
    if restricted and not facts.restricted:
        facts = replace(facts, restricted=True)
    return facts
