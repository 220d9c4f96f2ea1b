"""Engines, sessions and migrations.

SQLite is the embedded default. Every connection runs in WAL mode with `synchronous=FULL`
(a committed transaction survives a power loss), foreign keys on, and a busy timeout. Every
transaction starts with `BEGIN IMMEDIATE`: it takes SQLite's single write lock up front, so two
transactions that read and then write can never deadlock or fail with SQLITE_BUSY half-way; they
queue (for up to `SQLITE_BUSY_TIMEOUT_MS`). That is also what serialises conversations on SQLite.
PostgreSQL uses row locks instead (see `triage.service.client_events`).

Big SQLite stores: each connection keeps up to `SQLITE_CACHE_SIZE_KIB` of pages (SQLite's
default is 2 MiB, so a client picked at random out of a store of gigabytes is read from the OS
page cache again on every turn) and maps up to `SQLITE_MMAP_SIZE_BYTES` of the file into
memory (reads without a copy, shared by the connections). Both are upper bounds that cost
nothing until pages are read; `make_engine` takes other values (0 turns memory mapping off).
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from triage.store import models  # noqa: F401 - registers the tables on SQLModel.metadata

MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Page cache per connection (PRAGMA cache_size, in KiB).
SQLITE_CACHE_SIZE_KIB = 65_536
#: Memory-mapped I/O (PRAGMA mmap_size, in bytes; 0: off).
SQLITE_MMAP_SIZE_BYTES = 1 << 30

SessionFactory = async_sessionmaker[AsyncSession]


def is_sqlite(url: str) -> bool:
    """Whether a database URL points to SQLite."""
    return make_url(url).get_backend_name() == "sqlite"


def make_engine(
    url: str,
    *,
    sqlite_cache_size_kib: int | None = None,
    sqlite_mmap_size_bytes: int | None = None,
    **kwargs: Any,
) -> AsyncEngine:
    """An async engine for `url`, with the SQLite durability and locking settings applied.

    `sqlite_cache_size_kib` and `sqlite_mmap_size_bytes` (SQLite only) default to
    `SQLITE_CACHE_SIZE_KIB` and `SQLITE_MMAP_SIZE_BYTES`.
    """
    # hide_parameters: a failed statement must not put a client's words into the logs.
    kwargs.setdefault("hide_parameters", True)
    engine = create_async_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        cache = SQLITE_CACHE_SIZE_KIB if sqlite_cache_size_kib is None else sqlite_cache_size_kib
        mmap = SQLITE_MMAP_SIZE_BYTES if sqlite_mmap_size_bytes is None else sqlite_mmap_size_bytes
        if cache < 0 or mmap < 0:
            raise ValueError("SQLite cache and mmap sizes must be zero or positive")
        _configure_sqlite(engine, cache_kib=cache, mmap_bytes=mmap)
    elif engine.dialect.name == "postgresql":
        _configure_postgres(engine)
    return engine


def _configure_postgres(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # No JIT compilation (PostgreSQL's default is on): every statement here is a short
        # OLTP one, and one misestimated plan is enough to pass `jit_above_cost` and compile
        # on every call. That turned the outbox claim at 1 M clients from 5 ms into 300 ms
        # (280 ms of LLVM per call; BENCHMARKS.md, H13).
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SET jit = off")
        finally:
            cursor.close()
            dbapi_connection.autocommit = autocommit


def _configure_sqlite(engine: AsyncEngine, *, cache_kib: int, mmap_bytes: int) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver: we emit BEGIN ourselves below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            # Negative: a size in KiB, not a number of pages.
            cursor.execute(f"PRAGMA cache_size=-{int(cache_kib)}")
            cursor.execute(f"PRAGMA mmap_size={int(mmap_bytes)}")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get(_READ_ONLY):
            conn.exec_driver_sql("BEGIN")  # deferred: a reader; see `read_snapshot`
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


#: Connection option that SQLite's begin hook reads: this transaction only reads.
_READ_ONLY = "triage_read_only"


def insert_ignoring_conflicts(session: AsyncSession, model: type[SQLModel]) -> Any:
    """An INSERT for `model` that can say ON CONFLICT DO NOTHING on this session's backend."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    bind = session.bind
    assert bind is not None, "sessions must be bound to an engine"
    if bind.dialect.name == "postgresql":
        return pg_insert(model)
    if bind.dialect.name == "sqlite":
        return sqlite_insert(model)
    raise ValueError(f"database {bind.dialect.name!r} is not supported (use SQLite or PostgreSQL)")


def make_sessionmaker(engine: AsyncEngine) -> SessionFactory:
    """Sessions whose objects stay readable after commit (no lazy I/O, no MissingGreenlet)."""
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


async def create_all(engine: AsyncEngine) -> None:
    """Create every table (tests; production uses `upgrade`)."""
    async with engine.begin() as conn:
        await conn.run_sync(SQLModel.metadata.create_all)


async def drop_all(engine: AsyncEngine) -> None:
    """Drop every table (tests)."""
    async with engine.begin() as conn:
        await conn.run_sync(SQLModel.metadata.drop_all)


# --- migrations ---------------------------------------------------------------------------------


def alembic_config(url: str | None = None) -> Config:
    """An Alembic configuration for the shipped migrations (no alembic.ini needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        cfg.attributes["url"] = url
    return cfg


async def upgrade_async(url: str, revision: str = "head") -> None:
    """Migrate the database at `url` to `revision` (from inside an event loop)."""
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_run_upgrade, url, revision)
    finally:
        await engine.dispose()


def _run_upgrade(conn: Connection, url: str, revision: str) -> None:
    cfg = alembic_config(url)
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, revision)


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at `url` to `revision` (the `triage db upgrade` command)."""
    asyncio.run(upgrade_async(url, revision))


def revision(url: str, message: str) -> None:
    """Autogenerate a new migration from the difference between `url` and the models.

    `url` must be a database at head (for example a fresh SQLite file after `upgrade`).
    """
    command.revision(alembic_config(url), message=message, autogenerate=True)


#: One lock per SQLite database and event loop: this process's writers queue on it in order
#: instead of polling SQLite's busy handler (whose sleeps grow to 100 ms) for the write lock.
_SQLITE_WRITERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def _sqlite_writer_lock(url: str) -> asyncio.Lock | contextlib.nullcontext[None]:
    loop = asyncio.get_running_loop()
    try:
        locks = _SQLITE_WRITERS.setdefault(loop, {})
    except TypeError:  # a loop that cannot be weakly referenced: SQLite's lock alone
        return contextlib.nullcontext()
    lock = locks.get(url)
    if lock is None:
        lock = locks[url] = asyncio.Lock()
    return lock


@contextlib.asynccontextmanager
async def read_snapshot(session: AsyncSession) -> AsyncIterator[None]:
    """A read-only transaction: every statement in it sees one snapshot, and no writer waits.

    For reads that must agree with each other while the bot writes (an evidence pack, `audit
    verify`). PostgreSQL: REPEATABLE READ, READ ONLY. SQLite: a deferred `BEGIN`; in WAL mode
    the snapshot is fixed at the first read and the writer goes on meanwhile (`BEGIN
    IMMEDIATE` would hold the write lock, and stall every turn, for the whole read).
    """
    bind = session.bind
    assert bind is not None, "sessions must be bound to an engine"
    options: dict[str, Any]
    if bind.dialect.name == "postgresql":
        options = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
    else:
        options = {_READ_ONLY: True}
    async with session.begin():
        await session.connection(execution_options=options)
        yield


@contextlib.asynccontextmanager
async def write_transaction(session: AsyncSession) -> AsyncIterator[None]:
    """`session.begin()`; on SQLite, first queue behind this process's other store writers.

    SQLite has one writer at a time (`BEGIN IMMEDIATE`, see `triage.store.db`); waiting for it
    in SQLite's busy handler means sleep-polling, so under many concurrent conversations the
    order is random and the tail is seconds. Waiting on an asyncio.Lock first is FIFO and
    wakes the next writer as soon as the previous one committed. Writers in other processes
    still meet in SQLite's lock. Every store writer uses it; none may open a second write
    transaction on the same database while inside one (the lock is not reentrant).
    """
    bind = session.bind
    if bind is not None and bind.dialect.name == "sqlite":
        async with _sqlite_writer_lock(bind.url.render_as_string()), session.begin():
            yield
    else:
        async with session.begin():
            yield
