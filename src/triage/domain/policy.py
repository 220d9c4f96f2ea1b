"""The facts of one inquiry -> an outcome, the rules that decided it, and reasons people read.

The rule ids are those of DOMAIN.md (R1..R10). The policy fails closed: unknown residence, an
unclear source, a hedged answer, a conflict, a product outside MiCA or a second service go to a
compliance officer (ESCALATE); a confirmed solicitation of an EU/EEA client is a DECLINE; only a
documented exclusive initiative for a MiCA service the firm offers is served, and only that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from triage.domain.codes import (
    IN_SCOPE,
    MICA_SERVICES,
    Channel,
    MarketingKind,
    Outcome,
    ServiceCode,
    Zone,
    region_covers,
    zone_of_code,
)
from triage.domain.profile import CompanyProfile, MarketingEntry
from triage.domain.services import ServiceFinding
from triage.domain.sources import SourceFinding, SourceSignal
from triage.domain.territory import ResidenceFinding

#: Bumped whenever a rule changes meaning; recorded with every decision.
RULESET_VERSION = "2026.11.25-2"

#: Below this a source signal is treated as unclear rather than as a fact.
CONFIDENT = 0.6


@dataclass(frozen=True)
class CrmContact:
    """A firm-side contact with this person, logged in the firm's CRM before the inquiry."""

    channel: str
    day: date
    note: str = ""


@dataclass(frozen=True)
class InquiryFacts:
    """Everything the bot knows about one inquiry when it decides."""

    today: date
    residence: ResidenceFinding | None = None
    source: SourceFinding | None = None
    service: ServiceFinding | None = None
    #: (code as written, register entry id) from the /start parameter and every message.
    referral_codes: tuple[tuple[str, str], ...] = ()
    crm: tuple[CrmContact, ...] = ()
    #: The client's answer to "has anyone from the firm contacted you": True, False or unknown.
    prior_contact: bool | None = None
    #: The client hedged that answer ("maybe", "I think so").
    prior_contact_unsure: bool = False
    #: The client's answer to "did you use a link or code": True, False or unknown.
    used_link_or_code: bool | None = None
    #: Slots the client could not or would not answer, even when asked again.
    unresolved: tuple[str, ...] = ()
    #: This inquiry asks for a further service after an earlier one (Art. 61(2)).
    further_service: bool = False
    #: The client writes in a language the bot does not read (ISO 639-1), or None.
    foreign_language: str | None = None
    #: Why the residence needs a person because it changed after the first decision, or "".
    residence_changed: str = ""
    #: Location signals found in answers other than the residence one ("vpn").
    other_location_signals: tuple[str, ...] = ()
    #: Countries the client names in their account of how they found the firm ("your ad in
    #: the Paris metro"): where the solicitation may have reached them.
    source_places: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decision:
    """The outcome of an inquiry with its rule ids and reasons."""

    outcome: Outcome
    rules: tuple[str, ...]
    reasons: tuple[str, ...]
    ruleset: str = RULESET_VERSION
    country: str | None = None
    service: ServiceCode | None = None


@dataclass
class _Tally:
    rules: list[str] = field(default_factory=list)
    decline: list[str] = field(default_factory=list)
    escalate: list[str] = field(default_factory=list)
    support: list[str] = field(default_factory=list)

    def rule(self, *ids: str) -> None:
        for rid in ids:
            if rid not in self.rules:
                self.rules.append(rid)


def _months_before(day: date, months: int) -> date:
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    month += 1
    for dom in (day.day, 30, 29, 28):
        try:
            return date(year, month, dom)
        except ValueError:
            continue
    return date(year, month, 28)


def _entry_recent(entry: MarketingEntry, today: date, lookback_months: int) -> bool:
    """Whether a register entry ran within the look-back window (R7)."""
    horizon = _months_before(today, lookback_months)
    if entry.start is not None and entry.start > today:
        return False
    return entry.end is None or entry.end >= horizon


#: Register channels that are search engines: their ads sit beside the organic results.
_SEARCH_CHANNELS = frozenset(
    "google bing yahoo duckduckgo ecosia baidu yandex naver brave qwant startpage search".split()
)


def _search_ads_reaching(
    profile: CompanyProfile, today: date, country: str | None
) -> list[MarketingEntry]:
    """Paid search ads of the register that ran recently where the client lives."""
    out = []
    for entry in profile.marketing:
        if entry.kind is not MarketingKind.AD:
            continue
        channel = (entry.channel or "").lower()
        named = " ".join(entry.names).lower()
        if channel not in _SEARCH_CHANNELS and "search" not in named:
            continue
        if not _entry_recent(entry, today, profile.lookback_months):
            continue
        if region_covers(entry.regions, country) and not region_covers(entry.excluded, country):
            out.append(entry)
    return out


def _judge_register_signal(
    sig: SourceSignal,
    entry: MarketingEntry,
    facts: InquiryFacts,
    profile: CompanyProfile,
    country: str | None,
    t: _Tally,
) -> None:
    label = f"register entry '{entry.id}' ({entry.kind.value}"
    label += f", {entry.channel})" if entry.channel else ")"
    if entry.kind is MarketingKind.PRESS:
        t.rule("R3", "R7")
        t.escalate.append(f"client names press coverage ({label}); independent press or not?")
        return
    if entry.kind is MarketingKind.SEO:
        if region_covers(entry.regions, country) and not region_covers(entry.excluded, country):
            t.rule("R3")
            t.escalate.append(f"search result may come from EU-aimed SEO ({label})")
        return
    linked = facts.source is not None and "linked" in facts.source.flags
    if entry.start is not None and entry.start > facts.today:
        t.rule("R3", "R7")
        t.escalate.append(f"client names {label}, which the register dates after today")
        return
    if not _entry_recent(entry, facts.today, profile.lookback_months):
        t.rule("R3", "R7")
        if linked:
            t.decline.append(
                f"client ties the request to {label}, although it ended more than "
                f"{profile.lookback_months} months ago (R7)"
            )
        else:
            t.escalate.append(
                f"client names {label}, which ended more than {profile.lookback_months} "
                "months ago (old campaign)"
            )
        return
    if entry.kind in (MarketingKind.EVENT, MarketingKind.MEETUP, MarketingKind.SPONSORSHIP):
        where = entry.location
        if where is not None and zone_of_code(where) not in IN_SCOPE:
            t.rule("R3", "R7")
            t.escalate.append(
                f"client met the firm at an event outside the EU/EEA ({label}, in {where})"
            )
            return
    t.rule("R3", "R7")
    note = ""
    if entry.excluded and region_covers(entry.excluded, country):
        note = "; the register says it excluded this region, but the client's words prevail (R4)"
    t.decline.append(f"client came through the firm's own marketing: {label}{note}")


def _judge_sources(
    facts: InquiryFacts, profile: CompanyProfile, country: str | None, t: _Tally
) -> None:
    src = facts.source
    for code, entry_id in facts.referral_codes:
        t.rule("R3")
        entry = profile.entry(entry_id)
        paid = " (paid)" if entry is not None and entry.paid else ""
        t.decline.append(f"referral code {code} of register entry '{entry_id}'{paid}")
    for contact in facts.crm:
        t.rule("R3", "R7")
        horizon = _months_before(facts.today, profile.lookback_months)
        what = f"logged firm-side contact ({contact.channel}, {contact.day.isoformat()})"
        if contact.day >= horizon:
            t.decline.append(f"{what} within the last {profile.lookback_months} months")
        else:
            t.escalate.append(f"{what}, older than {profile.lookback_months} months")
    if facts.prior_contact_unsure and facts.prior_contact is not True:
        t.rule("R3")
        t.escalate.append("client is unsure whether someone from the firm contacted them")
    if facts.prior_contact is True:
        t.rule("R3")
        t.decline.append("client says someone from the firm or acting for it contacted them")
    if src is None:
        return
    from_signals = len(t.decline)
    for sig in src.signals:
        if sig.negated:
            continue
        unclear = sig.hedged or sig.confidence < CONFIDENT
        entry = profile.entry(sig.entry_id) if sig.entry_id else None
        if sig.channel is Channel.CLOSE_LINK:
            t.rule("R3", "R10")
            target = t.escalate if unclear else t.decline
            target.append(f"client names a closely linked entity ({sig.matched!r})")
        elif sig.channel is Channel.FIRM_CONTACT:
            t.rule("R3", "R7")
            target = t.escalate if unclear else t.decline
            target.append(f"client says the firm contacted them ({sig.matched!r})")
        elif sig.channel is Channel.PRESS:
            t.rule("R3")
            t.escalate.append(f"client names press coverage ({sig.matched!r})")
        elif sig.channel in (
            Channel.AD,
            Channel.INFLUENCER,
            Channel.REFERRAL,
            Channel.EVENT,
            Channel.SOCIAL,
        ):
            t.rule("R3")
            if unclear:
                t.escalate.append(
                    f"client is unsure whether it was {sig.channel.value} ({sig.matched!r})"
                )
            elif entry is not None:
                _judge_register_signal(sig, entry, facts, profile, country, t)
            elif sig.channel is Channel.SOCIAL:
                t.decline.append(f"client names the firm's own channel ({sig.matched!r})")
            elif sig.channel is Channel.EVENT and sig.firm_present:
                # "Your stand", "your talk": the firm itself was there (R3), register or not;
                # met abroad, an EU resident's case is open (DOMAIN.md 8.4).
                places = facts.source_places
                if places and all(zone_of_code(c) not in IN_SCOPE for c in places):
                    t.escalate.append(
                        f"client met the firm at an event outside the EU/EEA ({sig.matched!r}, "
                        f"in {places[0]}); it is not in the firm's register"
                    )
                else:
                    t.decline.append(
                        f"client met the firm's own presence at an event ({sig.matched!r}); "
                        "it is not in the firm's register"
                    )
            elif sig.channel is Channel.AD:
                # Any ad is solicitation (DOMAIN.md 4); one missing from the register also
                # means the register needs a look, which the decline notice carries.
                t.decline.append(
                    f"client saw an advertisement for the firm ({sig.matched!r}); "
                    "it is not in the firm's register"
                )
            else:
                t.escalate.append(
                    f"{sig.channel.value} not in the firm's register ({sig.matched!r}); "
                    "who was behind it?"
                )
        elif sig.channel is Channel.ORGANIC_SEARCH and entry is not None:
            _judge_register_signal(sig, entry, facts, profile, country, t)
        elif sig.channel in (Channel.ORGANIC_SEARCH, Channel.OWN_RESEARCH, Channel.WORD_OF_MOUTH):
            if not unclear:
                t.support.append(f"{sig.channel.value.replace('_', ' ')} ({sig.matched!r})")
    _solicited_abroad(facts, profile, t, from_signals)
    searched = [
        s
        for s in src.signals
        if s.channel is Channel.ORGANIC_SEARCH and not s.negated and s.entry_id is None
    ]
    others = [
        s
        for s in src.signals
        if s.channel in (Channel.OWN_RESEARCH, Channel.WORD_OF_MOUTH) and not s.negated
    ]
    # An ad the client took back in a correction is not an ad they denied.
    ad_denied = any(s.channel is Channel.AD and s.negated and not s.corrected for s in src.signals)
    if searched and not others and not ad_denied and "organic_result" not in src.flags:
        for entry in _search_ads_reaching(profile, facts.today, country):
            t.rule("R3", "R7")
            t.escalate.append(
                f"the firm's paid search ads ('{entry.id}') reach this client: search result "
                "or ad?"
            )
            break
    if "returning_client" in src.flags:
        # A former client: how the first relationship began, and whether the old one covers
        # this request, is for a person (DOMAIN.md 4, 8.8).
        t.rule("R2", "R7")
        t.escalate.append("a returning client: the earlier relationship needs a person's look")
    if "self_certification" in src.flags:
        t.rule("R4")
        if t.decline or t.escalate:
            # DOMAIN.md 6: a self-certification beside any solicitation signal always goes to
            # the compliance officer (the letter proves nothing, R4; the officer decides).
            t.escalate.append("a self-certification of initiative next to solicitation signals")
            supplied = any(
                s.channel is Channel.FIRM_CONTACT and not s.negated for s in src.signals
            )
            if not supplied:
                # A letter the firm's own people supplied is itself solicitation (DOMAIN.md 4).
                t.escalate.extend(t.decline)
                t.decline.clear()
    if not t.support and not t.decline and not t.escalate:
        t.rule("R2")
        if src.channel is Channel.UNKNOWN or src.confidence < CONFIDENT:
            t.escalate.append("how the client found the firm is unclear")
    if facts.used_link_or_code is True and not facts.referral_codes:
        t.rule("R3")
        t.escalate.append("client used a link or code that was not identified")


#: Signals that are someone's marketing when they concern the firm.
_SOLICITING_SIGNALS = frozenset(
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


def _solicited_abroad(facts: InquiryFacts, profile: CompanyProfile, t: _Tally, first: int) -> None:
    """An EU/EEA resident whose account places the solicitation outside the EU/EEA ("your ad
    on Instagram, when I was in Brazil"): whether that counts is open (DOMAIN.md 8.4), so the
    declines the client's words gave (from index `first`) go to a person instead."""
    places = facts.source_places
    if not places or any(zone_of_code(c) in IN_SCOPE for c in places):
        return
    src = facts.source
    entries = [profile.entry(s.entry_id) for s in src.signals if s.entry_id] if src else []
    if any(e is not None and e.location and zone_of_code(e.location) in IN_SCOPE for e in entries):
        return
    moved = t.decline[first:]
    if not moved:
        return
    del t.decline[first:]
    t.rule("R1")
    t.escalate.extend(
        f"{why}; it reached the client outside the EU/EEA ({places[0]}): an EU/EEA resident "
        "solicited abroad is for a person (R1)"
        for why in moved
    )


def _situated_in_union(facts: InquiryFacts, profile: CompanyProfile) -> str:
    """Why solicitation may have reached a non-EU resident while situated in the EU/EEA
    (R1: "established or situated in the Union"; DOMAIN.md 8.4 leaves it to a person), or ""."""
    src = facts.source
    if src is None:
        return ""
    for sig in src.signals:
        if sig.negated or sig.channel not in _SOLICITING_SIGNALS:
            continue
        entry = profile.entry(sig.entry_id) if sig.entry_id else None
        where = entry.location if entry is not None else None
        if where is not None and zone_of_code(where) in IN_SCOPE:
            return (
                f"the firm's marketing reached the client in the EU/EEA ('{entry.id}' in "  # type: ignore[union-attr]
                f"{where}): a non-EU resident situated in the Union (R1)"
            )
        inside = [c for c in facts.source_places if zone_of_code(c) in IN_SCOPE]
        if inside:
            return (
                f"the client met {sig.channel.value.replace('_', ' ')} ({sig.matched!r}) while in "
                f"{inside[0]}: a non-EU resident situated in the Union (R1)"
            )
    return ""


def _judge_service(facts: InquiryFacts, profile: CompanyProfile, t: _Tally) -> None:
    svc = facts.service
    if svc is None or svc.code is None:
        t.rule("R5")
        t.escalate.append("the service the client wants is unclear")
        return
    if svc.code is ServiceCode.NON_MICA or svc.code not in MICA_SERVICES:
        t.rule("R9")
        what = f"'{svc.product}'" if svc.product else "the request"
        t.escalate.append(f"{what} is outside MiCA's crypto-asset services (R9)")
        return
    if svc.code not in profile.services:
        t.rule("R5")
        t.escalate.append(f"{svc.code.value} is not a service the firm offers")
    if facts.further_service:
        t.rule("R5")
        t.escalate.append(
            f"a further service ({svc.code.value}) after an earlier request (Art. 61(2))"
        )
    if "stablecoin" in svc.flags:
        t.rule("R5")
        t.escalate.append("stablecoin or e-money token involved")
    if "no_kyc" in svc.flags:
        t.escalate.append("AML red flag: the client asks to avoid identity checks")
    if svc.confidence < CONFIDENT:
        t.rule("R5")
        t.escalate.append("the service was recognised with low confidence")


def decide(facts: InquiryFacts, profile: CompanyProfile) -> Decision:
    """Decide one inquiry. Pure: the date comes in with the facts."""
    res = facts.residence
    zone = res.zone if res is not None else Zone.UNKNOWN
    country = res.code if res is not None else None
    service = facts.service.code if facts.service is not None else None
    t = _Tally()
    t.rule("R1")

    def done(outcome: Outcome, reasons: list[str]) -> Decision:
        return Decision(outcome, tuple(t.rules), tuple(reasons), country=country, service=service)

    if facts.service is not None and "no_kyc" in facts.service.flags:
        t.escalate.append("AML red flag: the client asks to avoid identity checks")
    if facts.foreign_language:
        t.escalate.append(
            f"the client writes in a language the bot does not read ({facts.foreign_language})"
            ": a person reads the answers"
        )
    if "vpn" in facts.other_location_signals:
        # DOMAIN.md 6: VPN hints go to a person, in whichever answer the client gives them.
        t.escalate.append("the client mentions a VPN or proxy: where they are needs a person")

    if zone is Zone.OUTSIDE:
        situated = _situated_in_union(facts, profile)
        if situated:
            t.rule("R1", "R3")
            t.escalate.append(situated)
        if facts.service is not None and facts.service.code is ServiceCode.NON_MICA:
            # DOMAIN.md 3 and 6: anything outside MiCA is escalated, wherever the client lives
            # (derivatives fall under other regimes the bot does not judge).
            t.rule("R9")
            what = f"'{facts.service.product}'" if facts.service.product else "the request"
            t.escalate.append(f"{what} is outside MiCA's crypto-asset services (R9)")
        if facts.residence_changed:
            t.escalate.append(facts.residence_changed)
        t.rule("R8")
        reasons = [
            f"client lives or is established outside the EU/EEA ({res.place if res else '?'})"
        ]
        if t.escalate:
            return done(Outcome.ESCALATE, t.escalate + reasons)
        return done(Outcome.HANDOFF_NON_EU, reasons)

    if zone is Zone.HUMAN:
        t.escalate.append(f"residence needs a person: {res.place if res else 'edge territory'}")
    elif zone is Zone.UNKNOWN:
        why = ", ".join(res.signals) if res is not None and res.signals else "not stated"
        t.escalate.append(f"residence unknown or contradictory ({why})")
    elif res is not None and {"vpn", "travel", "dual_residence", "company_vehicle"} & set(
        res.signals
    ):
        t.escalate.append(f"location signals need a person ({', '.join(res.signals)})")
    for slot in facts.unresolved:
        t.escalate.append(f"the client could not answer: {slot}")
    if facts.residence_changed:
        t.escalate.append(facts.residence_changed)

    _judge_sources(facts, profile, country, t)
    in_scope = zone in IN_SCOPE
    if in_scope and t.decline:
        return done(Outcome.DECLINE, t.decline + t.escalate)
    if in_scope or zone in (Zone.UNKNOWN, Zone.HUMAN):
        _judge_service(facts, profile, t)
    if t.escalate:
        return done(Outcome.ESCALATE, t.escalate + t.decline)
    t.rule("R2", "R5")
    reasons = [f"client lives in the EU/EEA ({res.place if res else '?'})"]
    reasons += [f"exclusive initiative: {s}" for s in t.support]
    reasons.append(f"serve only the requested service ({service.value if service else '?'})")
    return done(Outcome.SERVE_EU_RESTRICTED, reasons)
