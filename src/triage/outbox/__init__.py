"""The outbox: the one way out (DESIGN.md invariants 1-4).

Every outbound message is first a row of the `outbox` table, committed with its evidence in one
transaction. The dispatcher claims due rows under a lease, judges each again with the outbound
gate against the recipient's facts *at send time*, records the verdict in the client's audit
chain, and only then sends it through a `ChannelSender`.

A chat's messages leave in the order they were queued: a row waits while an earlier row of the
same chat is unfinished (a retry, pacing, another worker's send).

Delivery is **at least once**. The row is marked sent in a transaction after the send; a worker
killed between the send and that commit leaves the row `sending`, and when its lease expires
another worker judges it again and sends it again. Nothing is lost and nothing is sent twice
except in that one window (one row per killed worker, as the sends of a worker are sequential),
and when a send times out after the messenger took the message (a timeout is retried). A worker
that overruns its lease (`lease_seconds` must exceed the send timeout) may also see its row
sent by another; the second mark-sent then records an "outbound_duplicate" event.
The `dedupe_key` makes enqueueing idempotent, so a redelivered update never queues twice.

Modules:
- `senders`: the `ChannelSender` protocol, `Delivery`, `SentReceipt`, the send errors.
- `row`: `OutboxRow`, the one row type, and `queue`, the one way to write rows.
- `facts`: the recipient's facts as the last turn stored them (the outbox classifies nothing).
- `rows`: `enqueue` (the API for every other sender), `release_held`, `dead_rows`.
- `followups`: follow-up sequences from flows/followups.yaml, queued when a lead is handed off.
- `ratelimit`: token buckets (30 messages/s overall, 1/s per chat by default).
- `dispatcher`: `Dispatcher.drain_once`: claim, judge, record, send, mark.
- `scheduler`: `OutboxScheduler`, the APScheduler job that drains the outbox.
- `clock`: wall and monotonic time, injected so tests never sleep.
- `testing`: `RecordingSender` and `ManualClock`, for tests only.
"""
