"""Cards staff receive: the lead card (with the EU banner or without), the case card, the decline
notice; one thread per card, the client's later messages mirrored into it, client input escaped."""

from __future__ import annotations

from tests.channels.conftest import (
    COMPLIANCE,
    EU,
    NON_EU,
    SALES,
    UNDECIDED,
    Rig,
    buttons,
    has_banner,
    text_of,
)
from triage_sandbox.slack import block_errors, control_sequences


async def test_non_eu_client_gets_a_lead_card_without_banner(rig: Rig) -> None:
    cid = await rig.converse("100", NON_EU)
    await rig.drain()

    (card,) = rig.cards(SALES)
    assert rig.cards(COMPLIANCE) == []
    text = text_of(card)
    assert not has_banner(card)
    assert "Custody" in text and "SG (OUTSIDE)" in text
    assert ">I found you by searching on Google" in text  # the client's own words
    assert "HANDOFF_NON_EU by bot" in text and "outside the EU/EEA" in text
    assert f"triage evidence export {cid} --out evidence/{cid}" in text
    assert block_errors(card["blocks"]) == []
    # The thread is mapped to the card's ts, and the client was told neutrally.
    thread = await rig.thread_row(cid, "lead")
    assert (thread.channel, thread.ts, thread.shown_version) == (SALES, card["ts"], 1)
    assert (
        rig.telegram.texts_to(cid)[-1] == "Thank you. A colleague will reply to you here shortly."
    )
    # A redelivered drain posts nothing twice.
    await rig.drain()
    assert len(rig.cards(SALES)) == 1


async def test_eu_client_lead_card_has_the_restriction_banner(rig: Rig) -> None:
    cid = await rig.converse("200", EU)
    await rig.drain()

    (card,) = rig.cards(SALES)
    assert has_banner(card)
    banner = next(b for b in card["blocks"] if b.get("block_id") == "restrictions")
    words = banner["text"]["text"]
    for rule in ("Only this service", "Replies only", "No follow-ups", "No other products"):
        assert rule in words
    assert "Custody (CUSTODY)" in words
    assert "SERVE_EU_RESTRICTED" in text_of(card) and "DE (EU)" in text_of(card)
    assert "EU/EEA restricted" in card["text"]
    assert (await rig.thread_row(cid, "lead")).ts == card["ts"]


async def test_escalation_posts_a_case_card_with_four_buttons(rig: Rig) -> None:
    cid = await rig.converse("300", UNDECIDED)
    await rig.drain()

    assert rig.cards(SALES) == []
    (card,) = rig.cards(COMPLIANCE)
    assert buttons(card) == [
        "case:approve_eu",
        "case:approve_non_eu",
        "case:decline",
        "case:ask",
    ]
    text = text_of(card)
    assert "What is unclear, and why" in text
    assert ">don't know" in text and ">no idea" in text  # the client's words on residence
    assert "Open:" in text
    assert f"triage evidence export {cid}" in text
    assert block_errors(card["blocks"]) == []


async def test_decline_posts_a_notice_to_compliance(rig: Rig) -> None:
    cid = await rig.converse(
        "400",
        (
            "/start",
            "I saw your Telegram ad",
            "I live in France",
            "I want custody of my bitcoin",
        ),
    )
    await rig.drain()

    assert rig.cards(SALES) == []
    (card,) = rig.cards(COMPLIANCE)
    assert buttons(card) == []
    assert "Declined" in card["text"] and "blocked for good" in text_of(card)
    assert (await rig.thread_row(cid, "decline")).ts == card["ts"]
    assert "not able to take your request further" in rig.telegram.texts_to(cid)[-1]


async def test_later_client_messages_are_mirrored_into_the_thread(rig: Rig) -> None:
    cid = await rig.converse("500", EU)
    await rig.drain()
    (card,) = rig.cards(SALES)

    await rig.converse("500", ["How long does a custody withdrawal take?"])
    await rig.drain()

    (mirrored,) = rig.thread(SALES, card["ts"])
    assert ">How long does a custody withdrawal take?" in text_of(mirrored)
    assert rig.thread(COMPLIANCE, card["ts"]) == []
    rows = await rig.rows(cid, channel="slack")
    assert [r.kind for r in rows] == ["lead_card", "client_words"]


async def test_client_markup_cannot_ping_or_link(rig: Rig) -> None:
    hostile = "<!channel> *urgent* <https://evil.example|your bank> <@U0OFFICER1> & co"
    cid = await rig.converse(
        "600",
        ("/start", f"A friend told me {hostile}", "I live in Singapore", "I want custody"),
    )
    await rig.drain()
    await rig.converse("600", [f"again {hostile}"])
    await rig.drain()

    (card,) = rig.cards(SALES)
    (mirrored,) = rig.thread(SALES, card["ts"])
    for message in (card, mirrored):
        assert control_sequences(message) == []
        text = text_of(message)
        assert "&lt;!channel&gt;" in text and "&lt;https://evil.example|your bank&gt;" in text
        assert "&amp; co" in text
    assert (await rig.thread_row(cid, "lead")).ts == card["ts"]


async def test_long_client_texts_fit_block_kit_limits(rig: Rig) -> None:
    long_words = "I found you by searching on Google " + "&<>x" * 300
    await rig.converse("700", ("/start", long_words, "I live in Singapore", "I want custody"))
    await rig.drain()
    await rig.converse("700", ["custody question " + "<" * 800])
    report = await rig.drain()

    assert report.dead == 0 and report.failed == 0
    (card,) = rig.cards(SALES)
    assert block_errors(card["blocks"]) == []
    (mirrored,) = rig.thread(SALES, card["ts"])
    assert block_errors(mirrored["blocks"]) == []
    assert "…" in text_of(card) and "…" in text_of(mirrored)
