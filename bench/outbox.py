"""Item 7: the outbox dispatcher: due rows drained per second, and the pacing it keeps.

The store holds clients cloned from real decided conversations (outside the EU/EEA, so the gate
allows every message) and `rows` due messages spread over them. `Dispatcher.drain` (the
scheduled job: batches of 50 while they come back full) runs until every row is settled; each
row is claimed, judged by the gate against the client's facts, recorded in the client's audit
chain, sent (a RecordingSender: no network) and marked sent.

With the rate limiter on (the product's defaults: 30 messages/s overall, 1/s per chat), the
RecordingSender stamps each send with the monotonic clock; the highest number of sends in any
one-second window, overall and per chat, is what is reported.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from datetime import timedelta
from typing import Any

from bench.common import Config, database, example_engine, postgres_base, spread
from bench.datagen import (
    _column_kinds,
    _max_ids_pg,
    _max_ids_sqlite,
    _templates,
    clone_rows,
    insert_postgres,
    insert_sqlite,
)
from bench.profiling import maybe_profile


class WallClock:
    """The real clocks, with the nanosecond monotonic reading the RecordingSender uses."""

    def now(self) -> Any:
        """UTC now."""
        from triage.store.models import utcnow

        return utcnow()

    def monotonic(self) -> float:
        """time.monotonic()."""
        return time.monotonic()

    def monotonic_ns(self) -> int:
        """time.monotonic_ns()."""
        return time.monotonic_ns()

    async def sleep(self, seconds: float) -> None:
        """asyncio.sleep."""
        await asyncio.sleep(seconds)


async def _store_with_rows(
    cfg: Config, url: str, engine: Any, clients: int, rows_per_client: int, tag: str
) -> list[int]:
    """Clone `clients` decided clients into the store and queue due rows for each; their ids."""
    from sqlalchemy import insert

    from triage.store.db import make_engine
    from triage.store.models import Outbox, utcnow

    templates = await _templates(cfg, engine)
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1]
        columns, rows = clone_rows(templates, 0, clients, _max_ids_sqlite(path))
        insert_sqlite(path, columns, rows)
    else:
        columns, rows = clone_rows(templates, 0, clients, _max_ids_pg(url))
        insert_postgres(url, columns, rows, _column_kinds())
    client_ids = [r[columns["client"].index("id")] for r in rows["client"]]
    now = utcnow() - timedelta(seconds=1)
    values = [
        {
            "dedupe_key": f"{tag}:{cid}:{n}",
            "client_id": cid,
            "channel": "telegram",
            "kind": "follow_up",
            "sender": "scheduler",
            "text": f"Hello again ({n}): is there anything else we can help you with?",
            "buttons": [],
            "reply": False,
            "status": "pending",
            "attempts": 0,
            "due_at": now,
            "created_at": now,
        }
        for n in range(rows_per_client)
        for cid in client_ids
    ]
    db = make_engine(url)
    try:
        async with db.begin() as conn:
            await conn.execute(insert(Outbox), values)
    finally:
        await db.dispose()
    return client_ids


async def drain_rate(
    cfg: Config, backend: str, engine: Any, profile: bool = False
) -> dict[str, Any]:
    """Rows per second through `Dispatcher.drain` with the rate limiter off."""
    from triage.outbox.dispatcher import Dispatcher, DispatcherConfig, DrainReport
    from triage.store.db import make_engine, make_sessionmaker
    from triage_sandbox.outbox import RecordingSender

    clients = max(1, cfg.outbox_rows // 10)
    async with database(cfg, backend, "outbox") as url:
        await _store_with_rows(cfg, url, engine, clients, 10, "drain")
        db = make_engine(url)
        try:
            sender = RecordingSender()
            dispatcher = Dispatcher(
                make_sessionmaker(db),
                senders={"telegram": sender},
                profile=engine.profile,
                config=DispatcherConfig(rate_limit=False),
            )
            total = DrainReport()
            t0 = time.perf_counter()
            with maybe_profile(profile, f"outbox_drain_{backend}", f"{clients * 10} rows"):
                while True:
                    report = await dispatcher.drain()
                    total.add(report)
                    if report.claimed == 0:
                        break
            took = time.perf_counter() - t0
        finally:
            await db.dispose()
    rows = clients * 10
    return {
        "rows": rows,
        "sent": total.sent,
        "seconds": round(took, 3),
        "rows_per_s": round(total.sent / took, 1) if took else None,
        "errors": total.errors,
    }


def max_in_window(stamps_ns: list[int], window_ns: int = 1_000_000_000) -> int:
    """The most stamps in any half-open window [t, t + window) (t at a stamp)."""
    stamps = sorted(stamps_ns)
    best, j = 0, 0
    for i in range(len(stamps)):
        while j < len(stamps) and stamps[j] - stamps[i] < window_ns:
            j += 1
        best = max(best, j - i)
    return best


async def paced(cfg: Config, engine: Any) -> dict[str, Any]:
    """The product's default pacing, measured from the send timestamps."""
    from triage.outbox.dispatcher import Dispatcher, DispatcherConfig
    from triage.store.db import make_engine, make_sessionmaker
    from triage_sandbox.outbox import RecordingSender

    clock = WallClock()
    config = DispatcherConfig()
    async with database(cfg, "sqlite", "outbox-paced") as url:
        await _store_with_rows(cfg, url, engine, cfg.paced_chats, cfg.paced_rows_per_chat, "paced")
        expected = cfg.paced_chats * cfg.paced_rows_per_chat
        db = make_engine(url)
        try:
            sender = RecordingSender(clock)  # type: ignore[arg-type]
            dispatcher = Dispatcher(
                make_sessionmaker(db),
                senders={"telegram": sender},
                profile=engine.profile,
                config=config,
                clock=clock,
            )
            t0 = time.perf_counter()
            deadline = t0 + 10 + expected / config.overall_per_second * 3
            while len(sender.sent) < expected and time.perf_counter() < deadline:
                report = await dispatcher.drain()
                if report.claimed == 0:
                    await asyncio.sleep(0.02)
            took = time.perf_counter() - t0
        finally:
            await db.dispose()
    stamps = [s.at_ns for s in sender.sent]
    per_chat: dict[int, list[int]] = defaultdict(list)
    for s in sender.sent:
        per_chat[s.delivery.client_id].append(s.at_ns)
    gaps = [
        (b - a) / 1e9
        for chat in per_chat.values()
        for a, b in zip(sorted(chat), sorted(chat)[1:], strict=False)
    ]
    ordered = sorted(stamps)
    overall_gaps = [(b - a) / 1e9 for a, b in zip(ordered, ordered[1:], strict=False)]
    return {
        "chats": cfg.paced_chats,
        "rows_per_chat": cfg.paced_rows_per_chat,
        "sent": len(sender.sent),
        "expected": expected,
        "seconds": round(took, 3),
        "achieved_rate_per_s": round(len(stamps) / ((ordered[-1] - ordered[0]) / 1e9), 2)
        if len(ordered) > 1
        else None,
        "limits": {
            "overall_per_second": config.overall_per_second,
            "per_chat_per_second": config.per_chat_per_second,
        },
        "max_send_rate_per_s": max_in_window(stamps),
        "max_per_chat_rate_per_s": max((max_in_window(v) for v in per_chat.values()), default=0),
        "min_gap_overall_ms": round(min(overall_gaps) * 1e3, 3) if overall_gaps else None,
        "min_gap_per_chat_ms": round(min(gaps) * 1e3, 3) if gaps else None,
    }


async def limiter_alone(cfg: Config) -> dict[str, Any]:
    """The RateLimiter by itself, offered more than it allows (sends cost nothing here), so
    that the overall limit binds: `chats` chats with `rows` messages each, all due at once.
    Each send takes a slot (`reserve`) and then its token (`acquire_send`), as the dispatcher."""
    from triage.outbox.clock import SystemClock
    from triage.outbox.ratelimit import RateLimiter

    limiter = RateLimiter(overall_per_second=30.0, per_chat_per_second=1.0)
    chats = max(40, cfg.paced_chats)
    rows = 1 if cfg.quick else 3
    stamps: list[int] = []
    per_chat: dict[int, list[int]] = defaultdict(list)

    async def chat(c: int) -> None:
        for _ in range(rows):
            key = f"telegram:client:{c}"
            slot = limiter.reserve(key, time.monotonic())
            if slot.wait > 0:
                await asyncio.sleep(slot.wait)
            await limiter.acquire_send(key, SystemClock())  # what the dispatcher does
            at = time.monotonic_ns()
            stamps.append(at)
            per_chat[c].append(at)

    t0 = time.perf_counter()
    await asyncio.gather(*(chat(c) for c in range(chats)))
    took = time.perf_counter() - t0
    return {
        "sends": len(stamps),
        "seconds": round(took, 3),
        "max_send_rate_per_s": max_in_window(stamps),
        "max_per_chat_rate_per_s": max(max_in_window(v) for v in per_chat.values()),
    }


async def run(cfg: Config, *, profile: bool = False) -> dict[str, Any]:
    """Drain rate per backend (several runs), then one paced run."""
    engine = example_engine()
    backends = ["sqlite"] + (["postgres"] if postgres_base(cfg) else [])
    out: dict[str, Any] = {"rows": cfg.outbox_rows}
    for backend in backends:
        runs = [
            await drain_rate(cfg, backend, engine, profile and r == 0) for r in range(cfg.repeats)
        ]
        rates = [r["rows_per_s"] for r in runs if r["rows_per_s"]]
        out[f"drain_{backend}"] = {
            "rows_per_s": spread(rates, 1)["median"],
            "rows_per_s_spread": spread(rates, 1),
            "sent": [r["sent"] for r in runs],
            "errors": sum(r["errors"] for r in runs),
        }
    head = out.get("drain_postgres") or out["drain_sqlite"]
    out["drain_rows_per_s"] = head["rows_per_s"]
    out["drain_headline_backend"] = "postgres" if "drain_postgres" in out else "sqlite"
    pacing = await paced(cfg, engine)
    out["paced"] = pacing
    out["limiter_alone"] = await limiter_alone(cfg)
    out["max_send_rate_per_s"] = pacing["max_send_rate_per_s"]
    out["max_per_chat_rate_per_s"] = pacing["max_per_chat_rate_per_s"]
    return out
