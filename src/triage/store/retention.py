"""Retention: keep a client's records `retention_years` after their last activity, then delete.

MiCA Art. 68(9) is the benchmark (DOMAIN.md section 5): five years, seven if the authority asks;
the company profile sets `retention_years` (at least 5). A client's erasure request (GDPR
Art. 17) does not shorten it: Art. 17(3)(b) exempts records kept to comply with a legal
obligation, so the request restricts processing (`Client.restricted_at`) and the records go when
retention ends, here.

Last activity is the later of `Client.last_activity_at` (the client's last message) and the
client's newest audit event: an officer's decision or a send after the client's last message is
part of the record too, and restarts the clock for it.

A purge deletes every row that belongs to the client, in every table that reaches the client
row through foreign keys (found from the table metadata, so tables added later are covered),
children first, in one transaction per client. Other clients' chains are untouched and still
verify: each chain covers one client only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, FromClause, Table, delete, func, or_, union_all
from sqlalchemy import select as sa_select
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from triage.store import audit
from triage.store.db import SessionFactory, write_transaction
from triage.store.models import AuditEvent, Client, utcnow


def years_before(at: datetime, years: int) -> datetime:
    """`at` moved back by whole calendar years (29 February becomes 28 February).

    Clamping moves the cut-off earlier, so records are kept a day longer, never shorter.
    """
    try:
        return at.replace(year=at.year - years)
    except ValueError:
        return at.replace(year=at.year - years, day=28)


def years_after(at: datetime, years: int) -> datetime:
    """`at` moved forward by whole calendar years (29 February becomes 1 March)."""
    try:
        return at.replace(year=at.year + years)
    except ValueError:
        return at.replace(year=at.year + years, month=3, day=1)


def cutoff(now: datetime, years: int) -> datetime:
    """Clients whose last activity is at or before this moment are past retention."""
    if now.tzinfo is None:
        raise ValueError(f"naive datetime {now!r}: pass a timezone-aware time")
    return years_before(now.astimezone(UTC), years)


# --- which rows belong to a client ---------------------------------------------------------------


def _client_table() -> Table:
    return SQLModel.metadata.tables[str(Client.__tablename__)]


def client_scope(table: Table, client_id: int) -> ColumnElement[bool] | None:
    """A WHERE clause selecting the rows of `table` that belong to one client, or None.

    A row belongs to the client when one of its foreign keys points to the client row, or to a
    row of another table that belongs to the client (a decision through its inquiry).
    """
    client_table = _client_table()
    if table is client_table:
        return client_table.c.id == client_id
    clauses = _reaching(table, table, client_id)
    if len(clauses) <= 1:
        return clauses[0] if clauses else None
    (pk, *more) = table.primary_key.columns
    if more:
        return or_(*clauses)
    # Several ways to the client (a decision: its own client_id, and its inquiry's). An OR of
    # them is planned by PostgreSQL as a scan of the whole table (the `IN (subquery)` inside
    # an OR cannot use an index: EXPLAIN ANALYZE of a purge's decision delete at 100 k
    # clients, Seq Scan, 42-113 ms); the ids of each way, each found through its own index,
    # are not (Nested Loop of index scans, 0.3 ms). Each way reads its own alias of the table,
    # so that it is never correlated with the statement around it (a DELETE of that table).
    ways = []
    for clause_of in _reaching_by(table, client_id):
        alias = table.alias()
        ways.append(sa_select(alias.c[pk.name]).where(clause_of(alias)))
    return pk.in_(union_all(*ways))


def _reaching_by(
    table: Table, client_id: int
) -> list[Callable[[FromClause], ColumnElement[bool]]]:
    """One function per foreign key of `table` that leads to the client: the clause, on a
    given alias of `table`, selecting the rows that belong to the client that way."""
    client_table = _client_table()
    found: list[Callable[[FromClause], ColumnElement[bool]]] = []
    for fk in sorted(table.foreign_keys, key=lambda f: f.parent.name):
        parent = fk.column.table
        if parent is table:
            continue
        name = fk.parent.name
        if parent is client_table:
            found.append(lambda t, name=name: t.c[name] == client_id)
            continue
        if not isinstance(parent, Table):
            continue
        parent_scope = client_scope(parent, client_id)
        if parent_scope is not None:
            ids = sa_select(fk.column).where(parent_scope)
            found.append(lambda t, name=name, ids=ids: t.c[name].in_(ids))
    return found


def _reaching(target: FromClause, table: Table, client_id: int) -> list[ColumnElement[bool]]:
    return [clause_of(target) for clause_of in _reaching_by(table, client_id)]


def client_tables() -> list[Table]:
    """Every table that holds rows of a client, children first (FK-safe delete order).

    The client table itself comes last.
    """
    tables = [
        t
        for t in reversed(SQLModel.metadata.sorted_tables)
        if t is not _client_table() and client_scope(t, 0) is not None
    ]
    return [*tables, _client_table()]


# --- what is due ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DueClient:
    """A client whose records are past retention."""

    client_id: int
    channel: str
    last_activity_at: datetime
    kept_until: datetime
    restricted_at: datetime | None
    audit_seq: int
    audit_head: str
    #: Rows per table that a purge removes (filled by `due_clients(count_rows=True)`).
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def total_rows(self) -> int:
        """All rows, every table."""
        return sum(self.rows.values())


@dataclass(frozen=True)
class RetentionStatus:
    """Counts for `triage retention status`."""

    years: int
    cutoff: datetime
    clients: int
    restricted: int
    due: int
    due_restricted: int


def _latest_event() -> ColumnElement[datetime]:
    return (
        select(func.max(AuditEvent.created_at))
        .where(col(AuditEvent.client_id) == Client.id)
        .correlate(Client)
        .scalar_subquery()
    )


def _last_activity(client_last: datetime, latest_event: datetime | None) -> datetime:
    return client_last if latest_event is None else max(client_last, latest_event)


async def _count_rows(session: AsyncSession, client_id: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    for table in client_tables():
        scope = client_scope(table, client_id)
        assert scope is not None
        n = (await session.exec(select(func.count()).select_from(table).where(scope))).one()
        if n:
            counts[table.name] = int(n)
    return counts


async def due_clients(
    sessions: SessionFactory, *, years: int, now: datetime, count_rows: bool = False
) -> list[DueClient]:
    """The clients past retention at `now`, oldest activity first."""
    limit = cutoff(now, years)
    stmt = (
        select(Client, _latest_event().label("latest"))
        .where(col(Client.last_activity_at) <= limit)
        .order_by(col(Client.last_activity_at), col(Client.id))
    )
    found: list[DueClient] = []
    async with sessions() as session:
        for client, latest in (await session.exec(stmt)).all():
            last = _last_activity(client.last_activity_at, latest)
            if last > limit:
                continue
            assert client.id is not None
            rows = await _count_rows(session, client.id) if count_rows else {}
            found.append(
                DueClient(
                    client_id=client.id,
                    channel=client.channel,
                    last_activity_at=last,
                    kept_until=years_after(last, years),
                    restricted_at=client.restricted_at,
                    audit_seq=client.audit_seq,
                    audit_head=client.audit_head,
                    rows=rows,
                )
            )
    return found


async def status(sessions: SessionFactory, *, years: int, now: datetime) -> RetentionStatus:
    """How many clients there are, how many restricted processing, how many are due."""
    due = await due_clients(sessions, years=years, now=now)
    async with sessions() as session:
        clients = (await session.exec(select(func.count()).select_from(Client))).one()
        restricted = (
            await session.exec(
                select(func.count())
                .select_from(Client)
                .where(col(Client.restricted_at).is_not(None))
            )
        ).one()
    return RetentionStatus(
        years=years,
        cutoff=cutoff(now, years),
        clients=int(clients),
        restricted=int(restricted),
        due=len(due),
        due_restricted=sum(1 for d in due if d.restricted_at is not None),
    )


# --- the purge -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Purged:
    """What one purge of one client removed."""

    client: DueClient
    #: Rows deleted per table.
    rows: dict[str, int]

    @property
    def total_rows(self) -> int:
        """All rows, every table."""
        return sum(self.rows.values())


async def purge_client(
    sessions: SessionFactory, client_id: int, *, years: int, now: datetime
) -> Purged | None:
    """Delete one client and all their rows in one transaction, if still past retention.

    The client row is locked first (as every writer of a client's data does), and retention is
    checked again under the lock: a message that arrived meanwhile keeps the client. None when
    the client is gone or no longer due.
    """
    limit = cutoff(now, years)
    async with sessions() as session, write_transaction(session):
        try:
            client = await audit.lock_client(session, client_id)
        except audit.AuditError:
            return None
        latest = (
            await session.exec(
                select(func.max(AuditEvent.created_at)).where(
                    col(AuditEvent.client_id) == client_id
                )
            )
        ).one()
        last = _last_activity(client.last_activity_at, latest)
        if last > limit:
            return None
        due = DueClient(
            client_id=client_id,
            channel=client.channel,
            last_activity_at=last,
            kept_until=years_after(last, years),
            restricted_at=client.restricted_at,
            audit_seq=client.audit_seq,
            audit_head=client.audit_head,
        )
        deleted: dict[str, int] = {}
        # Core deletes: the ORM object of the client must not be flushed back afterwards.
        session.expunge(client)
        for table in client_tables():
            scope = client_scope(table, client_id)
            assert scope is not None
            result = await session.exec(delete(table).where(scope))
            if result.rowcount:
                deleted[table.name] = int(result.rowcount)
    return Purged(due, deleted)


async def purge(
    sessions: SessionFactory,
    *,
    years: int,
    now: datetime | None = None,
    on_purged: Callable[[Purged], None] | None = None,
) -> list[Purged]:
    """Purge every client past retention, one transaction per client."""
    at = now or utcnow()
    done: list[Purged] = []
    for due in await due_clients(sessions, years=years, now=at):
        result = await purge_client(sessions, due.client_id, years=years, now=at)
        if result is not None:
            done.append(result)
            if on_purged is not None:
                on_purged(result)
    return done
