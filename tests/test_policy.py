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
    assert d.outcome is Outcome.DECLINE
    assert "R4" in d.rules


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
