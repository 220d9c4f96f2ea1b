"""`triage db ...` and `triage audit ...`: the store's commands.

The database URL comes from `TRIAGE_DATABASE_URL` (settings), SQLite file by default.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console

from triage.settings import Settings

db_app = typer.Typer(help="The database: migrations.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log: hash chains per client.", no_args_is_help=True)
_err = Console(stderr=True, highlight=False)
_out = Console(highlight=False)


def _url() -> str:
    return Settings().database_url


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Create or migrate the database to the latest schema."""
    from triage.store.db import upgrade

    url = _url()
    try:
        upgrade(url, revision)
    except Exception as exc:
        _err.print(f"[bold red]error:[/] cannot migrate {_safe(url)}: {exc}")
        raise typer.Exit(2) from None
    _err.print(f"database {_safe(url)} is at {revision}")


@db_app.command("revision")
def db_revision(
    message: Annotated[str, typer.Option("--message", "-m", help="What the migration does.")],
) -> None:
    """Autogenerate a migration from the models (developers; the database must be at head)."""
    from triage.store.db import revision

    revision(_url(), message)


@audit_app.command("verify")
def audit_verify(
    client: Annotated[
        int | None, typer.Option("--client", help="Only this client (its id in the store).")
    ] = None,
) -> None:
    """Check the audit chains: exit 0 when intact, 1 naming the first broken event."""
    url = _url()
    try:
        breaks, clients = asyncio.run(_verify(url, client))
    except Exception as exc:
        _err.print(f"[bold red]error:[/] cannot read the audit log at {_safe(url)}: {exc}")
        raise typer.Exit(2) from None
    if breaks:
        for b in breaks:
            _out.print(f"BROKEN {b}")
        _err.print(f"{len(breaks)} broken chain(s) of {clients} checked")
        raise typer.Exit(1)
    _out.print(f"OK: {clients} chain(s) intact")


async def _verify(url: str, client: int | None) -> tuple[list[object], int]:
    from sqlmodel import func, select

    from triage.store.audit import verify
    from triage.store.db import make_engine, make_sessionmaker
    from triage.store.models import Client

    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session:
            breaks = await verify(session, client)
            stmt = select(func.count()).select_from(Client)
            if client is not None:
                stmt = stmt.where(Client.id == client)
            count = (await session.exec(stmt)).one()
    finally:
        await engine.dispose()
    return list(breaks), int(count)


def _safe(url: str) -> str:
    """The URL without its password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
