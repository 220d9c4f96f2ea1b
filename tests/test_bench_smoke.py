"""`python -m bench --quick` runs and writes every key of the issue's results.json schema.

No timing is asserted here: speed is measured by `make bench`, never by the test suite.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SCHEMA = {
    "turn": {"sqlite", "postgres", "baseline_aiogram", "ratio_sqlite", "ratio_postgres"},
    "e2e": {"polling", "webhook", "baseline_echo", "ratio_polling", "ratio_webhook"},
    "classify_us": {"visible_profile", "register_1000"},
    "scale_p99_ms": {"10000", "100000", "1000000"},
    "evidence": {"verify_events_per_s", "export_clients_per_s"},
    "outbox": {"drain_rows_per_s", "max_send_rate_per_s", "max_per_chat_rate_per_s"},
}


def test_quick_bench_writes_the_schema(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--only",
            "classifiers,outbox",
            "--no-postgres",
            "--out",
            str(out),
            "--work-dir",
            str(tmp_path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    doc = json.loads(out.read_text())
    for key in ("machine", "date", "slack_ack_p99_ms", *SCHEMA):
        assert key in doc, key
    for key, subkeys in SCHEMA.items():
        assert subkeys <= set(doc[key]), (key, subkeys - set(doc[key]))
    for backend in ("sqlite", "postgres"):
        assert {"turns_per_s", "p50_ms", "p99_ms"} <= set(doc["turn"][backend])
    assert "updates_per_s" in doc["turn"]["baseline_aiogram"]
    assert "updates_per_s" in doc["e2e"]["baseline_echo"]
    # The items that ran produced figures, not nulls.
    assert doc["classify_us"]["visible_profile"] > 0
    assert doc["classify_us"]["register_1000"] > 0
    assert doc["outbox"]["drain_rows_per_s"] > 0
    assert doc["outbox"]["max_per_chat_rate_per_s"] >= 1
    assert doc["errors"] == {}
