"""Optional cProfile of one measured section (`python -m bench --profile`).

The profile of the section goes to bench/profiles/<name>.txt: the functions by own time and by
cumulative time, and a coarse split of the own time into layers (engine and classifiers,
SQLAlchemy/SQLModel, database drivers, asyncio, aiogram/aiohttp, other), which is what the
hotspot list in BENCHMARKS.md is read from.
"""

from __future__ import annotations

import contextlib
import cProfile
import io
import pstats
from collections.abc import Iterator
from pathlib import Path

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"

_LAYERS = (
    ("triage domain (classifiers, policy, gate)", ("/triage/domain/",)),
    ("triage flows engine", ("/triage/flows/",)),
    ("triage store/outbox/channels", ("/triage/store/", "/triage/outbox/", "/triage/channels/")),
    ("sqlmodel", ("/sqlmodel/",)),
    ("sqlalchemy", ("/sqlalchemy/",)),
    ("db drivers (aiosqlite, psycopg, sqlite3)", ("/aiosqlite/", "/psycopg/", "sqlite3")),
    ("pydantic", ("/pydantic/", "pydantic_core")),
    ("aiogram", ("/aiogram/",)),
    ("aiohttp / slack", ("/aiohttp/", "/slack_bolt/", "/slack_sdk/", "/yarl/", "/multidict/")),
    ("asyncio + selectors (incl. waiting)", ("/asyncio/", "selectors.py", "select.epoll")),
    ("json / hashlib / re", ("json", "hashlib", "sha256", "re/", "re.Pattern", "_sre")),
)


def _layer(filename: str, func: str) -> str:
    where = f"{filename}:{func}"
    for name, needles in _LAYERS:
        if any(n in where for n in needles):
            return name
    return "other"


def layers(stats: pstats.Stats) -> list[tuple[str, float]]:
    """Own time per layer, largest first."""
    totals: dict[str, float] = {}
    for (filename, _line, func), (_cc, _nc, tt, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        key = _layer(filename, func)
        totals[key] = totals.get(key, 0.0) + tt
    return sorted(totals.items(), key=lambda kv: -kv[1])


@contextlib.contextmanager
def maybe_profile(enabled: bool, name: str, note: str = "") -> Iterator[None]:
    """Profile the block into bench/profiles/<name>.txt when `enabled`."""
    if not enabled:
        yield
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        PROFILE_DIR.mkdir(exist_ok=True)
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        total = sum(t for _, t in layers(stats)) or 1.0
        out.write(f"# {name}: {note}\n# own time by layer (cProfile, seconds)\n")
        for layer, seconds in layers(stats):
            out.write(f"#   {seconds:8.3f} s  {seconds / total * 100:5.1f} %  {layer}\n")
        out.write("\n")
        stats.sort_stats("tottime").print_stats(35)
        stats.sort_stats("cumulative").print_stats(45)
        (PROFILE_DIR / f"{name}.txt").write_text(out.getvalue())
