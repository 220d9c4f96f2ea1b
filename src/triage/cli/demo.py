"""`triage demo` (`make demo`): the real product against the sandbox servers, no tokens needed.

It starts the loopback Telegram Bot API and Slack Web API, runs the real app (`TriageApp`: the
aiogram adapter, the store on a SQLite file, the outbox with the gate at send time, the Slack
adapter), and plays the visible scenarios as Telegram clients typing their answers. Then it shows
what the clients were told, what sales and compliance received in Slack, what the gate stopped
and why, has a compliance officer decide one case, verifies the audit chains and exports one
client's evidence pack. Everything it leaves is in `demo-out/`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from sqlmodel import col, select

from triage.app import TriageApp, build_engine
from triage.domain.profile import CompanyProfile, parse_profile
from triage.observability import configure_logging
from triage.outbox.dispatcher import DispatcherConfig
from triage.outbox.rows import OutboundRequest, enqueue
from triage.settings import Settings, read_yaml
from triage.store.models import (
    UNFINISHED_STATUSES,
    AuditEvent,
    Client,
    Outbox,
    OutboxStatus,
    SlackThread,
)

if TYPE_CHECKING:
    from triage_sandbox.slack import SlackSandbox
    from triage_sandbox.telegram import TelegramSandbox

console = Console()
err = Console(stderr=True)

SALES, COMPLIANCE = "C0SALES", "C0COMPLIANCE"
OFFICERS = ("U0OFFICER1", "U0OFFICER2")
SALES_REP = "U0SALESREP"
SIGNING_SECRET = "demo-signing-secret"  # the sandbox's, not a real secret
DONT_KNOW = "I don't know"


@dataclass
class Played:
    """One scenario as the demo played it."""

    sid: str
    title: str
    chat_id: int
    client_id: int | None = None
    decision: str | None = None
    country: str | None = None
    service: str | None = None
    bot_said: list[str] = field(default_factory=list)
    later: list[str] = field(default_factory=list)


@contextlib.asynccontextmanager
async def sandboxed_app(
    profile: CompanyProfile, db: Path
) -> AsyncIterator[tuple[TriageApp, TelegramSandbox, SlackSandbox]]:
    """The real app on a SQLite file, talking to loopback Telegram and Slack servers.

    The servers are test code (the triage-sandbox package in sandbox/), imported here and not
    at the top, so that nothing of the product loads them.
    """
    from triage_sandbox.slack import SlackChannel as SandboxChannel
    from triage_sandbox.slack import SlackSandbox, SlackUser
    from triage_sandbox.telegram import TelegramSandbox

    users = [
        SlackUser(OFFICERS[0], "amira.officer", real_name="Amira (compliance)"),
        SlackUser(OFFICERS[1], "jonas.officer", real_name="Jonas (compliance)"),
        SlackUser(SALES_REP, "sam.sales", real_name="Sam (sales)"),
    ]
    channels = [SandboxChannel(SALES, "sales-leads"), SandboxChannel(COMPLIANCE, "compliance")]
    async with TelegramSandbox() as tg, SlackSandbox(users=users, channels=channels) as slack:
        settings = Settings(
            telegram_token=tg.token,
            telegram_api_base=tg.api_base,
            database_url=f"sqlite+aiosqlite:///{db}",
            http_port=0,
            slack_bot_token=slack.bot_token,
            slack_signing_secret=SIGNING_SECRET,
            slack_api_base=slack.api_base,
            slack_sales_channel=SALES,
            slack_compliance_channel=COMPLIANCE,
            compliance_users=",".join(OFFICERS),
            outbox_interval_seconds=0.2,
            log_format="text",
        )
        config = DispatcherConfig(per_chat_per_second=20.0, backoff_base_seconds=0.2)
        app = TriageApp(settings, engine=build_engine(profile), dispatcher_config=config)
        await app.start()
        try:
            yield app, tg, slack
        finally:
            await app.stop()


async def settle(app: TriageApp) -> None:
    """Drain until nothing is left to send (a reply may queue further staff cards).

    The scheduled drain may hold rows at the same moment (claimed, `sending`): a drain here
    that claims nothing is not the end until those are settled too.
    """
    for _ in range(100):
        if not await app.drain_now():
            async with app.sessions() as session:
                sending = (
                    await session.exec(
                        select(Outbox.id).where(Outbox.status == OutboxStatus.SENDING.value)
                    )
                ).first()
            if sending is None:
                return
        await asyncio.sleep(0.1)


async def thread_of(app: TriageApp, client_id: int, kind: str) -> SlackThread | None:
    """The posted Slack card ("lead", "case", "decline") of a client, if any."""
    async with app.sessions() as session:
        return (
            await session.exec(
                select(SlackThread).where(
                    SlackThread.client_id == client_id,
                    SlackThread.kind == kind,
                    col(SlackThread.ts).is_not(None),
                )
            )
        ).first()


async def post_to_app(app: TriageApp, request: Any) -> int:
    """Deliver a signed Slack request to the running app's /slack/events; the HTTP status."""
    from triage_sandbox.slack_signing import deliver

    url = f"http://127.0.0.1:{app.port}/slack/events"
    return (await deliver(url, request)).status


async def sales_reply_in_thread(
    app: TriageApp, slack: SlackSandbox, client_id: int, text: str
) -> str | None:
    """A sales rep types a reply in the lead's Slack thread: the real path to the client."""
    from triage_sandbox.slack_signing import event_callback_body, event_request

    await settle(app)
    thread = await thread_of(app, client_id, "lead")
    if thread is None or thread.ts is None:
        return None
    event = slack.post_as_user(
        channel=thread.channel, user=SALES_REP, text=text, thread_ts=thread.ts
    )
    status = await post_to_app(
        app, event_request(event_callback_body(event), signing_secret=SIGNING_SECRET)
    )
    if status != 200:
        return f"refused by the app ({status})"
    for _ in range(100):
        await app.drain_now()
        async with app.sessions() as session:
            row = (
                await session.exec(
                    select(Outbox)
                    .where(Outbox.client_id == client_id, Outbox.sender == "sales")
                    .order_by(col(Outbox.id).desc())
                )
            ).first()
        if row is not None and row.status not in UNFINISHED_STATUSES:
            return row.status
        await asyncio.sleep(0.1)
    return OutboxStatus.PENDING.value


class Demo:
    """Plays scenario files through the real app and the sandboxes."""

    def __init__(self, scenario_file: Path, out: Path) -> None:
        self.decisions: list[str] = []
        self.file = scenario_file
        self.out = out
        self.spec: Mapping[str, Any] = read_yaml(scenario_file)  # type: ignore[assignment]
        company = self.spec["company"]
        path = (scenario_file.parent / company).resolve()
        self.profile = parse_profile(read_yaml(path), source=str(path))

    async def run(self) -> int:
        """Play everything; return the process exit status."""
        if self.out.exists():
            shutil.rmtree(self.out)
        self.out.mkdir(parents=True)
        db = self.out / "triage.db"
        async with sandboxed_app(self.profile, db) as (app, tg, slack):
            self.slack = slack
            played = [
                await self._play(app, tg, sc, 7000 + i)
                for i, sc in enumerate(self.spec["scenarios"])
            ]
            await self._officer_decides(app, played)
            await settle(app)
            self._report(played, slack)
        return await self._evidence(db, played)

    # --- one client -------------------------------------------------------------------------

    async def _play(
        self, app: TriageApp, tg: TelegramSandbox, sc: Mapping[str, Any], chat: int
    ) -> Played:
        client = sc.get("client") or {}
        lang = client.get("language")
        p = Played(str(sc["id"]), str(sc.get("title", "")), chat)
        seen = 0

        async def said() -> None:
            nonlocal seen
            await tg.wait_until(lambda: not tg.pending_updates, timeout=30)
            await app.drain_now()
            msgs = tg.sent(chat)
            p.bot_said.extend(m.get("text", "") for m in msgs[seen:])
            seen = len(msgs)

        if client.get("crm"):
            # Contacts the firm logged before (the CRM) enter the conversation as facts.
            await app.store.seed_crm(
                channel="telegram", external_id=str(chat), crm=list(client["crm"])
            )
        if client.get("phone"):
            await tg.push_contact(
                user_id=chat, phone_number=str(client["phone"]), language_code=lang
            )
            await said()
        start = client.get("start")
        for text in sc.get("messages") or []:
            text = str(text)
            if text.startswith("/start"):
                parts = text.split(maxsplit=1)
                await tg.push_start(
                    user_id=chat, payload=parts[1] if len(parts) > 1 else start, language_code=lang
                )
            else:
                await tg.push_text(user_id=chat, text=text, language_code=lang)
            await said()
        answers: Mapping[str, Any] = sc.get("answers") or {}
        asked: dict[str, int] = {}
        for _ in range(20):
            state = await app.store.state("telegram", str(chat))
            if state is None or state.pending is None:
                break
            slot = state.pending
            asked[slot] = asked.get(slot, 0) + 1
            answer = answers.get(slot)
            text = str(answer) if answer is not None and asked[slot] == 1 else DONT_KNOW
            await tg.push_text(user_id=chat, text=text, language_code=lang)
            await said()
        state = await app.store.state("telegram", str(chat))
        if state is not None and state.inquiries:
            first = state.inquiries[0]
            p.decision, p.country, p.service = first.outcome, first.country, first.service
        p.client_id = await app.store.client_id("telegram", str(chat))
        for item in sc.get("later") or []:
            p.later.append(await self._later(app, tg, p, item, lang))
            await said()
        return p

    async def _later(
        self,
        app: TriageApp,
        tg: TelegramSandbox,
        p: Played,
        item: Mapping[str, Any],
        lang: str | None,
    ) -> str:
        if "client" in item:
            await tg.push_text(user_id=p.chat_id, text=str(item["client"]), language_code=lang)
            await app.drain_now()
            state = await app.store.state("telegram", str(p.chat_id))
            last = state.inquiries[-1].outcome if state and state.inquiries else "none"
            return f"client writes -> {last}"
        send = item["send"]
        assert p.client_id is not None
        if send.get("from") == "sales" and send.get("reply") and "at" not in send:
            relayed = await sales_reply_in_thread(app, self.slack, p.client_id, str(send["text"]))
            if relayed is not None:
                return f"sales reply in the Slack thread -> {relayed}"
        due = None
        if "at" in send:
            # The demo does not wait days: the row is due now, judged with today's facts.
            due = datetime.now(UTC) - timedelta(seconds=1)
        request = OutboundRequest(
            client_id=p.client_id,
            text=str(send["text"]),
            kind=str(send.get("kind", "reply")),
            sender=str(send.get("from", "bot")),
            dedupe_key=f"demo:{p.sid}:{len(p.later)}",
            reply=bool(send.get("reply", False)),
            due_at=due,
        )
        queued = await enqueue(app.sessions, request)
        status = OutboxStatus.PENDING.value
        for _ in range(50):
            await app.drain_now()
            status = await app.outbox_status(queued.outbox_id)
            if not status.startswith(tuple(s.value for s in UNFINISHED_STATUSES)):
                break
            await asyncio.sleep(0.1)
        # The reason is in the gate's table below; here the verdict alone.
        return f"{request.sender} {request.kind} -> {status.split(' (')[0]}"

    async def _officer_decides(self, app: TriageApp, played: list[Played]) -> None:
        """A salesperson, then a compliance officer, press "Approve" on an escalated case."""
        from triage_sandbox.slack_signing import (
            block_actions_payload,
            interaction_request,
            view_submission_payload,
        )

        await settle(app)
        for p in played:
            if p.decision != "ESCALATE" or p.client_id is None:
                continue
            thread = await thread_of(app, p.client_id, "case")
            if thread is None or thread.ts is None:
                continue
            card = self.slack.message(thread.channel, thread.ts)
            if card is None or not any(b.get("type") == "actions" for b in card.get("blocks", [])):
                continue
            url = self.slack.response_url
            for user in (SALES_REP, OFFICERS[0]):
                mark = self.slack.mark("views")
                click = block_actions_payload(
                    user_id=user,
                    channel_id=thread.channel,
                    action_id="case:approve_eu",
                    message=card,
                    response_url=url(channel=thread.channel, message_ts=thread.ts, user=user),
                )
                await post_to_app(app, interaction_request(click, signing_secret=SIGNING_SECRET))
                views = self.slack.records("views", since=mark)
                if not views:
                    self.decisions.append(
                        f"{p.sid}: {user} (not an officer) pressed Approve: refused, recorded"
                    )
                    continue
                reason = (
                    "Client confirmed by phone that they searched for us by name; the ad "
                    "campaign never ran in Italy."
                )
                submit = view_submission_payload(
                    user_id=user, values={"reason": {"text": reason}}, view=views[-1]["view"]
                )
                await post_to_app(app, interaction_request(submit, signing_secret=SIGNING_SECRET))
                await settle(app)
                now = self.slack.message(thread.channel, thread.ts) or {}
                self.decisions.append(
                    f"{p.sid}: officer {user} approved as EU restricted, reason given; card now "
                    f"reads: {str(now.get('text', ''))[:160]}"
                )
            return

    def _report(self, played: list[Played], slack: SlackSandbox) -> None:
        table = Table(title="Telegram clients: the decision on each inquiry", show_lines=True)
        for col_name in ("id", "scenario", "decision", "country", "service", "later"):
            table.add_column(col_name, overflow="fold")
        for p in played:
            table.add_row(
                p.sid,
                p.title,
                p.decision or "-",
                p.country or "-",
                p.service or "-",
                "\n".join(p.later) or "-",
            )
        console.print(table)
        first = played[0]
        convo = Table(title=f"What {first.sid}'s client saw on Telegram", show_lines=True)
        convo.add_column("bot", overflow="fold")
        for text in first.bot_said:
            convo.add_row(text)
        console.print(convo)
        for line in self.decisions:
            console.print(f"[bold]Compliance in Slack[/]: {line}")
        for channel, title in ((SALES, "#sales-leads (lead cards)"), (COMPLIANCE, "#compliance")):
            cards = Table(title=f"Slack {title}", show_lines=True)
            cards.add_column("message", overflow="fold")
            for msg in slack.history(channel)[:12]:
                replies = slack.thread(channel, msg["ts"])[1:] if msg.get("ts") else []
                lines = [str(msg.get("text", ""))[:300]]
                lines += [f"  ↳ {str(r.get('text', ''))[:200]}" for r in replies[:4]]
                cards.add_row("\n".join(lines))
            console.print(cards)

    async def _evidence(self, db: Path, played: list[Played]) -> int:
        from triage.store import audit
        from triage.store.db import make_engine, make_sessionmaker
        from triage.store.evidence import export_client

        url = f"sqlite+aiosqlite:///{db}"
        engine = make_engine(url)
        sessions = make_sessionmaker(engine)
        try:
            async with sessions() as session:
                rows = (
                    await session.exec(
                        select(AuditEvent.type, AuditEvent.payload)
                        .where(col(AuditEvent.type).in_(("outbound_blocked", "outbound_held")))
                        .order_by(col(AuditEvent.id))
                    )
                ).all()
                clients = (await session.exec(select(Client.id))).all()
                breaks = await audit.verify(session)
            target = played[0].client_id or (clients[0] if clients else None)
            pack = None
            if target is not None:
                pack = await export_client(sessions, target, self.out / "evidence")
        finally:
            await engine.dispose()
        stopped = Table(title="What the outbound gate stopped, and why", show_lines=True)
        for col_name in ("verdict", "sender", "kind", "text", "reason"):
            stopped.add_column(col_name, overflow="fold")
        for kind, payload in rows:
            data = json.loads(payload or "{}")
            stopped.add_row(
                kind.removeprefix("outbound_"),
                str(data.get("sender", "")),
                str(data.get("kind", "")),
                str(data.get("text", ""))[:160],
                str(data.get("reason", "")),
            )
        console.print(stopped)
        chains = "intact" if not breaks else f"{len(breaks)} broken: {breaks[0]}"
        console.print(f"[bold]audit chains[/]: {len(clients)} checked, {chains}")
        if pack is not None:
            console.print(
                f"[bold]evidence pack of client {pack.client_id}[/]: {pack.html_path} and "
                f"{pack.json_path} (chain {pack.chain_status})"
            )
        console.print(
            f"\nEverything is in {self.out}/. Look again with:\n"
            f"  TRIAGE_DATABASE_URL=sqlite+aiosqlite:///{db} .venv/bin/triage audit verify\n"
            f"  TRIAGE_DATABASE_URL=sqlite+aiosqlite:///{db} .venv/bin/triage evidence export "
            f"--all --out {self.out}/all"
        )
        return 0 if not breaks and pack is not None else 1


def run_demo(scenario_file: Path, out: Path) -> int:
    """Run the demo (blocking)."""
    configure_logging("text", logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(Demo(scenario_file, out).run())
    return 130
