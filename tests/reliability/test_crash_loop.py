"""Crash loop, CI size: `triage run` SIGKILLed 6 times at random points, then left to catch up.

The full loop (50+ runs) is `python tests/reliability/crash_loop.py --runs 50`; see
RELIABILITY.md for its figures. Set TRIAGE_CRASH_RUNS to run more here.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.reliability.crash_loop import CrashLoop


async def test_sigkill_loop_loses_nothing_and_sends_nothing_twice(tmp_path: Path) -> None:
    runs = int(os.environ.get("TRIAGE_CRASH_RUNS", "6"))
    seed = int(os.environ.get("TRIAGE_CRASH_SEED", "20261202"))
    lines: list[str] = []
    summary = await CrashLoop(tmp_path, seed=seed, log=lines.append).run(runs)
    report = summary.text() + "\n" + "\n".join(lines)
    assert summary.runs == runs, report
    assert summary.audit_breaks == 0, report
    assert not summary.consistency_errors, report
    assert summary.lost == 0, report
    assert summary.duplicates_outside_window == 0, report
    assert summary.replies_sent + summary.replies_blocked_or_held == summary.replies_expected
