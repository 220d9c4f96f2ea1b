"""Text for Slack: client input escaped and cut to Block Kit's limits; staff markup read back."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from triage.channels.slack_text import bullets, clean, escape, fit, from_slack, quote
from triage_sandbox.slack import control_sequences

_RAW_AMP = re.compile(r"&(?!amp;|lt;|gt;)")


@given(st.text())
def test_escaped_text_has_no_markup(text: str) -> None:
    out = escape(text)
    assert "<" not in out and ">" not in out and not _RAW_AMP.search(out)
    assert control_sequences({"text": out}) == []
    # Read back, it says what the client wrote (minus invisible characters).
    assert from_slack(out) == clean(text).strip()


@given(st.text(), st.integers(min_value=8, max_value=400))
def test_fit_and_quote_stay_within_the_limit(text: str, limit: int) -> None:
    assert len(fit(text, limit)) <= limit
    assert not re.search(r"&(?:a|am|amp|l|lt|g|gt)?$", fit(text, limit).removesuffix("…"))
    assert len(quote(text, limit)) <= limit
    assert all(line.startswith(">") for line in quote(text, limit).split("\n"))


def test_control_sequences_are_neutralised() -> None:
    hostile = "<!channel> <!here|here> <@U123> <https://evil.example|bank> & \u202egnp.exe"
    assert escape(hostile) == (
        "&lt;!channel&gt; &lt;!here|here&gt; &lt;@U123&gt; "
        "&lt;https://evil.example|bank&gt; &amp; gnp.exe"
    )
    assert fit("a&b", 5) == "a…"  # never half an entity
    assert fit("abc", 3) == "abc"


def test_bullets_say_how_many_did_not_fit() -> None:
    out = bullets([f"reason {i}" for i in range(100)], 200)
    assert len(out) <= 200 and out.endswith("more") and out.startswith("• reason 0")


def test_staff_markup_becomes_plain_text() -> None:
    assert from_slack("see <https://x.example/fees|our fees> &amp; <mailto:a@b.c|a@b.c>") == (
        "see our fees (https://x.example/fees) & a@b.c"
    )
    assert from_slack("<@U123> <!here> <#C1|sales> 1 &lt; 2") == "@U123 @here #sales 1 < 2"
    assert from_slack("<https://x.example>") == "https://x.example"
