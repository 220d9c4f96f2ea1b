"""A dispatcher worker process, for the multi-process outbox tests (PostgreSQL).

    python tests/outbox/_worker.py DATABASE_URL NAME DIR [--lease S] [--latency S]

It builds the real engine and gate, then runs `OutboxScheduler` until SIGTERM. Its "Telegram"
is the table `send_log`: each send inserts (outbox_id, worker) in a transaction of its own,
committed before the dispatcher hears back, as a real messenger has the message before its
answer arrives. `--latency` is the time that answer takes: a worker killed in it has sent but not
marked, the at-least-once window the tests measure.

Protocol with the test: the worker writes DIR/NAME.ready once built, waits for DIR/go, drains.
The gazetteer comes from DIR/gazetteer.pickle (built once by the test process; building it in
each worker costs several seconds and gives the same object).
"""

from __future__ import annotations

import argparse
import asyncio
import pickle
import signal
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from triage.flows.engine import Engine
from triage.geodata import load_gazetteer
from triage.outbox.dispatcher import Dispatcher, DispatcherConfig
from triage.outbox.scheduler import OutboxScheduler
from triage.outbox.senders import Delivery, SentReceipt
from triage.settings import load_flow, load_profile
from triage.store.db import make_engine, make_sessionmaker

REPO = Path(__file__).resolve().parents[2]


class SendLog:
    """Sends by inserting into send_log (every send, duplicates too)."""

    def __init__(self, db: AsyncEngine, worker: str, latency: float) -> None:
        self._db = db
        self._worker = worker
        self._latency = latency

    async def send(self, delivery: Delivery) -> SentReceipt:
        async with self._db.begin() as conn:
            # This table stands in for Telegram's servers, not for our evidence: its commits
            # need not wait for the disk (the server is never crashed in these tests).
            await conn.execute(text("SET LOCAL synchronous_commit TO OFF"))
            await conn.execute(
                text("INSERT INTO send_log (outbox_id, worker) VALUES (:o, :w)"),
                {"o": delivery.outbox_id, "w": self._worker},
            )
        await asyncio.sleep(self._latency)
        return SentReceipt(message_id=f"{self._worker}:{delivery.outbox_id}")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("name")
    parser.add_argument("dir", type=Path)
    parser.add_argument("--lease", type=float, default=2.0)
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()

    pickled = args.dir / "gazetteer.pickle"
    gazetteer = pickle.loads(pickled.read_bytes()) if pickled.exists() else load_gazetteer()
    engine = Engine(load_flow(), load_profile(REPO / "examples" / "company.yaml"), gazetteer)
    db = make_engine(args.url)
    dispatcher = Dispatcher(
        make_sessionmaker(db),
        senders={"telegram": SendLog(db, args.name, args.latency)},
        profile=engine.profile,
        config=DispatcherConfig(
            batch_size=25,
            lease_seconds=args.lease,
            send_timeout_seconds=args.lease / 2,
            rate_limit=False,
        ),
        name=args.name,
    )
    scheduler = OutboxScheduler(dispatcher, interval_seconds=0.2)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)

    (args.dir / f"{args.name}.ready").touch()
    while not (args.dir / "go").exists() and not stop.is_set():
        await asyncio.sleep(0.01)
    scheduler.start()
    await stop.wait()
    await scheduler.shutdown()
    await db.dispose()


if __name__ == "__main__":
    asyncio.run(main())
