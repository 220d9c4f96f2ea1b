"""What every benchmark shares: the configuration, statistics, databases, the conversations.

Numbers on a shared 2-core machine move from run to run, so every figure is measured several
times and reported as the median with its spread (min..max of the runs), and every comparison
is a ratio of two figures measured in the same process, interleaved (baseline, subject,
baseline, subject, ...), so that a burst of noise hits both sides.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

#: The machine's PostgreSQL (trust auth, database "test") unless TRIAGE_BENCH_POSTGRES_URL says.
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
POSTGRES_ENV = "TRIAGE_BENCH_POSTGRES_URL"

#: The three-question intake (source, residence, service) of clients outside the EU/EEA, then one
#: message after the decision (the engine re-evaluates every decision on it). Several wordings,
#: so the classifiers see more than one sentence. Each is decided on its fourth message.
CONVERSATIONS: tuple[tuple[str, ...], ...] = (
    (
        "/start",
        "A friend told me about you",
        "I live in Singapore",
        "I want to buy bitcoin with dollars",
        "thanks, how long does it take?",
    ),
    (
        "/start",
        "I searched your name on Google",
        "Hong Kong",
        "custody of my bitcoin please",
        "ok, what are the fees?",
    ),
    (
        "/start",
        "a colleague at work recommended you",
        "I'm based in Dubai, UAE",
        "I'd like to swap ETH for USDT",
        "great, thank you",
    ),
)

#: For message-in -> reply-out measurements every turn needs a reply: the same intake, then
#: /help (a command the bot answers) instead of the free-text message after the decision.
E2E_CONVERSATIONS: tuple[tuple[str, ...], ...] = tuple((*c[:4], "/help") for c in CONVERSATIONS)


@dataclass
class Config:
    """What to run and how big; `quick` makes every size small (a smoke test)."""

    quick: bool = False
    #: Runs of each measurement (the median is reported).
    repeats: int = 3
    work_dir: Path = field(default_factory=lambda: Path("/tmp"))
    postgres_url: str | None = None
    #: Item 1: concurrent conversations (each plays one script of CONVERSATIONS).
    turn_clients: int = 50
    #: Item 2: concurrent clients over HTTP.
    e2e_clients: int = 10
    #: Item 3: passes over the answer corpus.
    classifier_passes: int = 20
    #: Item 4: stored client counts (cumulative: the data grows from one size to the next).
    scale_sizes: tuple[int, ...] = (10_000, 100_000)
    #: Item 4: measured turns and gate checks at each size, and runs at each size.
    scale_samples: int = 300
    scale_repeats: int = 1
    #: Item 4: the backends (sqlite, postgres).
    scale_backends: tuple[str, ...] = ("sqlite", "postgres")
    #: Item 4: build the SQLite store here and leave it (`--keep-sqlite-datasets DIR`).
    keep_dir: Path | None = None
    #: Item 5: concurrent signed button clicks.
    slack_clicks: int = 100
    #: Item 6: stored clients for `audit verify`, and how many of them to export.
    evidence_clients: int = 5_000
    export_clients: int = 500
    #: Item 7: due rows drained with the rate limiter off; chats and rows each for the paced run.
    outbox_rows: int = 300
    paced_chats: int = 40
    paced_rows_per_chat: int = 3

    @classmethod
    def quick_config(cls, **overrides: Any) -> Config:
        """Small sizes for a smoke test (well under a minute per item)."""
        values: dict[str, Any] = {
            "quick": True,
            "repeats": 1,
            "turn_clients": 10,
            "e2e_clients": 4,
            "classifier_passes": 2,
            "scale_sizes": (1_000, 3_000),
            "scale_samples": 40,
            "slack_clicks": 20,
            "evidence_clients": 500,
            "export_clients": 50,
            "outbox_rows": 30,
            "paced_chats": 6,
            "paced_rows_per_chat": 2,
        }
        values.update(overrides)
        return cls(**values)


# --- statistics ---------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear between the closest ranks; NaN for no values."""
    if not values:
        return math.nan
    data = sorted(values)
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p90, p99 and max in milliseconds, and the sample count."""
    return {
        "p50_ms": round(percentile(seconds, 50) * 1e3, 3),
        "p90_ms": round(percentile(seconds, 90) * 1e3, 3),
        "p99_ms": round(percentile(seconds, 99) * 1e3, 3),
        "max_ms": round(max(seconds) * 1e3, 3) if seconds else math.nan,
        "samples": len(seconds),
    }


def median_of(runs: Sequence[float]) -> float:
    """The median of several runs' figures."""
    return statistics.median(runs) if runs else math.nan


def spread(runs: Sequence[float], digits: int = 3) -> dict[str, Any]:
    """Median, min, max and every run of a figure measured several times."""
    return {
        "median": round(median_of(runs), digits),
        "min": round(min(runs), digits) if runs else math.nan,
        "max": round(max(runs), digits) if runs else math.nan,
        "runs": [round(r, digits) for r in runs],
    }


def summarize_runs(runs: Sequence[dict[str, Any]], keys: Iterable[str]) -> dict[str, Any]:
    """For each key: the median over runs as the figure, plus `<key>_spread`."""
    out: dict[str, Any] = {}
    for key in keys:
        values = [float(r[key]) for r in runs if r.get(key) is not None]
        out[key] = round(median_of(values), 3)
        out[f"{key}_spread"] = spread(values)
    return out


def ratio(subject: float, baseline: float) -> float:
    """subject / baseline, rounded; NaN when the baseline is zero."""
    return round(subject / baseline, 4) if baseline else math.nan


# --- timing -------------------------------------------------------------------------------------


@dataclass
class ClosedLoop:
    """The result of N clients each playing a script, one message after the other."""

    elapsed: float
    latencies: list[float]
    errors: int = 0

    @property
    def per_second(self) -> float:
        """Completed steps per second of wall time."""
        return len(self.latencies) / self.elapsed if self.elapsed else math.nan


async def closed_loop(
    clients: int,
    steps: Callable[[int], Sequence[Any]],
    do_step: Callable[[int, int, Any], Awaitable[None]],
) -> ClosedLoop:
    """Run `clients` concurrent clients; client i does `do_step(i, j, step)` for its steps."""
    import asyncio

    latencies: list[float] = []
    errors = 0

    async def client(i: int) -> None:
        nonlocal errors
        for j, step in enumerate(steps(i)):
            t0 = time.perf_counter()
            try:
                await do_step(i, j, step)
            except Exception:
                errors += 1
                return
            latencies.append(time.perf_counter() - t0)

    start = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    return ClosedLoop(time.perf_counter() - start, latencies, errors)


# --- the machine --------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """What this ran on, for results.json and BENCHMARKS.md."""
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gb = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "summary": f"{os.cpu_count()} cores {cpu}, {mem_gb} GiB, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}",
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": mem_gb,
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "load_average_at_start": [round(x, 2) for x in load] if load else None,
    }


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (other work on a shared machine shows here)."""
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def now_iso() -> str:
    """The current time, UTC, to the second."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


# --- databases ----------------------------------------------------------------------------------


def postgres_base(cfg: Config) -> str | None:
    """The PostgreSQL URL to use, or None when none answers."""
    url = cfg.postgres_url or os.environ.get(POSTGRES_ENV) or DEFAULT_POSTGRES_URL
    try:
        admin = create_engine(url, poolclass=NullPool)
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
        admin.dispose()
    except Exception:
        return None
    return url


def _with_search_path(base: str, schema: str) -> str:
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@contextlib.contextmanager
def postgres_schema(base: str, prefix: str = "bench") -> Any:
    """A fresh schema on `base`; yields a URL whose search_path is it; dropped afterwards."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        yield _with_search_path(base, schema)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@contextlib.asynccontextmanager
async def database(cfg: Config, backend: str, name: str) -> AsyncIterator[str]:
    """An empty, migrated database (Alembic head) of `backend`; removed afterwards."""
    from triage.store.db import upgrade_async

    if backend == "sqlite":
        path = cfg.work_dir / f"{name}-{uuid.uuid4().hex[:8]}.db"
        url = f"sqlite+aiosqlite:///{path}"
        try:
            await upgrade_async(url)
            yield url
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    base = postgres_base(cfg)
    if base is None:
        raise RuntimeError("PostgreSQL is not reachable")
    with postgres_schema(base) as url:
        await upgrade_async(url)
        yield url


def durability(url: str) -> str:
    """How commits are made durable on this database (stated next to every store figure)."""
    if make_url(url).get_backend_name() == "sqlite":
        return "SQLite WAL, synchronous=FULL (fsync of the WAL on every commit)"
    try:
        admin = create_engine(url, poolclass=NullPool)
        with admin.connect() as conn:
            sync = conn.execute(text("SHOW synchronous_commit")).scalar()
            fsync = conn.execute(text("SHOW fsync")).scalar()
        admin.dispose()
    except Exception:
        return "PostgreSQL (settings unreadable)"
    return f"PostgreSQL synchronous_commit={sync}, fsync={fsync}"


# --- the product --------------------------------------------------------------------------------


def example_engine() -> Any:
    """The real engine: shipped flow, examples/company.yaml, the real gazetteer."""
    from triage.app import build_engine
    from triage.settings import DEFAULT_PROFILE, load_profile

    return build_engine(load_profile(DEFAULT_PROFILE))


def client_event(text_: str, at: datetime | None = None, language: str = "en") -> Any:
    """A client event as the Telegram adapter makes it."""
    from triage.flows.engine import ClientEvent

    if text_.startswith("/start"):
        kind = "start"
    elif text_.startswith("/"):
        kind = "command"
    else:
        kind = "message"
    return ClientEvent(kind=kind, at=at or datetime.now(UTC), text=text_, language=language)


def replies_per_turn(engine: Any, script: Sequence[str]) -> list[int]:
    """How many messages the bot sends right away for each message of `script` (pure engine)."""
    from triage.flows.engine import ConversationState

    state = ConversationState()
    counts = []
    for text_ in script:
        event = client_event(text_)
        if event.kind == "command":
            turn = engine.command(state, text_.lstrip("/").split()[0], event.at)
        else:
            turn = engine.handle(state, event)
        state = turn.state
        counts.append(len(turn.outbound))
    return counts


def quiet_logs() -> None:
    """Keep library and product logs out of the table (warnings and errors still print)."""
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("aiogram", "apscheduler", "slack_bolt", "aiohttp.access"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # The product logs every refused Slack click as a warning; the Slack item makes hundreds.
    logging.getLogger("triage").setLevel(logging.ERROR)
    # APScheduler says so each time a kicked drain meets a running one; that is expected here.
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
    logging.getLogger("apscheduler.executors.default").setLevel(logging.ERROR)
