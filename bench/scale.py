"""Item 4: turn latency and gate latency as the store grows (10 k, 100 k, ... stored clients).

The store is `bench.datagen`'s: clones of real clients (every row a decided, five-message
conversation leaves, about 53 rows and 33 audit events per client), grown from one size to the
next on SQLite and on PostgreSQL. At each size, one message at a time (no queueing, so the
figure is the store's latency and not a queue's):

- turns of new clients (a whole scripted conversation each) and of stored clients picked at
  random (a message after their decision: lock, load, re-evaluate, append to a long chain);
- the gate at send time for stored clients picked at random: a message queued for the client
  (`triage.outbox.rows.enqueue`), then one `Dispatcher.drain_once` that claims it, judges it
  against the client's facts, records the verdict, sends it (RecordingSender) and marks it.
"""

from __future__ import annotations

import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import (
    CONVERSATIONS,
    Config,
    client_event,
    example_engine,
    latency_summary,
    percentile,
    postgres_base,
)
from bench.datagen import dataset

RETURNING_TEXTS = ("thanks, any news?", "when will someone contact me?", "ok", "hello?")


async def measure(
    url: str,
    engine: Any,
    size: int,
    samples: int,
    seed: int,
    engine_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Turn and gate latencies on the store at `url` holding `size` generated clients.

    `engine_kwargs`: for `make_engine` (what-ifs such as a bigger SQLite page cache).
    """
    from sqlmodel import select

    from triage.outbox.dispatcher import Dispatcher, DispatcherConfig
    from triage.outbox.rows import OutboundRequest, enqueue
    from triage.service.client_events import ConversationStore
    from triage.store.db import make_engine, make_sessionmaker
    from triage.store.evidence import export_client
    from triage.store.models import Client
    from triage_sandbox.outbox import RecordingSender

    rng = random.Random(seed)
    db = make_engine(url, **(engine_kwargs or {}))
    try:
        sessions = make_sessionmaker(db)
        store = ConversationStore(sessions)
        dispatcher = Dispatcher(
            sessions,
            senders={"telegram": RecordingSender()},
            profile=engine.profile,
            config=DispatcherConfig(rate_limit=False),
        )
        new_turns: list[float] = []
        returning: list[float] = []
        gate: list[float] = []
        tag = f"s{size}x{seed}"

        async def turn(external_id: str, key: str, text_: str) -> float:
            t0 = time.perf_counter()
            result = await store.handle(
                source="telegram",
                update_key=key,
                channel="telegram",
                external_id=external_id,
                event=client_event(text_),
                engine=engine,
            )
            took = time.perf_counter() - t0
            if result is None:
                raise RuntimeError(f"update {key} was not handled")
            return took

        # Warm-up: the first statements of a fresh pool are not what is measured.
        for j, text_ in enumerate(CONVERSATIONS[0]):
            await turn(f"{tag}w", f"{tag}w:{j}", text_)
        conversations = max(1, samples // 2 // len(CONVERSATIONS[0]))
        for c in range(conversations):
            for j, text_ in enumerate(CONVERSATIONS[c % len(CONVERSATIONS)]):
                new_turns.append(await turn(f"{tag}n{c}", f"{tag}n{c}:{j}", text_))
        for n in range(samples // 2):
            k = rng.randrange(size)
            returning.append(
                await turn(f"g{k}", f"{tag}r{n}", RETURNING_TEXTS[n % len(RETURNING_TEXTS)])
            )
        while (await dispatcher.drain_once()).claimed:
            pass
        ids: list[int] = []
        async with sessions() as session:
            for _ in range(samples):
                k = rng.randrange(size)
                cid = (
                    await session.exec(select(Client.id).where(Client.external_id == f"g{k}"))
                ).one()
                ids.append(int(cid))
        for n, cid in enumerate(ids):
            await enqueue(
                sessions,
                OutboundRequest(
                    client_id=cid,
                    text="Hello again, is there anything else we can help you with?",
                    kind="follow_up",
                    sender="scheduler",
                    dedupe_key=f"{tag}:gate:{n}",
                ),
            )
            t0 = time.perf_counter()
            report = await dispatcher.drain_once()
            gate.append(time.perf_counter() - t0)
            if report.claimed != 1:
                raise RuntimeError(f"expected one row to drain, got {report}")
        # Evidence at this size: one client's pack (what `evidence export` does per client).
        exports: list[float] = []
        scratch = Path(tempfile.mkdtemp(prefix="bench-export-"))
        try:
            for n, cid in enumerate(ids[: max(5, samples // 10)]):
                t0 = time.perf_counter()
                await export_client(sessions, cid, scratch / str(n))
                exports.append(time.perf_counter() - t0)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    finally:
        await db.dispose()
    turns = new_turns + returning
    return {
        "turn": latency_summary(turns),
        "turn_new_client": latency_summary(new_turns),
        "turn_stored_client": latency_summary(returning),
        "gate": latency_summary(gate),
        "export_one_client": latency_summary(exports),
        "turn_p99_ms": round(percentile(turns, 99) * 1e3, 3),
        "gate_p99_ms": round(percentile(gate, 99) * 1e3, 3),
    }


def database_mb(ds: Any) -> float | None:
    """The store's size on disk (SQLite file and WAL; PostgreSQL tables and indexes)."""
    try:
        if ds.path is not None:
            return round(
                sum(
                    Path(f"{ds.path}{s}").stat().st_size
                    for s in ("", "-wal")
                    if Path(f"{ds.path}{s}").exists()
                )
                / 2**20,
                1,
            )
        from bench.datagen import TABLES, _pg_connect

        with _pg_connect(ds.url) as conn:
            total = sum(
                int(conn.execute(f"SELECT pg_total_relation_size('{t}')").fetchone()[0])
                for t in TABLES
            )
        return round(total / 2**20, 1)
    except Exception:
        return None


async def run(cfg: Config, *, profile: bool = False) -> dict[str, Any]:
    """Grow each backend's store through `cfg.scale_sizes`, measuring at each size."""
    engine = example_engine()
    backends = [b for b in cfg.scale_backends if b != "postgres" or postgres_base(cfg)]
    out: dict[str, Any] = {
        "sizes": list(cfg.scale_sizes),
        "samples_per_size": cfg.scale_samples,
        "repeats": cfg.scale_repeats,
    }
    for backend in backends:
        per_size: dict[str, Any] = {}
        for size in sorted(cfg.scale_sizes):
            ds = await dataset(cfg, backend, engine, size)
            runs = [
                await measure(ds.url, engine, size, cfg.scale_samples, seed=r)
                for r in range(cfg.scale_repeats)
            ]
            best = sorted(runs, key=lambda x: x["turn_p99_ms"])[len(runs) // 2]
            per_size[str(size)] = {
                **best,
                "turn_p99_ms_runs": [x["turn_p99_ms"] for x in runs],
                "gate_p99_ms_runs": [x["gate_p99_ms"] for x in runs],
                "turn_p99_ms": sorted(x["turn_p99_ms"] for x in runs)[len(runs) // 2],
                "gate_p99_ms": sorted(x["gate_p99_ms"] for x in runs)[len(runs) // 2],
                "build_seconds": ds.build_seconds.get(size),
                "rows": dict(ds.rows),
                "database_mb": database_mb(ds),
            }
        out[backend] = per_size
    # The headline: PostgreSQL (the production store) when measured, else SQLite.
    head = out.get("postgres") or out.get("sqlite") or {}
    out["headline_backend"] = "postgres" if "postgres" in out else "sqlite"
    sizes = sorted(cfg.scale_sizes)
    out["p99_ms"] = {str(s): head.get(str(s), {}).get("turn_p99_ms") for s in sizes}
    for backend in backends:
        first, last = out[backend][str(sizes[0])], out[backend][str(sizes[-1])]
        out[backend]["turn_p99_ratio_largest_vs_smallest"] = round(
            last["turn_p99_ms"] / first["turn_p99_ms"], 3
        )
        out[backend]["gate_p99_ratio_largest_vs_smallest"] = round(
            last["gate_p99_ms"] / first["gate_p99_ms"], 3
        )
    return out
