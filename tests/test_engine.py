"""The flow engine: asks, skips what it knows, re-asks once, escalates, re-evaluates."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from triage.domain.codes import PROCEED, MessageKind, Outcome
from triage.flows.engine import ClientEvent, ConversationState, Engine, TurnResult

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def say(engine: Engine, state: ConversationState, text: str, **kw: object) -> TurnResult:
    event = ClientEvent(kind="message", at=NOW, text=text, **kw)  # type: ignore[arg-type]
    return engine.handle(state, event)


def asked(turn: TurnResult) -> str | None:
    slots = [o.slot for o in turn.outbound if o.slot]
    return slots[-1] if slots else None


def test_full_intake_in_english(engine: Engine) -> None:
    st_ = ConversationState(language="en")
    assert asked(say(engine, st_, "hi")) == "source"
    assert asked(say(engine, st_, "I typed Northwind Digital into Google, no ad")) == "residence"
    assert asked(say(engine, st_, "Berlin")) == "service"
    assert asked(say(engine, st_, "custody of 2 BTC")) == "prior_contact"
    turn = say(engine, st_, "no")
    assert turn.decisions and turn.decisions[0].decision.outcome is Outcome.SERVE_EU_RESTRICTED
    assert st_.inquiries[0].country == "DE"
    assert turn.outbound[-1].kind is MessageKind.HOLDING


def test_prompts_follow_the_client_language(engine: Engine) -> None:
    st_ = ConversationState(language="fr")
    turn = say(engine, st_, "Bonjour")
    question = [o for o in turn.outbound if o.slot == "source"][0]
    assert "Comment" in question.text or "comment" in question.text
    st2 = ConversationState(language="ja")  # no Japanese prompts: English
    turn = say(engine, st2, "konnichiwa")
    assert "How did you" in [o for o in turn.outbound if o.slot][0].text


def test_volunteered_facts_are_not_asked_again(engine: Engine) -> None:
    st_ = ConversationState(language="en")
    turn = say(engine, st_, "Hello, I live in Vienna and I want to buy bitcoin with euros")
    assert asked(turn) == "source"
    turn = say(engine, st_, "I searched for your name on Google")
    assert asked(turn) == "prior_contact"
    assert "residence" not in st_.asked and "service" not in st_.asked


def test_confused_client_is_asked_again_with_buttons_then_escalated(engine: Engine) -> None:
    st_ = ConversationState(language="en")
    say(engine, st_, "hello")
    turn = say(engine, st_, "hmm")
    retry = [o for o in turn.outbound if o.slot == "source"]
    assert retry and retry[0].buttons, "the second question offers buttons"
    assert all(data.startswith("source:") for _, data in retry[0].buttons)
    turn = say(engine, st_, "whatever")
    assert asked(turn) == "residence"
    say(engine, st_, "Madrid")
    turn = say(engine, st_, "custody")
    assert st_.inquiries[0].outcome == Outcome.ESCALATE.value
    assert any("could not answer: source" in r for r in st_.inquiries[0].reasons)


def test_button_press_is_recorded_as_the_answer(engine: Engine) -> None:
    st_ = ConversationState(language="en")
    say(engine, st_, "hello")
    say(engine, st_, "???")
    turn = engine.handle(st_, ClientEvent(kind="button", at=NOW, button="source:searched_name"))
    assert asked(turn) == "residence"
    assert st_.slots["source"][-1] == "I searched for your name"


def test_state_survives_a_round_trip_mid_conversation(engine: Engine) -> None:
    st_ = ConversationState(language="de")
    say(engine, st_, "Hallo")
    say(engine, st_, "Über Google, euren Namen gesucht")
    stored = json.dumps(st_.to_dict())
    resumed = ConversationState.from_dict(json.loads(stored))
    assert resumed.pending == "residence"
    turn = say(engine, resumed, "Ich wohne in Graz")
    assert asked(turn) == "service"


def test_start_parameter_referral_code_declines_eu_client(engine: Engine) -> None:
    st_ = ConversationState(language="en")
    engine.handle(st_, ClientEvent(kind="start", at=NOW, text="/start NW-AB12"))
    assert st_.start_param == "NW-AB12"
    say(engine, st_, "a friend told me about you")
    say(engine, st_, "Lyon, France")
    turn = say(engine, st_, "buy ETH with euros")
    assert turn.decisions[0].decision.outcome is Outcome.DECLINE
    assert turn.outbound[-1].kind is MessageKind.DECLINE


def test_another_service_opens_a_new_inquiry(engine: Engine) -> None:
    st_ = ConversationState(language="en")
    for text in ("hi", "searched your name on google", "Dubai", "custody"):
        say(engine, st_, text)
    assert st_.inquiries[0].outcome == Outcome.HANDOFF_NON_EU.value
    turn = say(engine, st_, "Do you also do staking?")
    assert len(st_.inquiries) == 2
    assert st_.inquiries[1].service == "NON_MICA"
    assert turn.decisions and turn.decisions[0].opened


def test_a_later_fact_reopens_the_decision(engine: Engine) -> None:
    st_ = ConversationState(language="en")
    for text in ("hi", "found you on google", "Ghent, Belgium", "custody", "no"):
        say(engine, st_, text)
    assert st_.inquiries[0].outcome == Outcome.SERVE_EU_RESTRICTED.value
    turn = say(engine, st_, "btw I used the code NW-ZZ99 from a friend")
    assert st_.inquiries[0].outcome == Outcome.DECLINE.value
    assert turn.decisions[0].previous == Outcome.SERVE_EU_RESTRICTED.value


def test_commands_answer_in_language_and_restrict(engine: Engine) -> None:
    st_ = ConversationState(language="en")
    turn = engine.command(st_, "privacy", NOW)
    assert "years" in turn.outbound[0].text
    turn = engine.command(st_, "delete", NOW)
    assert st_.restricted
    assert turn.events[0]["type"] == "erasure_requested"


nothing = st.one_of(
    st.text(alphabet=st.characters(categories=["P", "S", "Z", "Cf"]), max_size=40),
    st.sampled_from(["", "?", "...", "🤷", "idk", "I don't know", "-", "n/a", "\u200b\u202e"]),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(answers=st.lists(nothing, min_size=8, max_size=8))
def test_property_a_text_that_says_nothing_never_proceeds(
    engine: Engine, answers: list[str]
) -> None:
    st_ = ConversationState(language="en")
    for text in answers:
        say(engine, st_, text)
        if st_.decided:
            break
    assert st_.decided, "the engine always reaches a decision"
    assert Outcome(st_.inquiries[0].outcome) not in PROCEED


def test_the_open_source_question_is_asked_even_after_a_volunteered_mention(
    engine: Engine,
) -> None:
    st_ = ConversationState(language="en")
    turn = say(engine, st_, "Hi, a friend told me about you, I want custody, I live in Lyon")
    assert asked(turn) == "source", "the client's own answer to the open question is evidence"
    turn = say(engine, st_, "my colleague Anna mentioned your name, nobody paid her")
    assert asked(turn) == "prior_contact"
    assert len(st_.slots["source"]) == 2


def test_a_maybe_on_prior_contact_goes_to_a_person(engine: Engine) -> None:
    st_ = ConversationState(language="en")
    for text in ("hi", "I searched your name on Google", "Lyon", "custody"):
        say(engine, st_, text)
    assert st_.pending == "prior_contact"
    say(engine, st_, "maybe, I'm not sure")
    assert st_.inquiries[0].outcome == Outcome.ESCALATE.value
    assert any("unsure whether someone from the firm" in r for r in st_.inquiries[0].reasons)
    plain = ConversationState(language="en")
    for text in ("hi", "I searched your name on Google", "Lyon", "custody", "I don't know"):
        say(engine, plain, text)
    assert plain.inquiries[0].outcome == Outcome.SERVE_EU_RESTRICTED.value
