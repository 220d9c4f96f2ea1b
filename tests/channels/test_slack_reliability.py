"""Retries, replays and double clicks have one effect; forged and stale requests none; Slack's
errors reach the dispatcher as transient or permanent; Socket Mode works like HTTP."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlmodel import col, select

from tests.channels.conftest import (
    COMPLIANCE,
    EU,
    NON_EU,
    OFFICER_1,
    OFFICER_2,
    SALES,
    UNDECIDED,
    Rig,
    RigFactory,
    text_of,
)
from triage.channels.slack import MAX_BODY
from triage.channels.slack_staff import StaffPost
from triage.outbox.senders import Delivery
from triage.store.models import AuditEvent, Decision, Outbox, ProcessedUpdate, SlackThread
from triage_sandbox.slack import Fault


async def lead(rig: Rig, chat: str = "100", texts: tuple[str, ...] = EU) -> tuple[int, str]:
    """A client with a posted lead card: the client id and the card's ts."""
    cid = await rig.converse(chat, texts)
    await rig.drain()
    (card,) = rig.cards(SALES)
    return cid, str(card["ts"])


async def sales_rows(rig: Rig, client_id: int) -> list[Outbox]:
    return [r for r in await rig.rows(client_id) if r.sender == "sales"]


async def test_retried_and_replayed_events_change_nothing(rig: Rig) -> None:
    cid, ts = await lead(rig)
    await rig.converse("100", ["Is custody insured?"])
    body = rig.sales_reply_event(ts, "Custody is insured up to 1 million per client.")
    request = rig.signed_event(body)

    first = await rig.post(request)
    retried = await rig.post(rig.signed_event(body, retry_num=1, retry_reason="http_timeout"))
    # The identical bytes and headers again, within the window: the signature is still valid.
    replayed = [await rig.post(request) for _ in range(2)]
    assert [d.status for d in (first, retried, *replayed)] == [200] * 4
    await rig.drain()

    assert len(await sales_rows(rig, cid)) == 1
    assert rig.telegram.texts_to(cid).count("Custody is insured up to 1 million per client.") == 1
    assert len(await rig.audit(cid, "outbound_sent")) == len(await rig.rows(cid))


async def test_stale_forged_or_oversized_requests_are_refused_and_write_nothing(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    cid, ts = await lead(rig)
    body = rig.sales_reply_event(ts, "Yes, custody is insured.")
    tables = (ProcessedUpdate, Outbox, AuditEvent)
    before = [await rig.count(t) for t in tables]

    stale = await rig.post(rig.signed_event(body, skew_seconds=-301))
    forged = await rig.post(rig.signed_event(body, signature="v0=" + "0" * 64))
    huge = rig.sales_reply_event(ts, "x" * (MAX_BODY + 10))
    oversized = await rig.post(rig.signed_event(huge))
    assert (stale.status, forged.status, oversized.status) == (401, 401, 413)

    assert [await rig.count(t) for t in tables] == before
    for reason in ("stale_timestamp", "bad_signature", "body_too_large"):
        assert rig.refused(reason) == 1
        assert f"slack request refused: {reason}" in caplog.text
    # Just inside the window it is accepted.
    assert (await rig.post(rig.signed_event(body, skew_seconds=-299))).status == 200
    assert len(await sales_rows(rig, cid)) == 1


async def test_a_slack_outage_at_the_first_request_is_retried_not_lost(rig: Rig) -> None:
    cid, ts = await lead(rig)
    await rig.converse("100", ["Is custody insured?"])
    body = rig.sales_reply_event(ts, "Custody is insured.")
    rig.slack.inject_fault("auth.test", Fault.server_error(503))

    refused = await rig.post(rig.signed_event(body))
    assert refused.status == 503  # Bolt would have said 200 and dropped the event
    assert await sales_rows(rig, cid) == []
    retried = await rig.post(rig.signed_event(body, retry_num=1, retry_reason="http_error"))
    assert retried.status == 200
    assert len(await sales_rows(rig, cid)) == 1


async def test_the_same_submission_twice_has_one_effect(rig: Rig) -> None:
    cid = await rig.converse("100", UNDECIDED)
    await rig.drain()
    (card,) = rig.cards(COMPLIANCE)
    view = await rig.open_modal(OFFICER_1, card, "approve_non_eu")
    told = len(rig.telegram.texts_to(cid))

    submission = rig.submission(OFFICER_1, view, "Singapore ID card checked.")
    answers = [await rig.post(submission) for _ in range(2)]
    answers.append(
        await rig.post(
            rig.signed_interaction(
                rig.submission_payload(OFFICER_1, view, "Singapore ID card checked."), retry_num=1
            )
        )
    )
    assert [(a.status, a.body) for a in answers] == [(200, "")] * 3
    await rig.drain()

    async with rig.sessions() as s:
        decisions = (await s.exec(select(Decision).where(Decision.decider == "officer"))).all()
    assert len(decisions) == 1
    assert len(rig.slack.updates(channel=COMPLIANCE)) == 1
    assert len(rig.telegram.texts_to(cid)) == told + 1
    assert len(rig.cards(SALES)) == 1
    assert len(await rig.audit(cid, "officer_decision")) == 1


async def test_two_officers_deciding_at_once_make_one_decision(rig: Rig) -> None:
    cid = await rig.converse("100", UNDECIDED)
    await rig.drain()
    (card,) = rig.cards(COMPLIANCE)
    first = await rig.open_modal(OFFICER_1, card, "approve_non_eu")
    second = await rig.open_modal(OFFICER_2, card, "decline")
    told = len(rig.telegram.texts_to(cid))

    answers = await asyncio.gather(
        rig.post(rig.submission(OFFICER_1, first, "Singapore ID card checked.")),
        rig.post(rig.submission(OFFICER_2, second, "Looks solicited.")),
    )
    await rig.drain()

    assert sorted(a.body == "" for a in answers) == [False, True]
    loser = next(a for a in answers if a.body)
    assert "no longer open" in loser.json()["errors"]["reason"]
    async with rig.sessions() as s:
        decisions = (await s.exec(select(Decision).where(Decision.decider == "officer"))).all()
    assert len(decisions) == 1
    assert len(rig.slack.updates(channel=COMPLIANCE)) == 1
    assert len(rig.telegram.texts_to(cid)) == told + 1


async def test_rate_limits_and_outages_are_retried_and_refusals_are_dead(rig: Rig) -> None:
    rig.slack.inject_fault("chat.postMessage", Fault.ratelimited(retry_after=7))
    cid = await rig.converse("100", NON_EU)
    report = await rig.drain()
    assert (report.failed, report.dead) == (1, 0)
    (card_row,) = await rig.rows(cid, channel="slack")
    assert card_row.status == "pending" and card_row.next_attempt_at is not None
    assert card_row.next_attempt_at - rig.clock.now() >= timedelta(seconds=7)
    (failed,) = await rig.audit(cid, "outbound_failed")
    assert failed["retry_after"] == 7 and failed["permanent"] is False

    rig.slack.inject_fault("chat.postMessage", Fault.server_error(503))
    rig.clock.advance(8)
    assert (await rig.drain()).failed == 1
    rig.clock.advance(60)
    assert (await rig.drain()).sent == 1
    assert len(rig.cards(SALES)) == 1

    rig.slack.inject_fault("chat.postMessage", Fault.api_error("channel_not_found"))
    await rig.converse("100", ["one more question about custody"])
    report = await rig.drain()
    assert report.dead == 1
    (dead,) = await rig.audit(cid, "outbound_dead")
    assert "channel_not_found" in dead["reason"]


async def test_a_stale_card_edit_is_never_applied(rig: Rig) -> None:
    cid = await rig.converse("100", UNDECIDED)
    await rig.drain()
    (card,) = rig.cards(COMPLIANCE)
    await rig.decide(OFFICER_1, card, "decline", "Solicited by an EU affiliate.")
    await rig.drain()
    async with rig.sessions() as s:
        thread = (await s.exec(select(SlackThread).where(SlackThread.kind == "case"))).one()
    assert thread.shown_version == 2
    updates = len(rig.slack.updates(channel=COMPLIANCE))

    # Version 1 of the card arrives late (a retried row): it must not replace version 2.
    assert thread.id is not None
    old = StaffPost("update", thread.id, "stale", [], version=1)
    receipt = await rig.channel.sender.send(
        Delivery(0, cid, "slack", "100", old.dumps(), (), "card_update")
    )
    assert receipt.message_id == card["ts"]
    assert len(rig.slack.updates(channel=COMPLIANCE)) == updates
    assert "Decided DECLINE" in text_of(rig.current(COMPLIANCE, str(card["ts"])))
    # And a card row sent again after a crash is not posted twice.
    post = StaffPost("post", thread.id, "again", [], version=1)
    await rig.channel.sender.send(Delivery(0, cid, "slack", "100", post.dumps(), (), "case_card"))
    assert len(rig.cards(COMPLIANCE)) == 1


async def test_socket_mode_relays_a_sales_reply_once(make_rig: RigFactory) -> None:
    probe: Rig = await make_rig()
    rig: Rig = await make_rig(slack_app_token=probe.slack.app_token)
    await rig.channel.start()
    assert await rig.slack.wait_connections(1) == 1
    cid, ts = await lead(rig)
    await rig.converse("100", ["Can I withdraw custody assets any time?"])

    body = rig.sales_reply_event(ts, "Yes, withdrawals from custody are possible any time.")
    first = await rig.slack.push_events_api(body)
    await rig.slack.wait_ack(first)
    again = await rig.slack.push_events_api(body, retry_attempt=1, retry_reason="timeout")
    await rig.slack.wait_ack(again)
    await rig.drain()

    assert len(await sales_rows(rig, cid)) == 1
    assert rig.telegram.texts_to(cid)[-1] == (
        "Yes, withdrawals from custody are possible any time."
    )
    async with rig.sessions() as s:
        keys = (
            await s.exec(select(ProcessedUpdate.key).where(col(ProcessedUpdate.source) == "slack"))
        ).all()
    assert keys == [f"event:{body['event_id']}"]
    await rig.channel.stop()
