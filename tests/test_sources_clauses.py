"""Clause-scoped negation, corrections and the firm's own presence, in every language."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from triage.domain.codes import SOLICITING, Channel
from triage.domain.lexicon import LANGUAGES
from triage.domain.profile import CompanyProfile
from triage.domain.sources import SourceFinding, answer_yes_no, classify_source, is_hedged


def live(f: SourceFinding) -> set[Channel]:
    return {s.channel for s in f.signals if not s.negated}


#: "It was not an ad, a friend told me", as clients write it.
NEGATED_AD = [
    ("en", "It was NOT an ad, a friend told me"),
    ("de", "Es war keine Werbung, ein Freund hat es mir erzählt"),
    ("fr", "Ce n'était pas une pub, un ami m'en a parlé"),
    ("es", "No fue un anuncio, me lo dijo un amigo"),
    ("it", "Non era una pubblicità, me lo ha detto un amico"),
    ("pt", "Não foi um anúncio, um amigo me falou"),
    ("nl", "Het was geen advertentie, een vriend vertelde het"),
    ("pl", "To nie była reklama, powiedział mi przyjaciel"),
    ("sv", "Det var ingen annons, en vän tipsade mig"),
    ("da", "Det var ikke en annonce, en ven fortalte mig det"),
    ("no", "Det var ikke en annonse, en venn fortalte meg det"),
    ("fi", "Se ei ollut mainos, ystävä kertoi"),
    ("cs", "Nebyla to reklama, kamarád mi vás doporučil"),
    ("sk", "Nebola to reklama, kamarát mi vás odporučil"),
    ("hu", "Nem hirdetés volt, egy barátom ajánlotta"),
    ("ro", "Nu a fost o reclamă, un prieten mi-a spus"),
    ("el", "Δεν ήταν διαφήμιση, ένας φίλος μου είπε"),
    ("ru", "Это была не реклама, друг посоветовал"),
    ("uk", "Це була не реклама, друг порадив"),
    ("bg", "Не беше реклама, приятел ми каза"),
    ("tr", "Reklam değildi, bir arkadaşım önerdi"),
    ("ar", "لم يكن إعلانا، صديق أخبرني"),
    ("hr", "Nije bio oglas, prijatelj mi je rekao"),
    ("sl", "Ni bil oglas, prijatelj mi je povedal"),
    ("lt", "Tai nebuvo reklama, draugas rekomendavo"),
    ("et", "See ei olnud reklaam, sõber soovitas"),
]


@pytest.mark.parametrize(("language", "text"), NEGATED_AD)
def test_a_negated_ad_is_no_ad(profile: CompanyProfile, language: str, text: str) -> None:
    f = classify_source(text, profile, language=language)
    assert Channel.AD not in live(f), f.signals
    assert f.channel is Channel.WORD_OF_MOUTH, f.signals


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("de", "Werbung war es nicht, ein Kollege hat euch empfohlen"),
        ("tr", "reklam değil, bir arkadaşım önerdi"),
        ("en", "ads no, a friend yes"),
    ],
)
def test_a_negation_after_the_cue(profile: CompanyProfile, language: str, text: str) -> None:
    f = classify_source(text, profile, language=language)
    assert Channel.AD not in live(f), f.signals


@pytest.mark.parametrize(
    ("text", "channel"),
    [
        ("I found you through a search engine. Sorry, I meant your ad", Channel.AD),
        ("search engine\nsorry, I meant your ad on Telegram", Channel.AD),
        ("I saw an ad, no wait, a friend told me", Channel.WORD_OF_MOUTH),
        ("Ich habe euch gegoogelt, nein warte, es war eure Werbung", Channel.AD),
        ("J'ai vu une pub, en fait non, c'est un ami", Channel.WORD_OF_MOUTH),
        ("Google. Perdón, quise decir vuestro anuncio", Channel.AD),
        ("Видел рекламу, вернее, друг посоветовал", Channel.WORD_OF_MOUTH),
    ],
)
def test_a_correction_replaces_what_it_corrects(
    profile: CompanyProfile, text: str, channel: Channel
) -> None:
    f = classify_source(text, profile)
    assert f.channel is channel, f.signals
    assert "corrected" in f.flags


def test_an_addition_is_no_correction(profile: CompanyProfile) -> None:
    f = classify_source("I saw your ad. Actually I also googled you", profile)
    assert f.channel is Channel.AD
    assert "corrected" not in f.flags


def test_a_correction_with_nothing_instead_takes_nothing_back(profile: CompanyProfile) -> None:
    f = classify_source("I saw your ad on Telegram. Sorry, I mean, I don't remember", profile)
    assert Channel.AD in live(f)


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("en", "I talked to your team at your booth at the conference"),
        ("en", "I saw your talk at a crypto summit"),
        ("de", "Ich war an eurem Stand auf der Messe"),
        ("fr", "J'ai visité votre stand au salon"),
        ("es", "Vi vuestra ponencia en un congreso"),
        ("it", "Ho visto il vostro stand in fiera"),
        ("pl", "Poznałem was na waszym stoisku na konferencji"),
        ("sv", "Jag såg er monter på mässan"),
        ("ru", "Был на вашем стенде на конференции"),
        ("tr", "Fuarda standınızı ziyaret ettim"),
    ],
)
def test_the_firm_at_an_event_is_its_own_marketing(
    profile: CompanyProfile, language: str, text: str
) -> None:
    f = classify_source(text, profile, language=language)
    assert f.channel is Channel.EVENT
    assert "firm_presence" in f.flags
    assert any(s.firm_present and not s.negated for s in f.signals)


def test_someone_elses_event_is_not_the_firms_presence(profile: CompanyProfile) -> None:
    f = classify_source("A friend told me about you at a conference", profile)
    assert "firm_presence" not in f.flags


def test_the_conversation_language_reads_its_own_short_words(profile: CompanyProfile) -> None:
    # Romanian "nu" is Swedish "now": a negation only in a Romanian conversation.
    text = "Nu am văzut nicio reclamă, un prieten mi-a spus"
    assert Channel.AD not in live(classify_source(text, profile, language="ro"))
    f = classify_source("nu såg jag er annons", profile, language="sv")
    assert f.channel is Channel.AD


def test_lemmas_find_inflected_cues(profile: CompanyProfile) -> None:
    f = classify_source("Viděl jsem vaši reklamu", profile, language="cs")
    assert f.channel is Channel.AD


@pytest.mark.parametrize(
    ("language", "text", "answer"),
    [
        ("ro", "da", True),
        ("ro", "nu", False),
        ("fi", "kyllä", True),
        ("fi", "ei", False),
        ("tr", "evet", True),
        ("tr", "hayır", False),
        ("el", "ναι", True),
        ("el", "όχι", False),
        ("ar", "نعم", True),
        ("ar", "لا", False),
        ("hr", "ne", False),
        ("lv", "jā", True),
        ("mt", "iva", True),
        ("et", "jah", True),
    ],
)
def test_yes_no_in_the_conversation_language(language: str, text: str, answer: bool) -> None:
    assert answer_yes_no(text, language) is answer


def test_maybe_is_no_yes() -> None:
    assert answer_yes_no("možná", "cs") is None
    assert is_hedged("galiba evet", "tr")
    assert is_hedged("może", "pl")


@settings(max_examples=120, deadline=None)
@given(text=st.text(max_size=200), language=st.sampled_from([*LANGUAGES, None, "xx"]))
def test_property_never_raises_in_any_language(
    text: str, language: str | None, profile: CompanyProfile
) -> None:
    f = classify_source(text, profile, language=language)
    assert 0.0 <= f.confidence <= 1.0
    assert f.channel is Channel.UNKNOWN or f.signals
    answer_yes_no(text, language)
    is_hedged(text, language)


@settings(max_examples=60, deadline=None)
@given(
    language=st.sampled_from(LANGUAGES),
    prefix=st.sampled_from(["", "Hm. ", "ok\n"]),
    pick=st.integers(min_value=0, max_value=len(NEGATED_AD) - 1),
)
def test_property_an_unnegated_ad_stays_solicitation(
    language: str, prefix: str, pick: int, profile: CompanyProfile
) -> None:
    # Whatever the conversation's language, a plain "I saw your ad" is never genuine.
    f = classify_source(prefix + "I saw your ad", profile, language=language)
    assert f.channel in SOLICITING
