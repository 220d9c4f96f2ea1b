"""The scenario suite of tests/scenarios/*.yaml (format v1, FORMAT.md): every expectation.

The files hold conversations the visible set does not: other wording, places, languages and
register entries, with expectations taken from DOMAIN.md as a compliance officer would decide.
They run in process through the real engine and gate (`triage.cli.simulate.run_file`), and one
file also through the `triage simulate` command.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from triage.cli.simulate import run_file
from triage.domain.profile import CompanyProfile
from triage.domain.territory import Gazetteer
from triage.flows.engine import Engine
from triage.flows.spec import FlowSpec

HERE = Path(__file__).resolve().parent
FILES = sorted(HERE.glob("*.yaml"))
SPECS = {f.name: yaml.safe_load(f.read_text(encoding="utf-8")) for f in FILES}
CASES = [(name, sc) for name, spec in SPECS.items() for sc in spec["scenarios"]]
PROCEED = {"SERVE_EU_RESTRICTED", "HANDOFF_NON_EU"}


def _want(value: Any) -> Any:
    # YAML 1.1 reads an unquoted NO (Norway) as false; a scenario always means the country.
    return "NO" if value is False else value


@pytest.fixture(scope="module")
def results(flow: FlowSpec, gazetteer: Gazetteer) -> dict[tuple[str, str], dict[str, Any]]:
    def engine_for(profile: CompanyProfile) -> Engine:
        return Engine(flow, profile, gazetteer)

    out: dict[tuple[str, str], dict[str, Any]] = {}
    for file in FILES:
        for result in run_file(file, engine_for):
            out[(file.name, result["id"])] = result
    return out


@pytest.mark.parametrize(("file", "sc"), CASES, ids=[f"{n}:{sc['id']}" for n, sc in CASES])
def test_scenario(file: str, sc: dict[str, Any], results: dict[tuple[str, str], Any]) -> None:
    got = results[(file, sc["id"])]
    exp = sc["expect"]
    assert got["decision"] == exp["decision"], got["reasons"]
    for key in ("service", "country"):
        if key in exp:
            assert got[key] == _want(exp[key]), (key, got["reasons"])
    assert got["rules"], "every decision carries its rule ids"
    later = sc.get("later") or []
    assert len(got["later"]) == len(later)
    for i, item in enumerate(later):
        if "expect" not in item:
            continue
        if "send" in item:
            assert got["later"][i] == item["expect"], (i, item, got["transcript"][-3:])
        else:
            assert got["later"][i]["decision"] == item["expect"]["decision"], (i, item)


def test_the_bots_own_questions_always_pass_the_gate(
    results: dict[tuple[str, str], Any],
) -> None:
    stopped = [
        (key, line["text"], line.get("reason"))
        for key, result in results.items()
        for line in result["transcript"]
        if line["from"] == "bot" and line.get("kind") == "prompt" and line["verdict"] != "allowed"
    ]
    assert stopped == []
    # The suite does exercise the re-asked questions (with buttons), in Dutch among others.
    retried = Counter(
        (key, line["slot"])
        for key, result in results.items()
        for line in result["transcript"]
        if line["from"] == "bot" and line.get("slot")
    )
    assert any(n > 1 for n in retried.values())
    assert any(n > 1 and key[1] == "E10" for (key, _), n in retried.items())


def test_the_suite_covers_what_it_claims() -> None:
    ids = [sc["id"] for _, sc in CASES]
    assert len(ids) == len(set(ids)), "scenario ids are unique across files"
    assert len(ids) >= 80
    languages = Counter((sc.get("client") or {}).get("language") for _, sc in CASES)
    assert {"en", "de", "fr", "es", "it", "pt", "nl", "pl", "sv", "ru", "uk"} <= set(languages)
    decisions = Counter(sc["expect"]["decision"] for _, sc in CASES)
    assert all(decisions[d] >= 10 for d in ("SERVE_EU_RESTRICTED", "HANDOFF_NON_EU", "DECLINE"))
    assert decisions["ESCALATE"] >= 10
    sends = [i for _, sc in CASES for i in sc.get("later") or [] if "send" in i]
    assert {s["expect"] for s in sends if "expect" in s} == {"allowed", "blocked", "held"}
    assert any(isinstance(spec["company"], dict) for spec in SPECS.values())


def test_no_unsafe_outcome_in_the_suite(results: dict[tuple[str, str], Any]) -> None:
    """The headline property, counted the way ../shared/tools/score_scenarios.py counts it."""
    unsafe = []
    for file, sc in CASES:
        got, exp = results[(file, sc["id"])], sc["expect"]["decision"]
        if (exp in ("DECLINE", "ESCALATE") and got["decision"] in PROCEED) or (
            exp == "SERVE_EU_RESTRICTED" and got["decision"] == "HANDOFF_NON_EU"
        ):
            unsafe.append(sc["id"])
        for i, item in enumerate(sc.get("later") or []):
            if "send" in item and item.get("expect") in ("blocked", "held"):
                if got["later"][i] == "allowed":
                    unsafe.append(f"{sc['id']}:later[{i}]")
    assert unsafe == []


def test_the_command_runs_a_file_with_an_inline_profile() -> None:
    file = HERE / "lookback.yaml"
    proc = subprocess.run(
        [sys.executable, "-m", "triage.cli", "simulate", str(file), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert [r["id"] for r in lines] == [sc["id"] for sc in SPECS[file.name]["scenarios"]]
    assert {r["id"]: r["decision"] for r in lines} == {
        sc["id"]: sc["expect"]["decision"] for sc in SPECS[file.name]["scenarios"]
    }
