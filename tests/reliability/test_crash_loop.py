"""Crash loop, CI size: `triage run` SIGKILLed at random and named points, then left to catch up.

Three loops, each with its own database and sandbox (sized for the CI time budget):

- SQLite, long polling: 6 runs (random, then each named point once);
- PostgreSQL, long polling: 3 runs (needs TRIAGE_TEST_POSTGRES_URL; a fresh schema, dropped);
- SQLite, webhook: 3 runs (the sandbox redelivers until it gets a 200; every update answered
  200 must be stored).

PostgreSQL + webhook runs only as a full loop (`--db postgres --mode webhook`).

Named points are taken in turn (deterministic); which occurrence (1st-3rd) and the client
timings come from the seed. The full loops (50+ runs each) are
`python tests/reliability/crash_loop.py --runs 50 [--db postgres] [--mode webhook]`; see
RELIABILITY.md for their figures. TRIAGE_CRASH_RUNS sets the runs of every loop here,
TRIAGE_CRASH_SEED the seed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.reliability.crash_loop import POSTGRES_ENV, CrashLoop

LOOPS = [
    pytest.param(
        "sqlite",
        "polling",
        6,
        ("random", "in-turn", "after-turn-commit", "after-judge", "after-send", "after-mark"),
        id="sqlite-polling",
    ),
    pytest.param(
        "postgres",
        "polling",
        3,
        ("in-turn", "after-turn-commit", "after-send"),
        id="postgres-polling",
        marks=pytest.mark.postgres,
    ),
    pytest.param(
        "sqlite",
        "webhook",
        3,
        ("after-turn-commit", "in-turn", "after-send"),
        id="sqlite-webhook",
    ),
]


@pytest.mark.parametrize(("backend", "mode", "runs", "points"), LOOPS)
async def test_sigkill_loop_loses_nothing_and_sends_nothing_twice(
    tmp_path: Path, backend: str, mode: str, runs: int, points: tuple[str, ...]
) -> None:
    if backend == "postgres" and not os.environ.get(POSTGRES_ENV):
        pytest.skip(f"{POSTGRES_ENV} is not set")
    runs = int(os.environ.get("TRIAGE_CRASH_RUNS", str(runs)))
    seed = int(os.environ.get("TRIAGE_CRASH_SEED", "20261202"))
    lines: list[str] = []
    loop = CrashLoop(
        tmp_path, seed=seed, log=lines.append, backend=backend, mode=mode, points=points
    )
    summary = await loop.run(runs)
    report = summary.text() + "\n" + "\n".join(lines)
    assert summary.runs == runs, report
    assert summary.audit_breaks == 0, report
    assert summary.confirmed_not_stored == 0, report
    assert not summary.consistency_errors, report
    assert summary.lost == 0, report
    assert summary.duplicates_outside_window == 0, report
    assert summary.replies_sent + summary.replies_blocked_or_held == summary.replies_expected
    # Every named point was reached (a point not reached is a hook that no longer fires).
    assert not [k for k in summary.kills if "not reached" in k], report


def test_regression_b3_the_crash_loop_runs_triage_with_a_short_lease(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """B3: _run_app.py swapped DispatcherConfig's default lease for 3 s, but since the lease
    became a setting (B2) the app passes `lease_seconds=settings.outbox_lease_seconds` (60 s),
    so the crash loop ran with a 60 s lease: rows a kill left `sending` waited a minute. The
    wrapper now forces the short lease on every Dispatcher, whatever the app passes."""
    import runpy

    import triage.outbox.dispatcher as dispatcher
    from tests.reliability.crash_loop import RUNNER

    # The wrapper patches the class: monkeypatch puts the real __init__ back afterwards.
    monkeypatch.setattr(dispatcher.Dispatcher, "__init__", dispatcher.Dispatcher.__init__)
    monkeypatch.delenv("TRIAGE_CRASH_AT", raising=False)
    runpy.run_path(str(RUNNER), run_name="_run_app")
    # As TriageApp builds it: the lease from the settings (60 s by default).
    built = dispatcher.Dispatcher(
        None,  # type: ignore[arg-type]
        senders={},
        profile=None,  # type: ignore[arg-type]
        config=dispatcher.DispatcherConfig(lease_seconds=60.0),
    )
    assert (built.config.lease_seconds, built.config.send_timeout_seconds) == (3.0, 2.0)
