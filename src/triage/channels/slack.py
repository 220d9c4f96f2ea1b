"""Slack adapter (slack-bolt): staff cards out, sales replies and officers' decisions in.

It translates; it never decides. Out: `SlackSender` is the outbox's sender for staff rows
(channel "slack", see `triage.channels.slack_staff`): it posts cards, replies in their threads
and edits them. In: a Bolt `AsyncApp`, on our aiohttp server at POST /slack/events (HTTP mode)
or over Socket Mode when an app token is set:

- a message typed in a lead card's thread is queued for the client as a sales reply, exactly
  once per Slack event; the dispatcher's gate judges it at send time, and a blocked or held
  reply gets a notice in the thread (`StaffCards.gate_verdict`);
- a case card's button opens a modal asking for a reason (or the question for the client), for
  compliance officers only: anyone else gets an ephemeral refusal and the attempt goes into the
  client's audit chain; a button whose case does not match the card it sits on is refused;
- the modal's submission is carried out by `triage.service.officer_requests.Escalations`,
  exactly once per view submission.

Bolt checks each HTTP request's signature and its 5-minute timestamp window (401 otherwise);
refusals are logged and counted. The listeners run before the response
(`process_before_response`): each does one short transaction (and at most a couple of Slack
calls) well within Slack's 3 s, so a database outage answers 500 and Slack retries the event,
which the `processed_update` key then makes a no-op.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import update
from sqlmodel import col

from triage.channels.slack_cards import (
    ACTION_PREFIX,
    MODAL_CALLBACK,
    REASON_ACTION,
    REASON_BLOCK,
    decision_modal,
)
from triage.channels.slack_staff import SOURCE, RelayResult, StaffCards, StaffPost
from triage.domain.codes import Outcome
from triage.domain.officer import OfficerAction
from triage.flows.engine import Engine
from triage.observability import Metrics
from triage.outbox.senders import (
    Delivery,
    PermanentSendError,
    SentReceipt,
    TransientSendError,
)
from triage.service.officer_requests import (
    Escalations,
    OfficerRequest,
    OfficerResult,
    Resolution,
    load_state,
)
from triage.settings import Settings
from triage.store.db import SessionFactory, write_transaction
from triage.store.models import SlackThread, utcnow

log = logging.getLogger("triage.slack")

#: Where Slack's Events API and interactivity requests arrive on our HTTP server.
EVENTS_PATH = "/slack/events"
#: Bodies larger than this are refused before parsing (Slack's requests are far smaller).
MAX_BODY = 1024 * 1024
#: slack_sdk's SignatureVerifier refuses timestamps further than this from now.
SIGNATURE_WINDOW_SECONDS = 300
#: What Bolt answers (HTTP 200!) when its auth.test call fails. We turn it into a 503, so that
#: Slack retries the request instead of it being acknowledged and lost.
AUTH_FAILED = "triage: Slack authorization (auth.test) failed; retry later"

#: Slack error codes worth retrying; every other error code is permanent.
_TRANSIENT_ERRORS = frozenset(
    {
        "ratelimited",
        "rate_limited",
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
        "timeout",
    }
)
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,30}$")


# --- out: the outbox's sender -------------------------------------------------------------------


def _retry_after(error: SlackApiError) -> float | None:
    headers = getattr(error.response, "headers", None) or {}
    for name in ("Retry-After", "retry-after"):
        value = headers.get(name)
        if isinstance(value, list):
            value = value[0] if value else None
        if value is not None:
            with contextlib.suppress(TypeError, ValueError):
                return max(float(value), 0.0)
    return None


def classify(error: SlackApiError) -> TransientSendError | PermanentSendError:
    """A Slack API error as the dispatcher needs it: worth retrying, or not."""
    status = int(getattr(error.response, "status_code", 200) or 200)
    data = getattr(error.response, "data", None)
    code = str(data.get("error", "")) if isinstance(data, dict) else ""
    if status == 429 or code in ("ratelimited", "rate_limited"):
        return TransientSendError(
            f"slack rate limited ({code or status})", retry_after=_retry_after(error)
        )
    if status >= 500 or code in _TRANSIENT_ERRORS:
        return TransientSendError(f"slack unavailable: HTTP {status} {code}".strip())
    return PermanentSendError(f"slack refused: {code or f'HTTP {status}'}")


class SlackSender:
    """Delivers staff rows to Slack: cards, thread replies and card edits (a ChannelSender).

    A card's post is idempotent: when its thread already has a ts (a row sent again after a
    worker died between the post and the mark), it is not posted twice. An edit older than the
    version on screen is skipped, so a retried edit never brings back a stale card.
    """

    def __init__(
        self,
        client: AsyncWebClient,
        sessions: SessionFactory,
        *,
        clock: Callable[[], datetime] = utcnow,
        metrics: Metrics | None = None,
    ) -> None:
        self._client = client
        self._sessions = sessions
        self._clock = clock
        self._metrics = metrics

    async def send(self, delivery: Delivery) -> SentReceipt:
        """Carry out one staff row; raise Transient/PermanentSendError on failure."""
        try:
            post = StaffPost.loads(delivery.text)
        except ValueError as exc:
            raise PermanentSendError(f"outbox row {delivery.outbox_id}: {exc}") from None
        async with self._sessions() as session:
            thread = await session.get(SlackThread, post.thread)
        if thread is None or thread.id is None:
            raise PermanentSendError(f"slack thread {post.thread} does not exist")
        try:
            return await self._carry_out(post, thread)
        except SlackApiError as exc:
            error = classify(exc)
            self._count("api_error" if isinstance(error, PermanentSendError) else "transient")
            raise error from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._count("network")
            raise TransientSendError(f"slack unreachable: {exc!r}") from exc

    async def _carry_out(self, post: StaffPost, thread: SlackThread) -> SentReceipt:
        assert thread.id is not None
        if post.op == "post":
            if thread.ts:
                return SentReceipt(message_id=thread.ts)
            response = await self._client.chat_postMessage(
                channel=thread.channel,
                text=post.text,
                blocks=post.blocks or None,
                unfurl_links=False,
                unfurl_media=False,
            )
            ts = str(response["ts"])
            await self._posted(thread.id, ts, str(response.get("channel") or thread.channel), post)
            return SentReceipt(message_id=ts)
        if not thread.ts:
            # The card itself is not posted yet (queued just before, or failing): try later.
            raise TransientSendError(
                f"card of slack thread {thread.id} not posted yet", retry_after=2
            )
        if post.op == "reply":
            response = await self._client.chat_postMessage(
                channel=thread.channel,
                thread_ts=thread.ts,
                text=post.text,
                blocks=post.blocks or None,
                unfurl_links=False,
                unfurl_media=False,
            )
            return SentReceipt(message_id=str(response["ts"]))
        if post.version <= thread.shown_version:
            return SentReceipt(message_id=thread.ts)
        await self._client.chat_update(
            channel=thread.channel, ts=thread.ts, text=post.text, blocks=post.blocks
        )
        async with self._sessions() as session, write_transaction(session):
            await session.exec(
                update(SlackThread)
                .where(
                    col(SlackThread.id) == thread.id,
                    col(SlackThread.shown_version) < post.version,
                )
                .values(shown_version=post.version)
            )
        return SentReceipt(message_id=thread.ts)

    async def _posted(self, thread_id: int, ts: str, channel: str, post: StaffPost) -> None:
        # Slack answers with the channel's id even when the settings named it "#sales": the id
        # is what later events carry, so it is what the thread keeps.
        async with self._sessions() as session, write_transaction(session):
            await session.exec(
                update(SlackThread)
                .where(col(SlackThread.id) == thread_id, col(SlackThread.ts).is_(None))
                .values(
                    ts=ts,
                    channel=channel,
                    posted_at=self._clock(),
                    shown_version=post.version,
                )
            )

    def _count(self, kind: str) -> None:
        if self._metrics is not None:
            self._metrics.channel_errors.labels("slack", kind).inc()


# --- in: the Bolt app ---------------------------------------------------------------------------


def _parse_case(value: str) -> tuple[int, int, int] | None:
    try:
        data = json.loads(value)
        thread, client, inquiry = int(data["t"]), int(data["c"]), int(data["i"])
    except (ValueError, TypeError, KeyError):
        return None
    return thread, client, inquiry


async def post_ephemeral(client: AsyncWebClient, *, channel: str, user: str, text: str) -> None:
    """Show `text` to one person in a channel; a failure is logged, never raised (the request's
    real work is already committed by then)."""
    if not channel or not _USER_ID.match(user):
        return
    try:
        await client.chat_postEphemeral(channel=channel, user=user, text=text)
    except SlackApiError as exc:
        log.warning("ephemeral message failed: %s", exc.response.get("error"))


class SlackInbound:
    """The listeners of the Bolt app: sales replies, case buttons, the decision modal."""

    def __init__(
        self,
        *,
        sessions: SessionFactory,
        cards: StaffCards,
        escalations: Escalations,
        clock: Callable[[], datetime],
        metrics: Metrics | None,
        on_queued: Callable[[], None] | None,
    ) -> None:
        self._sessions = sessions
        self._cards = cards
        self._escalations = escalations
        self._clock = clock
        self._metrics = metrics
        self._on_queued = on_queued

    def queued(self) -> None:
        """Rows were queued: drain now rather than at the next tick."""
        if self._on_queued is not None:
            self._on_queued()

    def _refused(self, reason: str, **fields: Any) -> None:
        log.warning("slack request refused: %s", reason, extra={"reason": reason, **fields})
        if self._metrics is not None:
            self._metrics.refused.labels("slack", reason).inc()

    # --- message events -------------------------------------------------------------------------

    async def on_message(self, event: dict[str, Any], body: dict[str, Any]) -> RelayResult | None:
        """A person's reply in one of our threads: queue it for the client if it is a lead's."""
        if event.get("subtype") or event.get("bot_id"):
            return None
        ts, thread_ts = event.get("ts"), event.get("thread_ts")
        user, channel = event.get("user"), event.get("channel")
        if not (ts and thread_ts and user and channel) or thread_ts == ts:
            return None
        key = f"event:{body.get('event_id') or f'{channel}:{ts}'}"
        result = await self._cards.relay_sales_reply(
            self._sessions,
            channel=str(channel),
            thread_ts=str(thread_ts),
            user_id=str(user),
            text=str(event.get("text") or ""),
            ts=str(ts),
            key=key,
            now=self._clock(),
        )
        if result.status != "not_a_lead_thread":
            log.info(
                "sales reply %s",
                result.status,
                extra={"client_id": result.client_id, "outbox_id": result.outbox_id, "key": key},
            )
        if result.status == "queued":
            self.queued()
        return result

    # --- case buttons ---------------------------------------------------------------------------

    async def _matching_case(
        self, action: dict[str, Any], *, channel: str, message_ts: str
    ) -> tuple[OfficerAction, tuple[int, int, int]] | None:
        """The button's action and case (thread, client, inquiry), if the button is one of ours
        and sits on that case's card; None for anything else."""
        try:
            officer_action = OfficerAction(str(action["action_id"]).removeprefix(ACTION_PREFIX))
        except ValueError:
            return None
        case = _parse_case(str(action.get("value") or ""))
        if case is None:
            return None
        async with self._sessions() as session:
            thread = await session.get(SlackThread, case[0])
        if (
            thread is None
            or thread.kind != "case"
            or (thread.client_id, thread.inquiry) != case[1:]
            or (thread.channel, thread.ts) != (channel, message_ts)
        ):
            return None
        return officer_action, case

    async def on_case_button(self, body: dict[str, Any], client: AsyncWebClient) -> None:
        """Check the button, the person and the case, then open the modal for a reason."""
        action = body["actions"][0]
        user = body.get("user") or {}
        user_id = str(user.get("id") or "")
        team_id = str((body.get("team") or {}).get("id") or user.get("team_id") or "")
        container = body.get("container") or {}
        channel = str((body.get("channel") or {}).get("id") or container.get("channel_id") or "")
        message_ts = str(container.get("message_ts") or "")
        matched = await self._matching_case(action, channel=channel, message_ts=message_ts)
        if matched is None:
            self._refused(
                "mismatched_case",
                user_id=user_id,
                team_id=team_id,
                channel=channel,
                message_ts=message_ts,
                value=str(action.get("value"))[:200],
            )
            await post_ephemeral(
                client,
                channel=channel,
                user=user_id,
                text="This button does not belong to this case; nothing done.",
            )
            return
        officer_action, case = matched
        _, client_id, inquiry = case
        if not self._escalations.is_officer(user_id):
            await self._escalations.refuse(
                client_id=client_id,
                officer_id=user_id,
                team_id=team_id,
                action=officer_action.value,
                inquiry=inquiry,
                why="not a compliance officer (TRIAGE_COMPLIANCE_USERS)",
                key=f"action:{action.get('action_ts') or body.get('trigger_id')}:{user_id}",
            )
            self._refused("not_an_officer", user_id=user_id, team_id=team_id, client_id=client_id)
            await post_ephemeral(
                client,
                channel=channel,
                user=user_id,
                text=(
                    "Only compliance officers can decide escalated cases. "
                    "Your attempt was recorded."
                ),
            )
            return
        async with self._sessions() as session:
            _, state = await load_state(session, client_id)
        if inquiry >= len(state.inquiries) or (
            state.inquiries[inquiry].outcome is not Outcome.ESCALATE
        ):
            outcome = state.inquiries[inquiry].outcome if inquiry < len(state.inquiries) else None
            await post_ephemeral(
                client,
                channel=channel,
                user=user_id,
                text=f"This case is no longer open (now {outcome}).",
            )
            return
        metadata = {
            "t": case[0],
            "c": client_id,
            "i": inquiry,
            "a": officer_action.value,
            "ch": channel,
            "ts": message_ts,
        }
        view = decision_modal(
            officer_action, metadata=metadata, client_id=client_id, inquiry=inquiry
        )
        await client.views_open(trigger_id=body["trigger_id"], view=view)

    # --- the decision modal ---------------------------------------------------------------------

    async def on_submission(
        self, body: dict[str, Any], view: dict[str, Any]
    ) -> tuple[OfficerResult | None, dict[str, Any]]:
        """Carry out a submitted decision; the result and what to ack the modal with."""
        user = body.get("user") or {}
        user_id = str(user.get("id") or "")
        team_id = str((body.get("team") or {}).get("id") or user.get("team_id") or "")
        try:
            meta = json.loads(view.get("private_metadata") or "{}")
            action = OfficerAction(meta["a"])
            thread_id, client_id, inquiry = int(meta["t"]), int(meta["c"]), int(meta["i"])
        except (ValueError, TypeError, KeyError):
            self._refused("bad_view_metadata", user_id=user_id, team_id=team_id)
            return None, {"response_action": "errors", "errors": {REASON_BLOCK: "Unknown case."}}
        async with self._sessions() as session:
            thread = await session.get(SlackThread, thread_id)
        if thread is None or (thread.client_id, thread.inquiry, thread.kind) != (
            client_id,
            inquiry,
            "case",
        ):
            self._refused("mismatched_case", user_id=user_id, team_id=team_id, view=view.get("id"))
            return None, {"response_action": "errors", "errors": {REASON_BLOCK: "Unknown case."}}
        values = ((view.get("state") or {}).get("values") or {}).get(REASON_BLOCK) or {}
        text = str((values.get(REASON_ACTION) or {}).get("value") or "")
        request = OfficerRequest(
            client_id=client_id,
            inquiry=inquiry,
            action=action,
            officer_id=user_id,
            team_id=team_id,
            text=text,
            key=f"view:{view.get('id')}:{view.get('hash')}",
            source=SOURCE,
        )
        result = await self._escalations.resolve(request)
        log.info(
            "officer request %s",
            result.resolution.value,
            extra={"client_id": client_id, "inquiry": inquiry, "user_id": user_id},
        )
        if result.resolution is Resolution.REFUSED:
            self._refused("not_an_officer", user_id=user_id, team_id=team_id, client_id=client_id)
        if result.resolution in (Resolution.DECIDED, Resolution.AWAITING_SECOND, Resolution.ASKED):
            if result.resolution is Resolution.DECIDED and self._metrics is not None:
                self._metrics.decisions.labels(result.outcome or "", "officer").inc()
            self.queued()
            return result, {}
        if result.resolution is Resolution.DUPLICATE:
            return result, {}
        return result, {"response_action": "errors", "errors": {REASON_BLOCK: result.detail}}


def build_app(
    *,
    client: AsyncWebClient,
    signing_secret: str,
    inbound: SlackInbound,
) -> AsyncApp:
    """A Bolt app with the triage listeners (one per worker or test)."""
    app = AsyncApp(
        # A name of our own: without one Bolt walks the call stack to make one up (slow).
        name="triage",
        client=client,
        signing_secret=signing_secret,
        process_before_response=True,
        user_facing_authorize_error_message=AUTH_FAILED,
        logger=logging.getLogger("triage.slack.bolt"),
    )

    @app.event("message")
    async def on_message(event: dict[str, Any], body: dict[str, Any]) -> None:
        await inbound.on_message(event, body)

    @app.action(re.compile("^" + re.escape(ACTION_PREFIX)))
    async def on_case_button(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        await inbound.on_case_button(body, client)

    @app.view(MODAL_CALLBACK)
    async def on_submission(
        ack: Any, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        result, answer = await inbound.on_submission(body, view)
        await ack(**answer)
        if result is None or answer or result.resolution is Resolution.DUPLICATE:
            return
        meta = json.loads(view.get("private_metadata") or "{}")
        user_id = str((body.get("user") or {}).get("id") or "")
        await post_ephemeral(
            client, channel=str(meta.get("ch") or ""), user=user_id, text=result.detail
        )

    return app


# --- the entry point -------------------------------------------------------------------------


class SlackChannel:
    """Slack for the composition root: the sender, the Bolt app, the hooks and the SLA job.

    Wiring (see the module docstring): `sender` goes to the dispatcher as the "slack" sender,
    `staff` to the dispatcher and the ConversationStore, `register(web_app)`
    adds POST /slack/events, `start()`/`stop()` run Socket Mode when an app token is set, and
    `remind_overdue_cases` is the SLA job.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        sessions: SessionFactory,
        engine: Engine,
        metrics: Metrics | None = None,
        clock: Callable[[], datetime] = utcnow,
        client: AsyncWebClient | None = None,
        on_queued: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self._sessions = sessions
        self._clock = clock
        self.client = client or AsyncWebClient(
            token=settings.slack_bot_token, base_url=settings.slack_api_base
        )
        self.cards = StaffCards(
            engine=engine,
            sales_channel=settings.slack_sales_channel,
            compliance_channel=settings.slack_compliance_channel,
        )
        self.escalations = Escalations(
            sessions,
            engine=engine,
            officers=settings.compliance_user_ids,
            four_eyes=settings.four_eyes,
            clock=clock,
            staff=self.cards,
        )
        self.sender = SlackSender(self.client, sessions, clock=clock, metrics=metrics)
        self.inbound = SlackInbound(
            sessions=sessions,
            cards=self.cards,
            escalations=self.escalations,
            clock=clock,
            metrics=metrics,
            on_queued=on_queued,
        )
        self.app = build_app(
            client=self.client,
            signing_secret=settings.slack_signing_secret,
            inbound=self.inbound,
        )
        self._metrics = metrics
        self._socket: AsyncSocketModeHandler | None = None

    @property
    def staff(self) -> StaffCards:
        """The staff notifications: told of each turn and officer request (ConversationStore,
        Escalations) and of each gate verdict (the dispatcher), in their transactions."""
        return self.cards

    # --- HTTP mode ------------------------------------------------------------------------------

    def register(self, web_app: web.Application) -> None:
        """Serve Slack's Events API and interactivity at POST /slack/events on `web_app`."""
        web_app.router.add_post(EVENTS_PATH, self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """One request from Slack: size check, Bolt (signature, listener), refusals logged."""
        if request.content_length is not None and request.content_length > MAX_BODY:
            self._refuse(request, "body_too_large")
            return web.Response(status=413, text="body too large")
        retry = request.headers.get("X-Slack-Retry-Num")
        if retry:
            log.info(
                "slack retry received",
                extra={"retry": retry, "reason": request.headers.get("X-Slack-Retry-Reason")},
            )
        bolt_request = await to_bolt_request(request)
        response = await self.app.async_dispatch(bolt_request)
        if response.status == 401:
            self._refuse(request, self._why_unsigned(request))
        elif response.body == AUTH_FAILED:
            log.error("slack auth.test failed: answering 503 so that Slack retries")
            if self._metrics is not None:
                self._metrics.channel_errors.labels("slack", "auth_test").inc()
            return web.Response(status=503, text="slack authorization unavailable, retry")
        return await to_aiohttp_response(response)

    @staticmethod
    def _why_unsigned(request: web.Request) -> str:
        try:
            age = abs(time.time() - int(request.headers.get("X-Slack-Request-Timestamp", "")))
        except ValueError:
            return "missing_timestamp"
        return "stale_timestamp" if age > SIGNATURE_WINDOW_SECONDS else "bad_signature"

    def _refuse(self, request: web.Request, reason: str) -> None:
        log.warning(
            "slack request refused: %s",
            reason,
            extra={"reason": reason, "remote": request.remote, "path": request.path},
        )
        if self._metrics is not None:
            self._metrics.refused.labels("slack", reason).inc()

    # --- Socket Mode ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect over Socket Mode when TRIAGE_SLACK_APP_TOKEN is set (else nothing to do)."""
        if not self.settings.slack_app_token or self._socket is not None:
            return
        self._socket = AsyncSocketModeHandler(self.app, self.settings.slack_app_token)
        await self._socket.connect_async()  # type: ignore[no-untyped-call]
        log.info("slack socket mode connected")

    async def stop(self) -> None:
        """Close the Socket Mode connection, if any."""
        if self._socket is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._socket.close_async(), 10)  # type: ignore[no-untyped-call]
            self._socket = None

    # --- the SLA job ----------------------------------------------------------------------------

    async def remind_overdue_cases(self) -> int:
        """The APScheduler job: one reminder per case undecided after TRIAGE_CASE_SLA_HOURS."""
        created = await self.cards.remind_overdue_cases(
            self._sessions, now=self._clock(), sla_hours=self.settings.case_sla_hours
        )
        if created:
            log.info("case reminders queued", extra={"count": created})
            self.inbound.queued()
        return created
