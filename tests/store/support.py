"""Helpers of the store tests: real conversations through ConversationStore, the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlmodel import SQLModel

from triage.flows.engine import ClientEvent, Engine
from triage.service.client_events import ConversationStore, HandleResult
from triage.store.db import SessionFactory

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_PROFILE = REPO / "examples" / "company.yaml"

#: An EU client who found the firm on their own: decided SERVE_EU_RESTRICTED on the 5th turn.
EU_CLIENT = (
    "/start",
    "Hi, I want to buy bitcoin with euros",
    "I searched Google for crypto custody",
    "I live in Berlin, Germany",
    "no",
)
#: A client outside the EU: decided on the 4th turn.
NON_EU_CLIENT = (
    "/start",
    "A friend told me about you",
    "I live in Singapore",
    "I want to buy bitcoin with dollars",
    "no",
)


def event(text: str, at: datetime) -> ClientEvent:
    """A client event as the Telegram adapter would make it."""
    if text == "/start":
        kind = "start"
    elif text.startswith("/"):
        kind = "command"
    else:
        kind = "message"
    return ClientEvent(kind=kind, at=at, text=text, language="en")  # type: ignore[arg-type]


async def converse(
    store: ConversationStore,
    engine: Engine,
    *,
    external_id: str,
    texts: Sequence[str],
    at: datetime | None = None,
    key_prefix: str | None = None,
) -> list[HandleResult]:
    """Play `texts` as one client's updates (keys `<prefix>-0`, `<prefix>-1`, ...)."""
    start = at or datetime.now(UTC)
    prefix = key_prefix or external_id
    results = []
    for i, text in enumerate(texts):
        result = await store.handle(
            source="telegram",
            update_key=f"{prefix}-{i}",
            channel="telegram",
            external_id=external_id,
            event=event(text, start + timedelta(seconds=i)),
            engine=engine,
        )
        assert result is not None, f"update {prefix}-{i} was not handled"
        results.append(result)
    return results


def fixed_clock(at: datetime) -> Callable[[], datetime]:
    """A clock that ticks one millisecond per reading, starting at `at`."""
    state = {"now": at}

    def now() -> datetime:
        state["now"] += timedelta(milliseconds=1)
        return state["now"]

    return now


async def row_counts(sessions: SessionFactory) -> dict[str, int]:
    """Rows per table, every table of the models."""
    counts = {}
    async with sessions() as session:
        for table in SQLModel.metadata.sorted_tables:
            n = (await session.exec(select(func.count()).select_from(table))).scalar_one()
            counts[table.name] = int(n)
    return counts


def run_cli(
    args: Sequence[str],
    *,
    db_url: str,
    cwd: Path,
    profile: Path = EXAMPLE_PROFILE,
) -> subprocess.CompletedProcess[str]:
    """Run the real `triage` command in a subprocess with the store and profile settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIAGE_")}
    env.update(
        TRIAGE_DATABASE_URL=db_url,
        TRIAGE_COMPANY_PROFILE=str(profile),
        COLUMNS="200",
        NO_COLOR="1",
    )
    return subprocess.run(
        [sys.executable, "-m", "triage.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
