"""Retention and erasure: purge only what is past retention; erasure restricts, and says so."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import SQLModel
from typer.testing import CliRunner

from tests.store.support import (
    EU_CLIENT,
    EXAMPLE_PROFILE,
    NON_EU_CLIENT,
    converse,
    fixed_clock,
    run_cli,
)
from triage.cli import app
from triage.domain.codes import MessageKind, Outcome, Sender, Verdict, Zone
from triage.domain.gate import OutboundMessage, RecipientFacts, judge
from triage.domain.profile import CompanyProfile
from triage.flows.engine import Engine
from triage.service.client_events import ConversationStore
from triage.store import audit
from triage.store.db import SessionFactory
from triage.store.models import AuditEvent, Client, Outbox
from triage.store.retention import (
    client_scope,
    client_tables,
    cutoff,
    due_clients,
    purge,
    purge_client,
    status,
    years_after,
    years_before,
)

NOW = datetime(2033, 3, 15, 12, 0, tzinfo=UTC)
YEARS = 5


async def _client_at(
    sessions: SessionFactory, engine: Engine, name: str, at: datetime, texts: tuple[str, ...]
) -> int:
    store = ConversationStore(sessions, clock=fixed_clock(at))
    results = await converse(store, engine, external_id=name, texts=texts, at=at)
    return results[0].client_id


async def _rows_of(sessions: SessionFactory, client_id: int) -> dict[str, int]:
    """Rows per table that belong to a client (every table, through its foreign keys)."""
    counts = {}
    async with sessions() as s:
        for table in SQLModel.metadata.sorted_tables:
            scope = client_scope(table, client_id)
            if scope is None:
                continue
            n = (await s.exec(select(func.count()).select_from(table).where(scope))).scalar_one()
            counts[table.name] = int(n)
    return counts


async def _population(
    sessions: SessionFactory, engine: Engine, now: datetime, *, decided: bool = True
) -> dict[str, int]:
    """Clients on both sides of the retention boundary (decided: whole conversations)."""
    years_ago = years_before(now, YEARS)
    eu, non_eu = (EU_CLIENT, NON_EU_CLIENT) if decided else (EU_CLIENT[:2], NON_EU_CLIENT[:2])

    async def make(name: str, at: datetime, texts: tuple[str, ...]) -> int:
        return await _client_at(sessions, engine, name, at, texts)

    ids = {
        "old": await make("old", years_ago - timedelta(days=40), eu),
        "old_erased": await make("old_erased", years_ago - timedelta(days=400), (*eu, "/delete")),
        "almost": await make("almost", years_ago + timedelta(days=20), non_eu),
        "recent": await make("recent", now - timedelta(days=3), eu),
        # The client went quiet long ago, but an officer decided on the case recently.
        "officer": await make("officer", years_ago - timedelta(days=90), eu),
    }
    async with sessions() as s, s.begin():
        await audit.append(
            s,
            ids["officer"],
            "officer_decision",
            {"officer_id": "U1", "outcome": "DECLINE", "reason": "late report"},
            at=now - timedelta(days=200),
        )
    return ids


def test_calendar_years() -> None:
    leap = datetime(2028, 2, 29, 8, 0, tzinfo=UTC)
    assert years_before(leap, 5) == datetime(2023, 2, 28, 8, 0, tzinfo=UTC)
    assert years_after(leap, 5) == datetime(2033, 3, 1, 8, 0, tzinfo=UTC)
    assert cutoff(NOW, 5) == datetime(2028, 3, 15, 12, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="naive"):
        cutoff(datetime(2030, 1, 1), 5)


def test_every_table_with_client_rows_is_purged_children_first() -> None:
    names = [t.name for t in client_tables()]
    assert names[-1] == "client"
    assert {"audit_event", "message", "decision", "inquiry", "outbox", "processed_update"} <= set(
        names
    ) and "conversation" in names
    assert names.index("decision") < names.index("inquiry")
    for i, table in enumerate(client_tables()):
        for fk in table.foreign_keys:
            parent = fk.column.table.name
            if parent != table.name:
                assert parent in names[i + 1 :], f"{table.name} must go before {parent}"


async def test_purge_removes_only_clients_past_retention(
    sessions: SessionFactory, engine: Engine
) -> None:
    ids = await _population(sessions, engine, NOW)
    due = await due_clients(sessions, years=YEARS, now=NOW, count_rows=True)
    assert [d.client_id for d in due] == [ids["old_erased"], ids["old"]]
    for d in due:
        assert d.rows == {k: v for k, v in (await _rows_of(sessions, d.client_id)).items() if v}
        assert d.kept_until == years_after(d.last_activity_at, YEARS) <= NOW
        assert {"audit_event", "message", "outbox", "decision", "conversation"} <= set(d.rows)
    assert due[0].restricted_at is not None and due[1].restricted_at is None
    st = await status(sessions, years=YEARS, now=NOW)
    assert (st.clients, st.restricted, st.due, st.due_restricted) == (5, 1, 2, 1)

    kept = {
        k: await _rows_of(sessions, v) for k, v in ids.items() if k not in ("old", "old_erased")
    }
    purged = await purge(sessions, years=YEARS, now=NOW)
    assert sorted(p.client.client_id for p in purged) == sorted([ids["old"], ids["old_erased"]])
    for p in purged:
        assert p.rows == next(d.rows for d in due if d.client_id == p.client.client_id)
        assert set((await _rows_of(sessions, p.client.client_id)).values()) == {0}
    for name, rows in kept.items():
        assert await _rows_of(sessions, ids[name]) == rows, name
    async with sessions() as s:
        assert await audit.verify(s) == []
        remaining = (await s.exec(select(Client.external_id).order_by(Client.id))).scalars()
        assert list(remaining) == ["almost", "recent", "officer"]
    assert await purge(sessions, years=YEARS, now=NOW) == []


async def test_purge_rechecks_under_the_lock(sessions: SessionFactory, engine: Engine) -> None:
    """A client who writes again between the listing and the purge is kept."""
    ids = await _population(sessions, engine, NOW, decided=False)
    due = await due_clients(sessions, years=YEARS, now=NOW)
    assert ids["old"] in {d.client_id for d in due}
    store = ConversationStore(sessions, clock=fixed_clock(NOW - timedelta(hours=1)))
    await converse(store, engine, external_id="old", texts=("Hello again",), key_prefix="back")
    before = await _rows_of(sessions, ids["old"])
    assert await purge_client(sessions, ids["old"], years=YEARS, now=NOW) is None
    assert await _rows_of(sessions, ids["old"]) == before
    assert await purge_client(sessions, 10_000, years=YEARS, now=NOW) is None


async def test_erasure_request_is_recorded_and_restricts_outbound(
    sessions: SessionFactory, engine: Engine, profile: CompanyProfile
) -> None:
    at = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
    store = ConversationStore(sessions, clock=fixed_clock(at))
    results = await converse(store, engine, external_id="e", texts=(*NON_EU_CLIENT, "/delete"))
    erasure = results[-1]
    cid = erasure.client_id

    # Recorded in the chain, in the same turn as the reply queued to the client.
    async with sessions() as s:
        client = await s.get(Client, cid)
        assert client is not None and client.restricted_at is not None
        restricted_at = client.restricted_at
        turn = (
            await s.exec(
                select(AuditEvent)
                .where(AuditEvent.id.in_(erasure.audit_event_ids))  # type: ignore[union-attr]
                .order_by(AuditEvent.seq)  # type: ignore[arg-type]
            )
        ).scalars()
        events = [(e.type, json.loads(e.payload or "{}"), e.created_at) for e in turn]
        (reply,) = (
            await s.exec(select(Outbox).where(Outbox.id.in_(erasure.outbox_ids)))  # type: ignore[union-attr]
        ).scalars()
    types = [t for t, _, _ in events]
    assert types == ["message_in", "erasure_requested", "command", "outbound_queued"]
    assert events[0][1]["text"] == "/delete"
    assert events[2][1]["name"] == "delete"
    assert events[3][1]["outbox_id"] == reply.id and events[3][1]["kind"] == "transactional"
    assert all(created == restricted_at for *_, created in events)
    async with sessions() as s:
        assert await audit.verify(s, cid) == []

    # The client is told plainly that records the law requires are kept until retention ends.
    assert reply.kind == MessageKind.TRANSACTIONAL.value
    text = reply.text
    assert "erasure request" in text
    assert "no longer contact you" in text
    assert "Records the law obliges us to keep are retained until their retention period ends" in (
        text
    )

    state = await store.state("telegram", "e")
    assert state is not None and state.restricted

    # Asking again changes nothing about when the restriction began.
    again = await converse(store, engine, external_id="e", texts=("/delete",), key_prefix="again")
    async with sessions() as s:
        client = await s.get(Client, again[0].client_id)
        assert client is not None and client.restricted_at == restricted_at

    # The gate lets only transactional messages through to a restricted client, even one
    # handed off as non-EU (whose outbound is otherwise unrestricted).
    facts = RecipientFacts(
        zone=Zone.OUTSIDE,
        outcomes=(Outcome.HANDOFF_NON_EU,),
        last_client_message_at=at,
        restricted=True,
    )
    assert judge(_msg(Sender.BOT, MessageKind.REPLY, "ok", at), _open(facts), profile).verdict is (
        Verdict.ALLOWED
    )
    for sender in Sender:
        for kind in MessageKind:
            result = judge(_msg(sender, kind, "Your request is noted.", at), facts, profile)
            expected = Verdict.ALLOWED if kind is MessageKind.TRANSACTIONAL else Verdict.BLOCKED
            assert result.verdict is expected, (sender, kind, result)
    reply_msg = _msg(Sender.BOT, MessageKind(reply.kind), reply.text, at, reply=reply.reply)
    assert judge(reply_msg, facts, profile).verdict is Verdict.ALLOWED
    promo = _msg(Sender.BOT, MessageKind.TRANSACTIONAL, "Claim your free bonus now", at)
    assert judge(promo, facts, profile).verdict is Verdict.BLOCKED


def _msg(
    sender: Sender, kind: MessageKind, text: str, at: datetime, *, reply: bool = True
) -> OutboundMessage:
    return OutboundMessage(sender=sender, kind=kind, text=text, at=at, reply=reply)


def _open(facts: RecipientFacts) -> RecipientFacts:
    return RecipientFacts(
        zone=facts.zone,
        outcomes=facts.outcomes,
        last_client_message_at=facts.last_client_message_at,
        restricted=False,
    )


async def test_retention_commands(
    db_url: str,
    sessions: SessionFactory,
    engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real commands, on the real clock: clients weeks away from the boundary."""
    ids = await _population(sessions, engine, datetime.now(UTC), decided=False)
    before = await _rows_of(sessions, ids["old"])

    env = {"TRIAGE_DATABASE_URL": db_url, "TRIAGE_COMPANY_PROFILE": str(EXAMPLE_PROFILE)}
    st = await asyncio.to_thread(_invoke, ["retention", "status"], env, monkeypatch)
    assert st.exit_code == 0, st.output
    rows = dict(
        (cells[1].strip(), cells[2].strip())
        for line in st.output.splitlines()
        if len(cells := line.split("│")) == 4
    )
    assert rows == {
        "in the store": "5",
        "restricted (erasure requested)": "1",
        "due for purge": "2",
        "due for purge, restricted": "1",
    }, st.output

    dry = run_cli(["retention", "purge", "--dry-run"], db_url=db_url, cwd=tmp_path)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "retention: 5 years after the last activity" in dry.stderr
    lines = [line for line in dry.stdout.splitlines() if line.startswith("would remove")]
    assert [line.split()[3] for line in lines] == [str(ids["old_erased"]), str(ids["old"])]
    assert "erasure requested" in lines[0] and "erasure requested" not in lines[1]
    assert f"{sum(before.values())} rows (" in lines[1] and "audit_event " in lines[1]
    assert "2 client(s) past retention would be removed" in dry.stdout
    assert await _rows_of(sessions, ids["old"]) == before

    done = run_cli(["retention", "purge", "--yes"], db_url=db_url, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    removed = [line.split()[2] for line in done.stdout.splitlines() if line.startswith("removed")]
    assert sorted(removed) == sorted([str(ids["old_erased"]), str(ids["old"])])
    assert "2 client(s) past retention removed" in done.stdout
    assert set((await _rows_of(sessions, ids["old"])).values()) == {0}
    async with sessions() as s:
        assert await audit.verify(s) == []
        count = (await s.exec(select(func.count()).select_from(Client))).scalar_one()
    assert count == 3


def _invoke(args: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return CliRunner().invoke(app, args)


async def test_retention_commands_refuse_with_a_clear_message(
    db_url: str, sessions: SessionFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad_profile = tmp_path / "company.yaml"
    bad_profile.write_text("name: X\nretention_years: 2\n", encoding="utf-8")
    ok = {"TRIAGE_DATABASE_URL": db_url, "TRIAGE_COMPANY_PROFILE": str(EXAMPLE_PROFILE)}
    cases = [
        (["retention", "purge"], ok, "pass --dry-run"),
        (["retention", "purge", "--dry-run", "--yes"], ok, "pass --dry-run"),
        (
            ["retention", "status"],
            {**ok, "TRIAGE_COMPANY_PROFILE": str(tmp_path / "missing.yaml")},
            "missing.yaml: file not found",
        ),
        (
            ["retention", "purge", "--dry-run"],
            {**ok, "TRIAGE_COMPANY_PROFILE": str(bad_profile)},
            "retention_years",
        ),
        (
            ["retention", "status"],
            {**ok, "TRIAGE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/none.db"},
            "no database at",
        ),
    ]
    for args, env, message in cases:
        result = await asyncio.to_thread(_invoke, args, env, monkeypatch)
        assert result.exit_code == 2, (args, result.output)
        assert message in " ".join(result.output.split()), (args, result.output)
        assert "Traceback" not in result.output
    assert not (tmp_path / "none.db").exists()
