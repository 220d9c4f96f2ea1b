"""The outbound gate: may this message go to this client, now?

Every message to a client passes here at the moment it is sent (DESIGN.md invariant 1). The
gate reads the text as well as the declared kind: a "reply" that pitches another product is an
upsell, a "decline" that points to the firm's channel is promotion. It fails closed: a client
whose status is unknown or undecided gets nothing but neutral messages until an officer decides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from triage.domain.codes import (
    IN_SCOPE,
    PROMOTIONAL_KINDS,
    MessageKind,
    Outcome,
    Sender,
    ServiceCode,
    Verdict,
    Zone,
)
from triage.domain.matching import first_owner_named, per_profile, token_sequences
from triage.domain.profile import CompanyProfile
from triage.domain.services import classify_service
from triage.domain.text import fold

#: Words that make a text promotional whatever its declared kind, in the bot's languages.
_PROMO_TERMS = (
    # en
    "bonus",
    "reward",
    "cashback",
    "promo",
    "promotion",
    "discount",
    "special offer",
    "limited offer",
    "limited time",
    "exclusive offer",
    "free",
    "giveaway",
    "airdrop",
    "invite friends",
    "invite a friend",
    "invite your friends",
    "refer a friend",
    "referral",
    "newsletter",
    "subscribe",
    "follow us",
    "join our",
    "join us",
    "our channel",
    "our telegram",
    "our twitter",
    "our community",
    "webinar",
    "meet us",
    "see you at",
    "new listing",
    "now listed",
    "just listed",
    "now available",
    "launch",
    "launched",
    "apy",
    "earn up to",
    "returns",
    "returned",
    "still interested",
    "don t miss",
    # de
    "gratis",
    "kostenlos",
    "angebot",
    "rabatt",
    "freunde einladen",
    "empfehlen sie",
    "abonnieren",
    "folgen sie",
    "unser kanal",
    "unserem kanal",
    "neu gelistet",
    "verdienen",
    "noch interessiert",
    "verpassen sie",
    # fr
    "gratuit",
    "offre",
    "reduction",
    "parrainage",
    "parrainez",
    "invitez",
    "abonnez",
    "rejoignez",
    "suivez nous",
    "notre chaine",
    "nouveaute",
    "nouveautes",
    "gagnez",
    "toujours interesse",
    "decouvrez",
    # es
    "gratis",
    "oferta",
    "descuento",
    "invita a",
    "invite a",
    "suscribete",
    "unete",
    "siguenos",
    "nuestro canal",
    "novedad",
    "novedades",
    "gana",
    "sigue interesado",
    "descubre",
    # it
    "omaggio",
    "offerta",
    "sconto",
    "invita",
    "iscriviti",
    "unisciti",
    "seguici",
    "il nostro canale",
    "novita",
    "guadagna",
    "ancora interessato",
    "scopri",
    # pt
    "gratuito",
    "oferta",
    "desconto",
    "convide",
    "subscreva",
    "junte se",
    "siga nos",
    "nosso canal",
    "novidade",
    "novidades",
    "ganhe",
    "ainda interessado",
    "descubra",
    # nl
    "gratis",
    "aanbieding",
    "korting",
    "nodig vrienden",
    "nodig je",
    "nodig uw",
    "nodigen",
    "uitnodigen",
    "abonneer",
    "volg ons",
    "ons kanaal",
    "nieuw",
    "verdien",
    "nog interesse",
    "ontdek",
    # pl
    "darmowy",
    "oferta",
    "rabat",
    "zapros",
    "subskrybuj",
    "dolacz",
    "obserwuj",
    "nasz kanal",
    "nowosc",
    "zarabiaj",
    "nadal zainteresowany",
    "odkryj",
    # sv
    "gratis",
    "erbjudande",
    "rabatt",
    "bjud in",
    "prenumerera",
    "ga med",
    "folj oss",
    "var kanal",
    "nyhet",
    "nyheter",
    "tjana",
    "fortfarande intresserad",
    "upptack",
)
#: Stems of promotional words (any ending): events, invitations, exclusivity, in every language.
_PROMO_STEMS = (
    # events and invitations (R6: event invitations are blocked for EU/EEA clients)
    "event",
    "evenement",
    "evento",
    "evenemang",
    "veranstaltung",
    "konferen",
    "conferen",
    "summit",
    "meetup",
    "expo",
    "hackathon",
    "roadshow",
    "wydarzen",
    "ti aspettiamo",
    "vi aspettiamo",
    "te esperamos",
    "os esperamos",
    "esperamos por",
    "retrouvez nous",
    "rendez vous",
    "see you at",
    "join us at",
    "meet us at",
    "treffen sie uns",
    "besuchen sie uns",
    "tot ziens op",
    "vi ses pa",
    "zapraszamy",
    # urgency and exclusivity
    "exclusiv",
    "esclusiv",
    "exclusief",
    "ekskluzywn",
    "last chance",
    "hurry",
    "register now",
    "sign up now",
    "inscri",
    "iscriv",
    "anmeld",
    "aanmeld",
    "schrijf je in",
    "zapisz sie",
    "anmal dig",
    "profitez",
    "aprovecha",
    "approfitta",
    "aproveite",
    "profiteer",
    "skorzystaj",
    "passa pa",
    "introducing",
    "check out our",
    "try our",
    "upgrade",
    # announcements, other products, loyalty (R6: listing and product announcements)
    "our new",
    "brand new",
    "new product",
    "new feature",
    "new service",
    "newly",
    "now support",
    "now offer",
    "just added",
    "we added",
    "we have added",
    "heard about our",
    "would you like to hear",
    "more products",
    "other products",
    "our products",
    "other services",
    "our other",
    "loyalty",
    "programme",
    "program",
    "vip",
    "qualify",
    "congrat",
    "unser neu",
    "unsere neu",
    "neue produkt",
    "neues produkt",
    "jetzt auch",
    "nouveau produit",
    "nouvelle offre",
    "desormais",
    "nuevo producto",
    "ahora ofrecemos",
    "nuovo prodotto",
    "ora offriamo",
    "novo produto",
    "agora oferecemos",
    "nu ook",
    "nowy produkt",
    "teraz oferujemy",
    "ny produkt",
    "nu erbjuder",
    # ru / uk
    "бонус",
    "скидк",
    "знижк",
    "акци",
    "приглаш",
    "запрошу",
    "подпиш",
    "підпиш",
    "наш канал",
    "мероприят",
    "конференц",
    "новинк",
    "заработ",
    "зароб",
)
_PROMO_RE = re.compile(
    r"\b(?:" + "|".join(re.escape(t) for t in sorted(set(_PROMO_TERMS))) + r")\b"
)
_PROMO_STEM_RE = re.compile(
    r"\b(?:" + "|".join(re.escape(fold(t)) for t in sorted(set(_PROMO_STEMS))) + r")\w*"
)
_HANDLE_RE = re.compile(r"(?<![\w.])@[A-Za-z0-9_]{4,}|t\.me/|https?://", re.IGNORECASE)

#: Kinds that are neutral by nature when their text is neutral.
_NEUTRAL_KINDS = frozenset(
    {MessageKind.DECLINE, MessageKind.HOLDING, MessageKind.TRANSACTIONAL, MessageKind.PROMPT}
)


@dataclass(frozen=True)
class OutboundMessage:
    """One attempt to send a message to a client."""

    sender: Sender
    kind: MessageKind
    text: str
    at: datetime
    #: The sender says it answers the client's last message.
    reply: bool = False


@dataclass(frozen=True)
class RecipientFacts:
    """What the firm knows about the recipient at the moment of sending."""

    zone: Zone
    #: Outcome of each inquiry, oldest first; ESCALATE or None means undecided.
    outcomes: tuple[Outcome | None, ...] = ()
    #: Services the client is being served under SERVE_EU_RESTRICTED.
    served: tuple[ServiceCode, ...] = ()
    #: Every service the client asked for, decided or not.
    requested: tuple[ServiceCode, ...] = ()
    last_client_message_at: datetime | None = None
    #: The client asked for erasure: only what the law requires may be sent.
    restricted: bool = False


@dataclass(frozen=True)
class GateResult:
    """The gate's verdict, the reason a person can read, and the rule ids behind it."""

    verdict: Verdict
    reason: str
    rules: tuple[str, ...] = ()
    #: The kind the gate judged the message to be (it may differ from the declared kind).
    judged_kind: MessageKind | None = None


_Names = dict[str, list[tuple[tuple[str, ...], int]]]


def _named(profile: CompanyProfile) -> tuple[_Names, _Names]:
    """The register's and the close links' names as word sequences, once per profile: the
    text names one when its words are a run of the text's words (`\\b{name}\\b`)."""
    register = token_sequences([entry.names for entry in profile.marketing], fold)
    links = token_sequences([(link.name, *link.aliases) for link in profile.close_links], fold)
    return register, links


def promotional_content(
    text: str,
    profile: CompanyProfile,
    served: tuple[ServiceCode, ...],
    *,
    services: bool = True,
    prompt: bool = False,
) -> str:
    """Why a text is promotional for a client served only `served`, or "" when it is not.

    With `services=False` the text is not checked for other services: the bot's own neutral
    texts (questions, holding and decline messages) talk about the request in general words.
    With `prompt=True` (the intake flow's own questions, kept by compliance in flows/) words
    that only name events are not read as invitations.
    """
    folded = fold(text)
    m = _PROMO_RE.search(folded)
    if m is None and not prompt:
        # The bot's own questions may name events ("An event or conference" is an answer
        # option); every other message that does is an invitation (R6).
        m = _PROMO_STEM_RE.search(folded)
    if m:
        return f"promotional wording ({m.group(0)!r})"
    if _HANDLE_RE.search(text):
        return "points to a channel, handle or link"
    register, links = per_profile(profile, "gate.names", _named)
    words = folded.split()
    entry = first_owner_named(register, words)
    if entry is not None:
        return f"names marketing activity '{profile.marketing[entry].id}'"
    link = first_owner_named(links, words)
    if link is not None:
        return f"names a closely linked entity ({profile.close_links[link].name})"
    if not services:
        return ""
    svc = classify_service(text, profile)
    other = [c for c in svc.codes if c not in served]
    if svc.product is not None:
        product = next((p for p in profile.products if p.name == svc.product), None)
        if product is not None and product.service not in served:
            return f"pitches another product ({product.name})"
    if other:
        return f"mentions another service ({other[0].value})"
    return ""


def judge(msg: OutboundMessage, facts: RecipientFacts, profile: CompanyProfile) -> GateResult:
    """Judge one outbound message for one recipient at the time of sending."""
    try:
        return _judge(msg, facts, profile)
    except Exception as exc:
        return GateResult(Verdict.HELD, f"gate error, held for a person: {exc!r}", ("R6",))


def _judge(msg: OutboundMessage, facts: RecipientFacts, profile: CompanyProfile) -> GateResult:
    kind = msg.kind
    decided = [o for o in facts.outcomes if o is not None and o is not Outcome.ESCALATE]
    declined = Outcome.DECLINE in facts.outcomes
    pending = not facts.outcomes or any(o is None or o is Outcome.ESCALATE for o in facts.outcomes)
    in_scope = facts.zone in IN_SCOPE
    handed_off = facts.zone is Zone.OUTSIDE and not declined and Outcome.HANDOFF_NON_EU in decided
    if handed_off and not pending and not facts.restricted:
        return GateResult(
            Verdict.ALLOWED, "client outside the EU/EEA: outbound unrestricted", ("R8",), kind
        )
    # Neutral messages may name what the client asked for; replies only what is being served.
    neutral_scope = tuple(dict.fromkeys((*facts.served, *facts.requested)))
    scope = neutral_scope if kind in _NEUTRAL_KINDS else facts.served
    own_neutral = msg.sender is Sender.BOT and kind in _NEUTRAL_KINDS
    own_prompt = msg.sender is Sender.BOT and kind is MessageKind.PROMPT
    promo = promotional_content(
        msg.text, profile, scope, services=not own_neutral, prompt=own_prompt
    )
    judged = MessageKind.UPSELL if promo and kind not in PROMOTIONAL_KINDS else kind

    def result(verdict: Verdict, reason: str, *rules: str) -> GateResult:
        return GateResult(verdict, reason, rules or ("R6",), judged)

    if facts.restricted:
        if kind is MessageKind.TRANSACTIONAL and not promo:
            return result(Verdict.ALLOWED, "transactional message to a restricted client")
        return result(Verdict.BLOCKED, "client asked for erasure: processing is restricted")
    if kind in _NEUTRAL_KINDS and not promo:
        return result(Verdict.ALLOWED, f"neutral {kind.value} message")
    if declined:
        why = promo or f"{kind.value} to a declined client"
        return result(Verdict.BLOCKED, f"client was declined, only neutral messages: {why}", "R3")
    if not decided:
        why = promo or f"{kind.value} message"
        return result(Verdict.HELD, f"held until an officer decides: {why}")
    if promo:
        return result(Verdict.BLOCKED, f"promotion to an EU/EEA client: {promo}", "R5", "R6")
    if kind in PROMOTIONAL_KINDS:
        return result(Verdict.BLOCKED, f"{kind.value} to an EU/EEA client is proactive", "R6")
    if not in_scope and facts.zone is not Zone.OUTSIDE:
        return result(Verdict.HELD, "the client's residence is not settled")
    # A reply: allowed only as an answer to the client's own recent message.
    if not msg.reply:
        return result(Verdict.BLOCKED, "not an answer to a client message: proactive")
    last = facts.last_client_message_at
    window = timedelta(hours=profile.reply_window_hours)
    if last is None or msg.at - last > window:
        hours = profile.reply_window_hours
        return result(Verdict.BLOCKED, f"no client message in the last {hours} h to reply to")
    return result(Verdict.ALLOWED, "reply to the client's own question on the service", "R5")
