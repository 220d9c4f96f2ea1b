"""Item 6: evidence at scale: `triage audit verify` and evidence export over many clients.

The store is `bench.datagen`'s (clones of real decided clients, about 33 audit events each, every
chain valid), on SQLite and on PostgreSQL.

- verify: the real command, `triage audit verify`, in a subprocess over the whole store (its
  start-up, about a second, included); events per second = audit events checked / wall time.
- export: `triage.store.evidence.export_client`, the function `triage evidence export --all`
  runs for each client (`export_all` is that loop), for the first `export_clients` clients
  into a scratch folder (evidence.json and evidence.html each); clients per second.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import Config, example_engine, postgres_base
from bench.datagen import dataset
from bench.profiling import maybe_profile


def _cli_env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIAGE_")}
    env.update(TRIAGE_DATABASE_URL=url, NO_COLOR="1", COLUMNS="200")
    return env


async def _count_events(url: str) -> int:
    from sqlalchemy import func, select

    from triage.store.db import make_engine
    from triage.store.models import AuditEvent

    db = make_engine(url)
    try:
        async with db.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(AuditEvent))).scalar())
    finally:
        await db.dispose()


async def export_some(url: str, out_dir: Path, limit: int, profile: str | None) -> dict[str, Any]:
    """Export the first `limit` clients, one `export_client` each."""
    from triage.store.db import make_engine, make_sessionmaker
    from triage.store.evidence import client_ids, export_client

    db = make_engine(url)
    try:
        sessions = make_sessionmaker(db)
        ids = (await client_ids(sessions))[:limit]
        t0 = time.perf_counter()
        broken = 0
        with maybe_profile(profile is not None, profile or "", f"{len(ids)} clients"):
            for cid in ids:
                pack = await export_client(sessions, cid, out_dir / str(cid))
                broken += pack.chain_status != "intact"
        took = time.perf_counter() - t0
    finally:
        await db.dispose()
    return {
        "clients": len(ids),
        "seconds": round(took, 2),
        "clients_per_s": round(len(ids) / took, 1) if took else None,
        "broken_chains": broken,
    }


async def run(cfg: Config, *, profile: bool = False) -> dict[str, Any]:
    """Verify and export on each backend's store of `cfg.evidence_clients` clients."""
    engine = example_engine()
    backends = ["sqlite"] + (["postgres"] if postgres_base(cfg) else [])
    out: dict[str, Any] = {
        "clients": cfg.evidence_clients,
        "export_clients": cfg.export_clients,
    }
    for backend in backends:
        ds = await dataset(cfg, backend, engine, cfg.evidence_clients)
        events = await _count_events(ds.url)
        t0 = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "triage.cli", "audit", "verify"],
            env=_cli_env(ds.url),
            capture_output=True,
            text=True,
            timeout=3600,
            check=False,
        )
        took = time.perf_counter() - t0
        scratch = cfg.work_dir / f"evidence-{uuid.uuid4().hex[:8]}"
        try:
            exported = await export_some(
                ds.url,
                scratch,
                cfg.export_clients,
                f"evidence_export_{backend}" if profile else None,
            )
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        out[backend] = {
            "clients": ds.clients,
            "audit_events": events,
            "verify_seconds": round(took, 2),
            "verify_exit_code": done.returncode,
            "verify_output": (done.stdout.strip() or done.stderr.strip())[-200:],
            "verify_events_per_s": round(events / took, 1),
            "verify_clients_per_s": round(ds.clients / took, 1),
            "export": exported,
            "export_clients_per_s": exported["clients_per_s"],
            "build_seconds": ds.build_seconds.get(cfg.evidence_clients),
        }
    head = out.get("postgres") or out["sqlite"]
    out["headline_backend"] = "postgres" if "postgres" in out else "sqlite"
    out["verify_events_per_s"] = head["verify_events_per_s"]
    out["export_clients_per_s"] = head["export_clients_per_s"]
    return out
