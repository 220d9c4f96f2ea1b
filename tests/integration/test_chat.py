"""`triage chat`: a client on Telegram, a refused salesperson and an officer on Slack."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """hi
I searched your name on Google
I live in Rome
custody
maybe
:as U0SALESREP approve_eu looks fine
:officer approve_eu Client confirmed by phone it was an organic search
:sales Custody costs 0.2 percent a year.
:slack
:quit
"""


def test_chat_plays_client_sales_and_officer(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "triage.cli", "chat", "--out", str(tmp_path)],
        input=SCRIPT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "250", "HOME": str(Path.home())},
    )
    out = proc.stdout
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "A colleague needs to review your request" in out  # "maybe" escalated
    assert "U0SALESREP refused" in out
    assert "Compliance case (decided SERVE_EU_RESTRICTED)" in out
    assert "sales reply -> sent" in out
    assert "bot: Custody costs 0.2 percent a year." in out
