"""Migrations: an empty database upgrades to head and matches the models exactly."""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect
from sqlmodel import SQLModel
from typer.testing import CliRunner

from triage.cli.store import db_app
from triage.store.db import alembic_config, make_engine, upgrade_async

#: Expression indexes: Alembic cannot compare them (SQLite's are not reflected at all,
#: PostgreSQL's come back normalised), so they are checked by name in the catalog instead.
EXPRESSION_INDEXES = {"ix_outbox_open_due_at"}


def _compared(_obj: Any, name: str | None, type_: str, _reflected: bool, _other: Any) -> bool:
    return not (type_ == "index" and name in EXPRESSION_INDEXES)


def _drift(conn: Connection) -> list[Any]:
    opts = {"compare_type": True, "include_object": _compared}
    ctx = MigrationContext.configure(conn, opts=opts)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*expression-based index.*")
        return list(compare_metadata(ctx, SQLModel.metadata))


def _index_names(conn: Connection) -> set[str]:
    if conn.dialect.name == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'index'"
    else:
        sql = "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
    return {str(name) for name in conn.exec_driver_sql(sql).scalars()}


def _state(conn: Connection) -> tuple[set[str], str | None]:
    ctx = MigrationContext.configure(conn)
    return set(inspect(conn).get_table_names()), ctx.get_current_revision()


async def _inspect(url: str) -> tuple[list[Any], set[str], str | None]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            drift = await conn.run_sync(_drift)
            tables, rev = await conn.run_sync(_state)
            missing = EXPRESSION_INDEXES - await conn.run_sync(_index_names)
    finally:
        await engine.dispose()
    return drift + [("missing expression index", name) for name in sorted(missing)], tables, rev


def _head() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


async def test_upgrade_empty_database_then_no_drift(db_url: str) -> None:
    await upgrade_async(db_url)
    drift, tables, rev = await _inspect(db_url)
    assert drift == []
    assert set(SQLModel.metadata.tables) <= tables
    assert rev == _head()
    # Upgrading again is a no-op.
    await upgrade_async(db_url)
    assert (await _inspect(db_url))[0] == []


async def test_db_upgrade_command(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIAGE_DATABASE_URL", db_url)
    # The command runs its own event loop, so it runs off this test's loop.
    result = await asyncio.to_thread(CliRunner().invoke, db_app, ["upgrade"])
    assert result.exit_code == 0, result.output
    drift, tables, rev = await _inspect(db_url)
    assert drift == [] and rev == _head() and "audit_event" in tables


def test_db_upgrade_command_reports_a_bad_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIAGE_DATABASE_URL", "sqlite+aiosqlite:////nonexistent/dir/x.db")
    result = CliRunner().invoke(db_app, ["upgrade"])
    assert result.exit_code == 2
    assert "cannot migrate" in result.output
