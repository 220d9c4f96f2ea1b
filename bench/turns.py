"""Item 1: the full path of one client message in process, against bare aiogram.

A turn is `ConversationStore.handle`: claim the update key, lock or create the client and the
conversation, run the engine (classifiers, policy), write the message, decisions, audit chain
events and outbox rows, commit (one transaction, durable: see `durability`). `clients`
conversations run at once, each playing a script of `CONVERSATIONS` message after message.

The baseline is the same three-question conversation on bare aiogram (`baseline.FsmBot`): the
same clients, the same closed loop, measured in the same process, alternating with the subject.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import text

from bench.baseline import FsmBot
from bench.common import (
    CONVERSATIONS,
    Config,
    client_event,
    closed_loop,
    database,
    durability,
    example_engine,
    latency_summary,
    median_of,
    postgres_base,
    ratio,
    summarize_runs,
)
from bench.profiling import maybe_profile

KEYS = ("turns_per_s", "p50_ms", "p99_ms", "cpu_ms_per_turn")


def _script(i: int) -> tuple[str, ...]:
    return CONVERSATIONS[i % len(CONVERSATIONS)]


async def baseline_run(clients: int, min_seconds: float = 1.0) -> dict[str, Any]:
    """The aiogram FSM bot: updates per second and latency.

    One pass of `clients` conversations takes a few tens of milliseconds, too short to measure
    on a noisy machine, so passes (fresh chats each) repeat until `min_seconds` have passed.
    """
    bot = FsmBot()
    latencies: list[float] = []
    elapsed = cpu = 0.0
    errors = passes = 0
    try:
        warm = [bot.updates(10_000_000 + i, _script(i)) for i in range(5)]
        for updates in warm:
            for u in updates:
                await bot.feed(u)

        async def step(_i: int, _j: int, update: Any) -> None:
            await bot.feed(update)

        while elapsed < min_seconds and passes < 200:
            base = 20_000_000 + passes * clients
            scripts = {i: bot.updates(base + i, _script(i)) for i in range(clients)}
            cpu0 = time.process_time()
            loop = await closed_loop(clients, lambda i, s=scripts: s[i], step)
            cpu += time.process_time() - cpu0
            elapsed += loop.elapsed
            latencies.extend(loop.latencies)
            errors += loop.errors
            passes += 1
    finally:
        await bot.close()
    return {
        "updates_per_s": round(len(latencies) / elapsed, 1),
        **latency_summary(latencies),
        "cpu_ms_per_turn": round(cpu / max(1, len(latencies)) * 1e3, 3),
        "passes": passes,
        "errors": errors,
    }


async def store_run(
    cfg: Config,
    url: str,
    engine: Any,
    clients: int,
    *,
    engine_kwargs: dict[str, Any] | None = None,
    profile_name: str | None = None,
    sequential: int = 0,
) -> dict[str, Any]:
    """ConversationStore.handle on `url`: turns per second and latency per turn.

    `sequential`: one client only, playing that many conversations one after the other (the
    latency of a turn with no queueing at all).
    """
    from triage.service.client_events import ConversationStore
    from triage.store.db import make_engine, make_sessionmaker

    kwargs = dict(engine_kwargs or {})
    session_sql: tuple[str, ...] = kwargs.pop("session_sql", ())
    db = make_engine(url, **kwargs)
    if session_sql:
        # After the product's own connect hook (which sets SQLite's synchronous=FULL).
        @sa_event.listens_for(db.sync_engine, "connect")
        def _what_if(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            for sql in session_sql:
                cursor.execute(sql)
            cursor.close()
            if not url.startswith("sqlite"):
                dbapi_connection.commit()

    setting = None
    try:
        if session_sql:
            # Check that the what-if is in force, and say so in the results.
            show = "PRAGMA synchronous" if url.startswith("sqlite") else "SHOW synchronous_commit"
            async with db.connect() as conn:
                setting = str((await conn.execute(text(show))).scalar())
        store = ConversationStore(make_sessionmaker(db))

        async def handle(external_id: str, key: str, text: str) -> None:
            result = await store.handle(
                source="telegram",
                update_key=key,
                channel="telegram",
                external_id=external_id,
                event=client_event(text),
                engine=engine,
            )
            if result is None:
                raise RuntimeError("update was not handled")

        async def step(i: int, j: int, text: str) -> None:
            await handle(f"m{i}", f"m{i}:{j}", text)

        async def warm_step(i: int, j: int, text: str) -> None:
            await handle(f"w{i}", f"w{i}:{j}", text)

        def chained(_i: int) -> list[tuple[int, str]]:
            return [(c, t) for c in range(sequential) for t in _script(c)]

        async def chained_step(_i: int, j: int, item: tuple[int, str]) -> None:
            await handle(f"s{item[0]}", f"s{item[0]}:{j}", item[1])

        await closed_loop(3, _script, warm_step)
        cpu0 = time.process_time()
        with maybe_profile(profile_name is not None, profile_name or "", f"{clients} clients"):
            if sequential:
                loop = await closed_loop(1, chained, chained_step)
            else:
                loop = await closed_loop(clients, _script, step)
        cpu = time.process_time() - cpu0
    finally:
        await db.dispose()
    return {
        "turns_per_s": round(loop.per_second, 1),
        **latency_summary(loop.latencies),
        "cpu_ms_per_turn": round(cpu / max(1, len(loop.latencies)) * 1e3, 3),
        "errors": loop.errors,
        **({"what_if_setting": setting} if setting is not None else {}),
    }


async def run(cfg: Config, *, profile: bool = False) -> dict[str, Any]:
    """Rounds of baseline, SQLite, PostgreSQL (and the single-connection SQLite variant)."""
    engine = example_engine()
    backends = ["sqlite"] + (["postgres"] if postgres_base(cfg) else [])
    runs: dict[str, list[dict[str, Any]]] = {"baseline_aiogram": []}
    variants: dict[str, tuple[str, dict[str, Any]]] = {b: (b, {}) for b in backends}
    if not cfg.quick:
        # What-if (not the product's configuration): one SQLite connection per process, so
        # writers queue in the pool instead of polling SQLite's busy handler.
        variants["sqlite_one_connection"] = ("sqlite", {"pool_size": 1, "max_overflow": 0})
        # What-if: commits that do not wait for the disk. Not durable, so never the product's
        # configuration; the gap to the durable run is the most any group commit (many
        # conversations' turns under one fsync) could win.
        variants["sqlite_no_fsync"] = ("sqlite", {"session_sql": ("PRAGMA synchronous=OFF",)})
        if "postgres" in backends:
            variants["postgres_async_commit"] = (
                "postgres",
                {"session_sql": ("SET synchronous_commit TO off",)},
            )
        # No concurrency at all: the latency of one turn without any queueing.
        variants["sqlite_one_client"] = ("sqlite", {})
        if "postgres" in backends:
            variants["postgres_one_client"] = ("postgres", {})
    for name in variants:
        runs[name] = []
    notes: dict[str, str] = {}
    for r in range(cfg.repeats):
        runs["baseline_aiogram"].append(await baseline_run(cfg.turn_clients))
        for name, (backend, kwargs) in variants.items():
            one = name.endswith("one_client")
            async with database(cfg, backend, f"turns-{name}") as url:
                notes[backend] = durability(url)
                prof = f"turns_{name}" if profile and r == 0 and name in backends else None
                runs[name].append(
                    await store_run(
                        cfg,
                        url,
                        engine,
                        1 if one else cfg.turn_clients,
                        engine_kwargs=kwargs,
                        profile_name=prof,
                        sequential=10 if one else 0,
                    )
                )
    out: dict[str, Any] = {
        "clients": cfg.turn_clients,
        "turns_per_client": len(CONVERSATIONS[0]),
        "repeats": cfg.repeats,
        "durability": notes,
    }
    base = summarize_runs(runs["baseline_aiogram"], ("updates_per_s", "p50_ms", "p99_ms"))
    base.update(summarize_runs(runs["baseline_aiogram"], ("cpu_ms_per_turn",)))
    out["baseline_aiogram"] = base
    for name in variants:
        out[name] = summarize_runs(runs[name], KEYS)
        out[name]["errors"] = sum(x["errors"] for x in runs[name])
        settings = {x["what_if_setting"] for x in runs[name] if "what_if_setting" in x}
        if settings:
            out[name]["what_if_setting"] = sorted(settings)
    for backend in ("sqlite", "postgres"):
        if backend in variants:
            per_round = [
                s["turns_per_s"] / b["updates_per_s"]
                for s, b in zip(runs[backend], runs["baseline_aiogram"], strict=True)
            ]
            # Each round measures the baseline and then the subject back to back: the ratio of a
            # round is the comparison; the median of the rounds' ratios is the figure.
            out[f"ratio_{backend}"] = round(median_of(per_round), 4)
            out[f"ratio_{backend}_per_round"] = [round(x, 4) for x in per_round]
            out[f"ratio_{backend}_of_medians"] = ratio(
                out[backend]["turns_per_s"], base["updates_per_s"]
            )
        else:
            out[backend] = {"turns_per_s": None, "p50_ms": None, "p99_ms": None}
            out[f"ratio_{backend}"] = None
            out[f"{backend}_skipped"] = "PostgreSQL not reachable"
    return out
