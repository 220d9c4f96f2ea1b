"""SQLite's page cache and memory mapping for big stores (settings of `make_engine`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

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
