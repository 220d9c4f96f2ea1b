"""Generated stores of many clients, made fast: real template clients cloned with bulk inserts.

1. Templates: each script of `CONVERSATIONS` is played through the real `ConversationStore`
   on a scratch SQLite file, and the real dispatcher sends the replies (a RecordingSender), so a
   template client has every row a real one has: client, conversation, messages, processed
   updates, inquiry, decision, outbox rows (sent, and the follow-up still pending), and its
   audit chain (queued, allowed, sent events).
2. Clones: client k gets the rows of template k % 3 with new ids, its own external id and
   update keys, ids inside audit payloads remapped, and its audit chain hashed again (so
   `triage audit verify` finds every chain intact).
3. Bulk insert: SQLite through `sqlite3.executemany` in one transaction per batch; PostgreSQL
   through COPY (its bulk insert), then the id sequences are moved past the new ids and the
   tables are analysed (autovacuum would do that in production).

`Dataset` keeps one growing store per backend for the whole run (item 4 grows it from 10 k to
100 k clients, item 6 reads it); `close_all` removes them.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Boolean, DateTime, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from bench.common import CONVERSATIONS, Config, client_event, postgres_base

#: Tables a template client has rows in, parents first (insert order).
TABLES = (
    "client",
    "conversation",
    "processed_update",
    "message",
    "inquiry",
    "decision",
    "outbox",
    "audit_event",
)
_MARK = "TPLX"
_IDS_IN_PAYLOAD = re.compile(r'"(message_id|decision_id|inquiry_id|outbox_id)":(\d+)')
_TABLE_OF_ID = {
    "message_id": "message",
    "decision_id": "decision",
    "inquiry_id": "inquiry",
    "outbox_id": "outbox",
}


def _sha(text_: str) -> str:
    return hashlib.sha256(text_.encode("utf-8")).hexdigest()


def _link_hash(client_id: int, seq: int, type_: str, payload_hash: str, at: str, prev: str) -> str:
    """`triage.store.audit.event_hash`, written out for speed (checked against it once)."""
    body = (
        f'{{"client_id":{client_id},"created_at":"{at}","payload_hash":"{payload_hash}",'
        f'"prev_hash":"{prev}","seq":{seq},"type":{json.dumps(type_, ensure_ascii=False)}}}'
    )
    return _sha(prev + body)


@dataclass
class Template:
    """The rows of one real client, as stored in SQLite (text timestamps, 0/1 booleans)."""

    rows: dict[str, list[dict[str, Any]]]
    marker: str


async def capture_templates(cfg: Config, engine: Any) -> list[Template]:
    """Play each script through the real store and dispatcher; return the clients' rows."""
    from triage.outbox.dispatcher import Dispatcher, DispatcherConfig
    from triage.service.client_events import ConversationStore
    from triage.store.db import make_engine, make_sessionmaker, upgrade_async
    from triage_sandbox.outbox import RecordingSender

    path = cfg.work_dir / f"templates-{uuid.uuid4().hex[:8]}.db"
    url = f"sqlite+aiosqlite:///{path}"
    await upgrade_async(url)
    db = make_engine(url)
    try:
        sessions = make_sessionmaker(db)
        store = ConversationStore(sessions)
        start = datetime.now(UTC) - timedelta(days=1)
        for t, script in enumerate(CONVERSATIONS):
            marker = f"{_MARK}{t}"
            for j, text_ in enumerate(script):
                await store.handle(
                    source="telegram",
                    update_key=f"{marker}:{j}",
                    channel="telegram",
                    external_id=marker,
                    event=client_event(text_, start + timedelta(seconds=10 * j)),
                    engine=engine,
                )
        dispatcher = Dispatcher(
            sessions,
            senders={"telegram": RecordingSender()},
            profile=engine.profile,
            config=DispatcherConfig(rate_limit=False),
        )
        while (await dispatcher.drain_once()).claimed:
            pass
    finally:
        await db.dispose()
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    templates = []
    try:
        for t in range(len(CONVERSATIONS)):
            marker = f"{_MARK}{t}"
            (cid,) = conn.execute(
                "SELECT id FROM client WHERE external_id = ?", (marker,)
            ).fetchone()
            rows: dict[str, list[dict[str, Any]]] = {}
            for table in TABLES:
                where = "id = ?" if table == "client" else "client_id = ?"
                found = conn.execute(f"SELECT * FROM {table} WHERE {where} ORDER BY id", (cid,))  # noqa: S608 - our table names
                rows[table] = [dict(r) for r in found.fetchall()]
            templates.append(Template(rows, marker))
    finally:
        conn.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    _check_hash(templates[0])
    return templates


def _check_hash(template: Template) -> None:
    """The fast link hash must be the product's own."""
    from triage.store import audit

    ev = template.rows["audit_event"][0]
    at = datetime.fromisoformat(ev["created_at"]).replace(tzinfo=UTC)
    expected = audit.event_hash(
        client_id=ev["client_id"],
        seq=ev["seq"],
        type=ev["type"],
        payload_hash=ev["payload_hash"],
        created_at=at,
        prev_hash=ev["prev_hash"],
    )
    got = _link_hash(
        ev["client_id"],
        ev["seq"],
        ev["type"],
        ev["payload_hash"],
        audit.iso_utc(at),
        ev["prev_hash"],
    )
    if got != expected or expected != ev["hash"]:
        raise RuntimeError("bench.datagen's audit hash differs from triage.store.audit's")


@dataclass
class _Plan:
    """A template prepared for fast cloning: per table, the columns and row recipes."""

    template: Template
    columns: dict[str, list[str]]
    #: Per audit event: payload as a format string (or None), type as JSON, created_at ISO.
    events: list[tuple[str | None, str, str, str]]


def _plan(template: Template) -> _Plan:
    from triage.store import audit

    columns = {t: list(template.rows[t][0]) if template.rows[t] else [] for t in TABLES}
    ids: dict[int, str] = {}
    for table in ("message", "decision", "inquiry", "outbox"):
        for n, row in enumerate(template.rows[table]):
            ids[row["id"]] = f"{table}{n}"
    events = []
    for ev in template.rows["audit_event"]:
        payload = ev["payload"]
        fmt = None
        if payload is not None:
            fmt = payload.replace("{", "{{").replace("}", "}}").replace(template.marker, "{m}")

            def slot(match: re.Match[str]) -> str:
                name = ids.get(int(match.group(2)))
                return f'"{match.group(1)}":{{{name}}}' if name else match.group(0)

            fmt = _IDS_IN_PAYLOAD.sub(slot, fmt)
        at = audit.iso_utc(datetime.fromisoformat(ev["created_at"]).replace(tzinfo=UTC))
        events.append((fmt, ev["payload_hash"], json.dumps(ev["type"], ensure_ascii=False), at))
    return _Plan(template, columns, events)


def clone_rows(
    templates: list[Template], first: int, count: int, next_ids: dict[str, int]
) -> tuple[dict[str, list[str]], dict[str, list[tuple[Any, ...]]]]:
    """Rows (tuples, in `columns` order) for clients first..first+count-1; ids from next_ids."""
    from triage.store import audit

    plans = [_plan(t) for t in templates]
    columns = plans[0].columns
    out: dict[str, list[tuple[Any, ...]]] = {t: [] for t in TABLES}
    for k in range(first, first + count):
        plan = plans[k % len(plans)]
        tpl = plan.template
        marker = f"g{k}"
        new_ids: dict[str, list[int]] = {}
        for table in TABLES:
            n = len(tpl.rows[table])
            new_ids[table] = list(range(next_ids[table], next_ids[table] + n))
            next_ids[table] += n
        cid = new_ids["client"][0]
        names = {"m": marker}
        for table in ("message", "decision", "inquiry", "outbox"):
            for n, new_id in enumerate(new_ids[table]):
                names[f"{table}{n}"] = str(new_id)
        inquiry_of = {r["id"]: new_ids["inquiry"][n] for n, r in enumerate(tpl.rows["inquiry"])}
        for table in TABLES[1:-1]:
            cols = columns[table]
            for n, row in enumerate(tpl.rows[table]):
                new = dict(row, id=new_ids[table][n], client_id=cid)
                if table == "processed_update":
                    new["key"] = row["key"].replace(tpl.marker, marker)
                elif table == "message" and row["update_key"]:
                    new["update_key"] = row["update_key"].replace(tpl.marker, marker)
                elif table == "decision":
                    new["inquiry_id"] = inquiry_of[row["inquiry_id"]]
                elif table == "outbox":
                    key = row["dedupe_key"].replace(tpl.marker, marker)
                    new["dedupe_key"] = key if key != row["dedupe_key"] else f"{key}@{marker}"
                out[table].append(tuple(new[c] for c in cols))
        prev = audit.GENESIS
        ev_cols = columns["audit_event"]
        for n, (ev, (fmt, old_hash, type_json, at)) in enumerate(
            zip(tpl.rows["audit_event"], plan.events, strict=True)
        ):
            payload = fmt.format_map(names) if fmt is not None else None
            payload_hash = _sha(payload) if payload is not None else old_hash
            body = (
                f'{{"client_id":{cid},"created_at":"{at}","payload_hash":"{payload_hash}",'
                f'"prev_hash":"{prev}","seq":{ev["seq"]},"type":{type_json}}}'
            )
            digest = _sha(prev + body)
            new = dict(
                ev,
                id=new_ids["audit_event"][n],
                client_id=cid,
                payload=payload,
                payload_hash=payload_hash,
                prev_hash=prev,
                hash=digest,
            )
            out["audit_event"].append(tuple(new[c] for c in ev_cols))
            prev = digest
        client = dict(tpl.rows["client"][0], id=cid, external_id=marker, audit_head=prev)
        out["client"].append(tuple(client[c] for c in columns["client"]))
    return columns, out


# --- writing ----------------------------------------------------------------------------------


def _column_kinds() -> dict[str, dict[str, str]]:
    """Per table, the columns that are timestamps or booleans (PostgreSQL wants them typed)."""
    from sqlmodel import SQLModel

    from triage.store import models  # noqa: F401 - registers the tables

    kinds: dict[str, dict[str, str]] = {}
    for name in TABLES:
        table = SQLModel.metadata.tables[name]
        kinds[name] = {}
        for col in table.columns:
            impl = getattr(col.type, "impl", col.type)
            if isinstance(impl, DateTime):
                kinds[name][col.name] = "ts"
            elif isinstance(impl, Boolean):
                kinds[name][col.name] = "bool"
    return kinds


def _max_ids_sqlite(path: str) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        return {
            t: int(conn.execute(f"SELECT COALESCE(MAX(id), 0) FROM {t}").fetchone()[0]) + 1  # noqa: S608
            for t in TABLES
        }
    finally:
        conn.close()


def insert_sqlite(
    path: str, columns: dict[str, list[str]], rows: dict[str, list[tuple[Any, ...]]]
) -> None:
    """executemany per table, one transaction."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA cache_size=-262144")
        conn.execute("BEGIN IMMEDIATE")
        for table in TABLES:
            if not rows[table]:
                continue
            cols = columns[table]
            sql = (
                f"INSERT INTO {table} ({', '.join(cols)}) "  # noqa: S608 - our table names
                f"VALUES ({', '.join('?' for _ in cols)})"
            )
            conn.executemany(sql, rows[table])
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def _pg_dsn(url: str) -> tuple[str, str | None]:
    u = make_url(url)
    options = u.query.get("options")
    plain = u.set(drivername="postgresql", query={})
    dsn = plain.render_as_string(hide_password=False)
    return dsn, options if isinstance(options, str) else None


def _pg_connect(url: str) -> Any:
    import psycopg

    dsn, options = _pg_dsn(url)
    return psycopg.connect(dsn, options=options) if options else psycopg.connect(dsn)


def _max_ids_pg(url: str) -> dict[str, int]:
    with _pg_connect(url) as conn:
        return {
            t: int(conn.execute(f"SELECT COALESCE(MAX(id), 0) FROM {t}").fetchone()[0]) + 1  # noqa: S608
            for t in TABLES
        }


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: Any, kind: str | None) -> str:
    """One value in COPY's text format."""
    if value is None:
        return "\\N"
    if kind == "ts":
        return f"{value}+00"
    if kind == "bool":
        return "t" if value else "f"
    if isinstance(value, str):
        return value.translate(_COPY_ESCAPES)
    return str(value)


def insert_postgres(
    url: str,
    columns: dict[str, list[str]],
    rows: dict[str, list[tuple[Any, ...]]],
    kinds: dict[str, Any],
) -> None:
    """COPY per table (text format, built here), one transaction; sequences past the new ids.

    The rows are consistent by construction, so the foreign-key triggers are skipped for the
    load (`session_replication_role = replica`, a superuser setting, as bulk loaders do); the
    unique indexes are still checked.
    """
    with _pg_connect(url) as conn:
        with conn.cursor() as cur:
            cur.execute("SET LOCAL session_replication_role = replica")
            for table in TABLES:
                if not rows[table]:
                    continue
                cols = columns[table]
                col_kinds = [kinds[table].get(c) for c in cols]
                lines = [
                    "\t".join(_copy_text(v, k) for v, k in zip(r, col_kinds, strict=True))
                    for r in rows[table]
                ]
                with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
                    copy.write("\n".join(lines) + "\n")
            for table in TABLES:
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                    f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
                )
        conn.commit()


def analyze_postgres(url: str) -> None:
    """ANALYZE the tables (the planner's statistics, as autovacuum keeps them)."""
    with _pg_connect(url) as conn:
        conn.autocommit = True
        for table in TABLES:
            conn.execute(f"ANALYZE {table}")


# --- datasets ---------------------------------------------------------------------------------


@dataclass
class Dataset:
    """One growing store of generated clients."""

    backend: str
    url: str
    clients: int = 0
    #: Seconds spent generating and inserting, per target size.
    build_seconds: dict[int, float] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    schema: str | None = None
    path: str | None = None

    async def grow(self, cfg: Config, engine: Any, target: int, batch: int = 20_000) -> float:
        """Add clients until there are `target`; the seconds it took."""
        if target <= self.clients:
            return 0.0
        templates = await _templates(cfg, engine)
        kinds = _column_kinds()
        started = time.perf_counter()
        while self.clients < target:
            n = min(batch, target - self.clients)
            if self.backend == "sqlite":
                assert self.path is not None
                next_ids = _max_ids_sqlite(self.path)
            else:
                next_ids = _max_ids_pg(self.url)
            columns, rows = clone_rows(templates, self.clients, n, next_ids)
            if self.backend == "sqlite":
                assert self.path is not None
                insert_sqlite(self.path, columns, rows)
            else:
                insert_postgres(self.url, columns, rows, kinds)
            for table, data in rows.items():
                self.rows[table] = self.rows.get(table, 0) + len(data)
            self.clients += n
            print(
                f"[bench] {self.backend} store: {self.clients:,} clients "
                f"({time.perf_counter() - started:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
        if self.backend == "postgres":
            analyze_postgres(self.url)
        took = time.perf_counter() - started
        self.build_seconds[target] = round(took, 1)
        return took


_TEMPLATES: list[Template] = []
_DATASETS: dict[str, Dataset] = {}


async def _templates(cfg: Config, engine: Any) -> list[Template]:
    if not _TEMPLATES:
        _TEMPLATES.extend(await capture_templates(cfg, engine))
    return _TEMPLATES


async def dataset(cfg: Config, backend: str, engine: Any, clients: int) -> Dataset:
    """The run's store of `backend`, grown to at least `clients` generated clients."""
    from triage.store.db import upgrade_async

    ds = _DATASETS.get(backend)
    if ds is None:
        if backend == "sqlite":
            folder = cfg.keep_dir or cfg.work_dir
            path = str(folder / f"dataset-{uuid.uuid4().hex[:8]}.db")
            ds = Dataset(backend, f"sqlite+aiosqlite:///{path}", path=path)
        else:
            base = postgres_base(cfg)
            if base is None:
                raise RuntimeError("PostgreSQL is not reachable")
            schema = f"bench_ds_{uuid.uuid4().hex[:10]}"
            admin = create_engine(base, poolclass=NullPool, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            admin.dispose()
            url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
            ds = Dataset(backend, url.render_as_string(hide_password=False), schema=schema)
        await upgrade_async(ds.url)
        _DATASETS[backend] = ds
    await ds.grow(cfg, engine, clients)
    return ds


def close_all(cfg: Config, *, keep_postgres: bool = False) -> None:
    """Remove every dataset of the run (SQLite files, PostgreSQL schemas unless kept)."""
    for ds in _DATASETS.values():
        if ds.path is not None and cfg.keep_dir is not None:
            print(
                f"[bench] kept {ds.clients:,} clients in {ds.path}\n"
                f"[bench] python -m bench.remeasure --url '{ds.url}' --size {ds.clients}",
                file=sys.stderr,
                flush=True,
            )
        elif ds.path is not None:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{ds.path}{suffix}").unlink(missing_ok=True)
        if ds.schema is not None and keep_postgres:
            print(
                f"[bench] kept {ds.clients:,} clients in schema {ds.schema}: {ds.url}\n"
                f"[bench] python -m bench.remeasure --url '{ds.url}' --size {ds.clients}\n"
                f'[bench] drop it: DROP SCHEMA "{ds.schema}" CASCADE',
                file=sys.stderr,
                flush=True,
            )
        elif ds.schema is not None:
            base = postgres_base(cfg)
            if base is None:
                continue
            admin = create_engine(base, poolclass=NullPool, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{ds.schema}" CASCADE'))
            admin.dispose()
    _DATASETS.clear()
