"""The gate passes only what it recognises (issue #12): replies on the service, transactional
and neutral messages; it blocks promotions and self-certification offers in every language."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from triage.domain.codes import MessageKind, Outcome, Sender, ServiceCode, Verdict, Zone
from triage.domain.gate import OutboundMessage, RecipientFacts, judge, read
from triage.domain.lexicon import LANGUAGES, cues
from triage.domain.profile import CompanyProfile

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
SERVED = RecipientFacts(
    zone=Zone.EU,
    outcomes=(Outcome.SERVE_EU_RESTRICTED,),
    served=(ServiceCode.CUSTODY,),
    requested=(ServiceCode.CUSTODY,),
    last_client_message_at=NOW - timedelta(hours=1),
)
#: Served custody, then asked about staking (an undecided second inquiry).
SECOND = RecipientFacts(
    zone=Zone.EU,
    outcomes=(Outcome.SERVE_EU_RESTRICTED, Outcome.ESCALATE),
    served=(ServiceCode.CUSTODY,),
    requested=(ServiceCode.CUSTODY, ServiceCode.NON_MICA),
    last_client_message_at=NOW - timedelta(hours=1),
)
PENDING = RecipientFacts(
    zone=Zone.EU, outcomes=(Outcome.ESCALATE,), requested=(ServiceCode.CUSTODY,)
)
NON_EU = RecipientFacts(zone=Zone.OUTSIDE, outcomes=(Outcome.HANDOFF_NON_EU,))


def reply(text: str, sender: Sender = Sender.SALES) -> OutboundMessage:
    return OutboundMessage(sender, MessageKind.REPLY, text, NOW, reply=True)


def send(kind: MessageKind, text: str, sender: Sender = Sender.SCHEDULER) -> OutboundMessage:
    return OutboundMessage(sender, kind, text, NOW)


@pytest.mark.parametrize(
    "text",
    [
        "Custody is 0.2% a year, billed monthly.",
        "Die Verwahrung kostet 0,2 % pro Jahr.",
        "Таксата за трансфер е 0,05% + мрежовата такса.",
        "Kylmäsäilytys maksaa 0,25 % vuodessa, minimi on 0,1 BTC.",
        "BTC satışında komisyon %0,35, euro SEPA ile 1 iş gününde hesabınızda.",
        "رسوم الحفظ 0.3% سنوياً، بدون رسوم إيداع.",
        "Ett uttag tar normalt under en timme.",
        "Your coins sit in cold storage with multisig.",
    ],
)
def test_a_reply_on_the_service_is_recognised_and_allowed(
    text: str, profile: CompanyProfile
) -> None:
    r = judge(reply(text), SERVED, profile)
    assert r.verdict is Verdict.ALLOWED, r.reason


@pytest.mark.parametrize(
    "text", ["Great!", "Hello there, Jana here.", "Moi! 😊", "Здравейте!", "🙂"]
)
def test_a_firm_message_the_gate_cannot_place_is_held(text: str, profile: CompanyProfile) -> None:
    r = judge(reply(text), SERVED, profile)
    assert r.verdict is Verdict.HELD
    assert "not recognised" in r.reason
    r = judge(send(MessageKind.TRANSACTIONAL, text), SERVED, profile)
    assert r.verdict is Verdict.HELD


@pytest.mark.parametrize(
    "kind,text",
    [
        (MessageKind.TRANSACTIONAL, "Your withdrawal of 0.5 BTC is confirmed."),
        (MessageKind.TRANSACTIONAL, "Verificarea identității a fost aprobată."),
        (
            MessageKind.TRANSACTIONAL,
            "Tietoturvailmoitus: uusi laite kirjautui.",
        ),
        (MessageKind.TRANSACTIONAL, "تم استلام صورة جواز السفر. الخطوة التالية: إثبات العنوان."),
        (MessageKind.HOLDING, "Ευχαριστούμε, θα σας απαντήσει σύντομα ένας συνάδελφος."),
        (MessageKind.DECLINE, "Köszönjük, sajnos nem tudjuk teljesíteni a kérését."),
    ],
)
def test_transactional_and_neutral_messages_pass(
    kind: MessageKind, text: str, profile: CompanyProfile
) -> None:
    for facts in (SERVED, PENDING):
        assert judge(send(kind, text), facts, profile).verdict is Verdict.ALLOWED


@pytest.mark.parametrize(
    "text",
    [
        "Hi! Just checking in - ready to make your first swap?",
        "Még mindig érdekel a BTC eladás? Írj nekünk!",
        "Kutsu kaverisi Alpenkerniin, niin saatte molemmat 25 CHF bonuksen!",
        "Поканете приятел и двамата получавате по 20 USDT!",
        "Lige en ting mere: vi har netop listet SOL og AVAX med 0 % gebyr hele ugen – prøv dem!",
        "Klart! Följ gärna @AlpenkernNews för fler OTC-tips 📈",
        "Du är inbjuden till vår VIP-middag i Zug!",
        "Did you have a chance to think about custody?",
        "Arkadaşını davet et, 20 USDT kazan!",
        "ادعُ صديقك واحصل على 20 USDT!",
    ],
)
def test_promotions_are_blocked_for_a_served_eu_client(text: str, profile: CompanyProfile) -> None:
    for msg in (reply(text), send(MessageKind.TRANSACTIONAL, text)):
        r = judge(msg, SERVED, profile)
        assert r.verdict is Verdict.BLOCKED, r.reason


@pytest.mark.parametrize(
    "text",
    [
        "Before we go on: tick the box 'I contacted Northwind on my own initiative'.",
        "Bitte unterschreiben Sie die Erklärung, dass Sie uns aus eigener Initiative kontaktiert "
        "haben.",
        "Merci de cocher la case « Je certifie être venu de ma propre initiative ».",
        "Palun allkirjastage lisatud kinnitus: 'Tellisin teenuse omal algatusel'.",
        "Kryss av i boksen: ☐ Jeg bekrefter at jeg kontaktet dere helt på eget initiativ.",
        "Lütfen ekteki beyanı imzalayın: 'Kendi inisiyatifimle iletişime geçtim.'",
        "اضغط ✅ لتأكيد أنك جئت إلينا بمبادرتك الخاصة ولم يتواصل معك أحد.",
        "Пожалуйста, подпишите заявление, что вы обратились к нам по собственной инициативе.",
        "Ešte potrebujeme, aby ste podpísali priložené vyhlásenie, že ste nás oslovili sami.",
    ],
)
def test_self_certification_offers_are_blocked_for_everyone(
    text: str, profile: CompanyProfile
) -> None:
    for facts in (SERVED, PENDING, NON_EU, SECOND):
        for kind in (MessageKind.REPLY, MessageKind.TRANSACTIONAL, MessageKind.HOLDING):
            for sender in (Sender.SALES, Sender.BOT, Sender.COMPLIANCE):
                msg = OutboundMessage(sender, kind, text, NOW, reply=True)
                r = judge(msg, facts, profile)
                assert r.verdict is Verdict.BLOCKED, (facts, kind, r.reason)
                assert r.rules == ("R4",)


def test_confirming_an_address_is_not_self_certification(profile: CompanyProfile) -> None:
    text = "Ülekande tasu on 0,0001 BTC. Palun lisage oma rahakoti aadress ja kinnitage see."
    assert not read(text).self_certification
    assert judge(reply(text), SERVED, profile).verdict is Verdict.ALLOWED


def test_a_reply_on_the_second_service_asked_is_held(profile: CompanyProfile) -> None:
    r = judge(reply("Yes, Yield Vault pays 6% a year on ETH."), SECOND, profile)
    assert r.verdict is Verdict.HELD
    assert "undecided" in r.reason


def test_a_pitch_of_what_was_not_asked_is_blocked(profile: CompanyProfile) -> None:
    # The engine says the client asked about another product: Yield Vault was not asked.
    facts = RecipientFacts(
        zone=Zone.EU,
        outcomes=SECOND.outcomes,
        served=SECOND.served,
        requested=SECOND.requested,
        last_client_message_at=SECOND.last_client_message_at,
        pending_products=("Something Else",),
    )
    r = judge(reply("Yes, Yield Vault pays 6% a year on ETH."), facts, profile)
    assert r.verdict is Verdict.BLOCKED
    # An invitation stays blocked even inside an answer on the asked service.
    r = judge(reply("Yield Vault pays 6% a year. Invite a friend too!"), SECOND, profile)
    assert r.verdict is Verdict.BLOCKED


def test_non_eu_clients_keep_unrestricted_outbound(profile: CompanyProfile) -> None:
    for kind in (MessageKind.NEWSLETTER, MessageKind.UPSELL, MessageKind.REPLY):
        r = judge(send(kind, "Invite a friend and earn 20 USDT!"), NON_EU, profile)
        assert r.verdict is Verdict.ALLOWED


# --- properties, in all thirty languages ----------------------------------------------------

_BLOCKING = ("promotion", "follow_up", "invitation", "event")
_FILLER = st.text(
    alphabet=st.characters(whitelist_categories=("Ll", "Lu", "Nd", "Zs", "Po")), max_size=60
)


def _phrases(concept: str, language: str) -> list[str]:
    return [c.phrase for c in cues("gate", concept) if c.language == language]


@pytest.mark.parametrize("language", LANGUAGES)
def test_property_no_promotion_is_ever_allowed_to_an_eu_client(
    language: str, profile: CompanyProfile
) -> None:
    words = [p for c in _BLOCKING for p in _phrases(c, language)]
    assert words

    @settings(max_examples=40, deadline=None)
    @given(
        word=st.sampled_from(words),
        before=_FILLER,
        after=_FILLER,
        kind=st.sampled_from(list(MessageKind)),
        sender=st.sampled_from([Sender.SALES, Sender.SCHEDULER, Sender.COMPLIANCE]),
        facts=st.sampled_from([SERVED, SECOND, PENDING]),
    )
    def check(
        word: str,
        before: str,
        after: str,
        kind: MessageKind,
        sender: Sender,
        facts: RecipientFacts,
    ) -> None:
        msg = OutboundMessage(sender, kind, f"{before} {word} {after}", NOW, reply=True)
        assert judge(msg, facts, profile).verdict is not Verdict.ALLOWED

    check()


@pytest.mark.parametrize("language", LANGUAGES)
def test_property_no_self_certification_offer_is_ever_allowed(
    language: str, profile: CompanyProfile
) -> None:
    attest = _phrases("self_cert_attest", language)
    initiative = _phrases("self_cert_initiative", language)
    assert attest and initiative

    @settings(max_examples=30, deadline=None)
    @given(
        a=st.sampled_from(attest),
        i=st.sampled_from(initiative),
        filler=_FILLER,
        kind=st.sampled_from(list(MessageKind)),
        sender=st.sampled_from(list(Sender)),
        facts=st.sampled_from([SERVED, SECOND, PENDING, NON_EU]),
    )
    def check(
        a: str,
        i: str,
        filler: str,
        kind: MessageKind,
        sender: Sender,
        facts: RecipientFacts,
    ) -> None:
        msg = OutboundMessage(sender, kind, f"{a} {filler} {i}", NOW, reply=True)
        assert judge(msg, facts, profile).verdict is Verdict.BLOCKED

    check()


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(max_size=200),
    kind=st.sampled_from([MessageKind.REPLY, MessageKind.TRANSACTIONAL]),
    sender=st.sampled_from([Sender.SALES, Sender.SCHEDULER, Sender.COMPLIANCE, Sender.BOT]),
    language=st.sampled_from([None, *LANGUAGES]),
)
def test_property_unrecognised_content_is_never_allowed(
    text: str, kind: MessageKind, sender: Sender, language: str | None, profile: CompanyProfile
) -> None:
    facts = RecipientFacts(
        zone=Zone.EU,
        outcomes=SERVED.outcomes,
        served=SERVED.served,
        requested=SERVED.requested,
        last_client_message_at=SERVED.last_client_message_at,
        language=language,
    )
    r = judge(OutboundMessage(sender, kind, text, NOW, reply=True), facts, profile)
    if r.verdict is Verdict.ALLOWED:
        reading = read(text, language)
        assert reading.quantity or reading.first("service_reply", "transactional"), r.reason
        assert not reading.first(*_BLOCKING)
