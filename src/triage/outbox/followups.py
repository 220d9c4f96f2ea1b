"""Follow-up sequences: configuration (flows/followups.yaml), queued when a lead is handed off.

`followups_after_turn` runs inside `ConversationStore.handle`, in the turn's transaction: a
decision with the rule's `after_outcome` queues the follow-up rows with `due_at` in the future,
committed with the decision itself. Two checks keep EU/EEA and undecided clients free of them:
the file may only name HANDOFF_NON_EU, and the gate is asked before the row is queued, with the
client's facts after the turn. The dispatcher asks the gate again when the row is due.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlmodel.ext.asyncio.session import AsyncSession

from triage.domain.codes import MessageKind, Outcome, Sender, Verdict
from triage.domain.gate import OutboundMessage, RecipientFacts, judge
from triage.domain.profile import CompanyProfile
from triage.outbox.row import OutboxRow
from triage.outbox.rows import CANCEL_CONDITIONS
from triage.settings import DEFAULT_FLOWS_DIR, ConfigError, read_yaml
from triage.store.models import Outbox

DEFAULT_FOLLOWUPS = DEFAULT_FLOWS_DIR / "followups.yaml"
DEFAULT_LANGUAGE = "en"

#: The only outcome after which the firm may write first (DESIGN.md: outbound unrestricted).
FOLLOW_UP_OUTCOMES = frozenset({Outcome.HANDOFF_NON_EU})

_DELAY = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_ID = re.compile(r"^[a-z0-9_]{1,40}$")


@dataclass(frozen=True)
class FollowUpRule:
    """One step of a follow-up sequence."""

    id: str
    after_outcome: Outcome
    delay: timedelta
    kind: MessageKind
    #: A cancel condition checked at send time (see `triage.outbox.rows.CANCEL_CONDITIONS`).
    unless: str | None
    #: Text per language code; always has DEFAULT_LANGUAGE.
    texts: Mapping[str, str]

    def text(self, language: str | None, *, firm: str) -> str:
        """The text in `language`, or in English when there is none in it."""
        template = self.texts.get(language or "") or self.texts[DEFAULT_LANGUAGE]
        return template.format(firm=firm)


def parse_delay(value: object) -> timedelta:
    """ "3d", "12h", "30m", "45s" -> a positive timedelta."""
    m = _DELAY.match(str(value).strip())
    if not m or float(m.group(1)) <= 0:
        raise ValueError(f"delay {value!r} must look like 3d, 12h, 30m or 45s")
    return timedelta(**{_UNITS[m.group(2)]: float(m.group(1))})


def _rule(item: object, where: str) -> FollowUpRule:
    if not isinstance(item, Mapping):
        raise ConfigError(f"{where}: must be a mapping")

    def need(key: str) -> object:
        if key not in item or item[key] in (None, ""):
            raise ConfigError(f"{where}: {key} is required")
        return item[key]

    rule_id = str(need("id"))
    if not _ID.match(rule_id):
        raise ConfigError(f"{where}: id {rule_id!r}: use 1-40 lowercase letters, digits or _")
    try:
        outcome = Outcome(str(need("after_outcome")))
    except ValueError:
        raise ConfigError(f"{where}: after_outcome: not an outcome") from None
    if outcome not in FOLLOW_UP_OUTCOMES:
        raise ConfigError(
            f"{where}: after_outcome {outcome.value}: only HANDOFF_NON_EU may be followed up; "
            "writing first to an EU/EEA or undecided client is solicitation"
        )
    try:
        delay = parse_delay(need("delay"))
        kind = MessageKind(str(need("kind")))
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    unless = item.get("unless")
    if unless is not None and unless not in CANCEL_CONDITIONS:
        known = ", ".join(sorted(CANCEL_CONDITIONS))
        raise ConfigError(f"{where}: unless {unless!r} is not a known condition ({known})")
    texts = need("text")
    if not isinstance(texts, Mapping) or DEFAULT_LANGUAGE not in texts:
        raise ConfigError(
            f"{where}: text must map language codes to texts, with {DEFAULT_LANGUAGE}"
        )
    clean: dict[str, str] = {}
    for lang, text in texts.items():
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(f"{where}: text.{lang} is empty")
        try:
            text.format(firm="")
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"{where}: text.{lang}: only {{firm}} may be filled in ({exc})"
            ) from None
        clean[str(lang)] = text
    return FollowUpRule(rule_id, outcome, delay, kind, unless, clean)


def parse_followups(doc: object, *, source: str) -> tuple[FollowUpRule, ...]:
    """Validate a followups.yaml document; errors name the file and the entry."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("followups"), list):
        raise ConfigError(f"{source}: a mapping with a 'followups' list is required")
    if doc.get("version", 1) != 1:
        raise ConfigError(f"{source}: version: only version 1 is supported")
    rules = tuple(
        _rule(item, f"{source}: followups[{i}]") for i, item in enumerate(doc["followups"])
    )
    ids = [r.id for r in rules]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ConfigError(f"{source}: ids must be unique: {', '.join(dupes)}")
    return rules


@lru_cache(maxsize=8)
def load_followups(path: Path = DEFAULT_FOLLOWUPS) -> tuple[FollowUpRule, ...]:
    """Read and validate a followups.yaml file (cached per path)."""
    return parse_followups(read_yaml(path), source=str(path))


_OUTBOX = Outbox.__table__  # type: ignore[attr-defined]


def followup_dedupe_key(rule_id: str, *, client_id: int, inquiry: int) -> str:
    """One follow-up per rule, client and inquiry, however often the decision is re-made."""
    return f"followup:{rule_id}:client:{client_id}:inquiry:{inquiry}"


async def followups_after_turn(
    session: AsyncSession,
    *,
    client_id: int,
    channel: str,
    decided: Sequence[tuple[int, Outcome]],
    facts: RecipientFacts,
    language: str | None,
    profile: CompanyProfile,
    rules: Sequence[FollowUpRule],
    now: datetime,
    context: Mapping[str, Any] | None = None,
) -> list[OutboxRow]:
    """The follow-up rows a turn's decisions call for, not yet queued (the turn queues them).

    `decided` holds the (inquiry, outcome) of each decision the turn made; `facts` are the
    client's facts after the turn. Runs inside the turn's transaction with the client row
    locked, so the check for an already-queued follow-up cannot race with another turn of the
    same client.
    """
    if not rules or not decided:
        return []
    context = dict(context or {})
    candidates: list[OutboxRow] = []
    for inquiry, outcome in decided:
        for rule in rules:
            if outcome is not rule.after_outcome:
                continue
            text = rule.text(language, firm=profile.display)
            due = now + rule.delay
            msg = OutboundMessage(Sender.SCHEDULER, rule.kind, text, due)
            if judge(msg, facts, profile).verdict is not Verdict.ALLOWED:
                continue
            key = followup_dedupe_key(rule.id, client_id=client_id, inquiry=inquiry)
            candidates.append(
                OutboxRow(
                    dedupe_key=key,
                    client_id=client_id,
                    channel=channel,
                    kind=rule.kind.value,
                    sender=Sender.SCHEDULER.value,
                    text=text,
                    due_at=due,
                    created_at=now,
                    unless=rule.unless,
                    context=context,
                )
            )
    if not candidates:
        return []
    keys = [row.dedupe_key for row in candidates]
    conn = await session.connection()
    found = await conn.execute(select(_OUTBOX.c.dedupe_key).where(_OUTBOX.c.dedupe_key.in_(keys)))
    queued = set(found.scalars().all())
    fresh: list[OutboxRow] = []
    for row in candidates:
        if row.dedupe_key not in queued:
            queued.add(row.dedupe_key)
            fresh.append(row)
    return fresh
