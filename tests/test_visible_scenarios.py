"""The acceptance contract: `triage simulate visible.yaml --json` meets every expectation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import visible_file

TRIAGE = [sys.executable, "-m", "triage.cli"]


@pytest.fixture(scope="module")
def results() -> dict[str, dict[str, Any]]:
    proc = subprocess.run(
        [*TRIAGE, "simulate", str(visible_file()), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return {r["id"]: r for r in lines}


SPEC = yaml.safe_load(visible_file().read_text())


@pytest.mark.parametrize("sc", SPEC["scenarios"], ids=[s["id"] for s in SPEC["scenarios"]])
def test_visible_scenario(sc: dict[str, Any], results: dict[str, dict[str, Any]]) -> None:
    got = results[sc["id"]]
    exp = sc["expect"]
    assert got["decision"] == exp["decision"], got["reasons"]
    for key in ("service", "country"):
        if key in exp:
            # YAML 1.1 reads an unquoted NO (Norway) as false; the scenario means the country.
            want = "NO" if exp[key] is False and key == "country" else exp[key]
            assert got[key] == want
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


def test_output_shape(results: dict[str, dict[str, Any]]) -> None:
    r = results["V01"]
    for key in ("id", "decision", "service", "country", "rules", "reasons", "inquiries", "later"):
        assert key in r
    assert r["inquiries"][0] == {"service": "CUSTODY", "decision": "SERVE_EU_RESTRICTED"}
    assert r["inquiries"][1]["service"] == "NON_MICA"
    bot_lines = [t for t in r["transcript"] if t["from"] == "bot" and t.get("slot")]
    assert {t["slot"] for t in bot_lines} >= {"source", "residence"}
    # The bot speaks the client's language (de for V01).
    assert any("Wie" in t["text"] or "Wo" in t["text"] for t in bot_lines)


def test_malformed_file_names_file_and_scenario(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\nnow: 2026-11-25T12:00:00Z\n"
        f"company: {visible_file().parent / 'company.yaml'}\n"
        "scenarios:\n  - id: B1\n    later:\n      - send: {from: robot, text: hi}\n"
    )
    proc = subprocess.run(
        [*TRIAGE, "simulate", str(bad), "--json"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "bad.yaml" in proc.stderr and "B1" in proc.stderr and "later[0]" in proc.stderr


def test_bad_profile_in_scenario_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\ncompany: {name: X, home_country: SG, services: [CUSTARD]}\n"
        "scenarios: [{id: B2}]\n"
    )
    proc = subprocess.run(
        [*TRIAGE, "simulate", str(bad), "--json"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    assert "services[0]" in proc.stderr and "CUSTODY" in proc.stderr
