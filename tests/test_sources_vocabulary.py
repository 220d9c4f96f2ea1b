"""The sources vocabulary in all thirty languages: people and what they said, searches, one's
own research, negations written after the noun, and Irish mutations.

Each case is one instance of a rule (a kind of word, in one language); the rules hold in every
language, so the sentences below come from many of them and a failure names the language.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from triage.domain.codes import Channel
from triage.domain.lexicon import LANGUAGES
from triage.domain.policy import CONFIDENT
from triage.domain.profile import CompanyProfile
from triage.domain.sources import SourceFinding, classify_source


def live(f: SourceFinding) -> set[Channel]:
    return {s.channel for s in f.signals if not s.negated}


def negated(f: SourceFinding, channel: Channel) -> bool:
    found = [s for s in f.signals if s.channel is channel]
    return bool(found) and all(s.negated for s in found)


# An ad the client says they did NOT see, the negation written after the noun.
NEGATED_AFTER = [
    ("cs", "reklamu jsem neviděl"),
    ("cs", "reklamu jsem nevidela"),
    ("sk", "reklamu som nevidel"),
    ("sl", "oglasa nisem videl"),
    ("sl", "ni bil oglas"),
    ("hr", "oglas nisam vidio"),
    ("pl", "reklamy nie widziałam"),
    ("ru", "рекламу не видел"),
    ("ru", "reklamu ne videl"),
    ("uk", "реклами не бачила"),
    ("bg", "реклама не видях"),
    ("lv", "reklāmu neredzēju"),
    ("lt", "reklamos nemačiau"),
    ("et", "reklaami ei näinud"),
    ("fi", "mainosta en nähnyt"),
    ("hu", "reklámot nem láttam"),
    ("el", "διαφήμιση δεν είδα"),
    ("tr", "reklam görmedim"),
    ("de", "Werbung habe ich nicht gesehen"),
    ("nl", "reclame heb ik niet gezien"),
    ("ar", "ماشي إعلان"),
]


@pytest.mark.parametrize(("lang", "text"), NEGATED_AFTER)
def test_negation_after_the_noun(lang: str, text: str, profile: CompanyProfile) -> None:
    f = classify_source(text, profile, lang)
    assert negated(f, Channel.AD), (lang, f.signals)
    assert Channel.AD not in live(f)


# A person and what they said: word of mouth, confidently.
PERSON_SAID = [
    ("cs", "švagr o vás mluvil"),
    ("cs", "kolega mi o vás říkal"),
    ("sk", "švagor o vás hovoril"),
    ("sl", "sodelavec mi je omenil vaše ime"),
    ("hr", "prijatelj mi je spomenuo"),
    ("pl", "szwagier mi o was mówił"),
    ("ru", "сестра сказала название"),
    ("uk", "сестра сказала назву"),
    ("lv", "brālis pieminēja jūsu nosaukumu"),
    ("lt", "kolega paminėjo jūsų pavadinimą"),
    ("et", "kolleeg mainis teid"),
    ("fi", "lanko mainitsi teidät"),
    ("hu", "a sógorom említette"),
    ("el", "ο κουνιάδος μου ανέφερε"),
    ("tr", "eniştem bahsetti"),
    ("de", "mein Schwager hat euch erwähnt"),
    ("fr", "mon beau-frère m'a parlé de vous"),
    ("es", "mi cuñado me habló de vosotros"),
    ("ga", "luaigh mo chara sibh"),
    ("ar", "خويا عطاني السمية"),
]


@pytest.mark.parametrize(("lang", "text"), PERSON_SAID)
def test_person_and_mention(lang: str, text: str, profile: CompanyProfile) -> None:
    f = classify_source(text, profile, lang)
    assert f.channel is Channel.WORD_OF_MOUTH, (lang, f.signals)
    assert f.confidence >= CONFIDENT


@pytest.mark.parametrize(
    ("lang", "text"),
    [
        ("en", "ChatGPT suggested you"),
        ("uk", "зараз згадав і сам написав"),
        ("cs", "mluvil o vás"),
    ],
)
def test_a_mention_without_a_person_is_not_confident(
    lang: str, text: str, profile: CompanyProfile
) -> None:
    """Someone (or something) said it, but who? A verb alone never reaches CONFIDENT."""
    f = classify_source(text, profile, lang)
    assert f.confidence < CONFIDENT


SEARCHED = [
    ("cs", "hledala jsem to"),
    ("sl", "iskal sem na bingu"),
    ("sl", "sam sem vas poguglal"),
    ("pl", "szukałam w internecie"),
    ("pl", "zagooglowałem"),
    ("lv", "sameklēju jūs"),
    ("lt", "ieškojau internete"),
    ("ru", "погуглила"),
    ("uk", "я загуглила"),
    ("hr", "proguglao sam"),
]


@pytest.mark.parametrize(("lang", "text"), SEARCHED)
def test_search_verbs(lang: str, text: str, profile: CompanyProfile) -> None:
    f = classify_source(text, profile, lang)
    assert Channel.ORGANIC_SEARCH in live(f), (lang, f.signals)


RESEARCHED = [
    ("cs", "dělal jsem si tabulku burz"),
    ("cs", "výběrové řízení na OTC desk"),
    ("sk", "robili sme výberové konanie"),
    ("pl", "ogłosiliśmy przetarg"),
    ("de", "wir hatten eine Ausschreibung"),
    ("en", "we ran an RFP"),
    ("hu", "GitHubon néztem könyvtárakat"),
    ("fr", "nous avons fait un appel d'offres"),
]


@pytest.mark.parametrize(("lang", "text"), RESEARCHED)
def test_own_research(lang: str, text: str, profile: CompanyProfile) -> None:
    f = classify_source(text, profile, lang)
    assert Channel.OWN_RESEARCH in live(f), (lang, f.signals)


@pytest.mark.parametrize(
    ("text", "channel"),
    [
        ("chonaic mé bhur bhfógra", Channel.AD),
        ("dúirt mo chara liom", Channel.WORD_OF_MOUTH),
        ("chuardaigh mé ar Google", Channel.ORGANIC_SEARCH),
    ],
)
def test_irish_mutations(text: str, channel: Channel, profile: CompanyProfile) -> None:
    assert channel in live(classify_source(text, profile, "ga"))


@pytest.mark.parametrize(
    ("lang", "text"),
    [
        ("lv", "pats sameklēju jūsu lapu"),
        ("lt", "ieškojau, jūsų puslapis buvo paprastas rezultatas"),
        ("da", "jeg søgte og fandt jeres side"),
    ],
)
def test_your_page_after_a_search_is_the_website(
    lang: str, text: str, profile: CompanyProfile
) -> None:
    """ "Your page" found by a search is the firm's website, not its social account."""
    assert classify_source(text, profile, lang).channel is Channel.ORGANIC_SEARCH


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=200), lang=st.sampled_from(LANGUAGES))
def test_never_raises(text: str, lang: str, profile: CompanyProfile) -> None:
    f = classify_source(text, profile, lang)
    assert 0.0 <= f.confidence <= 1.0
