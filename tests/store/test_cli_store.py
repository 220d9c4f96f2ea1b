"""`triage db`, `triage audit`, `triage evidence`, `triage retention`: wired into `triage`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect
from sqlmodel import SQLModel
from typer.testing import CliRunner

from tests.store.support import EU_CLIENT, EXAMPLE_PROFILE, converse, run_cli
from triage.cli import app
from triage.flows.engine import Engine
from triage.service.client_events import ConversationStore
from triage.store.db import make_engine, make_sessionmaker


def test_store_commands_are_registered() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in ("db", "audit", "evidence", "retention"):
        assert name in result.output
    for args in (["db", "--help"], ["audit", "verify", "--help"], ["retention", "--help"]):
        assert CliRunner().invoke(app, args).exit_code == 0, args


async def test_db_upgrade_on_an_empty_database_then_the_store_runs_on_it(
    db_url: str, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty SQLite file, or a fresh PostgreSQL schema: `triage db upgrade` makes it the
    store, the engine runs on it, and `triage audit verify` checks what it wrote."""
    if db_url.startswith("sqlite"):
        (tmp_path / "triage.db").touch()
    up = run_cli(["db", "upgrade"], db_url=db_url, cwd=tmp_path)
    assert up.returncode == 0, up.stdout + up.stderr
    assert "is at head" in up.stderr

    db = make_engine(db_url)
    try:
        async with db.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert set(SQLModel.metadata.tables) <= tables
        store = ConversationStore(make_sessionmaker(db))
        await converse(store, engine, external_id="1", texts=EU_CLIENT)
    finally:
        await db.dispose()

    verify = await asyncio.to_thread(_invoke, ["audit", "verify"], db_url, monkeypatch)
    assert verify.exit_code == 0, verify.output
    assert "OK: 1 chain(s) intact" in verify.output


def _invoke(args: list[str], db_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("TRIAGE_DATABASE_URL", db_url)
    monkeypatch.setenv("TRIAGE_COMPANY_PROFILE", str(EXAMPLE_PROFILE))
    return CliRunner().invoke(app, args)


@pytest.mark.parametrize(
    "args",
    [
        ["audit", "verify"],
        ["evidence", "export", "--all", "--out", "x"],
        ["retention", "status"],
        ["retention", "purge", "--dry-run"],
    ],
)
async def test_commands_on_an_unmigrated_database_say_what_to_do(
    args: list[str], db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if db_url.startswith("sqlite"):
        (tmp_path / "triage.db").touch()
    monkeypatch.chdir(tmp_path)
    result = await asyncio.to_thread(_invoke, args, db_url, monkeypatch)
    assert result.exit_code == 2, result.output
    assert "has no triage tables: run `triage db upgrade` first" in " ".join(result.output.split())
    assert "Traceback" not in result.output and not (tmp_path / "x").exists()


async def test_audit_verify_of_an_unknown_client(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from triage.store.db import upgrade_async

    await upgrade_async(db_url)
    result = await asyncio.to_thread(_invoke, ["audit", "verify"], db_url, monkeypatch)
    assert result.exit_code == 0 and "OK: 0 chain(s) intact" in result.output
    result = await asyncio.to_thread(
        _invoke, ["audit", "verify", "--client", "99"], db_url, monkeypatch
    )
    assert result.exit_code == 2
    assert "no client with id 99" in result.output
