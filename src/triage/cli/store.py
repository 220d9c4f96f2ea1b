"""`triage db`, `triage audit`, `triage evidence` and `triage retention`: the store's commands.

The database URL comes from `TRIAGE_DATABASE_URL` (settings), SQLite file by default; the
company profile (for `retention_years`) from `TRIAGE_COMPANY_PROFILE`. None of these commands
loads the gazetteer: they read the store, not the client's words.

Exit codes: 0 done (and, for `audit verify`, every chain intact); 1 a chain is broken;
2 a problem the user can fix (no database, bad profile, unknown client), with a message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from triage.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from triage.store.db import SessionFactory
    from triage.store.evidence import ExportedPack

db_app = typer.Typer(help="The database: migrations.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log: hash chains per client.", no_args_is_help=True)
evidence_app = typer.Typer(help="Evidence packs for supervisors.", no_args_is_help=True)
retention_app = typer.Typer(
    help="Retention: delete records once the retention period has ended.", no_args_is_help=True
)
_err = Console(stderr=True, highlight=False)
_out = Console(highlight=False)

T = TypeVar("T")


class StoreUnavailable(Exception):
    """The database cannot be used as it is; the message says what to do."""


def _settings() -> Settings:
    """The settings, or exit 2 naming each invalid variable."""
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as exc:
        for e in exc.errors():
            name = "TRIAGE_" + "_".join(str(p) for p in e.get("loc", ())).upper()
            _err.print(f"[bold red]error:[/] {name}: {e.get('msg', 'invalid')}", markup=True)
        raise typer.Exit(2) from None


def _url() -> str:
    return _settings().database_url


def _safe(url: str) -> str:
    """The URL without its password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _fail(message: str, code: int = 2) -> NoReturn:
    _err.print(f"[bold red]error:[/] {message}", markup=True)
    raise typer.Exit(code)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


async def _open(url: str) -> AsyncEngine:
    """An engine on an existing, migrated triage database (else StoreUnavailable)."""
    from sqlalchemy import inspect
    from sqlalchemy.engine import make_url

    from triage.store.db import is_sqlite, make_engine

    if is_sqlite(url):
        path = make_url(url).database
        if path and path != ":memory:" and not path.startswith("file:"):
            if not Path(path).exists():
                raise StoreUnavailable(
                    f"no database at {path}: set TRIAGE_DATABASE_URL, or create it with "
                    "`triage db upgrade`"
                )
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            ready = await conn.run_sync(lambda c: inspect(c).has_table("audit_event"))
    except Exception as exc:
        await engine.dispose()
        raise StoreUnavailable(f"cannot open {_safe(url)}: {_first_line(exc)}") from None
    if not ready:
        await engine.dispose()
        raise StoreUnavailable(f"{_safe(url)} has no triage tables: run `triage db upgrade` first")
    return engine


def _run_on_store(work: Callable[[SessionFactory], Awaitable[T]]) -> T:
    """Open the store, run `work(sessions)`, close; user errors exit 2 with a message."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from triage.store.db import make_sessionmaker
    from triage.store.evidence import EvidenceError

    url = _url()

    async def main() -> T:
        engine = await _open(url)
        try:
            return await work(make_sessionmaker(engine))
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except (StoreUnavailable, EvidenceError) as exc:
        _fail(str(exc))
    except (OperationalError, ProgrammingError) as exc:
        _fail(
            f"the store at {_safe(url)} failed: {_first_line(exc)} (if the schema is out of "
            "date, run `triage db upgrade`)"
        )
    except Exception as exc:
        _fail(f"the store at {_safe(url)} failed: {_first_line(exc)}")


def _retention_years() -> int:
    from triage.settings import ConfigError, load_profile

    settings = _settings()
    try:
        return load_profile(settings.company_profile).retention_years
    except ConfigError as exc:
        _fail(f"{exc} (the company profile is read from TRIAGE_COMPANY_PROFILE)")


def _when(at: datetime | None) -> str:
    return "-" if at is None else at.strftime("%Y-%m-%d %H:%M UTC")


# --- db ------------------------------------------------------------------------------------------


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


# --- audit ---------------------------------------------------------------------------------------


@audit_app.command("verify")
def audit_verify(
    client: Annotated[
        int | None, typer.Option("--client", help="Only this client (its id in the store).")
    ] = None,
) -> None:
    """Check the audit chains: exit 0 when intact, 1 naming the first broken event."""
    from sqlmodel import col, func, select

    from triage.store.audit import Break, verify
    from triage.store.db import read_snapshot
    from triage.store.models import AuditEvent, Client

    async def work(sessions: SessionFactory) -> tuple[list[Break], dict[int, str], int]:
        # One snapshot for the chains and the count; the running bot is never held up.
        async with sessions() as session, read_snapshot(session):
            breaks = await verify(session, client)
            ids = [b.event_id for b in breaks if b.event_id is not None]
            types: dict[int, str] = {}
            if ids:
                rows = await session.exec(
                    select(AuditEvent.id, AuditEvent.type).where(col(AuditEvent.id).in_(ids))
                )
                types = {int(i): t for i, t in rows.all() if i is not None}
            stmt = select(func.count()).select_from(Client)
            if client is not None:
                stmt = stmt.where(Client.id == client)
            count = (await session.exec(stmt)).one()
        return list(breaks), types, int(count)

    breaks, types, clients = _run_on_store(work)
    if client is not None and clients == 0 and not breaks:
        _fail(f"no client with id {client}: run without --client to check every chain")
    if breaks:
        for b in breaks:
            where = f"event seq {b.seq}" if b.seq is not None else "chain"
            row = ""
            if b.event_id is not None:
                kind = types.get(b.event_id)
                row = f" (row id {b.event_id}" + (f", type {kind})" if kind else ")")
            _out.print(
                f"BROKEN client {b.client_id}: {where}{row}: {b.problem}",
                markup=False,
                soft_wrap=True,
            )
        _err.print(f"{len(breaks)} broken chain(s) of {clients} checked")
        raise typer.Exit(1)
    _out.print(f"OK: {clients} chain(s) intact")


# --- evidence ------------------------------------------------------------------------------------


@evidence_app.command("export")
def evidence_export(
    out: Annotated[
        Path, typer.Option("--out", help="Folder to write evidence.json and evidence.html to.")
    ],
    client: Annotated[
        str | None,
        typer.Argument(
            help="The client: its id in the store, or CHANNEL:EXTERNAL_ID (telegram:12345).",
            show_default=False,
        ),
    ] = None,
    all_clients: Annotated[
        bool, typer.Option("--all", help="Every client, each into OUT/<client id>/.")
    ] = False,
) -> None:
    """Write a client's evidence pack: evidence.json (complete) and evidence.html (readable)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from triage.store.evidence import export_all, export_client, resolve_client

    if all_clients == (client is not None):
        _fail("name one client (CLIENT_ID) or pass --all, not both and not neither")

    if client is not None:

        async def one(sessions: SessionFactory) -> ExportedPack:
            cid = await resolve_client(sessions, client)
            return await export_client(sessions, cid, out)

        pack = _run_on_store(one)
        _report(pack)
        _out.print(f"wrote {pack.json_path} and {pack.html_path}", markup=False)
        return

    with Progress(
        TextColumn("exporting"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        console=_err,
    ) as progress:
        task = progress.add_task("", total=None)

        def started(total: int) -> None:
            progress.update(task, total=total)

        def exported(pack: ExportedPack) -> None:
            progress.update(task, advance=1, description=f"client {pack.client_id}")
            _report(pack)

        packs = _run_on_store(
            lambda sessions: export_all(sessions, out, on_start=started, on_exported=exported)
        )
    broken = sum(1 for p in packs if p.chain_status != "intact")
    _out.print(
        f"wrote {len(packs)} evidence pack(s) into {out}"
        + (f"; {broken} with a broken chain" if broken else ""),
        markup=False,
    )


def _report(pack: ExportedPack) -> None:
    if pack.first_break is not None:
        _err.print(
            f"[bold yellow]warning:[/] chain BROKEN: {pack.first_break} (shown in the pack)",
            markup=True,
        )


# --- retention -----------------------------------------------------------------------------------


@retention_app.command("purge")
def retention_purge(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only show what would be removed.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Remove it (cannot be undone).")] = False,
) -> None:
    """Delete every client whose records are past retention, with all their rows."""
    from triage.store.models import utcnow
    from triage.store.retention import DueClient, Purged, due_clients, purge

    if dry_run == yes:
        _fail("pass --dry-run to see what would be removed, or --yes to remove it")
    years = _retention_years()
    now = utcnow()

    def line(verb: str, due: DueClient, rows: dict[str, int]) -> str:
        counts = ", ".join(f"{t} {n}" for t, n in rows.items())
        restricted = f", erasure requested {_when(due.restricted_at)}" if due.restricted_at else ""
        return (
            f"{verb} client {due.client_id} ({due.channel}): last activity "
            f"{_when(due.last_activity_at)}, kept until {_when(due.kept_until)}{restricted}; "
            f"{sum(rows.values())} rows ({counts}); chain head seq {due.audit_seq} "
            f"{due.audit_head or '-'}"
        )

    _err.print(f"retention: {years} years after the last activity (company profile)")
    if dry_run:
        due = _run_on_store(
            lambda sessions: due_clients(sessions, years=years, now=now, count_rows=True)
        )
        for d in due:
            _out.print(line("would remove", d, d.rows), markup=False, soft_wrap=True)
        _out.print(
            f"{len(due)} client(s) past retention would be removed"
            + ("; run with --yes to remove them" if due else ""),
            markup=False,
        )
        return

    def removed(p: Purged) -> None:
        _out.print(line("removed", p.client, p.rows), markup=False, soft_wrap=True)

    done = _run_on_store(lambda sessions: purge(sessions, years=years, now=now, on_purged=removed))
    _out.print(f"{len(done)} client(s) past retention removed", markup=False)


@retention_app.command("status")
def retention_status() -> None:
    """How many clients the store holds, how many restricted processing, how many are due."""
    from triage.store.models import utcnow
    from triage.store.retention import status

    years = _retention_years()
    st = _run_on_store(lambda sessions: status(sessions, years=years, now=utcnow()))
    table = Table(title=f"Retention: {st.years} years after the last activity")
    table.add_column("clients")
    table.add_column("count", justify="right")
    table.add_row("in the store", str(st.clients))
    table.add_row("restricted (erasure requested)", str(st.restricted))
    table.add_row("due for purge", str(st.due))
    table.add_row("due for purge, restricted", str(st.due_restricted))
    _out.print(table)
    _out.print(f"due: nothing recorded since {_when(st.cutoff)}", markup=False)
