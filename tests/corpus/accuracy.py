"""`make accuracy`: exact and unsafe rates of the real engine and gate on the scenario sets.

Three sets, kept apart on purpose (tests/corpus/README.md):
- visible: ../shared/scenarios/visible.yaml (the product's contract);
- tuned: tests/corpus/*/tune.yaml and tests/scenarios/*.yaml (read while improving classifiers);
- frozen: tests/corpus/*/frozen.yaml, written blind and frozen before any tuning: never read
  to improve the product, only measured. Its figures are the estimate for unseen conversations.

Scoring is that of ../shared/tools/score_scenarios.py: a decision is exact when it equals the
expected one; unsafe when a proceed outcome stands where DECLINE or ESCALATE was expected, or
HANDOFF_NON_EU where SERVE_EU_RESTRICTED was; a later send is unsafe when it was allowed where
blocked or held was expected. Per language (the scenario's `lang`) and per rule class (`rule`).

usage: python -m tests.corpus.accuracy [--report ACCURACY.md] [--misses SET] [--quiet]
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from triage.app import build_engine
from triage.cli.simulate import run_file
from triage.settings import read_yaml

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "corpus"
PROCEED = {"SERVE_EU_RESTRICTED", "HANDOFF_NON_EU"}


def _visible() -> list[Path]:
    shared = ROOT.parent / "shared" / "scenarios" / "visible.yaml"
    return [shared if shared.exists() else ROOT / "examples" / "visible.yaml"]


SETS = {
    "visible": _visible,
    "tuned": lambda: [
        *sorted(CORPUS.glob("*/tune.yaml")),
        *sorted(ROOT.glob("tests/scenarios/*.y*ml")),
    ],
    "frozen": lambda: sorted(CORPUS.glob("*/frozen.yaml")),
}


def unsafe_decision(expected: str | None, got: str | None) -> bool:
    if expected in ("DECLINE", "ESCALATE") and got in PROCEED:
        return True
    return expected == "SERVE_EU_RESTRICTED" and got == "HANDOFF_NON_EU"


@dataclass
class Tally:
    """Exact and unsafe counts for first decisions and later verdicts."""

    n: int = 0
    exact: int = 0
    unsafe: int = 0
    later_n: int = 0
    later_exact: int = 0
    later_unsafe: int = 0
    misses: list[str] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        self.n += other.n
        self.exact += other.exact
        self.unsafe += other.unsafe
        self.later_n += other.later_n
        self.later_exact += other.later_exact
        self.later_unsafe += other.later_unsafe
        self.misses.extend(other.misses)

    def row(self) -> str:
        first = f"{self.exact}/{self.n} ({_pct(self.exact, self.n)})"
        later = f"{self.later_exact}/{self.later_n} ({_pct(self.later_exact, self.later_n)})"
        return f"| {first} | {self.unsafe} | {later} | {self.later_unsafe} |"


def _pct(a: int, b: int) -> str:
    return f"{100 * a / b:.1f} %" if b else "-"


def _country(value: Any) -> Any:
    # YAML 1.1 reads an unquoted NO (Norway) as false; the scenario means the country.
    return "NO" if value is False else value


def score(sc: dict[str, Any], got: dict[str, Any], where: str) -> Tally:
    """One scenario's tally, with a line per miss."""
    t = Tally(n=1)
    exp = sc["expect"]
    sid = sc["id"]
    if got["decision"] == exp["decision"]:
        t.exact = 1
    else:
        bad = unsafe_decision(exp["decision"], got["decision"])
        t.unsafe = int(bad)
        t.misses.append(
            f"{where} {sid}: decision {got['decision']} expected {exp['decision']}"
            f"{'  UNSAFE' if bad else ''}  reasons={got['reasons']}"
        )
    for i, item in enumerate(sc.get("later") or []):
        if "expect" not in item:
            continue
        t.later_n += 1
        g = got["later"][i] if i < len(got["later"]) else None
        e = item["expect"]
        if "send" in item:
            if g == e:
                t.later_exact += 1
                continue
            bad = e in ("blocked", "held") and g == "allowed"
            text = str(item["send"].get("text", ""))[:70]
            msg = f"{where} {sid}: later[{i}] send -> {g} expected {e}"
            reason = _reason(got, item["send"])
        else:
            gd = g.get("decision") if isinstance(g, dict) else None
            if gd == e.get("decision"):
                t.later_exact += 1
                continue
            bad = unsafe_decision(e.get("decision"), gd)
            text = str(item["client"])[:70]
            msg = f"{where} {sid}: later[{i}] client -> {gd} expected {e.get('decision')}"
            reason = ""
        t.later_unsafe += int(bad)
        t.misses.append(f"{msg}{'  UNSAFE' if bad else ''}  ({text}) {reason}")
    return t


def _reason(got: dict[str, Any], send: dict[str, Any]) -> str:
    for entry in reversed(got.get("transcript", [])):
        if entry.get("text") == send.get("text"):
            return str(entry.get("reason", ""))
    return ""


def run_set(files: list[Path]) -> tuple[Tally, dict[str, Tally], dict[str, Tally]]:
    """Run every scenario of the files; totals, per language and per rule class."""
    total = Tally()
    by_lang: dict[str, Tally] = defaultdict(Tally)
    by_rule: dict[str, Tally] = defaultdict(Tally)
    for file in files:
        spec = read_yaml(file)
        scenarios = {sc["id"]: sc for sc in spec["scenarios"]}
        where = file.relative_to(ROOT) if file.is_relative_to(ROOT) else file.name
        for got in run_file(file, build_engine):
            sc = scenarios[got["id"]]
            t = score(sc, got, str(where))
            lang = str(sc.get("lang") or (sc.get("client") or {}).get("language") or "?")
            total.add(t)
            by_lang[lang].add(t)
            by_rule[str(sc.get("rule") or "?")].add(t)
    return total, by_lang, by_rule


HEADER = (
    "| {key} | exact first decisions | unsafe | exact later verdicts | unsafe later |\n"
    "|---|---|---|---|---|"
)


def table(title: str, key: str, rows: dict[str, Tally]) -> str:
    lines = [f"#### {title}", "", HEADER.format(key=key)]
    lines += [f"| {k} {v.row()}" for k, v in sorted(rows.items())]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--report", type=Path, help="write the tables to this Markdown file")
    ap.add_argument("--misses", action="append", default=[], help="print the misses of a set")
    ap.add_argument("--sets", default="visible,tuned,frozen")
    args = ap.parse_args(argv)
    out: list[str] = []
    summary = [
        "| set | exact first decisions | unsafe | exact later verdicts | unsafe later |",
        "|---|---|---|---|---|",
    ]
    for name in args.sets.split(","):
        files = SETS[name]()
        if not files:
            continue
        total, by_lang, by_rule = run_set(files)
        summary.append(f"| {name} {total.row()}")
        out += [f"### {name} ({len(files)} files)", ""]
        out += [table("by language", "language", by_lang), ""]
        out += [table("by rule class", "rule class", by_rule), ""]
        if name in args.misses:
            print("\n".join(total.misses))
    text = "\n".join(["## Summary", "", *summary, "", *out])
    print(text)
    if args.report:
        args.report.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
