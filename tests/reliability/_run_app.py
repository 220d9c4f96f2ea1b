"""`triage run`, exactly, with a short outbox lease and optional kills at named points.

    python tests/reliability/_run_app.py      # environment as for `triage run`

Test code, not product code: it wraps the real CLI (`triage.cli.main` with `run`) and changes
two things from the outside, without any hook in the product.

1. The outbox lease. A restarted worker takes a crashed worker's rows over only when their
   lease expires (60 s by default, and TRIAGE_OUTBOX_LEASE_SECONDS must exceed the 30 s send
   timeout), so the crash loop would spend its time waiting. Every Dispatcher built here gets
   its config with lease_seconds=3 and send_timeout_seconds=2, whatever the app passes.

2. Kills at named points. `TRIAGE_CRASH_AT=<point>:<n>` makes the process SIGKILL itself at
   the n-th time it reaches <point> (after writing "<point> <n>" to the file named by
   TRIAGE_CRASH_MARK, so the crash loop can tell a self-kill from its own kill):

   - `in-turn`: the turn's transaction has run every statement (client, update key, message,
     evidence, outbox rows, state) and is about to COMMIT;
   - `after-turn-commit`: the turn is committed; not yet confirmed to Telegram (polling: the
     offset has not moved past it; webhook: not yet answered 200);
   - `after-judge`: the gate's `allowed` verdict for an outbox row is committed; not yet sent;
   - `after-send`: Telegram accepted the message (TelegramSender.send returned); the row is
     not yet marked sent (the documented at-least-once window);
   - `after-mark`: the `outbound_sent` receipt and the row's `sent` status are committed.

   The mark file also names what the point was reached for (JSON: the turn's update `ref`, or
   the outbox row's `outbox_id`, read from the audit events' payloads), so the crash loop can
   check in the database that the kill landed where it says. Since the marker is the audit
   event, not a function, a point keeps working when the dispatcher merges transactions (the
   mark of one row committed with the verdict of the next: after-mark and after-judge at the
   same commit).

   The database points are found by watching the SQL the product runs (SQLAlchemy engine and
   pool events: an INSERT into audit_event of a `message_in`, `outbound_allowed` or
   `outbound_sent` event marks the transaction; COMMIT and the connection's return to the pool
   after a commit are the moments), so they survive any refactoring of the store or the
   dispatcher that keeps the audit trail. `after-send` wraps the Telegram sender's `send`, the
   outbox's channel interface.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import signal
import sys
from collections.abc import Iterator
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool

import triage.channels.telegram as telegram
import triage.outbox.dispatcher as dispatcher

LEASE_SECONDS = 3.0
SEND_TIMEOUT_SECONDS = 2.0

CRASH_ENV = "TRIAGE_CRASH_AT"
MARK_ENV = "TRIAGE_CRASH_MARK"
#: The named points, in the order they come in a message's life.
POINTS = ("in-turn", "after-turn-commit", "after-judge", "after-send", "after-mark")

# --- 1. the short lease ------------------------------------------------------------------------

_dispatcher_init = dispatcher.Dispatcher.__init__


@functools.wraps(_dispatcher_init)
def _short_lease_init(self: Any, *args: Any, config: Any = None, **kwargs: Any) -> None:
    config = dataclasses.replace(
        config or dispatcher.DispatcherConfig(),
        lease_seconds=LEASE_SECONDS,
        send_timeout_seconds=SEND_TIMEOUT_SECONDS,
    )
    _dispatcher_init(self, *args, config=config, **kwargs)


dispatcher.Dispatcher.__init__ = _short_lease_init  # type: ignore[method-assign]

# --- 2. kills at named points ------------------------------------------------------------------


class _Crash:
    def __init__(self, spec: str) -> None:
        point, _, n = spec.partition(":")
        if point not in POINTS:
            raise SystemExit(f"{CRASH_ENV}: unknown point {point!r}; one of {', '.join(POINTS)}")
        self.point = point
        self.n = int(n or "1")
        self.seen = 0

    def reached(self, point: str, detail: dict[str, Any] | None = None) -> None:
        if point != self.point:
            return
        self.seen += 1
        if self.seen < self.n:
            return
        mark = os.environ.get(MARK_ENV)
        if mark:
            line = json.dumps({"point": point, "n": self.seen, **(detail or {})})
            fd = os.open(mark, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.write(fd, line.encode() + b"\n")
            os.close(fd)
        os.kill(os.getpid(), signal.SIGKILL)


_AUDIT_INSERT = re.compile(r'^\s*INSERT\s+INTO\s+"?audit_event"?', re.IGNORECASE)
#: audit event type -> (point before its COMMIT, point after it)
_MARKERS = {
    "message_in": ("in-turn", "after-turn-commit"),
    "outbound_allowed": (None, "after-judge"),
    "outbound_sent": (None, "after-mark"),
}


def _values(parameters: Any) -> Iterator[Any]:
    if isinstance(parameters, dict):
        yield from parameters.values()
    elif isinstance(parameters, list | tuple):
        for p in parameters:
            yield from _values(p)
    else:
        yield parameters


def _detail(values: list[Any]) -> dict[str, Any]:
    """What the transaction was about, from the audit payloads it inserted: the turn's update
    ref (`message_in`), the row judged `allowed`, the row marked sent (`outbound_sent`). One
    transaction may hold several (the dispatcher may mark a row with the next row's verdict)."""
    out: dict[str, Any] = {}
    for v in values:
        if not (isinstance(v, str) and v.startswith("{")):
            continue
        try:
            payload = json.loads(v)
        except ValueError:
            continue
        if not isinstance(payload, dict):
            continue
        if "update" in payload:
            out.setdefault("in-turn", {"ref": payload["update"]})
            out.setdefault("after-turn-commit", {"ref": payload["update"]})
        if "outbox_id" in payload and payload.get("verdict") == "allowed":
            out.setdefault("after-judge", {"outbox_id": payload["outbox_id"]})
        if "outbox_id" in payload and "message_id" in payload and "verdict" not in payload:
            out.setdefault("after-mark", {"outbox_id": payload["outbox_id"]})
    return out


def _install(crash: _Crash) -> None:
    @event.listens_for(Engine, "after_cursor_execute")
    def _seen(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        if not _AUDIT_INSERT.match(statement):
            return
        values = list(_values(parameters))
        found = {v for v in values if isinstance(v, str) and v in _MARKERS}
        if found:
            conn.info.setdefault("crash_marks", set()).update(found)
            detail = conn.info.setdefault("crash_detail", {})
            for k, v in _detail(values).items():
                detail.setdefault(k, v)

    @event.listens_for(Engine, "commit")
    def _commit(conn: Any) -> None:  # before the COMMIT reaches the database
        marks = conn.info.pop("crash_marks", set())
        detail = conn.info.pop("crash_detail", {})
        for m in sorted(marks):
            before = _MARKERS[m][0]
            if before:
                crash.reached(before, detail.get(before))
        # Merged: a connection may commit twice before it goes back to the pool.
        done_marks, done_detail = conn.info.get("crash_committed", (set(), {}))
        conn.info["crash_committed"] = (done_marks | marks, {**detail, **done_detail})

    @event.listens_for(Engine, "rollback")
    def _rollback(conn: Any) -> None:
        for key in ("crash_marks", "crash_detail", "crash_committed"):
            conn.info.pop(key, None)

    @event.listens_for(Pool, "checkin")
    def _checkin(dbapi_connection: Any, record: Any) -> None:  # after the COMMIT
        if record is None:
            return
        record.info.pop("crash_marks", None)
        record.info.pop("crash_detail", None)
        marks, detail = record.info.pop("crash_committed", (set(), {}))
        for m in sorted(marks):
            after = _MARKERS[m][1]
            crash.reached(after, detail.get(after))

    send = telegram.TelegramSender.send

    @functools.wraps(send)
    async def _send(self: Any, delivery: Any) -> Any:
        receipt = await send(self, delivery)
        crash.reached("after-send", {"outbox_id": delivery.outbox_id})
        return receipt

    telegram.TelegramSender.send = _send  # type: ignore[method-assign]


if os.environ.get(CRASH_ENV):
    _install(_Crash(os.environ[CRASH_ENV]))

if __name__ == "__main__":
    from triage.cli import main

    sys.argv = ["triage", "run"]
    main()
