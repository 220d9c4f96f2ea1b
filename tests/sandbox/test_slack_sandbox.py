"""The Slack sandbox driven by the real slack_sdk AsyncWebClient and a real slack_bolt AsyncApp."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from triage_sandbox.slack import (
    Fault,
    SlackChannel,
    SlackSandbox,
    SlackUser,
    block_errors,
    control_sequences,
)
from triage_sandbox.slack_signing import (
    app_mention_event,
    block_actions_payload,
    deliver,
    event_callback_body,
    event_request,
    interaction_request,
    message_event,
    slash_command_payload,
    slash_command_request,
    url_verification_body,
    view_submission_payload,
)

SECRET = "sandbox-signing-secret"
OFFICER = "U0OFFICER1"
SALES = "U0SALES01"
COMPLIANCE = "C0COMPLY"

CARD_BLOCKS: list[dict[str, Any]] = [
    {"type": "section", "block_id": "summary", "text": {"type": "mrkdwn", "text": "*Case 7*"}},
    {
        "type": "actions",
        "block_id": "decide",
        "elements": [
            {
                "type": "button",
                "action_id": "approve",
                "text": {"type": "plain_text", "text": "Approve"},
                "value": "case-7",
                "style": "primary",
            },
            {
                "type": "button",
                "action_id": "open_reason",
                "text": {"type": "plain_text", "text": "Decide with reason"},
                "value": "case-7",
            },
        ],
    },
]

REASON_VIEW: dict[str, Any] = {
    "type": "modal",
    "callback_id": "decide",
    "title": {"type": "plain_text", "text": "Decide"},
    "submit": {"type": "plain_text", "text": "Submit"},
    "blocks": [
        {
            "type": "input",
            "block_id": "reason",
            "label": {"type": "plain_text", "text": "Reason"},
            "element": {"type": "plain_text_input", "action_id": "text"},
        }
    ],
}


@pytest.fixture
async def slack() -> AsyncIterator[SlackSandbox]:
    sandbox = SlackSandbox(
        users=[
            SlackUser(id=OFFICER, name="olga", email="olga@example.com", real_name="Olga K"),
            SlackUser(id=SALES, name="sam", email="sam@example.com", team_id="T0OTHER"),
        ],
        channels=[SlackChannel(id=COMPLIANCE, name="compliance", is_private=True)],
        usergroups={"S0COMPLY": [OFFICER]},
    )
    async with sandbox:
        yield sandbox


@pytest.fixture
def client(slack: SlackSandbox) -> AsyncWebClient:
    return AsyncWebClient(token=slack.bot_token, base_url=slack.api_base, retry_handlers=[])


def build_app(slack: SlackSandbox) -> AsyncApp:
    """A small Bolt app with one listener per kind of request the sandbox can deliver."""
    app = AsyncApp(
        client=AsyncWebClient(token=slack.bot_token, base_url=slack.api_base),
        signing_secret=SECRET,
    )

    @app.action("approve")
    async def approve(ack: Any, body: dict[str, Any], respond: Any, client: Any) -> None:
        await ack()
        text = f"Approved by <@{body['user']['id']}>"
        await respond(text=text, replace_original=True)
        await client.chat_update(
            channel=body["channel"]["id"],
            ts=body["message"]["ts"],
            text=text,
            blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
        )

    @app.action("open_reason")
    async def open_reason(ack: Any, body: dict[str, Any], client: Any) -> None:
        await ack()
        view = {**REASON_VIEW, "private_metadata": body["channel"]["id"]}
        await client.views_open(trigger_id=body["trigger_id"], view=view)

    @app.view("decide")
    async def decide(ack: Any, body: dict[str, Any], view: dict[str, Any], client: Any) -> None:
        await ack()
        reason = view["state"]["values"]["reason"]["text"]["value"]
        await client.chat_postMessage(
            channel=view["private_metadata"], text=f"{body['user']['id']} decided: {reason}"
        )

    @app.event("message")
    async def on_message(event: dict[str, Any], say: Any, request: Any) -> None:
        retry = request.headers.get("x-slack-retry-num", ["0"])[0]
        thread = event.get("thread_ts") or event["ts"]
        await say(text=f"got {event['text']!r} retry={retry}", thread_ts=thread)

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], say: Any) -> None:
        await say(text="at your service", thread_ts=event["ts"])

    @app.command("/triage")
    async def on_command(ack: Any, command: dict[str, Any]) -> None:
        await ack(f"case {command['text']} noted")

    return app


@pytest.fixture
async def bolt_url(slack: SlackSandbox) -> AsyncIterator[str]:
    runner = web.AppRunner(build_app(slack).web_app(path="/slack/events"), shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    finally:
        await runner.cleanup()


async def post_card(client: AsyncWebClient) -> dict[str, Any]:
    response = await client.chat_postMessage(channel=COMPLIANCE, text="Case 7", blocks=CARD_BLOCKS)
    return dict(response["message"], channel=response["channel"])


def click(slack: SlackSandbox, card: dict[str, Any], action_id: str) -> dict[str, Any]:
    return block_actions_payload(
        user_id=OFFICER,
        channel_id=COMPLIANCE,
        action_id=action_id,
        message=card,
        response_url=slack.response_url(channel=COMPLIANCE, message_ts=card["ts"], user=OFFICER),
    )


# ---------------------------------------------------------------- Web API through slack_sdk


async def test_lookups_and_auth(slack: SlackSandbox, client: AsyncWebClient) -> None:
    auth = await client.auth_test()
    assert (auth["user_id"], auth["team_id"], auth["bot_id"]) == (
        slack.bot_user_id,
        slack.team_id,
        slack.bot_id,
    )
    user = (await client.users_info(user=OFFICER))["user"]
    assert (user["name"], user["profile"]["email"], user["team_id"]) == (
        "olga",
        "olga@example.com",
        slack.team_id,
    )
    assert (await client.users_info(user=SALES))["user"]["team_id"] == "T0OTHER"
    channel = (await client.conversations_info(channel=COMPLIANCE))["channel"]
    assert channel["name"] == "compliance" and channel["is_private"]
    assert (await client.usergroups_users_list(usergroup="S0COMPLY"))["users"] == [OFFICER]
    assert slack.history("#nowhere") == [] and slack.message("C0NONE", "1.1") is None

    for call, error in [
        (client.users_info(user="U0NOBODY"), "user_not_found"),
        (client.usergroups_users_list(usergroup="S0NONE"), "no_such_subteam"),
        (AsyncWebClient(token="xoxb-wrong", base_url=slack.api_base).auth_test(), "invalid_auth"),
        (AsyncWebClient(token=slack.app_token, base_url=slack.api_base).auth_test(), None),
    ]:
        with pytest.raises(SlackApiError) as raised:
            await call
        assert raised.value.response["error"] == (error or "not_allowed_token_type")
    assert [c["error"] for c in slack.calls("auth.test")] == [
        None,
        "invalid_auth",
        "not_allowed_token_type",
    ]


async def test_messages_threads_updates_ephemerals(
    slack: SlackSandbox, client: AsyncWebClient
) -> None:
    card = await post_card(client)
    assert card["channel"] == COMPLIANCE and card["blocks"] == CARD_BLOCKS
    reply = await client.chat_postMessage(channel="#compliance", text="note", thread_ts=card["ts"])
    assert reply["channel"] == COMPLIANCE and reply["message"]["thread_ts"] == card["ts"]
    other = await client.chat_postMessage(
        channel="C0SALES",  # auto-created
        text="lead",
        blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "lead"}}],
    )
    assert other["message"]["blocks"][0]["block_id"]  # Slack fills in missing block ids
    waiter = asyncio.create_task(slack.wait_messages(channel="#leads"))  # no such channel yet
    by_name = await client.chat_postMessage(channel="#leads", text="new lead")
    assert (await waiter)[0]["channel"] == by_name["channel"] != "#leads"

    assert [m["text"] for m in await slack.wait_messages(2, channel=COMPLIANCE)] == [
        "Case 7",
        "note",
    ]
    (threaded,) = await slack.wait_messages(thread_ts=card["ts"])
    assert threaded["ts"] == reply["ts"]
    assert [m["ts"] for m in slack.messages(channel="C0SALES")] == [other["ts"]]

    updated = await client.chat_update(channel=COMPLIANCE, ts=card["ts"], text="Case 7: approved")
    assert updated["text"] == "Case 7: approved"
    (update,) = await slack.wait_updates(channel=COMPLIANCE)
    assert update["ts"] == card["ts"] and update["blocks"] == CARD_BLOCKS  # blocks kept
    parent, only_reply = slack.thread(COMPLIANCE, card["ts"])
    assert parent["text"] == "Case 7: approved" and parent["reply_count"] == 1
    assert only_reply["text"] == "note"
    assert [m["ts"] for m in slack.history(COMPLIANCE)] == [card["ts"]]
    assert slack.messages()[0]["text"] == "Case 7"  # the record keeps what was posted

    await client.chat_postEphemeral(channel=COMPLIANCE, user=SALES, text="not for you")
    (ephemeral,) = await slack.wait_ephemerals(user=SALES)
    assert ephemeral["text"] == "not for you" and ephemeral["source"] == "chat.postEphemeral"

    link = await client.chat_getPermalink(channel=COMPLIANCE, message_ts=card["ts"])
    async with aiohttp.ClientSession() as http, http.get(link["permalink"]) as page:
        assert (await page.json())["message"]["text"] == "Case 7: approved"

    with pytest.raises(SlackApiError, match="message_not_found"):
        await client.chat_update(channel=COMPLIANCE, ts="1.000001", text="x")
    with pytest.raises(SlackApiError, match="no_text"), pytest.warns(UserWarning):
        await client.chat_postMessage(channel=COMPLIANCE, text="")
    too_long = [
        {**CARD_BLOCKS[1]["elements"][0], "text": {"type": "plain_text", "text": "x" * 76}}
    ]
    with pytest.raises(SlackApiError) as raised:
        await client.chat_postMessage(
            channel=COMPLIANCE, text="t", blocks=[{"type": "actions", "elements": too_long}]
        )
    assert raised.value.response["error"] == "invalid_blocks"
    assert (
        "/blocks/0/elements/0/text/text"
        in raised.value.response["response_metadata"]["messages"][0]
    )


async def test_form_encoded_and_token_in_body(slack: SlackSandbox) -> None:
    """Older clients send form data with JSON-encoded blocks and the token as a field."""
    form = {
        "token": slack.bot_token,
        "channel": COMPLIANCE,
        "text": "form",
        "blocks": '[{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]',
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{slack.api_base}chat.postMessage", data=form) as response,
    ):
        body = await response.json()
    assert body["ok"] and body["message"]["blocks"][0]["text"]["text"] == "hi"
    assert slack.calls("chat.postMessage")[0]["token_kind"] == "bot"


async def test_views_open_update_push(slack: SlackSandbox, client: AsyncWebClient) -> None:
    opened = (await client.views_open(trigger_id="1.2.abc", view=REASON_VIEW))["view"]
    assert opened["id"].startswith("V") and opened["callback_id"] == "decide"
    (record,) = await slack.wait_views(callback_id="decide")
    assert (record["method"], record["trigger_id"]) == ("views.open", "1.2.abc")

    changed = {**REASON_VIEW, "title": {"type": "plain_text", "text": "Decide (2)"}}
    updated = await client.views_update(view_id=opened["id"], view=changed, hash=opened["hash"])
    assert updated["view"]["id"] == opened["id"]
    assert slack.view(opened["id"])["title"]["text"] == "Decide (2)"  # type: ignore[index]
    with pytest.raises(SlackApiError, match="hash_conflict"):
        await client.views_update(view_id=opened["id"], view=changed, hash=opened["hash"])
    pushed = (await client.views_push(trigger_id="1.2.def", view=REASON_VIEW))["view"]
    assert pushed["id"] != opened["id"]
    assert [v["method"] for v in slack.views()] == ["views.open", "views.update", "views.push"]
    with pytest.raises(SlackApiError, match="not_found"):
        await client.views_update(view_id="V0MISSING", view=REASON_VIEW)


async def test_faults_seen_by_slack_sdk(slack: SlackSandbox, client: AsyncWebClient) -> None:
    slack.inject_fault("chat.postMessage", Fault.ratelimited(retry_after=3))
    with pytest.raises(SlackApiError) as raised:
        await client.chat_postMessage(channel=COMPLIANCE, text="x")
    assert raised.value.response.status_code == 429
    assert raised.value.response.headers["Retry-After"] == "3"
    assert raised.value.response["error"] == "ratelimited"

    slack.inject_fault("chat.postMessage", Fault.server_error())
    with pytest.raises(SlackApiError) as raised:
        await client.chat_postMessage(channel=COMPLIANCE, text="x")
    assert raised.value.response.status_code == 500

    slack.inject_fault("chat.update", Fault.api_error("channel_not_found"), times=2)
    for _ in range(2):
        with pytest.raises(SlackApiError, match="channel_not_found"):
            await client.chat_update(channel=COMPLIANCE, ts="1.1", text="x")
    with pytest.raises(SlackApiError, match="message_not_found"):  # the fault is used up
        await client.chat_update(channel=COMPLIANCE, ts="1.1", text="x")

    slack.inject_fault("auth.test", Fault.delay(0.3))
    started = time.monotonic()
    assert (await client.auth_test())["ok"]
    assert time.monotonic() - started >= 0.3
    assert slack.messages() == []
    assert [c["fault"] for c in slack.calls("chat.postMessage")] == ["ratelimited", "server_error"]


async def test_rate_limit_retry_handler_waits_retry_after(slack: SlackSandbox) -> None:
    client = AsyncWebClient(
        token=slack.bot_token,
        base_url=slack.api_base,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)],
    )
    slack.inject_fault("chat.postMessage", Fault.ratelimited(retry_after=1))
    started = time.monotonic()
    response = await client.chat_postMessage(channel=COMPLIANCE, text="after the wait")
    assert response["ok"] and time.monotonic() - started >= 1.0
    assert [c["fault"] for c in slack.calls("chat.postMessage")] == ["ratelimited", None]
    assert [m["text"] for m in slack.messages()] == ["after the wait"]


# ---------------------------------------------------------------- signed requests to Bolt (HTTP)


async def test_button_click_acks_responds_and_updates(
    slack: SlackSandbox, client: AsyncWebClient, bolt_url: str
) -> None:
    card = await post_card(client)
    delivery = await deliver(
        bolt_url, interaction_request(click(slack, card, "approve"), signing_secret=SECRET)
    )
    assert (delivery.status, delivery.body) == (200, "")

    (response,) = await slack.wait_responses()
    assert response["payload"]["replace_original"] is True
    assert response["payload"]["text"] == f"Approved by <@{OFFICER}>"
    assert (response["channel"], response["message_ts"]) == (COMPLIANCE, card["ts"])
    (update,) = await slack.wait_updates(channel=COMPLIANCE)
    assert update["ts"] == card["ts"] and update["text"] == f"Approved by <@{OFFICER}>"
    (now,) = slack.history(COMPLIANCE)
    assert "actions" not in [b["type"] for b in now["blocks"]]  # the buttons are gone
    assert len(slack.calls("auth.test")) == 1


async def test_forged_requests_are_refused(
    slack: SlackSandbox, client: AsyncWebClient, bolt_url: str
) -> None:
    card = await post_card(client)
    payload = click(slack, card, "approve")
    wrong_secret = await deliver(bolt_url, interaction_request(payload, signing_secret="wrong"))
    assert wrong_secret.status == 401
    forged = interaction_request(payload, signing_secret=SECRET, signature="v0=" + "0" * 64)
    assert (await deliver(bolt_url, forged)).status == 401
    stale = interaction_request(payload, signing_secret=SECRET, skew_seconds=-301)
    assert (await deliver(bolt_url, stale)).status == 401

    genuine = await deliver(bolt_url, interaction_request(payload, signing_secret=SECRET))
    assert genuine.status == 200
    await slack.wait_updates()
    assert len(slack.responses()) == 1 and len(slack.updates()) == 1  # only the genuine click


@pytest.mark.parametrize(("skew", "status"), [(-301, 401), (-299, 200), (299, 200), (301, 401)])
async def test_clock_skew_window(bolt_url: str, skew: int, status: int) -> None:
    body = url_verification_body(challenge="c-123")
    delivery = await deliver(
        bolt_url, event_request(body, signing_secret=SECRET, skew_seconds=skew)
    )
    assert delivery.status == status
    if status == 200:
        assert delivery.json() == {"challenge": "c-123"}


async def test_view_submission_reaches_view_listener(
    slack: SlackSandbox, client: AsyncWebClient, bolt_url: str
) -> None:
    card = await post_card(client)
    before = slack.mark("messages")
    opened = await deliver(
        bolt_url, interaction_request(click(slack, card, "open_reason"), signing_secret=SECRET)
    )
    assert opened.status == 200
    (record,) = await slack.wait_views(callback_id="decide")
    submission = view_submission_payload(
        user_id=OFFICER, view=record["view"], values={"reason": {"text": "domiciled in Canada"}}
    )
    submitted = await deliver(bolt_url, interaction_request(submission, signing_secret=SECRET))
    assert submitted.status == 200
    (decision,) = await slack.wait("messages", where={"channel": COMPLIANCE}, since=before)
    assert decision["text"] == f"{OFFICER} decided: domiciled in Canada"


async def test_events_thread_reply_retry_and_mention(
    slack: SlackSandbox, client: AsyncWebClient, bolt_url: str
) -> None:
    card = await post_card(client)
    event = slack.post_as_user(
        channel=COMPLIANCE, user=SALES, text="any news?", thread_ts=card["ts"]
    )
    body = event_callback_body(event)
    first = await deliver(bolt_url, event_request(body, signing_secret=SECRET))
    retried = await deliver(
        bolt_url,
        event_request(body, signing_secret=SECRET, retry_num=1, retry_reason="http_timeout"),
    )
    assert (first.status, retried.status) == (200, 200)
    replies = await slack.wait_messages(2, thread_ts=card["ts"])
    assert sorted(m["text"] for m in replies) == [
        "got 'any news?' retry=0",
        "got 'any news?' retry=1",
    ]
    assert [m["text"] for m in slack.thread(COMPLIANCE, card["ts"])][:2] == ["Case 7", "any news?"]

    mention = app_mention_event(channel=COMPLIANCE, user=SALES, text=f"<@{slack.bot_user_id}> hi")
    delivery = await deliver(
        bolt_url, event_request(event_callback_body(mention), signing_secret=SECRET)
    )
    assert delivery.status == 200
    (answer,) = await slack.wait_messages(thread_ts=mention["ts"])
    assert answer["text"] == "at your service"


async def test_slash_command_over_http(slack: SlackSandbox, bolt_url: str) -> None:
    fields = slash_command_payload(
        command="/triage",
        text="7",
        user_id=OFFICER,
        channel_id=COMPLIANCE,
        response_url=slack.response_url(channel=COMPLIANCE, user=OFFICER),
    )
    delivery = await deliver(bolt_url, slash_command_request(fields, signing_secret=SECRET))
    assert (delivery.status, delivery.body) == (200, "case 7 noted")


# ---------------------------------------------------------------- Socket Mode


async def test_socket_mode_interactive_events_and_commands(
    slack: SlackSandbox, client: AsyncWebClient
) -> None:
    handler = AsyncSocketModeHandler(build_app(slack), app_token=slack.app_token)
    await handler.connect_async()
    try:
        assert await slack.wait_connections(1) == 1
        card = await post_card(client)
        envelope_id = await slack.push_interactive(click(slack, card, "approve"))
        ack = await slack.wait_ack(envelope_id)
        assert ack["type"] == "interactive" and ack["payload"] is None
        (response,) = await slack.wait_responses()
        assert response["payload"]["replace_original"] is True
        await slack.wait_updates()

        message = message_event(channel=COMPLIANCE, user=SALES, text="ping", thread_ts=card["ts"])
        envelope_id = await slack.push_events_api(
            event_callback_body(message), retry_attempt=2, retry_reason="timeout"
        )
        await slack.wait_ack(envelope_id)
        (reply,) = await slack.wait_messages(thread_ts=card["ts"])
        assert reply["text"] == "got 'ping' retry=2"

        fields = slash_command_payload(
            command="/triage",
            text="9",
            user_id=OFFICER,
            channel_id=COMPLIANCE,
            response_url=slack.response_url(channel=COMPLIANCE),
        )
        ack = await slack.wait_ack(await slack.push_slash_command(fields))
        assert ack["payload"] == {"text": "case 9 noted"}

        opened = slack.sockets_opened
        assert await slack.disconnect_sockets() == 1  # Slack's "refresh_requested"
        assert await slack.wait_connections(1, opened_after=opened) == 1
        ack = await slack.wait_ack(await slack.push_slash_command(fields))
        assert ack["payload"] == {"text": "case 9 noted"}
        assert len(slack.calls("apps.connections.open")) == 2
    finally:
        await handler.close_async()
    assert slack.calls("apps.connections.open")[0]["token_kind"] == "app"


async def test_respond_effects_follow_slack(slack: SlackSandbox, client: AsyncWebClient) -> None:
    card = await post_card(client)
    url = slack.response_url(channel=COMPLIANCE, message_ts=card["ts"], user=SALES)
    async with aiohttp.ClientSession() as http:
        for payload in (
            {"text": "only you see this"},
            {"text": "everyone sees this", "response_type": "in_channel"},
            {"text": "replaced", "replace_original": True},
        ):
            async with http.post(url, json=payload) as response:
                assert response.status == 200
    (ephemeral,) = await slack.wait_ephemerals(user=SALES)
    assert ephemeral["source"] == "response_url"
    assert [m["text"] for m in slack.history(COMPLIANCE)] == ["replaced", "everyone sees this"]
    assert "blocks" not in (slack.message(COMPLIANCE, card["ts"]) or {})
    async with aiohttp.ClientSession() as http, http.post(url, json={"delete_original": True}):
        pass
    assert slack.message(COMPLIANCE, card["ts"]) is None


# ---------------------------------------------------------------- control API and CLI


async def test_http_control_api(slack: SlackSandbox, client: AsyncWebClient) -> None:
    base = slack.control_base
    async with aiohttp.ClientSession() as http:

        async def call(verb: str, path: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
            async with http.request(verb, base + path, **kwargs) as response:
                return response.status, await response.json()

        assert (await call("POST", "users", json={"id": "U0NEW", "name": "nina"}))[0] == 200
        assert (await client.users_info(user="U0NEW"))["user"]["name"] == "nina"
        fault = {"method": "chat.postMessage", "kind": "api_error", "code": "is_archived"}
        assert (await call("POST", "faults", json=fault))[0] == 200
        with pytest.raises(SlackApiError, match="is_archived"):
            await client.chat_postMessage(channel=COMPLIANCE, text="x")

        waiter = asyncio.create_task(
            call("POST", "wait", json={"kind": "messages", "where": {"channel": COMPLIANCE}})
        )
        card = await post_card(client)
        status, waited = await waiter
        assert status == 200 and waited["items"][0]["ts"] == card["ts"]
        status, listed = await call("GET", f"records/messages?channel={COMPLIANCE}")
        assert [m["ts"] for m in listed["items"]] == [card["ts"]] and listed["next"] == 1
        status, history = await call("GET", f"channels/{COMPLIANCE}/history")
        assert history["messages"][0]["text"] == "Case 7"

        status, timed_out = await call("POST", "wait", json={"kind": "updates", "timeout": 0.05})
        assert status == 408 and timed_out["error"] == "timeout"

        status, made = await call(
            "POST",
            "response_urls",
            json={"channel": COMPLIANCE, "message_ts": card["ts"], "user": OFFICER},
        )
        async with http.post(made["url"], json={"text": "done", "replace_original": True}):
            pass
        status, responses = await call("GET", "records/responses")
        assert responses["items"][0]["payload"]["text"] == "done"

        status, posted = await call(
            "POST", "user_messages", json={"channel": COMPLIANCE, "user": SALES, "text": "hey"}
        )
        assert posted["event"]["type"] == "message" and posted["event"]["user"] == SALES
        status, no_socket = await call(
            "POST",
            "socket/envelopes",
            json={"type": "interactive", "payload": {}, "timeout": 0.05},
        )
        assert status == 408 and no_socket["error"] == "no_connection"

        status, state = await call("GET", "state")
        assert state["counts"]["messages"] == 1 and state["api_base"] == slack.api_base
        assert (await call("POST", "reset"))[0] == 200
        assert (await call("GET", "state"))[1]["counts"]["messages"] == 0


async def test_cli_runs_standalone() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "triage_sandbox.slack",
        "--port",
        "0",
        "--user",
        "U0CLI:cli:cli@example.com",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        api_base = (await asyncio.wait_for(process.stdout.readline(), 15)).decode().strip()
        assert api_base.startswith("http://127.0.0.1:") and api_base.endswith("/api/")
        client = AsyncWebClient(token="xoxb-sandbox-bot-token", base_url=api_base)
        assert (await client.users_info(user="U0CLI"))["user"]["profile"]["email"] == (
            "cli@example.com"
        )
    finally:
        process.terminate()
        assert await asyncio.wait_for(process.wait(), 10) == 0


# ---------------------------------------------------------------- helpers


def test_signatures_match_slack_sdk() -> None:
    verifier = SignatureVerifier(SECRET)
    request = event_request(
        url_verification_body(), signing_secret=SECRET, retry_num=2, retry_reason="http_error"
    )
    headers = dict(request.headers)
    assert verifier.is_valid(
        body=request.text,
        timestamp=headers["X-Slack-Request-Timestamp"],
        signature=headers["X-Slack-Signature"],
    )
    assert (headers["X-Slack-Retry-Num"], headers["X-Slack-Retry-Reason"]) == ("2", "http_error")
    pinned = interaction_request({"type": "block_actions"}, signing_secret=SECRET, timestamp=1000)
    assert pinned.headers["X-Slack-Request-Timestamp"] == "1000"
    assert pinned.signature == verifier.generate_signature(timestamp="1000", body=pinned.body)


def test_block_actions_payload_takes_button_from_message() -> None:
    message = {"ts": "1700000000.000100", "text": "t", "blocks": CARD_BLOCKS, "channel": "C1"}
    payload = block_actions_payload(
        user_id=OFFICER,
        channel_id="C1",
        action_id="approve",
        message=message,
        response_url="http://127.0.0.1:1/actions/x",
    )
    (action,) = payload["actions"]
    assert (action["block_id"], action["value"], action["style"]) == (
        "decide",
        "case-7",
        "primary",
    )
    assert payload["container"]["message_ts"] == message["ts"]
    assert "channel" not in payload["message"]


def test_control_sequences_and_block_limits() -> None:
    assert control_sequences({"text": "hi <!channel> <@U1> <https://x.example|x>"}) == [
        "!channel",
        "@U1",
        "https://x.example|x",
    ]
    escaped = {
        "text": "&lt;!channel&gt;",
        "blocks": [
            {"type": "section", "text": {"type": "plain_text", "text": "<!here>"}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "<!everyone>"}]},
        ],
    }
    assert control_sequences(escaped) == ["!everyone"]
    assert block_errors([{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}])
    assert block_errors(
        [{"type": "divider", "block_id": "a"}, {"type": "divider", "block_id": "a"}]
    )
    assert block_errors(CARD_BLOCKS) == []
