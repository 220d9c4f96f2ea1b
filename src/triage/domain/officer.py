"""What a compliance officer may decide about an escalated inquiry (DESIGN.md invariant 5).

The actions an officer has, the outcome and the rules each decision applies, the residence zone
an approval settles, the four-eyes rule and the reason every decision must carry. Pure: who is
an officer, the stored first approval and the time come in as arguments; the engine applies
the decision to the conversation and the service layer records it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from triage.domain.codes import Outcome, Zone

#: Reasons and questions longer than this are refused (Slack's input allows 3000 characters).
TEXT_MAX = 3000


class OfficerAction(StrEnum):
    """What an officer can do with an escalated inquiry."""

    APPROVE_EU = "approve_eu"
    APPROVE_NON_EU = "approve_non_eu"
    DECLINE = "decline"
    ASK = "ask"


#: The actions that need a second officer when four-eyes is on.
APPROVALS = frozenset({OfficerAction.APPROVE_EU, OfficerAction.APPROVE_NON_EU})

#: The outcome each decision gives the inquiry, and the residence zone it settles (if any).
OUTCOMES: dict[OfficerAction, tuple[Outcome, Zone | None]] = {
    OfficerAction.APPROVE_EU: (Outcome.SERVE_EU_RESTRICTED, Zone.EU),
    OfficerAction.APPROVE_NON_EU: (Outcome.HANDOFF_NON_EU, Zone.OUTSIDE),
    OfficerAction.DECLINE: (Outcome.DECLINE, None),
}

#: The rules (DOMAIN.md) each officer outcome applies; the officer's reason says why.
RULES: dict[Outcome, tuple[str, ...]] = {
    Outcome.SERVE_EU_RESTRICTED: ("R2", "R5", "R6"),
    Outcome.HANDOFF_NON_EU: ("R1", "R8"),
    Outcome.DECLINE: ("R3", "R6"),
}


@dataclass(frozen=True)
class Approval:
    """One officer's part in a decision."""

    officer_id: str
    team_id: str
    reason: str
    at: datetime


@dataclass(frozen=True)
class OfficerDecision:
    """An officer's decision on one inquiry: its outcome, rules and reasons, the zone it
    settles, and the officers behind it (the last one decided)."""

    action: OfficerAction
    outcome: Outcome
    zone: Zone | None
    rules: tuple[str, ...]
    approvals: tuple[Approval, ...]

    @property
    def reasons(self) -> tuple[str, ...]:
        """Every approving officer's reason, first one first."""
        return tuple(a.reason for a in self.approvals)

    @property
    def final(self) -> Approval:
        """The approval that made the decision."""
        return self.approvals[-1]


def decision_of(action: OfficerAction, approvals: tuple[Approval, ...]) -> OfficerDecision:
    """The decision `approvals` make with `action` (not ASK: a question decides nothing)."""
    if action not in OUTCOMES:
        raise ValueError(f"{action.value!r} is not a decision")
    if not approvals:
        raise ValueError("a decision needs an officer's approval")
    outcome, zone = OUTCOMES[action]
    return OfficerDecision(action, outcome, zone, RULES[outcome], approvals)


def text_problem(action: OfficerAction, text: str) -> str | None:
    """Why an officer's reason (or question) cannot be taken, or None when it can."""
    text = text.strip()
    if text and len(text) <= TEXT_MAX:
        return None
    what = "question" if action is OfficerAction.ASK else "reason"
    return f"Please give a {what} of 1 to {TEXT_MAX} characters."


class FourEyes(StrEnum):
    """What an approval is under the four-eyes rule."""

    #: No second officer needed (four-eyes off, or not an approval): decide now.
    DECIDE = "decide"
    #: The first approval: recorded; a different officer must approve the same way.
    FIRST = "first"
    #: The second approval, by a different officer, the same way: decide now.
    SECOND = "second"
    #: The officer who gave the first approval tried to give the second: refused.
    SAME_OFFICER = "same_officer"


@dataclass(frozen=True)
class FirstApproval:
    """The stored first approval of an inquiry, waiting for a second officer."""

    action: OfficerAction
    approval: Approval


def four_eyes(
    action: OfficerAction, officer_id: str, *, required: bool, first: FirstApproval | None
) -> FourEyes:
    """Where `officer_id`'s `action` stands under the four-eyes rule (`required`: it is on).

    A first approval of another kind does not count: the two officers must agree.
    """
    if action not in APPROVALS or not required:
        return FourEyes.DECIDE
    if first is None or first.action is not action:
        return FourEyes.FIRST
    if first.approval.officer_id == officer_id:
        return FourEyes.SAME_OFFICER
    return FourEyes.SECOND
