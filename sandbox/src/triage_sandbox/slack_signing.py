"""Build correctly signed Slack requests and deliver them to an app's HTTP endpoint.

Slack signs every request it sends to an app: ``v0=`` + hex HMAC-SHA256 of
``v0:{X-Slack-Request-Timestamp}:{raw body}`` with the app's signing secret, sent in
``X-Slack-Signature``. slack_sdk's ``SignatureVerifier`` (used by Bolt) refuses requests whose
timestamp is more than 300 s away from its clock.

The payload builders produce the JSON shapes Slack sends (``block_actions``,
``view_submission``, ``event_callback`` with ``message``/``app_mention`` events, slash commands,
``url_verification``). The same dicts can be pushed over Socket Mode with
:class:`triage_sandbox.slack.SlackSandbox`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp

JSONDict = dict[str, Any]

DEFAULT_TEAM_ID = "T0SANDBOX"
DEFAULT_TEAM_DOMAIN = "sandbox"
DEFAULT_APP_ID = "A0SANDBOX"
DEFAULT_BOT_USER_ID = "U0SANDBOT"
DEFAULT_BOT_ID = "B0SANDBOT"
VERIFICATION_TOKEN = "sandbox-verification-token"  # deprecated field Slack still sends

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
JSON_CONTENT_TYPE = "application/json"


def compute_signature(*, signing_secret: str, timestamp: int | str, body: bytes | str) -> str:
    """Return Slack's ``v0=<hex>`` signature of ``body`` sent at ``timestamp``."""
    raw = body.encode() if isinstance(body, str) else body
    base = f"v0:{timestamp}:".encode() + raw
    digest = hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()
    return f"v0={digest}"


@dataclass(frozen=True)
class SignedRequest:
    """A request body exactly as Slack would POST it, with its signing headers."""

    body: bytes
    headers: Mapping[str, str]
    timestamp: int
    signature: str

    @property
    def text(self) -> str:
        """The raw body decoded as UTF-8."""
        return self.body.decode()


def sign_request(
    body: bytes | str,
    *,
    signing_secret: str,
    content_type: str,
    timestamp: int | None = None,
    skew_seconds: int = 0,
    retry_num: int | None = None,
    retry_reason: str | None = None,
    signature: str | None = None,
) -> SignedRequest:
    """Sign ``body`` the way Slack does.

    ``timestamp`` defaults to now; ``skew_seconds`` shifts it (``-301`` makes a request that
    slack_sdk rejects, ``-299`` one it accepts). A wrong ``signing_secret`` yields a request that
    fails verification; ``signature`` overrides the computed value outright. ``retry_num`` and
    ``retry_reason`` add ``X-Slack-Retry-Num`` / ``X-Slack-Retry-Reason`` as Slack's retries do.
    """
    raw = body.encode() if isinstance(body, str) else body
    ts = (int(time.time()) if timestamp is None else timestamp) + skew_seconds
    sig = (
        signature
        if signature is not None
        else compute_signature(signing_secret=signing_secret, timestamp=ts, body=raw)
    )
    headers = {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": sig,
        "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
    }
    if retry_num is not None:
        headers["X-Slack-Retry-Num"] = str(retry_num)
        headers["X-Slack-Retry-Reason"] = retry_reason or "http_timeout"
    elif retry_reason is not None:
        headers["X-Slack-Retry-Reason"] = retry_reason
    return SignedRequest(body=raw, headers=headers, timestamp=ts, signature=sig)


def interaction_request(
    payload: Mapping[str, Any],
    *,
    signing_secret: str,
    timestamp: int | None = None,
    skew_seconds: int = 0,
    retry_num: int | None = None,
    retry_reason: str | None = None,
    signature: str | None = None,
) -> SignedRequest:
    """Sign an interactivity payload (block_actions, view_submission) as a ``payload=`` form."""
    body = urlencode({"payload": json.dumps(payload, separators=(",", ":"))})
    return sign_request(
        body,
        signing_secret=signing_secret,
        content_type=FORM_CONTENT_TYPE,
        timestamp=timestamp,
        skew_seconds=skew_seconds,
        retry_num=retry_num,
        retry_reason=retry_reason,
        signature=signature,
    )


def event_request(
    body: Mapping[str, Any],
    *,
    signing_secret: str,
    timestamp: int | None = None,
    skew_seconds: int = 0,
    retry_num: int | None = None,
    retry_reason: str | None = None,
    signature: str | None = None,
) -> SignedRequest:
    """Sign an Events API body (event_callback, url_verification), sent as JSON."""
    return sign_request(
        json.dumps(body, separators=(",", ":")),
        signing_secret=signing_secret,
        content_type=JSON_CONTENT_TYPE,
        timestamp=timestamp,
        skew_seconds=skew_seconds,
        retry_num=retry_num,
        retry_reason=retry_reason,
        signature=signature,
    )


def slash_command_request(
    fields: Mapping[str, str],
    *,
    signing_secret: str,
    timestamp: int | None = None,
    skew_seconds: int = 0,
    signature: str | None = None,
) -> SignedRequest:
    """Sign a slash command, sent as plain form fields."""
    return sign_request(
        urlencode(dict(fields)),
        signing_secret=signing_secret,
        content_type=FORM_CONTENT_TYPE,
        timestamp=timestamp,
        skew_seconds=skew_seconds,
        signature=signature,
    )


def new_trigger_id() -> str:
    """A fresh trigger_id in Slack's ``<digits>.<digits>.<hex>`` shape."""
    return f"{int(time.time())}.{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex}"


def new_event_id() -> str:
    """A fresh Events API ``event_id`` (``Ev`` + 10 upper-case characters)."""
    return "Ev" + uuid.uuid4().hex[:10].upper()


def new_ts() -> str:
    """A Slack message timestamp for now (``seconds.microseconds``)."""
    us = time.time_ns() // 1000
    return f"{us // 10**6}.{us % 10**6:06d}"


def _user(user_id: str, user_name: str | None, team_id: str) -> JSONDict:
    name = user_name or user_id.lower()
    return {"id": user_id, "username": name, "name": name, "team_id": team_id}


def _find_action(blocks: Sequence[Any], action_id: str) -> tuple[str | None, JSONDict | None]:
    """The block_id and element dict of the interactive element with ``action_id``."""
    for block in blocks:
        if not isinstance(block, Mapping):
            continue
        elements = list(block.get("elements") or [])
        if isinstance(block.get("accessory"), Mapping):
            elements.append(block["accessory"])
        for element in elements:
            if isinstance(element, Mapping) and element.get("action_id") == action_id:
                return block.get("block_id"), dict(element)
    return None, None


def block_actions_payload(
    *,
    user_id: str,
    channel_id: str,
    action_id: str,
    response_url: str,
    value: str | None = None,
    message: Mapping[str, Any] | None = None,
    message_ts: str | None = None,
    block_id: str | None = None,
    team_id: str = DEFAULT_TEAM_ID,
    user_name: str | None = None,
    channel_name: str | None = None,
    trigger_id: str | None = None,
    api_app_id: str = DEFAULT_APP_ID,
    is_ephemeral: bool = False,
    state_values: Mapping[str, Any] | None = None,
) -> JSONDict:
    """A ``block_actions`` payload: user ``user_id`` clicked button ``action_id`` on a message.

    Pass ``message`` (for example a message recorded by the sandbox) to embed it as Slack does;
    the button's ``block_id``, text and ``value`` are then taken from its blocks unless given.
    ``response_url`` should come from ``SlackSandbox.response_url(...)`` so ``respond()`` lands
    in the sandbox.
    """
    msg = dict(message) if message is not None else None
    ts = message_ts or (str(msg["ts"]) if msg and "ts" in msg else new_ts())
    found_block, element = _find_action((msg.get("blocks") or []) if msg else [], action_id)
    button_text = (element or {}).get("text") or {"type": "plain_text", "text": action_id}
    action: JSONDict = {
        "action_id": action_id,
        "block_id": block_id or found_block or "actions",
        "text": button_text,
        "type": (element or {}).get("type", "button"),
        "action_ts": new_ts(),
    }
    resolved_value = value if value is not None else (element or {}).get("value")
    if resolved_value is not None:
        action["value"] = resolved_value
    if element and "style" in element:
        action["style"] = element["style"]
    payload: JSONDict = {
        "type": "block_actions",
        "user": _user(user_id, user_name, team_id),
        "api_app_id": api_app_id,
        "token": VERIFICATION_TOKEN,
        "container": {
            "type": "message",
            "message_ts": ts,
            "channel_id": channel_id,
            "is_ephemeral": is_ephemeral,
        },
        "trigger_id": trigger_id or new_trigger_id(),
        "team": {"id": team_id, "domain": DEFAULT_TEAM_DOMAIN},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": channel_name or channel_id.lower()},
        "state": {"values": dict(state_values or {})},
        "response_url": response_url,
        "actions": [action],
    }
    if msg is not None:
        msg.pop("channel", None)  # sandbox records carry it; Slack's embedded message does not
        payload["message"] = msg
    return payload


def _state_values(values: Mapping[str, Mapping[str, Any]]) -> JSONDict:
    """Expand ``{block_id: {action_id: "text" | element_state}}`` into Slack's state shape."""
    out: JSONDict = {}
    for block_id, actions in values.items():
        out[block_id] = {
            action_id: (
                {"type": "plain_text_input", "value": state}
                if isinstance(state, str) or state is None
                else dict(state)
            )
            for action_id, state in actions.items()
        }
    return out


def view_submission_payload(
    *,
    user_id: str,
    values: Mapping[str, Mapping[str, Any]],
    view: Mapping[str, Any] | None = None,
    callback_id: str | None = None,
    private_metadata: str | None = None,
    team_id: str = DEFAULT_TEAM_ID,
    user_name: str | None = None,
    trigger_id: str | None = None,
    api_app_id: str = DEFAULT_APP_ID,
    response_urls: Sequence[Mapping[str, Any]] = (),
) -> JSONDict:
    """A ``view_submission`` payload: ``user_id`` submitted a modal with ``values``.

    ``values`` maps block_id -> action_id -> a string (a plain_text_input value) or a full
    element state dict (``{"type": "static_select", "selected_option": {...}}``). Pass ``view``
    (for example the view the sandbox recorded from ``views.open``) to submit that modal; its
    id, callback_id, private_metadata, title and blocks are kept unless overridden.
    """
    base: JSONDict = dict(view or {})
    view_id = str(base.get("id") or "V" + uuid.uuid4().hex[:10].upper())
    submitted: JSONDict = {
        "id": view_id,
        "team_id": team_id,
        "type": base.get("type", "modal"),
        "blocks": base.get("blocks", []),
        "private_metadata": (
            private_metadata if private_metadata is not None else base.get("private_metadata", "")
        ),
        "callback_id": callback_id if callback_id is not None else base.get("callback_id", ""),
        "state": {"values": _state_values(values)},
        "hash": base.get("hash", f"{int(time.time())}.{uuid.uuid4().hex[:8]}"),
        "title": base.get("title", {"type": "plain_text", "text": "Modal"}),
        "clear_on_close": base.get("clear_on_close", False),
        "notify_on_close": base.get("notify_on_close", False),
        "close": base.get("close"),
        "submit": base.get("submit"),
        "previous_view_id": base.get("previous_view_id"),
        "root_view_id": base.get("root_view_id", view_id),
        "app_id": base.get("app_id", api_app_id),
        "external_id": base.get("external_id", ""),
        "app_installed_team_id": team_id,
        "bot_id": base.get("bot_id", DEFAULT_BOT_ID),
    }
    return {
        "type": "view_submission",
        "team": {"id": team_id, "domain": DEFAULT_TEAM_DOMAIN},
        "user": _user(user_id, user_name, team_id),
        "api_app_id": api_app_id,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id or new_trigger_id(),
        "view": submitted,
        "response_urls": [dict(r) for r in response_urls],
        "is_enterprise_install": False,
        "enterprise": None,
    }


def message_event(
    *,
    channel: str,
    user: str,
    text: str,
    ts: str | None = None,
    thread_ts: str | None = None,
    parent_user_id: str | None = None,
    team_id: str = DEFAULT_TEAM_ID,
    channel_type: str = "channel",
    blocks: Sequence[Mapping[str, Any]] | None = None,
) -> JSONDict:
    """A ``message`` event written by a person; with ``thread_ts`` it is a thread reply."""
    event_ts = ts or new_ts()
    event: JSONDict = {
        "type": "message",
        "channel": channel,
        "user": user,
        "text": text,
        "ts": event_ts,
        "event_ts": event_ts,
        "team": team_id,
        "channel_type": channel_type,
        "client_msg_id": str(uuid.uuid4()),
    }
    if blocks is not None:
        event["blocks"] = [dict(b) for b in blocks]
    if thread_ts is not None:
        event["thread_ts"] = thread_ts
        if parent_user_id is not None:
            event["parent_user_id"] = parent_user_id
    return event


def app_mention_event(
    *,
    channel: str,
    user: str,
    text: str,
    ts: str | None = None,
    thread_ts: str | None = None,
    team_id: str = DEFAULT_TEAM_ID,
) -> JSONDict:
    """An ``app_mention`` event; ``text`` should contain ``<@BOT_USER_ID>`` as Slack's does."""
    event_ts = ts or new_ts()
    event: JSONDict = {
        "type": "app_mention",
        "channel": channel,
        "user": user,
        "text": text,
        "ts": event_ts,
        "event_ts": event_ts,
        "team": team_id,
        "client_msg_id": str(uuid.uuid4()),
    }
    if thread_ts is not None:
        event["thread_ts"] = thread_ts
    return event


def event_callback_body(
    event: Mapping[str, Any],
    *,
    team_id: str = DEFAULT_TEAM_ID,
    api_app_id: str = DEFAULT_APP_ID,
    event_id: str | None = None,
    event_time: int | None = None,
    bot_user_id: str = DEFAULT_BOT_USER_ID,
) -> JSONDict:
    """Wrap ``event`` in the Events API ``event_callback`` envelope.

    Keep the returned dict to redeliver it: the same ``event_id`` is what retries carry.
    """
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "api_app_id": api_app_id,
        "event": dict(event),
        "type": "event_callback",
        "event_id": event_id or new_event_id(),
        "event_time": int(time.time()) if event_time is None else event_time,
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": "4-" + uuid.uuid4().hex,
    }


def url_verification_body(*, challenge: str | None = None) -> JSONDict:
    """The ``url_verification`` handshake Slack sends when an Events URL is configured."""
    return {
        "token": VERIFICATION_TOKEN,
        "challenge": challenge or uuid.uuid4().hex,
        "type": "url_verification",
    }


def slash_command_payload(
    *,
    command: str,
    text: str,
    user_id: str,
    channel_id: str,
    response_url: str,
    team_id: str = DEFAULT_TEAM_ID,
    user_name: str | None = None,
    channel_name: str | None = None,
    trigger_id: str | None = None,
    api_app_id: str = DEFAULT_APP_ID,
) -> dict[str, str]:
    """The form fields of a slash command invocation (also the Socket Mode payload)."""
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "team_domain": DEFAULT_TEAM_DOMAIN,
        "channel_id": channel_id,
        "channel_name": channel_name or channel_id.lower(),
        "user_id": user_id,
        "user_name": user_name or user_id.lower(),
        "command": command,
        "text": text,
        "api_app_id": api_app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id or new_trigger_id(),
    }


@dataclass(frozen=True)
class Delivery:
    """What the app answered: HTTP status, body text and headers."""

    status: int
    body: str
    headers: Mapping[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


async def deliver(
    url: str,
    request: SignedRequest,
    *,
    session: aiohttp.ClientSession | None = None,
    timeout: float = 10.0,
) -> Delivery:
    """POST ``request`` to the app at ``url`` and return its answer (never raises on status)."""
    own = session is None
    client = session or aiohttp.ClientSession()
    try:
        async with client.post(
            url,
            data=request.body,
            headers=dict(request.headers),
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:
            body = await response.text()
            return Delivery(status=response.status, body=body, headers=dict(response.headers))
    finally:
        if own:
            await client.close()
