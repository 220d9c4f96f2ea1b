"""The outbound gate: may this message go to this client, now?

Every message to a client passes here at the moment it is sent (DESIGN.md invariant 1). For a
client in or undecided about the EU/EEA a message passes only when the gate recognises it as
serving what the client asked for (a price, limits, timing, steps, KYC, a confirmation, a
security notice, a neutral decline or holding message, the bot's own intake question); what it
cannot place is held for a person, never sent. It reads the text as well as the declared kind:
a "reply" that pitches another product is an upsell. It must never let a promotion reach an
EU/EEA client, never send an offer to self-certify "own initiative" to anyone (R4), and never
fail open: an error holds the message.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache, lru_cache

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
from triage.domain.lexicon import cues, lemmas
from triage.domain.matching import PhraseIndex, first_owner_named, per_profile, token_sequences
from triage.domain.profile import CompanyProfile
from triage.domain.services import classify_service
from triage.domain.text import fold

#: Concepts of the gate's lexicon (triage/data/lexicon/<language>/gate.yaml).
_BLOCKING = ("promotion", "follow_up", "invitation", "event")
_ATTEST, _INITIATIVE = "self_cert_attest", "self_cert_initiative"
_RECOGNISED = ("service_reply", "transactional", "neutral")
_CONCEPTS = (*_BLOCKING, _ATTEST, _INITIATIVE, *_RECOGNISED)

_HANDLE_RE = re.compile(r"(?<![\w.])@[A-Za-z0-9_]{4,}|t\.me/|https?://|www\.", re.IGNORECASE)
#: A number with a unit sign: 0,25 %, %0,35, 5 EUR is read from the words, these from the text.
_QUANTITY_RE = re.compile(r"\d\s?(?:%|‰|[€$£¥₺₽₴]|k\b|x\b)|[%€$£¥₺₽₴]\s?\d", re.IGNORECASE)
#: Tick boxes and buttons a self-certification form is made of.
_TICK_RE = re.compile("[\u2610\u2611\u2612\u2705\u2714\u2713]")

#: Moving the client's own assets in and out is part of a service that holds or trades them
#: (Art. 61(1): "including a relationship specifically relating to" it): a deposit or a
#: withdrawal named in a reply on custody or exchange is not another service.
_ANCILLARY = {
    ServiceCode.TRANSFER: frozenset(
        {
            ServiceCode.CUSTODY,
            ServiceCode.EXCH_FIAT,
            ServiceCode.EXCH_CRYPTO,
            ServiceCode.EXECUTION,
            ServiceCode.PLATFORM,
            ServiceCode.RTO,
        }
    )
}

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
    #: Services of the inquiries still undecided (ESCALATE or open); None: every requested
    #: service not served, when an inquiry is undecided.
    pending: tuple[ServiceCode, ...] | None = None
    #: Names of the firm's products the client asked about in undecided inquiries; None: any
    #: product of a pending service counts as asked.
    pending_products: tuple[str, ...] | None = None
    #: The language the client writes in (one of lexicon.LANGUAGES), for reading inflections.
    language: str | None = None


@dataclass(frozen=True)
class GateResult:
    """The gate's verdict, the reason a person can read, and the rule ids behind it."""

    verdict: Verdict
    reason: str
    rules: tuple[str, ...] = ()
    #: The kind the gate judged the message to be (it may differ from the declared kind).
    judged_kind: MessageKind | None = None


@dataclass(frozen=True)
class _Lexicon:
    """The gate's cue phrases: one-word ones looked up word by word (each distinct word once,
    cached: words recur from message to message), phrases of several words in one pass."""

    single: PhraseIndex
    single_ids: tuple[int, ...]
    multi: PhraseIndex
    multi_ids: tuple[int, ...]
    concept: tuple[str, ...]
    phrase: tuple[str, ...]
    units: frozenset[str]


@cache
def _lexicon() -> _Lexicon:
    pairs: list[tuple[str, bool]] = []
    concept: list[str] = []
    for name in _CONCEPTS:
        for cue in cues("gate", name):
            pairs.append((cue.phrase, cue.star))
            concept.append(name)
    single = [i for i, (p, _) in enumerate(pairs) if " " not in p]
    multi = [i for i, (p, _) in enumerate(pairs) if " " in p]
    units = frozenset(c.phrase for c in cues("gate", "units"))
    return _Lexicon(
        PhraseIndex(pairs[i] for i in single),
        tuple(single),
        PhraseIndex(pairs[i] for i in multi),
        tuple(multi),
        tuple(concept),
        tuple(p for p, _ in pairs),
        units,
    )


@lru_cache(maxsize=65536)
def _word_cues(word: str) -> tuple[int, ...]:
    """The one-word cues (as indexes into `_Lexicon.phrase`) that match one folded word."""
    lex = _lexicon()
    return tuple(lex.single_ids[i] for i in lex.single.matches((word,)))


def _cue_hits(words: Sequence[str]) -> dict[int, int]:
    """Cue index -> first word position where it matches."""
    lex = _lexicon()
    hits: dict[int, int] = {}
    for p, word in enumerate(words):
        for i in _word_cues(word):
            hits.setdefault(i, p)
    for i, at in lex.multi.matches(words).items():
        hits.setdefault(lex.multi_ids[i], at[0])
    return hits


@dataclass(frozen=True)
class Reading:
    """What the gate recognises in a text: concept -> the first phrase found, and whether the
    text states a quantity (a number with a unit)."""

    found: dict[str, str] = field(default_factory=dict)
    quantity: bool = False

    def first(self, *concepts: str) -> str | None:
        """The phrase of the first of `concepts` found, or None."""
        return next((self.found[c] for c in concepts if c in self.found), None)

    @property
    def self_certification(self) -> bool:
        """Asks the client to sign, tick or confirm that they came on their own initiative."""
        return _INITIATIVE in self.found and _ATTEST in self.found


def read(text: str, language: str | None = None) -> Reading:
    """Read a message once: every gate concept it contains, on its words and their lemmas."""
    lex = _lexicon()
    words = fold(text).split()
    hits = _cue_hits(words)
    if language:
        lemma_words = lemmas(text, language)
        if lemma_words != words:
            for i, at in _cue_hits(lemma_words).items():
                hits.setdefault(i, at)
    found: dict[str, str] = {}
    for i in sorted(hits, key=hits.__getitem__):
        found.setdefault(lex.concept[i], lex.phrase[i])
    if _TICK_RE.search(text):
        found.setdefault(_ATTEST, "a tick box")
    quantity = bool(_QUANTITY_RE.search(text)) or _number_with_unit(words, lex.units)
    return Reading(found, quantity)


def _number_with_unit(words: Sequence[str], units: frozenset[str]) -> bool:
    for p, word in enumerate(words):
        if word[:1].isdigit() or word[-1:].isdigit():
            if word in units or any(
                w in units for w in words[max(0, p - 1) : p + 2] if not w[:1].isdigit()
            ):
                return True
            if any(ch.isdigit() for ch in word) and word.rstrip("0123456789") in units:
                return True
    return False


_Names = dict[str, list[tuple[tuple[str, ...], int]]]


def _named(profile: CompanyProfile) -> tuple[_Names, _Names]:
    """The register's and the close links' names as word sequences, once per profile: the
    text names one when its words are a run of the text's words (`\\b{name}\\b`)."""
    register = token_sequences([entry.names for entry in profile.marketing], fold)
    links = token_sequences([(link.name, *link.aliases) for link in profile.close_links], fold)
    return register, links


def _promotion(
    text: str,
    reading: Reading,
    profile: CompanyProfile,
    *,
    prompt: bool = False,
    concepts: tuple[str, ...] = _BLOCKING,
) -> str:
    """Why a text is promotional whatever it is about, or ""."""
    # The bot's own questions (kept by compliance in flows/) name friends and events as answer
    # options ("A friend told me", "An event or conference") and ask "any questions".
    if prompt:
        concepts = ("promotion",)
    phrase = reading.first(*concepts)
    if phrase is not None:
        return f"promotional wording ({phrase!r})"
    if _HANDLE_RE.search(text):
        return "points to a channel, handle or link"
    register, links = per_profile(profile, "gate.names", _named)
    words = fold(text).split()
    entry = first_owner_named(register, words)
    if entry is not None:
        return f"names marketing activity '{profile.marketing[entry].id}'"
    link = first_owner_named(links, words)
    if link is not None:
        return f"names a closely linked entity ({profile.close_links[link].name})"
    return ""


@dataclass(frozen=True)
class _Scope:
    """What a text says about services: another one nobody asked for (an upsell), or one the
    client asked for that an officer has not decided yet."""

    other: str = ""
    pending: str = ""


def _scope(
    text: str,
    profile: CompanyProfile,
    allowed: tuple[ServiceCode, ...],
    pending: tuple[ServiceCode, ...],
    pending_products: tuple[str, ...] | None,
) -> _Scope:
    svc = classify_service(text, profile)
    if svc.product is not None:
        product = next((p for p in profile.products if p.name == svc.product), None)
        if product is not None and product.service not in allowed:
            asked = (
                product.service in pending
                if pending_products is None
                else product.name in pending_products
            )
            if asked:
                return _Scope(pending=f"answers a request still undecided ({product.name})")
            return _Scope(other=f"pitches another product ({product.name})")
    other = [
        c
        for c in svc.codes
        if c not in allowed and not (_ANCILLARY.get(c, frozenset()) & set(allowed))
    ]
    if not other:
        return _Scope()
    if all(c in pending for c in other):
        return _Scope(pending=f"answers a request still undecided ({other[0].value})")
    unasked = next(c for c in other if c not in pending)
    return _Scope(other=f"mentions another service ({unasked.value})")


def promotional_content(
    text: str,
    profile: CompanyProfile,
    served: tuple[ServiceCode, ...],
    *,
    services: bool = True,
    prompt: bool = False,
    language: str | None = None,
) -> str:
    """Why a text is promotional for a client served only `served`, or "" when it is not.

    With `services=False` the text is not checked for other services; with `prompt=True` (the
    intake flow's own questions) words that only name events are not read as invitations.
    """
    reason = _promotion(text, read(text, language), profile, prompt=prompt)
    if reason or not services:
        return reason
    found = _scope(text, profile, served, (), ())
    return found.other or found.pending


def judge(msg: OutboundMessage, facts: RecipientFacts, profile: CompanyProfile) -> GateResult:
    """Judge one outbound message for one recipient at the time of sending."""
    try:
        return _judge(msg, facts, profile)
    except Exception as exc:
        return GateResult(Verdict.HELD, f"gate error, held for a person: {exc!r}", ("R6",))


def _recognised(kind: MessageKind, reading: Reading) -> str:
    """What the gate recognises the message as, or "" (a reply must state something about the
    service; a decline or holding message may be neutral only)."""
    if kind in (MessageKind.DECLINE, MessageKind.HOLDING):
        concepts: tuple[str, ...] = ("neutral", "transactional")
    else:
        concepts = ("service_reply", "transactional")
    phrase = reading.first(*concepts)
    if phrase is not None:
        return phrase
    if reading.quantity and kind not in (MessageKind.DECLINE, MessageKind.HOLDING):
        return "a quantity"
    return ""


def _judge(msg: OutboundMessage, facts: RecipientFacts, profile: CompanyProfile) -> GateResult:
    kind = msg.kind
    reading = read(msg.text, facts.language)
    if reading.self_certification:
        why = reading.first(_INITIATIVE)
        return GateResult(
            Verdict.BLOCKED,
            f"asks the client to certify their own initiative ({why!r}): proves nothing (R4)",
            ("R4",),
            MessageKind.UPSELL if kind not in PROMOTIONAL_KINDS else kind,
        )
    decided = [o for o in facts.outcomes if o is not None and o is not Outcome.ESCALATE]
    declined = Outcome.DECLINE in facts.outcomes
    undecided = not facts.outcomes or any(
        o is None or o is Outcome.ESCALATE for o in facts.outcomes
    )
    in_scope = facts.zone in IN_SCOPE
    handed_off = facts.zone is Zone.OUTSIDE and not declined and Outcome.HANDOFF_NON_EU in decided
    if handed_off and not undecided and not facts.restricted:
        return GateResult(
            Verdict.ALLOWED, "client outside the EU/EEA: outbound unrestricted", ("R8",), kind
        )
    own_prompt = msg.sender is Sender.BOT and kind is MessageKind.PROMPT
    own_neutral = msg.sender is Sender.BOT and kind in _NEUTRAL_KINDS
    promo = _promotion(msg.text, reading, profile, prompt=own_prompt)
    pending: tuple[ServiceCode, ...] = ()
    if undecided:
        pending = (
            facts.pending
            if facts.pending is not None
            else tuple(s for s in facts.requested if s not in facts.served)
        )
    second = ""
    if not own_neutral and (not promo or pending and reading.first(*_BLOCKING)):
        # The bot's own neutral texts talk about the request in general words; other neutral
        # messages may name what the client asked for; replies only what is served.
        neutral_scope = tuple(dict.fromkeys((*facts.served, *facts.requested)))
        if kind in _NEUTRAL_KINDS:
            allowed = neutral_scope
        else:
            allowed = facts.served
        found = _scope(msg.text, profile, allowed, pending, facts.pending_products)
        if found.pending and promo:
            # An answer on what the client asked names its yield or its offer ("Earn 4 %"):
            # that is for the officer to judge; invitations, nudges and channels never are.
            pitch = reading.first("promotion")
            promo = _promotion(msg.text, reading, profile, concepts=_BLOCKING[1:])
            if not promo:
                second = f"{found.pending}, with promotional wording ({pitch!r})"
        if not promo and not second:
            promo, second = found.other, found.pending
    judged = MessageKind.UPSELL if promo and kind not in PROMOTIONAL_KINDS else kind

    def result(verdict: Verdict, reason: str, *rules: str) -> GateResult:
        return GateResult(verdict, reason, rules or ("R6",), judged)

    if facts.restricted:
        if kind is MessageKind.TRANSACTIONAL and not promo:
            return result(Verdict.ALLOWED, "transactional message to a restricted client")
        return result(Verdict.BLOCKED, "client asked for erasure: processing is restricted")
    if kind in _NEUTRAL_KINDS and not promo:
        if own_prompt:
            return result(Verdict.ALLOWED, "the bot's own intake question")
        if second:
            return result(Verdict.HELD, f"held until an officer decides: {second}", "R5")
        what = _recognised(kind, reading)
        if what or own_neutral and kind is not MessageKind.TRANSACTIONAL:
            return result(Verdict.ALLOWED, f"neutral {kind.value} message ({what or 'the bot'})")
        return result(Verdict.HELD, f"not recognised as a {kind.value} message: held for a person")
    if declined:
        why = promo or f"{kind.value} to a declined client"
        return result(Verdict.BLOCKED, f"client was declined, only neutral messages: {why}", "R3")
    if not decided:
        why = promo or f"{kind.value} message"
        return result(Verdict.HELD, f"held until an officer decides: {why}")
    if facts.zone is Zone.OUTSIDE:
        # Handed off, with a further request still undecided (a non-MiCA product): what may be
        # sent waits for the officer's decision on it; nothing is refused for good (R8).
        why = promo or second or f"{kind.value} message"
        return result(Verdict.HELD, f"held until an officer decides: {why}", "R8")
    if promo:
        return result(Verdict.BLOCKED, f"promotion to an EU/EEA client: {promo}", "R5", "R6")
    if kind in PROMOTIONAL_KINDS:
        return result(Verdict.BLOCKED, f"{kind.value} to an EU/EEA client is proactive", "R6")
    if second:
        return result(Verdict.HELD, f"held until an officer decides: {second}", "R5")
    if not in_scope:
        return result(Verdict.HELD, "the client's residence is not settled")
    # A reply: allowed only as an answer to the client's own recent message.
    if not msg.reply:
        return result(Verdict.BLOCKED, "not an answer to a client message: proactive")
    last = facts.last_client_message_at
    window = timedelta(hours=profile.reply_window_hours)
    if last is None or msg.at - last > window:
        hours = profile.reply_window_hours
        return result(Verdict.BLOCKED, f"no client message in the last {hours} h to reply to")
    what = _recognised(kind, reading)
    if not what:
        return result(Verdict.HELD, "not recognised as a reply on the service: held for a person")
    why = f"reply to the client's own question on the service ({what})"
    return result(Verdict.ALLOWED, why, "R5")
