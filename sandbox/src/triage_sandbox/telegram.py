"""A loopback Telegram Bot API server for tests, the demo and anyone without a bot token.

`TelegramSandbox` is an aiohttp server on 127.0.0.1 that speaks the real Bot API over HTTP at
`/bot<token>/<method>`, so the real aiogram client runs against it unchanged:

    async with TelegramSandbox() as tg:
        bot = Bot(tg.token, session=AiohttpSession(api=TelegramAPIServer.from_base(tg.api_base)))

It plays both sides of Telegram. Towards the bot it answers getMe, getUpdates (long polling with
offset, limit and allowed_updates; one poller at a time), setWebhook / deleteWebhook /
getWebhookInfo with webhook delivery (secret token header, bounded retries, up to
max_connections requests at once, one chat at a time and in order), sendMessage,
editMessageText, editMessageReplyMarkup, answerCallbackQuery, deleteMessage, sendChatAction,
set/get/deleteMyCommands and getChat, with Telegram's JSON shapes and errors. Towards the test
(or the demo, or `triage chat` in another process) it offers a control API, as Python methods
and as JSON endpoints under `/_sandbox/`: push what a client does (text, /start with a deep-link
parameter, a shared contact, an inline-button press, any raw update), read and wait for what the
bot sent, redeliver an update, inject faults (429 with retry_after, 5xx, delays, dropped
connections) and switch on Telegram's rate limits.

Run it standalone with `python -m triage_sandbox.telegram --port 8081`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import inspect
import json
import math
import re
import signal
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from http import HTTPStatus
from typing import Any, Self

import aiohttp
from aiohttp import web

__all__ = [
    "DEFAULT_TOKEN",
    "MAX_CALLBACK_DATA",
    "MAX_TEXT",
    "ApiCall",
    "BotApiError",
    "SandboxError",
    "TelegramSandbox",
    "WebhookDelivery",
    "main",
    "parse_entities",
]

#: The token the sandbox answers to unless told otherwise (aiogram wants `<int>:<str>`).
DEFAULT_TOKEN = "123456:TEST-sandbox"
#: Telegram's limit for a message text, in UTF-16 code units after entity parsing.
MAX_TEXT = 4096
#: Telegram's limit for an inline button's callback_data, in bytes.
MAX_CALLBACK_DATA = 64
#: Where the control API lives on the sandbox's HTTP server.
CONTROL_PREFIX = "/_sandbox"

# Update types Telegram sends only when asked for them explicitly in allowed_updates.
_OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
# Parameters that arrive as JSON-serialised strings in form bodies.
_JSON_PARAMS = frozenset(
    {
        "reply_markup",
        "reply_parameters",
        "entities",
        "link_preview_options",
        "allowed_updates",
        "commands",
        "scope",
    }
)
_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_DEEP_LINK_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
_QUERY_TOO_OLD = (
    "Bad Request: query is too old and response timeout expired or query ID is invalid"
)
# How the Bot API call being carried out arrived: "http" or "webhook_reply".
_VIA: ContextVar[str] = ContextVar("via", default="http")


class BotApiError(Exception):
    """A Bot API error answer: `{"ok": false, "error_code": status, "description": ...}`."""

    def __init__(self, status: int, description: str, *, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after

    def payload(self) -> dict[str, Any]:
        """The JSON body Telegram sends for this error."""
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


class SandboxError(ValueError):
    """The control API was used wrongly (unknown message, no such button, bad argument)."""


@dataclass(frozen=True)
class ApiCall:
    """One Bot API request the sandbox answered, as the bot sent it."""

    method: str
    params: dict[str, Any]
    status: int
    description: str | None
    via: str
    at: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass(frozen=True)
class WebhookDelivery:
    """One attempt to POST an update to the bot's webhook."""

    update_id: int
    attempt: int
    url: str
    status: int | None
    error: str | None
    secret_token: str | None
    at: float

    @property
    def ok(self) -> bool:
        """Whether the webhook answered 2xx (Telegram's only test of success)."""
        return self.status is not None and 200 <= self.status < 300

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {**asdict(self), "ok": self.ok}


@dataclass
class _Fault:
    status: int | None
    retry_after: int | None
    description: str | None
    delay: float
    disconnect: bool
    raw_body: str | None


def _update_chat(update: dict[str, Any]) -> object:
    """The chat an update belongs to (webhook delivery keeps one chat's updates in order)."""
    for key in ("message", "edited_message", "channel_post", "edited_channel_post"):
        if isinstance(update.get(key), dict):
            return ("chat", update[key].get("chat", {}).get("id"))
    query = update.get("callback_query")
    if isinstance(query, dict):
        message = query.get("message")
        if isinstance(message, dict):
            return ("chat", message.get("chat", {}).get("id"))
        return ("user", query.get("from", {}).get("id"))
    return ("update", update.get("update_id"))


@dataclass
class _Pending:
    update: dict[str, Any]
    forced: bool = False
    returned: bool = False

    @property
    def update_id(self) -> int:
        return int(self.update["update_id"])


@dataclass
class _Poll:
    conflict: str | None = None


@dataclass
class _Webhook:
    url: str
    secret_token: str | None
    max_connections: int
    allowed_updates: list[str] | None
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass
class _CallbackRecord:
    chat_id: int | None
    message_id: int | None
    answered: bool = False


@dataclass
class _RateLimits:
    per_chat: float
    overall: float
    last_by_chat: dict[int, float] = field(default_factory=dict)
    recent: deque[float] = field(default_factory=deque)

    def admit(self, chat_id: int, now: float) -> int | None:
        """Record a send and return None, or return the retry_after Telegram would answer."""
        while self.recent and self.recent[0] <= now - 1.0:
            self.recent.popleft()
        wait = 0.0
        if len(self.recent) >= self.overall:
            wait = self.recent[0] + 1.0 - now
        last = self.last_by_chat.get(chat_id)
        interval = 1.0 / self.per_chat
        if last is not None and now - last < interval:
            wait = max(wait, last + interval - now)
        if wait > 0:
            return max(1, math.ceil(wait))
        self.recent.append(now)
        self.last_by_chat[chat_id] = now
        return None


# --------------------------------------------------------------------------------------------
# Parameters: JSON bodies carry typed values, form bodies strings (nested objects as JSON).


class _Params:
    """Typed access to a request's parameters, whichever body format they came in."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = dict(raw)

    def has(self, key: str) -> bool:
        return self.raw.get(key) not in (None, "")

    def text(self, key: str) -> str | None:
        value = self.raw.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            return value
        if isinstance(value, dict | list):
            return json.dumps(value)
        return str(value)

    def integer(self, key: str, *, required: bool = False) -> int | None:
        value = self.raw.get(key)
        if value is None or value == "":
            if required:
                raise BotApiError(400, f"Bad Request: {key} is empty")
            return None
        if isinstance(value, bool):
            raise BotApiError(400, f"Bad Request: invalid {key} specified")
        if isinstance(value, int):
            return value
        try:
            return int(str(value).strip())
        except ValueError:
            raise BotApiError(400, f"Bad Request: invalid {key} specified") from None

    def number(self, key: str) -> float | None:
        value = self.raw.get(key)
        if value is None or value == "":
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            raise BotApiError(400, f"Bad Request: invalid {key} specified") from None

    def flag(self, key: str) -> bool:
        value = self.raw.get(key)
        if isinstance(value, bool):
            return value
        if value is None:
            return False
        return str(value).strip().lower() in ("true", "1", "yes")

    def json(self, key: str) -> Any:
        value = self.raw.get(key)
        if isinstance(value, str):
            if value == "":
                return None
            try:
                return json.loads(value)
            except ValueError:
                raise BotApiError(400, f"Bad Request: can't parse {key} JSON object") from None
        return value

    def decoded(self) -> dict[str, Any]:
        """The parameters with JSON-encoded fields decoded (for records and events)."""
        out: dict[str, Any] = {}
        for key, value in self.raw.items():
            if key in _JSON_PARAMS and isinstance(value, str) and value:
                try:
                    out[key] = json.loads(value)
                except ValueError:
                    out[key] = value
            else:
                out[key] = value
        return out


# --------------------------------------------------------------------------------------------
# Formatting: parse_mode HTML / MarkdownV2 / Markdown into plain text plus entities, with
# Telegram's offsets (UTF-16 code units) and its "can't parse entities" errors.


class _EntityParseError(Exception):
    """Text that Telegram's parse_mode would refuse ("can't parse entities")."""


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(source: str, index: int) -> int:
    return len(source[:index].encode())


class _TextBuilder:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.pos = 0
        self.entities: list[dict[str, Any]] = []

    def add(self, text: str) -> None:
        if text:
            self.parts.append(text)
            self.pos += _utf16_len(text)

    def entity(self, kind: str, start: int, **extra: Any) -> None:
        if self.pos > start:
            self.entities.append({"type": kind, "offset": start, "length": self.pos - start})
            self.entities[-1].update({k: v for k, v in extra.items() if v is not None})

    def result(self) -> tuple[str, list[dict[str, Any]]]:
        entities = sorted(self.entities, key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.parts), entities


_HTML_KINDS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_HTML_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_HTML_ENTITY_RE = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|lt|gt|amp|quot);")
_HTML_ATTR_RE = re.compile(r"([A-Za-z_][\w-]*)(?:\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s\"'>]+)))?")
_HTML_NAME_RE = re.compile(r"([A-Za-z][\w-]*)")


def _html_entity(match: re.Match[str]) -> str:
    name = match.group(1)
    if name in _HTML_NAMED:
        return _HTML_NAMED[name]
    try:
        code = int(name[2:], 16) if name[1] in "xX" else int(name[1:])
        return chr(code)
    except (ValueError, OverflowError):
        return match.group(0)


@dataclass
class _OpenTag:
    tag: str
    kind: str
    start: int
    extra: dict[str, Any]
    language: str | None = None


def _parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    out = _TextBuilder()
    stack: list[_OpenTag] = []
    i = 0
    while i < len(source):
        nxt = min((j for j in (source.find("<", i), source.find("&", i)) if j >= 0), default=-1)
        if nxt < 0:
            out.add(source[i:])
            break
        out.add(source[i:nxt])
        i = nxt
        if source[i] == "&":
            match = _HTML_ENTITY_RE.match(source, i)
            if match:
                out.add(_html_entity(match))
                i = match.end()
            else:
                out.add("&")
                i += 1
            continue
        end = source.find(">", i + 1)
        if end < 0:
            raise _EntityParseError(f"Unclosed start tag at byte offset {_byte_offset(source, i)}")
        inner = source[i + 1 : end]
        if inner.startswith("/"):
            name = inner[1:].strip().lower()
            if not stack:
                raise _EntityParseError(
                    f'Unexpected end tag "{name}" at byte offset {_byte_offset(source, i)}'
                )
            top = stack.pop()
            if top.tag != name:
                raise _EntityParseError(
                    f"Unmatched end tag at byte offset {_byte_offset(source, i)}, "
                    f'expected "</{top.tag}>", found "</{name}>"'
                )
            if top.kind == "code" and stack and stack[-1].kind == "pre" and top.language:
                stack[-1].extra["language"] = top.language
            else:
                out.entity(top.kind, top.start, **top.extra)
        else:
            name_match = _HTML_NAME_RE.match(inner)
            name = name_match.group(1).lower() if name_match else ""
            attrs = {
                m.group(1).lower(): _HTML_ENTITY_RE.sub(
                    _html_entity, m.group(2) or m.group(3) or m.group(4) or ""
                )
                for m in _HTML_ATTR_RE.finditer(inner[len(name) :])
            }
            kind = _HTML_KINDS.get(name)
            if kind is None or (name == "span" and attrs.get("class") != "tg-spoiler"):
                raise _EntityParseError(
                    f'Unsupported start tag "{name}" at byte offset {_byte_offset(source, i)}'
                )
            extra: dict[str, Any] = {}
            language = None
            if name == "a":
                extra["url"] = attrs.get("href", "")
            elif name == "blockquote" and "expandable" in attrs:
                kind = "expandable_blockquote"
            elif name == "tg-emoji":
                extra["custom_emoji_id"] = attrs.get("emoji-id", "")
            elif name == "code" and attrs.get("class", "").startswith("language-"):
                language = attrs["class"][len("language-") :]
            stack.append(_OpenTag(name, kind, out.pos, extra, language))
        i = end + 1
    if stack:
        raise _EntityParseError(
            f'Can\'t find end tag corresponding to start tag "{stack[-1].tag}"'
        )
    return out.result()


_MD2_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
_MD2_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "text_link": "TextUrl",
}


def _md2_code(source: str, i: int, fence: str) -> tuple[str, int]:
    """Read escaped code up to the closing fence; return (content, index after the fence)."""
    chars: list[str] = []
    j = i
    while j < len(source):
        if source[j] == "\\" and j + 1 < len(source):
            chars.append(source[j + 1])
            j += 2
            continue
        if source.startswith(fence, j):
            return "".join(chars), j + len(fence)
        chars.append(source[j])
        j += 1
    return "".join(chars), -1


def _parse_markdown_v2(source: str) -> tuple[str, list[dict[str, Any]]]:
    out = _TextBuilder()
    stack: list[tuple[str, int, int]] = []  # (kind, start, source index)
    quote_start: int | None = None
    line_start = True
    i = 0

    def toggle(kind: str, index: int) -> None:
        for pos in range(len(stack) - 1, -1, -1):
            if stack[pos][0] == kind:
                _, start, _ = stack.pop(pos)
                out.entity(kind, start)
                return
        stack.append((kind, out.pos, index))

    while i < len(source):
        ch = source[i]
        if line_start and ch == ">":
            if quote_start is None:
                quote_start = out.pos
            i += 1
            line_start = False
            continue
        line_start = False
        if ch == "\\":
            if i + 1 < len(source) and 0 < ord(source[i + 1]) <= 126:
                out.add(source[i + 1])
                i += 2
                continue
            raise _EntityParseError(
                "Character '\\' is reserved and must be escaped with the preceding '\\'"
            )
        if ch == "\n":
            if quote_start is not None and not source.startswith(">", i + 1):
                out.entity("blockquote", quote_start)
                quote_start = None
            out.add("\n")
            line_start = True
            i += 1
            continue
        if ch == "`":
            fence = "```" if source.startswith("```", i) else "`"
            content, after = _md2_code(source, i + len(fence), fence)
            if after < 0:
                name = "Pre" if fence == "```" else "Code"
                raise _EntityParseError(
                    f"Can't find end of {name} entity at byte offset {_byte_offset(source, i)}"
                )
            language = None
            if fence == "```":
                first, newline, rest = content.partition("\n")
                if newline and first and not any(c.isspace() for c in first):
                    language, content = first, rest
                elif newline and not first:
                    content = rest
            start = out.pos
            out.add(content)
            out.entity("pre" if fence == "```" else "code", start, language=language)
            i = after
            continue
        if ch == "*":
            toggle("bold", i)
            i += 1
        elif ch == "_":
            if source.startswith("__", i):
                toggle("underline", i)
                i += 2
            else:
                toggle("italic", i)
                i += 1
        elif ch == "~":
            toggle("strikethrough", i)
            i += 1
        elif ch == "|" and source.startswith("||", i):
            toggle("spoiler", i)
            i += 2
        elif ch == "[":
            stack.append(("text_link", out.pos, i))
            i += 1
        elif ch == "]" and any(kind == "text_link" for kind, _, _ in stack):
            kind, start, index = stack[-1]
            if kind != "text_link":
                raise _EntityParseError(
                    f"Can't find end of {_MD2_NAMES[kind]} entity at byte offset "
                    f"{_byte_offset(source, index)}"
                )
            if not source.startswith("(", i + 1):
                raise _EntityParseError(
                    f"Can't find end of a URL at byte offset {_byte_offset(source, i)}"
                )
            url, after = _md2_code(source, i + 2, ")")
            if after < 0:
                raise _EntityParseError(
                    f"Can't find end of a URL at byte offset {_byte_offset(source, i)}"
                )
            stack.pop()
            out.entity("text_link", start, url=url)
            i = after
        elif ch in _MD2_RESERVED:
            raise _EntityParseError(
                f"Character '{ch}' is reserved and must be escaped with the preceding '\\'"
            )
        else:
            out.add(ch)
            i += 1
    if quote_start is not None:
        out.entity("blockquote", quote_start)
    if stack:
        kind, _, index = stack[-1]
        raise _EntityParseError(
            f"Can't find end of {_MD2_NAMES[kind]} entity at byte offset "
            f"{_byte_offset(source, index)}"
        )
    return out.result()


def _parse_markdown(source: str) -> tuple[str, list[dict[str, Any]]]:
    out = _TextBuilder()
    i = 0

    def unclosed(index: int) -> _EntityParseError:
        return _EntityParseError(
            f"Can't find end of the entity starting at byte offset {_byte_offset(source, index)}"
        )

    while i < len(source):
        ch = source[i]
        if ch == "\\" and i + 1 < len(source) and source[i + 1] in "_*`[":
            out.add(source[i + 1])
            i += 2
        elif ch in "*_":
            end = source.find(ch, i + 1)
            if end < 0:
                raise unclosed(i)
            start = out.pos
            out.add(source[i + 1 : end])
            out.entity("bold" if ch == "*" else "italic", start)
            i = end + 1
        elif ch == "`":
            fence = "```" if source.startswith("```", i) else "`"
            end = source.find(fence, i + len(fence))
            if end < 0:
                raise unclosed(i)
            content = source[i + len(fence) : end]
            language = None
            if fence == "```":
                first, newline, rest = content.partition("\n")
                if newline and first and " " not in first:
                    language, content = first, rest
            start = out.pos
            out.add(content)
            out.entity("pre" if fence == "```" else "code", start, language=language)
            i = end + len(fence)
        elif ch == "[":
            close = source.find("]", i + 1)
            url_end = source.find(")", close + 2) if close >= 0 else -1
            if close < 0 or not source.startswith("(", close + 1) or url_end < 0:
                raise unclosed(i)
            start = out.pos
            out.add(source[i + 1 : close])
            out.entity("text_link", start, url=source[close + 2 : url_end])
            i = url_end + 1
        else:
            out.add(ch)
            i += 1
    return out.result()


def parse_entities(text: str, parse_mode: str | None) -> tuple[str, list[dict[str, Any]]]:
    """Turn formatted text into Telegram's (plain text, entities), or raise a 400 BotApiError.

    Offsets and lengths are UTF-16 code units, as in the Bot API. Supported: HTML, MarkdownV2
    (without expandable block quotes) and legacy Markdown; None or "" means plain text.
    """
    mode = (parse_mode or "").strip().lower()
    parsers = {"html": _parse_html, "markdownv2": _parse_markdown_v2, "markdown": _parse_markdown}
    if not mode:
        return text, []
    parser = parsers.get(mode)
    if parser is None:
        raise BotApiError(400, f"Bad Request: unsupported parse_mode {parse_mode!r}")
    try:
        return parser(text)
    except _EntityParseError as exc:
        raise BotApiError(400, f"Bad Request: can't parse entities: {exc}") from None


# --------------------------------------------------------------------------------------------


def _update_type(update: Mapping[str, Any]) -> str | None:
    return next((key for key in update if key != "update_id"), None)


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _fail(error: BotApiError) -> web.Response:
    return web.json_response(error.payload(), status=error.status)


def _default_description(status: int, retry_after: int | None) -> str:
    if status == 429:
        return f"Too Many Requests: retry after {retry_after or 1}"
    if status == 403:
        return "Forbidden: bot was blocked by the user"
    with contextlib.suppress(ValueError):
        phrase = HTTPStatus(status).phrase
        return f"Bad Request: {phrase}" if status == 400 else phrase
    return "Error"


def _require_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SandboxError(f"{name} must be an integer, got {value!r}")
    return value


class TelegramSandbox:
    """The loopback Bot API server plus its control API (see the module docstring).

    Bind with `async with TelegramSandbox() as tg:` or `await tg.start()` / `await tg.stop()`;
    `tg.api_base` goes to aiogram's `TelegramAPIServer.from_base`. `port=0` picks a free port.
    Webhook retries wait `webhook_retry_delay * 2**(attempt - 1)` seconds, at most
    `webhook_max_retry_delay` when given, between at most `webhook_max_attempts` attempts
    (Telegram's own pauses are far longer). `clock` is the
    monotonic clock the rate limits use; tests may pass a controllable one.
    """

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        host: str = "127.0.0.1",
        port: int = 0,
        bot_username: str = "triage_sandbox_bot",
        bot_name: str = "Triage (sandbox)",
        first_update_id: int = 1,
        webhook_max_attempts: int = 5,
        webhook_retry_delay: float = 0.05,
        webhook_timeout: float = 10.0,
        webhook_max_retry_delay: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        bot_id, sep, secret = token.partition(":")
        if not sep or not bot_id.isdigit() or not secret:
            raise SandboxError(f"token must look like '<digits>:<text>', got {token!r}")
        self.token = token
        self.host = host
        self._requested_port = port
        self.port = port
        self.bot_user: dict[str, Any] = {
            "id": int(bot_id),
            "is_bot": True,
            "first_name": bot_name,
            "username": bot_username,
        }
        self._webhook_max_attempts = max(1, webhook_max_attempts)
        self._webhook_retry_delay = webhook_retry_delay
        self._webhook_max_retry_delay = webhook_max_retry_delay
        self._webhook_timeout = webhook_timeout
        self._clock = clock

        self._cond = asyncio.Condition()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()

        self._next_update_id = first_update_id
        self._next_callback_id = 1
        self._queue: list[_Pending] = []
        self._updates: dict[int, dict[str, Any]] = {}
        self._allowed: frozenset[str] | None = None
        self._poll: _Poll | None = None
        self._webhook: _Webhook | None = None
        self._delivering = False

        self._users: dict[int, dict[str, Any]] = {}
        self._chats: dict[int, dict[str, Any]] = {}
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._deleted: set[tuple[int, int]] = set()
        self._chat_log: dict[int, list[int]] = {}
        self._next_message_id: dict[int, int] = {}
        self._sent: list[tuple[int, int]] = []
        self._sent_cursor = 0
        self._sent_cursor_by_chat: dict[int, int] = {}
        self._reply_keyboards: dict[int, dict[str, Any]] = {}
        self._blocked: set[int] = set()
        self._callbacks: dict[str, _CallbackRecord] = {}
        self._commands: dict[tuple[str, str], list[dict[str, str]]] = {}
        self._events: list[dict[str, Any]] = []
        self._faults: dict[str, deque[_Fault]] = {}
        self._limits: _RateLimits | None = None

        #: Every Bot API request answered, in order.
        self.calls: list[ApiCall] = []
        #: Every webhook delivery attempt, in order.
        self.deliveries: list[WebhookDelivery] = []
        #: Updates dropped because allowed_updates excluded their type.
        self.filtered_updates: list[dict[str, Any]] = []
        #: answerCallbackQuery calls: {"callback_query_id", "text", "show_alert", "url"}.
        self.callback_answers: list[dict[str, Any]] = []

        self._methods: dict[str, Callable[[_Params], Awaitable[Any]]] = {
            "getme": self._get_me,
            "getupdates": self._get_updates,
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "sendmessage": self._send_message,
            "editmessagetext": self._edit_message_text,
            "editmessagereplymarkup": self._edit_message_reply_markup,
            "answercallbackquery": self._answer_callback_query,
            "deletemessage": self._delete_message,
            "sendchataction": self._send_chat_action,
            "setmycommands": self._set_my_commands,
            "getmycommands": self._get_my_commands,
            "deletemycommands": self._delete_my_commands,
            "getchat": self._get_chat,
        }

    # ---------------------------------------------------------------------------- lifecycle

    @property
    def api_base(self) -> str:
        """Base URL for `TelegramAPIServer.from_base` (no trailing slash)."""
        return f"http://{self.host}:{self.port}"

    @property
    def control_base(self) -> str:
        """Base URL of the HTTP control API."""
        return f"{self.api_base}{CONTROL_PREFIX}"

    async def start(self) -> Self:
        """Bind the server (an ephemeral port when port=0) and start webhook delivery."""
        if self._runner is not None:
            return self
        self._closing = False
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        self._add_control_routes(app)
        # A parked long poll must not hold teardown for aiohttp's default 60 s; stop() wakes it
        # anyway. Cancelling handlers on disconnect lets a dropped poller stop counting.
        runner = web.AppRunner(
            app, shutdown_timeout=0.5, access_log=None, handler_cancellation=True
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._requested_port)
        await site.start()
        self.port = int(runner.addresses[0][1])
        self._runner = runner
        self._http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self._webhook_timeout)
        )
        self._webhook_task = asyncio.create_task(self._webhook_loop())
        return self

    async def stop(self) -> None:
        """Wake parked long polls and waiters, stop delivering, close the server quickly."""
        async with self._cond:
            self._closing = True
            self._cond.notify_all()
        tasks = [t for t in (self._webhook_task, *self._background) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._webhook_task = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------- client-side actions

    async def push_text(
        self,
        *,
        user_id: int,
        text: str,
        first_name: str | None = None,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
        chat_id: int | None = None,
        chat_type: str | None = None,
        chat_title: str | None = None,
        reply_to_message_id: int | None = None,
    ) -> dict[str, Any]:
        """A client writes `text` (a private chat with the bot unless chat_id says otherwise).

        A leading /command gets a bot_command entity, as Telegram adds. Returns the update.
        """
        user = self._touch_user(user_id, first_name, last_name, username, language_code)
        chat = self._touch_chat(user, chat_id, chat_type, chat_title)
        message = self._client_message(chat, user, reply_to_message_id)
        message["text"] = text
        command = re.match(r"/[A-Za-z0-9_]+(@[A-Za-z0-9_]+)?", text)
        if command:
            length = _utf16_len(command.group(0))
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        return await self._enqueue_new({"message": message})

    async def push_start(
        self,
        *,
        user_id: int,
        payload: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
    ) -> dict[str, Any]:
        """A client opens `t.me/<bot>?start=<payload>` (or just presses Start): `/start payload`.

        Telegram allows 1-64 characters A-Z a-z 0-9 _ - in the payload; others are refused.
        """
        if payload is not None and not _DEEP_LINK_RE.match(payload):
            raise SandboxError(
                "a deep-link payload is 1-64 characters of A-Z, a-z, 0-9, _ and -; "
                f"got {payload!r}"
            )
        text = f"/start {payload}" if payload else "/start"
        return await self.push_text(
            user_id=user_id,
            text=text,
            first_name=first_name,
            last_name=last_name,
            username=username,
            language_code=language_code,
        )

    async def push_contact(
        self,
        *,
        user_id: int,
        phone_number: str,
        first_name: str | None = None,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
        contact_user_id: int | None = None,
        contact_first_name: str | None = None,
    ) -> dict[str, Any]:
        """A client shares a contact; by default their own (contact.user_id == from.id).

        Pass contact_user_id (or 0 for a card without a Telegram account) to share someone
        else's card instead.
        """
        user = self._touch_user(user_id, first_name, last_name, username, language_code)
        chat = self._touch_chat(user, None, None, None)
        message = self._client_message(chat, user, None)
        owner = user_id if contact_user_id is None else contact_user_id
        contact: dict[str, Any] = {
            "phone_number": phone_number,
            "first_name": contact_first_name or user["first_name"],
        }
        if owner:
            contact["user_id"] = owner
        if owner == user_id and "last_name" in user:
            contact["last_name"] = user["last_name"]
        message["contact"] = contact
        return await self._enqueue_new({"message": message})

    async def push_callback(
        self,
        *,
        user_id: int,
        data: str | None = None,
        button_text: str | None = None,
        message_id: int | None = None,
        chat_id: int | None = None,
        first_name: str | None = None,
        language_code: str | None = None,
    ) -> dict[str, Any]:
        """A client presses an inline button on a message the bot sent.

        The message is `message_id` in the chat (default: the bot's latest message there that
        still has an inline keyboard); the button is the one with callback_data `data` or label
        `button_text` (default: the only button). The button must be on the message, as in a
        real client; push a raw update to forge anything else.
        """
        user = self._touch_user(user_id, first_name, None, None, language_code)
        chat_key = user_id if chat_id is None else chat_id
        key = self._find_keyboard_message(chat_key, message_id)
        message = self._messages[key]
        buttons = [b for row in message["reply_markup"]["inline_keyboard"] for b in row]
        candidates = [
            b
            for b in buttons
            if "callback_data" in b
            and (data is None or b["callback_data"] == data)
            and (button_text is None or b["text"] == button_text)
        ]
        if len(candidates) != 1:
            labels = [(b.get("text"), b.get("callback_data")) for b in buttons]
            raise SandboxError(
                f"message {key[1]} in chat {chat_key} has no single button matching "
                f"data={data!r} text={button_text!r}; its buttons are {labels}"
            )
        callback_id = f"{self.bot_user['id']}{self._next_callback_id:010d}"
        self._next_callback_id += 1
        self._callbacks[callback_id] = _CallbackRecord(chat_id=key[0], message_id=key[1])
        query = {
            "id": callback_id,
            "from": user,
            "message": copy.deepcopy(message),
            "chat_instance": str((key[0] * 7919 + 104729) % 10**18),
            "data": candidates[0]["callback_data"],
        }
        return await self._enqueue_new({"callback_query": query})

    async def push_update(self, update: Mapping[str, Any]) -> dict[str, Any]:
        """Queue any raw update (edited messages, stickers, unknown fields...) as Telegram would.

        An update_id is assigned when missing. Chats and users in a message are remembered, so
        the bot can answer them.
        """
        raw = copy.deepcopy(dict(update))
        if not isinstance(raw.get("update_id", 0), int):
            raise SandboxError("update_id must be an integer")
        for key in ("message", "edited_message", "channel_post", "edited_channel_post"):
            msg = raw.get(key)
            if isinstance(msg, dict) and isinstance(msg.get("chat"), dict):
                chat = msg["chat"]
                if isinstance(chat.get("id"), int):
                    self._chats.setdefault(chat["id"], chat)
                sender = msg.get("from")
                if isinstance(sender, dict) and isinstance(sender.get("id"), int):
                    self._users.setdefault(sender["id"], sender)
                if isinstance(msg.get("message_id"), int) and isinstance(chat.get("id"), int):
                    self._store_message(chat["id"], msg)
        query = raw.get("callback_query")
        if isinstance(query, dict) and isinstance(query.get("id"), str):
            # A forged or hand-built press can still be answered, as Telegram would allow.
            message = query.get("message")
            chat = message.get("chat") if isinstance(message, dict) else None
            self._callbacks.setdefault(
                query["id"],
                _CallbackRecord(
                    chat_id=chat.get("id") if isinstance(chat, dict) else None,
                    message_id=message.get("message_id") if isinstance(message, dict) else None,
                ),
            )
        if "update_id" in raw:
            self._updates[raw["update_id"]] = raw
            self._next_update_id = max(self._next_update_id, raw["update_id"] + 1)
            await self._enqueue(raw)
            return copy.deepcopy(raw)
        return await self._enqueue_new(raw)

    async def redeliver(self, update_id: int) -> dict[str, Any]:
        """Deliver an earlier update again, same update_id, even if the bot confirmed it."""
        update = self._updates.get(update_id)
        if update is None:
            raise SandboxError(f"no update {update_id} was ever sent")
        await self._enqueue(copy.deepcopy(update), forced=True)
        return copy.deepcopy(update)

    def jump_update_ids(self, n: int) -> int:
        """Skip `n` update ids, as Telegram's counter jumps after a quiet week; the next id."""
        if n < 0:
            raise SandboxError("update ids only ever increase")
        self._next_update_id += n
        return self._next_update_id

    async def block_bot(self, user_id: int, *, blocked: bool = True) -> None:
        """The client blocks (or unblocks) the bot: sends to them get 403 Forbidden."""
        async with self._cond:
            if blocked:
                self._blocked.add(user_id)
            else:
                self._blocked.discard(user_id)

    # ---------------------------------------------------------------------- bot-side reading

    def sent(
        self, chat_id: int | None = None, *, include_deleted: bool = False
    ) -> list[dict[str, Any]]:
        """Messages the bot sent (in one chat or all), in order, in their current state."""
        return [
            copy.deepcopy(self._messages[key])
            for key in self._sent
            if (chat_id is None or key[0] == chat_id)
            and (include_deleted or key not in self._deleted)
        ]

    def messages(self, chat_id: int) -> list[dict[str, Any]]:
        """The chat's transcript, both directions, in order, as it now stands (no deleted)."""
        return [
            copy.deepcopy(self._messages[(chat_id, mid)])
            for mid in self._chat_log.get(chat_id, [])
            if (chat_id, mid) not in self._deleted
        ]

    def events(self, *, chat_id: int | None = None, after: int = 0) -> list[dict[str, Any]]:
        """What the bot did (send, edit_text, edit_reply_markup, delete, chat_action,
        answer_callback), each with a `seq`; those after seq `after`."""
        return [
            copy.deepcopy(e)
            for e in self._events
            if e["seq"] > after and (chat_id is None or e["chat_id"] == chat_id)
        ]

    def reply_keyboard(self, chat_id: int) -> dict[str, Any] | None:
        """The reply keyboard the bot last showed in the chat (None after ReplyKeyboardRemove)."""
        keyboard = self._reply_keyboards.get(chat_id)
        return copy.deepcopy(keyboard) if keyboard else None

    def commands(
        self, *, language_code: str = "", scope: dict[str, Any] | None = None
    ) -> list[dict[str, str]]:
        """The command list the bot set for this scope and language."""
        return copy.deepcopy(self._commands.get(self._commands_key(scope, language_code), []))

    def calls_to(self, method: str) -> list[ApiCall]:
        """Requests for one Bot API method (case-insensitive)."""
        return [c for c in self.calls if c.method.lower() == method.lower()]

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates not yet confirmed by getUpdates nor delivered to the webhook."""
        return [copy.deepcopy(p.update) for p in self._queue]

    @property
    def polling(self) -> bool:
        """Whether a getUpdates long poll is parked right now."""
        return self._poll is not None

    @property
    def webhook_url(self) -> str | None:
        """The webhook URL set by the bot, if any."""
        return self._webhook.url if self._webhook else None

    def webhook_info(self) -> dict[str, Any]:
        """What getWebhookInfo would answer."""
        info: dict[str, Any] = {
            "url": self._webhook.url if self._webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._queue),
        }
        hook = self._webhook
        if hook is not None:
            info["max_connections"] = hook.max_connections
            if hook.allowed_updates is not None:
                info["allowed_updates"] = list(hook.allowed_updates)
            if hook.last_error_date is not None:
                info["last_error_date"] = hook.last_error_date
                info["last_error_message"] = hook.last_error_message
        return info

    # ------------------------------------------------------------------------------ waiting

    async def wait_until(self, predicate: Callable[[], bool], *, timeout: float = 5.0) -> None:
        """Wait until `predicate()` (over sandbox state) holds; re-checked on every change."""
        async with self._cond:
            try:
                async with asyncio.timeout(timeout):
                    await self._cond.wait_for(lambda: self._closing or predicate())
            except TimeoutError:
                raise TimeoutError(f"condition not met within {timeout}s") from None
            if not predicate():
                raise SandboxError("the sandbox stopped while waiting")

    async def wait_sent(
        self, n: int = 1, *, chat_id: int | None = None, timeout: float = 5.0
    ) -> list[dict[str, Any]]:
        """The next `n` messages the bot sends (in `chat_id`, or anywhere), in order.

        "Next" is relative to a read cursor kept per chat (and one for all chats): each call
        consumes what it returns, so a reply sent before the call is not missed.
        """

        def keys() -> list[tuple[int, int]]:
            return [k for k in self._sent if chat_id is None or k[0] == chat_id]

        def cursor() -> int:
            if chat_id is None:
                return self._sent_cursor
            return self._sent_cursor_by_chat.get(chat_id, 0)

        async with self._cond:
            try:
                async with asyncio.timeout(timeout):
                    await self._cond.wait_for(lambda: self._closing or len(keys()) - cursor() >= n)
            except TimeoutError:
                got = [self._messages[k].get("text") for k in keys()[cursor() :]]
                where = "any chat" if chat_id is None else f"chat {chat_id}"
                raise TimeoutError(
                    f"waited {timeout}s for {n} bot message(s) in {where}; got {len(got)}: {got}"
                ) from None
            if len(keys()) - cursor() < n:
                raise SandboxError("the sandbox stopped while waiting")
            start = cursor()
            batch = keys()[start : start + n]
            if chat_id is None:
                self._sent_cursor += n
            else:
                self._sent_cursor_by_chat[chat_id] = start + n
            return [copy.deepcopy(self._messages[k]) for k in batch]

    async def wait_events(
        self,
        n: int = 1,
        *,
        after: int = 0,
        chat_id: int | None = None,
        kinds: Iterable[str] | None = None,
        timeout: float = 5.0,
    ) -> list[dict[str, Any]]:
        """Wait for `n` bot events after seq `after` (optionally of some kinds, in one chat)."""
        wanted = set(kinds) if kinds is not None else None

        def matching() -> list[dict[str, Any]]:
            return [
                e
                for e in self._events
                if e["seq"] > after
                and (chat_id is None or e["chat_id"] == chat_id)
                and (wanted is None or e["kind"] in wanted)
            ]

        async with self._cond:
            try:
                async with asyncio.timeout(timeout):
                    await self._cond.wait_for(lambda: self._closing or len(matching()) >= n)
            except TimeoutError:
                raise TimeoutError(
                    f"waited {timeout}s for {n} bot event(s); got {len(matching())}"
                ) from None
            return copy.deepcopy(matching()[:n])

    async def wait_deliveries(self, n: int, *, timeout: float = 5.0) -> list[WebhookDelivery]:
        """Wait until at least `n` webhook delivery attempts were made; all attempts so far."""
        await self.wait_until(lambda: len(self.deliveries) >= n, timeout=timeout)
        return list(self.deliveries)

    # ------------------------------------------------------------------- faults and limits

    def fail_next(
        self,
        method: str,
        *,
        status: int | None = 500,
        retry_after: int | None = None,
        description: str | None = None,
        delay: float = 0.0,
        times: int = 1,
        disconnect: bool = False,
        raw_body: str | None = None,
    ) -> None:
        """Make the next `times` calls of `method` misbehave.

        status: answer this error (429 gets `parameters.retry_after`, default 1); None means
        carry the call out normally (useful with `delay`). delay: hold the request this long
        first; the call still takes effect even if the client gave up meanwhile, like a
        response lost in transit. disconnect: close the connection without answering (the call
        has no effect). raw_body: answer `status` with this non-JSON body (an nginx error page).
        """
        if status == 429 and retry_after is None:
            retry_after = 1
        fault = _Fault(status, retry_after, description, delay, disconnect, raw_body)
        queue = self._faults.setdefault(method.lower(), deque())
        queue.extend(fault for _ in range(times))

    def delay_next(self, method: str, seconds: float, *, times: int = 1) -> None:
        """Hold the next `times` calls of `method` for `seconds`, then carry them out."""
        self.fail_next(method, status=None, delay=seconds, times=times)

    def clear_faults(self) -> None:
        """Forget all injected faults."""
        self._faults.clear()

    def enforce_rate_limits(
        self, enabled: bool = True, *, per_chat: float = 1.0, overall: float = 30.0
    ) -> None:
        """Answer 429 with retry_after beyond Telegram's limits for sendMessage (about 30
        messages a second overall, one a second per chat). Refused sends do not count."""
        self._limits = _RateLimits(per_chat=per_chat, overall=overall) if enabled else None

    # ------------------------------------------------------------------- internals: state

    def _touch_user(
        self,
        user_id: int,
        first_name: str | None,
        last_name: str | None,
        username: str | None,
        language_code: str | None,
    ) -> dict[str, Any]:
        """The user as Telegram would show them now: given fields override earlier ones, an
        empty string removes one, and a new user is "Client" speaking English by default."""
        _require_int(user_id, "user_id")
        if user_id <= 0:
            raise SandboxError("a user id is a positive integer")
        known = self._users.get(user_id)
        user: dict[str, Any] = (
            dict(known)
            if known
            else {"id": user_id, "is_bot": False, "first_name": "Client", "language_code": "en"}
        )
        if first_name:
            user["first_name"] = first_name
        for key, value in (
            ("last_name", last_name),
            ("username", username),
            ("language_code", language_code),
        ):
            if value:
                user[key] = value
            elif value == "":
                user.pop(key, None)
        self._users[user_id] = user
        return copy.deepcopy(user)

    def _touch_chat(
        self,
        user: dict[str, Any],
        chat_id: int | None,
        chat_type: str | None,
        title: str | None,
    ) -> dict[str, Any]:
        if chat_id is None or chat_id == user["id"]:
            chat = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
            for key in ("last_name", "username"):
                if key in user:
                    chat[key] = user[key]
        else:
            _require_int(chat_id, "chat_id")
            kind = chat_type or "supergroup"
            if kind not in ("group", "supergroup"):
                raise SandboxError("a chat other than the user's own is a group or supergroup")
            chat = {"id": chat_id, "type": kind, "title": title or "Sandbox group"}
        self._chats[chat["id"]] = chat
        return chat

    def _new_message_id(self, chat_id: int) -> int:
        mid = self._next_message_id.get(chat_id, 1)
        self._next_message_id[chat_id] = mid + 1
        return mid

    def _store_message(self, chat_id: int, message: dict[str, Any]) -> None:
        key = (chat_id, int(message["message_id"]))
        if key not in self._messages:
            self._chat_log.setdefault(chat_id, []).append(key[1])
        self._messages[key] = message
        self._next_message_id[chat_id] = max(self._next_message_id.get(chat_id, 1), key[1] + 1)

    def _client_message(
        self, chat: dict[str, Any], user: dict[str, Any], reply_to: int | None
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": self._new_message_id(chat["id"]),
            "from": user,
            "chat": chat,
            "date": int(time.time()),
        }
        if reply_to is not None:
            original = self._messages.get((chat["id"], reply_to))
            if original is None:
                raise SandboxError(f"no message {reply_to} in chat {chat['id']} to reply to")
            message["reply_to_message"] = self._quoted(original)
        self._store_message(chat["id"], message)
        return message

    @staticmethod
    def _quoted(message: dict[str, Any]) -> dict[str, Any]:
        return {k: copy.deepcopy(v) for k, v in message.items() if k != "reply_to_message"}

    def _find_keyboard_message(self, chat_id: int, message_id: int | None) -> tuple[int, int]:
        if message_id is not None:
            key = (chat_id, message_id)
            message = self._messages.get(key)
            if message is None or key in self._deleted:
                raise SandboxError(f"no message {message_id} in chat {chat_id}")
            if message.get("from", {}).get("id") != self.bot_user["id"]:
                raise SandboxError(f"message {message_id} in chat {chat_id} is not the bot's")
            if not message.get("reply_markup", {}).get("inline_keyboard"):
                raise SandboxError(f"message {message_id} in chat {chat_id} has no buttons")
            return key
        for key in reversed(self._sent):
            if key[0] == chat_id and key not in self._deleted:
                if self._messages[key].get("reply_markup", {}).get("inline_keyboard"):
                    return key
        raise SandboxError(f"the bot sent no message with inline buttons in chat {chat_id}")

    def _is_allowed(self, update: Mapping[str, Any]) -> bool:
        kind = _update_type(update)
        if kind is None:
            return True
        if self._allowed is None:
            return kind not in _OPT_IN_UPDATES
        return kind in self._allowed

    def _set_allowed(self, allowed: Any) -> None:
        if not isinstance(allowed, list) or not all(isinstance(a, str) for a in allowed):
            raise BotApiError(400, "Bad Request: can't parse allowed_updates JSON object")
        self._allowed = frozenset(allowed) if allowed else None

    async def _enqueue_new(self, body: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": self._next_update_id, **body}
        self._next_update_id += 1
        self._updates[update["update_id"]] = update
        await self._enqueue(update)
        return copy.deepcopy(update)

    async def _enqueue(self, update: dict[str, Any], *, forced: bool = False) -> None:
        async with self._cond:
            if self._is_allowed(update):
                self._queue.append(_Pending(copy.deepcopy(update), forced=forced))
            else:
                self.filtered_updates.append(copy.deepcopy(update))
            self._cond.notify_all()

    def _confirm(self, offset: int | None) -> None:
        if not offset:
            return
        if offset > 0:
            self._queue = [
                p for p in self._queue if p.update_id >= offset or (p.forced and not p.returned)
            ]
        else:
            self._queue = self._queue[offset:]

    def _record_event(
        self,
        kind: str,
        *,
        chat_id: int | None,
        message_id: int | None,
        params: dict[str, Any],
    ) -> None:
        message = self._messages.get((chat_id, message_id)) if chat_id and message_id else None
        self._events.append(
            {
                "seq": len(self._events) + 1,
                "kind": kind,
                "chat_id": chat_id,
                "message_id": message_id,
                "message": copy.deepcopy(message),
                "params": params,
                "via": _VIA.get(),
                "at": time.time(),
            }
        )

    @staticmethod
    def _commands_key(scope: Any, language_code: str | None) -> tuple[str, str]:
        scope_key = json.dumps(scope, sort_keys=True) if scope else '{"type": "default"}'
        return scope_key, language_code or ""

    # --------------------------------------------------------------- internals: HTTP / Bot API

    async def _read_params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.method != "POST" or not request.body_exists:
            return params
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise BotApiError(400, "Bad Request: can't parse JSON body") from None
            if not isinstance(body, dict):
                raise BotApiError(400, "Bad Request: the JSON body must be an object")
            params.update(body)
        else:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, str):
                    params[key] = value
                else:
                    name = value.filename if isinstance(value, web.FileField) else key
                    params[key] = f"<file {name}>"
        return params

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        name = method.lower()
        try:
            params = await self._read_params(request)
        except BotApiError as exc:
            return _fail(exc)
        if request.match_info["token"] != self.token:
            return self._answer(method, params, BotApiError(401, "Unauthorized"), "http")
        if name not in self._methods:
            return self._answer(method, params, BotApiError(404, "Not Found"), "http")
        faults = self._faults.get(name)
        fault = faults.popleft() if faults else None
        if fault is not None and fault.disconnect:
            self._record_call(method, params, 0, "connection dropped by fault", "http")
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=500)
        if name == "getupdates":
            # Cancellable: a poller that hangs up stops counting as the active poller.
            return await self._execute(method, params, fault, "http")
        # Anything else completes even if the client hangs up (a response lost in transit).
        task = asyncio.ensure_future(self._execute(method, params, fault, "http"))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return await asyncio.shield(task)

    async def _execute(
        self, method: str, params: dict[str, Any], fault: _Fault | None, via: str
    ) -> web.Response:
        if fault is not None and fault.delay > 0:
            await self._pause(fault.delay)
        if fault is not None and fault.status is not None:
            if fault.raw_body is not None:
                self._record_call(method, params, fault.status, fault.raw_body, via)
                return web.Response(
                    status=fault.status, text=fault.raw_body, content_type="text/html"
                )
            description = fault.description or _default_description(
                fault.status, fault.retry_after
            )
            error = BotApiError(fault.status, description, retry_after=fault.retry_after)
            return self._answer(method, params, error, via)
        reset = _VIA.set(via)
        try:
            result = await self._methods[method.lower()](_Params(params))
        except BotApiError as exc:
            return self._answer(method, params, exc, via)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            # Odd parameter shapes get Telegram's kind of answer, never a 500 or a dead loop.
            return self._answer(method, params, BotApiError(400, f"Bad Request: {exc}"), via)
        finally:
            _VIA.reset(reset)
        self._record_call(method, params, 200, None, via)
        return _ok(result)

    def _answer(
        self, method: str, params: dict[str, Any], error: BotApiError, via: str
    ) -> web.Response:
        self._record_call(method, params, error.status, error.description, via)
        return _fail(error)

    def _record_call(
        self, method: str, params: dict[str, Any], status: int, description: str | None, via: str
    ) -> None:
        self.calls.append(ApiCall(method, dict(params), status, description, via, time.time()))

    async def _pause(self, seconds: float) -> None:
        async with self._cond:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await self._cond.wait_for(lambda: self._closing)

    def _chat_for_send(self, p: _Params) -> dict[str, Any]:
        if not p.has("chat_id"):
            raise BotApiError(400, "Bad Request: chat_id is empty")
        raw = p.text("chat_id") or ""
        try:
            chat_id = int(raw)
        except ValueError:
            raise BotApiError(400, "Bad Request: chat not found") from None
        chat = self._chats.get(chat_id)
        if chat is None:
            raise BotApiError(400, "Bad Request: chat not found")
        if chat_id in self._blocked:
            raise BotApiError(403, "Forbidden: bot was blocked by the user")
        return chat

    def _formatted_text(self, p: _Params, *, too_long: str) -> tuple[str, list[dict[str, Any]]]:
        raw = p.text("text")
        if raw is None or raw == "":
            raise BotApiError(400, "Bad Request: message text is empty")
        if p.has("parse_mode"):
            text, entities = parse_entities(raw, p.text("parse_mode"))
        else:
            text, entities = raw, p.json("entities") or []
        if not text.strip():
            raise BotApiError(400, "Bad Request: message text is empty")
        if _utf16_len(text) > MAX_TEXT:
            raise BotApiError(400, too_long)
        return text, entities

    @staticmethod
    def _inline_markup(markup: Any) -> dict[str, Any] | None:
        """Validate an InlineKeyboardMarkup as Telegram does; None for an empty keyboard."""
        rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise BotApiError(400, "Bad Request: can't parse inline keyboard markup JSON object")
        actions = (
            "callback_data",
            "url",
            "web_app",
            "login_url",
            "switch_inline_query",
            "switch_inline_query_current_chat",
            "switch_inline_query_chosen_chat",
            "copy_text",
            "callback_game",
            "pay",
        )
        for row in rows:
            for button in row:
                if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                    raise BotApiError(400, "Bad Request: can't parse inline keyboard button")
                if not button["text"]:
                    raise BotApiError(400, "Bad Request: text buttons are unallowed")
                if not any(key in button for key in actions):
                    raise BotApiError(
                        400,
                        "Bad Request: can't parse inline keyboard button: Text buttons are "
                        "unallowed in the inline keyboard",
                    )
                data = button.get("callback_data")
                if data is not None and not (
                    isinstance(data, str) and 1 <= len(data.encode()) <= MAX_CALLBACK_DATA
                ):
                    raise BotApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        rows = [row for row in rows if row]
        return {"inline_keyboard": rows} if rows else None

    def _send_markup(self, markup: Any) -> tuple[dict[str, Any] | None, Any]:
        """(inline keyboard for the message, reply-keyboard change for the chat) of a send.

        The change is a keyboard to show, False to remove it, or None to leave it be.
        """
        if markup is None:
            return None, None
        if not isinstance(markup, dict):
            raise BotApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            return self._inline_markup(markup), None
        if "keyboard" in markup:
            if not isinstance(markup["keyboard"], list):
                raise BotApiError(400, "Bad Request: can't parse reply keyboard markup")
            return None, copy.deepcopy(markup)
        if markup.get("remove_keyboard"):
            return None, False
        if "force_reply" in markup:
            return None, None
        raise BotApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")

    def _edit_markup(self, markup: Any) -> dict[str, Any] | None:
        """The inline keyboard an edit sets (edits take inline keyboards only)."""
        if markup is None:
            return None
        if not (isinstance(markup, dict) and "inline_keyboard" in markup):
            raise BotApiError(400, "Bad Request: inline keyboard expected")
        return self._inline_markup(markup)

    def _editable(self, p: _Params) -> tuple[int, int]:
        if p.has("inline_message_id"):
            raise BotApiError(400, "Bad Request: MESSAGE_ID_INVALID")
        chat = self._chat_for_send(p)
        message_id = p.integer("message_id", required=True)
        assert message_id is not None
        key = (chat["id"], message_id)
        message = self._messages.get(key)
        if message is None or key in self._deleted:
            raise BotApiError(400, "Bad Request: message to edit not found")
        if message.get("from", {}).get("id") != self.bot_user["id"]:
            raise BotApiError(400, "Bad Request: message can't be edited")
        return key

    # Bot API methods -------------------------------------------------------------------------

    async def _get_me(self, p: _Params) -> dict[str, Any]:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _get_updates(self, p: _Params) -> list[dict[str, Any]]:
        offset = p.integer("offset")
        limit = min(max(p.integer("limit") or 100, 1), 100)
        timeout = max(p.number("timeout") or 0.0, 0.0)
        allowed = p.json("allowed_updates")
        async with self._cond:
            if self._closing:
                return []
            if self._webhook is not None:
                raise BotApiError(
                    409,
                    "Conflict: can't use getUpdates method while webhook is active; "
                    "use deleteWebhook to delete the webhook first",
                )
            if allowed is not None:
                self._set_allowed(allowed)
            if self._poll is not None:
                # Telegram keeps one poller per token: the newer request ends the parked one.
                self._poll.conflict = (
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running"
                )
            ticket = _Poll()
            self._poll = ticket
            self._confirm(offset)
            self._cond.notify_all()
            try:
                if timeout > 0 and not self._queue:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(timeout):
                            await self._cond.wait_for(
                                lambda: self._closing or bool(ticket.conflict or self._queue)
                            )
            finally:
                if self._poll is ticket:
                    self._poll = None
                    self._cond.notify_all()
            if ticket.conflict:
                raise BotApiError(409, ticket.conflict)
            if self._closing:
                return []
            batch = self._queue[:limit]
            for pending in batch:
                pending.returned = True
            return [copy.deepcopy(p.update) for p in batch]

    async def _set_webhook(self, p: _Params) -> bool:
        url = p.text("url") or ""
        if not url:
            await self._remove_webhook(drop=p.flag("drop_pending_updates"))
            return True
        if not re.match(r"^https?://[^/\s]+", url):
            raise BotApiError(400, "Bad Request: bad webhook: an HTTP(S) URL must be provided")
        secret = p.text("secret_token") or None
        if secret is not None and not _SECRET_RE.match(secret):
            raise BotApiError(400, "Bad Request: secret token contains unallowed characters")
        allowed = p.json("allowed_updates")
        async with self._cond:
            if allowed is not None:
                self._set_allowed(allowed)
            if p.flag("drop_pending_updates"):
                self._queue.clear()
            if self._poll is not None:
                self._poll.conflict = "Conflict: terminated by setWebhook request"
            self._webhook = _Webhook(
                url=url,
                secret_token=secret,
                max_connections=p.integer("max_connections") or 40,
                allowed_updates=list(allowed) if isinstance(allowed, list) else None,
            )
            self._cond.notify_all()
        return True

    async def _remove_webhook(self, *, drop: bool) -> None:
        async with self._cond:
            self._webhook = None
            if drop:
                self._queue.clear()
            self._cond.notify_all()

    async def _delete_webhook(self, p: _Params) -> bool:
        await self._remove_webhook(drop=p.flag("drop_pending_updates"))
        return True

    async def _get_webhook_info(self, p: _Params) -> dict[str, Any]:
        return self.webhook_info()

    async def _send_message(self, p: _Params) -> dict[str, Any]:
        chat = self._chat_for_send(p)
        text, entities = self._formatted_text(p, too_long="Bad Request: message is too long")
        markup, keyboard = self._send_markup(p.json("reply_markup"))
        reply_to = None
        reply_parameters = p.json("reply_parameters")
        reply_id = p.integer("reply_to_message_id")
        if isinstance(reply_parameters, dict) and reply_parameters.get("message_id"):
            reply_id = int(reply_parameters["message_id"])
        if reply_id is not None:
            original = self._messages.get((chat["id"], reply_id))
            allow_missing = p.flag("allow_sending_without_reply") or (
                isinstance(reply_parameters, dict)
                and reply_parameters.get("allow_sending_without_reply")
            )
            if original is None and not allow_missing:
                raise BotApiError(400, "Bad Request: message to be replied not found")
            reply_to = original
        if self._limits is not None:
            retry_after = self._limits.admit(chat["id"], self._clock())
            if retry_after is not None:
                raise BotApiError(
                    429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after
                )
        async with self._cond:
            message: dict[str, Any] = {
                "message_id": self._new_message_id(chat["id"]),
                "from": copy.deepcopy(self.bot_user),
                "chat": copy.deepcopy(chat),
                "date": int(time.time()),
                "text": text,
            }
            if entities:
                message["entities"] = entities
            if reply_to is not None:
                message["reply_to_message"] = self._quoted(reply_to)
            if markup is not None:
                message["reply_markup"] = markup
            if keyboard is False:
                self._reply_keyboards.pop(chat["id"], None)
            elif keyboard is not None:
                self._reply_keyboards[chat["id"]] = keyboard
            self._store_message(chat["id"], message)
            self._sent.append((chat["id"], message["message_id"]))
            self._record_event(
                "send",
                chat_id=chat["id"],
                message_id=message["message_id"],
                params=p.decoded(),
            )
            self._cond.notify_all()
            return copy.deepcopy(message)

    async def _edit_message_text(self, p: _Params) -> dict[str, Any]:
        key = self._editable(p)
        message = self._messages[key]
        if "text" not in message:
            raise BotApiError(400, "Bad Request: there is no text in the message to edit")
        text, entities = self._formatted_text(p, too_long="Bad Request: MESSAGE_TOO_LONG")
        # Editing the text without reply_markup removes the inline keyboard, as in Telegram.
        markup = self._edit_markup(p.json("reply_markup"))
        unchanged = (
            message.get("text") == text
            and message.get("entities", []) == entities
            and message.get("reply_markup") == markup
        )
        if unchanged:
            raise BotApiError(400, _NOT_MODIFIED)
        return await self._apply_edit(
            key, "edit_text", p, text=text, entities=entities, markup=markup
        )

    async def _edit_message_reply_markup(self, p: _Params) -> dict[str, Any]:
        key = self._editable(p)
        markup = self._edit_markup(p.json("reply_markup"))
        if self._messages[key].get("reply_markup") == markup:
            raise BotApiError(400, _NOT_MODIFIED)
        return await self._apply_edit(key, "edit_reply_markup", p, markup=markup)

    async def _apply_edit(
        self,
        key: tuple[int, int],
        kind: str,
        p: _Params,
        *,
        markup: dict[str, Any] | None,
        text: str | None = None,
        entities: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        async with self._cond:
            message = self._messages[key]
            if text is not None:
                message["text"] = text
                if entities:
                    message["entities"] = entities
                else:
                    message.pop("entities", None)
            if markup is None:
                message.pop("reply_markup", None)
            else:
                message["reply_markup"] = markup
            message["edit_date"] = int(time.time())
            self._record_event(kind, chat_id=key[0], message_id=key[1], params=p.decoded())
            self._cond.notify_all()
            return copy.deepcopy(message)

    async def _answer_callback_query(self, p: _Params) -> bool:
        callback_id = p.text("callback_query_id")
        if not callback_id:
            raise BotApiError(400, "Bad Request: callback_query_id is empty")
        record = self._callbacks.get(callback_id)
        if record is None or record.answered:
            raise BotApiError(400, _QUERY_TOO_OLD)
        if len(p.text("text") or "") > 200:
            raise BotApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        async with self._cond:
            record.answered = True
            answer = {
                "callback_query_id": callback_id,
                "text": p.text("text"),
                "show_alert": p.flag("show_alert"),
                "url": p.text("url"),
            }
            self.callback_answers.append(answer)
            self._record_event(
                "answer_callback",
                chat_id=record.chat_id,
                message_id=record.message_id,
                params=p.decoded(),
            )
            self._cond.notify_all()
        return True

    async def _delete_message(self, p: _Params) -> bool:
        chat = self._chat_for_send(p)
        message_id = p.integer("message_id", required=True)
        assert message_id is not None
        key = (chat["id"], message_id)
        if key not in self._messages or key in self._deleted:
            raise BotApiError(400, "Bad Request: message to delete not found")
        async with self._cond:
            self._record_event("delete", chat_id=key[0], message_id=key[1], params=p.decoded())
            self._deleted.add(key)
            self._cond.notify_all()
        return True

    async def _send_chat_action(self, p: _Params) -> bool:
        chat = self._chat_for_send(p)
        action = p.text("action")
        if action not in _CHAT_ACTIONS:
            raise BotApiError(400, "Bad Request: wrong parameter action in request")
        async with self._cond:
            self._record_event(
                "chat_action", chat_id=chat["id"], message_id=None, params=p.decoded()
            )
            self._cond.notify_all()
        return True

    async def _set_my_commands(self, p: _Params) -> bool:
        commands = p.json("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise BotApiError(400, "Bad Request: can't parse commands JSON object")
        clean: list[dict[str, str]] = []
        for item in commands:
            if not isinstance(item, dict):
                raise BotApiError(400, "Bad Request: can't parse BotCommand")
            command = str(item.get("command", "")).lstrip("/")
            description = str(item.get("description", ""))
            if not _COMMAND_RE.match(command):
                raise BotApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(description) <= 256:
                raise BotApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
            clean.append({"command": command, "description": description})
        key = self._commands_key(p.json("scope"), p.text("language_code"))
        self._commands[key] = clean
        return True

    async def _get_my_commands(self, p: _Params) -> list[dict[str, str]]:
        key = self._commands_key(p.json("scope"), p.text("language_code"))
        return copy.deepcopy(self._commands.get(key, []))

    async def _delete_my_commands(self, p: _Params) -> bool:
        self._commands.pop(self._commands_key(p.json("scope"), p.text("language_code")), None)
        return True

    async def _get_chat(self, p: _Params) -> dict[str, Any]:
        if not p.has("chat_id"):
            raise BotApiError(400, "Bad Request: chat_id is empty")
        try:
            chat = self._chats.get(int(p.text("chat_id") or ""))
        except ValueError:
            chat = None
        if chat is None:
            raise BotApiError(400, "Bad Request: chat not found")
        return {
            **copy.deepcopy(chat),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": True,
                "limited_gifts": True,
                "unique_gifts": True,
                "premium_subscription": True,
                "gifts_from_channels": True,
            },
        }

    # ------------------------------------------------------------------ internals: webhook

    async def _webhook_loop(self) -> None:
        """Deliver queued updates as Telegram does: up to `max_connections` requests at once.

        One chat's updates go one at a time and in order (the next waits for the previous
        one's 2xx or its last attempt); different chats' updates are delivered in parallel.
        """
        in_flight: dict[int, object] = {}  # id(pending) -> its chat

        def startable() -> list[_Pending]:
            hook = self._webhook
            if hook is None:
                return []
            room = max(1, hook.max_connections) - len(in_flight)
            busy = set(in_flight.values())
            chosen: list[_Pending] = []
            for pending in self._queue:
                if room <= 0:
                    break
                lane = _update_chat(pending.update)
                if id(pending) in in_flight or lane in busy:
                    busy.add(lane)  # a later update of this chat waits behind it
                    continue
                busy.add(lane)
                chosen.append(pending)
                room -= 1
            return chosen

        async def deliver(pending: _Pending) -> None:
            done = False
            try:
                done = await self._deliver(pending)
            finally:
                async with self._cond:
                    in_flight.pop(id(pending), None)
                    self._delivering = bool(in_flight)
                    if done:
                        self._queue = [p for p in self._queue if p is not pending]
                    self._cond.notify_all()

        while True:
            async with self._cond:
                await self._cond.wait_for(lambda: self._closing or bool(startable()))
                if self._closing:
                    return
                for pending in startable():
                    in_flight[id(pending)] = _update_chat(pending.update)
                    self._delivering = True
                    task = asyncio.create_task(deliver(pending))
                    self._background.add(task)
                    task.add_done_callback(self._background.discard)

    async def _deliver(self, pending: _Pending) -> bool:
        """Deliver one update with bounded retries; False if the webhook went away meanwhile."""
        for attempt in range(1, self._webhook_max_attempts + 1):
            hook = self._webhook
            if hook is None or self._closing:
                return False
            status, error = await self._post_update(hook, pending.update)
            async with self._cond:
                self.deliveries.append(
                    WebhookDelivery(
                        update_id=pending.update_id,
                        attempt=attempt,
                        url=hook.url,
                        status=status,
                        error=error,
                        secret_token=hook.secret_token,
                        at=time.time(),
                    )
                )
                if status is not None and 200 <= status < 300:
                    self._cond.notify_all()
                    return True
                hook.last_error_date = int(time.time())
                hook.last_error_message = error or "Wrong response from the webhook"
                self._cond.notify_all()
            if attempt < self._webhook_max_attempts:
                await self._pause(self._retry_delay(attempt))
        return True  # Telegram gives up after a bounded number of attempts

    def _retry_delay(self, attempt: int) -> float:
        """The pause after the `attempt`-th failed delivery (exponential, capped if asked)."""
        delay = self._webhook_retry_delay * 2.0 ** min(attempt - 1, 60)
        cap = self._webhook_max_retry_delay
        return delay if cap is None else min(delay, cap)

    async def _post_update(
        self, hook: _Webhook, update: dict[str, Any]
    ) -> tuple[int | None, str | None]:
        assert self._http is not None
        headers = {"Content-Type": "application/json"}
        if hook.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = hook.secret_token
        try:
            async with self._http.post(hook.url, data=json.dumps(update), headers=headers) as r:
                if not 200 <= r.status < 300:
                    await r.read()
                    return r.status, f"Wrong response from the webhook: {r.status} {r.reason}"
                try:
                    reply = await self._webhook_reply(r)
                except (ValueError, UnicodeDecodeError):
                    reply = None  # an unreadable reply is ignored, as Telegram does
        except TimeoutError:
            return None, "Read timeout expired"
        except aiohttp.ClientConnectorError as exc:
            return None, f"Connection refused: {exc.os_error}"
        except aiohttp.ClientError as exc:
            return None, f"Connection error: {type(exc).__name__}: {exc}"
        if reply is not None:
            await self._run_webhook_reply(*reply)
        return r.status, None

    @staticmethod
    async def _webhook_reply(
        response: aiohttp.ClientResponse,
    ) -> tuple[str, dict[str, Any]] | None:
        """A Bot API call the webhook answered with (JSON or multipart with a `method` field)."""
        if response.content_type.startswith("multipart/"):
            fields: dict[str, Any] = {}
            reader = aiohttp.MultipartReader.from_response(response)
            while True:
                part = await reader.next()
                if part is None:
                    break
                if isinstance(part, aiohttp.BodyPartReader) and part.name:
                    fields[part.name] = await part.text()
            method = fields.pop("method", None)
            return (method, fields) if isinstance(method, str) else None
        body = await response.read()
        if response.content_type != "application/json" or not body:
            return None
        try:
            data = json.loads(body)
        except ValueError:
            return None
        if isinstance(data, dict) and isinstance(data.get("method"), str):
            method = data.pop("method")
            return method, data
        return None

    async def _run_webhook_reply(self, method: str, params: dict[str, Any]) -> None:
        # Telegram carries out a webhook reply but never reports its result or error.
        if method.lower() not in self._methods or method.lower() == "getupdates":
            self._record_call(method, params, 404, "Not Found", "webhook_reply")
            return
        await self._execute(method, params, None, "webhook_reply")

    # ------------------------------------------------------------------- control HTTP API

    def _add_control_routes(self, app: web.Application) -> None:
        posts: dict[str, Callable[..., Any]] = {
            "text": self.push_text,
            "start": self.push_start,
            "contact": self.push_contact,
            "callback": self.push_callback,
            "redeliver": self.redeliver,
            "jump_update_ids": self.jump_update_ids,
            "block": self.block_bot,
            "wait_sent": self.wait_sent,
            "wait_events": self.wait_events,
            "faults": self.fail_next,
            "rate_limits": self.enforce_rate_limits,
        }
        for name, fn in posts.items():
            app.router.add_post(f"{CONTROL_PREFIX}/{name}", self._control_handler(fn))
        app.router.add_post(f"{CONTROL_PREFIX}/update", self._control_update)
        app.router.add_delete(f"{CONTROL_PREFIX}/faults", self._control_clear_faults)
        app.router.add_get(CONTROL_PREFIX, self._control_state)
        app.router.add_get(f"{CONTROL_PREFIX}/", self._control_state)
        app.router.add_get(f"{CONTROL_PREFIX}/sent", self._control_sent)
        app.router.add_get(f"{CONTROL_PREFIX}/messages", self._control_messages)
        app.router.add_get(f"{CONTROL_PREFIX}/events", self._control_events)
        app.router.add_get(f"{CONTROL_PREFIX}/deliveries", self._control_deliveries)
        app.router.add_get(f"{CONTROL_PREFIX}/calls", self._control_calls)
        app.router.add_get(f"{CONTROL_PREFIX}/callback_answers", self._control_answers)

    @staticmethod
    def _control_error(status: int, description: str) -> web.Response:
        body = {"ok": False, "error_code": status, "description": description}
        return web.json_response(body, status=status)

    @staticmethod
    async def _json_body(request: web.Request) -> dict[str, Any]:
        if not request.body_exists:
            return {}
        try:
            body = await request.json()
        except ValueError:
            raise SandboxError("the body must be a JSON object") from None
        if not isinstance(body, dict):
            raise SandboxError("the body must be a JSON object")
        return body

    def _control_handler(
        self, fn: Callable[..., Any]
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        accepted = set(inspect.signature(fn).parameters)

        async def handler(request: web.Request) -> web.Response:
            try:
                body = await self._json_body(request)
                unknown = sorted(set(body) - accepted)
                if unknown:
                    raise SandboxError(f"unknown field(s) {unknown}; accepted: {sorted(accepted)}")
                try:
                    result = fn(**body)
                except TypeError as exc:
                    raise SandboxError(str(exc)) from None
                if inspect.isawaitable(result):
                    result = await result
            except SandboxError as exc:
                return self._control_error(400, str(exc))
            except TimeoutError as exc:
                return self._control_error(408, str(exc))
            return _ok(result)

        return handler

    async def _control_update(self, request: web.Request) -> web.Response:
        try:
            return _ok(await self.push_update(await self._json_body(request)))
        except SandboxError as exc:
            return self._control_error(400, str(exc))

    async def _control_clear_faults(self, request: web.Request) -> web.Response:
        self.clear_faults()
        return _ok(True)

    @staticmethod
    def _query_int(request: web.Request, name: str) -> int | None:
        raw = request.query.get(name)
        if raw in (None, ""):
            return None
        try:
            return int(raw)
        except ValueError:
            raise SandboxError(f"{name} must be an integer") from None

    async def _control_state(self, request: web.Request) -> web.Response:
        return _ok(
            {
                "api_base": self.api_base,
                "token": self.token,
                "bot": self.bot_user,
                "next_update_id": self._next_update_id,
                "pending_update_count": len(self._queue),
                "polling": self.polling,
                "webhook": self.webhook_info(),
                "chats": list(self._chats.values()),
                "rate_limits": self._limits is not None,
            }
        )

    async def _control_sent(self, request: web.Request) -> web.Response:
        try:
            chat_id = self._query_int(request, "chat_id")
        except SandboxError as exc:
            return self._control_error(400, str(exc))
        return _ok(self.sent(chat_id))

    async def _control_messages(self, request: web.Request) -> web.Response:
        try:
            chat_id = self._query_int(request, "chat_id")
            if chat_id is None:
                raise SandboxError("chat_id is required")
        except SandboxError as exc:
            return self._control_error(400, str(exc))
        return _ok(self.messages(chat_id))

    async def _control_events(self, request: web.Request) -> web.Response:
        """Events after `after`; with `timeout` > 0, wait (long poll) for at least one."""
        try:
            chat_id = self._query_int(request, "chat_id")
            after = self._query_int(request, "after") or 0
            timeout = float(request.query.get("timeout") or 0)
        except (SandboxError, ValueError) as exc:
            return self._control_error(400, str(exc))
        if timeout > 0:
            with contextlib.suppress(TimeoutError, SandboxError):
                await self.wait_events(after=after, chat_id=chat_id, timeout=timeout)
        return _ok(self.events(chat_id=chat_id, after=after))

    async def _control_deliveries(self, request: web.Request) -> web.Response:
        return _ok([d.to_dict() for d in self.deliveries])

    async def _control_calls(self, request: web.Request) -> web.Response:
        method = request.query.get("method")
        calls = self.calls_to(method) if method else self.calls
        return _ok([c.to_dict() for c in calls])

    async def _control_answers(self, request: web.Request) -> web.Response:
        return _ok(self.callback_answers)


# --------------------------------------------------------------------------------------------


async def _serve(args: argparse.Namespace) -> None:
    sandbox = TelegramSandbox(
        token=args.token,
        host=args.host,
        port=args.port,
        webhook_max_attempts=args.webhook_attempts,
        webhook_retry_delay=args.webhook_retry_delay,
    )
    if args.rate_limits:
        sandbox.enforce_rate_limits()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with sandbox:
        print(sandbox.api_base, flush=True)
        print(
            f"Telegram sandbox ready\n  api base: {sandbox.api_base}\n  token:    {sandbox.token}"
            f"\n  control:  {sandbox.control_base}/\nCtrl-C stops it.",
            file=sys.stderr,
            flush=True,
        )
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    """`python -m triage_sandbox.telegram`: serve until SIGINT/SIGTERM; print the api base."""
    parser = argparse.ArgumentParser(
        prog="python -m triage_sandbox.telegram",
        description="A loopback Telegram Bot API server (no token, no network needed).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8081, help="port; 0 picks a free one")
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="the bot token it accepts")
    parser.add_argument(
        "--rate-limits", action="store_true", help="answer 429 beyond Telegram's limits"
    )
    parser.add_argument(
        "--webhook-attempts", type=int, default=5, help="delivery attempts per update (5)"
    )
    parser.add_argument(
        "--webhook-retry-delay",
        type=float,
        default=0.5,
        help="seconds before the first webhook retry, doubling after each (0.5)",
    )
    args = parser.parse_args(argv)
    try:
        asyncio.run(_serve(args))
    except OSError as exc:
        print(f"cannot start the sandbox on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    except SandboxError as exc:
        print(f"bad option: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
