"""Logs and metrics: one JSON event a line, and the Prometheus counters the runbook names.

Logs carry ids (client id, conversation, outbox row, update key), never message texts, names or
phone numbers: the evidence store is where personal data lives, under its retention rules.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

#: Attributes of a LogRecord that are not extra fields.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, event, and any `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Render one record."""
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            out["error"] = record.exc_info[0].__name__
            out["detail"] = str(record.exc_info[1])
        return json.dumps(out, ensure_ascii=False, default=str)


def configure_logging(fmt: str = "json", level: int = logging.INFO) -> None:
    """Send every log line to stderr, as JSON (production) or text (a terminal)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiohttp's access log would print every webhook call; our own events say what matters.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("apscheduler.scheduler").addFilter(_SkippedDrain())


class _SkippedDrain(logging.Filter):
    """A drain asked for while one runs is skipped by design (max_instances=1): not news."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in record.getMessage()


class Metrics:
    """The product's Prometheus metrics, in their own registry (one per app, so tests can
    build several apps in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.turns = Counter("triage_turns", "Client events handled (stored).", registry=r)
        self.duplicates = Counter(
            "triage_duplicate_updates", "Redelivered updates that changed nothing.", registry=r
        )
        self.decisions = Counter(
            "triage_decisions",
            "Decisions taken, by outcome and decider.",
            ["outcome", "decider"],
            registry=r,
        )
        self.gate = Counter(
            "triage_gate_verdicts",
            "Outbound gate verdicts at send time.",
            ["verdict", "kind"],
            registry=r,
        )
        self.sent = Counter("triage_messages_sent", "Messages delivered.", ["channel"], registry=r)
        self.channel_errors = Counter(
            "triage_channel_errors",
            "Errors from Telegram and Slack.",
            ["channel", "kind"],
            registry=r,
        )
        self.refused = Counter(
            "triage_refused_requests",
            "Forged, replayed or unauthorised requests refused.",
            ["source", "reason"],
            registry=r,
        )
        self.outbox_lag = Gauge(
            "triage_outbox_lag_seconds", "Age of the oldest due, unsent outbox row.", registry=r
        )
        self.outbox_dead = Gauge(
            "triage_outbox_dead_rows", "Outbox rows that failed for good.", registry=r
        )
        self.open_escalations = Gauge(
            "triage_open_escalations", "Escalated inquiries waiting for an officer.", registry=r
        )
        self.oldest_escalation = Gauge(
            "triage_oldest_escalation_age_seconds",
            "Age of the oldest open escalation.",
            registry=r,
        )

    def render(self) -> bytes:
        """The text exposition format for GET /metrics."""
        return generate_latest(self.registry)
