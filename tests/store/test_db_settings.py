"""Connection settings of `make_engine`: SQLite's page cache and memory mapping for big stores,
PostgreSQL without JIT."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from tests.store.conftest import POSTGRES_ENV
from triage.store.db import SQLITE_CACHE_SIZE_KIB, SQLITE_MMAP_SIZE_BYTES, make_engine


async def _pragmas(url: str, **settings: int) -> tuple[int, int]:
    engine = make_engine(url, **settings)
    try:
        async with engine.connect() as conn:
            cache = (await conn.execute(text("PRAGMA cache_size"))).scalar()
            mmap = (await conn.execute(text("PRAGMA mmap_size"))).scalar()
    finally:
        await engine.dispose()
    return int(cache), int(mmap)


async def test_sqlite_gets_a_big_page_cache_and_memory_mapping(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'big.db'}"
    assert await _pragmas(url) == (-SQLITE_CACHE_SIZE_KIB, SQLITE_MMAP_SIZE_BYTES)
    assert await _pragmas(url, sqlite_cache_size_kib=2048, sqlite_mmap_size_bytes=0) == (-2048, 0)
    with pytest.raises(ValueError, match="zero or positive"):
        make_engine(url, sqlite_mmap_size_bytes=-1)


@pytest.mark.postgres
async def test_postgres_connections_run_without_jit() -> None:
    """JIT compiled the outbox claim on every call at 1 M clients (300 ms instead of 5 ms).

    Every connection of the engine has it off, also after a transaction rolled back and the
    connection went back to the pool, and the URL's own options (search_path) still apply.
    """
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set")
    url = make_url(base).update_query_dict({"options": "-csearch_path=jit_probe,public"})
    engine = make_engine(url.render_as_string(hide_password=False))
    try:
        for _ in range(3):
            async with engine.connect() as conn:
                assert (await conn.execute(text("SHOW jit"))).scalar() == "off"
                path = (await conn.execute(text("SHOW search_path"))).scalar()
                assert path == "jit_probe,public"
                await conn.rollback()
        # JIT would show in the plan with a zero threshold if it were on.
        async with engine.connect() as conn:
            await conn.execute(text("SET jit_above_cost = 0"))
            plan = (
                (
                    await conn.execute(
                        text("EXPLAIN ANALYZE SELECT sum(x) FROM generate_series(1, 1000) x")
                    )
                )
                .scalars()
                .all()
            )
        assert not any("JIT" in line for line in plan), plan
    finally:
        await engine.dispose()
