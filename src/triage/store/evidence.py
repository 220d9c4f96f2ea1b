"""The evidence pack of one client: `evidence.json` for machines, `evidence.html` for people.

The pack is read in one transaction (a repeatable-read snapshot on PostgreSQL), so the files
describe one moment. The JSON holds every row of the client (the client, the conversation state,
every audit event in chain order with its hashes, messages in and out, inquiries, decisions with
rule ids, reasons, ruleset and decider, outbox rows with their verdicts, processed updates, and
rows of any further table that belongs to the client) and the chain's status. The HTML page is a
view of that JSON: one self-contained file (inline CSS, no script, no external asset, every text
escaped) that a supervisor can read or print: the conversation in order, decisions, every
outbound attempt with its verdict, officer decisions, the chain's status and the full audit
trail.

Audit event types are open: any type renders generically (type, time, payload fields); known
types, and the `outbound_*` and `officer_*` families, get a readable headline on top. A new
event type never breaks an export.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from html import escape
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Table
from sqlalchemy import select as sa_select
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from triage.store import audit
from triage.store.db import SessionFactory, read_snapshot
from triage.store.models import (
    AuditEvent,
    Client,
    Conversation,
    Decision,
    Inquiry,
    Message,
    Outbox,
    ProcessedUpdate,
    utcnow,
)
from triage.store.retention import client_scope, client_tables

FORMAT = "triage.evidence/1"
JSON_NAME = "evidence.json"
HTML_NAME = "evidence.html"

M = TypeVar("M", bound=SQLModel)


class EvidenceError(Exception):
    """The pack cannot be built (unknown client, unusable output folder); says what to do."""


# --- reading -----------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return audit.iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def row_dict(row: SQLModel) -> dict[str, Any]:
    """Every column of a row (new columns included), JSON-ready."""
    table: Table = row.__table__  # type: ignore[attr-defined]
    return {c.name: _plain(getattr(row, c.name)) for c in table.columns}


def _loads(text: str | None) -> Any:
    """Stored JSON text, or the text itself when it is not JSON (it was changed by hand)."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _event_dict(ev: AuditEvent) -> dict[str, Any]:
    data = row_dict(ev)
    data["payload_erased"] = ev.payload is None
    payload = _loads(ev.payload)
    if ev.payload is not None and not isinstance(payload, dict):
        # Not an object any more: keep it verbatim for the reader; the chain check flags it.
        data["payload"] = None
        data["payload_raw"] = ev.payload
    else:
        data["payload"] = payload
    return data


def _decision_dict(d: Decision) -> dict[str, Any]:
    data = row_dict(d)
    data["rules"] = _loads(d.rules)
    data["reasons"] = _loads(d.reasons)
    return data


async def resolve_client(sessions: SessionFactory, ref: str) -> int:
    """A client's store id from `ref`: the id itself, or `CHANNEL:EXTERNAL_ID`."""
    ref = ref.strip()
    async with sessions() as session:
        if ref.isdigit():
            found = await session.get(Client, int(ref))
            if found is not None and found.id is not None:
                return found.id
            raise EvidenceError(
                f"no client with id {ref}: `triage retention status` counts the clients; "
                "pass an id from the store or CHANNEL:EXTERNAL_ID (telegram:12345)"
            )
        channel, sep, external = ref.partition(":")
        if sep:
            stmt = select(Client.id).where(
                Client.channel == channel, Client.external_id == external
            )
            cid = (await session.exec(stmt)).one_or_none()
            if cid is not None:
                return int(cid)
            raise EvidenceError(f"no client {external!r} on channel {channel!r}")
    raise EvidenceError(
        f"{ref!r} is not a client: pass the client's id (a number) or CHANNEL:EXTERNAL_ID"
    )


async def client_ids(sessions: SessionFactory) -> list[int]:
    """Every client's id, in order."""
    async with sessions() as session:
        rows = await session.exec(select(Client.id).order_by(col(Client.id)))
        return [int(r) for r in rows.all() if r is not None]


_COVERED = {
    t.__tablename__
    for t in (
        Client,
        Conversation,
        AuditEvent,
        Message,
        Inquiry,
        Decision,
        Outbox,
        ProcessedUpdate,
    )
}


async def collect(
    session: AsyncSession, client_id: int, *, now: datetime | None = None
) -> dict[str, Any]:
    """The evidence of one client as plain data (what `evidence.json` holds)."""
    client = await session.get(Client, client_id)
    if client is None:
        raise EvidenceError(f"no client with id {client_id}")

    async def rows(model: type[M], owner: Any, order: Any) -> list[M]:
        result = await session.exec(select(model).where(owner == client_id).order_by(order))
        return list(result.all())

    events = await rows(AuditEvent, col(AuditEvent.client_id), col(AuditEvent.seq))
    broken = audit.check_chain(client_id, client.audit_seq, client.audit_head, events)
    conversations = await rows(Conversation, col(Conversation.client_id), col(Conversation.id))
    conversation = conversations[0] if conversations else None
    messages = await rows(Message, col(Message.client_id), col(Message.id))
    inquiries = await rows(Inquiry, col(Inquiry.client_id), col(Inquiry.position))
    decisions = await rows(Decision, col(Decision.client_id), col(Decision.id))
    outbox = await rows(Outbox, col(Outbox.client_id), col(Outbox.id))
    updates = await rows(ProcessedUpdate, col(ProcessedUpdate.client_id), col(ProcessedUpdate.id))
    other: dict[str, list[dict[str, Any]]] = {}
    for table in client_tables():
        if table.name in _COVERED:
            continue
        scope = client_scope(table, client_id)
        assert scope is not None
        order = list(table.primary_key.columns)
        conn = await session.connection()
        found = (await conn.execute(sa_select(table).where(scope).order_by(*order))).mappings()
        other[table.name] = [{k: _plain(v) for k, v in r.items()} for r in found.all()]

    event_dicts = [_event_dict(ev) for ev in events]
    by_outbox: dict[int, list[int]] = {}
    for ev in event_dicts:
        oid = (ev["payload"] or {}).get("outbox_id")
        if isinstance(oid, int):
            by_outbox.setdefault(oid, []).append(ev["seq"])
    outbound = []
    for o in outbox:
        data = row_dict(o)
        data["audit_seqs"] = by_outbox.get(o.id or -1, [])
        outbound.append(data)
    decision_dicts = [_decision_dict(d) for d in decisions]
    conv = None
    if conversation is not None:
        conv = row_dict(conversation)
        conv["state"] = _loads(conversation.state)
    chain: dict[str, Any] = {
        "status": "intact" if broken is None else "broken",
        "events": len(events),
        "head_seq": client.audit_seq,
        "head_hash": client.audit_head,
        "first_break": None,
    }
    if broken is not None:
        kind = next((ev.type for ev in events if ev.id == broken.event_id), None)
        chain["first_break"] = {
            "seq": broken.seq,
            "event_id": broken.event_id,
            "type": kind,
            "problem": broken.problem,
            "text": str(broken),
        }
    return {
        "format": FORMAT,
        "generated_at": audit.iso_utc(now or utcnow()),
        "client": row_dict(client),
        "chain": chain,
        "conversation": conv,
        "audit_events": event_dicts,
        "messages": [row_dict(m) for m in messages],
        "inquiries": [row_dict(i) for i in inquiries],
        "decisions": decision_dicts,
        "officer_decisions": [d for d in decision_dicts if d.get("decider") == "officer"],
        "outbound": outbound,
        "processed_updates": [row_dict(u) for u in updates],
        "other_tables": other,
    }


# --- writing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportedPack:
    """The files written for one client."""

    client_id: int
    json_path: Path
    html_path: Path
    chain_status: str
    first_break: str | None


def _write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_pack(pack: Mapping[str, Any], out_dir: Path) -> ExportedPack:
    """Write `evidence.json` and `evidence.html` of one pack into `out_dir`."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise EvidenceError(f"{out_dir} exists and is not a folder: pass another --out") from None
    except OSError as exc:
        raise EvidenceError(f"cannot create {out_dir}: {exc.strerror}") from None
    json_path, html_path = out_dir / JSON_NAME, out_dir / HTML_NAME
    try:
        _write_atomically(json_path, json.dumps(pack, ensure_ascii=False, indent=2) + "\n")
        _write_atomically(html_path, render_html(pack))
    except OSError as exc:
        raise EvidenceError(f"cannot write into {out_dir}: {exc.strerror}") from None
    chain = pack["chain"]
    first = chain["first_break"]
    return ExportedPack(
        client_id=int(pack["client"]["id"]),
        json_path=json_path,
        html_path=html_path,
        chain_status=str(chain["status"]),
        first_break=None if first is None else str(first["text"]),
    )


async def export_client(
    sessions: SessionFactory, client_id: int, out_dir: Path, *, now: datetime | None = None
) -> ExportedPack:
    """Read one client's evidence in one snapshot and write both files."""
    async with sessions() as session, read_snapshot(session):
        pack = await collect(session, client_id, now=now)
    return write_pack(pack, out_dir)


async def export_all(
    sessions: SessionFactory,
    out_dir: Path,
    *,
    now: datetime | None = None,
    on_start: Callable[[int], None] | None = None,
    on_exported: Callable[[ExportedPack], None] | None = None,
) -> list[ExportedPack]:
    """Export every client into `out_dir/<client_id>/`."""
    ids = await client_ids(sessions)
    if on_start is not None:
        on_start(len(ids))
    done = []
    for cid in ids:
        exported = await export_client(sessions, cid, out_dir / str(cid), now=now)
        done.append(exported)
        if on_exported is not None:
            on_exported(exported)
    return done


# --- the page ----------------------------------------------------------------------------------

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1f24;
margin:0;background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 8px;border-bottom:2px solid
#d0d7de;padding-bottom:4px}
.sub{color:#57606a;margin:0 0 16px}
table{border-collapse:collapse;width:100%;background:#fff;margin:8px 0}
th,td{border:1px solid #d0d7de;padding:5px 8px;vertical-align:top;text-align:left}
th{background:#eef1f4;font-weight:600}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:4px 0}
dl.kv dt{color:#57606a}dl.kv dd{margin:0;overflow-wrap:anywhere}
code,.hash{font:12px/1.4 ui-monospace,Menlo,Consolas,monospace;overflow-wrap:anywhere}
.status{padding:12px 16px;border-radius:6px;font-weight:600;margin:12px 0}
.intact{background:#dafbe1;border:1px solid #2da44e}
.broken{background:#ffebe9;border:1px solid #cf222e}
.turns{list-style:none;padding:0;margin:0}
.turn{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:8px 12px;
margin:8px 0;max-width:80%}
.turn.client{margin-right:auto;border-left:4px solid #0969da}
.turn.bot{margin-left:auto;border-right:4px solid #8250df}
.turn.note{max-width:100%;background:#fff8c5;border-color:#d4a72c}
.who{font-size:12px;color:#57606a}
.text{white-space:pre-wrap;overflow-wrap:anywhere}
.badge{display:inline-block;border-radius:10px;padding:0 8px;font-size:12px;font-weight:600;
background:#eaeef2}
.allowed,.sent{background:#dafbe1}.blocked,.dead,.failed,.refused{background:#ffebe9}
.held,.released{background:#fff8c5}
.erased{color:#57606a;font-style:italic}
tr.break td{background:#ffebe9}
@media print{body{background:#fff}main{max-width:none}.turn{break-inside:avoid}}
"""


def _e(value: object) -> str:
    """Escaped text for HTML content and attributes."""
    return escape("" if value is None else str(value), quote=True)


def _value(value: object) -> str:
    if value is None:
        return '<span class="erased">none</span>'
    if isinstance(value, str):
        return f'<span class="text">{_e(value)}</span>'
    if isinstance(value, bool | int | float):
        return _e(json.dumps(value))
    return f"<code>{_e(json.dumps(value, ensure_ascii=False, sort_keys=True))}</code>"


def _kv(items: Iterable[tuple[str, object]]) -> str:
    body = "".join(f"<dt>{_e(k)}</dt><dd>{_value(v)}</dd>" for k, v in items)
    return f'<dl class="kv">{body}</dl>' if body else ""


def _badge(word: object) -> str:
    w = "" if word is None else str(word)
    return f'<span class="badge {_e(w)}">{_e(w or "-")}</span>'


def _list(items: object) -> str:
    if isinstance(items, list):
        return "<ul>" + "".join(f"<li>{_e(i)}</li>" for i in items) + "</ul>" if items else "-"
    return _value(items)


def _table(headers: Iterable[str], rows: Iterable[Iterable[str]], *, empty: str) -> str:
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    if not body:
        return f"<p>{_e(empty)}</p>"
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# Headlines of known event types: (HTML, payload keys already shown). Unknown types get none.
Headline = tuple[str, frozenset[str]]


def _h_message_in(p: dict[str, Any]) -> Headline:
    return (
        f'Client wrote ({_e(p.get("kind"))}): <span class="text">«{_e(p.get("text"))}»</span>',
        frozenset({"text", "kind"}),
    )


def _h_client_message(p: dict[str, Any]) -> Headline:
    slot = p.get("answers")
    about = f" as the answer to the question on {_e(slot)}" if slot else ""
    return f"The bot read the client's message{about}.", frozenset({"answers", "text"})


def _h_question(p: dict[str, Any]) -> Headline:
    again = " (asked again)" if p.get("retry") else ""
    return (
        f"Bot asks about {_e(p.get('slot'))}{again}: "
        f'<span class="text">«{_e(p.get("text"))}»</span>',
        frozenset({"slot", "retry", "text"}),
    )


def _h_decision(p: dict[str, Any]) -> Headline:
    rules = ", ".join(str(r) for r in p.get("rules") or [])
    prev = f" (was {_e(p.get('previous'))})" if p.get("previous") else ""
    return (
        f"Decision by {_e(p.get('decider') or 'bot')}: {_badge(p.get('outcome'))}{prev}, "
        f"rules {_e(rules or '-')}, ruleset {_e(p.get('ruleset'))}"
        f"{_list(p.get('reasons'))}",
        frozenset({"outcome", "previous", "rules", "ruleset", "decider", "reasons"}),
    )


def _h_outbound_queued(p: dict[str, Any]) -> Headline:
    return (
        f"Queued for the gate: {_e(p.get('kind'))} from {_e(p.get('sender'))}: "
        f'<span class="text">«{_e(p.get("text"))}»</span>',
        frozenset({"kind", "sender", "text"}),
    )


#: Payload fields that say why something happened to an outbox row, most telling first.
_WHY_KEYS = ("reason", "error", "message_id", "by")


def _why(p: Mapping[str, Any]) -> str:
    parts = [
        f"{k} {p[k]}" if k in ("message_id", "by") else str(p[k]) for k in _WHY_KEYS if p.get(k)
    ]
    return "; ".join(parts)


def _h_outbound(p: dict[str, Any], word: str) -> Headline:
    """Any "outbound_<word>" event: a verdict, a send, a failure, a release, ..."""
    why = _why(p)
    text = p.get("text")
    return (
        f"Outbox row {_e(p.get('outbox_id'))} {_badge(p.get('verdict') or word)}"
        + (f": {_e(why)}" if why else "")
        + (f'<br><span class="text">«{_e(text)}»</span>' if text else ""),
        frozenset({"outbox_id", "verdict", "text", *_WHY_KEYS}),
    )


def _h_officer(p: dict[str, Any], word: str) -> Headline:
    """Any "officer_<word>" event: a decision, an approval, a question, a refusal."""
    who = p.get("officer_id") or p.get("user_id")
    what = p.get("outcome") or p.get("action")
    prev = f" (was {_e(p['previous'])})" if p.get("previous") else ""
    why = p.get("reason") or p.get("why")
    question = p.get("question")
    return (
        f"Officer {_e(word)} by {_e(who)}"
        + (f": {_badge(what)}{prev}" if what else "")
        + (f"<br>reason: {_e(why)}" if why else "")
        + (f'<br>asked: <span class="text">«{_e(question)}»</span>' if question else ""),
        frozenset({"officer_id", "user_id", "outcome", "action", "previous", "reason", "why"})
        | ({"question"} if question else set()),
    )


def _h_erasure(p: dict[str, Any]) -> Headline:
    return (
        "The client asked for erasure: processing restricted from now on; records the law "
        "requires are kept until retention ends.",
        frozenset(),
    )


def _h_slot(p: dict[str, Any], verb: str) -> Headline:
    how = " (volunteered)" if p.get("volunteered") else ""
    return f"{verb} {_e(p.get('slot'))}{how}", frozenset({"slot", "volunteered"})


_HEADLINES: dict[str, Callable[[dict[str, Any]], Headline]] = {
    "message_in": _h_message_in,
    "client_message": _h_client_message,
    "question": _h_question,
    "decision": _h_decision,
    "outbound_queued": _h_outbound_queued,
    "erasure_requested": _h_erasure,
    "slot_filled": lambda p: _h_slot(p, "Answer recorded for"),
    "slot_unresolved": lambda p: _h_slot(p, "No usable answer for"),
    "fact_learned": lambda p: _h_slot(p, "New fact learned about"),
    "command": lambda p: (f"Client command /{_e(p.get('name'))}", frozenset({"name"})),
    "start": lambda p: (f"Client started the bot (parameter {_e(p.get('param'))})", frozenset()),
}


def _headline(kind: str) -> Callable[[dict[str, Any]], Headline] | None:
    """The headline renderer of an event type: exact types first, then families."""
    if kind in _HEADLINES:
        return _HEADLINES[kind]
    for prefix, family in (("outbound_", _h_outbound), ("officer_", _h_officer)):
        if kind.startswith(prefix):
            word = kind.removeprefix(prefix)
            return lambda p: family(p, word)
    return None


def _event_body(ev: Mapping[str, Any]) -> str:
    if ev.get("payload_erased"):
        return '<span class="erased">payload erased; its hash is kept in the chain</span>'
    payload = ev.get("payload")
    if not isinstance(payload, dict):
        raw = _value(ev.get("payload_raw"))
        return f'<span class="erased">payload is not a JSON object:</span> {raw}'
    shown: frozenset[str] = frozenset()
    headline = ""
    render = _headline(str(ev.get("type")))
    if render is not None:
        try:
            headline, shown = render(payload)
        except Exception:  # an unexpected payload shape: the generic fields still show it all
            headline, shown = "", frozenset()
    rest = _kv((k, v) for k, v in sorted(payload.items()) if k not in shown)
    return (f"<div>{headline}</div>" if headline else "") + rest


def _chain_banner(chain: Mapping[str, Any]) -> str:
    if chain["status"] == "intact":
        return (
            f'<div class="status intact" id="chain-status" data-status="intact">'
            f"Audit chain intact: {_e(chain['events'])} events, head seq {_e(chain['head_seq'])}, "
            f'head hash <span class="hash">{_e(chain["head_hash"])}</span></div>'
        )
    first = chain["first_break"] or {}
    kind = f", type {_e(first.get('type'))}" if first.get("type") else ""
    row = f" (row id {_e(first.get('event_id'))}{kind})" if first.get("event_id") else ""
    return (
        f'<div class="status broken" id="chain-status" data-status="broken">'
        f"Audit chain BROKEN at event seq {_e(first.get('seq'))}{row}: {_e(first.get('problem'))}."
        f" Events from there on cannot be relied on.</div>"
    )


#: Events shown in the conversation as notes between the messages.
_NOTE_TYPES = frozenset({"decision", "erasure_requested"})


def _transcript(pack: Mapping[str, Any]) -> str:
    outbox = {o["id"]: o for o in pack["outbound"]}
    items: list[str] = []
    for ev in pack["audit_events"]:
        p = ev["payload"] if isinstance(ev["payload"], dict) else {}
        t, at, seq = ev["type"], ev["created_at"], ev["seq"]
        erased = '<span class="erased">[erased]</span>'
        if t == "message_in":
            text = erased if ev["payload_erased"] else _e(p.get("text"))
            items.append(
                f'<li class="turn client" data-seq="{_e(seq)}"><div class="who">Client · '
                f'{_e(at)} · #{_e(seq)}</div><div class="text">{text}</div></li>'
            )
        elif t == "outbound_queued":
            row = outbox.get(p.get("outbox_id"), {})
            slot = f" · question on {_e(p['slot'])}" if p.get("slot") else ""
            status = _badge(row.get("status")) if row else ""
            verdict = f" verdict {_badge(row.get('verdict'))}" if row.get("verdict") else ""
            text = erased if ev["payload_erased"] else _e(p.get("text"))
            items.append(
                f'<li class="turn bot" data-seq="{_e(seq)}"><div class="who">'
                f"{_e(p.get('sender') or 'bot')} · {_e(p.get('kind'))}{slot} · {_e(at)} · "
                f'#{_e(seq)} · {status}{verdict}</div><div class="text">{text}</div></li>'
            )
        elif t in _NOTE_TYPES or t.startswith(("outbound_", "officer_")):
            items.append(
                f'<li class="turn note" data-seq="{_e(seq)}"><div class="who">{_e(t)} · '
                f"{_e(at)} · #{_e(seq)}</div>{_event_body(ev)}</li>"
            )
    if not items:
        return "<p>No messages.</p>"
    return '<ol class="turns">' + "".join(items) + "</ol>"


def _decisions(rows: list[dict[str, Any]], *, empty: str) -> str:
    return _table(
        ("time", "inquiry", "outcome", "rules", "reasons", "ruleset", "decider", "officer"),
        (
            (
                _e(d.get("at")),
                _e(d.get("inquiry_id")),
                _badge(d.get("outcome"))
                + (f" (was {_e(d['previous'])})" if d.get("previous") else ""),
                _e(
                    ", ".join(map(str, d["rules"])) if isinstance(d["rules"], list) else d["rules"]
                ),
                _list(d.get("reasons")),
                _e(d.get("ruleset")),
                _e(d.get("decider")),
                _e(d.get("officer_id") or "")
                + (f"<br>reason: {_e(d['reason'])}" if d.get("reason") else ""),
            )
            for d in rows
        ),
        empty=empty,
    )


def _officer_actions(pack: Mapping[str, Any]) -> str:
    """Every officer event in the chain: decisions, approvals, questions, refused attempts."""
    rows = []
    for ev in pack["audit_events"]:
        if str(ev["type"]).startswith("officer_"):
            rows.append((_e(ev["seq"]), _e(ev["created_at"]), _e(ev["type"]), _event_body(ev)))
    if not rows:
        return ""
    return "<h3>Officer actions in the audit trail</h3>" + _table(
        ("seq", "time", "type", "what happened"), rows, empty=""
    )


def _outbound(pack: Mapping[str, Any]) -> str:
    events = {ev["seq"]: ev for ev in pack["audit_events"]}
    rows = []
    for o in pack["outbound"]:
        trail = []
        for seq in o["audit_seqs"]:
            ev = events[seq]
            p = ev["payload"] if isinstance(ev["payload"], dict) else {}
            why = _why(p)
            trail.append(
                f"#{_e(seq)} {_e(ev['type'])} {_e(ev['created_at'])}"
                + (f": {_e(why)}" if why else "")
            )
        rows.append(
            (
                _e(o["id"]),
                _e(o.get("created_at")),
                _e(o.get("sender")) + " · " + _e(o.get("kind")),
                f'<span class="text">{_e(o.get("text"))}</span>',
                _badge(o.get("status")),
                _badge(o.get("verdict"))
                + (f"<br>{_e(o['verdict_reason'])}" if o.get("verdict_reason") else ""),
                _e(o.get("attempts"))
                + (f"<br>sent {_e(o['sent_at'])}" if o.get("sent_at") else ""),
                "<br>".join(trail) or "-",
            )
        )
    return _table(
        ("id", "queued", "from", "text", "status", "verdict", "attempts", "audit trail"),
        rows,
        empty="No outbound messages.",
    )


def _audit_trail(pack: Mapping[str, Any]) -> str:
    first = pack["chain"]["first_break"] or {}
    rows = []
    for ev in pack["audit_events"]:
        cls = ' class="break"' if first.get("event_id") == ev["id"] else ""
        rows.append(
            f'<tr id="ev-{_e(ev["seq"])}" data-seq="{_e(ev["seq"])}" data-hash="{_e(ev["hash"])}"'
            f"{cls}><td>{_e(ev['seq'])}</td><td>{_e(ev['created_at'])}</td>"
            f"<td><strong>{_e(ev['type'])}</strong></td><td>{_event_body(ev)}</td>"
            f'<td class="hash">{_e(ev["hash"])}<br>prev {_e(ev["prev_hash"])}</td></tr>'
        )
    if not rows:
        return "<p>No audit events.</p>"
    return (
        "<table><thead><tr><th>seq</th><th>time (UTC)</th><th>type</th><th>what happened</th>"
        "<th>hash</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def _client_facts(pack: Mapping[str, Any]) -> str:
    """The client section's table."""
    c = pack["client"]
    restricted = (
        f"yes, since {c['restricted_at']} (erasure requested)" if c.get("restricted_at") else "no"
    )
    return _kv(
        [
            ("client id", c.get("id")),
            ("channel", c.get("channel")),
            ("external id", c.get("external_id")),
            ("language", c.get("language")),
            ("first contact", c.get("created_at")),
            ("last activity", c.get("last_activity_at")),
            ("processing restricted", restricted),
            ("pack generated", pack.get("generated_at")),
            ("format", pack.get("format")),
        ]
    )


def render_html(pack: Mapping[str, Any]) -> str:
    """The pack as one self-contained HTML page."""
    c = pack["client"]
    facts = _client_facts(pack)
    inquiries = _table(
        ("#", "service", "current outcome", "opened", "updated"),
        (
            (
                _e(i.get("position")),
                _e(i.get("service")),
                _badge(i.get("outcome")),
                _e(i.get("opened_at")),
                _e(i.get("updated_at")),
            )
            for i in pack["inquiries"]
        ),
        empty="No inquiry decided yet.",
    )
    messages = _table(
        ("id", "direction", "text", "platform time", "stored", "update"),
        (
            (
                _e(m.get("id")),
                _e(m.get("direction")),
                f'<span class="text">{_e(m.get("text"))}</span>',
                _e(m.get("platform_at")),
                _e(m.get("created_at")),
                _e(m.get("update_key")),
            )
            for m in pack["messages"]
        ),
        empty="No messages stored.",
    )
    other = "".join(
        f"<h3>{_e(name)}</h3>"
        + _table(
            list(rows[0]) if rows else (),
            ((_value(v) for v in r.values()) for r in rows),
            empty="No rows.",
        )
        for name, rows in pack.get("other_tables", {}).items()
    )
    title = f"Evidence pack: client {c.get('id')} ({c.get('channel')})"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body><main>"
        f"<h1>{_e(title)}</h1>"
        '<p class="sub">Records of a client-initiated contact (MiCA Art. 61): what the client '
        "said, what the firm asked and decided, and everything the firm tried to send, with "
        "the outbound gate's verdict. Times are UTC.</p>"
        f"{_chain_banner(pack['chain'])}"
        f'<section id="client"><h2>Client</h2>{facts}</section>'
        f'<section id="inquiries"><h2>Inquiries</h2>{inquiries}</section>'
        '<section id="conversation"><h2>Conversation</h2>'
        "<p>The client's words, the bot's questions and messages, decisions and gate verdicts, "
        f"in the order they were recorded.</p>{_transcript(pack)}</section>"
        '<section id="decisions"><h2>Decisions</h2>'
        f"{_decisions(pack['decisions'], empty='No decisions.')}</section>"
        '<section id="officer-decisions"><h2>Officer decisions</h2>'
        f"{_decisions(pack['officer_decisions'], empty='No officer decisions.')}"
        f"{_officer_actions(pack)}</section>"
        '<section id="outbound"><h2>Outbound attempts</h2>'
        "<p>Every message the firm queued for this client, with the gate's verdict at send "
        f"time; blocked and held ones included.</p>{_outbound(pack)}</section>"
        f'<section id="messages"><h2>Messages as stored</h2>{messages}</section>'
        + (f'<section id="other"><h2>Other records</h2>{other}</section>' if other else "")
        + '<section id="audit"><h2>Audit trail</h2><p>Every event of the client\'s hash chain, '
        "in order. Each hash covers the previous hash, the event's type, time and payload "
        f"hash.</p>{_audit_trail(pack)}</section>"
        "</main></body></html>\n"
    )
