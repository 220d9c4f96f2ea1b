"""A loopback Slack: the Web API, ``response_url`` and Socket Mode over plain HTTP on 127.0.0.1.

The real ``slack_sdk.web.async_client.AsyncWebClient`` talks to it with
``base_url=sandbox.api_base``; slack-bolt's ``respond()`` posts to the ``response_url`` the
sandbox hands out; ``AsyncSocketModeHandler`` connects through ``apps.connections.open``.

Everything the app sends is recorded, per kind (see :data:`RECORD_KINDS`), and can be listed or
awaited from Python (:class:`SlackSandbox`) or over HTTP under ``/_sandbox/`` so that another
process (the demo, an evaluator) can drive it. Faults (HTTP 429 with ``Retry-After``, HTTP 5xx,
``{"ok": false, "error": ...}``, a delay) can be injected per API method.

Run standalone with ``python -m triage_sandbox.slack --port 8082``; it prints the API base.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import re
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, cast, get_args

from aiohttp import WSCloseCode, WSMsgType, web

from triage_sandbox.slack_signing import (
    DEFAULT_APP_ID,
    DEFAULT_BOT_ID,
    DEFAULT_BOT_USER_ID,
    DEFAULT_TEAM_DOMAIN,
    DEFAULT_TEAM_ID,
)

JSONDict = dict[str, Any]

RecordKind = Literal["messages", "updates", "ephemerals", "views", "responses", "acks", "calls"]
RECORD_KINDS: tuple[RecordKind, ...] = get_args(RecordKind)
"""What the sandbox records:

- ``messages``: every message the app posted (``chat.postMessage``, or ``respond()`` with
  ``response_type=in_channel``), as it was at posting time, with its ``channel``;
- ``updates``: every ``chat.update``, the message after the update, with its ``channel``;
- ``ephemerals``: ``chat.postEphemeral`` calls and ephemeral ``respond()`` messages
  (``channel``, ``user``, ``text``, ``blocks``, ``thread_ts``, ``message_ts``, ``source``);
- ``views``: ``views.open`` / ``views.update`` / ``views.push`` (``method``, ``view_id``,
  ``callback_id``, ``trigger_id``, ``view``);
- ``responses``: payloads posted to a ``response_url`` (``url_id``, ``channel``,
  ``message_ts``, ``user``, ``payload``);
- ``acks``: Socket Mode acknowledgements (``envelope_id``, ``type``, ``payload``);
- ``calls``: every Web API call (``method``, ``token_kind``, ``args``, ``fault``, ``ok``,
  ``error``), including the ones answered with an injected fault.
"""

DEFAULT_BOT_TOKEN = "xoxb-sandbox-bot-token"
DEFAULT_APP_TOKEN = "xapp-1-sandbox-app-token"

_APP_TOKEN_METHODS = frozenset({"apps.connections.open"})
_JSON_FIELDS = ("blocks", "attachments", "view", "metadata", "user_auth_blocks")
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
_CONTROL_SEQUENCE = re.compile(r"<([^<>\n]+)>")
_MAX_TEXT = 40_000
_MAX_MESSAGE_BLOCKS = 50
_MAX_VIEW_BLOCKS = 100


@dataclass(frozen=True)
class SlackUser:
    """A workspace member that ``users.info`` knows."""

    id: str
    name: str
    real_name: str | None = None
    email: str | None = None
    team_id: str | None = None
    is_bot: bool = False
    is_admin: bool = False
    tz: str = "UTC"
    deleted: bool = False

    def to_api(self, default_team_id: str) -> JSONDict:
        """The ``user`` object as ``users.info`` returns it."""
        real_name = self.real_name or self.name
        profile: JSONDict = {
            "real_name": real_name,
            "display_name": self.name,
            "real_name_normalized": real_name,
            "display_name_normalized": self.name,
            "team": self.team_id or default_team_id,
        }
        if self.email is not None:
            profile["email"] = self.email
        return {
            "id": self.id,
            "team_id": self.team_id or default_team_id,
            "name": self.name,
            "deleted": self.deleted,
            "real_name": real_name,
            "tz": self.tz,
            "is_admin": self.is_admin,
            "is_owner": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "profile": profile,
        }


@dataclass(frozen=True)
class SlackChannel:
    """A conversation the sandbox knows: a channel, a private channel or a DM (``user`` set)."""

    id: str
    name: str
    is_private: bool = False
    user: str | None = None

    def to_api(self) -> JSONDict:
        """The ``channel`` object as ``conversations.info`` returns it."""
        if self.user is not None:
            return {"id": self.id, "is_im": True, "user": self.user, "is_open": True}
        return {
            "id": self.id,
            "name": self.name,
            "name_normalized": self.name,
            "is_channel": not self.is_private,
            "is_group": self.is_private,
            "is_im": False,
            "is_private": self.is_private,
            "is_archived": False,
            "is_member": True,
        }


FaultKind = Literal["ratelimited", "server_error", "api_error", "delay"]


@dataclass(frozen=True)
class Fault:
    """A fault to answer a Web API call (or a ``response_url`` post) with."""

    kind: FaultKind
    retry_after: int = 1
    status: int = 500
    code: str = ""
    seconds: float = 0.0

    @classmethod
    def ratelimited(cls, retry_after: int = 1) -> Fault:
        """HTTP 429, ``Retry-After: <retry_after>``, ``{"ok": false, "error": "ratelimited"}``."""
        return cls(kind="ratelimited", retry_after=retry_after)

    @classmethod
    def server_error(cls, status: int = 500) -> Fault:
        """An HTTP 5xx answer with ``{"ok": false, "error": "internal_error"}``."""
        return cls(kind="server_error", status=status)

    @classmethod
    def api_error(cls, code: str) -> Fault:
        """HTTP 200 with ``{"ok": false, "error": code}`` (for example ``channel_not_found``)."""
        return cls(kind="api_error", code=code)

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Wait ``seconds`` before answering normally."""
        return cls(kind="delay", seconds=seconds)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fault:
        """Build a fault from its JSON form (``{"kind": "ratelimited", "retry_after": 2}``)."""
        kind = data.get("kind")
        if kind not in get_args(FaultKind):
            raise ValueError(f"fault kind must be one of {get_args(FaultKind)}, got {kind!r}")
        return cls(
            kind=cast(FaultKind, kind),
            retry_after=int(data.get("retry_after", 1)),
            status=int(data.get("status", 500)),
            code=str(data.get("code", "")),
            seconds=float(data.get("seconds", 0.0)),
        )


class SlackApiFailure(Exception):
    """A Web API method refused the call; becomes ``{"ok": false, "error": code, ...}``."""

    def __init__(self, code: str, **extra: Any) -> None:
        super().__init__(code)
        self.code = code
        self.extra = extra


@dataclass
class _FaultPlan:
    fault: Fault
    remaining: int | None  # None: until cleared


@dataclass(frozen=True)
class _ResponseTarget:
    channel: str | None
    message_ts: str | None
    user: str | None


@dataclass
class _SocketConnection:
    id: str
    serial: int
    ws: web.WebSocketResponse


@dataclass
class _Stored:
    """Everything recorded, plus the live state the records were derived from."""

    records: dict[str, list[JSONDict]] = field(
        default_factory=lambda: {kind: [] for kind in RECORD_KINDS}
    )
    cursors: dict[tuple[str, str], int] = field(default_factory=dict)
    conversations: dict[str, list[JSONDict]] = field(default_factory=dict)
    views: dict[str, JSONDict] = field(default_factory=dict)
    envelopes: dict[str, JSONDict] = field(default_factory=dict)


def control_sequences(message: Mapping[str, Any]) -> list[str]:
    """The control sequences (``<!channel>``, ``<@U1>``, ``<http://x|y>``) Slack would act on.

    Looks at the top-level ``text`` (unless ``mrkdwn`` is false) and every ``mrkdwn`` text object
    in the blocks; ``plain_text`` objects are shown literally by Slack and are skipped. Escaped
    input (``&lt;!channel&gt;``) yields nothing.
    """
    texts: list[str] = []
    if message.get("mrkdwn", True) and isinstance(message.get("text"), str):
        texts.append(message["text"])

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            if node.get("type") == "mrkdwn" and isinstance(node.get("text"), str):
                texts.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(message.get("blocks") or [])
    walk(message.get("attachments") or [])
    return [m.group(1) for text in texts for m in _CONTROL_SEQUENCE.finditer(text)]


def _text_of(obj: Any) -> str | None:
    if isinstance(obj, Mapping) and isinstance(obj.get("text"), str):
        return str(obj["text"])
    return None


def _length_error(value: Any, limit: int, pointer: str) -> list[str]:
    if isinstance(value, str) and len(value) > limit:
        return [f"[ERROR] must be less than {limit + 1} characters [json-pointer:{pointer}]"]
    return []


def _element_errors(element: Any, pointer: str) -> list[str]:
    if not isinstance(element, Mapping) or not isinstance(element.get("type"), str):
        return [f"[ERROR] missing required field: type [json-pointer:{pointer}]"]
    errors = _length_error(element.get("action_id"), 255, f"{pointer}/action_id")
    if element["type"] == "button":
        text = _text_of(element.get("text"))
        if text is None:
            errors.append(f"[ERROR] missing required field: text [json-pointer:{pointer}]")
        errors += _length_error(text, 75, f"{pointer}/text/text")
        errors += _length_error(element.get("value"), 2000, f"{pointer}/value")
        errors += _length_error(element.get("url"), 3000, f"{pointer}/url")
    return errors


def block_errors(blocks: Any, *, max_blocks: int = _MAX_MESSAGE_BLOCKS) -> list[str]:
    """Slack's documented Block Kit limits that ``blocks`` break, in Slack's error format.

    Checked: an array of at most ``max_blocks`` objects with a ``type``; unique ``block_id``s
    (at most 255 characters); section text at most 3000 and fields at most 10 x 2000 characters;
    header text at most 150; actions at most 25 elements with unique ``action_id``s; context at
    most 10 elements; buttons with text at most 75 and value at most 2000 characters.
    """
    if not isinstance(blocks, list):
        return ["[ERROR] must be an array [json-pointer:/blocks]"]
    errors: list[str] = []
    if len(blocks) > max_blocks:
        errors.append(f"[ERROR] no more than {max_blocks} items allowed [json-pointer:/blocks]")
    block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        at = f"/blocks/{i}"
        if not isinstance(block, Mapping) or not isinstance(block.get("type"), str):
            errors.append(f"[ERROR] missing required field: type [json-pointer:{at}]")
            continue
        block_id = block.get("block_id")
        if isinstance(block_id, str):
            if block_id in block_ids:
                errors.append(f"[ERROR] duplicate block_id {block_id!r} [json-pointer:{at}]")
            block_ids.add(block_id)
            errors += _length_error(block_id, 255, f"{at}/block_id")
        kind = block["type"]
        if kind == "section":
            fields = block.get("fields") or []
            if _text_of(block.get("text")) is None and not fields:
                errors.append(f"[ERROR] must provide text or fields [json-pointer:{at}]")
            errors += _length_error(_text_of(block.get("text")), 3000, f"{at}/text/text")
            if len(fields) > 10:
                errors.append(f"[ERROR] no more than 10 items allowed [json-pointer:{at}/fields]")
            for j, item in enumerate(fields):
                errors += _length_error(_text_of(item), 2000, f"{at}/fields/{j}/text")
            if "accessory" in block:
                errors += _element_errors(block["accessory"], f"{at}/accessory")
        elif kind == "header":
            text = _text_of(block.get("text"))
            if text is None:
                errors.append(f"[ERROR] missing required field: text [json-pointer:{at}]")
            errors += _length_error(text, 150, f"{at}/text/text")
        elif kind in ("actions", "context"):
            elements = block.get("elements")
            limit = 25 if kind == "actions" else 10
            if not isinstance(elements, list) or not elements:
                errors.append(f"[ERROR] missing required field: elements [json-pointer:{at}]")
                continue
            if len(elements) > limit:
                errors.append(
                    f"[ERROR] no more than {limit} items allowed [json-pointer:{at}/elements]"
                )
            action_ids: set[str] = set()
            for j, element in enumerate(elements):
                if kind == "context":
                    continue
                errors += _element_errors(element, f"{at}/elements/{j}")
                action_id = element.get("action_id") if isinstance(element, Mapping) else None
                if isinstance(action_id, str):
                    if action_id in action_ids:
                        errors.append(
                            f"[ERROR] duplicate action_id {action_id!r} "
                            f"[json-pointer:{at}/elements/{j}]"
                        )
                    action_ids.add(action_id)
        elif kind == "input":
            if _text_of(block.get("label")) is None:
                errors.append(f"[ERROR] missing required field: label [json-pointer:{at}]")
            if not isinstance(block.get("element"), Mapping):
                errors.append(f"[ERROR] missing required field: element [json-pointer:{at}]")
            else:
                errors += _element_errors(block["element"], f"{at}/element")
    return errors


def _with_ids(blocks: list[Any]) -> list[Any]:
    """Copy ``blocks`` filling in ``block_id`` and ``action_id`` where missing, as Slack does."""
    out: list[Any] = []
    for block in copy.deepcopy(blocks):
        if isinstance(block, dict):
            block.setdefault("block_id", uuid.uuid4().hex[:5])
            elements = block.get("elements") if block.get("type") == "actions" else None
            interactive = list(elements or [])
            for key in ("accessory", "element"):
                if isinstance(block.get(key), dict):
                    interactive.append(block[key])
            for element in interactive:
                if isinstance(element, dict) and element.get("type") not in ("image",):
                    element.setdefault("action_id", uuid.uuid4().hex[:5])
        out.append(block)
    return out


def _loads_if_text(value: Any, name: str) -> Any:
    """Form bodies carry ``blocks``/``view``/... as JSON strings; JSON bodies carry objects."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        raise SlackApiFailure("invalid_arguments", detail=f"{name} is not valid JSON") from None


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("1", "true"))


def _matches(item: Mapping[str, Any], where: Mapping[str, Any], *, as_text: bool) -> bool:
    for key, wanted in where.items():
        got = item.get(key)
        if as_text:
            if ("" if got is None else str(got)) != str(wanted):
                return False
        elif got != wanted:
            return False
    return True


_Method = Callable[[JSONDict], Awaitable[JSONDict]]


class SlackSandbox:
    """A loopback Slack Web API + Socket Mode server with a control API.

    Use as ``async with SlackSandbox() as slack:`` and point the app at it with
    ``AsyncWebClient(token=slack.bot_token, base_url=slack.api_base)``.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        bot_token: str = DEFAULT_BOT_TOKEN,
        app_token: str = DEFAULT_APP_TOKEN,
        team_id: str = DEFAULT_TEAM_ID,
        team_name: str = "Sandbox",
        team_domain: str = DEFAULT_TEAM_DOMAIN,
        app_id: str = DEFAULT_APP_ID,
        bot_user_id: str = DEFAULT_BOT_USER_ID,
        bot_id: str = DEFAULT_BOT_ID,
        bot_name: str = "triage",
        users: Iterable[SlackUser] = (),
        channels: Iterable[SlackChannel] = (),
        usergroups: Mapping[str, Sequence[str]] | None = None,
        auto_create_channels: bool = True,
    ) -> None:
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self.bot_token = bot_token
        self.app_token = app_token
        self.team_id = team_id
        self.team_name = team_name
        self.team_domain = team_domain
        self.app_id = app_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.bot_name = bot_name
        self.auto_create_channels = auto_create_channels
        self._tokens: dict[str, Literal["bot", "app"]] = {bot_token: "bot", app_token: "app"}
        self._users: dict[str, SlackUser] = {}
        self._channels: dict[str, SlackChannel] = {}
        self._usergroups: dict[str, list[str]] = {}
        self._faults: dict[str, list[_FaultPlan]] = {}
        self._response_urls: dict[str, _ResponseTarget] = {}
        self._tickets: set[str] = set()
        self._sockets: list[_SocketConnection] = []
        self._sockets_opened = 0
        self._next_socket = 0
        self._ids = 0
        self._last_ts_us = 0
        self._stored = _Stored()
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.add_user(SlackUser(id=bot_user_id, name=bot_name, is_bot=True))
        for user in users:
            self.add_user(user)
        for channel in channels:
            self.add_channel(channel)
        for group_id, members in (usergroups or {}).items():
            self.set_usergroup(group_id, members)
        self._methods: dict[str, _Method] = {
            "api.test": self._api_test,
            "auth.test": self._auth_test,
            "apps.connections.open": self._apps_connections_open,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.getPermalink": self._chat_get_permalink,
            "views.open": self._views_open,
            "views.update": self._views_update,
            "views.push": self._views_push,
            "users.info": self._users_info,
            "conversations.info": self._conversations_info,
            "conversations.open": self._conversations_open,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "usergroups.users.list": self._usergroups_users_list,
        }

    # ------------------------------------------------------------------ lifecycle

    @property
    def port(self) -> int:
        """The bound TCP port (after :meth:`start`)."""
        if self._port is None:
            raise RuntimeError("SlackSandbox is not started; use `async with SlackSandbox()`")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://{self.host}:{self.port}"

    @property
    def api_base(self) -> str:
        """The Web API base for ``AsyncWebClient(base_url=...)``; ends in ``/api/``."""
        return f"{self.base_url}/api/"

    @property
    def control_base(self) -> str:
        """The control API base (``http://127.0.0.1:PORT/_sandbox/``)."""
        return f"{self.base_url}/_sandbox/"

    async def start(self) -> None:
        """Bind to ``host:port`` (port 0 picks a free one) and start serving."""
        if self._runner is not None:
            return
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/actions/{url_id:.+}", self._handle_response_url)
        app.router.add_get("/link", self._handle_socket)
        app.router.add_get("/link/", self._handle_socket)
        app.router.add_get("/archives/{channel}/p{digits:[0-9]+}", self._handle_permalink)
        self._add_control_routes(app)
        runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._requested_port)
        await site.start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        """Close Socket Mode connections, wake every waiter and stop serving."""
        if self._runner is None:
            return
        for connection in list(self._sockets):
            await connection.ws.close(code=WSCloseCode.GOING_AWAY, message=b"sandbox stopping")
        await self._runner.cleanup()
        self._runner = None
        await self._notify()

    async def __aenter__(self) -> SlackSandbox:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ configuration

    def add_user(self, user: SlackUser) -> None:
        """Make ``user`` known to ``users.info`` (replacing one with the same id)."""
        self._users[user.id] = user

    def add_channel(self, channel: SlackChannel) -> None:
        """Make ``channel`` known (``conversations.info``, posting by id or ``#name``)."""
        self._channels[channel.id] = channel
        self._stored.conversations.setdefault(channel.id, [])

    def set_usergroup(self, usergroup_id: str, members: Sequence[str]) -> None:
        """Set the members ``usergroups.users.list`` returns for ``usergroup_id``."""
        self._usergroups[usergroup_id] = list(members)

    def add_token(self, token: str, *, kind: Literal["bot", "app"] = "bot") -> None:
        """Accept another token (``bot``: Web API methods; ``app``: ``apps.connections.open``)."""
        self._tokens[token] = kind

    def inject_fault(self, method: str, fault: Fault, *, times: int | None = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with ``fault`` (``None``: until cleared).

        ``method`` is a Web API method name (``chat.postMessage``) or ``response_url``. Faults
        queue up per method and are used in order.
        """
        self._faults.setdefault(method, []).append(_FaultPlan(fault=fault, remaining=times))

    def clear_faults(self, method: str | None = None) -> None:
        """Drop the pending faults of ``method``, or of every method."""
        if method is None:
            self._faults.clear()
        else:
            self._faults.pop(method, None)

    def response_url(
        self,
        *,
        channel: str | None = None,
        message_ts: str | None = None,
        user: str | None = None,
    ) -> str:
        """A fresh ``response_url`` on the sandbox, bound to a message and the clicking user.

        Posts to it are recorded (``responses``) and take effect like Slack's: with
        ``replace_original`` the bound message is replaced, ``delete_original`` deletes it,
        ``response_type=in_channel`` posts to the channel, otherwise the user gets an ephemeral.
        """
        url_id = uuid.uuid4().hex
        channel_id = self._channel_for(channel).id if channel else None
        self._response_urls[url_id] = _ResponseTarget(channel_id, message_ts, user)
        return f"{self.base_url}/actions/{url_id}"

    async def reset(self) -> None:
        """Forget every record, message and view (users, channels and tokens stay)."""
        self._stored = _Stored(conversations={cid: [] for cid in self._channels})
        self._faults.clear()
        await self._notify()

    # ------------------------------------------------------------------ records

    def records(
        self, kind: RecordKind, *, where: Mapping[str, Any] | None = None, since: int = 0
    ) -> list[JSONDict]:
        """Copies of the ``kind`` records from index ``since`` whose fields equal ``where``."""
        return [copy.deepcopy(item) for _, item in self._select(kind, where, since)]

    def mark(self, kind: RecordKind) -> int:
        """The number of ``kind`` records so far; pass it as ``since`` to see only later ones."""
        return len(self._records(kind))

    def messages(
        self, *, channel: str | None = None, thread_ts: str | None = None
    ) -> list[JSONDict]:
        """Messages the app posted (as posted), optionally in one channel and/or thread."""
        return self.records("messages", where=self._where(channel=channel, thread_ts=thread_ts))

    def updates(self, *, channel: str | None = None, ts: str | None = None) -> list[JSONDict]:
        """``chat.update`` results (the message after each update)."""
        return self.records("updates", where=self._where(channel=channel, ts=ts))

    def ephemerals(self, *, channel: str | None = None, user: str | None = None) -> list[JSONDict]:
        """Ephemeral messages shown to users."""
        return self.records("ephemerals", where=self._where(channel=channel, user=user))

    def views(self, *, callback_id: str | None = None) -> list[JSONDict]:
        """``views.open`` / ``views.update`` / ``views.push`` records."""
        return self.records("views", where=self._where(callback_id=callback_id))

    def responses(self) -> list[JSONDict]:
        """Payloads posted to ``response_url`` (what ``respond()`` sent)."""
        return self.records("responses")

    def acks(self, *, envelope_id: str | None = None) -> list[JSONDict]:
        """Socket Mode acknowledgements received."""
        return self.records("acks", where=self._where(envelope_id=envelope_id))

    def calls(self, method: str | None = None) -> list[JSONDict]:
        """Every Web API call received, optionally of one ``method``."""
        return self.records("calls", where=self._where(method=method))

    def history(self, channel: str) -> list[JSONDict]:
        """The channel as people see it now: top-level messages, oldest first, edits applied.

        ``channel`` is an id, ``#name`` or a user id (their DM); unknown channels are empty.
        """
        return [
            copy.deepcopy(m)
            for m in self._conversation(channel)
            if m.get("thread_ts") in (None, m["ts"])
        ]

    def thread(self, channel: str, thread_ts: str) -> list[JSONDict]:
        """The parent message and its replies as people see them now, oldest first."""
        return [
            copy.deepcopy(m)
            for m in self._conversation(channel)
            if m["ts"] == thread_ts or m.get("thread_ts") == thread_ts
        ]

    def message(self, channel: str, ts: str) -> JSONDict | None:
        """The current state of one message, or ``None`` if it does not exist (any more)."""
        found = next((m for m in self._conversation(channel) if m["ts"] == ts), None)
        return copy.deepcopy(found) if found is not None else None

    def view(self, view_id: str) -> JSONDict | None:
        """The current state of a view opened through the sandbox."""
        found = self._stored.views.get(view_id)
        return copy.deepcopy(found) if found is not None else None

    def post_as_user(
        self,
        *,
        channel: str,
        user: str,
        text: str,
        thread_ts: str | None = None,
    ) -> JSONDict:
        """Put a person's message in a channel (or thread); return it as a ``message`` event.

        Deliver the event to the app with ``slack_signing.event_callback_body`` (HTTP) or
        :meth:`push_events_api` (Socket Mode); the sandbox does not deliver it by itself.
        """
        channel_obj = self._channel_for(channel)
        ts = self._new_ts()
        event: JSONDict = {
            "type": "message",
            "channel": channel_obj.id,
            "user": user,
            "text": text,
            "ts": ts,
            "event_ts": ts,
            "team": self.team_id,
            "channel_type": "im" if channel_obj.user else "channel",
            "client_msg_id": str(uuid.uuid4()),
        }
        stored: JSONDict = {
            "type": "message",
            "user": user,
            "text": text,
            "ts": ts,
            "team": self.team_id,
        }
        if thread_ts is not None:
            parent = self._find_message(channel_obj.id, thread_ts)
            stored["thread_ts"] = event["thread_ts"] = thread_ts
            if parent is not None:
                stored["parent_user_id"] = event["parent_user_id"] = parent.get("user")
        self._store_message(channel_obj.id, stored)
        return event

    # ------------------------------------------------------------------ waiting

    async def wait(
        self,
        kind: RecordKind,
        count: int = 1,
        *,
        where: Mapping[str, Any] | None = None,
        since: int | None = None,
        timeout: float = 5.0,
    ) -> list[JSONDict]:
        """Wait for the next ``count`` ``kind`` records matching ``where`` and return them.

        Without ``since``, each ``(kind, where)`` pair has a cursor: successive waits return
        successive records, and a record that arrived before the wait is still returned.
        With ``since`` (from :meth:`mark`) the wait looks at records from that index, statelessly.
        Raises ``TimeoutError`` naming what did arrive.
        """
        if count < 1:
            raise ValueError("count must be at least 1")
        where = {k: v for k, v in (where or {}).items() if v is not None}
        key = (kind, json.dumps(where, sort_keys=True, default=str))
        start = self._stored.cursors.get(key, 0) if since is None else since
        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(
                    lambda: len(self._select(kind, where, start)) >= count or self._runner is None
                )
        except TimeoutError:
            got = self._select(kind, where, start)
            raise TimeoutError(
                f"waited {timeout}s for {count} {kind} record(s) matching {where} from #{start};"
                f" got {len(got)}: {[item for _, item in got][:5]}"
            ) from None
        selected = self._select(kind, where, start)[:count]
        if len(selected) < count:
            raise RuntimeError("SlackSandbox is not running")
        if since is None:
            self._stored.cursors[key] = selected[-1][0] + 1
        return [copy.deepcopy(item) for _, item in selected]

    async def wait_messages(
        self,
        count: int = 1,
        *,
        channel: str | None = None,
        thread_ts: str | None = None,
        timeout: float = 5.0,
    ) -> list[JSONDict]:
        """Wait for the next ``count`` posted messages (in ``channel`` / ``thread_ts``)."""
        where = self._where(channel=channel, thread_ts=thread_ts)
        return await self.wait("messages", count, where=where, timeout=timeout)

    async def wait_updates(
        self, count: int = 1, *, channel: str | None = None, timeout: float = 5.0
    ) -> list[JSONDict]:
        """Wait for the next ``count`` ``chat.update`` results."""
        return await self.wait(
            "updates", count, where=self._where(channel=channel), timeout=timeout
        )

    async def wait_ephemerals(
        self, count: int = 1, *, user: str | None = None, timeout: float = 5.0
    ) -> list[JSONDict]:
        """Wait for the next ``count`` ephemeral messages (to ``user``)."""
        return await self.wait("ephemerals", count, where=self._where(user=user), timeout=timeout)

    async def wait_views(
        self, count: int = 1, *, callback_id: str | None = None, timeout: float = 5.0
    ) -> list[JSONDict]:
        """Wait for the next ``count`` opened/updated/pushed views."""
        where = self._where(callback_id=callback_id)
        return await self.wait("views", count, where=where, timeout=timeout)

    async def wait_responses(self, count: int = 1, *, timeout: float = 5.0) -> list[JSONDict]:
        """Wait for the next ``count`` ``response_url`` payloads."""
        return await self.wait("responses", count, timeout=timeout)

    async def wait_ack(self, envelope_id: str, *, timeout: float = 5.0) -> JSONDict:
        """Wait until the app acknowledged Socket Mode envelope ``envelope_id``; return the ack."""
        acks = await self.wait("acks", 1, where={"envelope_id": envelope_id}, timeout=timeout)
        return acks[0]

    async def wait_connections(
        self, count: int = 1, *, opened_after: int = 0, timeout: float = 5.0
    ) -> int:
        """Wait until ``count`` Socket Mode connections are open; return how many are.

        With ``opened_after`` (a :attr:`sockets_opened` value) only connections opened later
        count, which is how to wait for a reconnect after :meth:`disconnect_sockets`.
        """

        def fresh() -> int:
            return len([c for c in self._open_sockets() if c.serial > opened_after])

        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: fresh() >= count)
        except TimeoutError:
            raise TimeoutError(
                f"waited {timeout}s for {count} Socket Mode connection(s) opened after"
                f" #{opened_after}; {fresh()} open"
            ) from None
        return len(self._open_sockets())

    @property
    def socket_connections(self) -> int:
        """How many Socket Mode connections are open."""
        return len(self._open_sockets())

    @property
    def sockets_opened(self) -> int:
        """How many Socket Mode connections were ever opened (a serial, for ``opened_after``)."""
        return self._sockets_opened

    def _open_sockets(self) -> list[_SocketConnection]:
        return [c for c in self._sockets if not c.ws.closed]

    # ------------------------------------------------------------------ Socket Mode

    async def push_envelope(
        self,
        envelope_type: Literal["events_api", "interactive", "slash_commands"],
        payload: Mapping[str, Any],
        *,
        accepts_response_payload: bool | None = None,
        retry_attempt: int = 0,
        retry_reason: str = "",
        timeout: float = 5.0,
    ) -> str:
        """Send an envelope to one open Socket Mode connection (round robin); return its id.

        Waits up to ``timeout`` for a connection. ``accepts_response_payload`` defaults to what
        Slack sends: true for slash commands and view submissions, false otherwise.
        """
        await self.wait_connections(1, timeout=timeout)
        sockets = self._open_sockets()
        connection = sockets[self._next_socket % len(sockets)]
        self._next_socket += 1
        envelope_id = str(uuid.uuid4())
        if accepts_response_payload is None:
            accepts_response_payload = envelope_type == "slash_commands" or (
                payload.get("type") in ("view_submission", "block_suggestion")
            )
        envelope: JSONDict = {
            "envelope_id": envelope_id,
            "type": envelope_type,
            "payload": dict(payload),
            "accepts_response_payload": accepts_response_payload,
        }
        if envelope_type == "events_api":
            envelope["retry_attempt"] = retry_attempt
            envelope["retry_reason"] = retry_reason
        self._stored.envelopes[envelope_id] = envelope
        await connection.ws.send_json(envelope)
        return envelope_id

    async def push_events_api(
        self,
        body: Mapping[str, Any],
        *,
        retry_attempt: int = 0,
        retry_reason: str = "",
        timeout: float = 5.0,
    ) -> str:
        """Push an ``event_callback`` body (see ``slack_signing.event_callback_body``)."""
        return await self.push_envelope(
            "events_api",
            body,
            retry_attempt=retry_attempt,
            retry_reason=retry_reason,
            timeout=timeout,
        )

    async def push_interactive(self, payload: Mapping[str, Any], *, timeout: float = 5.0) -> str:
        """Push a ``block_actions`` / ``view_submission`` payload."""
        return await self.push_envelope("interactive", payload, timeout=timeout)

    async def push_slash_command(self, payload: Mapping[str, Any], *, timeout: float = 5.0) -> str:
        """Push a slash command (see ``slack_signing.slash_command_payload``)."""
        return await self.push_envelope("slash_commands", payload, timeout=timeout)

    async def disconnect_sockets(self, *, reason: str = "refresh_requested") -> int:
        """Send Slack's ``disconnect`` message to every connection; return how many got it."""
        sent = 0
        for connection in self._open_sockets():
            await connection.ws.send_json(
                {
                    "type": "disconnect",
                    "reason": reason,
                    "debug_info": {"host": "sandbox"},
                }
            )
            sent += 1
        return sent

    # ------------------------------------------------------------------ internals: records

    def _records(self, kind: str) -> list[JSONDict]:
        if kind not in self._stored.records:
            raise ValueError(f"unknown record kind {kind!r}; expected one of {RECORD_KINDS}")
        return self._stored.records[kind]

    def _select(
        self,
        kind: str,
        where: Mapping[str, Any] | None,
        since: int,
        *,
        as_text: bool = False,
    ) -> list[tuple[int, JSONDict]]:
        items = self._records(kind)
        where = self._where(**dict(where or {}))  # late: "#sales" may be created meanwhile
        return [
            (i, items[i])
            for i in range(max(since, 0), len(items))
            if _matches(items[i], where, as_text=as_text)
        ]

    def _where(self, **fields: Any) -> JSONDict:
        """Drop unset filters; channel names (``#sales``) become ids."""
        where = {k: v for k, v in fields.items() if v is not None}
        if isinstance(where.get("channel"), str):
            known = self._lookup_channel(where["channel"])
            if known is not None:
                where["channel"] = known.id
        return where

    async def _record(self, kind: RecordKind, item: JSONDict) -> None:
        self._records(kind).append(copy.deepcopy(item))
        await self._notify()

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # ------------------------------------------------------------------ internals: state

    def _new_id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}0SBX{self._ids:06d}"

    def _new_ts(self) -> str:
        us = max(self._last_ts_us + 1, time.time_ns() // 1000)
        self._last_ts_us = us
        return f"{us // 10**6}.{us % 10**6:06d}"

    def _lookup_channel(self, ref: str) -> SlackChannel | None:
        if ref in self._channels:
            return self._channels[ref]
        name = ref.removeprefix("#")
        for channel in self._channels.values():
            if channel.name == name and channel.user is None:
                return channel
        for channel in self._channels.values():
            if channel.user == ref:
                return channel
        return None

    def _channel_for(self, ref: str | None, *, create: bool = True) -> SlackChannel:
        """Resolve an id, ``#name``, ``name`` or a user id (a DM); maybe create it."""
        if not ref:
            raise SlackApiFailure("channel_not_found")
        known = self._lookup_channel(ref)
        if known is not None:
            return known
        if ref in self._users:
            channel = SlackChannel(id="D" + ref[1:], name=ref.lower(), user=ref)
        elif create and self.auto_create_channels:
            if _CHANNEL_ID.match(ref):
                channel = SlackChannel(id=ref, name=ref.lower(), is_private=ref[0] == "G")
            else:
                channel = SlackChannel(id=self._new_id("C"), name=ref.removeprefix("#"))
        else:
            raise SlackApiFailure("channel_not_found")
        self.add_channel(channel)
        return channel

    def _conversation(self, ref: str) -> list[JSONDict]:
        known = self._lookup_channel(ref)
        return self._stored.conversations.get(known.id, []) if known is not None else []

    def _find_message(self, channel_id: str, ts: str) -> JSONDict | None:
        for message in self._stored.conversations.get(channel_id, []):
            if message["ts"] == ts:
                return message
        return None

    def _store_message(self, channel_id: str, message: JSONDict) -> None:
        self._stored.conversations.setdefault(channel_id, []).append(message)
        thread_ts = message.get("thread_ts")
        if thread_ts is None or thread_ts == message["ts"]:
            return
        parent = self._find_message(channel_id, thread_ts)
        if parent is None:
            return
        parent["thread_ts"] = thread_ts
        parent["reply_count"] = int(parent.get("reply_count", 0)) + 1
        users = list(parent.get("reply_users", []))
        if message.get("user") not in users:
            users.append(message.get("user"))
        parent["reply_users"] = users
        parent["reply_users_count"] = len(users)
        parent["latest_reply"] = message["ts"]

    def _bot_message(self, *, text: str, args: Mapping[str, Any], ts: str) -> JSONDict:
        message: JSONDict = {
            "type": "message",
            "text": text,
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "team": self.team_id,
            "ts": ts,
            "bot_profile": {
                "id": self.bot_id,
                "name": self.bot_name,
                "app_id": self.app_id,
                "team_id": self.team_id,
                "deleted": False,
            },
        }
        for key in ("blocks", "attachments", "metadata"):
            if args.get(key) is not None:
                message[key] = args[key]
        if isinstance(message.get("blocks"), list):
            message["blocks"] = _with_ids(message["blocks"])
        if "mrkdwn" in args:
            message["mrkdwn"] = _truthy(args["mrkdwn"])
        return message

    def _message_content(self, args: JSONDict, *, method: str) -> tuple[str, JSONDict]:
        """Validate text/blocks/attachments of a message call; return the text and parsed args."""
        parsed = dict(args)
        for name in _JSON_FIELDS:
            if name in parsed:
                parsed[name] = _loads_if_text(parsed[name], name)
        text = parsed.get("text")
        text = "" if text is None else str(text)
        if len(text) > _MAX_TEXT:
            raise SlackApiFailure("msg_too_long")
        if parsed.get("blocks") is not None:
            errors = block_errors(parsed["blocks"])
            if errors:
                raise SlackApiFailure("invalid_blocks", response_metadata={"messages": errors})
        if method != "chat.update" and not text and not parsed.get("blocks"):
            if not parsed.get("attachments"):
                raise SlackApiFailure("no_text")
        return text, parsed

    # ------------------------------------------------------------------ Web API methods

    async def _api_test(self, args: JSONDict) -> JSONDict:
        return {"ok": True, "args": args}

    async def _auth_test(self, args: JSONDict) -> JSONDict:
        return {
            "ok": True,
            "url": f"{self.base_url}/",
            "team": self.team_name,
            "user": self.bot_name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    async def _apps_connections_open(self, args: JSONDict) -> JSONDict:
        ticket = uuid.uuid4().hex
        self._tickets.add(ticket)
        url = f"ws://{self.host}:{self.port}/link?ticket={ticket}&app_id={self.app_id}"
        return {"ok": True, "url": url}

    async def _chat_post_message(self, args: JSONDict) -> JSONDict:
        channel = self._channel_for(args.get("channel"))
        text, parsed = self._message_content(args, method="chat.postMessage")
        message = self._bot_message(text=text, args=parsed, ts=self._new_ts())
        thread_ts = parsed.get("thread_ts")
        if thread_ts:
            parent = self._find_message(channel.id, str(thread_ts))
            message["thread_ts"] = str(thread_ts)
            if parent is not None:
                message["parent_user_id"] = parent.get("user")
        self._store_message(channel.id, message)
        await self._record("messages", {**message, "channel": channel.id})
        return {"ok": True, "channel": channel.id, "ts": message["ts"], "message": message}

    async def _chat_update(self, args: JSONDict) -> JSONDict:
        channel = self._channel_for(args.get("channel"), create=False)
        ts = str(args.get("ts") or "")
        message = self._find_message(channel.id, ts)
        if message is None:
            raise SlackApiFailure("message_not_found")
        if message.get("user") != self.bot_user_id:
            raise SlackApiFailure("cant_update_message")
        text, parsed = self._message_content(args, method="chat.update")
        if "text" in parsed:
            message["text"] = text
        for key in ("blocks", "attachments", "metadata"):
            if parsed.get(key) is not None:
                message[key] = parsed[key]
        if isinstance(parsed.get("blocks"), list):
            message["blocks"] = _with_ids(parsed["blocks"])
        message["edited"] = {"user": self.bot_user_id, "ts": self._new_ts()}
        await self._record("updates", {**message, "channel": channel.id})
        return {
            "ok": True,
            "channel": channel.id,
            "ts": ts,
            "text": message["text"],
            "message": {k: v for k, v in message.items() if k != "edited"},
        }

    async def _chat_post_ephemeral(self, args: JSONDict) -> JSONDict:
        channel = self._channel_for(args.get("channel"))
        user = args.get("user")
        if not user:
            raise SlackApiFailure("user_not_found")
        text, parsed = self._message_content(args, method="chat.postEphemeral")
        message_ts = self._new_ts()
        await self._record(
            "ephemerals",
            {
                "channel": channel.id,
                "user": str(user),
                "text": text,
                "blocks": parsed.get("blocks"),
                "thread_ts": parsed.get("thread_ts"),
                "message_ts": message_ts,
                "source": "chat.postEphemeral",
            },
        )
        return {"ok": True, "message_ts": message_ts}

    async def _chat_get_permalink(self, args: JSONDict) -> JSONDict:
        channel = self._channel_for(args.get("channel"), create=False)
        ts = str(args.get("message_ts") or "")
        if self._find_message(channel.id, ts) is None:
            raise SlackApiFailure("message_not_found")
        digits = ts.replace(".", "")
        return {
            "ok": True,
            "channel": channel.id,
            "permalink": f"{self.base_url}/archives/{channel.id}/p{digits}",
        }

    def _new_view(self, spec: Any, *, view_id: str | None = None) -> JSONDict:
        spec = _loads_if_text(spec, "view")
        if not isinstance(spec, Mapping) or spec.get("type") not in ("modal", "home"):
            raise SlackApiFailure("invalid_arguments", detail="view.type must be modal or home")
        if spec["type"] == "modal" and _text_of(spec.get("title")) is None:
            raise SlackApiFailure("invalid_arguments", detail="a modal needs a plain_text title")
        errors = block_errors(spec.get("blocks", []), max_blocks=_MAX_VIEW_BLOCKS)
        if errors:
            raise SlackApiFailure("invalid_arguments", response_metadata={"messages": errors})
        view_id = view_id or self._new_id("V")
        return {
            "id": view_id,
            "team_id": self.team_id,
            "type": spec["type"],
            "blocks": _with_ids(list(spec.get("blocks", []))),
            "private_metadata": spec.get("private_metadata", ""),
            "callback_id": spec.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{uuid.uuid4().hex[:8]}",
            "title": spec.get("title"),
            "clear_on_close": bool(spec.get("clear_on_close", False)),
            "notify_on_close": bool(spec.get("notify_on_close", False)),
            "close": spec.get("close"),
            "submit": spec.get("submit"),
            "previous_view_id": None,
            "root_view_id": view_id,
            "app_id": self.app_id,
            "external_id": spec.get("external_id", ""),
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }

    async def _record_view(self, method: str, view: JSONDict, trigger_id: str | None) -> JSONDict:
        self._stored.views[view["id"]] = view
        await self._record(
            "views",
            {
                "method": method,
                "view_id": view["id"],
                "callback_id": view["callback_id"],
                "trigger_id": trigger_id,
                "view": view,
            },
        )
        return {"ok": True, "view": view}

    async def _views_open(self, args: JSONDict) -> JSONDict:
        trigger_id = args.get("trigger_id")
        if not trigger_id:
            raise SlackApiFailure("invalid_trigger_id")
        return await self._record_view("views.open", self._new_view(args.get("view")), trigger_id)

    async def _views_push(self, args: JSONDict) -> JSONDict:
        trigger_id = args.get("trigger_id")
        if not trigger_id:
            raise SlackApiFailure("invalid_trigger_id")
        return await self._record_view("views.push", self._new_view(args.get("view")), trigger_id)

    async def _views_update(self, args: JSONDict) -> JSONDict:
        current: JSONDict | None = None
        if args.get("view_id"):
            current = self._stored.views.get(str(args["view_id"]))
        elif args.get("external_id"):
            current = next(
                (
                    v
                    for v in self._stored.views.values()
                    if v.get("external_id") == args["external_id"]
                ),
                None,
            )
        if current is None:
            raise SlackApiFailure("not_found")
        if args.get("hash") and args["hash"] != current["hash"]:
            raise SlackApiFailure("hash_conflict")
        view = self._new_view(args.get("view"), view_id=current["id"])
        view["root_view_id"] = current["root_view_id"]
        view["previous_view_id"] = current["previous_view_id"]
        return await self._record_view("views.update", view, None)

    async def _users_info(self, args: JSONDict) -> JSONDict:
        user = self._users.get(str(args.get("user") or ""))
        if user is None:
            raise SlackApiFailure("user_not_found")
        return {"ok": True, "user": user.to_api(self.team_id)}

    async def _conversations_info(self, args: JSONDict) -> JSONDict:
        channel = self._channel_for(args.get("channel"), create=False)
        return {"ok": True, "channel": channel.to_api()}

    async def _conversations_open(self, args: JSONDict) -> JSONDict:
        users = [u for u in str(args.get("users") or "").split(",") if u]
        if len(users) != 1:
            raise SlackApiFailure("invalid_arguments", detail="the sandbox opens 1:1 DMs only")
        if users[0] not in self._users:
            raise SlackApiFailure("user_not_found")
        return {"ok": True, "channel": {"id": self._channel_for(users[0]).id}}

    async def _conversations_history(self, args: JSONDict) -> JSONDict:
        channel = self._channel_for(args.get("channel"), create=False)
        limit = int(args.get("limit") or 100)
        newest_first = list(reversed(self.history(channel.id)))
        return {
            "ok": True,
            "messages": newest_first[:limit],
            "has_more": len(newest_first) > limit,
        }

    async def _conversations_replies(self, args: JSONDict) -> JSONDict:
        channel = self._channel_for(args.get("channel"), create=False)
        ts = str(args.get("ts") or "")
        if self._find_message(channel.id, ts) is None:
            raise SlackApiFailure("thread_not_found")
        return {"ok": True, "messages": self.thread(channel.id, ts), "has_more": False}

    async def _usergroups_users_list(self, args: JSONDict) -> JSONDict:
        group = str(args.get("usergroup") or "")
        if group not in self._usergroups:
            raise SlackApiFailure("no_such_subteam")
        return {"ok": True, "users": list(self._usergroups[group])}

    # ------------------------------------------------------------------ HTTP handlers

    def _take_fault(self, method: str) -> Fault | None:
        plans = self._faults.get(method)
        if not plans:
            return None
        plan = plans[0]
        if plan.remaining is not None:
            plan.remaining -= 1
            if plan.remaining <= 0:
                plans.pop(0)
        return plan.fault

    @staticmethod
    async def _read_args(request: web.Request) -> JSONDict:
        args: JSONDict = dict(request.query)
        if not request.can_read_body:
            return args
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except json.JSONDecodeError:
                raise SlackApiFailure("invalid_json") from None
            if not isinstance(body, dict):
                raise SlackApiFailure("invalid_json")
            args.update(body)
        else:
            form = await request.post()
            args.update({k: v for k, v in form.items() if isinstance(v, str)})
        return args

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        call: JSONDict = {"method": method, "token_kind": None, "args": {}, "fault": None}
        status, headers = 200, {}
        try:
            args = await self._read_args(request)
            token = args.pop("token", None)
            auth = request.headers.get("Authorization", "")
            if auth.lower().startswith("bearer "):
                token = auth[7:].strip()
            call["args"] = args
            handler = self._methods.get(method)
            if handler is None:
                raise SlackApiFailure("unknown_method")
            if not token:
                raise SlackApiFailure("not_authed")
            kind = self._tokens.get(str(token))
            call["token_kind"] = kind
            if kind is None:
                raise SlackApiFailure("invalid_auth")
            if (kind == "app") != (method in _APP_TOKEN_METHODS):
                raise SlackApiFailure("not_allowed_token_type")
            fault = self._take_fault(method)
            if fault is not None:
                call["fault"] = fault.kind
                if fault.kind == "ratelimited":
                    status, headers = 429, {"Retry-After": str(fault.retry_after)}
                    raise SlackApiFailure("ratelimited")
                if fault.kind == "server_error":
                    status = fault.status
                    raise SlackApiFailure("internal_error")
                if fault.kind == "api_error":
                    raise SlackApiFailure(fault.code)
                await asyncio.sleep(fault.seconds)  # the injected delay itself
            body = await handler(args)
        except SlackApiFailure as failure:
            body = {"ok": False, "error": failure.code, **failure.extra}
        call["ok"] = bool(body.get("ok"))
        call["error"] = body.get("error")
        await self._record("calls", call)
        return web.json_response(body, status=status, headers=headers)

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        url_id = request.match_info["url_id"]
        fault = self._take_fault("response_url")
        if fault is not None:
            if fault.kind == "ratelimited":
                headers = {"Retry-After": str(fault.retry_after)}
                return web.Response(status=429, text="rate_limited", headers=headers)
            if fault.kind == "server_error":
                return web.Response(status=fault.status, text="internal_error")
            if fault.kind == "api_error":
                return web.Response(status=404, text=fault.code)
            await asyncio.sleep(fault.seconds)  # the injected delay itself
        if request.content_type == "application/json":
            try:
                payload = await request.json()
            except json.JSONDecodeError:
                return web.Response(status=400, text="invalid_payload")
        else:
            form = await request.post()
            raw = form.get("payload")
            payload = json.loads(raw) if isinstance(raw, str) else dict(form)
        if not isinstance(payload, dict):
            return web.Response(status=400, text="invalid_payload")
        target = self._response_urls.get(url_id, _ResponseTarget(None, None, None))
        await self._record(
            "responses",
            {
                "url_id": url_id,
                "channel": target.channel,
                "message_ts": target.message_ts,
                "user": target.user,
                "payload": payload,
            },
        )
        await self._apply_response(target, payload)
        return web.json_response({"ok": True})

    async def _apply_response(self, target: _ResponseTarget, payload: JSONDict) -> None:
        """Make a ``response_url`` post visible the way Slack would."""
        if target.channel is None:
            return
        original = (
            self._find_message(target.channel, target.message_ts) if target.message_ts else None
        )
        if _truthy(payload.get("delete_original")):
            if original is not None:
                self._stored.conversations[target.channel].remove(original)
            return
        if _truthy(payload.get("replace_original")):
            if original is not None:
                original["text"] = str(payload.get("text") or "")
                for key in ("blocks", "attachments"):
                    if key in payload:
                        original[key] = payload[key]
                    else:
                        original.pop(key, None)
                if isinstance(original.get("blocks"), list):
                    original["blocks"] = _with_ids(original["blocks"])
            return
        text = str(payload.get("text") or "")
        if payload.get("response_type") == "in_channel":
            message = self._bot_message(text=text, args=payload, ts=self._new_ts())
            if payload.get("thread_ts"):
                message["thread_ts"] = str(payload["thread_ts"])
            self._store_message(target.channel, message)
            await self._record("messages", {**message, "channel": target.channel})
            return
        await self._record(
            "ephemerals",
            {
                "channel": target.channel,
                "user": target.user,
                "text": text,
                "blocks": payload.get("blocks"),
                "thread_ts": payload.get("thread_ts"),
                "message_ts": self._new_ts(),
                "source": "response_url",
            },
        )

    async def _handle_socket(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("ticket") not in self._tickets:
            return web.Response(status=401, text="invalid or missing ticket")
        ws = web.WebSocketResponse(timeout=1.0)
        await ws.prepare(request)
        self._sockets_opened += 1
        connection = _SocketConnection(id=uuid.uuid4().hex, serial=self._sockets_opened, ws=ws)
        self._sockets.append(connection)
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": len(self._open_sockets()),
                "debug_info": {"host": "sandbox", "approximate_connection_time": 18060},
                "connection_info": {"app_id": self.app_id},
            }
        )
        await self._notify()
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(msg.data)
                except json.JSONDecodeError:
                    continue
                if isinstance(data, dict) and data.get("envelope_id"):
                    envelope = self._stored.envelopes.get(str(data["envelope_id"]), {})
                    await self._record(
                        "acks",
                        {
                            "envelope_id": data["envelope_id"],
                            "type": envelope.get("type"),
                            "payload": data.get("payload"),
                            "connection": connection.id,
                        },
                    )
        finally:
            self._sockets.remove(connection)
            await self._notify()
        return ws

    async def _handle_permalink(self, request: web.Request) -> web.Response:
        channel = self._lookup_channel(request.match_info["channel"])
        digits = request.match_info["digits"]
        ts = f"{digits[:-6]}.{digits[-6:]}"
        if channel is not None:
            message = self._find_message(channel.id, ts)
            if message is not None:
                return web.json_response({"ok": True, "channel": channel.id, "message": message})
        return web.json_response({"ok": False, "error": "message_not_found"}, status=404)

    # ------------------------------------------------------------------ control API (HTTP)

    def _add_control_routes(self, app: web.Application) -> None:
        route = "/_sandbox"
        app.router.add_get(f"{route}/state", self._control_state)
        app.router.add_get(f"{route}/records/{{kind}}", self._control_records)
        app.router.add_post(f"{route}/wait", self._control_wait)
        app.router.add_get(f"{route}/channels/{{channel}}/history", self._control_history)
        app.router.add_get(f"{route}/channels/{{channel}}/threads/{{ts}}", self._control_thread)
        app.router.add_post(f"{route}/channels", self._control_add_channel)
        app.router.add_post(f"{route}/users", self._control_add_user)
        app.router.add_post(f"{route}/usergroups", self._control_set_usergroup)
        app.router.add_post(f"{route}/faults", self._control_add_fault)
        app.router.add_delete(f"{route}/faults", self._control_clear_faults)
        app.router.add_post(f"{route}/response_urls", self._control_response_url)
        app.router.add_post(f"{route}/user_messages", self._control_user_message)
        app.router.add_post(f"{route}/socket/envelopes", self._control_push_envelope)
        app.router.add_post(f"{route}/socket/disconnect", self._control_disconnect)
        app.router.add_post(f"{route}/reset", self._control_reset)

    @staticmethod
    async def _json_body(request: web.Request) -> JSONDict:
        if not request.can_read_body:
            return {}
        try:
            body = await request.json()
        except json.JSONDecodeError:
            raise web.HTTPBadRequest(text='{"ok": false, "error": "invalid_json"}') from None
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text='{"ok": false, "error": "expected a JSON object"}')
        return body

    @staticmethod
    def _bad_request(detail: str) -> web.Response:
        return web.json_response(
            {"ok": False, "error": "invalid_arguments", "detail": detail}, status=400
        )

    async def _control_state(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "ok": True,
                "api_base": self.api_base,
                "bot_token": self.bot_token,
                "app_token": self.app_token,
                "team_id": self.team_id,
                "app_id": self.app_id,
                "bot_user_id": self.bot_user_id,
                "socket_connections": len(self._open_sockets()),
                "counts": {kind: len(self._records(kind)) for kind in RECORD_KINDS},
                "channels": [asdict(c) for c in self._channels.values()],
                "users": [asdict(u) for u in self._users.values()],
                "usergroups": self._usergroups,
            }
        )

    async def _control_records(self, request: web.Request) -> web.Response:
        kind = request.match_info["kind"]
        if kind not in RECORD_KINDS:
            return self._bad_request(f"kind must be one of {list(RECORD_KINDS)}")
        query = dict(request.query)
        since = int(query.pop("since", "0") or 0)
        where = self._where(**query)
        items = [item for _, item in self._select(kind, where, since, as_text=True)]
        return web.json_response({"ok": True, "items": items, "next": len(self._records(kind))})

    async def _control_wait(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        kind = body.get("kind")
        if kind not in RECORD_KINDS:
            return self._bad_request(f"kind must be one of {list(RECORD_KINDS)}")
        since = body.get("since")
        try:
            items = await self.wait(
                kind,
                int(body.get("count", 1)),
                where=body.get("where") or {},
                since=None if since is None else int(since),
                timeout=float(body.get("timeout", 5.0)),
            )
        except TimeoutError as exc:
            return web.json_response(
                {"ok": False, "error": "timeout", "detail": str(exc)}, status=408
            )
        return web.json_response({"ok": True, "items": items})

    async def _control_history(self, request: web.Request) -> web.Response:
        try:
            messages = self.history(request.match_info["channel"])
        except SlackApiFailure as failure:
            return web.json_response({"ok": False, "error": failure.code}, status=404)
        return web.json_response({"ok": True, "messages": messages})

    async def _control_thread(self, request: web.Request) -> web.Response:
        try:
            messages = self.thread(request.match_info["channel"], request.match_info["ts"])
        except SlackApiFailure as failure:
            return web.json_response({"ok": False, "error": failure.code}, status=404)
        return web.json_response({"ok": True, "messages": messages})

    async def _control_add_channel(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        try:
            channel = SlackChannel(**body)
        except TypeError as exc:
            return self._bad_request(str(exc))
        self.add_channel(channel)
        return web.json_response({"ok": True, "channel": asdict(channel)})

    async def _control_add_user(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        try:
            user = SlackUser(**body)
        except TypeError as exc:
            return self._bad_request(str(exc))
        self.add_user(user)
        return web.json_response({"ok": True, "user": asdict(user)})

    async def _control_set_usergroup(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        if not isinstance(body.get("id"), str) or not isinstance(body.get("users"), list):
            return self._bad_request('expected {"id": "S...", "users": ["U...", ...]}')
        self.set_usergroup(body["id"], [str(u) for u in body["users"]])
        return web.json_response({"ok": True})

    async def _control_add_fault(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        method = body.get("method")
        if not isinstance(method, str):
            return self._bad_request('expected {"method": "chat.postMessage", "kind": ...}')
        try:
            fault = Fault.from_dict(body)
        except ValueError as exc:
            return self._bad_request(str(exc))
        times = body.get("times", 1)
        self.inject_fault(method, fault, times=None if times is None else int(times))
        return web.json_response({"ok": True, "fault": asdict(fault)})

    async def _control_clear_faults(self, request: web.Request) -> web.Response:
        self.clear_faults(request.query.get("method"))
        return web.json_response({"ok": True})

    async def _control_response_url(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        try:
            url = self.response_url(
                channel=body.get("channel"),
                message_ts=body.get("message_ts"),
                user=body.get("user"),
            )
        except SlackApiFailure as failure:
            return web.json_response({"ok": False, "error": failure.code}, status=404)
        return web.json_response({"ok": True, "url": url})

    async def _control_user_message(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        if not all(isinstance(body.get(k), str) for k in ("channel", "user", "text")):
            return self._bad_request('expected {"channel", "user", "text"[, "thread_ts"]}')
        try:
            event = self.post_as_user(
                channel=body["channel"],
                user=body["user"],
                text=body["text"],
                thread_ts=body.get("thread_ts"),
            )
        except SlackApiFailure as failure:
            return web.json_response({"ok": False, "error": failure.code}, status=404)
        return web.json_response({"ok": True, "event": event})

    async def _control_push_envelope(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        envelope_type = body.get("type")
        if envelope_type not in ("events_api", "interactive", "slash_commands"):
            return self._bad_request("type must be events_api, interactive or slash_commands")
        if not isinstance(body.get("payload"), dict):
            return self._bad_request("payload must be an object")
        try:
            envelope_id = await self.push_envelope(
                envelope_type,
                body["payload"],
                accepts_response_payload=body.get("accepts_response_payload"),
                retry_attempt=int(body.get("retry_attempt", 0)),
                retry_reason=str(body.get("retry_reason", "")),
                timeout=float(body.get("timeout", 5.0)),
            )
        except TimeoutError as exc:
            return web.json_response(
                {"ok": False, "error": "no_connection", "detail": str(exc)}, status=408
            )
        return web.json_response({"ok": True, "envelope_id": envelope_id})

    async def _control_disconnect(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        sent = await self.disconnect_sockets(reason=str(body.get("reason", "refresh_requested")))
        return web.json_response({"ok": True, "connections": sent})

    async def _control_reset(self, request: web.Request) -> web.Response:
        await self.reset()
        return web.json_response({"ok": True})


def _parse_user(spec: str) -> SlackUser:
    parts = spec.split(":")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise argparse.ArgumentTypeError(f"expected ID:NAME[:EMAIL], got {spec!r}")
    return SlackUser(id=parts[0], name=parts[1], email=parts[2] if len(parts) > 2 else None)


def _parse_channel(spec: str) -> SlackChannel:
    channel_id, _, name = spec.partition(":")
    if not channel_id or not name:
        raise argparse.ArgumentTypeError(f"expected ID:NAME, got {spec!r}")
    return SlackChannel(id=channel_id, name=name.removeprefix("#"))


def _parse_usergroup(spec: str) -> tuple[str, list[str]]:
    group_id, _, members = spec.partition(":")
    if not group_id:
        raise argparse.ArgumentTypeError(f"expected ID:U1,U2, got {spec!r}")
    return group_id, [m for m in members.split(",") if m]


async def _serve(sandbox: SlackSandbox) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with sandbox:
        print(sandbox.api_base, flush=True)
        print(
            f"Slack sandbox on {sandbox.base_url}\n"
            f"  bot token  {sandbox.bot_token}\n"
            f"  app token  {sandbox.app_token} (Socket Mode via apps.connections.open)\n"
            f"  team       {sandbox.team_id}, bot user {sandbox.bot_user_id}\n"
            f"  control    {sandbox.control_base} (state, records/<kind>, wait, faults, ...)",
            file=sys.stderr,
            flush=True,
        )
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> None:
    """Run the sandbox until SIGINT/SIGTERM; the first stdout line is the API base."""
    parser = argparse.ArgumentParser(
        prog="python -m triage_sandbox.slack",
        description="Loopback Slack Web API + Socket Mode sandbox.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8082, help="0 picks a free port")
    parser.add_argument("--bot-token", default=DEFAULT_BOT_TOKEN)
    parser.add_argument("--app-token", default=DEFAULT_APP_TOKEN)
    parser.add_argument("--team-id", default=DEFAULT_TEAM_ID)
    parser.add_argument(
        "--user", action="append", type=_parse_user, default=[], help="ID:NAME[:EMAIL]"
    )
    parser.add_argument(
        "--channel", action="append", type=_parse_channel, default=[], help="ID:NAME"
    )
    parser.add_argument(
        "--usergroup", action="append", type=_parse_usergroup, default=[], help="ID:U1,U2"
    )
    parser.add_argument(
        "--strict-channels",
        action="store_true",
        help="answer channel_not_found for channels not given with --channel",
    )
    args = parser.parse_args(argv)
    sandbox = SlackSandbox(
        host=args.host,
        port=args.port,
        bot_token=args.bot_token,
        app_token=args.app_token,
        team_id=args.team_id,
        users=args.user,
        channels=args.channel,
        usergroups=dict(args.usergroup),
        auto_create_channels=not args.strict_channels,
    )
    asyncio.run(_serve(sandbox))


if __name__ == "__main__":
    main()
