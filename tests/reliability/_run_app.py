"""`triage run`, exactly, with a short outbox lease (for the crash loop).

    python tests/reliability/_run_app.py      # environment as for `triage run`

The default lease is 120 s and not a setting, so after a SIGKILL mid-drain a restarted worker
waits up to two minutes before it takes a crashed worker's rows over. The crash loop would spend
its time waiting; this wrapper swaps in the same DispatcherConfig with lease_seconds=3 and
send_timeout_seconds=2, then runs the real CLI (`triage.cli.main` with `run`). Nothing else
differs from production.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import triage.outbox.dispatcher as dispatcher


@dataclass(frozen=True)
class ShortLease(dispatcher.DispatcherConfig):
    lease_seconds: float = 3.0
    send_timeout_seconds: float = 2.0


dispatcher.DispatcherConfig = ShortLease  # type: ignore[misc]

if __name__ == "__main__":
    from triage.cli import main

    sys.argv = ["triage", "run"]
    main()
