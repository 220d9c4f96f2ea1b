"""The closed vocabularies of the domain: outcomes, services, channels, verdicts, territories."""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    """The four outcomes of an inquiry (DESIGN.md)."""

    HANDOFF_NON_EU = "HANDOFF_NON_EU"
    SERVE_EU_RESTRICTED = "SERVE_EU_RESTRICTED"
    DECLINE = "DECLINE"
    ESCALATE = "ESCALATE"


PROCEED = frozenset({Outcome.HANDOFF_NON_EU, Outcome.SERVE_EU_RESTRICTED})


class ServiceCode(StrEnum):
    """MiCA Art. 3(1)(16) crypto-asset services (DOMAIN.md section 3), plus NON_MICA."""

    CUSTODY = "CUSTODY"
    PLATFORM = "PLATFORM"
    EXCH_FIAT = "EXCH_FIAT"
    EXCH_CRYPTO = "EXCH_CRYPTO"
    EXECUTION = "EXECUTION"
    PLACING = "PLACING"
    RTO = "RTO"
    ADVICE = "ADVICE"
    PORTFOLIO = "PORTFOLIO"
    TRANSFER = "TRANSFER"
    NON_MICA = "NON_MICA"


MICA_SERVICES = frozenset(s for s in ServiceCode if s is not ServiceCode.NON_MICA)


class Channel(StrEnum):
    """How a client found the firm."""

    ORGANIC_SEARCH = "organic_search"
    OWN_RESEARCH = "own_research"
    WORD_OF_MOUTH = "word_of_mouth"
    AD = "ad"
    INFLUENCER = "influencer"
    REFERRAL = "referral"
    EVENT = "event"
    SOCIAL = "social"
    PRESS = "press"
    FIRM_CONTACT = "firm_contact"
    CLOSE_LINK = "close_link"
    UNKNOWN = "unknown"


#: Channels that are solicitation by the firm or someone acting for it when they concern it.
SOLICITING = frozenset(
    {
        Channel.AD,
        Channel.INFLUENCER,
        Channel.REFERRAL,
        Channel.EVENT,
        Channel.SOCIAL,
        Channel.FIRM_CONTACT,
        Channel.CLOSE_LINK,
    }
)

#: Channels that support a genuine exclusive initiative.
GENUINE = frozenset({Channel.ORGANIC_SEARCH, Channel.OWN_RESEARCH, Channel.WORD_OF_MOUTH})


class MarketingKind(StrEnum):
    """Kinds of entry in the firm's register of marketing activities."""

    AD = "ad"
    SOCIAL = "social"
    INFLUENCER = "influencer"
    EVENT = "event"
    SPONSORSHIP = "sponsorship"
    REFERRAL = "referral"
    EMAIL = "email"
    PRESS = "press"
    SEO = "seo"
    MEETUP = "meetup"
    EMPLOYEE = "employee"


MARKETING_CHANNEL: dict[MarketingKind, Channel] = {
    MarketingKind.AD: Channel.AD,
    MarketingKind.SOCIAL: Channel.SOCIAL,
    MarketingKind.INFLUENCER: Channel.INFLUENCER,
    MarketingKind.EVENT: Channel.EVENT,
    MarketingKind.SPONSORSHIP: Channel.EVENT,
    MarketingKind.REFERRAL: Channel.REFERRAL,
    MarketingKind.EMAIL: Channel.FIRM_CONTACT,
    MarketingKind.PRESS: Channel.PRESS,
    MarketingKind.SEO: Channel.ORGANIC_SEARCH,
    MarketingKind.MEETUP: Channel.EVENT,
    MarketingKind.EMPLOYEE: Channel.FIRM_CONTACT,
}


class Zone(StrEnum):
    """Where a place stands under MiCA."""

    EU = "EU"  # EU-27, including outermost regions, Aland, Ceuta, Melilla
    EEA = "EEA"  # Iceland, Liechtenstein, Norway: treated like EU states (R1)
    OUTSIDE = "OUTSIDE"  # neither EU nor EEA (includes the OCTs)
    HUMAN = "HUMAN"  # a place the rules send to a person (Northern Cyprus, SBA, Svalbard)
    UNKNOWN = "UNKNOWN"


IN_SCOPE = frozenset({Zone.EU, Zone.EEA})

EU27 = frozenset(
    "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE".split()
)
EEA_ONLY = frozenset({"IS", "LI", "NO"})
#: ISO 3166-1 codes of territories that are part of the EU: French outermost regions and Aland.
EU_TERRITORY_CODES = frozenset({"GP", "GF", "MQ", "YT", "RE", "MF", "AX"})
#: Codes (not ISO 3166-1) for places DOMAIN.md section 7 sends to a person.
HUMAN_CODES = frozenset({"XN-CY", "XS-SBA", "XS-SJ"})


def zone_of_code(code: str | None) -> Zone:
    """The zone of an ISO 3166-1 alpha-2 code (or one of HUMAN_CODES)."""
    if not code:
        return Zone.UNKNOWN
    code = code.upper()
    if code in EU27 or code in EU_TERRITORY_CODES:
        return Zone.EU
    if code in EEA_ONLY:
        return Zone.EEA
    if code in HUMAN_CODES or code == "SJ":
        return Zone.HUMAN
    return Zone.OUTSIDE


def region_covers(regions: tuple[str, ...] | list[str], country: str | None) -> bool:
    """Whether a register region list (ISO codes, EU, EEA, WORLD) covers a country code.

    An unknown country is covered by any non-empty list: fail closed.
    """
    if not regions:
        return False
    if country is None:
        return True
    zone = zone_of_code(country)
    for region in regions:
        r = region.upper()
        if r == "WORLD" or r == country.upper():
            return True
        if r == "EU" and zone is Zone.EU:
            return True
        if r == "EEA" and zone in IN_SCOPE:
            return True
    return False


class Verdict(StrEnum):
    """The outbound gate's verdict on one message."""

    ALLOWED = "allowed"
    BLOCKED = "blocked"
    HELD = "held"


class MessageKind(StrEnum):
    """What a sender declares an outbound message to be."""

    REPLY = "reply"
    FOLLOW_UP = "follow_up"
    UPSELL = "upsell"
    NEWSLETTER = "newsletter"
    INVITE = "invite"
    BONUS = "bonus"
    DECLINE = "decline"
    HOLDING = "holding"
    TRANSACTIONAL = "transactional"
    PROMPT = "prompt"  # a question of the intake flow


PROMOTIONAL_KINDS = frozenset(
    {
        MessageKind.FOLLOW_UP,
        MessageKind.UPSELL,
        MessageKind.NEWSLETTER,
        MessageKind.INVITE,
        MessageKind.BONUS,
    }
)


class Sender(StrEnum):
    """Who wants to send a message to a client."""

    BOT = "bot"
    SALES = "sales"
    SCHEDULER = "scheduler"
    COMPLIANCE = "compliance"
