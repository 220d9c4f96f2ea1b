"""Sales replies typed in a lead's thread reach the client only through the outbox and the gate;
a blocked one gets a notice in the thread saying why and what would be allowed."""

from __future__ import annotations

from tests.channels.conftest import (
    COMPLIANCE,
    EU,
    NON_EU,
    OFFICER_1,
    SALES,
    UNDECIDED,
    Rig,
    has_banner,
    text_of,
)
from triage.store.models import SlackRelay
from triage_sandbox.slack_signing import event_callback_body


async def test_sales_reply_in_the_thread_reaches_the_client(rig: Rig) -> None:
    cid = await rig.converse("100", EU)
    await rig.drain()
    (card,) = rig.cards(SALES)
    await rig.converse("100", ["What does custody cost?"])
    await rig.drain()

    reply = "Custody of bitcoin costs 0.1% a year &amp; each withdrawal 0.0001 BTC."
    response = await rig.post(rig.signed_event(rig.sales_reply_event(card["ts"], reply)))
    assert response.status == 200
    (row,) = [r for r in await rig.rows(cid) if r.sender == "sales"]
    assert (row.kind, row.reply, row.status) == ("reply", True, "pending")
    # The gate judges it at send time, not before.
    assert rig.telegram.texts_to(cid)[-1] != row.text

    await rig.drain()
    assert rig.telegram.texts_to(cid)[-1] == (
        "Custody of bitcoin costs 0.1% a year & each withdrawal 0.0001 BTC."
    )
    (allowed,) = [e for e in await rig.audit(cid, "outbound_allowed") if e["sender"] == "sales"]
    assert allowed["reason"].startswith("reply to the client's own question on the service")
    (queued,) = [e for e in await rig.audit(cid, "outbound_queued") if e["sender"] == "sales"]
    assert queued["context"]["slack_user"] == "U0SALES01"
    # No notice: only the client's mirrored question is in the thread besides the card.
    assert [m["text"].split(":")[0] for m in rig.thread(SALES, card["ts"])] == ["Client"]


async def test_sales_reply_pitching_another_product_is_blocked_with_a_notice(rig: Rig) -> None:
    cid = await rig.converse("200", EU)
    await rig.converse("200", ["Can I store ETH too?"])
    await rig.drain()
    (card,) = rig.cards(SALES)
    sent_before = rig.telegram.texts_to(cid)

    pitch = "Sure! Also try our Yield Vault, up to 8% a year on your coins."
    response = await rig.post(rig.signed_event(rig.sales_reply_event(card["ts"], pitch)))
    assert response.status == 200
    report = await rig.drain()

    assert report.blocked == 1
    assert rig.telegram.texts_to(cid) == sent_before
    (blocked,) = await rig.audit(cid, "outbound_blocked")
    assert blocked["text"] == pitch and "R5" in blocked["rules"]
    notice = rig.thread(SALES, card["ts"])[-1]
    text = text_of(notice)
    assert "Not sent" in text and "<@U0SALES01>" in text
    assert "What is allowed" in text and "Custody (CUSTODY)" in text
    assert "no other products or services" in text
    assert ">Sure! Also try our Yield Vault" in text
    assert rig.cards(COMPLIANCE) == []
    # One notice per verdict, however often the dispatcher runs.
    await rig.drain()
    assert len([m for m in rig.thread(SALES, card["ts"]) if "Not sent" in m["text"]]) == 1


async def test_reply_with_a_link_to_non_eu_client_is_allowed(rig: Rig) -> None:
    cid = await rig.converse("300", NON_EU)
    await rig.drain()
    (card,) = rig.cards(SALES)

    reply = "Here is our fee page: <https://example.com/fees|fees>"
    await rig.post(rig.signed_event(rig.sales_reply_event(card["ts"], reply)))
    await rig.drain()

    assert (
        rig.telegram.texts_to(cid)[-1] == "Here is our fee page: fees (https://example.com/fees)"
    )


async def test_messages_outside_lead_threads_are_not_relayed(rig: Rig) -> None:
    cid = await rig.converse("400", NON_EU)
    await rig.converse("401", UNDECIDED)
    await rig.drain()
    (case,) = rig.cards(COMPLIANCE)

    top = rig.slack.post_as_user(channel=SALES, user="U0SALES01", text="morning all")
    elsewhere = rig.slack.post_as_user(
        channel=SALES, user="U0SALES01", text="not a lead", thread_ts=top["ts"]
    )
    in_case = rig.slack.post_as_user(
        channel=COMPLIANCE, user="U0OFFICER1", text="looking at it", thread_ts=case["ts"]
    )
    for event in (top, elsewhere, in_case):
        response = await rig.post(rig.signed_event(event_callback_body(event)))
        assert response.status == 200

    assert [r for r in await rig.rows(cid) if r.sender == "sales"] == []
    assert await rig.count(SlackRelay) == 0


async def test_a_re_escalated_lead_holds_replies_until_an_officer_decides(rig: Rig) -> None:
    cid = await rig.converse("500", NON_EU)
    await rig.drain()
    (card,) = rig.cards(SALES)

    # A later fact re-opens the decision: the lead goes on hold and a case opens.
    await rig.converse("500", ["Actually I moved to Germany last month"])
    await rig.drain()
    on_hold = rig.current(SALES, card["ts"])
    assert "ON HOLD" in text_of(on_hold) and "on hold" in on_hold["text"]
    (case,) = rig.cards(COMPLIANCE)
    assert "residence changed after the first decision" in text_of(case)
    assert ">Actually I moved to Germany last month" in text_of(rig.thread(SALES, card["ts"])[-1])

    reply = "Custody of your bitcoin works the same from Germany."
    await rig.post(rig.signed_event(rig.sales_reply_event(card["ts"], reply)))
    assert (await rig.drain()).held == 1
    notice = rig.thread(SALES, card["ts"])[-1]
    assert "Held, not sent yet" in text_of(notice)
    assert "nothing until a compliance officer decides" in text_of(notice)
    assert reply not in rig.telegram.texts_to(cid)

    await rig.decide(OFFICER_1, case, "approve_eu", "Moved to Berlin; found us by own search.")
    await rig.drain()

    # The same lead card, now restricted; the held reply judged again and sent.
    assert len(rig.cards(SALES)) == 1
    restricted = rig.current(SALES, card["ts"])
    assert has_banner(restricted) and "SERVE_EU_RESTRICTED by officer" in text_of(restricted)
    assert rig.telegram.texts_to(cid)[-2:] == [
        reply,
        "Thank you. A colleague will reply to you here about your request (custody).",
    ]
