"""The conversation engine: one client event + the stored state -> new state, events, outbound.

No I/O here. The caller loads the state, calls `Engine.handle`, and commits the returned state,
the evidence events and the outbound intents in one transaction; the outbox and the gate do the
sending. The engine asks for the slots of the flow, fills any slot from any message, re-asks
once when unsure, decides with `triage.domain.policy`, re-evaluates on every later message, and
opens a new inquiry when the client asks for another service (MiCA Art. 61(2)).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

from triage.domain.codes import IN_SCOPE, MessageKind, Outcome, ServiceCode, Zone
from triage.domain.gate import RecipientFacts
from triage.domain.language import detect
from triage.domain.lexicon import language_code
from triage.domain.officer import OfficerDecision
from triage.domain.policy import CrmContact, Decision, InquiryFacts, decide
from triage.domain.profile import CompanyProfile
from triage.domain.services import ServiceFinding, classify_service
from triage.domain.sources import (
    SourceFinding,
    answer_yes_no,
    classify_source,
    find_referral_codes,
    is_hedged,
)
from triage.domain.territory import (
    Gazetteer,
    ResidenceFinding,
    classify_residence,
    places_named,
)
from triage.domain.text import has_content
from triage.flows.spec import FlowSpec

#: Where a turn's classifier results are kept on the state object (not a field: never stored).
_MEMO = "_classified"

EventKind = Literal["message", "start", "button", "contact", "command"]

_START = re.compile(r"^/start(?:@\w+)?(?:\s+(?P<param>\S+))?\s*$", re.IGNORECASE)
_LINK_WORDS = re.compile(
    r"\b(link|code|coupon|invite|referral|ref|promo|lien|enlace|codigo|codice|kod|kode|koden)\b",
    re.IGNORECASE,
)
#: Asset categories that make a request a new one even for a service already asked (R5, R9).
_CATEGORIES = frozenset({"stablecoin", "derivatives", "lending", "staking"})
SERVICE_LABELS = {
    ServiceCode.CUSTODY: "Custody",
    ServiceCode.PLATFORM: "Trading platform",
    ServiceCode.EXCH_FIAT: "Buy or sell crypto for money",
    ServiceCode.EXCH_CRYPTO: "Swap crypto for crypto",
    ServiceCode.EXECUTION: "Order execution",
    ServiceCode.PLACING: "Placing of crypto-assets",
    ServiceCode.RTO: "Reception and transmission of orders",
    ServiceCode.ADVICE: "Advice on crypto-assets",
    ServiceCode.PORTFOLIO: "Portfolio management",
    ServiceCode.TRANSFER: "Crypto transfers",
    ServiceCode.NON_MICA: "Other",
}


def service_label(service: str | None) -> str:
    """The service's name as the bot says it to clients ("" when unknown)."""
    if not service or service not in ServiceCode.__members__:
        return ""
    return SERVICE_LABELS.get(ServiceCode(service), "")


@dataclass(frozen=True)
class ClientEvent:
    """Something the client did: a message, /start, a button press, a shared contact."""

    kind: EventKind
    at: datetime
    text: str = ""
    language: str | None = None
    start_param: str | None = None
    phone: str | None = None
    button: str | None = None


@dataclass(frozen=True)
class OutboundIntent:
    """A message the engine wants sent to the client; the outbox and the gate decide."""

    kind: MessageKind
    text: str
    slot: str | None = None
    buttons: tuple[tuple[str, str], ...] = ()


@dataclass
class Inquiry:
    """One client asking for one service, and its current decision."""

    service: str | None
    opened_at: str
    texts: list[str] = field(default_factory=list)
    outcome: Outcome | None = None
    rules: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    ruleset: str | None = None
    decider: str = "bot"
    country: str | None = None
    #: The firm's product the request names, if any ("Yield Vault").
    product: str | None = None


@dataclass
class ConversationState:
    """Everything the engine needs to resume a conversation; JSON-serialisable."""

    language: str | None = None
    start_param: str | None = None
    phone: str | None = None
    slots: dict[str, list[str]] = field(default_factory=dict)
    asked: dict[str, int] = field(default_factory=dict)
    unresolved: list[str] = field(default_factory=list)
    pending: str | None = None
    messages: list[str] = field(default_factory=list)
    inquiries: list[Inquiry] = field(default_factory=list)
    crm: list[dict[str, str]] = field(default_factory=list)
    last_client_at: str | None = None
    welcomed: bool = False
    restricted: bool = False
    #: An officer overrode the residence zone (approve as non-EU / as EU restricted).
    zone_override: str | None = None
    #: The language the client writes in, detected from their text (one of ours).
    text_language: str | None = None
    #: A language the client writes in that the bot does not read (a person must).
    foreign_language: str | None = None
    #: Why the residence needs a person: it moved across the EU/EEA border after the decision.
    residence_changed: str | None = None

    @property
    def reading_language(self) -> str | None:
        """The language to read the client's words in: what they write, else their app's."""
        return self.text_language or language_code(self.language) or self.language

    def to_dict(self) -> dict[str, Any]:
        """Plain data for storage (an outcome is stored as its name)."""
        data = asdict(self)
        for inquiry in data["inquiries"]:
            if inquiry["outcome"] is not None:
                inquiry["outcome"] = Outcome(inquiry["outcome"]).value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConversationState:
        """Rebuild from storage."""
        data = dict(data)
        inquiries = []
        for stored in data.get("inquiries", []):
            inquiry = Inquiry(**stored)
            if inquiry.outcome is not None:
                inquiry.outcome = Outcome(inquiry.outcome)
            inquiries.append(inquiry)
        data["inquiries"] = inquiries
        return cls(**data)

    @property
    def decided(self) -> bool:
        """Whether the first inquiry has been decided."""
        return bool(self.inquiries) and self.inquiries[0].outcome is not None


@dataclass(frozen=True)
class DecisionEvent:
    """A decision taken or changed in this turn."""

    inquiry: int
    decision: Decision
    opened: bool
    previous: str | None


@dataclass
class TurnResult:
    """What one event produced."""

    state: ConversationState
    outbound: list[OutboundIntent] = field(default_factory=list)
    decisions: list[DecisionEvent] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class OfficerTurn:
    """What an officer's decision changed besides the state: the inquiry's outcome before it,
    the message that tells the client, and the recipient's facts after it."""

    previous: Outcome | None
    message: OutboundIntent
    facts: RecipientFacts


@dataclass(frozen=True)
class Findings:
    """The classifiers' view of a conversation at one moment."""

    residence: ResidenceFinding
    source: SourceFinding
    service: ServiceFinding
    referral_codes: tuple[tuple[str, str], ...]
    prior_contact: bool | None
    used_link: bool | None
    prior_unsure: bool = False


class Engine:
    """Runs the intake flow for one company profile."""

    def __init__(self, flow: FlowSpec, profile: CompanyProfile, gazetteer: Gazetteer) -> None:
        self.flow = flow
        self.profile = profile
        self.gazetteer = gazetteer

    # --- classification -------------------------------------------------------------------
    #
    # One turn asks the same questions several times (each optional step, the first decision,
    # every inquiry's re-evaluation, the gate's recipient zone): the classifiers are pure, so
    # their results are kept for the turn on the state object, keyed by everything they read.

    def _memo(self, state: ConversationState) -> dict[tuple[Any, ...], Any]:
        held = state.__dict__.get(_MEMO)
        if held is None or held[0] is not self:
            held = (self, {})
            state.__dict__[_MEMO] = held
        memo: dict[tuple[Any, ...], Any] = held[1]
        return memo

    def _new_turn(self, state: ConversationState) -> None:
        """Forget the previous turn's classifier results (they stay valid, but would grow)."""
        state.__dict__.pop(_MEMO, None)

    def _residence(
        self, state: ConversationState, text: str, *, explicit_only: bool = False
    ) -> ResidenceFinding:
        # The explicit-only reading (a volunteered place) is made without the phone.
        phone = None if explicit_only else state.phone
        lang = state.reading_language
        key = ("residence", text, lang, phone, explicit_only)
        memo = self._memo(state)
        found = memo.get(key)
        if found is None:
            if explicit_only:
                found = classify_residence(text, self.gazetteer, language=lang, explicit_only=True)
            else:
                found = classify_residence(text, self.gazetteer, language=lang, phone=state.phone)
            memo[key] = found
        return found  # type: ignore[no-any-return]

    def _source(self, state: ConversationState, text: str) -> SourceFinding:
        memo = self._memo(state)
        lang = state.reading_language
        found = memo.get(("source", text, lang))
        if found is None:
            found = memo[("source", text, lang)] = classify_source(text, self.profile, lang)
        return found  # type: ignore[no-any-return]

    def _service(self, state: ConversationState, text: str) -> ServiceFinding:
        memo = self._memo(state)
        lang = state.reading_language
        found = memo.get(("service", text, lang))
        if found is None:
            found = memo[("service", text, lang)] = classify_service(text, self.profile, lang)
        return found  # type: ignore[no-any-return]

    def _codes(self, state: ConversationState, text: str) -> tuple[tuple[str, str], ...]:
        memo = self._memo(state)
        found = memo.get(("codes", text))
        if found is None:
            found = memo[("codes", text)] = tuple(find_referral_codes(text, self.profile))
        return found  # type: ignore[no-any-return]

    def _source_location(
        self, state: ConversationState
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Countries named in the client's account of how they found the firm, and location
        signals (a VPN) found there."""
        text = "\n".join(state.slots.get("source", []))
        memo = self._memo(state)
        key = ("source_location", text)
        found = memo.get(key)
        if found is None:
            lang = state.reading_language
            places = places_named(text, self.gazetteer, language=lang)
            read = classify_residence(text, self.gazetteer, language=lang)
            signals = tuple(s for s in read.signals if s == "vpn")
            found = memo[key] = (places, signals)
        return found  # type: ignore[no-any-return]

    def findings(
        self, state: ConversationState, service_texts: list[str] | None = None
    ) -> Findings:
        """Classify everything the client said so far."""
        residence = self._residence(state, "\n".join(state.slots.get("residence", [])))
        source = self._source(state, "\n".join(state.slots.get("source", [])))
        svc_texts = service_texts if service_texts is not None else state.slots.get("service", [])
        service = self._service(state, "\n".join(svc_texts))
        codes: dict[str, tuple[str, str]] = {}
        for text in [state.start_param or "", *state.messages]:
            for code, entry in self._codes(state, text):
                codes.setdefault(code.upper(), (code, entry))
        prior = None
        prior_unsure = False
        for text in state.slots.get("prior_contact", []):
            prior = answer_yes_no(text, state.reading_language)
            if prior is None:
                sig = self._source(state, text)
                if sig.channel.value in ("firm_contact", "close_link", "influencer", "ad"):
                    prior = True
                # "maybe", "I think so": not a no. "I don't know" alone stays unknown.
                prior_unsure = prior is None and is_hedged(text, state.reading_language)
        used = None
        for text in state.slots.get("referral", []):
            used = answer_yes_no(text, state.reading_language)
        return Findings(
            residence, source, service, tuple(codes.values()), prior, used, prior_unsure
        )

    def _facts(
        self, state: ConversationState, f: Findings, today: date, *, further: bool
    ) -> InquiryFacts:
        crm = tuple(
            CrmContact(c.get("channel", "?"), date.fromisoformat(c["date"]), c.get("note", ""))
            for c in state.crm
        )
        residence = f.residence
        if state.zone_override:
            residence = ResidenceFinding(
                code=residence.code,
                zone=Zone(state.zone_override),
                confidence=1.0,
                place=residence.place,
                signals=(),
                reasons=("residence settled by a compliance officer",),
                candidates=residence.candidates,
            )
        return InquiryFacts(
            today=today,
            residence=residence,
            source=f.source,
            service=f.service,
            referral_codes=f.referral_codes,
            crm=crm,
            prior_contact=f.prior_contact,
            prior_contact_unsure=f.prior_unsure,
            used_link_or_code=f.used_link,
            unresolved=tuple(state.unresolved),
            further_service=further,
            foreign_language=state.foreign_language,
            residence_changed=state.residence_changed or "",
            source_places=self._source_location(state)[0],
            other_location_signals=self._source_location(state)[1],
        )

    # --- the turn ---------------------------------------------------------------------------

    def handle(self, state: ConversationState, event: ClientEvent) -> TurnResult:
        """Process one client event."""
        self._new_turn(state)
        out = TurnResult(state)
        if event.language and not state.language:
            state.language = event.language
        if event.phone:
            state.phone = event.phone
            out.events.append({"type": "contact_shared", "phone": event.phone})
        text = event.text or ""
        if event.kind == "start" or _START.match(text.strip()):
            match = _START.match(text.strip())
            param = event.start_param or (match.group("param") if match else None)
            if param:
                state.start_param = param
            out.events.append({"type": "start", "param": param})
            if not state.inquiries and not state.messages:
                self._welcome(state, out)
                self._next(state, out, event.at)
            return out
        if event.kind == "button" and event.button:
            text = self._button_text(event.button) or text
            out.events.append({"type": "button", "data": event.button, "text": text})
        if event.kind == "contact" and not text:
            if state.inquiries:
                self._reevaluate(state, out, event.at)
            return out
        state.last_client_at = event.at.isoformat()
        state.messages.append(text)
        self._learn_language(state, text, out)
        out.events.append({"type": "client_message", "text": text, "answers": state.pending})
        if not state.decided:
            self._intake(state, out, text, event.at)
        else:
            self._after_decision(state, out, text, event.at)
        return out

    def _learn_language(self, state: ConversationState, text: str, out: TurnResult) -> None:
        """Detect the language the client writes in, once a message is long enough to tell."""
        if state.text_language or state.foreign_language:
            return
        found = detect(text)
        if found is None:
            return
        if found.supported:
            state.text_language = found.code
        else:
            state.foreign_language = found.code
        out.events.append(
            {"type": "language_detected", "language": found.code, "supported": found.supported}
        )

    def prompt_language(self, state: ConversationState) -> str | None:
        """The language the bot writes in: the client's text's, else their app's, else the
        flow's default (FlowSpec.text falls back)."""
        return state.text_language or language_code(state.language) or state.language

    def command(self, state: ConversationState, name: str, at: datetime) -> TurnResult:
        """/help, /privacy, /delete: answered in the client's language."""
        self._new_turn(state)
        out = TurnResult(state)
        lang = self.prompt_language(state)
        if name == "help":
            out.outbound.append(
                OutboundIntent(MessageKind.TRANSACTIONAL, self.flow.text("help", lang))
            )
        elif name == "privacy":
            text = self.flow.text("privacy", lang, years=self.profile.retention_years)
            out.outbound.append(OutboundIntent(MessageKind.TRANSACTIONAL, text))
        elif name == "delete":
            state.restricted = True
            out.events.append({"type": "erasure_requested", "at": at.isoformat()})
            out.outbound.append(
                OutboundIntent(MessageKind.TRANSACTIONAL, self.flow.text("erasure", lang))
            )
        out.events.append({"type": "command", "name": name})
        return out

    # --- intake -----------------------------------------------------------------------------

    def _welcome(self, state: ConversationState, out: TurnResult) -> None:
        if state.welcomed:
            return
        state.welcomed = True
        text = self.flow.text("welcome", self.prompt_language(state), firm=self.profile.display)
        out.outbound.append(OutboundIntent(MessageKind.PROMPT, text))

    def _intake(self, state: ConversationState, out: TurnResult, text: str, at: datetime) -> None:
        pending = state.pending
        if pending is None:
            self._welcome(state, out)
        if pending is not None:
            state.slots.setdefault(pending, []).append(text)
            state.pending = None
            if not self._slot_ok(state, pending):
                # The answer may carry other facts ("I want custody" to "how did you find us").
                self._fill_opportunistically(state, out, text, unprompted=True)
                if state.asked.get(pending, 0) < 2 and self.flow.step(pending).required:
                    self._ask(state, out, pending, retry=True)
                    return
                state.unresolved.append(pending)
                out.events.append({"type": "slot_unresolved", "slot": pending})
            else:
                out.events.append({"type": "slot_filled", "slot": pending})
        self._fill_opportunistically(state, out, text, unprompted=pending is None)
        self._next(state, out, at)

    def _slot_ok(self, state: ConversationState, slot: str) -> bool:
        texts = state.slots.get(slot, [])
        joined = "\n".join(texts)
        if not has_content(joined):
            return False
        if slot == "source":
            return self._source(state, joined).channel.value != "unknown"
        if slot == "residence":
            res = self._residence(state, joined)
            return res.zone is not Zone.UNKNOWN or bool(
                set(res.signals) - {"refused", "fuzzy", "nationality_only"}
            )
        if slot == "service":
            return self._service(state, joined).code is not None
        return True

    def _fill_opportunistically(
        self, state: ConversationState, out: TurnResult, text: str, *, unprompted: bool
    ) -> None:
        """Fill other slots from what the client volunteered."""
        filled = state.slots
        if "source" in filled and text not in filled["source"]:
            # "Berlin. And sorry, it was your ad, not Google": what the client says later about
            # how they found the firm, in any answer, joins (and may correct) the source answer.
            src = self._source(state, text)
            if any(not s.negated for s in src.signals) or src.referral_codes:
                filled["source"].append(text)
                out.events.append({"type": "fact_learned", "slot": "source"})
        if "residence" not in filled:
            res = self._residence(state, text, explicit_only=True)
            if res.zone is not Zone.UNKNOWN:
                filled["residence"] = [text]
                out.events.append(
                    {"type": "slot_filled", "slot": "residence", "volunteered": True}
                )
        if not unprompted:
            return
        if "service" not in filled and self._service(state, text).code is not None:
            filled["service"] = [text]
            out.events.append({"type": "slot_filled", "slot": "service", "volunteered": True})
        if "source" not in filled:
            src = self._source(state, text)
            if src.channel.value != "unknown" and src.confidence >= 0.5:
                filled["source"] = [text]
                out.events.append({"type": "slot_filled", "slot": "source", "volunteered": True})

    def _wanted(self, state: ConversationState, slot: str, at: datetime) -> bool:
        step = self.flow.step(slot)
        if slot == "source" and not state.asked.get(slot, 0) and slot not in state.unresolved:
            # The open question is always asked once, even after a volunteered mention: the
            # client's answer to it is the evidence (DOMAIN.md R4, section 5).
            return True
        if slot in state.slots or slot in state.unresolved or state.asked.get(slot, 0):
            return False
        if step.required:
            return True
        f = self.findings(state)
        if step.when == "link_mentioned":
            if f.referral_codes:
                return False
            src_text = " ".join(state.slots.get("source", []))
            return bool(_LINK_WORDS.search(src_text)) and "no_link_or_code" not in f.source.flags
        if step.when == "before_serving_eu":
            facts = self._facts(state, f, at.date(), further=False)
            draft = decide(facts, self.profile)
            return draft.outcome is Outcome.SERVE_EU_RESTRICTED
        return True

    def _next(self, state: ConversationState, out: TurnResult, at: datetime) -> None:
        for step in self.flow.steps:
            if self._wanted(state, step.slot, at):
                self._ask(state, out, step.slot, retry=False)
                return
        self._decide_first(state, out, at)

    def _ask(self, state: ConversationState, out: TurnResult, slot: str, *, retry: bool) -> None:
        state.asked[slot] = state.asked.get(slot, 0) + 1
        state.pending = slot
        key = f"{slot}_retry" if retry else slot
        text = self.flow.text(key, self.prompt_language(state), firm=self.profile.display)
        buttons: tuple[tuple[str, str], ...] = ()
        if retry:
            buttons = self._buttons(state, slot)
        out.outbound.append(OutboundIntent(MessageKind.PROMPT, text, slot=slot, buttons=buttons))
        out.events.append({"type": "question", "slot": slot, "retry": retry, "text": text})

    def _buttons(self, state: ConversationState, slot: str) -> tuple[tuple[str, str], ...]:
        names = self.flow.step(slot).retry_buttons
        if names == ("services",):
            return tuple((SERVICE_LABELS[s], f"{slot}:{s.value}") for s in self.profile.services)
        lang = self.prompt_language(state)
        return tuple((self.flow.text(f"button_{n}", lang), f"{slot}:{n}") for n in names)

    def _button_text(self, data: str) -> str | None:
        slot, _, value = data.partition(":")
        if slot == "service" and value in ServiceCode.__members__:
            return SERVICE_LABELS[ServiceCode(value)]
        if slot == "source" and value:
            return self.flow.text(f"button_{value}", "en")
        return None

    def _decide_first(self, state: ConversationState, out: TurnResult, at: datetime) -> None:
        f = self.findings(state)
        decision = decide(self._facts(state, f, at.date(), further=False), self.profile)
        inquiry = Inquiry(
            service=decision.service.value if decision.service else None,
            opened_at=at.isoformat(),
            texts=list(state.slots.get("service", [])),
            product=f.service.product,
        )
        state.inquiries.append(inquiry)
        self._apply(state, out, 0, decision, opened=True)

    def _apply(
        self,
        state: ConversationState,
        out: TurnResult,
        index: int,
        decision: Decision,
        *,
        opened: bool,
        tell_client: bool = True,
    ) -> None:
        inquiry = state.inquiries[index]
        previous = inquiry.outcome.value if inquiry.outcome else None
        if not opened and inquiry.outcome is decision.outcome:
            return
        inquiry.outcome = decision.outcome
        inquiry.rules = list(decision.rules)
        inquiry.reasons = list(decision.reasons)
        inquiry.ruleset = decision.ruleset
        inquiry.decider = "bot"
        inquiry.country = decision.country
        out.decisions.append(DecisionEvent(index, decision, opened, previous))
        out.events.append(
            {
                "type": "decision",
                "inquiry": index,
                "outcome": decision.outcome.value,
                "rules": list(decision.rules),
                "reasons": list(decision.reasons),
                "ruleset": decision.ruleset,
                "decider": "bot",
                "previous": previous,
                "service": inquiry.service,
                "country": decision.country,
            }
        )
        if not tell_client:
            return
        lang = self.prompt_language(state)
        if opened and index > 0:
            key = "new_inquiry"
            kind = MessageKind.HOLDING
        else:
            key = f"outcome_{decision.outcome.value}"
            kind = (
                MessageKind.DECLINE if decision.outcome is Outcome.DECLINE else MessageKind.HOLDING
            )
        label = SERVICE_LABELS.get(decision.service, "") if decision.service else ""
        text = self.flow.text(key, lang, firm=self.profile.display, service=label.lower())
        out.outbound.append(OutboundIntent(kind, text))

    # --- after the first decision ------------------------------------------------------------

    def _after_decision(
        self, state: ConversationState, out: TurnResult, text: str, at: datetime
    ) -> None:
        if state.pending is not None:
            # An officer asked the client something: the answer goes into that slot.
            state.slots.setdefault(state.pending, []).append(text)
            state.pending = None
        res = self._residence(state, text, explicit_only=True)
        before = self.findings(state).residence
        if res.zone is not Zone.UNKNOWN and res.code not in (before.code, None):
            state.slots.setdefault("residence", []).append(text)
            out.events.append({"type": "fact_learned", "slot": "residence"})
            if res.zone is not before.zone and not state.residence_changed:
                # A move across the EU/EEA border after the decision is for a person: the
                # rules that applied may no longer apply, and a client can learn them.
                state.residence_changed = (
                    f"the client's residence changed after the first decision "
                    f"({before.code or '?'} -> {res.code})"
                )
        src = self._source(state, text)
        if any(not s.negated for s in src.signals) or src.referral_codes:
            state.slots.setdefault("source", []).append(text)
            out.events.append({"type": "fact_learned", "slot": "source"})
        if self._another_request(state, self._service(state, text)):
            self._open_inquiry(state, out, text, at)
        self._reevaluate(state, out, at)

    def _another_request(self, state: ConversationState, svc: ServiceFinding) -> bool:
        """Whether a later message asks for something no inquiry covers yet: another service,
        another of the firm's products, or another asset category (stablecoins, derivatives,
        lending, staking). Each is a new request under Art. 61(2), decided afresh."""
        asked = _CATEGORIES & svc.flags
        if svc.code is None and not asked:
            return False
        codes: set[str] = set()
        products: set[str] = set()
        categories: set[str] = set()
        for inquiry in state.inquiries:
            if inquiry.service:
                codes.add(inquiry.service)
            earlier = self._service(
                state, "\n".join(inquiry.texts or state.slots.get("service", []))
            )
            codes.update(c.value for c in earlier.codes)
            if earlier.product:
                products.add(earlier.product)
            categories |= _CATEGORIES & earlier.flags
        if svc.code is not None and svc.code.value not in codes:
            return True
        if svc.product is not None and svc.product not in products:
            return True
        return bool(asked - categories)

    def _open_inquiry(
        self, state: ConversationState, out: TurnResult, text: str, at: datetime
    ) -> None:
        f = self.findings(state, service_texts=[text])
        decision = decide(self._facts(state, f, at.date(), further=True), self.profile)
        inquiry = Inquiry(
            service=decision.service.value if decision.service else None,
            opened_at=at.isoformat(),
            texts=[text],
            product=f.service.product,
        )
        state.inquiries.append(inquiry)
        self._apply(state, out, len(state.inquiries) - 1, decision, opened=True)

    def _reevaluate(self, state: ConversationState, out: TurnResult, at: datetime) -> None:
        """A fact learned later re-opens every decision (DESIGN.md)."""
        for index, inquiry in enumerate(state.inquiries):
            texts = inquiry.texts or state.slots.get("service", [])
            f = self.findings(state, service_texts=texts)
            decision = decide(self._facts(state, f, at.date(), further=index > 0), self.profile)
            if inquiry.decider != "bot":
                # An officer's decision stands unless new facts make it a decline.
                if decision.outcome is not Outcome.DECLINE or inquiry.outcome is Outcome.DECLINE:
                    continue
            self._apply(state, out, index, decision, opened=False)

    # --- an officer's decision ------------------------------------------------------------------

    def apply_officer_decision(
        self, state: ConversationState, index: int, decision: OfficerDecision
    ) -> OfficerTurn:
        """Apply an officer's decision to inquiry `index` of `state` (in place): its outcome,
        rules and reasons, decider "officer", the residence zone an approval settles; and the
        neutral message that tells the client, in their app's language."""
        inquiry = state.inquiries[index]
        previous = inquiry.outcome
        inquiry.outcome = decision.outcome
        inquiry.decider = "officer"
        inquiry.rules = list(decision.rules)
        inquiry.reasons = list(decision.reasons)
        if decision.zone is not None:
            state.zone_override = decision.zone.value
        label = service_label(inquiry.service)
        text = self.flow.text(
            f"outcome_{decision.outcome.value}",
            state.language,
            firm=self.profile.display,
            service=label.lower(),
        )
        kind = MessageKind.DECLINE if decision.outcome is Outcome.DECLINE else MessageKind.HOLDING
        return OfficerTurn(previous, OutboundIntent(kind, text), self.recipient_facts(state))

    # --- what the gate needs -------------------------------------------------------------------

    def recipient_facts(self, state: ConversationState) -> RecipientFacts:
        """What the gate will know of the client of `state`: stored with the state, read by the
        outbox at send time (which classifies nothing itself)."""
        if state.zone_override:
            zone = Zone(state.zone_override)
        else:
            zone = self._residence(state, "\n".join(state.slots.get("residence", []))).zone
        return recipient_facts(state, zone=zone)


def recipient_facts(state: ConversationState, *, zone: Zone) -> RecipientFacts:
    """The gate's facts of `state` with the recipient's `zone` (established by the engine, or
    an officer's override)."""
    outcomes = tuple(i.outcome for i in state.inquiries)
    served = tuple(
        ServiceCode(i.service)
        for i in state.inquiries
        if i.service and i.outcome is Outcome.SERVE_EU_RESTRICTED
    )
    requested = tuple(ServiceCode(i.service) for i in state.inquiries if i.service)
    undecided = [i for i in state.inquiries if i.outcome in (None, Outcome.ESCALATE)]
    last = None
    if state.last_client_at:
        last = datetime.fromisoformat(state.last_client_at)
        last = last if last.tzinfo else last.replace(tzinfo=UTC)
    return RecipientFacts(
        zone=Zone(state.zone_override) if state.zone_override else zone,
        outcomes=outcomes,
        served=served,
        requested=requested,
        last_client_message_at=last,
        restricted=state.restricted,
        pending=tuple(ServiceCode(i.service) for i in undecided if i.service),
        pending_products=tuple(i.product for i in undecided if i.product),
        language=state.reading_language,
    )


def in_scope(zone: Zone) -> bool:
    """Whether a zone is EU/EEA."""
    return zone in IN_SCOPE
