"""Crash loop: `triage run` SIGKILLed at random and named points of turns and outbox drains.

    .venv/bin/python tests/reliability/crash_loop.py --runs 50 [--seed N] [--keep DIR]
        [--db sqlite|postgres] [--postgres-url URL] [--mode polling|webhook] [--points a,b,..]

The Telegram sandbox runs in this process; the product runs as a subprocess (the real
`triage run` CLI through tests/reliability/_run_app.py, which shortens the outbox lease and can
kill the process at named points, from the outside of the product's code). Database: a SQLite
file, or with `--db postgres` a fresh schema on the PostgreSQL server of `--postgres-url`
(default: TRIAGE_TEST_POSTGRES_URL), created for the loop and dropped at its end. Telegram:
long polling, or with `--mode webhook` the sandbox delivers every update to `triage run`'s
webhook endpoint with the secret token and redelivers (every 0.05-0.25 s, without giving up)
until it gets a 200. Clients keep writing whether the bot is up or not.

Each run starts the bot and kills it with SIGKILL at the run's point; the points (`--points`,
default all) are taken in turn, run after run:

- `random`: a uniformly random moment 0-2.5 s after the bot is ready (turns and drains overlap);
- `startup`: a random moment 0-1.5 s after the process was spawned (migrations, first poll);
- named points, where the process kills itself (see _run_app.py) at the n-th time, n = 1-3,
  it reaches: `in-turn` (the turn's transaction before COMMIT), `after-turn-commit` (stored,
  not yet confirmed to Telegram / answered 200), `after-judge` (the gate's verdict committed,
  not yet sent), `after-send` (Telegram accepted, not yet marked sent: the documented
  at-least-once window), `after-mark` (marked sent). A point not reached within 30 s is
  killed from outside and counted as "<point> (not reached)". The mark the process leaves
  names the update or outbox row; the loop checks in the database that the kill is where it
  says (e.g. after-turn-commit: that update is stored and Telegram still holds it).

After every kill, with the process dead: the audit chains verify (triage.store.audit.verify;
`triage audit verify` itself every 10th run and at the end), the database is consistent (no
outbox row without its turn, no sent row without an outbound_sent event, one inbound message
per stored update key), and every update the bot confirmed to Telegram is in the database
(polling: every update Telegram no longer holds; webhook: every update answered 200).
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
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy import text as sql
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from sqlmodel import col, select

from triage.app import engine_from_settings
from triage.channels.telegram import WEBHOOK_PATH
from triage.flows.engine import ClientEvent, ConversationState, Engine
from triage.settings import Settings
from triage.store import audit
from triage.store.db import make_engine, make_sessionmaker
from triage.store.models import AuditEvent, Client, Message, Outbox, ProcessedUpdate
from triage_sandbox.telegram import TelegramSandbox

REPO = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).resolve().parent / "_run_app.py"
SETTLED = {"sent", "blocked", "held", "cancelled"}
POSTGRES_ENV = "TRIAGE_TEST_POSTGRES_URL"
#: Kills where the process kills itself (tests/reliability/_run_app.py).
NAMED_POINTS = ("in-turn", "after-turn-commit", "after-judge", "after-send", "after-mark")
POINTS = ("random", "startup", *NAMED_POINTS)
WEBHOOK_SECRET = "crash-loop-secret"
#: Seconds a run waits for its named point before killing the bot from outside.
POINT_TIMEOUT = 30.0
#: Seconds a start may take before the loop gives up (a hang guard: on a loaded 2-core
#: machine a start has taken over 60 s).
START_TIMEOUT = 300.0

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
    backend: str = "sqlite"
    mode: str = "polling"
    kills: Counter[str] = field(default_factory=Counter)
    kills_mid_drain: int = 0  # outbox rows left 'sending' by the kill
    kills_with_unconfirmed_updates: int = 0  # a stored update Telegram still held
    #: By point: kills after which the database showed that point's window (see one_run).
    window_seen: Counter[str] = field(default_factory=Counter)
    confirmed_not_stored: int = 0
    webhook_deliveries: int = 0
    webhook_failed: int = 0  # attempts without a 200 (bot down, killed mid-request)
    client_messages: int = 0
    replies_expected: int = 0
    replies_sent: int = 0
    replies_blocked_or_held: int = 0
    lost: int = 0
    delivered_but_dead: int = 0  # sent, unmarked, then declared dead on a later claim (B4)
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

    @property
    def confirmation(self) -> str:
        return "answered 200" if self.mode == "webhook" else "offset moved past them"

    def text(self) -> str:
        lines = [
            f"backend: {self.backend}, telegram: {self.mode}",
            f"runs (SIGKILLs): {self.runs}  by point: {dict(sorted(self.kills.items()))}",
            f"  named kills verified in the database to be at their point: "
            f"{dict(sorted(self.window_seen.items()))}",
            f"  kills that left outbox rows mid-send ('sending'): {self.kills_mid_drain}",
            f"  kills with stored client updates not yet confirmed to Telegram: "
            f"{self.kills_with_unconfirmed_updates}",
            f"updates confirmed to Telegram ({self.confirmation}) but not stored: "
            f"{self.confirmed_not_stored}",
            *(
                [
                    f"webhook deliveries: {self.webhook_deliveries}, without a 200: "
                    f"{self.webhook_failed}"
                ]
                if self.mode == "webhook"
                else []
            ),
            f"client messages: {self.client_messages}",
            f"replies expected (engine): {self.replies_expected}, sent: {self.replies_sent}, "
            f"blocked/held by the gate: {self.replies_blocked_or_held}",
            f"messages lost: {self.lost} (of which rows that ended dead: see the errors; "
            f"delivered once but recorded dead: {self.delivered_but_dead})",
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class CrashLoop:
    def __init__(
        self,
        workdir: Path,
        *,
        seed: int,
        log: Any = print,
        backend: str = "sqlite",
        postgres_url: str | None = None,
        mode: str = "polling",
        points: tuple[str, ...] = POINTS,
        keep_db: bool = False,
    ) -> None:
        if backend not in ("sqlite", "postgres"):
            raise ValueError(f"backend must be sqlite or postgres, not {backend!r}")
        if mode not in ("polling", "webhook"):
            raise ValueError(f"mode must be polling or webhook, not {mode!r}")
        unknown = set(points) - set(POINTS)
        if unknown or not points:
            raise ValueError(f"points must be some of {', '.join(POINTS)}; got {points}")
        self.workdir = workdir
        self.keep_db = keep_db
        self.rng = random.Random(seed)
        self.backend = backend
        self.mode = mode
        self.points = points
        self.db_path = workdir / "crash.db"
        self._pg_base = postgres_url or os.environ.get(POSTGRES_ENV)
        self._schema: str | None = None
        if backend == "postgres":
            if not self._pg_base:
                raise ValueError(f"--db postgres needs --postgres-url or {POSTGRES_ENV}")
            self._schema = f"crash_{uuid.uuid4().hex[:16]}"
            url = make_url(self._pg_base).update_query_dict(
                {"options": f"-csearch_path={self._schema}"}
            )
            self.url = url.render_as_string(hide_password=False)
        else:
            self.url = f"sqlite+aiosqlite:///{self.db_path}"
        self.port = free_port() if mode == "webhook" else 0
        self.pushed: list[Pushed] = []
        self.summary = Summary(backend=backend, mode=mode)
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self._next_user = 9000
        self._clients: list[asyncio.Task[None]] = []
        self.chat_of_client: dict[int, int] = {}
        self.row_client: dict[int, int] = {}

    # --- the database --------------------------------------------------------------------------

    @contextlib.contextmanager
    def database(self) -> Any:
        """A fresh PostgreSQL schema for the loop, dropped at the end (SQLite: the temp file)."""
        if self._schema is None:
            yield
            return
        assert self._pg_base is not None
        admin = create_engine(self._pg_base, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(sql(f'CREATE SCHEMA "{self._schema}"'))
            try:
                yield
            finally:
                if self.keep_db:
                    self.log(f"PostgreSQL schema kept: {self._schema}")
                else:
                    with admin.connect() as conn:
                        conn.execute(sql(f'DROP SCHEMA IF EXISTS "{self._schema}" CASCADE'))
        finally:
            admin.dispose()

    # --- the bot process -----------------------------------------------------------------------

    def env(self, tg: TelegramSandbox) -> dict[str, str]:
        env = {
            **os.environ,
            "TRIAGE_TELEGRAM_TOKEN": tg.token,
            "TRIAGE_TELEGRAM_API_BASE": tg.api_base,
            "TRIAGE_DATABASE_URL": self.url,
            "TRIAGE_HTTP_PORT": str(self.port),
            "TRIAGE_OUTBOX_INTERVAL_SECONDS": "0.2",
            "TRIAGE_SLACK_BOT_TOKEN": "",
            "TRIAGE_TELEGRAM_MODE": self.mode,
            # An outer PYTHONPATH goes first (e.g. a patched copy of the product to try a fix).
            "PYTHONPATH": os.pathsep.join(
                p for p in (os.environ.get("PYTHONPATH"), str(REPO / "src")) if p
            ),
        }
        for name in ("TRIAGE_CRASH_AT", "TRIAGE_CRASH_MARK"):
            env.pop(name, None)
        if self.mode == "webhook":
            env["TRIAGE_TELEGRAM_WEBHOOK_SECRET"] = WEBHOOK_SECRET
            env["TRIAGE_TELEGRAM_WEBHOOK_URL"] = f"http://127.0.0.1:{self.port}{WEBHOOK_PATH}"
        return env

    def spawn(
        self, tg: TelegramSandbox, run: int, *, crash_at: str | None = None
    ) -> subprocess.Popen[bytes]:
        env = self.env(tg)
        if crash_at is not None:
            env["TRIAGE_CRASH_AT"] = crash_at
            env["TRIAGE_CRASH_MARK"] = str(self.mark_file(run))
        logf = open(self.workdir / f"run-{run:03d}.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(RUNNER)],
            env=env,
            cwd=self.workdir,
            stdout=logf,
            stderr=subprocess.STDOUT,
        )
        logf.close()
        return self.proc

    def mark_file(self, run: int) -> Path:
        return self.workdir / f"run-{run:03d}.crash"

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

    async def check_after_kill(
        self, tg: TelegramSandbox, run: int, mark: dict[str, Any] | None = None
    ) -> str:
        """The checks after a kill. `mark`: where the process killed itself (a named point),
        checked against the database. Returns what the kill left behind, for the log."""
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
                self.chat_of_client = {
                    c.id: int(c.external_id)
                    for c in (await s.exec(select(Client))).all()
                    if c.id is not None
                }
                self.row_client = {r.id: r.client_id for r in rows if r.id is not None}
                sent_events = (
                    await s.exec(select(AuditEvent).where(AuditEvent.type == "outbound_sent"))
                ).all()
                allowed_events = (
                    await s.exec(select(AuditEvent).where(AuditEvent.type == "outbound_allowed"))
                ).all()
        finally:
            await db.dispose()
        self.summary.audit_breaks += len(breaks)
        for b in breaks:
            self.error(f"run {run}: audit break {b}")
        unconfirmed = {u["update_id"] for u in tg.pending_updates}
        pushed_by_id = {p.update_id: p for p in self.pushed}
        if self.mode == "webhook":
            # Telegram's only test of success is a 200: each update answered 200 must be stored.
            confirmed = {d.update_id for d in tg.deliveries if d.ok}
            self.summary.webhook_deliveries = len(tg.deliveries)
            self.summary.webhook_failed = sum(1 for d in tg.deliveries if not d.ok)
        else:
            confirmed = set(pushed_by_id) - unconfirmed
        for uid in sorted(confirmed):
            p = pushed_by_id[uid]
            if p.key.removeprefix("telegram:") not in stored:
                self.summary.confirmed_not_stored += 1
                self.error(f"run {run}: update {uid} confirmed to Telegram but not stored")
        stored_unconfirmed = any(
            pushed_by_id[u].key.removeprefix("telegram:") in stored for u in unconfirmed
        )
        if stored_unconfirmed:
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
        sending = {r.id for r in rows if r.status == "sending"}
        if sending:
            self.summary.kills_mid_drain += 1
        left = [f"{len(sending)} row(s) sending"] if sending else []
        if stored_unconfirmed:
            left.append("stored update(s) unconfirmed")
        if mark is not None:
            allowed = {json.loads(e.payload)["outbox_id"] for e in allowed_events if e.payload}
            receipts = {
                json.loads(e.payload)["outbox_id"]: str(json.loads(e.payload)["message_id"])
                for e in sent_events
                if e.payload is not None
            }
            receipted = {i for ids in receipts.values() for i in ids.split(",")}
            ok = self.in_window(
                tg,
                mark,
                stored=stored,
                rows=rows,
                allowed=allowed,
                receipts=receipts,
                receipted=receipted,
                unconfirmed=unconfirmed,
            )
            point = mark["point"]
            if ok is None:
                self.error(f"run {run}: the {point} kill left no trace to check ({mark})")
            elif ok:
                self.summary.window_seen[point] += 1
                left.append(
                    f"verified {point} window for {mark.get('ref') or mark.get('outbox_id')}"
                )
            else:
                self.error(f"run {run}: the {point} kill is not in its window ({mark})")
        return ", ".join(left) or "nothing pending"

    def in_window(
        self,
        tg: TelegramSandbox,
        mark: dict[str, Any],
        *,
        stored: set[str],
        rows: Any,
        allowed: set[int],
        receipts: dict[int, str],
        receipted: set[str],
        unconfirmed: set[int],
    ) -> bool | None:
        """Whether the database and the sandbox show the named point the process died at.

        in-turn: the update is neither stored nor confirmed; after-turn-commit: stored, not
        confirmed; after-judge: the row is `sending` with an `allowed` verdict and no receipt;
        after-send: the same, and its text reached the chat; after-mark: `sent`, one receipt.
        None when the mark does not name its update or row (nothing to check against).
        """
        point = mark["point"]
        if point in ("in-turn", "after-turn-commit"):
            pushed = [p for p in self.pushed if p.key == mark.get("ref")]
            if not pushed:
                return None
            uid = pushed[0].update_id
            if self.mode == "webhook":
                confirmed = any(d.ok for d in tg.deliveries if d.update_id == uid)
            else:
                confirmed = uid not in unconfirmed
            is_stored = pushed[0].key.removeprefix("telegram:") in stored
            return not confirmed and is_stored == (point == "after-turn-commit")
        row = next((r for r in rows if r.id == mark.get("outbox_id")), None)
        if row is None:
            return None
        if point == "after-mark":
            return row.status == "sent" and row.id in receipts
        if row.status != "sending" or row.id not in allowed or row.id in receipts:
            return False
        # Telegram message ids count per chat: compare within the row's chat only.
        chat = self.chat_of_client.get(row.client_id)
        mine = {
            i
            for oid, ids in receipts.items()
            if oid in self.row_client and self.row_client[oid] == row.client_id
            for i in ids.split(",")
        }
        delivered = chat is not None and any(
            str(m["message_id"]) not in mine and m["text"] == row.text for m in tg.sent(chat)
        )
        return delivered if point == "after-send" else True

    def error(self, text: str) -> None:
        self.summary.consistency_errors.append(text)
        self.log("ERROR " + text)

    def cli_verify(self, tg: TelegramSandbox) -> None:
        proc = subprocess.run(
            [sys.executable, "-m", "triage.cli", "audit", "verify"],
            env=self.env(tg),
            capture_output=True,
            text=True,
            timeout=300,
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
            dead_rows: list[Outbox] = []
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
                    dead_rows.append(r)
            unreceipted = [(mid, text) for mid, text in sandbox.items() if mid not in receipted]
            for r in dead_rows:
                # A dead row that a worker judged and sent before it died (no receipt), then
                # declared dead on a later claim: the client has it once; the record says dead.
                copy = next((u for u in unreceipted if u[1] == r.text), None)
                if r.status == "dead" and judged[r.id or -1] >= 1 and copy is not None:
                    unreceipted.remove(copy)
                    s.delivered_but_dead += 1
                    if r.dedupe_key.startswith("telegram:msg:"):
                        s.replies_sent += 1
                    self.error(f"chat {chat}: row {r.id} was delivered, then ended dead")
                else:
                    s.lost += 1
                    self.error(f"chat {chat}: row {r.id} ended {r.status}")
            for mid, text in unreceipted:
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

    def intake_calls(self, tg: TelegramSandbox) -> int:
        """Bot API calls that show a process takes updates (the old one is dead by then)."""
        return len(tg.calls_to("setWebhook" if self.mode == "webhook" else "getUpdates"))

    def ready(self, tg: TelegramSandbox, before: int) -> bool:
        """Polling: this process polled (a getUpdates answered or parked). Webhook: it has set
        the webhook."""
        if self.mode == "webhook":
            return self.intake_calls(tg) > before
        return tg.polling or self.intake_calls(tg) > before

    async def wait_ready(self, tg: TelegramSandbox, calls_before: int, run: int) -> bool:
        """Wait until the bot takes updates; False if it killed itself first (a named point)."""
        assert self.proc is not None
        proc = self.proc
        deadline = time.monotonic() + START_TIMEOUT
        while not self.ready(tg, calls_before) and proc.poll() is None:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"triage run did not take updates within {START_TIMEOUT} s; {self.workdir}"
                )
            # Re-checked often: the process's exit does not wake the sandbox's condition.
            with contextlib.suppress(TimeoutError):
                await tg.wait_until(lambda: self.ready(tg, calls_before), timeout=0.1)
        if proc.poll() is None:
            return True
        if proc.returncode == -signal.SIGKILL and self.mark_file(run).exists():
            return False
        raise RuntimeError(f"triage run exited with {proc.returncode}; see {self.workdir}")

    async def one_run(self, tg: TelegramSandbox, run: int) -> None:
        point = self.points[run % len(self.points)]
        crash_at = f"{point}:{self.rng.randint(1, 3)}" if point in NAMED_POINTS else None
        spawned = time.monotonic()
        calls_before = self.intake_calls(tg)
        self.spawn(tg, run, crash_at=crash_at)
        label = point
        if point == "startup":
            self.new_clients(tg, 2)
            await asyncio.sleep(self.rng.uniform(0.0, 1.5))
        else:
            up = await self.wait_ready(tg, calls_before, run)
            # Clients write while the bot runs: kills land inside turns and drains.
            self.new_clients(tg, 3)
            if point == "random":
                await asyncio.sleep(self.rng.uniform(0.0, 2.5))
            elif up:
                assert self.proc is not None
                with contextlib.suppress(subprocess.TimeoutExpired):
                    await asyncio.to_thread(self.proc.wait, POINT_TIMEOUT)
        await self.kill()
        mark: dict[str, Any] | None = None
        if crash_at is not None:
            if self.mark_file(run).exists():
                mark = json.loads(self.mark_file(run).read_text())
                label = f"{point} (#{mark['n']})"
            else:
                point = label = f"{point} (not reached)"
        self.summary.kills[point] += 1
        self.summary.runs += 1
        left = await self.check_after_kill(tg, run, mark)
        if run % 10 == 9:
            self.cli_verify(tg)
        self.log(
            f"run {run + 1}: killed at {label} after {time.monotonic() - spawned:.1f} s; "
            f"left: {left}; {len(self.pushed)} client messages so far"
        )

    def sandbox(self) -> TelegramSandbox:
        # Webhook: Telegram retries an update until it gets a 200; here every 0.05-0.25 s and
        # without giving up (a real Telegram gives up after a while: RELIABILITY.md).
        return TelegramSandbox(
            webhook_max_attempts=1_000_000,
            webhook_retry_delay=0.05,
            webhook_max_retry_delay=0.25,
        )

    async def run(self, runs: int) -> Summary:
        started = time.monotonic()
        with self.database():
            async with self.sandbox() as tg:
                try:
                    await self._run(tg, runs)
                finally:
                    # Never leave a bot behind when the loop fails.
                    if self.proc is not None and self.proc.poll() is None:
                        self.proc.kill()
                        await asyncio.to_thread(self.proc.wait, 30)
        self.summary.seconds = time.monotonic() - started
        return self.summary

    async def _run(self, tg: TelegramSandbox, runs: int) -> None:
        engine = engine_from_settings(Settings(database_url=self.url))
        for run in range(runs):
            await self.one_run(tg, run)
        await asyncio.gather(*self._clients)
        # The last start: no kill; the bot catches up by itself.
        calls_before = self.intake_calls(tg)
        self.spawn(tg, runs)
        try:
            await self.wait_ready(tg, calls_before, runs)
            deadline = time.monotonic() + START_TIMEOUT
            while not await self.settled():
                if time.monotonic() > deadline:
                    self.error(f"the bot did not catch up within {START_TIMEOUT} s")
                    break
                await asyncio.sleep(0.25)  # polling the database: no event to await
        finally:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGTERM)
            await asyncio.to_thread(self.proc.wait, 60)
        self.cli_verify(tg)
        await self.check_after_kill(tg, runs)
        await self.final_check(tg, engine)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument(
        "--keep",
        type=Path,
        help="keep the logs (and the SQLite file) in this folder, and the PostgreSQL schema",
    )
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--postgres-url",
        help=f"server for --db postgres (default: ${POSTGRES_ENV}); "
        "the loop creates a fresh schema there and drops it at the end",
    )
    parser.add_argument("--mode", choices=("polling", "webhook"), default="polling")
    parser.add_argument(
        "--points",
        default=",".join(POINTS),
        help=f"kill points taken in turn, comma-separated (default: {','.join(POINTS)})",
    )
    args = parser.parse_args(argv)
    points = tuple(p.strip() for p in args.points.split(",") if p.strip())
    print(
        f"crash loop: {args.runs} runs, seed {args.seed}, {args.db}, {args.mode}, "
        f"points {','.join(points)}",
        flush=True,
    )

    def loop(workdir: Path) -> Summary:
        crash = CrashLoop(
            workdir,
            seed=args.seed,
            backend=args.db,
            postgres_url=args.postgres_url,
            mode=args.mode,
            points=points,
            keep_db=args.keep is not None,
            log=lambda line: print(line, flush=True),
        )
        return asyncio.run(crash.run(args.runs))

    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        summary = loop(args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="triage-crash-") as tmp:
            summary = loop(Path(tmp))
    print(summary.text())
    return 0 if summary.ok() else 1


if __name__ == "__main__":
    sys.exit(main())
