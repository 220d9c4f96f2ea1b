"""`make demo` runs the real product against the sandboxes and leaves verifiable evidence."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_the_demo_plays_every_visible_scenario_and_leaves_verifiable_evidence(
    tmp_path: Path,
) -> None:
    out = tmp_path / "demo-out"
    proc = subprocess.run(
        [sys.executable, "-m", "triage.cli", "demo", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", "HOME": str(Path.home())},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    shown = proc.stdout
    for expected in (
        "SERVE_EU_RESTRICTED",
        "HANDOFF_NON_EU",
        "DECLINE",
        "ESCALATE",
        "Lead (EU/EEA restricted)",
        "Compliance case",
        "sales reply in the Slack thread -> sent",
        "(not an officer) pressed Approve: refused",
        "approved as EU restricted",
        "audit chains: 26 checked, intact",
    ):
        assert expected in shown, expected
    pack = json.loads((out / "evidence" / "evidence.json").read_text())
    assert pack["chain"]["status"] == "intact"
    assert (out / "evidence" / "evidence.html").read_text().startswith("<!DOCTYPE html>")
    verify = subprocess.run(
        [sys.executable, "-m", "triage.cli", "audit", "verify"],
        capture_output=True,
        text=True,
        check=False,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(Path.home()),
            "TRIAGE_DATABASE_URL": f"sqlite+aiosqlite:///{out / 'triage.db'}",
        },
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
