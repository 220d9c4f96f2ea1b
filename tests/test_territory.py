"""Residence: free text -> country -> zone, in nine languages and beyond; fails closed."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from triage import geodata
from triage.domain.codes import IN_SCOPE, Zone
from triage.domain.territory import Gazetteer, classify_residence, phone_country
from triage.domain.text import MAX_TEXT, clean, fold, tokens

PROPERTY = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def where(gz: Gazetteer, text: str, **kw: str) -> tuple[str | None, Zone]:
    r = classify_residence(text, gz, **kw)
    return r.code, r.zone


# --- typical answers in the nine languages of the flow -------------------------------------


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("I live in Dublin", "IE"),
        ("Ich wohne in Köln", "DE"),
        ("J'habite à Bordeaux", "FR"),
        ("Vivo en Sevilla, España", "ES"),
        ("Abito a Torino", "IT"),
        ("Moro em Coimbra", "PT"),
        ("Ik woon in Den Haag", "NL"),
        ("Mieszkam we Wrocławiu", "PL"),
        ("Jag bor i Göteborg", "SE"),
        ("Jeg bor i Aarhus", "DK"),
        ("Locuiesc în Cluj-Napoca", "RO"),
        ("Budapesten lakom", "HU"),
        ("Рига, Латвия", "LV"),
        ("Я живу у Варшаві", "PL"),
        ("Αθήνα", "GR"),
    ],
)
def test_eu_residence_in_many_languages(gazetteer: Gazetteer, text: str, code: str) -> None:
    got, zone = where(gazetteer, text)
    assert got == code and zone is Zone.EU


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Zürich", "CH"),
        ("Vivo a Lugano", "CH"),
        ("London, UK", "GB"),
        ("Belfast, Northern Ireland", "GB"),
        ("Austin, TX", "US"),
        ("Bangkok, Thailand", "TH"),
        ("Ciudad de México", "MX"),
        ("Київ", "UA"),
        ("دبي", "AE"),
        ("İstanbul", "TR"),
        ("Our company is registered in Singapore and both directors live there", "SG"),
    ],
)
def test_non_eu_residence(gazetteer: Gazetteer, text: str, code: str) -> None:
    got, zone = where(gazetteer, text)
    assert got == code and zone is Zone.OUTSIDE


def test_eea_states_are_in_scope(gazetteer: Gazetteer) -> None:
    assert where(gazetteer, "Oslo, Norway") == ("NO", Zone.EEA)
    assert where(gazetteer, "Vaduz") == ("LI", Zone.EEA)
    assert where(gazetteer, "Reykjavík") == ("IS", Zone.EEA)


# --- DOMAIN.md section 7: outermost regions, OCTs and the places a person decides -----------


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Fort-de-France, Martinique", "MQ"),
        ("Saint-Denis, La Réunion", "RE"),
        ("Cayenne, Guyane", "GF"),
        ("Mamoudzou, Mayotte", "YT"),
        ("Pointe-à-Pitre", "GP"),
        ("Marigot, on the French side of St Martin", "MF"),
        ("Las Palmas de Gran Canaria", "ES"),
        ("Funchal, Madeira", "PT"),
        ("Ponta Delgada, Açores", "PT"),
        ("Mariehamn, Åland", "AX"),
        ("Ceuta", "ES"),
        ("Melilla", "ES"),
    ],
)
def test_eu_territories_are_in(gazetteer: Gazetteer, text: str, code: str) -> None:
    assert where(gazetteer, text) == (code, Zone.EU)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Nuuk, Greenland", "GL"),
        ("Tórshavn, Faroe Islands", "FO"),
        ("Papeete, Polynésie française", "PF"),
        ("Nouméa, Nouvelle-Calédonie", "NC"),
        ("Gustavia, Saint-Barthélemy", "BL"),
        ("Willemstad, Curaçao", "CW"),
        ("Kralendijk, Bonaire", "BQ"),
        ("Saint-Pierre-et-Miquelon", "PM"),
        ("Gibraltar", "GI"),
        ("St Helier, Jersey", "JE"),
        ("St Peter Port, Guernsey", "GG"),
        ("Douglas, Isle of Man", "IM"),
        ("Monte-Carlo", "MC"),
        ("Andorra la Vella", "AD"),
        ("San Marino", "SM"),
    ],
)
def test_octs_and_neighbours_are_out(gazetteer: Gazetteer, text: str, code: str) -> None:
    assert where(gazetteer, text) == (code, Zone.OUTSIDE)


@pytest.mark.parametrize(
    "text",
    [
        "Kyrenia",
        "Famagusta",
        "I'm stationed at RAF Akrotiri",
        "I live in Dhekelia",
        "Longyearbyen",
    ],
)
def test_edge_territories_go_to_a_person(gazetteer: Gazetteer, text: str) -> None:
    assert where(gazetteer, text)[1] is Zone.HUMAN


# --- typos, inflections and look-alikes -----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code", "zone"),
    [
        ("Östereich", "AT", Zone.EU),
        ("Östereich, Linz", "AT", Zone.EU),
        ("Austrailia", "AU", Zone.OUTSIDE),
        ("polsa", "PL", Zone.EU),
        ("Frnace", "FR", Zone.EU),
        ("Barcelonna", "ES", Zone.EU),
        ("Swizerland, Geneva", "CH", Zone.OUTSIDE),
        ("I moved to germny", "DE", Zone.EU),
    ],
)
def test_typos(gazetteer: Gazetteer, text: str, code: str, zone: Zone) -> None:
    r = classify_residence(text, gazetteer)
    assert (r.code, r.zone) == (code, zone)
    assert "fuzzy" in r.signals


def test_a_misspelt_non_eu_city_is_not_settled(gazetteer: Gazetteer) -> None:
    # It may as well be an EU town the gazetteer does not know.
    assert where(gazetteer, "Bangkokk")[1] is Zone.UNKNOWN


@pytest.mark.parametrize(
    "text",
    [
        "G\u0435rmany",  # Cyrillic e
        "Fr\u200bance",  # zero-width space
        "\u202eFrance",  # bidi override
        "Ｇｅｒｍａｎｙ",  # fullwidth
        "Aus\u00adtria",  # soft hyphen
        "I live in Par\u0456s",  # Cyrillic i
    ],
)
def test_confusables_read_as_the_eu_place(gazetteer: Gazetteer, text: str) -> None:
    assert where(gazetteer, text)[1] is Zone.EU


EU_NAMES = [
    "Germany",
    "France",
    "Paris",
    "Vienna",
    "Lisboa",
    "Madrid",
    "Warszawa",
    "Stockholm",
    "Netherlands",
    "Dublin",
    "Athens",
    "Milan",
    "Malta",
]
_LOOKALIKE = {
    "a": "\u0430",
    "e": "\u0435",
    "o": "\u043e",
    "p": "\u0440",
    "c": "\u0441",
    "i": "\u0456",
}
_INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u202e", "\u202d"]


@PROPERTY
@given(
    name=st.sampled_from(EU_NAMES),
    swaps=st.lists(st.integers(min_value=0, max_value=30), max_size=3),
    inserts=st.lists(
        st.tuples(st.integers(min_value=0, max_value=30), st.sampled_from(_INVISIBLE)),
        max_size=3,
    ),
    template=st.sampled_from(["{}", "I live in {}", "Ich wohne in {}", "{}, please"]),
)
def test_property_a_confusable_never_makes_an_eu_place_non_eu(
    gazetteer: Gazetteer,
    name: str,
    swaps: list[int],
    inserts: list[tuple[int, str]],
    template: str,
) -> None:
    chars = list(name)
    for i in swaps:
        j = i % len(chars)
        chars[j] = _LOOKALIKE.get(chars[j].lower(), chars[j])
    for i, ch in inserts:
        chars.insert(i % (len(chars) + 1), ch)
    r = classify_residence(template.format("".join(chars)), gazetteer)
    assert r.zone is not Zone.OUTSIDE


# --- refusal, nationality, ambiguity --------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["I'd rather not say", "Je préfère ne pas le dire", "Keine Angabe", "prefiero no decirlo"],
)
def test_refusal_is_unknown(gazetteer: Gazetteer, text: str) -> None:
    r = classify_residence(text, gazetteer)
    assert r.zone is Zone.UNKNOWN and "refused" in r.signals


@pytest.mark.parametrize("text", ["Sono italiano", "I'm German", "Je suis française"])
def test_nationality_alone_is_not_a_residence(gazetteer: Gazetteer, text: str) -> None:
    r = classify_residence(text, gazetteer)
    assert r.zone is Zone.UNKNOWN and "nationality_only" in r.signals


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Ich bin Österreicher, lebe aber seit Jahren in Bangkok", "TH"),
        ("Soy español pero vivo en Buenos Aires", "AR"),
        ("Je suis américain mais j'habite à Lyon depuis dix ans", "FR"),
        ("I'm British but I moved to Lisbon last year", "PT"),
        ("Originally from Berlin, now living in Dubai", "AE"),
    ],
)
def test_residence_not_nationality(gazetteer: Gazetteer, text: str, code: str) -> None:
    assert where(gazetteer, text)[0] == code


@pytest.mark.parametrize("text", ["Valencia", "Córdoba", "Granada", "Toledo", "Montana"])
def test_names_inside_and_outside_the_eu_are_ambiguous(gazetteer: Gazetteer, text: str) -> None:
    r = classify_residence(text, gazetteer, language="es")
    assert r.zone is Zone.UNKNOWN and "ambiguous" in r.signals


def test_a_named_country_settles_the_ambiguity(gazetteer: Gazetteer) -> None:
    assert where(gazetteer, "Córdoba, España") == ("ES", Zone.EU)
    assert where(gazetteer, "Córdoba, Argentina") == ("AR", Zone.OUTSIDE)
    assert where(gazetteer, "vivo en valencia, españa") == ("ES", Zone.EU)


def test_language_never_outweighs_size(gazetteer: Gazetteer) -> None:
    # English is spoken in South Africa and the US; Paris, Athens and Milan are still in the EU.
    for text in ("Paris", "Athens", "Milan"):
        assert where(gazetteer, text, language="en")[1] is Zone.EU


def test_us_states_are_not_countries(gazetteer: Gazetteer) -> None:
    # US-DE Delaware is not Germany, US-MT Montana not Malta, NL-GE Gelderland not Georgia.
    assert where(gazetteer, "Delaware")[0] == "US"
    assert where(gazetteer, "Gelderland")[0] == "NL"
    assert where(gazetteer, "Limburg")[1] is Zone.EU


@pytest.mark.parametrize(
    "text",
    [
        "Unsere GmbH hat ihren Sitz in Wien",  # "ihren" is no Ukrainian town
        "Jeg bor i Aarhus",  # "bor" is no Russian town
        "Best regards, I live in Dubai",  # "Best" is no Dutch town
        "Moro em Faro",  # "Moro" is no Pakistani town
    ],
)
def test_ordinary_words_are_not_towns(gazetteer: Gazetteer, text: str) -> None:
    r = classify_residence(text, gazetteer)
    assert len(r.candidates) == 1 and r.zone is not Zone.UNKNOWN


# --- conflicts, travel, VPN, dual residence, companies, phone --------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "I live in Dubai but I'm in Paris for a few weeks right now",
        "I split my time between Dubai and Marbella, about half the year each",
        "Moro entre Lisboa e São Paulo, metade do ano em cada",
        "Hong Kong. I had to use a VPN, your site was blocked for me",
        "digital nomad, German passport, mostly in Bali these days",
        "It's a BVI company, but I run it from Munich",
        "We are a Cayman Islands fund, managed out of Paris",
        "My Delaware LLC, I'm the sole director and I live in Brussels",
    ],
)
def test_conflicts_are_unknown(gazetteer: Gazetteer, text: str) -> None:
    assert where(gazetteer, text)[1] is Zone.UNKNOWN


def test_company_vehicle_is_named(gazetteer: Gazetteer) -> None:
    r = classify_residence("It's a BVI company, but I run it from Munich", gazetteer)
    assert "company_vehicle" in r.signals


def test_home_over_travel(gazetteer: Gazetteer) -> None:
    r = classify_residence(
        "Ich wohne in München, bin aber gerade auf Reisen in Thailand", gazetteer
    )
    assert (r.code, r.zone) == ("DE", Zone.EU) and "travel" in r.signals


def test_a_company_seat_counts(gazetteer: Gazetteer) -> None:
    assert where(gazetteer, "Unsere GmbH hat ihren Sitz in Wien") == ("AT", Zone.EU)
    assert where(gazetteer, "Onze BV is gevestigd in Utrecht") == ("NL", Zone.EU)


def test_phone_contradicts_but_never_decides(gazetteer: Gazetteer) -> None:
    assert where(gazetteer, "Singapore", phone="+33612345678")[1] is Zone.UNKNOWN
    assert where(gazetteer, "Milan, Italy", phone="+14155550123") == ("IT", Zone.EU)
    assert where(gazetteer, "Zürich", phone="+41791234567") == ("CH", Zone.OUTSIDE)
    assert where(gazetteer, "I'd rather not say", phone="+4915112345678")[1] is Zone.UNKNOWN
    assert phone_country("+4915112345678") == "DE" and phone_country("garbage") is None


def test_explicit_only_needs_a_residence_cue(gazetteer: Gazetteer) -> None:
    assert classify_residence("I love Paris", gazetteer, explicit_only=True).zone is Zone.UNKNOWN
    r = classify_residence("Hi, I live in Graz and want bitcoin", gazetteer, explicit_only=True)
    assert (r.code, r.zone) == ("AT", Zone.EU)


# --- properties: normalisation and robustness ----------------------------------------------

ADVERSARIAL = st.text(
    alphabet=st.one_of(
        st.characters(),
        st.sampled_from(list("\u200b\u200d\u202e\u2066\u0301\u0308\ufeffΣΙİıßẞǅﬁ\n\t ,.")),
    ),
    max_size=300,
)


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(), ADVERSARIAL))
def test_property_fold_and_clean_are_idempotent(text: str) -> None:
    assert fold(fold(text)) == fold(text)
    assert clean(clean(text)) == clean(text)
    assert " ".join(t.folded for t in tokens(text)) == fold(text)
    assert len(fold(text)) <= MAX_TEXT


@PROPERTY
@given(text=st.one_of(st.text(), ADVERSARIAL), phone=st.one_of(st.none(), st.text(max_size=20)))
def test_property_no_text_crashes_the_residence_classifier(
    gazetteer: Gazetteer, text: str, phone: str | None
) -> None:
    r = classify_residence(text, gazetteer, phone=phone, language="de")
    if r.zone is Zone.UNKNOWN:
        assert r.code is None


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.text(min_size=1, max_size=50))
def test_property_long_texts_are_handled(gazetteer: Gazetteer, seed: str) -> None:
    text = (seed * (MAX_TEXT // len(seed) + 2))[: MAX_TEXT + 100]
    classify_residence(text, gazetteer)
    classify_residence("I live in Vienna. " * 300, gazetteer, explicit_only=True)


@PROPERTY
@given(
    eu=st.sampled_from(["Vienna", "Lisbon", "Munich", "Paris", "Warsaw", "Riga"]),
    other=st.sampled_from(["Dubai", "Zurich", "London", "Singapore", "New York", "Bangkok"]),
    joiner=st.sampled_from([" and ", " / ", ", ", "\n", " or ", " und "]),
)
def test_property_places_in_two_zones_never_settle_outside(
    gazetteer: Gazetteer, eu: str, other: str, joiner: str
) -> None:
    for text in (eu + joiner + other, other + joiner + eu):
        assert classify_residence(text, gazetteer).zone is not Zone.OUTSIDE


def test_in_scope_zones() -> None:
    assert IN_SCOPE == {Zone.EU, Zone.EEA}


# --- the gazetteer's disk cache (triage.geodata) ---------------------------------------------


def test_gazetteer_cache_is_read_instead_of_building(
    tmp_path: Path, gazetteer: Gazetteer, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = geodata.cache_key()
    assert len(key) == 32 and key == geodata.cache_key()
    stale = tmp_path / "gazetteer-0123456789abcdef0123456789abcdef.pickle"
    stale.write_bytes(b"an older version")
    path = tmp_path / f"gazetteer-{key}.pickle"
    geodata._write_cache(path, gazetteer)
    assert path.exists() and not stale.exists(), "the stale file is removed"
    assert not list(tmp_path.glob("*.tmp")), "no temporary file is left behind"

    def must_not_build() -> Gazetteer:
        raise AssertionError("built although a valid cache file exists")

    monkeypatch.setattr(geodata, "build_gazetteer", must_not_build)
    cached = geodata.load_gazetteer.__wrapped__(tmp_path)
    assert cached.names == gazetteer.names and cached.fuzzy_index == gazetteer.fuzzy_index
    assert classify_residence("Östereich, Linz", cached).code == "AT"


def test_a_corrupt_cache_file_is_rebuilt_never_trusted(
    tmp_path: Path, gazetteer: Gazetteer, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / f"gazetteer-{geodata.cache_key()}.pickle"
    path.write_bytes(b"\x80\x05garbage")
    monkeypatch.setattr(geodata, "build_gazetteer", lambda: gazetteer)
    assert geodata.load_gazetteer.__wrapped__(tmp_path) is gazetteer
    assert geodata._read_cache(path) is not None, "the rebuilt gazetteer is written back"
    path.write_bytes(pickle.dumps({"not": "a gazetteer"}))
    assert geodata._read_cache(path) is None


def test_an_unwritable_cache_directory_only_costs_time(
    tmp_path: Path, gazetteer: Gazetteer, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache directory should be")
    monkeypatch.setattr(geodata, "build_gazetteer", lambda: gazetteer)
    assert geodata.load_gazetteer.__wrapped__(blocker / "cache") is gazetteer
