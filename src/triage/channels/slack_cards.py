"""What staff see in Slack: lead cards, case cards, decline notices, thread notes and modals.

Pure rendering: data in, Block Kit out, no I/O. Every text a client wrote goes through
`slack_text.fit`/`quote` (escaped for mrkdwn, cut to Block Kit's limits); our own texts are
plain English for staff. A card is rendered whole each time (posting and every edit), so an
edit never depends on what Slack currently shows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from triage.channels.slack_text import (
    BUTTON_VALUE_MAX,
    CONTEXT_TEXT_MAX,
    FALLBACK_TEXT_MAX,
    FIELD_TEXT_MAX,
    HEADER_TEXT_MAX,
    MODAL_TITLE_MAX,
    SECTION_TEXT_MAX,
    bullets,
    cut,
    escape,
    fit,
    quote,
)
from triage.domain.codes import IN_SCOPE, Outcome, ServiceCode, Verdict, zone_of_code
from triage.domain.officer import APPROVALS, Approval, OfficerAction
from triage.flows.engine import ConversationState
from triage.store.models import Client

Block = dict[str, Any]

#: Action ids of the case card's buttons: "case:" + an OfficerAction value.
ACTION_PREFIX = "case:"
#: callback_id of the modal that takes the reason (or the question).
MODAL_CALLBACK = "case_decision"
#: block_id / action_id of the modal's text input.
REASON_BLOCK = "reason"
REASON_ACTION = "text"

_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,30}$")

#: Service names for staff (the MiCA short names of DOMAIN.md section 3).
SERVICE_NAMES = {
    ServiceCode.CUSTODY: "Custody",
    ServiceCode.PLATFORM: "Trading platform",
    ServiceCode.EXCH_FIAT: "Exchange crypto for money",
    ServiceCode.EXCH_CRYPTO: "Exchange crypto for crypto",
    ServiceCode.EXECUTION: "Order execution",
    ServiceCode.PLACING: "Placing",
    ServiceCode.RTO: "Reception and transmission of orders",
    ServiceCode.ADVICE: "Advice",
    ServiceCode.PORTFOLIO: "Portfolio management",
    ServiceCode.TRANSFER: "Transfers",
    ServiceCode.NON_MICA: "Outside MiCA (derivatives, staking, lending...)",
}

ACTION_LABELS = {
    OfficerAction.APPROVE_EU: "Approve as EU restricted",
    OfficerAction.APPROVE_NON_EU: "Approve as non-EU",
    OfficerAction.DECLINE: "Decline",
    OfficerAction.ASK: "Ask the client",
}
_MODAL_TITLES = {
    OfficerAction.APPROVE_EU: "Approve: EU restricted",
    OfficerAction.APPROVE_NON_EU: "Approve: non-EU",
    OfficerAction.DECLINE: "Decline",
    OfficerAction.ASK: "Ask the client",
}


@dataclass(frozen=True)
class SlackMessage:
    """A message for chat.postMessage / chat.update: notification text and blocks."""

    text: str
    blocks: list[Block] = field(default_factory=list)


@dataclass(frozen=True)
class ClientView:
    """What staff see of a client: ids, language, residence, and the client's own words."""

    client_id: int
    channel: str
    external_id: str
    language: str | None
    zone: str
    source_words: tuple[str, ...]
    residence_words: tuple[str, ...]
    prior_contact_words: tuple[str, ...]
    referral_words: tuple[str, ...]
    start_param: str | None
    recent_words: tuple[str, ...]
    restricted: bool


@dataclass(frozen=True)
class InquiryView:
    """One inquiry as staff see it."""

    position: int
    service: str | None
    country: str | None
    outcome: str | None
    rules: tuple[str, ...]
    reasons: tuple[str, ...]
    ruleset: str | None
    decider: str
    service_words: tuple[str, ...]


@dataclass(frozen=True)
class CaseStatus:
    """Where a case stands, for the case card."""

    stage: Literal["open", "awaiting_second", "decided", "closed"]
    outcome: str | None = None
    #: Officers who approved or decided, first one first.
    approvals: tuple[Approval, ...] = ()
    #: Four-eyes: the action the first officer approved.
    pending_action: OfficerAction | None = None


def client_view(client: Client, state: ConversationState) -> ClientView:
    """A client's view from the client row and the conversation state.

    The zone shown is the one the decisions rest on: an officer's override, else the zone of
    the country the latest decision found (classifying the whole conversation again here would
    only repeat the engine's work).
    """
    assert client.id is not None
    if state.zone_override:
        zone = state.zone_override
    else:
        countries = [i.country for i in state.inquiries if i.country]
        zone = zone_of_code(countries[-1] if countries else None).value
    slots = state.slots
    return ClientView(
        client_id=client.id,
        channel=client.channel,
        external_id=client.external_id,
        language=state.language or client.language,
        zone=zone,
        source_words=tuple(slots.get("source", [])),
        residence_words=tuple(slots.get("residence", [])),
        prior_contact_words=tuple(slots.get("prior_contact", [])),
        referral_words=tuple(slots.get("referral", [])),
        start_param=state.start_param,
        recent_words=tuple(state.messages[-5:]),
        restricted=state.restricted or client.restricted_at is not None,
    )


def inquiry_view(state: ConversationState, position: int) -> InquiryView:
    """One inquiry of a conversation state."""
    inquiry = state.inquiries[position]
    words = inquiry.texts or state.slots.get("service", [])
    return InquiryView(
        position=position,
        service=inquiry.service,
        country=inquiry.country,
        outcome=inquiry.outcome,
        rules=tuple(inquiry.rules),
        reasons=tuple(inquiry.reasons),
        ruleset=inquiry.ruleset,
        decider=inquiry.decider,
        service_words=tuple(words),
    )


# --- pieces -----------------------------------------------------------------------------------


def service_name(service: str | None) -> str:
    """A service code as staff read it."""
    if not service:
        return "not established"
    if service in ServiceCode.__members__:
        return f"{SERVICE_NAMES[ServiceCode(service)]} ({service})"
    return service


def officer(user_id: str) -> str:
    """A Slack user mention; anything that is not a user id is shown escaped, never as markup."""
    return f"<@{user_id}>" if _SLACK_USER.match(user_id) else escape(user_id)


def evidence_command(client_id: int) -> str:
    """The command that exports the client's evidence pack."""
    return f"triage evidence export {client_id} --out evidence/{client_id}"


def _section(text: str, *, block_id: str | None = None) -> Block:
    block: Block = {"type": "section", "text": {"type": "mrkdwn", "text": text[:SECTION_TEXT_MAX]}}
    if block_id:
        block["block_id"] = block_id
    return block


def _header(text: str) -> Block:
    return {
        "type": "header",
        "text": {"type": "plain_text", "text": cut(text, HEADER_TEXT_MAX), "emoji": False},
    }


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:CONTEXT_TEXT_MAX]}]}


def _fields(pairs: Sequence[tuple[str, str]]) -> Block:
    return {
        "type": "section",
        "fields": [
            {"type": "mrkdwn", "text": f"*{label}*\n{value}"[:FIELD_TEXT_MAX]}
            for label, value in pairs[:10]
        ],
    }


def _words(label: str, texts: Sequence[str], budget: int = SECTION_TEXT_MAX) -> Block | None:
    """The client's words under a label, newest kept when they do not all fit."""
    texts = [t for t in texts if t.strip()]
    if not texts:
        return None
    head = f"*{label}*\n"
    room = budget - len(head)
    keep = texts[-max(1, room // 200) :]
    per = room // len(keep) - 1
    return _section(head + "\n".join(quote(t, per) for t in keep))


def _client_line(c: ClientView) -> str:
    return f"{escape(c.channel)} {escape(c.external_id)} (client {c.client_id})"


def _country(c: ClientView, i: InquiryView) -> str:
    country = escape(i.country) if i.country else "unknown"
    return f"{country} ({escape(c.zone)})"


def _decision_line(i: InquiryView) -> str:
    rules = ", ".join(i.rules) or "none"
    ruleset = f", ruleset {escape(i.ruleset)}" if i.ruleset else ""
    return f"{escape(i.outcome or 'undecided')} by {escape(i.decider)} (rules {rules}{ruleset})"


def _fallback(text: str) -> str:
    return text[:FALLBACK_TEXT_MAX]


def eu_banner(service: str | None, reply_window_hours: float) -> str:
    """The restrictions sales work under for an EU/EEA client (MiCA Art. 61, DOMAIN.md R5/R6)."""
    return (
        ":warning: *EU/EEA client: served at the client's own exclusive initiative (MiCA Art. 61)."
        " Restrictions:*\n"
        f"• *Only this service:* {service_name(service)}\n"
        "• *Replies only:* answer the client's own questions about it, within "
        f"{reply_window_hours:g} h of their last message\n"
        "• *No follow-ups:* no reminders, newsletters, invitations or events\n"
        "• *No other products or services*, no links or handles, no promotional wording\n"
        "Every reply in this thread passes the outbound gate; a blocked one is explained here."
    )


# --- cards ------------------------------------------------------------------------------------


def lead_card(c: ClientView, i: InquiryView, *, reply_window_hours: float) -> SlackMessage:
    """The lead card in the sales channel (and its edits when the decision changes)."""
    outcome = i.outcome
    eu = outcome == Outcome.SERVE_EU_RESTRICTED.value or c.zone in {z.value for z in IN_SCOPE}
    blocks: list[Block] = [_header(f"Lead: {service_name(i.service)}, client {c.client_id}")]
    if outcome == Outcome.DECLINE.value:
        blocks.append(
            _section(
                ":no_entry: *DECLINED: do not contact this client.* The gate blocks everything "
                "but neutral messages, for good."
            )
        )
    elif outcome == Outcome.ESCALATE.value or outcome is None:
        blocks.append(
            _section(
                ":pause_button: *ON HOLD: under compliance review.* Replies are held until an "
                "officer decides; they are judged again then."
            )
        )
    if eu and outcome != Outcome.DECLINE.value:
        blocks.append(_section(eu_banner(i.service, reply_window_hours), block_id="restrictions"))
    if c.restricted:
        blocks.append(
            _section(
                ":lock: *The client asked for erasure:* only messages the law requires may go out."
            )
        )
    blocks.append(
        _fields(
            [
                ("Client", _client_line(c)),
                ("Language", escape(c.language or "unknown")),
                ("Country", _country(c, i)),
                ("Service", service_name(i.service)),
                ("Decision", _decision_line(i)),
            ]
        )
    )
    for label, texts in (
        ("How they found us, in their own words", c.source_words),
        ("What they asked for", i.service_words),
    ):
        block = _words(label, texts, 1500)
        if block is not None:
            blocks.append(block)
    if i.reasons:
        blocks.append(_section("*Why*\n" + bullets(i.reasons, SECTION_TEXT_MAX - 10)))
    blocks.append(
        _context(
            f"Evidence: `{evidence_command(c.client_id)}` · Reply in this thread to answer the "
            "client; the client's later messages appear here."
        )
    )
    status = {
        Outcome.DECLINE.value: "DECLINED, do not contact",
        Outcome.ESCALATE.value: "on hold",
    }.get(outcome or "", "EU/EEA restricted" if eu else "non-EU")
    text = f"Lead ({status}): {service_name(i.service)}, client {c.client_id}"
    return SlackMessage(_fallback(text), blocks)


def case_buttons(c: ClientView, i: InquiryView, *, thread_id: int) -> Block:
    """The case card's four buttons; each value names the case it belongs to."""
    value = json.dumps({"t": thread_id, "c": c.client_id, "i": i.position}, separators=(",", ":"))
    styles = {OfficerAction.APPROVE_EU: "primary", OfficerAction.DECLINE: "danger"}
    elements = []
    for action, label in ACTION_LABELS.items():
        element: Block = {
            "type": "button",
            "action_id": ACTION_PREFIX + action.value,
            "text": {"type": "plain_text", "text": label},
            "value": value[:BUTTON_VALUE_MAX],
        }
        if action in styles:
            element["style"] = styles[action]
        elements.append(element)
    return {"type": "actions", "block_id": "decide", "elements": elements}


def _status_text(status: CaseStatus, i: InquiryView) -> str:
    if status.stage == "open":
        return ":hourglass_flowing_sand: *Open:* waiting for a compliance officer."
    if status.stage == "awaiting_second":
        first = status.approvals[0] if status.approvals else None
        action = ACTION_LABELS.get(status.pending_action or OfficerAction.APPROVE_EU, "Approve")
        by = f" by {officer(first.officer_id)}: {fit(first.reason, 800)}" if first else ""
        return (
            f":one: *{action}: 1 of 2 approvals*{by}\n"
            "Waiting for a second, different compliance officer."
        )
    if status.stage == "decided":
        who = " and ".join(officer(a.officer_id) for a in status.approvals) or "an officer"
        why = "\n".join(
            f"• {officer(a.officer_id)}: {fit(a.reason, 1000)}" for a in status.approvals
        )
        return f":white_check_mark: *Decided {escape(status.outcome or '')}* by {who}\n{why}"
    reasons = bullets(i.reasons, 1500) if i.reasons else ""
    return (
        f":robot_face: *Closed: new facts made it {escape(status.outcome or i.outcome or '')}"
        f" (decided by {escape(i.decider)}).*\n{reasons}"
    )


def case_card(
    c: ClientView, i: InquiryView, *, thread_id: int, status: CaseStatus
) -> SlackMessage:
    """The case card in the compliance channel; buttons only while the case is open."""
    blocks: list[Block] = [
        _header(f"Compliance review: client {c.client_id}, inquiry {i.position + 1}"),
        _fields(
            [
                ("Client", _client_line(c)),
                ("Language", escape(c.language or "unknown")),
                ("Country", _country(c, i)),
                ("Service", service_name(i.service)),
                ("Bot's rules", escape(", ".join(i.rules) or "none")),
                ("Ruleset", escape(i.ruleset or "unknown")),
            ]
        ),
    ]
    if i.reasons:
        blocks.append(
            _section("*What is unclear, and why*\n" + bullets(i.reasons, SECTION_TEXT_MAX - 40))
        )
    evidence: list[tuple[str, Sequence[str]]] = [
        ("How they found us", c.source_words),
        ("Where they live", c.residence_words),
        ("What they asked for", i.service_words),
        ("Contact by the firm before", c.prior_contact_words),
        ("Link or code", c.referral_words),
    ]
    for label, texts in evidence:
        block = _words(label, texts, 1200)
        if block is not None:
            blocks.append(block)
    if c.start_param:
        blocks.append(_section(f"*Start parameter*\n`{fit(c.start_param, 200)}`"))
    recent = _words("The client's latest messages", c.recent_words, 2500)
    if recent is not None:
        blocks.append(recent)
    blocks.append(_section(_status_text(status, i), block_id="status"))
    if status.stage in ("open", "awaiting_second"):
        blocks.append(case_buttons(c, i, thread_id=thread_id))
    blocks.append(
        _context(
            f"Evidence: `{evidence_command(c.client_id)}` · A decision needs a reason; only "
            "compliance officers can decide."
        )
    )
    stage = {
        "open": "open",
        "awaiting_second": "waiting for a second officer",
        "decided": f"decided {status.outcome}",
        "closed": f"closed, {status.outcome or i.outcome}",
    }[status.stage]
    text = f"Compliance case ({stage}): client {c.client_id}, {service_name(i.service)}"
    return SlackMessage(_fallback(text), blocks)


def decline_card(c: ClientView, i: InquiryView) -> SlackMessage:
    """The notice to compliance that the bot declined a client."""
    blocks: list[Block] = [
        _header(f"Declined: client {c.client_id}, inquiry {i.position + 1}"),
        _section(
            ":information_source: For information: the bot declined this inquiry and told the "
            "client neutrally. All promotion to this client is blocked for good."
        ),
        _fields(
            [
                ("Client", _client_line(c)),
                ("Country", _country(c, i)),
                ("Service", service_name(i.service)),
                ("Decision", _decision_line(i)),
            ]
        ),
    ]
    if i.reasons:
        blocks.append(_section("*Why*\n" + bullets(i.reasons, SECTION_TEXT_MAX - 10)))
    block = _words("How they found us, in their own words", c.source_words, 2000)
    if block is not None:
        blocks.append(block)
    blocks.append(_context(f"Evidence: `{evidence_command(c.client_id)}`"))
    text = f"Declined: client {c.client_id}, {service_name(i.service)}"
    return SlackMessage(_fallback(text), blocks)


# --- thread notes -----------------------------------------------------------------------------


def client_words_note(text: str, *, at: str) -> SlackMessage:
    """A client's later message, mirrored into the thread."""
    body = f":speech_balloon: *Client* ({escape(at)}):\n{quote(text, SECTION_TEXT_MAX - 60)}"
    return SlackMessage("Client: " + fit(text, FALLBACK_TEXT_MAX - 8), [_section(body)])


def erasure_note() -> SlackMessage:
    """The client asked for erasure."""
    text = (
        ":lock: *The client asked for erasure (/delete).* Their messages are no longer shown "
        "here; only messages the law requires may go out."
    )
    return SlackMessage("The client asked for erasure", [_section(text)])


def gate_notice(
    *, verdict: str, reason: str, allowed: str, reply: str, user_id: str
) -> SlackMessage:
    """Why a reply typed in the thread did not go to the client, and what would."""
    icon = ":no_entry:" if verdict == Verdict.BLOCKED else ":pause_button:"
    what = "Not sent" if verdict == Verdict.BLOCKED else "Held, not sent yet"
    body = (
        f"{icon} *{what}* (reply by {officer(user_id)}): {fit(reason, 800)}\n"
        f"*What is allowed:* {allowed}\n{quote(reply, 1200)}"
    )
    return SlackMessage(f"{what}: " + fit(reason, FALLBACK_TEXT_MAX - 40), [_section(body)])


def officer_note(action: OfficerAction, approval: Approval, *, final: bool) -> SlackMessage:
    """An officer's step, in the case thread."""
    who = officer(approval.officer_id)
    if action is OfficerAction.ASK:
        body = f":question: {who} asked the client:\n{quote(approval.reason, 2500)}"
        return SlackMessage(
            "Question to the client: " + fit(approval.reason, FALLBACK_TEXT_MAX - 30),
            [_section(body)],
        )
    label = ACTION_LABELS[action]
    step = "decided" if final else "approved (1 of 2)"
    body = f":memo: {who} {step}: *{label}*\n{quote(approval.reason, 2500)}"
    return SlackMessage(
        f"{label}: " + fit(approval.reason, FALLBACK_TEXT_MAX - 40), [_section(body)]
    )


def reminder_note(*, waited_hours: float, sla_hours: float) -> SlackMessage:
    """The SLA reminder in an undecided case's thread."""
    text = (
        f":alarm_clock: *Reminder:* this case has waited {waited_hours:.0f} h for a decision "
        f"(target {sla_hours:g} h). The client's messages are held meanwhile."
    )
    return SlackMessage(_fallback(text), [_section(text)])


# --- modal ------------------------------------------------------------------------------------


def decision_modal(
    action: OfficerAction, *, metadata: dict[str, Any], client_id: int, inquiry: int
) -> Block:
    """The modal that takes the officer's reason (or, for "Ask the client", the question)."""
    asking = action is OfficerAction.ASK
    label = "Question for the client" if asking else "Reason (kept in the evidence)"
    hint = (
        "Sent to the client through the outbound gate, in your words."
        if asking
        else "Required. Say what settled the case."
    )
    note = f"{ACTION_LABELS[action]}: client {client_id}, inquiry {inquiry + 1}."
    if action in APPROVALS:
        note += " With four-eyes on, a second officer must approve too."
    return {
        "type": "modal",
        "callback_id": MODAL_CALLBACK,
        "title": {"type": "plain_text", "text": _MODAL_TITLES[action][:MODAL_TITLE_MAX]},
        "submit": {"type": "plain_text", "text": "Send" if asking else "Record"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": json.dumps(metadata, separators=(",", ":")),
        "blocks": [
            {"type": "context", "elements": [{"type": "mrkdwn", "text": note}]},
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "label": {"type": "plain_text", "text": label},
                "hint": {"type": "plain_text", "text": hint},
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_ACTION,
                    "multiline": True,
                    "min_length": 3,
                    "max_length": 3000,
                },
            },
        ],
    }
