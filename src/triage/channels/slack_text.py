"""Text for Slack: escaping what clients wrote, fitting Block Kit limits, reading what staff wrote.

Everything a client typed is shown to staff in mrkdwn, where `<!channel>` pings a channel,
`<@U123>` a person and `<http://x|label>` is a link whose label hides its target. Escaping
`&`, `<` and `>` (Slack's own three entities) turns all of these into visible text. Bidi
overrides and invisible characters are removed too: they can make a text read differently from
what it is. A client can still write `*bold*`; that is formatting, never a ping or a button.

The other way, a sales reply typed in Slack arrives with Slack's markup (escaped entities,
`<url|label>` links, `<@U1>` mentions); `from_slack` turns it into the plain text the client
gets, so the gate judges what the client would read (a link stays a link).
"""

from __future__ import annotations

import re

#: Slack's documented limits for the texts we build (Block Kit and chat.postMessage).
SECTION_TEXT_MAX = 3000
FIELD_TEXT_MAX = 2000
HEADER_TEXT_MAX = 150
BUTTON_VALUE_MAX = 2000
CONTEXT_TEXT_MAX = 2000
#: chat.postMessage accepts 40,000 characters of `text`; notifications show far less.
FALLBACK_TEXT_MAX = 3000
#: Modal titles are plain text of at most 24 characters.
MODAL_TITLE_MAX = 24

_ELLIPSIS = "…"
#: Bidi embeddings/overrides/isolates and zero-width characters (the BOM included).
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_CONTROL = re.compile(r"<([^<>]*)>")


def clean(text: str) -> str:
    """Drop characters that change how a text reads without being visible."""
    return _INVISIBLE.sub("", text)


def escape(text: str) -> str:
    """Client text made safe for mrkdwn: no pings, no links with hidden targets, no bidi tricks."""
    return "".join(_ESCAPES.get(ch, ch) for ch in clean(text))


def fit(text: str, limit: int) -> str:
    """`escape(text)`, cut so that the escaped form is at most `limit` characters.

    The cut happens on the raw text, so an entity (`&amp;`) is never split in half.
    """
    raw = clean(text)
    out: list[str] = []
    used = 0
    budget = limit - len(_ELLIPSIS)
    for i, ch in enumerate(raw):
        piece = _ESCAPES.get(ch, ch)
        if used + len(piece) > budget:
            # Whatever is left fits only if it is exactly what remains of the full text.
            rest = "".join(_ESCAPES.get(c, c) for c in raw[i:])
            if used + len(rest) <= limit:
                out.append(rest)
                return "".join(out)
            return "".join(out) + _ELLIPSIS
        out.append(piece)
        used += len(piece)
    return "".join(out)


def quote(text: str, limit: int) -> str:
    """Client text as an mrkdwn block quote, escaped and within `limit` characters."""
    text = re.sub(r"\n{3,}", "\n\n", clean(text).strip()) or "(empty)"
    lines = text.count("\n") + 1
    if lines * 4 > limit:
        # So many lines that the quote marks would crowd out the words: one line instead.
        text, lines = " ".join(text.split()), 1
    return "\n".join(">" + line for line in fit(text, limit - lines).split("\n"))


def cut(text: str, limit: int) -> str:
    """Plain text (our own, or for plain_text objects) cut to `limit` characters."""
    text = clean(text)
    return text if len(text) <= limit else text[: limit - len(_ELLIPSIS)] + _ELLIPSIS


def bullets(items: list[str] | tuple[str, ...], limit: int) -> str:
    """Escaped bullet lines, as many as fit in `limit` characters (then a count of the rest)."""
    lines: list[str] = []
    used = 0
    for n, item in enumerate(items):
        line = "• " + fit(item, 600)
        more = f"… and {len(items) - n} more"
        if used + len(line) + 1 > limit - len(more) - 1:
            lines.append(more)
            break
        lines.append(line)
        used += len(line) + 1
    return "\n".join(lines)


def _control(match: re.Match[str]) -> str:
    body = match.group(1)
    target, _, label = body.partition("|")
    if target.startswith(("@", "#")):
        return f"@{label or target[1:]}" if target[0] == "@" else f"#{label or target[1:]}"
    if target.startswith("!"):
        name = target[1:].split("^", 1)[0]
        return f"@{label or name}"
    if target.startswith("mailto:"):
        return label or target.removeprefix("mailto:")
    if label and label != target:
        return f"{label} ({target})"
    return target


def from_slack(text: str) -> str:
    """What a Slack message says in plain text: links spelled out, entities decoded."""
    replaced = _CONTROL.sub(_control, text)
    # Slack escapes exactly these three; `&amp;` last, so "&amp;lt;" stays "&lt;".
    return replaced.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").strip()
