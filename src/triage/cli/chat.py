"""`triage chat`: talk to the real bot as a Telegram client, and act as sales or an officer.

The same stack as `triage demo` (the app on a SQLite file, the loopback Telegram and Slack
servers), driven from the terminal. Lines are sent as the client's Telegram messages; lines
starting with ":" act on the other side:

  :press N                 press button N of the bot's last question
  :sales TEXT              a salesperson replies in the lead's Slack thread (through the gate)
  :officer ACTION REASON   an officer presses a case-card button and gives a reason; ACTION is
                           approve_eu, approve_non_eu, decline or ask (REASON is the question)
  :as USER ACTION REASON   the same, pressed by another Slack user (U0SALESREP is not an officer)
  :slack                   what sales and compliance see in Slack
  :quit
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from triage.app import TriageApp
from triage.cli.demo import (
    COMPLIANCE,
    OFFICERS,
    SALES,
    SIGNING_SECRET,
    post_to_app,
    sales_reply_in_thread,
    sandboxed_app,
    settle,
    thread_of,
)
from triage.domain.profile import CompanyProfile

if TYPE_CHECKING:
    from triage_sandbox.slack import SlackSandbox
    from triage_sandbox.telegram import TelegramSandbox

console = Console(highlight=False)
ACTIONS = {
    "approve_eu": "approve_eu",
    "approve_non_eu": "approve_non_eu",
    "decline": "decline",
    "ask": "ask",
}
CHAT_ID = 4242


class Chat:
    """One terminal session: a client on Telegram, sales and compliance on Slack."""

    def __init__(
        self, *, app: TriageApp, tg: TelegramSandbox, slack: SlackSandbox, language: str
    ) -> None:
        self.app, self.tg, self.slack = app, tg, slack
        self.language = language
        self.seen = 0

    async def show_bot(self) -> None:
        """Print what the bot sent since last time."""
        await self.tg.wait_until(lambda: not self.tg.pending_updates, timeout=30)
        await self.app.drain_now()
        messages = self.tg.sent(CHAT_ID)
        for m in messages[self.seen :]:
            console.print(f"[bold cyan]bot[/]: {m.get('text', '')}")
            rows = (m.get("reply_markup") or {}).get("inline_keyboard") or []
            for i, b in enumerate(b for row in rows for b in row):
                console.print(f"      [{i}] {b['text']}")
        self.seen = len(messages)

    async def say(self, text: str) -> None:
        """The client writes."""
        if text.startswith("/start"):
            parts = text.split(maxsplit=1)
            await self.tg.push_start(
                user_id=CHAT_ID,
                payload=parts[1] if len(parts) > 1 else None,
                language_code=self.language,
            )
        else:
            await self.tg.push_text(user_id=CHAT_ID, text=text, language_code=self.language)
        await self.show_bot()

    async def press(self, index: int) -> None:
        """The client presses a button of the bot's last question."""
        for m in reversed(self.tg.sent(CHAT_ID)):
            rows = (m.get("reply_markup") or {}).get("inline_keyboard") or []
            buttons = [b for row in rows for b in row]
            if buttons:
                if not 0 <= index < len(buttons):
                    console.print(f"[red]no button {index}[/]")
                    return
                await self.tg.push_callback(
                    user_id=CHAT_ID,
                    data=buttons[index]["callback_data"],
                    message_id=m["message_id"],
                )
                await self.show_bot()
                return
        console.print("[red]the bot's last messages have no buttons[/]")

    async def client_id(self) -> int | None:
        return await self.app.store.client_id("telegram", str(CHAT_ID))

    async def sales(self, text: str) -> None:
        """A salesperson replies in the lead's Slack thread."""
        cid = await self.client_id()
        status = (
            None if cid is None else await sales_reply_in_thread(self.app, self.slack, cid, text)
        )
        console.print(f"[bold magenta]slack[/]: sales reply -> {status or 'no lead card yet'}")
        await self.show_bot()

    async def officer(self, user: str, action: str, reason: str) -> None:
        """A Slack user presses a case-card button and submits the reason."""
        from triage_sandbox.slack_signing import (
            block_actions_payload,
            interaction_request,
            view_submission_payload,
        )

        await settle(self.app)  # the case card is itself an outbox row
        cid = await self.client_id()
        thread = None if cid is None else await thread_of(self.app, cid, "case")
        card = (
            None
            if thread is None or thread.ts is None
            else self.slack.message(thread.channel, thread.ts)
        )
        if thread is None or card is None or thread.ts is None:
            console.print("[red]no case card for this client (it was not escalated)[/]")
            return
        mark = self.slack.mark("views")
        click = block_actions_payload(
            user_id=user,
            channel_id=thread.channel,
            action_id=f"case:{ACTIONS[action]}",
            message=card,
            response_url=self.slack.response_url(
                channel=thread.channel, message_ts=thread.ts, user=user
            ),
        )
        await post_to_app(self.app, interaction_request(click, signing_secret=SIGNING_SECRET))
        views = self.slack.records("views", since=mark)
        if not views:
            said = [e.get("text", "") for e in self.slack.ephemerals()][-1:]
            console.print(f"[bold magenta]slack[/]: {user} refused: {said}")
            return
        submit = view_submission_payload(
            user_id=user, values={"reason": {"text": reason}}, view=views[-1]["view"]
        )
        await post_to_app(self.app, interaction_request(submit, signing_secret=SIGNING_SECRET))
        await settle(self.app)
        now = self.slack.message(thread.channel, thread.ts) or {}
        console.print(f"[bold magenta]slack[/]: case card now: {str(now.get('text', ''))[:300]}")
        await self.show_bot()

    def show_slack(self) -> None:
        """What sales and compliance see."""
        for channel, name in ((SALES, "#sales-leads"), (COMPLIANCE, "#compliance")):
            console.print(f"[bold magenta]{name}[/]")
            for msg in self.slack.history(channel):
                console.print(f"  {str(msg.get('text', ''))[:300]}")
                for reply in self.slack.thread(channel, msg["ts"])[1:] if msg.get("ts") else []:
                    console.print(f"    ↳ {str(reply.get('text', ''))[:200]}")

    async def handle(self, line: str) -> bool:
        """One line typed by the user; False to quit."""
        line = line.strip()
        if not line:
            return True
        if not line.startswith(":"):
            await self.say(line)
            return True
        cmd, _, rest = line[1:].partition(" ")
        if cmd == "quit":
            return False
        if cmd == "press" and rest.strip().isdigit():
            await self.press(int(rest))
        elif cmd == "sales" and rest.strip():
            await self.sales(rest.strip())
        elif cmd in ("officer", "as"):
            words = rest.split(maxsplit=2 if cmd == "as" else 1)
            user = words.pop(0) if cmd == "as" and words else OFFICERS[0]
            if len(words) == 2 and words[0] in ACTIONS:
                await self.officer(user, words[0], words[1])
            else:
                console.print(
                    "[red]usage: :officer approve_eu|approve_non_eu|decline|ask REASON[/]"
                )
        elif cmd == "slack":
            self.show_slack()
        else:
            console.print(__doc__ or "")
        return True


async def _run(profile: CompanyProfile, out: Path, language: str) -> int:
    out.mkdir(parents=True, exist_ok=True)
    db = out / "chat.db"
    db.unlink(missing_ok=True)
    async with sandboxed_app(profile, db) as (app, tg, slack):
        chat = Chat(app=app, tg=tg, slack=slack, language=language)
        console.print(
            f"You are a Telegram client ({language}). Type to talk to the bot; ':help' lists the "
            f"sales and officer commands. The database is {db}."
        )
        while True:
            line: Any = await asyncio.to_thread(sys.stdin.readline)
            if not line:
                break
            if not await chat.handle(str(line)):
                break
    return 0


def run_chat(profile: CompanyProfile, out: Path, language: str) -> int:
    """Run `triage chat` until end of input or :quit."""
    import logging

    from triage.observability import configure_logging

    configure_logging("text", logging.WARNING)
    return asyncio.run(_run(profile, out, language))
