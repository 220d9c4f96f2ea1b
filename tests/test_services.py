"""What the client asks for: MiCA services in many languages, NON_MICA, stablecoins, no KYC."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from triage.domain.codes import ServiceCode
from triage.domain.profile import CompanyProfile
from triage.domain.services import classify_service
from triage.domain.text import MAX_TEXT

S = ServiceCode


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("custody for our BTC", S.CUSTODY),
        ("Verwahrung von 3 BTC", S.CUSTODY),
        ("garder mes cryptos en sécurité", S.CUSTODY),
        ("custodia de mis bitcoins", S.CUSTODY),
        ("custodia dei miei bitcoin", S.CUSTODY),
        ("guardar os meus bitcoins", S.CUSTODY),
        ("mijn bitcoin laten bewaren", S.CUSTODY),
        ("przechowywanie bitcoina", S.CUSTODY),
        ("förvaring av bitcoin", S.CUSTODY),
        ("хранение биткоинов", S.CUSTODY),
        ("зберігання біткоїнів", S.CUSTODY),
        ("opbevaring af bitcoin", S.CUSTODY),
        ("buy BTC with EUR", S.EXCH_FIAT),
        ("Bitcoin gegen Franken verkaufen", S.EXCH_FIAT),
        ("vendre de l'ETH contre des euros", S.EXCH_FIAT),
        ("comprar bitcoin con euros", S.EXCH_FIAT),
        ("vendere bitcoin per euro", S.EXCH_FIAT),
        ("trocar BTC por euros", S.EXCH_FIAT),
        ("bitcoin verkopen voor euro's", S.EXCH_FIAT),
        ("kupić bitcoina za złotówki", S.EXCH_FIAT),
        ("köpa bitcoin", S.EXCH_FIAT),
        ("купить биткоин за евро", S.EXCH_FIAT),
        ("buy bitcoin with my credit card", S.EXCH_FIAT),
        ("Bitcoin mit meiner Kreditkarte kaufen", S.EXCH_FIAT),
        ("Je veux acheter du bitcoin, je suis prêt à commencer", S.EXCH_FIAT),
        ("swap BTC to ETH", S.EXCH_CRYPTO),
        ("BTC omwisselen naar ETH", S.EXCH_CRYPTO),
        ("OTC execution for 40 BTC", S.EXECUTION),
        ("transfer 2 BTC to my hardware wallet", S.TRANSFER),
        ("portfolio management for 200k EUR", S.PORTFOLIO),
        ("advice on which coins to buy", S.ADVICE),
    ],
)
def test_mica_services(profile: CompanyProfile, text: str, code: ServiceCode) -> None:
    assert classify_service(text, profile).code is code


@pytest.mark.parametrize(
    "text",
    [
        "staking",
        "I want to stake my ETH",
        "Perpetual Futures mit Hebel",
        "un prêt en euros garanti par mes bitcoins",
        "opzioni call su bitcoin",
        "futuros perpetuos con apalancamiento",
        "emprestar os meus bitcoins para ganhar juros",
        "kontrakty futures na bitcoina",
        "tokenized stocks like Apple",
        "a loan against my BTC",
        "стейкинг эфира",
        "Yield Vault",
        "bitcoin options",
    ],
)
def test_non_mica(profile: CompanyProfile, text: str) -> None:
    assert classify_service(text, profile).code is S.NON_MICA


def test_products_of_the_profile(profile: CompanyProfile) -> None:
    f = classify_service("Ik wil Yield Vault gebruiken", profile)
    assert f.product == "Yield Vault" and f.code is S.NON_MICA
    f = classify_service("your cold storage", profile)
    assert f.product == "Vault" and f.code is S.CUSTODY


def test_negated_product_is_not_asked_for(profile: CompanyProfile) -> None:
    assert classify_service("custody, not staking", profile).code is S.CUSTODY


@pytest.mark.parametrize(
    "text", ["buy USDC with EUR", "EURC kaufen", "swap my USDT to BTC", "send 5,000 USDC"]
)
def test_stablecoins_are_flagged(profile: CompanyProfile, text: str) -> None:
    assert "stablecoin" in classify_service(text, profile).flags


@pytest.mark.parametrize(
    "text",
    [
        "buy BTC, no KYC please",
        "sell 3 BTC anonymously without verification",
        "Bitcoin kaufen ohne KYC",
        "купить биткоин без KYC",
    ],
)
def test_no_kyc_is_flagged(profile: CompanyProfile, text: str) -> None:
    assert "no_kyc" in classify_service(text, profile).flags


def test_nothing_useful(profile: CompanyProfile) -> None:
    assert classify_service("stuff", profile).code is None
    assert classify_service("", profile).code is None


ADVERSARIAL = st.text(
    alphabet=st.one_of(
        st.characters(),
        st.sampled_from(list("\u200b\u200d\u202e\u2066\u0301\u0308\ufeffΣΙİıßẞǅﬁ\n\t ,.?;:")),
    ),
    max_size=300,
)


@settings(max_examples=200, deadline=None)
@given(text=st.one_of(st.text(max_size=400), ADVERSARIAL))
def test_property_no_text_crashes_the_service_classifier(
    text: str, profile: CompanyProfile
) -> None:
    f = classify_service(text, profile)
    assert f.code is None or f.code in f.codes
    if S.NON_MICA in f.codes:
        assert f.code is S.NON_MICA  # anything outside MiCA goes to a person (R9)


@settings(max_examples=10, deadline=None)
@given(seed=st.text(min_size=1, max_size=40))
def test_property_long_texts(seed: str, profile: CompanyProfile) -> None:
    classify_service((seed * (2 * MAX_TEXT // len(seed) + 2))[: 2 * MAX_TEXT], profile)
