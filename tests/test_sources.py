"""How the client found the firm: channels, register entries, negation, hedging, codes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from triage.domain.codes import GENUINE, SOLICITING, Channel
from triage.domain.profile import CompanyProfile
from triage.domain.sources import (
    SourceFinding,
    answer_yes_no,
    classify_source,
    find_referral_codes,
)
from triage.domain.text import MAX_TEXT


def live(f: SourceFinding) -> set[Channel]:
    return {s.channel for s in f.signals if not s.negated}


@pytest.mark.parametrize(
    ("text", "channel"),
    [
        ("I typed your name into Google and went to your site", Channel.ORGANIC_SEARCH),
        ("Ich habe euren Namen gegoogelt", Channel.ORGANIC_SEARCH),
        ("J'ai cherché votre nom sur Qwant", Channel.ORGANIC_SEARCH),
        ("Busqué vuestro nombre en Google", Channel.ORGANIC_SEARCH),
        ("Ho cercato il vostro nome su Google", Channel.ORGANIC_SEARCH),
        ("Pesquisei o vosso nome no Google", Channel.ORGANIC_SEARCH),
        ("Ik heb jullie naam opgezocht", Channel.ORGANIC_SEARCH),
        ("Szukałem waszej nazwy w Google", Channel.ORGANIC_SEARCH),
        ("Jag sökte på ert namn", Channel.ORGANIC_SEARCH),
        ("A colleague mentioned you", Channel.WORD_OF_MOUTH),
        ("Mein Steuerberater hat euch erwähnt", Channel.WORD_OF_MOUTH),
        ("Me lo recomendó mi cuñado", Channel.WORD_OF_MOUTH),
        ("Kolega z pracy mi was polecił", Channel.WORD_OF_MOUTH),
        ("Друг посоветовал", Channel.WORD_OF_MOUTH),
        ("We compared OTC desks for an RFP", Channel.OWN_RESEARCH),
        ("I read your API docs on GitHub", Channel.OWN_RESEARCH),
        ("saw your ad on telegram", Channel.AD),
        ("Werbung auf Instagram", Channel.AD),
        ("une pub sur Telegram", Channel.AD),
        ("un anuncio en YouTube", Channel.AD),
        ("una pubblicità", Channel.AD),
        ("um anúncio no Telegram", Channel.AD),
        ("een advertentie op Facebook", Channel.AD),
        ("reklama na Telegramie", Channel.AD),
        ("en annons på Google", Channel.AD),
        ("Увидел рекламу в Телеграме", Channel.AD),
        ("Am văzut o reclamă", Channel.AD),
        ("Über den Podcast, ihr wart dort Sponsor", Channel.AD),
        ("a YouTuber talked about you", Channel.INFLUENCER),
        ("I visited a booth at a conference", Channel.EVENT),
        ("I follow your Telegram channel", Channel.SOCIAL),
        ("I read an article about you", Channel.PRESS),
        ("Your salesman called me", Channel.FIRM_CONTACT),
        ("Mi ha scritto un vostro commerciale", Channel.FIRM_CONTACT),
        ("A friend of mine works for you", Channel.FIRM_CONTACT),
        ("I get your newsletter", Channel.FIRM_CONTACT),
        ("I was at the Northwind Labs hackathon", Channel.CLOSE_LINK),
    ],
)
def test_channels(profile: CompanyProfile, text: str, channel: Channel) -> None:
    assert classify_source(text, profile).channel is channel


def test_register_entries_are_named(profile: CompanyProfile) -> None:
    f = classify_source("Crypto Clara recommended you on YouTube", profile)
    assert any(s.entry_id == "crypto-clara" for s in f.signals)
    f = classify_source("Cripto Klara habló de vosotros", profile)
    assert any(s.entry_id == "crypto-clara" for s in f.signals)
    f = classify_source("Zobaczyłem reklamę na Telegramie", profile)
    assert any(s.entry_id == "tg-ads-2026" for s in f.signals)
    f = classify_source("Увидел рекламу в Телеграме", profile)
    assert any(s.entry_id == "tg-ads-2026" for s in f.signals)


def test_a_youtuber_is_not_the_registered_youtuber(profile: CompanyProfile) -> None:
    # The platform identifies an ad campaign, never a person.
    f = classify_source("Os vi en un vídeo de un youtuber, CriptoPaco", profile)
    assert f.channel is Channel.INFLUENCER
    assert all(s.entry_id is None for s in f.signals)


def test_a_crypto_class_is_not_crypto_clara(profile: CompanyProfile) -> None:
    f = classify_source("I took a crypto class at university and searched your name", profile)
    assert all(s.entry_id != "crypto-clara" for s in f.signals)


@pytest.mark.parametrize(
    "text",
    [
        "not an ad, I googled your name",
        "Keine Werbung, ich habe euch gegoogelt",
        "Ce n'était pas une pub, j'ai cherché votre nom",
        "No fue un anuncio, busqué vuestro nombre",
        "Non era una pubblicità, ho cercato il vostro nome",
        "Não foi um anúncio, pesquisei o vosso nome",
        "Geen advertentie, ik heb jullie naam gezocht",
        "To nie była reklama, szukałem waszej nazwy",
        "Ingen annons, jag sökte på ert namn",
        "Ni anuncio ni influencer: os encontré buscando en Google",
        "Not from an ad or an influencer: I searched your name",
        "Это была не реклама, нашёл вас в гугле",
    ],
)
def test_negation(profile: CompanyProfile, text: str) -> None:
    f = classify_source(text, profile)
    assert not (live(f) & SOLICITING), f.signals
    assert f.channel is Channel.ORGANIC_SEARCH


@pytest.mark.parametrize(
    "text",
    [
        "No ads, but I follow your Telegram channel",
        "I had no idea you existed until I saw your ad",
        "Didn't google you, I saw your ad on Telegram",
    ],
)
def test_negation_does_not_reach_past_the_clause(profile: CompanyProfile, text: str) -> None:
    assert live(classify_source(text, profile)) & SOLICITING


@pytest.mark.parametrize(
    "text",
    [
        "I think it was an ad?",
        "Ich glaube, es war Werbung",
        "peut-être une pub",
        "creo que fue un anuncio",
        "forse una pubblicità",
        "acho que foi um anúncio",
        "misschien een advertentie",
        "chyba reklama",
        "kanske en annons",
        "кажется, реклама",
        "an ad on Telegram?",
    ],
)
def test_hedging_halves_the_confidence(profile: CompanyProfile, text: str) -> None:
    f = classify_source(text, profile)
    assert f.channel is Channel.AD
    assert any(s.hedged for s in f.signals if s.channel is Channel.AD)
    assert f.confidence < 0.6


def test_referral_codes_anywhere(profile: CompanyProfile) -> None:
    assert find_referral_codes("use nw-4f7h please", profile) == [("nw-4f7h", "referral")]
    assert find_referral_codes("https://northwind.example/r/NW-K9P3", profile) == [
        ("NW-K9P3", "referral")
    ]
    assert find_referral_codes("NW-ZZ12", profile) == [("NW-ZZ12", "referral")]  # /start
    assert find_referral_codes("XNW-ZZ12Y", profile) == []
    f = classify_source("found you on google. oh and my code is NW-88AB", profile)
    assert f.referral_codes == (("NW-88AB", "referral"),)
    assert f.channel is Channel.REFERRAL


def test_referral_words_without_a_code(profile: CompanyProfile) -> None:
    # A referral cue with no code points at the firm's one referral programme.
    f = classify_source("my friend gave me his referral link", profile)
    assert any(s.entry_id == "referral" for s in f.signals)
    # "referred" in everyday English is weak: a person must ask about a link or code.
    f = classify_source("A friend referred me", profile)
    assert f.channel is Channel.REFERRAL and f.confidence < 0.6
    # ... and "no link or code" takes the referral reading away.
    f = classify_source("A friend referred me, no link or code", profile)
    assert f.channel is Channel.WORD_OF_MOUTH
    assert "no_link_or_code" in f.flags


def test_flags(profile: CompanyProfile) -> None:
    f = classify_source("I hereby confirm I came at my own exclusive initiative", profile)
    assert "self_certification" in f.flags and f.channel is Channel.UNKNOWN
    assert "name_search" in classify_source("I googled Northwind Digital", profile).flags
    assert "organic_result" in classify_source("google, first organic result", profile).flags
    f = classify_source("I saw your Telegram ad in 2024, that's why I'm writing", profile)
    assert "linked" in f.flags
    f = classify_source("A friend told me. I also remember a Telegram ad from 2024.", profile)
    assert "linked" not in f.flags


def test_press_and_close_links(profile: CompanyProfile) -> None:
    assert classify_source("I read about your Series A", profile).channel is Channel.PRESS
    f = classify_source("A guy from Northwind Labs told me about you", profile)
    assert f.channel is Channel.CLOSE_LINK


def test_pub_in_english_is_not_an_ad(profile: CompanyProfile) -> None:
    f = classify_source("My friend told me about you in a pub", profile)
    assert f.channel is Channel.WORD_OF_MOUTH


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("yes", True),
        ("Ja, euer Vertrieb", True),
        ("oui", True),
        ("tak", True),
        ("nope", False),
        ("Nein, niemand", False),
        ("nee", False),
        ("nej", False),
        ("I don't know", None),
        ("yes and no", None),
    ],
)
def test_answer_yes_no(text: str, answer: bool | None) -> None:
    assert answer_yes_no(text) is answer


ADVERSARIAL = st.text(
    alphabet=st.one_of(
        st.characters(),
        st.sampled_from(list("\u200b\u200d\u202e\u2066\u0301\u0308\ufeffΣΙİıßẞǅﬁ\n\t ,.?;:")),
    ),
    max_size=300,
)


@settings(max_examples=200, deadline=None)
@given(text=st.one_of(st.text(max_size=400), ADVERSARIAL))
def test_property_no_text_crashes_the_source_classifier(
    text: str, profile: CompanyProfile
) -> None:
    f = classify_source(text, profile)
    assert 0.0 <= f.confidence <= 1.0
    assert f.channel is Channel.UNKNOWN or f.signals
    answer_yes_no(text)
    find_referral_codes(text, profile)


@settings(max_examples=10, deadline=None)
@given(seed=st.text(min_size=1, max_size=40))
def test_property_long_texts(seed: str, profile: CompanyProfile) -> None:
    text = (seed * (2 * MAX_TEXT // len(seed) + 2))[: 2 * MAX_TEXT]
    classify_source(text, profile)
    classify_source("I saw your ad. " * 400, profile)


@settings(max_examples=150, deadline=None)
@given(
    prefix=st.sampled_from(["", "Well, ", "Honestly ", "Hm. "]),
    ad=st.sampled_from(["your ad on Telegram", "an ad", "Werbung", "une pub", "un anuncio"]),
)
def test_property_a_plain_ad_is_solicitation(
    prefix: str, ad: str, profile: CompanyProfile
) -> None:
    f = classify_source(prefix + "I saw " + ad, profile)
    assert f.channel in SOLICITING and f.channel not in GENUINE


@pytest.mark.parametrize(
    ("text", "answer"),
    [("да", True), ("нет", False), ("так", True), ("ні", False), ("ano", True), ("igen", True)],
)
def test_answer_yes_no_beyond_the_nine_languages(text: str, answer: bool) -> None:
    # A bare "да" to "has anyone from the firm contacted you" must not read as "unknown".
    assert answer_yes_no(text) is answer
