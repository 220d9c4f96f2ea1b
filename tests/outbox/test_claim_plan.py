"""The claim's plan on PostgreSQL: the planner must know that few unfinished rows are due.

Found by the 1 M benchmark (H12): from status and due_at alone PostgreSQL expected 800 k due
rows where there were a handful, and scanned the whole outbox on every claim (1.2 s). The
expression index `ix_outbox_open_due_at` gives it statistics for the question. Here, an
outbox shaped like a real one (most rows sent, in the past; every unfinished row a follow-up
due in days), analysed, and the claim's estimate read from EXPLAIN.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.outbox.conftest import START
from triage.outbox.dispatcher import Dispatcher

SENT, WAITING = 24_000, 6_000


def _scans(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan] if plan.get("Relation Name") == "outbox" else []
    for child in plan.get("Plans", []):
        found += _scans(child)
    return found


@pytest.mark.postgres
async def test_the_claim_expects_the_few_due_rows_it_finds(
    db_engine: AsyncEngine, dispatcher: Dispatcher, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("a PostgreSQL planner question")
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO client (channel, external_id, created_at, last_activity_at, "
                "audit_seq, audit_head) SELECT 'telegram', g::text, :t, :t, 0, '' "
                "FROM generate_series(1, :n) g"
            ),
            {"t": START, "n": SENT // 4},
        )
        rows = (
            "INSERT INTO outbox (dedupe_key, client_id, channel, kind, sender, text, buttons, "
            "reply, status, attempts, due_at, created_at) SELECT :p || g, 1 + g % :clients, "
            "'telegram', 'question', 'bot', 'hi', '[]', true, :status, 0, :due + g * "
            "interval '1 second', :t FROM generate_series(1, :n) g"
        )
        clients = SENT // 4
        await conn.execute(
            text(rows),
            {
                "p": "s",
                "clients": clients,
                "status": "sent",
                "n": SENT,
                "t": START,
                "due": START - timedelta(days=30),
            },
        )
        await conn.execute(
            text(rows),
            {
                "p": "w",
                "clients": clients,
                "status": "pending",
                "n": WAITING,
                "t": START,
                "due": START + timedelta(days=3),
            },
        )
        await conn.execute(text("ANALYZE outbox"))
        compiled = dispatcher._claim_due.params(now=START).compile(dialect=conn.dialect)
        expanded = compiled.construct_expanded_state()
        raw = await conn.exec_driver_sql(
            "EXPLAIN (FORMAT JSON) " + expanded.statement, expanded.parameters
        )
        found = raw.scalar()
        plan = json.loads(found) if isinstance(found, str) else found
    root = plan[0]["Plan"]
    estimates = [scan.get("Plan Rows", 0) for scan in _scans(root)]
    # Nothing is due at START; without the expression's statistics the estimate was
    # 6,000 x 24,000 / 30,000 = 4,800 rows for each scan of the outbox.
    assert estimates and max(estimates) < 100, json.dumps(root, indent=1)[:3000]
