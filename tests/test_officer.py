"""The officer rules (triage.domain.officer): pure, no database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from triage.domain.codes import Outcome, Zone
from triage.domain.officer import (
    TEXT_MAX,
    Approval,
    FirstApproval,
    FourEyes,
    OfficerAction,
    decision_of,
    four_eyes,
    text_problem,
)

AT = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
A = Approval("U1", "T1", "client confirmed residence in Chile", AT)
B = Approval("U2", "T1", "agree: passport and utility bill from Chile", AT)


def test_an_approval_settles_the_zone_and_names_its_rules() -> None:
    d = decision_of(OfficerAction.APPROVE_NON_EU, (A, B))
    assert (d.outcome, d.zone, d.rules) == (Outcome.HANDOFF_NON_EU, Zone.OUTSIDE, ("R1", "R8"))
    assert d.reasons == (A.reason, B.reason) and d.final is B
    eu = decision_of(OfficerAction.APPROVE_EU, (A,))
    assert (eu.outcome, eu.zone) == (Outcome.SERVE_EU_RESTRICTED, Zone.EU)
    decline = decision_of(OfficerAction.DECLINE, (A,))
    assert (decline.outcome, decline.zone, decline.rules) == (Outcome.DECLINE, None, ("R3", "R6"))


def test_a_question_decides_nothing_and_a_decision_needs_an_officer() -> None:
    with pytest.raises(ValueError):
        decision_of(OfficerAction.ASK, (A,))
    with pytest.raises(ValueError):
        decision_of(OfficerAction.DECLINE, ())


@pytest.mark.parametrize("text", ["", "   ", "x" * (TEXT_MAX + 1)])
def test_every_decision_carries_a_reason(text: str) -> None:
    assert text_problem(OfficerAction.DECLINE, text) is not None
    assert "question" in (text_problem(OfficerAction.ASK, text) or "")
    assert text_problem(OfficerAction.DECLINE, "solicited at a conference") is None


def test_four_eyes() -> None:
    approve = OfficerAction.APPROVE_EU
    first = FirstApproval(approve, A)
    assert four_eyes(approve, "U1", required=False, first=None) is FourEyes.DECIDE
    assert four_eyes(OfficerAction.DECLINE, "U1", required=True, first=first) is FourEyes.DECIDE
    assert four_eyes(approve, "U1", required=True, first=None) is FourEyes.FIRST
    assert four_eyes(approve, "U1", required=True, first=first) is FourEyes.SAME_OFFICER
    assert four_eyes(approve, "U2", required=True, first=first) is FourEyes.SECOND
    # The two officers must agree: another kind of approval starts over.
    other = FirstApproval(OfficerAction.APPROVE_NON_EU, A)
    assert four_eyes(approve, "U2", required=True, first=other) is FourEyes.FIRST
