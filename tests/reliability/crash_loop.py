"""Crash loop: `triage run` SIGKILLed at random points of turns and outbox drains, restarted.

    .venv/bin/python tests/reliability/crash_loop.py --runs 50 [--seed N] [--keep DIR]

The Telegram sandbox runs in this process; the product runs as a subprocess (the real
`triage run` CLI through tests/reliability/_run_app.py, which only shortens the outbox lease)
on a SQLite file, long polling the sandbox. Clients keep writing whether the bot is up or not.
Each run starts the bot, waits for it to poll, and kills it with SIGKILL at one of these points:

- `random`: a uniformly random moment 0-2.5 s into the run (turns and drains overlap);
- `after-send`: right after the sandbox accepted the bot's k-th sendMessage of the run (the
  documented at-least-once window: sent, not yet marked sent);
- `startup`: a random moment 0-1.5 s after the process was spawned (migrations, first poll).

After every kill, with the process dead: the audit chains verify (triage.store.audit.verify;
`triage audit verify` itself every 10th run and at the end), the database is consistent (no
outbox row without its turn, no sent row without an outbound_sent event, one inbound message
per stored update key), and every update the bot confirmed to Telegram is in the database.
At the end the bot is started once more and left to catch up; then each client message has
exactly its engine-computed reply batch in the outbox (computed here by the pure engine from
the same events), every row is settled, and each row marked sent reached the chat exactly once.
A chat message with no outbound_sent receipt is a duplicate; each one is checked to be the
documented window (the row was judged twice and its first attempt left no receipt).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlmodel import col, select

from triage.app import engine_from_settings
from triage.flows.engine import ClientEvent, ConversationState, Engine
from triage.sandbox.telegram import TelegramSandbox
from triage.settings import Settings
from triage.store import audit
from triage.store.db import make_engine, make_sessionmaker
from triage.store.models import AuditEvent, Client, Message, Outbox, ProcessedUpdate

REPO = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).resolve().parent / "_run_app.py"
SETTLED = {"sent", "blocked", "held", "cancelled"}

#: Conversations the clients have (English; the engine decides, whatever it decides).
SCRIPTS: list[list[str]] = [
    ["/start", "I googled your name", "I live in Toronto, Canada", "custody of bitcoin", "no"],
    ["/start", "a friend told me", "Germany", "I want to buy bitcoin with euros", "no"],
    ["/start", "I saw an ad on instagram", "I live in Paris", "trading"],
    ["/start", "hmm", "ok", "Brazil", "swap ETH for BTC", "No never"],
    ["hello there", "found you on google", "Singapore", "portfolio management please"],
    ["/start", "Ich habe euren Namen gegoogelt", "Wien", "Bitcoin verwahren", "Nein"],
]


@dataclass
class Pushed:
    chat: int
    key: str  # the store's update key: telegram:msg:<chat>:<message_id>
    update_id: int
    event: ClientEvent


@dataclass
class Summary:
    runs: int = 0
    kills: Counter[str] = field(default_factory=Counter)
    kills_mid_drain: int = 0  # outbox rows left 'sending' by the kill
    kills_with_unconfirmed_updates: int = 0
    client_messages: int = 0
    replies_expected: int = 0
    replies_sent: int = 0
    replies_blocked_or_held: int = 0
    lost: int = 0
    duplicates_total: int = 0
    duplicates_in_window: int = 0
    duplicates_outside_window: int = 0
    audit_breaks: int = 0
    consistency_errors: list[str] = field(default_factory=list)
    cli_verify_runs: int = 0
    seconds: float = 0.0

    def ok(self) -> bool:
        return (
            self.lost == 0
            and self.duplicates_outside_window == 0
            and self.audit_breaks == 0
            and not self.consistency_errors
        )

    def text(self) -> str:
        lines = [
            f"runs (SIGKILLs): {self.runs}  by point: {dict(self.kills)}",
            f"  kills that left outbox rows mid-send ('sending'): {self.kills_mid_drain}",
            f"  kills with client updates not yet confirmed to Telegram: "
            f"{self.kills_with_unconfirmed_updates}",
            f"client messages: {self.client_messages}",
            f"replies expected (engine): {self.replies_expected}, sent: {self.replies_sent}, "
            f"blocked/held by the gate: {self.replies_blocked_or_held}",
            f"messages lost: {self.lost}",
            f"duplicates sent: {self.duplicates_total} (in the at-least-once window: "
            f"{self.duplicates_in_window}, outside it: {self.duplicates_outside_window})",
            f"audit chain breaks: {self.audit_breaks} "
            f"(triage audit verify CLI runs: {self.cli_verify_runs})",
            f"consistency errors: {len(self.consistency_errors)}",
            *[f"  - {e}" for e in self.consistency_errors[:20]],
            f"time: {self.seconds:.1f} s",
            "RESULT: " + ("OK" if self.ok() else "FAILED"),
        ]
        return "\n".join(lines)


def expected_replies(engine: Engine, events: list[ClientEvent]) -> list[list[str]]:
    """The reply batch of each event, from the pure engine (what the store must queue)."""
    state = ConversationState()
    batches = []
    for event in events:
        turn = engine.handle(state, event)
        state = turn.state
        batches.append([i.text for i in turn.outbound])
    return batches


class CrashLoop:
    def __init__(self, workdir: Path, *, seed: int, log: Any = print) -> None:
        self.workdir = workdir
        self.rng = random.Random(seed)
        self.db_path = workdir / "crash.db"
        self.url = f"sqlite+aiosqlite:///{self.db_path}"
        self.pushed: list[Pushed] = []
        self.summary = Summary()
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self._next_user = 9000
        self._clients: list[asyncio.Task[None]] = []

    # --- the bot process -----------------------------------------------------------------------

    def env(self, tg: TelegramSandbox) -> dict[str, str]:
        return {
            **os.environ,
            "TRIAGE_TELEGRAM_TOKEN": tg.token,
            "TRIAGE_TELEGRAM_API_BASE": tg.api_base,
            "TRIAGE_DATABASE_URL": self.url,
            "TRIAGE_HTTP_PORT": "0",
            "TRIAGE_OUTBOX_INTERVAL_SECONDS": "0.2",
            "TRIAGE_SLACK_BOT_TOKEN": "",
            "PYTHONPATH": str(REPO / "src"),
        }

    def spawn(self, tg: TelegramSandbox, run: int) -> subprocess.Popen[bytes]:
        logf = open(self.workdir / f"run-{run:03d}.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(RUNNER)],
            env=self.env(tg),
            cwd=self.workdir,
            stdout=logf,
            stderr=subprocess.STDOUT,
        )
        logf.close()
        return self.proc

    async def kill(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(self.proc.wait, 30)

    # --- the clients ---------------------------------------------------------------------------

    async def client(self, tg: TelegramSandbox, user: int, script: list[str]) -> None:
        for text in script:
            update = await tg.push_text(user_id=user, text=text, language_code="en")
            m = update["message"]
            at = datetime.fromtimestamp(m["date"], UTC)
            if text.startswith("/start"):
                param = text.partition(" ")[2].strip() or None
                event = ClientEvent(
                    kind="start", at=at, text=text, language="en", start_param=param
                )
            else:
                event = ClientEvent(kind="message", at=at, text=text, language="en")
            key = f"telegram:msg:{m['chat']['id']}:{m['message_id']}"
            self.pushed.append(Pushed(m["chat"]["id"], key, update["update_id"], event))
            # A client types at human-ish speed, compressed; no waiting for the bot.
            await asyncio.sleep(self.rng.uniform(0.05, 0.6))

    def new_clients(self, tg: TelegramSandbox, n: int) -> None:
        for _ in range(n):
            self._next_user += 1
            script = self.rng.choice(SCRIPTS)
            self._clients.append(asyncio.create_task(self.client(tg, self._next_user, script)))

    # --- checks --------------------------------------------------------------------------------

    async def check_after_kill(self, tg: TelegramSandbox, run: int) -> None:
        db = make_engine(self.url)
        sessions = make_sessionmaker(db)
        try:
            async with sessions() as s:
                breaks = await audit.verify(s)
                stored = set((await s.exec(select(ProcessedUpdate.key))).all())
                inbound = Counter(
                    (
                        await s.exec(select(Message.update_key).where(Message.direction == "in"))
                    ).all()
                )
                rows = (await s.exec(select(Outbox))).all()
                sent_events = (
                    await s.exec(select(AuditEvent).where(AuditEvent.type == "outbound_sent"))
                ).all()
        finally:
            await db.dispose()
        self.summary.audit_breaks += len(breaks)
        for b in breaks:
            self.error(f"run {run}: audit break {b}")
        unconfirmed = {u["update_id"] for u in tg.pending_updates}
        pushed_by_id = {p.update_id: p for p in self.pushed}
        for uid, p in pushed_by_id.items():
            if uid not in unconfirmed and p.key.removeprefix("telegram:") not in stored:
                self.error(f"run {run}: update {uid} confirmed to Telegram but not stored")
        if any(pushed_by_id[u].key.removeprefix("telegram:") not in stored for u in unconfirmed):
            self.summary.kills_with_unconfirmed_updates += 1
        for key, n in inbound.items():
            if n != 1:
                self.error(f"run {run}: {n} inbound messages for {key}")
        ref_keys = {k for k in inbound if k}
        marked = {json.loads(e.payload)["outbox_id"] for e in sent_events if e.payload is not None}
        for r in rows:
            if r.dedupe_key.startswith("telegram:msg:"):
                ref = r.dedupe_key.rsplit(":", 1)[0]
                if ref not in ref_keys:
                    self.error(f"run {run}: outbox row {r.id} without its turn ({ref})")
            if r.status == "sent" and r.id not in marked:
                self.error(f"run {run}: row {r.id} sent without an outbound_sent event")
            if r.status not in SETTLED | {"pending", "sending", "dead"}:
                self.error(f"run {run}: row {r.id} has status {r.status!r}")
        if any(r.status == "sending" for r in rows):
            self.summary.kills_mid_drain += 1

    def error(self, text: str) -> None:
        self.summary.consistency_errors.append(text)
        self.log("ERROR " + text)

    def cli_verify(self, tg: TelegramSandbox) -> None:
        proc = subprocess.run(
            [sys.executable, "-m", "triage.cli", "audit", "verify"],
            env=self.env(tg),
            capture_output=True,
            text=True,
            timeout=120,
        )
        self.summary.cli_verify_runs += 1
        if proc.returncode != 0:
            self.summary.audit_breaks += 1
            self.error(f"triage audit verify: {proc.stdout.strip()} {proc.stderr.strip()}")

    async def settled(self) -> bool:
        db = make_engine(self.url)
        try:
            async with make_sessionmaker(db)() as s:
                now = datetime.now(UTC)
                rows = (await s.exec(select(Outbox).where(col(Outbox.due_at) <= now))).all()
                stored = set((await s.exec(select(ProcessedUpdate.key))).all())
        finally:
            await db.dispose()
        return all(r.status in SETTLED | {"dead"} for r in rows) and all(
            p.key.removeprefix("telegram:") in stored for p in self.pushed
        )

    async def final_check(self, tg: TelegramSandbox, engine: Engine) -> None:
        db = make_engine(self.url)
        try:
            async with make_sessionmaker(db)() as s:
                clients = {
                    c.id: int(c.external_id)
                    for c in (await s.exec(select(Client))).all()
                    if c.id is not None
                }
                rows = (await s.exec(select(Outbox).order_by(col(Outbox.id)))).all()
                events = (await s.exec(select(AuditEvent))).all()
        finally:
            await db.dispose()
        receipts: dict[int, list[str]] = {}
        judged: Counter[int] = Counter()
        for e in events:
            if e.payload is None:
                continue
            p = json.loads(e.payload)
            if e.type == "outbound_sent":
                receipts.setdefault(p["outbox_id"], []).append(str(p["message_id"]))
            elif e.type.startswith("outbound_") and "verdict" in p and "outbox_id" in p:
                judged[p["outbox_id"]] += 1
        s = self.summary
        by_chat: dict[int, list[Pushed]] = {}
        for p in self.pushed:
            by_chat.setdefault(p.chat, []).append(p)
        s.client_messages = len(self.pushed)
        for chat, pushed in by_chat.items():
            batches = expected_replies(engine, [p.event for p in pushed])
            s.replies_expected += sum(len(b) for b in batches)
            turn_rows = {r.dedupe_key: r for r in rows if r.dedupe_key.startswith("telegram:msg:")}
            for p, batch in zip(pushed, batches, strict=True):
                got = [turn_rows.get(f"{p.key}:{i}") for i in range(len(batch) + 1)]
                if got[len(batch)] is not None:
                    self.error(f"chat {chat}: more replies queued for {p.key} than the engine's")
                for i, text in enumerate(batch):
                    row = got[i]
                    if row is None:
                        s.lost += 1
                        self.error(f"chat {chat}: reply {i} to {p.key} never queued")
                    elif row.text != text:
                        self.error(f"chat {chat}: reply {i} to {p.key} differs from the engine")
            chat_rows = [
                r for r in rows if r.client_id in clients and clients[r.client_id] == chat
            ]
            sandbox = {str(m["message_id"]): m["text"] for m in tg.sent(chat)}
            receipted: set[str] = set()
            for r in chat_rows:
                if r.status == "sent":
                    ids = receipts.get(r.id or -1, [])
                    parts = [i for rid in ids for i in rid.split(",")]
                    if len(ids) != 1 or any(sandbox.get(i) is None for i in parts):
                        self.error(f"chat {chat}: sent row {r.id} receipts {ids} not in the chat")
                    receipted.update(parts)
                    if r.dedupe_key.startswith("telegram:msg:"):
                        s.replies_sent += 1
                elif r.status in ("blocked", "held"):
                    if r.dedupe_key.startswith("telegram:msg:"):
                        s.replies_blocked_or_held += 1
                elif r.due_at <= datetime.now(UTC):
                    s.lost += 1
                    self.error(f"chat {chat}: row {r.id} ended {r.status}")
            for mid, text in sandbox.items():
                if mid in receipted:
                    continue
                s.duplicates_total += 1
                # The window: a row judged more than once (its first send left no receipt)
                # whose text this is, and that was finally marked sent once.
                twins = [
                    r
                    for r in chat_rows
                    if r.text == text and r.status == "sent" and judged[r.id or -1] >= 2
                ]
                if twins:
                    s.duplicates_in_window += 1
                else:
                    s.duplicates_outside_window += 1
                    self.error(f"chat {chat}: message {mid} {text[:40]!r} sent outside the window")

    # --- the loop ------------------------------------------------------------------------------

    async def wait_polling(self, tg: TelegramSandbox, timeout: float = 60) -> None:
        assert self.proc is not None
        proc = self.proc
        deadline = time.monotonic() + timeout
        while not tg.polling and proc.poll() is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"triage run did not poll within {timeout} s")
            # Re-checked often: the process's exit does not wake the sandbox's condition.
            with contextlib.suppress(TimeoutError):
                await tg.wait_until(lambda: tg.polling, timeout=0.1)
        if proc.poll() is not None:
            raise RuntimeError(f"triage run exited with {proc.returncode}; see {self.workdir}")

    async def one_run(self, tg: TelegramSandbox, run: int) -> None:
        point = self.rng.choice(["random", "random", "after-send", "startup"])
        spawned = time.monotonic()
        self.spawn(tg, run)
        if point == "startup":
            self.new_clients(tg, 2)
            await asyncio.sleep(self.rng.uniform(0.0, 1.5))
        else:
            await self.wait_polling(tg)
            # Clients write while the bot runs: kills land inside turns and drains.
            self.new_clients(tg, 3)
            if point == "random":
                await asyncio.sleep(self.rng.uniform(0.0, 2.5))
            else:
                k = len(tg.calls_to("sendMessage")) + self.rng.randint(1, 3)
                try:
                    await tg.wait_until(lambda: len(tg.calls_to("sendMessage")) >= k, timeout=8)
                except TimeoutError:
                    point = "after-send (none came)"
        await self.kill()
        self.summary.kills[point] += 1
        self.summary.runs += 1
        await self.check_after_kill(tg, run)
        if run % 10 == 9:
            self.cli_verify(tg)
        self.log(
            f"run {run + 1}: killed at {point} after {time.monotonic() - spawned:.1f} s; "
            f"{len(self.pushed)} client messages so far"
        )

    async def run(self, runs: int) -> Summary:
        started = time.monotonic()
        async with TelegramSandbox() as tg:
            engine = engine_from_settings(Settings(database_url=self.url))
            for run in range(runs):
                await self.one_run(tg, run)
            await asyncio.gather(*self._clients)
            # The last start: no kill; the bot catches up by itself.
            self.spawn(tg, runs)
            try:
                await self.wait_polling(tg)
                deadline = time.monotonic() + 120
                while not await self.settled():
                    if time.monotonic() > deadline:
                        self.error("the bot did not catch up within 120 s")
                        break
                    await asyncio.sleep(0.25)  # polling the database: no event to await
            finally:
                assert self.proc is not None
                self.proc.send_signal(signal.SIGTERM)
                await asyncio.to_thread(self.proc.wait, 60)
            self.cli_verify(tg)
            await self.check_after_kill(tg, runs)
            await self.final_check(tg, engine)
        self.summary.seconds = time.monotonic() - started
        return self.summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--keep", type=Path, help="keep the database and logs in this folder")
    args = parser.parse_args(argv)
    print(f"crash loop: {args.runs} runs, seed {args.seed}")
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        summary = asyncio.run(CrashLoop(args.keep, seed=args.seed).run(args.runs))
    else:
        with tempfile.TemporaryDirectory(prefix="triage-crash-") as tmp:
            summary = asyncio.run(CrashLoop(Path(tmp), seed=args.seed).run(args.runs))
    print(summary.text())
    return 0 if summary.ok() else 1


if __name__ == "__main__":
    sys.exit(main())
