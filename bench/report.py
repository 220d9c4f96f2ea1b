"""results.json (the issue's schema, plus detail) and the table printed at the end of a run."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

#: The issue's keys; a section that failed or was skipped still has them (null).
SCHEMA: dict[str, Any] = {
    "turn": {
        "sqlite": ("turns_per_s", "p50_ms", "p99_ms"),
        "postgres": ("turns_per_s", "p50_ms", "p99_ms"),
        "baseline_aiogram": ("updates_per_s",),
        "ratio_sqlite": None,
        "ratio_postgres": None,
    },
    "e2e": {
        "polling": ("turns_per_s", "p99_ms"),
        "webhook": ("turns_per_s", "p99_ms"),
        "baseline_echo": ("updates_per_s",),
        "ratio_polling": None,
        "ratio_webhook": None,
    },
    "classify_us": {"visible_profile": None, "register_1000": None},
    "scale_p99_ms": {"10000": None, "100000": None, "1000000": None},
    "slack_ack_p99_ms": None,
    "evidence": {"verify_events_per_s": None, "export_clients_per_s": None},
    "outbox": {
        "drain_rows_per_s": None,
        "max_send_rate_per_s": None,
        "max_per_chat_rate_per_s": None,
    },
}


def _fill(value: Any, schema: Any) -> Any:
    """`value` with every schema key present (null where missing)."""
    if schema is None:
        return value
    value = dict(value) if isinstance(value, dict) else {}
    if isinstance(schema, tuple):
        for key in schema:
            value.setdefault(key, None)
        return value
    for key, sub in schema.items():
        value[key] = _fill(value.get(key), sub)
    return value


def _clean(value: Any) -> Any:
    """NaN and infinities become null (JSON has neither)."""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def assemble(header: dict[str, Any], sections: dict[str, Any]) -> dict[str, Any]:
    """The results document: the issue's keys first (always present), then the detail."""
    doc: dict[str, Any] = dict(header)
    turns = sections.get("turns") or {}
    e2e = sections.get("e2e") or {}
    cls = sections.get("classifiers") or {}
    scale = sections.get("scale") or {}
    slack = sections.get("slack") or {}
    evidence = sections.get("evidence") or {}
    outbox = sections.get("outbox") or {}
    doc["turn"] = turns
    doc["e2e"] = e2e
    doc["classify_us"] = cls
    doc["scale_p99_ms"] = dict(scale.get("p99_ms") or {})
    doc["scale"] = scale
    doc["slack_ack_p99_ms"] = slack.get("slack_ack_p99_ms")
    doc["slack"] = slack
    doc["evidence"] = evidence
    doc["outbox"] = outbox
    for key, schema in SCHEMA.items():
        doc[key] = _fill(doc.get(key), schema)
    doc["targets"] = verdicts(doc)
    return _clean(doc)


def write(doc: dict[str, Any], path: Path) -> None:
    """results.json, pretty."""
    path.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n", encoding="utf-8")


# --- targets ------------------------------------------------------------------------------------


def _get(doc: dict[str, Any], *keys: str) -> Any:
    cur: Any = doc
    for k in keys:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(k)
    return cur


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "MISSED")


def verdicts(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each target of the issue: the figure, the target and met / MISSED / n/a."""
    out: dict[str, dict[str, Any]] = {}

    def check(name: str, figure: Any, target: str, ok: bool | None) -> None:
        out[name] = {"figure": figure, "target": target, "verdict": _verdict(ok)}

    for b in ("sqlite", "postgres"):
        r = _get(doc, "turn", f"ratio_{b}")
        check(f"turn_ratio_{b}", r, ">= 0.25 of aiogram", None if r is None else r >= 0.25)
        p = _get(doc, "turn", b, "p99_ms")
        check(f"turn_p99_{b}", p, "< 20 ms", None if p is None else p < 20)
    for m in ("polling", "webhook"):
        r = _get(doc, "e2e", f"ratio_{m}")
        check(f"e2e_ratio_{m}", r, ">= 0.70 of echo bot", None if r is None else r >= 0.70)
    v = _get(doc, "classify_us", "visible_profile")
    check("classify_visible_profile_us", v, "<= 200 us", None if v is None else v <= 200)
    g = _get(doc, "classify_us", "register_1000")
    check("classify_register_1000_us", g, "<= 1000 us", None if g is None else g <= 1000)
    sizes = {k: v for k, v in (doc.get("scale_p99_ms") or {}).items() if v is not None}
    if "10000" in sizes and len(sizes) > 1:
        largest = max(sizes, key=int)
        r = round(sizes[largest] / sizes["10000"], 3)
        check(
            f"scale_p99_{largest}_vs_10000",
            r,
            "<= 1.2 (target at 1,000,000)",
            r <= 1.2,
        )
    else:
        check("scale_p99_vs_10000", None, "<= 1.2 (target at 1,000,000)", None)
    s = doc.get("slack_ack_p99_ms")
    check("slack_ack_p99_ms", s, "< 3000 ms", None if s is None else s < 3000)
    o = _get(doc, "outbox", "max_send_rate_per_s")
    check("outbox_max_send_rate", o, "<= 30 /s", None if o is None else o <= 30)
    c = _get(doc, "outbox", "max_per_chat_rate_per_s")
    check("outbox_max_per_chat_rate", c, "<= 1 /s", None if c is None else c <= 1)
    la = _get(doc, "outbox", "limiter_alone", "max_send_rate_per_s")
    check("rate_limiter_alone_max_rate", la, "<= 30 /s", None if la is None else la <= 30)
    return out


# --- the table ----------------------------------------------------------------------------------


def _fmt(value: Any, unit: str = "", digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        text = f"{value:,.{digits}f}"
    else:
        text = f"{value:,}" if isinstance(value, int) else str(value)
    return f"{text}{unit}"


def _rng(section: Any, key: str, unit: str = "", digits: int = 1) -> str:
    """'median [min-max]' when there were several runs."""
    if not isinstance(section, dict):
        return "-"
    value = section.get(key)
    sp = section.get(f"{key}_spread")
    text = _fmt(value, unit, digits)
    if isinstance(sp, dict) and len(sp.get("runs") or []) > 1:
        text += f" [{_fmt(sp['min'], '', digits)}-{_fmt(sp['max'], '', digits)}]"
    return text


def rows(doc: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(measurement, figure, target, verdict) for the table."""
    t = doc.get("targets") or {}

    def verdict(name: str) -> str:
        return str((t.get(name) or {}).get("verdict", ""))

    turn, e2e = doc.get("turn") or {}, doc.get("e2e") or {}
    out = [
        (
            "1 turn: aiogram FSM baseline",
            _rng(turn.get("baseline_aiogram"), "updates_per_s", " upd/s"),
            "",
            "",
        )
    ]
    for b in ("sqlite", "postgres"):
        sec = turn.get(b) or {}
        out.append(
            (
                f"1 turn: {b} ({turn.get('clients', '?')} clients)",
                f"{_rng(sec, 'turns_per_s', ' turns/s')}; p50 {_fmt(sec.get('p50_ms'), ' ms')}"
                f"; p99 {_fmt(sec.get('p99_ms'), ' ms')}",
                "p99 < 20 ms",
                verdict(f"turn_p99_{b}"),
            )
        )
        out.append(
            (
                f"1 turn: {b} / aiogram",
                _fmt(turn.get(f"ratio_{b}"), "", 4),
                ">= 0.25",
                verdict(f"turn_ratio_{b}"),
            )
        )
    for m in ("polling", "webhook"):
        sec = e2e.get(m) or {}
        echo = e2e.get(f"baseline_echo_{m}") or {}
        out.append(
            (
                f"2 e2e {m}: app ({e2e.get('clients', '?')} clients) / echo bot",
                f"{_rng(sec, 'turns_per_s', ' turns/s')} (p99 {_fmt(sec.get('p99_ms'), ' ms')})"
                f" / {_rng(echo, 'updates_per_s', ' upd/s')} = "
                f"{_fmt(e2e.get(f'ratio_{m}'), '', 4)}",
                ">= 0.70",
                verdict(f"e2e_ratio_{m}"),
            )
        )
    cls = doc.get("classify_us") or {}
    by = cls.get("by_classifier") or {}
    for prof, target, name in (
        ("visible_profile", "<= 200 us", "classify_visible_profile_us"),
        ("register_1000", "<= 1000 us", "classify_register_1000_us"),
    ):
        per = by.get(prof) or {}
        detail = ", ".join(
            f"{c} {_fmt((per.get(c) or {}).get('median_us'), ' us')}"
            for c in ("territory", "source", "service", "gate")
        )
        out.append(
            (
                f"3 classifiers, {prof} (median per answer)",
                f"slowest {_fmt(cls.get(prof), ' us')} ({detail})",
                target,
                verdict(name),
            )
        )
    scale = doc.get("scale") or {}
    for b in ("sqlite", "postgres"):
        sec = scale.get(b)
        if not isinstance(sec, dict):
            continue
        parts = [
            f"{int(k):,}: turn {_fmt(v.get('turn_p99_ms'), ' ms')}, gate "
            f"{_fmt(v.get('gate_p99_ms'), ' ms')}"
            for k, v in sec.items()
            if k.isdigit() and isinstance(v, dict)
        ]
        out.append((f"4 scale p99, {b}", "; ".join(parts), "", ""))
    for name, v in (doc.get("targets") or {}).items():
        if name.startswith("scale_p99"):
            out.append(
                (
                    "4 scale: p99 largest / p99 10k",
                    _fmt(v["figure"], "", 3),
                    "<= 1.2",
                    v["verdict"],
                )
            )
    slack = doc.get("slack") or {}
    for b in ("sqlite", "postgres"):
        sec = slack.get(b)
        if isinstance(sec, dict):
            officer = (sec.get("officer_opens_modal") or {}).get("p99_ms")
            refused = (sec.get("non_officer_refused") or {}).get("p99_ms")
            out.append(
                (
                    f"5 slack: {slack.get('clicks')} clicks, {b} (p99)",
                    f"officer {_fmt(officer, ' ms')}; refused {_fmt(refused, ' ms')}",
                    "< 3000 ms",
                    verdict("slack_ack_p99_ms"),
                )
            )
    ev = doc.get("evidence") or {}
    for b in ("sqlite", "postgres"):
        sec = ev.get(b)
        if isinstance(sec, dict):
            out.append(
                (
                    f"6 evidence, {b}, {_fmt(sec.get('clients'))} clients",
                    f"verify {_fmt(sec.get('verify_events_per_s'), ' events/s')}; export "
                    f"{_fmt(sec.get('export_clients_per_s'), ' clients/s')}",
                    "",
                    "",
                )
            )
    ob = doc.get("outbox") or {}
    for b in ("sqlite", "postgres"):
        sec = ob.get(f"drain_{b}")
        if isinstance(sec, dict):
            out.append(
                (f"7 outbox drain, {b}, limiter off", _rng(sec, "rows_per_s", " rows/s"), "", "")
            )
    paced = ob.get("paced") or {}
    out.append(
        (
            "7 outbox paced (defaults 30/s, 1/s per chat)",
            f"max {_fmt(ob.get('max_send_rate_per_s'))}/s overall, "
            f"{_fmt(ob.get('max_per_chat_rate_per_s'))}/s per chat "
            f"(achieved {_fmt(paced.get('achieved_rate_per_s'))}/s)",
            "<= 30, <= 1",
            f"{verdict('outbox_max_send_rate')}, {verdict('outbox_max_per_chat_rate')}",
        )
    )
    alone = ob.get("limiter_alone") or {}
    if alone:
        out.append(
            (
                "7 rate limiter alone, offered > 30/s",
                f"max {_fmt(alone.get('max_send_rate_per_s'))}/s overall, "
                f"{_fmt(alone.get('max_per_chat_rate_per_s'))}/s per chat",
                "<= 30, <= 1",
                verdict("rate_limiter_alone_max_rate"),
            )
        )
    return out


def print_table(doc: dict[str, Any], console: Console | None = None) -> None:
    """The figures of a run, one line each, with the targets."""
    console = console or Console()
    table = Table(title=f"triage benchmarks ({doc.get('mode')}) {doc.get('date')}")
    table.add_column("measurement")
    table.add_column(escape("figure (median [min-max] of runs)"))
    table.add_column("target")
    table.add_column("verdict")
    for measurement, figure, target, verdict in rows(doc):
        style = "red" if "MISSED" in verdict else ("green" if verdict.startswith("met") else "")
        shown = f"[{style}]{verdict}[/]" if style else verdict
        table.add_row(escape(measurement), escape(figure), escape(target), shown)
    console.print(table)
    console.print(f"machine: {doc.get('machine')}")
    errors = doc.get("errors") or {}
    for name, err in errors.items():
        console.print(f"[red]{name} failed:[/] {err}")
