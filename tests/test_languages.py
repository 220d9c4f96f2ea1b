"""Thirty languages, first class: prompts, detection, reading, and the invariants in each.

The properties run the real classifiers, engine and gate on text built from each language's
own lexicon (triage/data/lexicon/<lang>/) mixed with arbitrary text, so a language whose word
lists or rules break something fails here by name.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from triage.domain.codes import PROCEED, MessageKind, Outcome, Sender, ServiceCode, Verdict, Zone
from triage.domain.gate import OutboundMessage, RecipientFacts, judge
from triage.domain.language import detect
from triage.domain.lexicon import LANGUAGES, concepts, cues
from triage.domain.profile import CompanyProfile
from triage.domain.services import classify_service
from triage.domain.sources import classify_source
from triage.domain.territory import Gazetteer, classify_residence
from triage.flows.engine import ClientEvent, ConversationState, Engine

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
PROMPTS = Path(__file__).resolve().parents[1] / "flows" / "prompts"


def _words(language: str) -> list[str]:
    """Every phrase of every concept of one language's lexicon, as written in the data."""
    out: list[str] = []
    for part in ("clauses", "sources", "services", "gate", "places"):
        for concept in concepts(part):
            out += [c.phrase for c in cues(part, concept) if c.language == language]
    return out or ["?"]


def _texts(language: str) -> st.SearchStrategy[str]:
    words = _words(language)
    return st.lists(
        st.one_of(st.sampled_from(words), st.text(max_size=12)), min_size=1, max_size=12
    ).map(" ".join)


def test_every_language_has_its_prompts() -> None:
    en = yaml.safe_load((PROMPTS / "en.yaml").read_text(encoding="utf-8"))
    for language in LANGUAGES:
        file = PROMPTS / f"{language}.yaml"
        assert file.exists(), f"flows/prompts/{language}.yaml is missing"
        table = yaml.safe_load(file.read_text(encoding="utf-8"))
        assert sorted(table) == sorted(en), file.name
        for key, text in table.items():
            for slot in ("{firm}", "{service}", "{years}"):
                assert (slot in str(text)) == (slot in str(en[key])), (file.name, key, slot)


def say(engine: Engine, state: ConversationState, text: str) -> list[str]:
    turn = engine.handle(state, ClientEvent(kind="message", at=NOW, text=text))
    return [o.text for o in turn.outbound]


@pytest.mark.parametrize(
    ("app_language", "text", "expected"),
    [
        ("en", "Dobrý den, chtěl bych si u vás nechat úschovu bitcoinů", "cs"),
        (None, "Hyvää päivää, haluaisin ostaa bitcoinia euroilla", "fi"),
        ("de", "Jó napot, bitcoint szeretnék vásárolni forintért", "hu"),
        ("nb", "hei", "no"),
        ("pt-BR", "oi", "pt"),
    ],
)
def test_the_bot_asks_in_the_language_the_client_writes(
    engine: Engine, app_language: str | None, text: str, expected: str
) -> None:
    state = ConversationState(language=app_language)
    out = say(engine, state, text)
    table = yaml.safe_load((PROMPTS / f"{expected}.yaml").read_text(encoding="utf-8"))
    question = table["source"].format(firm=engine.profile.display)
    assert question in out
    assert engine.prompt_language(state) == expected


def test_a_language_the_bot_does_not_read_goes_to_a_person(engine: Engine) -> None:
    state = ConversationState(language="ja")
    say(engine, state, "こんにちは、ビットコインを保管したいです。よろしくお願いします")
    assert state.foreign_language == "ja"
    for answer in ("Googleで検索しました、広告ではありません", "Tokyo, Japan", "custody of BTC"):
        say(engine, state, answer)
        if state.inquiries:
            break
    while state.pending and not state.inquiries:
        say(engine, state, "no")
    assert state.inquiries[0].outcome == Outcome.ESCALATE.value
    assert any("language" in r for r in state.inquiries[0].reasons)


def test_short_texts_are_not_given_a_language() -> None:
    assert detect("ok") is None
    assert detect("BTC") is None
    assert detect("Kyiv") is None


@pytest.mark.parametrize("language", LANGUAGES)
def test_classifiers_never_raise_in_any_language(
    language: str, profile: CompanyProfile, gazetteer: Gazetteer
) -> None:
    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(text=_texts(language))
    def check(text: str) -> None:
        src = classify_source(text, profile, language=language)
        assert 0.0 <= src.confidence <= 1.0
        svc = classify_service(text, profile, language=language)
        assert 0.0 <= svc.confidence <= 1.0
        res = classify_residence(text, gazetteer, language=language)
        assert 0.0 <= res.confidence <= 1.0

    check()


@pytest.mark.parametrize("language", LANGUAGES)
def test_unknown_residence_never_proceeds_in_any_language(
    language: str, engine: Engine, gazetteer: Gazetteer
) -> None:
    @settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(source=_texts(language), residence=_texts(language), service=_texts(language))
    def check(source: str, residence: str, service: str) -> None:
        state = ConversationState(language=language)
        say(engine, state, "/start")
        for answer in (source, residence, service, "?", "?", "?", "?"):
            if state.inquiries:
                break
            say(engine, state, answer)
        if not state.inquiries:
            return
        found = classify_residence(
            "\n".join(state.slots.get("residence", [])), gazetteer, language=language
        )
        if found.zone in (Zone.UNKNOWN, Zone.HUMAN):
            assert Outcome(state.inquiries[0].outcome) not in PROCEED

    check()


@pytest.mark.parametrize("language", LANGUAGES)
def test_an_eu_client_never_gets_an_allowed_promotion_in_any_language(
    language: str, profile: CompanyProfile
) -> None:
    promotions = [c.phrase for c in cues("gate", "promotion") if c.language == language]
    assert promotions, f"gate.promotion has no {language} phrases"
    served = RecipientFacts(
        zone=Zone.EU,
        outcomes=(Outcome.SERVE_EU_RESTRICTED,),
        served=(ServiceCode.CUSTODY,),
        requested=(ServiceCode.CUSTODY,),
        last_client_message_at=NOW,
    )

    @settings(max_examples=25, deadline=None)
    @given(
        promo=st.sampled_from(promotions),
        text=_texts(language),
        kind=st.sampled_from(list(MessageKind)),
        sender=st.sampled_from([Sender.SALES, Sender.SCHEDULER, Sender.COMPLIANCE]),
    )
    def check(promo: str, text: str, kind: MessageKind, sender: Sender) -> None:
        msg = OutboundMessage(sender, kind, f"{text} {promo}", NOW, reply=True)
        assert judge(msg, served, profile).verdict is not Verdict.ALLOWED

    check()
