"""Bad input through the real engine, in process (no I/O): hypothesis over generated and
adversarial texts.

CI runs the `reliability-ci` profile (300 examples per property). The 10,000-example run:

    TRIAGE_FUZZ_PROFILE=reliability-full .venv/bin/python -m pytest -q -p no:randomly \\
        tests/reliability/test_bad_input.py

Each example of `test_any_text_in_every_slot` is a whole conversation (/start, then the text as
the answer to every question, up to 6 turns), so 10,000 examples are about 60,000 engine turns.
Slack escaping of client text is property-tested in tests/channels/test_slack_text.py; here it
is checked again with the adversarial alphabet and the sandbox's own control-sequence rules.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.reliability.conftest import CONVERSATIONS, FUZZ
from triage.channels.slack_text import escape
from triage.channels.telegram import split_text
from triage.domain.codes import Outcome, Zone
from triage.domain.profile import CompanyProfile
from triage.domain.territory import Gazetteer, classify_residence
from triage.domain.text import has_content
from triage.flows.engine import ClientEvent, ConversationState, Engine, TurnResult
from triage.flows.spec import FlowSpec
from triage_sandbox.slack import control_sequences


@pytest.fixture(scope="module")
def eng(flow: FlowSpec, profile: CompanyProfile, gazetteer: Gazetteer) -> Engine:
    """One engine for all examples (it keeps no state between calls)."""
    return Engine(flow, profile, gazetteer)


AT = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
PROCEED = {Outcome.SERVE_EU_RESTRICTED, Outcome.HANDOFF_NON_EU}

ADVERSARIAL = [
    "'; DROP TABLE client; --",
    "1' OR '1'='1",
    "Robert'); DELETE FROM audit_event WHERE ('1'='1",
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    "<!channel> <!here> <@U0123ABC> <#C0123|general> <https://evil.example|click>",
    "*bold* _it_ ~strike~ `code` ```block``` > quote [link](https://evil.example)",
    "\u202eetaicossa\u202c",  # right-to-left override
    "\u200b\u200c\u200d\u2060\ufeff",  # zero-width only
    "\u0645\u0631\u062d\u0628\u0627 \u05e9\u05dc\u05d5\u05dd",  # Arabic + Hebrew
    "😀🚀💰🇪🇺🇺🇸",
    "\x00\x01\x07\x1b[31m",
    "%s%s%n {0} {{}} ${x}",
    "../../../../etc/passwd",
    "Z̷̧̛̛a̴l̶g̸o̷",
    "ｆｒａｎｃｅ",  # fullwidth
    "Gеrmany",  # Cyrillic е
    "Fr\u200bance",
    "I live in 🇩🇪",
    "a" * 4096,
    "😀" * 2048,  # 4096 UTF-16 units
    "word " * 819 + "w",
]

texts = st.one_of(
    st.text(max_size=300),
    st.sampled_from(ADVERSARIAL),
    st.lists(st.sampled_from(ADVERSARIAL), min_size=1, max_size=4).map(" ".join),
    st.text(st.characters(codec="utf-8"), min_size=3000, max_size=4096),
    st.builds(lambda a, b: a + b, st.sampled_from(ADVERSARIAL), st.text(max_size=50)),
)

# Texts that say nothing: no letter or digit at all.
nothing = st.text(
    st.characters(categories=["Zs", "Cf", "Cc", "So", "Sk", "Sm", "Po", "Ps", "Pe", "Pd", "Mn"]),
    max_size=200,
).filter(lambda t: not has_content(t))


def converse(engine: Engine, text: str, turns: int = 6) -> list[TurnResult]:
    state = ConversationState()
    results = [engine.handle(state, ClientEvent(kind="start", at=AT, text="/start"))]
    for _ in range(turns):
        state = results[-1].state
        results.append(engine.handle(state, ClientEvent(kind="message", at=AT, text=text)))
    return results


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@CONVERSATIONS
@given(text=texts)
@example(text="a" * 4096)
@example(text="\u200b" * 4096)
def test_any_text_in_every_slot(eng: Engine, text: str) -> None:
    """No crash; every message answered with something non-empty; within Telegram's limit."""
    results = converse(eng, text)
    for turn in results:
        for intent in turn.outbound:
            assert intent.text.strip(), "an empty reply"
            parts = split_text(intent.text)
            assert parts and all(0 < utf16(p) <= 4096 for p in parts)
            assert len(intent.buttons) <= 100
    undecided = [t for t in results[1:] if not t.state.decided]
    for turn in undecided:
        assert turn.outbound, f"a client message got no answer: {text[:60]!r}"


@FUZZ
@given(text=texts)
@example(text="😀" * 2048)
@example(text="'; DROP TABLE client; --")
def test_one_turn_any_text_at_any_question(eng: Engine, text: str) -> None:
    """The 10,000-text run: one text as the answer to each question of the intake (one turn
    per question from a prepared state): no crash, a non-empty answer within Telegram's limit."""
    for state in _prepared_states(eng):
        turn = eng.handle(state, ClientEvent(kind="message", at=AT, text=text))
        if not turn.state.decided:
            assert turn.outbound
        for intent in turn.outbound:
            assert intent.text.strip()
            assert all(0 < utf16(p) <= 4096 for p in split_text(intent.text))


def _prepared_states(eng: Engine) -> list[ConversationState]:
    """Fresh copies of the states waiting for the source, residence and service answers."""
    state = ConversationState()
    states = []
    for answer in ("/start", "I googled your name", "Canada", ""):
        kind = "start" if answer == "/start" else "message"
        if answer:
            state = eng.handle(state, ClientEvent(kind=kind, at=AT, text=answer)).state
        states.append(ConversationState.from_dict(state.to_dict()))
    return states[:3]


@FUZZ
@given(text=nothing)
@example(text="")
@example(text="\u200b\u200e\u202e")
@example(text="😀🚀💰")
def test_a_text_that_says_nothing_never_proceeds(eng: Engine, text: str) -> None:
    results = converse(eng, text)
    outcomes = {d.decision.outcome for t in results for d in t.decisions}
    assert not outcomes & PROCEED, (text, outcomes)
    assert all(t.outbound for t in results[1:] if not t.state.decided)


LOOKALIKE_EU = [
    "Gеrmany",  # Cyrillic е (U+0435)
    "Fr\u200bance",
    "Frаnce",  # Cyrillic а
    "Іtaly",  # Cyrillic І
    "Ѕpain",  # Cyrillic Ѕ
    "Pоland",  # Cyrillic о
    "ｇｅｒｍａｎｙ",
    "G\u00adermany",  # soft hyphen
    "Aus\u200dtria",
    "\u202eynamreG\u202c",  # RTL override of "Germany"
    "Nеthеrlands",
    "I live in Bеrlin",
    "Pаris",
    "Ireland\u200b",
    "Νorway",  # Greek Ν: EEA
]


@FUZZ
@given(text=st.sampled_from(LOOKALIKE_EU))
def test_a_lookalike_eu_residence_is_never_taken_as_non_eu(
    gazetteer: Gazetteer, eng: Engine, text: str
) -> None:
    finding = classify_residence(text, gazetteer, language="en")
    assert finding.zone is not Zone.OUTSIDE, (text, finding)
    state = ConversationState()
    turns = [eng.handle(state, ClientEvent(kind="start", at=AT, text="/start"))]
    for answer in ("I searched your name on Google", text, "custody of bitcoin", "no"):
        turns.append(eng.handle(turns[-1].state, ClientEvent("message", AT, answer)))
    outcomes = [d.decision.outcome for t in turns for d in t.decisions]
    assert Outcome.HANDOFF_NON_EU not in outcomes, (text, outcomes)


def test_lookalike_letters_are_exhaustively_checked(gazetteer: Gazetteer) -> None:
    """Every single Cyrillic/Greek look-alike swap in every EU/EEA country name."""
    swaps = {"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "i": "і", "x": "х", "y": "у"}
    names = [
        "Austria", "Belgium", "Bulgaria", "Croatia", "Cyprus", "Czechia", "Denmark", "Estonia",
        "Finland", "France", "Germany", "Greece", "Hungary", "Ireland", "Italy", "Latvia",
        "Lithuania", "Luxembourg", "Malta", "Netherlands", "Poland", "Portugal", "Romania",
        "Slovakia", "Slovenia", "Spain", "Sweden", "Iceland", "Liechtenstein", "Norway",
    ]  # fmt: skip
    downgraded = []
    checked = 0
    for name in names:
        for i, ch in enumerate(name):
            if ch.lower() in swaps:
                fake = name[:i] + swaps[ch.lower()] + name[i + 1 :]
                checked += 1
                if classify_residence(fake, gazetteer).zone is Zone.OUTSIDE:
                    downgraded.append(fake)
    assert checked > 90
    assert downgraded == []


@FUZZ
@given(text=texts)
@example(text="<!channel> <@U0123ABC> <https://evil.example|x> &lt;!here&gt;")
def test_client_text_cannot_carry_slack_control_sequences(text: str) -> None:
    safe = escape(text)
    block = {"type": "section", "text": {"type": "mrkdwn", "text": safe}}
    message = {"text": safe, "blocks": [block]}
    assert control_sequences(message) == []
