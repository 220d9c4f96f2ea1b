"""The policy: facts of an inquiry -> outcome with rule ids; fails closed."""

from __future__ import annotations

from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from triage.domain.codes import PROCEED, Outcome, ServiceCode, Zone
from triage.domain.policy import CrmContact, InquiryFacts, decide
from triage.domain.profile import CompanyProfile
from triage.domain.services import classify_service
from triage.domain.sources import classify_source
from triage.domain.territory import Gazetteer, ResidenceFinding, classify_residence

TODAY = date(2026, 11, 25)


def facts(
    profile: CompanyProfile,
    gazetteer: Gazetteer,
    *,
    source: str,
    residence: str,
    service: str,
    **extra: object,
) -> InquiryFacts:
    return InquiryFacts(
        today=TODAY,
        residence=classify_residence(residence, gazetteer),
        source=classify_source(source, profile),
        service=classify_service(service, profile),
        **extra,  # type: ignore[arg-type]
    )


def outcome(profile: CompanyProfile, gazetteer: Gazetteer, **kw: object) -> Outcome:
    return decide(facts(profile, gazetteer, **kw), profile).outcome  # type: ignore[arg-type]


def test_organic_eu_client_is_served_restricted(profile, gazetteer) -> None:  # type: ignore[no-untyped-def]
    d = decide(
        facts(
            profile,
            gazetteer,
            source="I searched for Northwind on Google",
            residence="Lisbon",
            service="custody",
        ),
        profile,
    )
    assert d.outcome is Outcome.SERVE_EU_RESTRICTED
    assert {"R1", "R2", "R5"} <= set(d.rules)
    assert d.country == "PT" and d.service is ServiceCode.CUSTODY
    assert d.reasons and d.ruleset


def test_non_eu_client_is_handed_off_even_after_an_ad(profile, gazetteer) -> None:  # type: ignore[no-untyped-def]
    d = decide(
        facts(profile, gazetteer, source="telegram ad", residence="Tokyo", service="buy BTC"),
        profile,
    )
    assert d.outcome is Outcome.HANDOFF_NON_EU
    assert "R8" in d.rules


def test_paid_influencer_declines_any_eu_client(profile, gazetteer) -> None:  # type: ignore[no-untyped-def]
    assert (
        outcome(
            profile,
            gazetteer,
            source="Crypto Clara recommended you",
            residence="Hamburg",
            service="buy BTC",
        )
        is Outcome.DECLINE
    )


def test_event_outside_the_eu_escalates(profile, gazetteer) -> None:  # type: ignore[no-untyped-def]
    assert (
        outcome(
            profile,
            gazetteer,
            source="I met you at the Singapore FinTech Festival",
            residence="Brussels",
            service="custody",
        )
        is Outcome.ESCALATE
    )


def test_recent_crm_contact_declines_old_one_escalates(profile, gazetteer) -> None:  # type: ignore[no-untyped-def]
    recent = (CrmContact("email", date(2026, 5, 1), "cold email"),)
    old = (CrmContact("email", date(2024, 5, 1), "cold email"),)
    kw = dict(source="I googled your name", residence="Milan", service="custody")
    assert outcome(profile, gazetteer, crm=recent, **kw) is Outcome.DECLINE
    assert outcome(profile, gazetteer, crm=old, **kw) is Outcome.ESCALATE


def test_old_campaign_escalates(profile, gazetteer) -> None:  # type: ignore[no-untyped-def]
    # The Telegram ads ran June-September 2026; two years later they are an "old campaign".
    f = facts(
        profile, gazetteer, source="saw your Telegram ad", residence="Madrid", service="custody"
    )
    later = InquiryFacts(**{**f.__dict__, "today": date(2028, 6, 1)})
    assert decide(later, profile).outcome is Outcome.ESCALATE


def test_non_mica_and_further_service_escalate(profile, gazetteer) -> None:  # type: ignore[no-untyped-def]
    kw = dict(source="I googled your name", residence="Milan")
    assert outcome(profile, gazetteer, service="staking", **kw) is Outcome.ESCALATE
    assert (
        outcome(profile, gazetteer, service="custody", further_service=True, **kw)
        is Outcome.ESCALATE
    )


def test_unresolved_slot_escalates(profile, gazetteer) -> None:  # type: ignore[no-untyped-def]
    assert (
        outcome(
            profile,
            gazetteer,
            source="I googled your name",
            residence="Milan",
            service="custody",
            unresolved=("source",),
        )
        is Outcome.ESCALATE
    )


def test_self_certification_is_no_proof(profile, gazetteer) -> None:  # type: ignore[no-untyped-def]
    d = decide(
        facts(
            profile,
            gazetteer,
            source="I came on my own initiative. I saw your Telegram ad.",
            residence="Paris",
            service="custody",
        ),
        profile,
    )
    # The letter proves nothing (R4) and, beside a solicitation signal, the case always goes
    # to the compliance officer (DOMAIN.md 6), with the decline's reason in front of them.
    assert d.outcome is Outcome.ESCALATE
    assert "R4" in d.rules and any("Telegram" in r or "tg-ads" in r for r in d.reasons)


def _residence(zone: Zone, signals: tuple[str, ...] = ()) -> ResidenceFinding:
    return ResidenceFinding(
        code=None,
        zone=zone,
        confidence=0.0,
        place=None,
        signals=signals,
        reasons=(),
        candidates=(),
    )


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from([Zone.UNKNOWN, Zone.HUMAN]),
    source=st.text(max_size=80),
    service=st.text(max_size=80),
)
def test_property_unknown_residence_never_proceeds(
    zone: Zone, source: str, service: str, profile: CompanyProfile
) -> None:
    f = InquiryFacts(
        today=TODAY,
        residence=_residence(zone),
        source=classify_source(source, profile),
        service=classify_service(service, profile),
    )
    assert decide(f, profile).outcome not in PROCEED


@settings(max_examples=200, deadline=None)
@given(source=st.text(max_size=80), service=st.text(max_size=80))
def test_property_eu_client_never_handed_off(
    source: str, service: str, profile: CompanyProfile
) -> None:
    f = InquiryFacts(
        today=TODAY,
        residence=ResidenceFinding(
            code="DE",
            zone=Zone.EU,
            confidence=1.0,
            place="Germany",
            signals=(),
            reasons=(),
            candidates=("DE",),
        ),
        source=classify_source(source, profile),
        service=classify_service(service, profile),
    )
    assert decide(f, profile).outcome is not Outcome.HANDOFF_NON_EU


# --- rules added with the scenario suite (tests/scenarios) ---------------------------------


def _profile_with(profile: CompanyProfile, **changes: object) -> CompanyProfile:
    data = profile.model_dump(mode="python")
    data.update(changes)
    return CompanyProfile.model_validate(data)


def test_any_ad_declines_even_when_not_in_the_register(profile, gazetteer) -> None:  # type: ignore[no-untyped-def]
    d = decide(
        facts(
            profile,
            gazetteer,
            source="a banner ad on CoinMarketCap",
            residence="Turin",
            service="buy BTC",
        ),
        profile,
    )
    assert d.outcome is Outcome.DECLINE and "R3" in d.rules


def test_an_unregistered_influencer_or_event_escalates(profile, gazetteer) -> None:  # type: ignore[no-untyped-def]
    kw = dict(residence="Madrid", service="custody")
    assert outcome(profile, gazetteer, source="a youtuber, CriptoPaco", **kw) is Outcome.ESCALATE
    assert outcome(profile, gazetteer, source="a crypto fair in Paris", **kw) is (Outcome.ESCALATE)


def test_the_firms_own_presence_at_an_event_declines(profile, gazetteer) -> None:  # type: ignore[no-untyped-def]
    """'Your booth', 'your stand': the firm itself was there (R3; DOMAIN.md 4, booths in the
    EU), register or not; met outside the EU/EEA, an EU resident's case goes to a person (8.4)."""
    kw = dict(residence="Madrid", service="custody")
    for source in ("your booth at a Paris fair", "vi vuestro stand en la feria de Lisboa"):
        assert outcome(profile, gazetteer, source=source, **kw) is Outcome.DECLINE, source
    abroad = outcome(
        profile, gazetteer, source="your booth at a fair in Dubai", source_places=("AE",), **kw
    )
    assert abroad is Outcome.ESCALATE


def test_search_ads_reaching_the_client_make_google_unclear(profile, gazetteer) -> None:  # type: ignore[no-untyped-def]
    ads = [e.model_dump(mode="python") for e in profile.marketing]
    for e in ads:
        if e["id"] == "search-ads":
            e["regions"], e["excluded"] = ["WORLD"], []
    world = _profile_with(profile, marketing=ads)
    kw = dict(residence="Hamburg", service="custody")
    assert outcome(world, gazetteer, source="found you on google", **kw) is Outcome.ESCALATE
    assert outcome(profile, gazetteer, source="found you on google", **kw) is (
        Outcome.SERVE_EU_RESTRICTED
    )
    # The client says it was the organic result, or a friend told them first: no doubt left.
    assert outcome(world, gazetteer, source="google, the normal result, not the ad", **kw) is (
        Outcome.SERVE_EU_RESTRICTED
    )
    assert outcome(world, gazetteer, source="a friend told me, then I googled", **kw) is (
        Outcome.SERVE_EU_RESTRICTED
    )


def test_old_campaign_declines_when_the_client_links_it(profile, gazetteer) -> None:  # type: ignore[no-untyped-def]
    later = date(2028, 6, 1)
    kw = dict(residence="Madrid", service="custody")
    linked = facts(profile, gazetteer, source="your Telegram ad, that's why I'm here", **kw)
    plain = facts(profile, gazetteer, source="I once saw your Telegram ad", **kw)
    assert decide(InquiryFacts(**{**linked.__dict__, "today": later}), profile).outcome is (
        Outcome.DECLINE
    )
    assert decide(InquiryFacts(**{**plain.__dict__, "today": later}), profile).outcome is (
        Outcome.ESCALATE
    )


def test_campaign_dated_in_the_future_escalates(profile, gazetteer) -> None:  # type: ignore[no-untyped-def]
    f = facts(
        profile, gazetteer, source="saw your Telegram ad", residence="Madrid", service="custody"
    )
    early = InquiryFacts(**{**f.__dict__, "today": date(2026, 3, 1)})
    assert decide(early, profile).outcome is Outcome.ESCALATE


def test_lookback_months_is_the_window(profile, gazetteer) -> None:  # type: ignore[no-untyped-def]
    # The Telegram ads ended 2026-09-30: inside 12 months, outside 1 month.
    short = _profile_with(profile, lookback_months=1)
    kw = dict(source="saw your Telegram ad", residence="Madrid", service="custody")
    assert outcome(profile, gazetteer, **kw) is Outcome.DECLINE
    assert outcome(short, gazetteer, **kw) is Outcome.ESCALATE


def test_non_eu_clients(profile, gazetteer) -> None:  # type: ignore[no-untyped-def]
    kw = dict(source="telegram ad", residence="Tokyo")
    # Anything outside MiCA goes to a person wherever the client lives (DOMAIN.md 3, 6; R9).
    assert outcome(profile, gazetteer, service="staking", **kw) is Outcome.ESCALATE
    assert outcome(profile, gazetteer, service="buy USDT", **kw) is Outcome.HANDOFF_NON_EU
    assert outcome(profile, gazetteer, service="buy BTC, no KYC", **kw) is Outcome.ESCALATE


def test_section_six_escalations_for_eu_clients(profile, gazetteer) -> None:  # type: ignore[no-untyped-def]
    organic = "I googled your name, not an ad"
    for service in ("buy USDC with EUR", "advice on which coins to buy", "futures"):
        assert outcome(profile, gazetteer, source=organic, residence="Riga", service=service) is (
            Outcome.ESCALATE
        )
    for residence in (
        "I live in Munich but I'm travelling in Thailand right now",
        "Hamburg, with a VPN",
        "It's a BVI company, but I run it from Munich",
        "Kyrenia",
        "Longyearbyen",
    ):
        assert (
            outcome(profile, gazetteer, source=organic, residence=residence, service="custody")
            is Outcome.ESCALATE
        )


def test_solicitation_of_an_eu_resident_abroad_still_declines(profile, gazetteer) -> None:  # type: ignore[no-untyped-def]
    d = decide(
        facts(
            profile,
            gazetteer,
            source="your Telegram ad",
            residence="Ich wohne in München, bin aber gerade auf Reisen in Thailand",
            service="Bitcoin kaufen",
        ),
        profile,
    )
    assert d.outcome is Outcome.DECLINE and d.country == "DE"


def test_close_link_is_r10(profile, gazetteer) -> None:  # type: ignore[no-untyped-def]
    d = decide(
        facts(
            profile,
            gazetteer,
            source="someone from Northwind Labs told me",
            residence="Utrecht",
            service="custody",
        ),
        profile,
    )
    assert d.outcome is Outcome.DECLINE and "R10" in d.rules


_EU = ["Vienna", "Lisbon", "Munich", "Paris", "Warsaw", "Martinique", "Oslo"]
_NON_EU = ["Dubai", "Zurich", "London", "Singapore", "Tokyo", "Curaçao"]


@settings(max_examples=150, deadline=None)
@given(
    eu=st.sampled_from(_EU),
    other=st.sampled_from(_NON_EU),
    joiner=st.sampled_from([" and ", " / ", "\n", " or maybe ", ", sometimes "]),
    source=st.text(max_size=60),
    service=st.text(max_size=60),
)
def test_property_conflicting_residence_never_proceeds(
    eu: str,
    other: str,
    joiner: str,
    source: str,
    service: str,
    profile: CompanyProfile,
    gazetteer: Gazetteer,
) -> None:
    f = InquiryFacts(
        today=TODAY,
        residence=classify_residence(eu + joiner + other, gazetteer),
        source=classify_source(source, profile),
        service=classify_service(service, profile),
    )
    assert decide(f, profile).outcome not in PROCEED


@settings(max_examples=150, deadline=None)
@given(residence=st.text(max_size=80), source=st.text(max_size=60))
def test_property_text_without_a_place_never_proceeds(
    residence: str, source: str, profile: CompanyProfile, gazetteer: Gazetteer
) -> None:
    res = classify_residence(residence, gazetteer)
    f = InquiryFacts(
        today=TODAY,
        residence=res,
        source=classify_source(source, profile),
        service=classify_service("custody", profile),
    )
    if res.zone in (Zone.UNKNOWN, Zone.HUMAN):
        assert decide(f, profile).outcome not in PROCEED
