"""The outbound gate: every message at the moment of sending, text as well as kind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from triage.domain.codes import MessageKind, Outcome, Sender, ServiceCode, Verdict, Zone
from triage.domain.gate import OutboundMessage, RecipientFacts, judge
from triage.domain.profile import CompanyProfile

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
EU_SERVED = RecipientFacts(
    zone=Zone.EU,
    outcomes=(Outcome.SERVE_EU_RESTRICTED,),
    served=(ServiceCode.CUSTODY,),
    requested=(ServiceCode.CUSTODY,),
    last_client_message_at=NOW - timedelta(hours=1),
)
NON_EU = RecipientFacts(
    zone=Zone.OUTSIDE,
    outcomes=(Outcome.HANDOFF_NON_EU,),
    requested=(ServiceCode.EXCH_FIAT,),
    last_client_message_at=NOW - timedelta(days=20),
)
DECLINED = RecipientFacts(zone=Zone.EU, outcomes=(Outcome.DECLINE,))
PENDING = RecipientFacts(zone=Zone.EU, outcomes=(Outcome.ESCALATE,))
UNKNOWN = RecipientFacts(zone=Zone.UNKNOWN, outcomes=(Outcome.ESCALATE,))
PROMOTIONAL = [
    MessageKind.FOLLOW_UP,
    MessageKind.UPSELL,
    MessageKind.NEWSLETTER,
    MessageKind.INVITE,
    MessageKind.BONUS,
]


def msg(
    kind: MessageKind,
    text: str,
    *,
    sender: Sender = Sender.SALES,
    reply: bool = False,
    at: datetime = NOW,
) -> OutboundMessage:
    return OutboundMessage(sender, kind, text, at, reply=reply)


def test_reply_about_the_served_service_is_allowed(profile: CompanyProfile) -> None:
    r = judge(
        msg(MessageKind.REPLY, "Custody costs 0.2 % a year.", reply=True), EU_SERVED, profile
    )
    assert r.verdict is Verdict.ALLOWED


def test_reply_pitching_another_product_is_an_upsell(profile: CompanyProfile) -> None:
    text = "Sure. By the way, Yield Vault pays 7% APY!"
    r = judge(msg(MessageKind.REPLY, text, reply=True), EU_SERVED, profile)
    assert r.verdict is Verdict.BLOCKED
    assert r.judged_kind is MessageKind.UPSELL


def test_reply_naming_another_service_is_blocked(profile: CompanyProfile) -> None:
    text = "We can also manage your portfolio for you."
    r = judge(msg(MessageKind.REPLY, text, reply=True), EU_SERVED, profile)
    assert r.verdict is Verdict.BLOCKED


def test_reply_outside_the_window_is_proactive(profile: CompanyProfile) -> None:
    late = NOW + timedelta(hours=profile.reply_window_hours + 1)
    r = judge(msg(MessageKind.REPLY, "Custody is ready.", reply=True, at=late), EU_SERVED, profile)
    assert r.verdict is Verdict.BLOCKED
    r = judge(msg(MessageKind.REPLY, "Custody is ready."), EU_SERVED, profile)
    assert r.verdict is Verdict.BLOCKED


@pytest.mark.parametrize("kind", PROMOTIONAL)
def test_eu_clients_get_no_promotion(kind: MessageKind, profile: CompanyProfile) -> None:
    r = judge(msg(kind, "Hello again", sender=Sender.SCHEDULER), EU_SERVED, profile)
    assert r.verdict is Verdict.BLOCKED


@pytest.mark.parametrize("kind", PROMOTIONAL)
def test_non_eu_clients_are_unrestricted(kind: MessageKind, profile: CompanyProfile) -> None:
    r = judge(msg(kind, "Earn 7% APY with Yield Vault!"), NON_EU, profile)
    assert r.verdict is Verdict.ALLOWED


def test_neutral_decline_allowed_promotional_decline_blocked(profile: CompanyProfile) -> None:
    ok = judge(msg(MessageKind.DECLINE, "We cannot take your request further."), DECLINED, profile)
    assert ok.verdict is Verdict.ALLOWED
    bad = judge(
        msg(MessageKind.DECLINE, "Sorry! Join @NorthwindNews for our news."), DECLINED, profile
    )
    assert bad.verdict is Verdict.BLOCKED


def test_declined_client_gets_no_sales_reply(profile: CompanyProfile) -> None:
    r = judge(msg(MessageKind.REPLY, "Happy to help!", reply=True), DECLINED, profile)
    assert r.verdict is Verdict.BLOCKED


@pytest.mark.parametrize("facts", [PENDING, UNKNOWN])
def test_undecided_clients_are_held(facts: RecipientFacts, profile: CompanyProfile) -> None:
    assert (
        judge(msg(MessageKind.FOLLOW_UP, "Still there?"), facts, profile).verdict is Verdict.HELD
    )
    r = judge(msg(MessageKind.REPLY, "We can do that.", reply=True), facts, profile)
    assert r.verdict is Verdict.HELD
    holding = msg(MessageKind.HOLDING, "A colleague will get back to you.", sender=Sender.BOT)
    assert judge(holding, facts, profile).verdict is Verdict.ALLOWED


def test_erasure_restricts_everything_but_transactional(profile: CompanyProfile) -> None:
    facts = RecipientFacts(zone=Zone.OUTSIDE, outcomes=(Outcome.HANDOFF_NON_EU,), restricted=True)
    assert (
        judge(msg(MessageKind.REPLY, "hi", reply=True), facts, profile).verdict is Verdict.BLOCKED
    )
    notice = msg(MessageKind.TRANSACTIONAL, "Your erasure request is recorded.", sender=Sender.BOT)
    assert judge(notice, facts, profile).verdict is Verdict.ALLOWED


def test_gate_error_fails_closed(profile: CompanyProfile) -> None:
    broken = RecipientFacts(zone=Zone.EU, outcomes=("nonsense",))  # type: ignore[arg-type]
    r = judge(msg(MessageKind.REPLY, "x", reply=True), broken, profile)
    assert r.verdict is not Verdict.ALLOWED


_facts = st.builds(
    RecipientFacts,
    zone=st.sampled_from([Zone.EU, Zone.EEA]),
    outcomes=st.lists(st.sampled_from([*Outcome, None]), max_size=3).map(tuple),
    served=st.lists(st.sampled_from(list(ServiceCode)), max_size=2).map(tuple),
    requested=st.lists(st.sampled_from(list(ServiceCode)), max_size=2).map(tuple),
    last_client_message_at=st.one_of(st.none(), st.just(NOW - timedelta(hours=1))),
    restricted=st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(PROMOTIONAL),
    sender=st.sampled_from(list(Sender)),
    text=st.text(max_size=300),
    facts=_facts,
    reply=st.booleans(),
)
def test_property_eu_recipient_never_gets_promotion(
    kind: MessageKind,
    sender: Sender,
    text: str,
    facts: RecipientFacts,
    reply: bool,
    profile: CompanyProfile,
) -> None:
    r = judge(OutboundMessage(sender, kind, text, NOW, reply=reply), facts, profile)
    assert r.verdict is not Verdict.ALLOWED


@settings(max_examples=200, deadline=None)
@given(kind=st.sampled_from(list(MessageKind)), text=st.text(max_size=200))
def test_property_unknown_residence_is_never_sent_more_than_neutral(
    kind: MessageKind, text: str, profile: CompanyProfile
) -> None:
    facts = RecipientFacts(zone=Zone.UNKNOWN, outcomes=(Outcome.ESCALATE,))
    r = judge(OutboundMessage(Sender.SALES, kind, text, NOW, reply=True), facts, profile)
    if r.verdict is Verdict.ALLOWED:
        assert kind in (
            MessageKind.DECLINE,
            MessageKind.HOLDING,
            MessageKind.TRANSACTIONAL,
            MessageKind.PROMPT,
        )


# --- the text decides as much as the declared kind ------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Ci sentiamo presto! Intanto ti aspettiamo al nostro evento a Milano.",
        "Thanks! Join our webinar next Tuesday.",
        "Retrouvez-nous à la Paris Blockchain Week",
        "Besuchen Sie uns auf der Konferenz in Berlin",
        "Te esperamos en nuestro evento",
        "Спасибо! Получите бонус 20 USDT",
        "Join our Telegram channel @NorthwindNews",
        "Our partners at Northwind Labs can help you",
        "See you at the Lisbon Web3 Summit!",
    ],
)
@pytest.mark.parametrize("kind", [MessageKind.REPLY, MessageKind.HOLDING, MessageKind.DECLINE])
def test_promotion_hidden_in_a_neutral_kind_is_blocked(
    text: str, kind: MessageKind, profile: CompanyProfile
) -> None:
    for facts in (EU_SERVED, DECLINED):
        r = judge(msg(kind, text, reply=True), facts, profile)
        assert r.verdict is Verdict.BLOCKED, (facts, r)


def test_transactional_messages(profile: CompanyProfile) -> None:
    ok = msg(
        MessageKind.TRANSACTIONAL,
        "Security notice: a new device signed in.",
        sender=Sender.SCHEDULER,
    )
    assert judge(ok, EU_SERVED, profile).verdict is Verdict.ALLOWED
    cross = msg(
        MessageKind.TRANSACTIONAL,
        "Your statement is ready. Tip: our OTC desk now handles block trades.",
        sender=Sender.SCHEDULER,
    )
    assert judge(cross, EU_SERVED, profile).verdict is Verdict.BLOCKED


def test_reply_naming_the_served_product_is_allowed(profile: CompanyProfile) -> None:
    text = "Your coins sit in cold storage with multisig."
    r = judge(msg(MessageKind.REPLY, text, reply=True), EU_SERVED, profile)
    assert r.verdict is Verdict.ALLOWED


def test_handed_off_client_with_an_open_question_is_not_free_game(
    profile: CompanyProfile,
) -> None:
    facts = RecipientFacts(
        zone=Zone.OUTSIDE,
        outcomes=(Outcome.HANDOFF_NON_EU, Outcome.ESCALATE),
        requested=(ServiceCode.CUSTODY, ServiceCode.NON_MICA),
    )
    r = judge(msg(MessageKind.NEWSLETTER, "Our news", sender=Sender.SCHEDULER), facts, profile)
    assert r.verdict is not Verdict.ALLOWED


_PROMO_SNIPPETS = [
    "Earn 7% APY with Yield Vault",
    "Invite a friend and get 20 USDT",
    "Follow us on X for news",
    "Exclusive offer this week only",
    "Join our community on Telegram",
    "Découvrez nos nouveautés",
    "Jetzt 10 % Rabatt",
    "Nuestro canal de Telegram",
    "Zapraszamy na nasze wydarzenie",
    "Volg ons op Instagram",
    "Få en bonus",
]


@settings(max_examples=150, deadline=None)
@given(
    snippet=st.sampled_from(_PROMO_SNIPPETS),
    prefix=st.text(max_size=40),
    kind=st.sampled_from([MessageKind.REPLY, MessageKind.HOLDING, MessageKind.TRANSACTIONAL]),
    sender=st.sampled_from(list(Sender)),
    facts=_facts,
)
def test_property_promotion_in_any_kind_never_reaches_an_eu_recipient(
    snippet: str,
    prefix: str,
    kind: MessageKind,
    sender: Sender,
    facts: RecipientFacts,
    profile: CompanyProfile,
) -> None:
    text = f"{prefix} {snippet}"
    r = judge(OutboundMessage(sender, kind, text, NOW, reply=True), facts, profile)
    assert r.verdict is not Verdict.ALLOWED


def test_the_flow_texts_of_every_language_pass_the_gate(profile: CompanyProfile) -> None:
    """The bot's own questions and notices must never be stopped by its own gate."""
    flows = Path(__file__).resolve().parents[1] / "flows" / "prompts"
    undecided = RecipientFacts(zone=Zone.UNKNOWN)
    texts = 0
    for file in sorted(flows.glob("*.yaml")):
        for key, value in yaml.safe_load(file.read_text(encoding="utf-8")).items():
            text = str(value).format(firm=profile.display, service="custody", years=5)
            kind = MessageKind.DECLINE if key == "outcome_DECLINE" else MessageKind.PROMPT
            if key.startswith(("outcome_", "new_inquiry")) and kind is MessageKind.PROMPT:
                kind = MessageKind.HOLDING
            for facts in (undecided, DECLINED, PENDING):
                r = judge(msg(kind, text, sender=Sender.BOT), facts, profile)
                assert r.verdict is Verdict.ALLOWED, (file.name, key, r.reason)
            texts += 1
    assert texts > 200


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from(list(MessageKind)),
    sender=st.sampled_from(list(Sender)),
    text=st.one_of(
        st.text(max_size=300),
        st.text(alphabet=st.sampled_from(list("\u200b\u202eΣİßﬁ\n @#/:.aéЖ€%")), max_size=300),
    ),
    facts=_facts,
)
def test_property_no_text_makes_the_gate_fall_back_on_its_error_path(
    kind: MessageKind,
    sender: Sender,
    text: str,
    facts: RecipientFacts,
    profile: CompanyProfile,
) -> None:
    r = judge(OutboundMessage(sender, kind, text, NOW, reply=True), facts, profile)
    assert not r.reason.startswith("gate error"), r.reason
