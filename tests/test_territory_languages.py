"""Residence in all thirty languages: the vocabulary of places.yaml, corrections, seats, and
the territories DOMAIN.md section 7 names, in every script (DOMAIN.md R1, sections 6 and 7)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from triage.domain.codes import Zone
from triage.domain.lexicon import LANGUAGES, concepts, cues
from triage.domain.lexicon import _read_cached as lexicon_file
from triage.domain.territory import Gazetteer, classify_residence

PROPERTY = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def phrase(language: str, concept: str, n: int = 0) -> str:
    """The n-th phrase a language's places.yaml lists for a concept, as written."""
    return lexicon_file(language, "places")[concept][n][0].rstrip("*")


def test_places_defines_the_concepts_the_classifier_reads() -> None:
    wanted = {
        "residence",
        "seat",
        "company",
        "managed",
        "travel",
        "dual_residence",
        "between",
        "moved",
        "origin",
        "refusal",
        "vpn",
        "locative",
        "stopwords",
        "family",
        "district",
    }
    assert wanted <= set(concepts("places"))


# --- every concept, in every language, from the language's own data -------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_i_live_in(gazetteer: Gazetteer, language: str) -> None:
    r = classify_residence(f"{phrase(language, 'residence')} Lisboa", gazetteer, language=language)
    assert (r.code, r.zone) == ("PT", Zone.EU)


@pytest.mark.parametrize("language", LANGUAGES)
def test_an_eu_seat_decides_over_a_home_outside(gazetteer: Gazetteer, language: str) -> None:
    company, seat = phrase(language, "company"), phrase(language, "seat")
    home = phrase(language, "residence")
    r = classify_residence(f"{company} {seat} Wien, {home} Dubai", gazetteer, language=language)
    assert (r.code, r.zone) == ("AT", Zone.EU)


@pytest.mark.parametrize("language", LANGUAGES)
def test_home_over_travel(gazetteer: Gazetteer, language: str) -> None:
    home, away = phrase(language, "residence"), phrase(language, "travel")
    r = classify_residence(f"{home} Wien, {away} Bangkok", gazetteer, language=language)
    assert (r.code, r.zone) == ("AT", Zone.EU) and "travel" in r.signals


@pytest.mark.parametrize("language", LANGUAGES)
def test_dual_residence_with_an_eu_home_is_never_outside(
    gazetteer: Gazetteer, language: str
) -> None:
    for n in range(len(lexicon_file(language, "places")["dual_residence"])):
        text = f"{phrase(language, 'dual_residence', n)} Wien, Dubai"
        r = classify_residence(text, gazetteer, language=language)
        assert r.zone is Zone.UNKNOWN and "dual_residence" in r.signals, text


@pytest.mark.parametrize("language", LANGUAGES)
def test_refusal(gazetteer: Gazetteer, language: str) -> None:
    for n in range(len(lexicon_file(language, "places")["refusal"])):
        text = phrase(language, "refusal", n)
        r = classify_residence(text, gazetteer, language=language)
        assert r.zone is Zone.UNKNOWN, text


@pytest.mark.parametrize("language", LANGUAGES)
def test_vpn_beside_a_non_eu_place_is_unknown(gazetteer: Gazetteer, language: str) -> None:
    r = classify_residence(f"Dubai, {phrase(language, 'vpn')}", gazetteer, language=language)
    assert r.zone is Zone.UNKNOWN and "vpn" in r.signals


# --- answers the blind writers gave, by rule ----------------------------------------------


@pytest.mark.parametrize(
    ("text", "language", "code"),
    [
        ("asun lontoossa, muutin sinne 2021. ei oo enää asuntoa suomessa", "fi", "GB"),
        ("asun helsingissä, olin vaan työmatkalla sveitsissä pari päivää", "fi", "FI"),
        (
            "Innsbruck'ta yaşıyorum, Avusturya. İstanbul'a sadece etkinlik için gitmiştim",
            "tr",
            "AT",
        ),
        ("Барселона, Испания, живу там с 2022, в Стамбул летал только на конференцию", "ru", "ES"),
        ("Gaillimh, ach tá an VPN socraithe ar Cheanada", "ga", "IE"),
        ("bydlim v Londyne uz 6 let, Walthamstow", "cs", "GB"),
        ("Backy Petrovec, Srbsko, tu som sa narodil aj zijem", "sk", "RS"),
        ("CDMX, colonia Roma", "es", "MX"),
        ("Bor i Stockholm men är född i Chile", "sv", "SE"),
        ("Porto, Portugal (Matosinhos na verdade)", "pt", "PT"),
        ("Gustavia, Saint-Barthélemy. locuiesc aici de 4 ani, am contract", "ro", "BL"),
        ("Pozdravljeni, sem Slovenec, zivim v Svici", "sl", "CH"),
    ],
)
def test_answers_in_many_languages(
    gazetteer: Gazetteer, text: str, language: str, code: str
) -> None:
    assert classify_residence(text, gazetteer, language=language).code == code


@pytest.mark.parametrize(
    ("text", "language", "code"),
    [
        ("I live in Riga... sorry, I moved, now Tallinn", "en", "EE"),
        ("I live in Riga\nno wait, I mean Vilnius", "en", "LT"),
        ("Mexico City\nActually I moved to Berlin last month, I live there now", "en", "DE"),
        ("Ich wohne in Wien... nein warte, ich meine Zürich", "de", "CH"),
        (
            "Київ... ой, неправильно написав. я вже 2 роки живу в Мілані, в Києві тільки прописка",
            "uk",
            "IT",
        ),
        (
            "София... чакай, то вече не е така. от миналата година живея в Белград. "
            "в София са само нашите",
            "bg",
            "RS",
        ),
    ],
)
def test_a_correction_replaces_the_place_it_corrects(
    gazetteer: Gazetteer, text: str, language: str, code: str
) -> None:
    # The brief of issue #12: a correction replaces what it corrects, in the same answer or a
    # later one (the engine joins a slot's answers with "\n").
    assert classify_residence(text, gazetteer, language=language).code == code


def test_travel_does_not_count_as_a_correction(gazetteer: Gazetteer) -> None:
    r = classify_residence("I live in Munich, actually I'm travelling in Thailand", gazetteer)
    assert (r.code, r.zone) == ("DE", Zone.EU) and "travel" in r.signals


@pytest.mark.parametrize(
    "text",
    [
        "It's a BVI company, but I run it from Munich",
        "Our company is registered in Dubai but I live in Berlin",
        "juhtimine ja kontor on Tallinnas, aga lepingupooleks oleks meie BVI holding, Tortola",
        "الشركة الأم مقرها أمستردام وكل الإدارة هناك، بس هنعمل العقد من خلال شركة تابعة في دبي",
    ],
)
def test_a_company_vehicle_goes_to_a_person(gazetteer: Gazetteer, text: str) -> None:
    r = classify_residence(text, gazetteer)
    assert r.zone is Zone.UNKNOWN and "company_vehicle" in r.signals


def test_a_misspelt_country_beside_a_city_is_the_city_s(gazetteer: Gazetteer) -> None:
    for text, code in (("Vilnius, Lituanija", "LT"), ("Lisboa, Portgual", "PT")):
        assert classify_residence(text, gazetteer).code == code


def test_family_places_are_not_the_client_s(gazetteer: Gazetteer) -> None:
    text = "Ο αδερφός μου ζει στο Χονγκ Κονγκ και μου είπε το όνομά σας."
    r = classify_residence(text, gazetteer, language="el", explicit_only=True)
    assert r.zone is Zone.UNKNOWN


# --- DOMAIN.md section 7 in every script -------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Лонгйир",
        "Баренцбург",
        "живу в Лонгйирбюене",
        "Шпицберген",
        "Svalbardissa",
        "Κερύνεια",
        "Girne",
        "Gazimağusa",
        "Lefkoşa",
        "North Nicosia",
        "Βόρεια Λευκωσία",
        "Северная Никосия",
        "Кирения",
        "Фамагуста",
        "كيرينيا",
        "Акротири",
        "Δεκέλεια",
    ],
)
def test_edges_go_to_a_person_in_every_script(gazetteer: Gazetteer, text: str) -> None:
    assert classify_residence(text, gazetteer).zone is Zone.HUMAN


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Нуук, Гренландия", "GL"),
        ("Торсхавн", "FO"),
        ("جزر فارو", "FO"),
        ("Нумеа", "NC"),
        ("Таити", "PF"),
        ("Аруба", "AW"),
        ("Кюрасао", "CW"),
        ("Сен-Бартелеми", "BL"),
    ],
)
def test_octs_are_outside_in_every_script(gazetteer: Gazetteer, text: str, code: str) -> None:
    r = classify_residence(text, gazetteer)
    assert (r.code, r.zone) == (code, Zone.OUTSIDE)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Тенерифе", "ES"),
        ("Канарские острова", "ES"),
        ("Τενερίφη", "ES"),
        ("Kanarya Adaları", "ES"),
        ("Kanariansaaret", "ES"),
        ("Мадейра", "PT"),
        ("Азорские острова", "PT"),
        ("مليلية", "ES"),
        ("Сеута", "ES"),
        ("Мариехамн", "AX"),
        ("Ahvenanmaa", "AX"),
        ("Реюньон", "RE"),
        ("Гваделупа", "GP"),
        ("Мартиника", "MQ"),
        ("Майотта", "YT"),
        ("Французская Гвиана", "GF"),
        ("Сен-Мартен", "MF"),
    ],
)
def test_eu_territories_are_in_in_every_script(gazetteer: Gazetteer, text: str, code: str) -> None:
    r = classify_residence(text, gazetteer)
    assert (r.code, r.zone) == (code, Zone.EU)


# --- properties --------------------------------------------------------------------------


def _vocabulary(language: str) -> list[str]:
    words = [
        c.phrase
        for concept in concepts("places")
        for c in cues("places", concept)
        if c.language == language
    ]
    return words or ["?"]


@pytest.mark.parametrize("language", LANGUAGES)
def test_property_never_raises_in_any_language(gazetteer: Gazetteer, language: str) -> None:
    words = _vocabulary(language)

    @PROPERTY
    @given(
        before=st.lists(st.sampled_from(words), max_size=4).map(" ".join),
        after=st.lists(st.one_of(st.sampled_from(words), st.text(max_size=8)), max_size=4).map(
            " ".join
        ),
        eu=st.sampled_from(["Wien", "Lisboa", "Riga", "Warszawa", "Αθήνα", "Рига"]),
        other=st.sampled_from(["Dubai", "Zürich", "London", "Москва", "دبي", "İstanbul"]),
    )
    def check(before: str, after: str, eu: str, other: str) -> None:
        for text in (f"{before} {eu} {other} {after}", f"{before} {other}\n{eu} {after}"):
            r = classify_residence(text, gazetteer, language=language)
            assert 0.0 <= r.confidence <= 1.0
            if r.zone is Zone.UNKNOWN:
                assert r.code is None

    check()


def test_a_negation_that_is_a_locative_does_not_drop_a_place(gazetteer: Gazetteer) -> None:
    # Portuguese "no" is "in the": Porto stays, so two homes in two zones go to a person.
    assert classify_residence("Moro no Porto", gazetteer, language="pt").code == "PT"
    r = classify_residence("Moro no Porto e tenho casa em São Paulo", gazetteer, language="pt")
    assert r.zone is Zone.UNKNOWN and "dual_residence" in r.signals


def test_an_inflected_eu_town_is_a_rival_of_its_namesake(gazetteer: Gazetteer) -> None:
    # "Tartus" is Tartus in Syria and "in Tartu": never settled outside.
    assert classify_residence("Elan Tartus", gazetteer, language="et").zone is not Zone.OUTSIDE
