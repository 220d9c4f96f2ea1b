"""Evidence packs: complete JSON, a self-contained HTML page with every audit event on it."""

from __future__ import annotations

import asyncio
import json
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from typer.testing import CliRunner

from tests.store.support import EU_CLIENT, NON_EU_CLIENT, converse, run_cli
from triage.cli import app
from triage.flows.engine import Engine
from triage.service.client_events import ConversationStore
from triage.store import audit
from triage.store.db import SessionFactory
from triage.store.evidence import export_client
from triage.store.models import AuditEvent, Client, Decision, Inquiry, Outbox

NASTY = "<script>alert(\"pwned\")</script> & <b>bold</b> 'quoted' I live in Berlin, Germany"
#: The EU client's conversation, their residence answer carrying markup, and /help.
RICH = (*EU_CLIENT[:3], NASTY, *EU_CLIENT[4:], "/help")
#: outbound event type -> (the row's status, its verdict, the event's payload), shaped like the
#: dispatcher's events; `outbound_teleported` stands for a type added later.
OUTBOUND = {
    "outbound_blocked": (
        "blocked",
        "blocked",
        {"verdict": "blocked", "reason": "promotion to an EU/EEA client: free bonus"},
    ),
    "outbound_held": ("held", "held", {"verdict": "held", "reason": "held until an officer"}),
    "outbound_released": (
        "pending",
        "held",
        {"by": "U0OFFICER", "reason": "decided", "held_because": "held until an officer"},
    ),
    "outbound_sent": ("sent", "allowed", {"attempt": 1, "message_id": 991, "marked": True}),
    "outbound_failed": (
        "pending",
        "allowed",
        {"attempt": 1, "error": "429 Too Many Requests", "retry_after": 3.0},
    ),
    "outbound_dead": ("dead", "allowed", {"attempts": 5, "reason": "gave up: 403 Forbidden"}),
    "outbound_teleported": ("pending", None, {"where": "the moon"}),
}


#: Elements without an end tag.
VOID = frozenset({"meta", "br"})


class Page(HTMLParser):
    """The parts of the page the tests look at."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.rows: dict[int, str] = {}
        self.text: list[str] = []
        self.client_turns: list[str] = []
        self._client_turn = False
        self._text_div = False
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag not in VOID:
            self.open.append(tag)
        if tag == "tr" and (a.get("id") or "").startswith("ev-"):
            self.rows[int(a["data-seq"] or "0")] = a["data-hash"] or ""
        classes = (a.get("class") or "").split()
        if tag == "li" and "client" in classes:
            self._client_turn = True
        if tag == "div" and "text" in classes and self._client_turn:
            self._text_div = True
            self.client_turns.append("")

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, f"</{tag}> closes <{self.open[-1:]}>"
        self.open.pop()
        if tag == "div" and self._text_div:
            self._text_div = False
        if tag == "li":
            self._client_turn = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._text_div:
            self.client_turns[-1] += data


def _parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    assert page.open == [], f"unclosed tags: {page.open}"
    return page


async def _rich_client(sessions: SessionFactory, engine: Engine) -> int:
    """An EU client whose residence answer carries markup, with every kind of outbound verdict,
    an officer decision and an event type the exporter has never heard of."""
    store = ConversationStore(sessions)
    cid = (await converse(store, engine, external_id="41", texts=RICH))[0].client_id
    async with sessions() as s, s.begin():
        rows = (
            await s.exec(select(Outbox).where(Outbox.client_id == cid).order_by(col(Outbox.id)))
        ).all()
        assert len(rows) >= len(OUTBOUND)
        events: list[tuple[str, dict[str, Any]]] = []
        for row, (kind, (status, verdict, payload)) in zip(rows, OUTBOUND.items(), strict=False):
            row.status, row.verdict = status, verdict
            row.verdict_reason = payload.get("reason") if verdict else None
            s.add(row)
            events.append((kind, {"outbox_id": row.id, **payload}))
        inquiry = (await s.exec(select(Inquiry).where(Inquiry.client_id == cid))).one()
        officer = Decision(
            inquiry_id=inquiry.id or 0,
            client_id=cid,
            outcome="DECLINE",
            previous="SERVE_EU_RESTRICTED",
            rules='["R3"]',
            ruleset="2026.11.25-1",
            reasons='["officer: client was contacted at a <conference>"]',
            decider="officer",
            officer_id="U0OFFICER",
            reason="Client admitted being approached at our booth",
        )
        s.add(officer)
        await s.flush()
        events += [
            (
                "officer_refused",
                {"user_id": "U0SALES", "action": "approve_eu", "why": "not a compliance officer"},
            ),
            (
                "officer_decision",
                {
                    "decision_id": officer.id,
                    "officer_id": "U0OFFICER",
                    "outcome": "DECLINE",
                    "previous": "SERVE_EU_RESTRICTED",
                    "reason": "Client admitted being approached at our booth",
                },
            ),
        ]
        events.append(("future_thing", {"nested": {"a": [1, 2]}, "note": "<img src=x>"}))
        await audit.append_many(s, cid, events)
    return cid


async def test_pack_is_complete_and_the_page_shows_every_event(
    sessions: SessionFactory, engine: Engine, tmp_path: Path
) -> None:
    cid = await _rich_client(sessions, engine)
    pack = await export_client(sessions, cid, tmp_path / "out")
    assert pack.chain_status == "intact" and pack.first_break is None
    data = json.loads(pack.json_path.read_text(encoding="utf-8"))
    async with sessions() as s:
        client = await s.get(Client, cid)
        events = (
            await s.exec(
                select(AuditEvent).where(AuditEvent.client_id == cid).order_by(col(AuditEvent.seq))
            )
        ).all()
        outbox = (await s.exec(select(Outbox).where(Outbox.client_id == cid))).all()
    assert client is not None

    # evidence.json: every event in order with its hashes, and the rows behind them.
    assert data["format"] == "triage.evidence/1"
    assert data["client"]["id"] == cid and data["client"]["external_id"] == "41"
    assert [(e["seq"], e["type"], e["hash"], e["prev_hash"]) for e in data["audit_events"]] == [
        (e.seq, e.type, e.hash, e.prev_hash) for e in events
    ]
    assert data["chain"] == {
        "status": "intact",
        "events": client.audit_seq,
        "head_seq": client.audit_seq,
        "head_hash": client.audit_head,
        "first_break": None,
    }
    assert [m["text"] for m in data["messages"] if m["direction"] == "in"] == list(RICH)
    bot, officer = data["decisions"][0], data["decisions"][-1]
    assert bot["decider"] == "bot" and bot["rules"] and isinstance(bot["reasons"], list)
    assert bot["ruleset"] and bot["outcome"] == "SERVE_EU_RESTRICTED"
    assert data["officer_decisions"] == [officer]
    assert officer["officer_id"] == "U0OFFICER" and officer["rules"] == ["R3"]
    assert {o["id"] for o in data["outbound"]} == {o.id for o in outbox}
    trails = {}
    for o in data["outbound"]:
        trail = [data["audit_events"][q - 1] for q in o["audit_seqs"]]
        assert trail[0]["type"] == "outbound_queued"
        assert {e["payload"]["outbox_id"] for e in trail} == {o["id"]}
        trails.update({e["type"]: o for e in trail[1:]})
    assert set(trails) == set(OUTBOUND)
    blocked = trails["outbound_blocked"]
    assert (blocked["status"], blocked["verdict"]) == ("blocked", "blocked")
    assert blocked["verdict_reason"] == OUTBOUND["outbound_blocked"][2]["reason"]
    assert len(data["processed_updates"]) == len(RICH)
    assert data["conversation"]["state"]["inquiries"][0]["outcome"] == "SERVE_EU_RESTRICTED"

    # evidence.html: one self-contained page.
    html = pack.html_path.read_text(encoding="utf-8")
    page = _parse(html)
    tags = {t for t, _ in page.tags}
    assert not tags & {"script", "link", "img", "iframe", "object", "embed", "base", "b"}
    assert [t for t, _ in page.tags].count("style") == 1
    assert not [a for _, attrs in page.tags for a in attrs if a in ("src", "href", "srcset")]
    assert "url(" not in html and "@import" not in html
    # Every audit event is on it, with its hash.
    assert page.rows == {e.seq: e.hash for e in events}
    text_content = "".join(page.text)
    for e in events:
        assert e.type in text_content
    # The client's words, in order, read back exactly (escaped once, not twice).
    assert page.client_turns == list(RICH)
    assert NASTY in text_content and "&lt;script&gt;alert(&quot;pwned&quot;)" in html
    assert "<script>" not in html
    # Decisions with rules and reasons; every outbound event, the officer, unknown events.
    for kind, (*_, payload) in OUTBOUND.items():
        for value in payload.values():
            shown = value if isinstance(value, str) else json.dumps(value)
            assert shown in text_content, (kind, value)
    assert "not a compliance officer" in text_content and "U0SALES" in text_content
    assert "U0OFFICER" in text_content and "Client admitted being approached" in text_content
    assert "officer: client was contacted at a <conference>" in text_content
    assert "nested" in text_content and "<img src=x>" in text_content
    assert "Audit chain intact" in text_content
    assert "R1" in text_content and bot["ruleset"] in text_content


async def test_pack_of_a_tampered_chain_shows_the_first_break(
    sessions: SessionFactory, db_engine: AsyncEngine, engine: Engine, tmp_path: Path
) -> None:
    store = ConversationStore(sessions)
    cid = (await converse(store, engine, external_id="1", texts=NON_EU_CLIENT))[0].client_id
    async with sessions() as s:
        erased = (
            await s.exec(
                select(AuditEvent).where(AuditEvent.client_id == cid, AuditEvent.seq == 2)
            )
        ).one()
    async with sessions() as s, s.begin():
        await audit.tombstone(s, erased.id or 0)
    async with db_engine.begin() as conn:
        await conn.execute(
            text("UPDATE audit_event SET type = 'question' WHERE client_id = :c AND seq = 4"),
            {"c": cid},
        )
    pack = await export_client(sessions, cid, tmp_path)
    assert pack.chain_status == "broken"
    data = json.loads(pack.json_path.read_text(encoding="utf-8"))
    first = data["chain"]["first_break"]
    assert (first["seq"], first["type"]) == (4, "question")
    assert "hash does not match" in first["problem"]
    assert data["audit_events"][1]["payload"] is None
    assert data["audit_events"][1]["payload_erased"] is True
    page = _parse(pack.html_path.read_text(encoding="utf-8"))
    status = next(a for t, a in page.tags if a.get("id") == "chain-status")
    assert status["data-status"] == "broken"
    text_content = "".join(page.text)
    assert "BROKEN at event seq 4" in text_content
    assert "payload erased" in text_content
    assert len(page.rows) == len(data["audit_events"])


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="no /usr/bin/chromium")
async def test_page_renders_in_headless_chromium(
    sessions: SessionFactory, engine: Engine, tmp_path: Path
) -> None:
    cid = await _rich_client(sessions, engine)
    pack = await export_client(sessions, cid, tmp_path / "out")
    shot = tmp_path / "page.png"
    subprocess.run(
        [
            "/usr/bin/chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1280,4000",
            f"--screenshot={shot}",
            pack.html_path.resolve().as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 1000


async def test_export_command_one_client_and_all(
    db_url: str,
    sessions: SessionFactory,
    engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One client (in process), then every client (the real command, in a subprocess)."""
    store = ConversationStore(sessions)
    ids = [
        (await converse(store, engine, external_id=str(n), texts=t))[0].client_id
        for n, t in enumerate((EU_CLIENT, NON_EU_CLIENT, EU_CLIENT[:2]))
    ]
    args = ["evidence", "export", "telegram:1", "--out", str(tmp_path / "one")]
    one = await asyncio.to_thread(_invoke, args, db_url, monkeypatch)
    assert one.exit_code == 0, one.output
    assert "wrote " in one.output
    data = json.loads((tmp_path / "one" / "evidence.json").read_text(encoding="utf-8"))
    assert data["client"]["id"] == ids[1]
    assert (tmp_path / "one" / "evidence.html").stat().st_size > 0

    every = run_cli(
        ["evidence", "export", "--all", "--out", str(tmp_path / "all")],
        db_url=db_url,
        cwd=tmp_path,
    )
    assert every.returncode == 0, every.stdout + every.stderr
    assert f"wrote {len(ids)} evidence pack(s)" in every.stdout
    for cid in ids:
        folder = tmp_path / "all" / str(cid)
        assert json.loads((folder / "evidence.json").read_text())["client"]["id"] == cid
        assert _parse((folder / "evidence.html").read_text()).rows


def _invoke(args: list[str], db_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("TRIAGE_DATABASE_URL", db_url)
    return CliRunner().invoke(app, args)


async def test_export_command_refuses_with_a_clear_message(
    db_url: str, sessions: SessionFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with sessions() as s, s.begin():
        s.add(Client(channel="telegram", external_id="1"))
    (tmp_path / "a-file").write_text("not a folder", encoding="utf-8")
    out = str(tmp_path / "x")
    cases = [
        (
            ["evidence", "export", "1", "--out", str(tmp_path / "a-file")],
            "exists and is not a folder",
        ),
        (["evidence", "export", "42", "--out", out], "no client with id 42"),
        (["evidence", "export", "telegram:nobody", "--out", out], "no client 'nobody'"),
        (["evidence", "export", "bob", "--out", out], "is not a client"),
        (["evidence", "export", "--out", out], "name one client (CLIENT_ID) or pass --all"),
        (["evidence", "export", "1", "--all", "--out", out], "not both"),
    ]
    for args, message in cases:
        result = await asyncio.to_thread(_invoke, args, db_url, monkeypatch)
        assert result.exit_code == 2, (args, result.output)
        assert message in " ".join(result.output.split()), (args, result.output)
        assert "Traceback" not in result.output
    assert not Path(out).exists()
