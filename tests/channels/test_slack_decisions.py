"""Only compliance officers decide escalated cases, each with a reason; decisions take effect in
one transaction: the card, the client's message, the lead card, the held messages."""

from __future__ import annotations

import json

from sqlmodel import select

from tests.channels.conftest import (
    COMPLIANCE,
    INTRUDER,
    OFFICER_1,
    OFFICER_2,
    OTHER_TEAM,
    SALES,
    UNDECIDED,
    Rig,
    RigFactory,
    buttons,
    has_banner,
    text_of,
)
from triage.outbox.rows import OutboundRequest, enqueue
from triage.store.models import Decision, PendingApproval

REASON = "Passport and a utility bill show residence in Singapore."


async def escalated(
    rig: Rig, chat: str = "100", *, language: str = "en"
) -> tuple[int, dict[str, object]]:
    """An escalated client whose case card is posted."""
    cid = await rig.converse(chat, UNDECIDED, language=language)
    await rig.drain()
    (card,) = [c for c in rig.cards(COMPLIANCE) if f"client {cid}," in c["text"]]
    return cid, card


async def test_non_officers_are_refused_and_their_attempts_recorded(rig: Rig) -> None:
    cid, card = await escalated(rig)
    views = rig.slack.mark("views")

    payload = rig.click_payload(INTRUDER, card, "approve_eu")
    for _ in range(2):  # the same click replayed: one record
        assert (await rig.post(rig.signed_interaction(payload))).status == 200

    assert rig.slack.records("views", since=views) == []
    ephemerals = rig.slack.ephemerals(user=INTRUDER)
    assert ephemerals and "Only compliance officers" in ephemerals[0]["text"]
    (refused,) = await rig.audit(cid, "officer_refused")
    assert refused["user_id"] == INTRUDER and refused["team_id"] == "T0SANDBOX"
    assert refused["action"] == "approve_eu" and refused["inquiry"] == 0
    assert rig.refused("not_an_officer") == 2

    # Someone else submits the form of an officer's modal: refused at submission too.
    view = await rig.open_modal(OFFICER_1, card, "decline")
    submitted = rig.submission_payload(INTRUDER, view, "no")
    submitted["user"]["team_id"] = submitted["team"]["id"] = OTHER_TEAM
    response = await rig.post(rig.signed_interaction(submitted))
    assert response.status == 200 and response.json()["response_action"] == "errors"
    assert [(e["user_id"], e["team_id"]) for e in await rig.audit(cid, "officer_refused")] == [
        (INTRUDER, "T0SANDBOX"),
        (INTRUDER, OTHER_TEAM),
    ]
    assert (await rig.state(cid)).inquiries[0].outcome == "ESCALATE"


async def test_officer_approves_and_the_decision_takes_effect(rig: Rig) -> None:
    cid, card = await escalated(rig)
    await enqueue(
        rig.sessions,
        OutboundRequest(
            client_id=cid,
            text="Happy to help with the custody of your bitcoin.",
            kind="reply",
            sender="sales",
            dedupe_key="held-before-decision",
            reply=True,
        ),
        now=rig.clock.now(),
    )
    assert (await rig.drain()).held == 1
    told = len(rig.telegram.texts_to(cid))

    response = await rig.decide(OFFICER_1, card, "approve_non_eu", REASON)
    assert (response.status, response.body) == (200, "")
    assert "Decided: HANDOFF_NON_EU" in rig.slack.ephemerals(user=OFFICER_1)[-1]["text"]
    await rig.drain()

    # The card: outcome, who and why; no buttons left.
    now = rig.current(COMPLIANCE, str(card["ts"]))
    assert buttons(now) == []
    assert "Decided HANDOFF_NON_EU" in text_of(now) and "<@U0OFFICER1>" in text_of(now)
    assert REASON in text_of(now)
    assert len(rig.slack.updates(channel=COMPLIANCE)) == 1
    # The client: the neutral outcome message, and the held reply judged again and sent (the
    # held row keeps its place in the queue, so it goes first).
    assert sorted(rig.telegram.texts_to(cid)[told:]) == [
        "Happy to help with the custody of your bitcoin.",
        "Thank you. A colleague will reply to you here shortly.",
    ]
    # Sales: the lead card, decided by the officer.
    (lead,) = rig.cards(SALES)
    assert "HANDOFF_NON_EU by officer" in text_of(lead) and not has_banner(lead)
    # The evidence.
    async with rig.sessions() as s:
        (decision,) = (await s.exec(select(Decision).where(Decision.decider == "officer"))).all()
    assert (decision.outcome, decision.officer_id, decision.reason) == (
        "HANDOFF_NON_EU",
        OFFICER_1,
        REASON,
    )
    (event,) = await rig.audit(cid, "officer_decision")
    assert event["decision_id"] == decision.id and event["team_id"] == "T0SANDBOX"
    assert len(await rig.audit(cid, "outbound_released")) == 1
    state = await rig.state(cid)
    assert (state.inquiries[0].outcome, state.inquiries[0].decider) == (
        "HANDOFF_NON_EU",
        "officer",
    )
    assert state.zone_override == "OUTSIDE"


async def test_approve_as_eu_restricted_posts_a_lead_card_with_the_banner(rig: Rig) -> None:
    cid, card = await escalated(rig)
    await rig.decide(OFFICER_2, card, "approve_eu", "Lives in Austria; found us by own search.")
    await rig.drain()

    (lead,) = rig.cards(SALES)
    assert has_banner(lead) and "SERVE_EU_RESTRICTED by officer" in text_of(lead)
    assert (await rig.state(cid)).zone_override == "EU"
    assert rig.telegram.texts_to(cid)[-1] == (
        "Thank you. A colleague will reply to you here about your request (custody)."
    )


async def test_decline_needs_a_reason_tells_the_client_and_posts_no_lead(rig: Rig) -> None:
    cid, card = await escalated(rig, language="de")
    view = await rig.open_modal(OFFICER_1, card, "decline")

    response = await rig.post(rig.submission(OFFICER_1, view, "   "))
    assert response.json()["response_action"] == "errors"
    assert (await rig.state(cid)).inquiries[0].outcome == "ESCALATE"
    # The same form, corrected, goes through.
    response = await rig.post(rig.submission(OFFICER_1, view, "Came via an EU influencer."))
    assert (response.status, response.body) == (200, "")
    await rig.drain()

    assert rig.cards(SALES) == []
    now = rig.current(COMPLIANCE, str(card["ts"]))
    assert "Decided DECLINE" in text_of(now) and buttons(now) == []
    # In the client's language, as the bot would have said it.
    assert rig.telegram.texts_to(cid)[-1] == (
        "Vielen Dank für Ihre Nachricht. Leider können wir Ihre Anfrage nicht weiter bearbeiten."
    )
    (event,) = await rig.audit(cid, "officer_decision")
    assert event["outcome"] == "DECLINE" and event["zone_override"] is None
    assert event["reason"] == "Came via an EU influencer."


async def test_four_eyes_needs_two_different_officers(make_rig: RigFactory) -> None:
    rig: Rig = await make_rig(four_eyes=True)
    cid, card = await escalated(rig)

    first = await rig.decide(OFFICER_1, card, "approve_non_eu", REASON)
    assert (first.status, first.body) == (200, "")
    await rig.drain()
    waiting = rig.current(COMPLIANCE, str(card["ts"]))
    assert "1 of 2 approvals" in text_of(waiting) and "<@U0OFFICER1>" in text_of(waiting)
    assert "case:approve_non_eu" in buttons(waiting)
    assert (await rig.state(cid)).inquiries[0].outcome == "ESCALATE"
    assert rig.cards(SALES) == []

    # The same officer cannot give the second approval.
    again = await rig.decide(OFFICER_1, card, "approve_non_eu", "still sure")
    assert "different officer" in again.json()["errors"]["reason"]
    assert (await rig.state(cid)).inquiries[0].outcome == "ESCALATE"

    second = await rig.decide(OFFICER_2, card, "approve_non_eu", "Agreed: Singapore ID.")
    assert (second.status, second.body) == (200, "")
    await rig.drain()
    decided = rig.current(COMPLIANCE, str(card["ts"]))
    assert "<@U0OFFICER1> and <@U0OFFICER2>" in text_of(decided) and buttons(decided) == []
    (event,) = await rig.audit(cid, "officer_decision")
    assert [a["officer_id"] for a in event["approvals"]] == [OFFICER_1, OFFICER_2]
    assert len(await rig.audit(cid, "officer_approval")) == 1
    assert len(rig.cards(SALES)) == 1
    assert await rig.count(PendingApproval) == 0


async def test_ask_the_client_and_the_answer_lands_in_the_case_thread(rig: Rig) -> None:
    cid, card = await escalated(rig)
    question = "In which country is your tax residence?"

    response = await rig.decide(OFFICER_1, card, "ask", question)
    assert (response.status, response.body) == (200, "")
    await rig.drain()
    assert rig.telegram.texts_to(cid)[-1] == question
    (asked,) = await rig.audit(cid, "officer_question")
    assert asked["question"] == question
    notes = rig.thread(COMPLIANCE, str(card["ts"]))
    assert "asked the client" in text_of(notes[-1]) and question in text_of(notes[-1])

    await rig.converse("100", ["My tax residence is Singapore, I live there"])
    await rig.drain()
    answer = [m for m in rig.thread(COMPLIANCE, str(card["ts"])) if m["text"].startswith("Client")]
    assert ">My tax residence is Singapore, I live there" in text_of(answer[-1])


async def test_overdue_cases_get_one_reminder(rig: Rig) -> None:
    cid, card = await escalated(rig)
    other, _ = await escalated(rig, "101")
    await rig.decide(OFFICER_1, _card_of(rig, other), "decline", "Solicited in the EU.")
    await rig.drain()

    assert await rig.channel.remind_overdue_cases() == 0
    rig.clock.advance(25 * 3600)
    assert await rig.channel.remind_overdue_cases() == 1  # the decided case is left alone
    assert await rig.channel.remind_overdue_cases() == 0
    await rig.drain()

    (reminder,) = [m for m in rig.thread(COMPLIANCE, str(card["ts"])) if "Reminder" in m["text"]]
    assert "waited 25 h" in text_of(reminder)
    assert [r.kind for r in await rig.rows(cid, channel="slack")].count("sla_reminder") == 1


async def test_a_button_that_does_not_match_its_card_is_refused(rig: Rig) -> None:
    cid, card = await escalated(rig)
    other, other_card = await escalated(rig, "101")
    views = rig.slack.mark("views")

    # The other case's button value on this card; then a value naming a client that is not there.
    forged = rig.click_payload(OFFICER_1, card, "approve_eu")
    forged["actions"][0]["value"] = _value_of(other_card)
    ghost = rig.click_payload(OFFICER_1, card, "approve_eu")
    value = json.loads(ghost["actions"][0]["value"])
    ghost["actions"][0]["value"] = json.dumps({**value, "c": 999_999})
    for payload in (forged, ghost):
        response = await rig.post(rig.signed_interaction(payload))
        assert response.status == 200

    assert rig.slack.records("views", since=views) == []
    texts = [e["text"] for e in rig.slack.ephemerals(user=OFFICER_1)]
    assert texts == ["This button does not belong to this case; nothing done."] * 2
    assert rig.refused("mismatched_case") == 2
    for client in (cid, other):
        assert (await rig.state(client)).inquiries[0].outcome == "ESCALATE"


def _value_of(card: dict[str, object]) -> str:
    for block in card["blocks"]:  # type: ignore[attr-defined]
        if block.get("type") == "actions":
            return str(block["elements"][0]["value"])
    raise AssertionError("no buttons on the card")


def _card_of(rig: Rig, client_id: int) -> dict[str, object]:
    (card,) = [c for c in rig.cards(COMPLIANCE) if f"client {client_id}," in c["text"]]
    return card
