"""`triage simulate`: run scenario files (shared/scenarios/FORMAT.md) through the real engine
and the real outbound gate, and report one JSON object per scenario.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from triage.domain.codes import MessageKind, Sender, Verdict
from triage.domain.gate import GateResult, OutboundMessage, RecipientFacts, judge
from triage.domain.profile import CompanyProfile, ProfileError, parse_profile
from triage.flows.engine import ClientEvent, ConversationState, Engine, OutboundIntent, TurnResult
from triage.settings import ConfigError, read_yaml

SLOTS_ASKED_MAX = 20
_OFFSET = re.compile(r"^\+(\d+(?:\.\d+)?)([dhm])$")
DONT_KNOW = "I don't know"


class ScenarioError(Exception):
    """A malformed scenario file: the message names the file and the scenario."""


def _as_datetime(value: object, where: str) -> datetime:
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ScenarioError(f"{where}: {value!r} is not an ISO 8601 time") from None
    else:
        raise ScenarioError(f"{where}: a time like 2026-11-25T12:00:00Z is required")
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _offset(value: object, where: str) -> timedelta:
    m = _OFFSET.match(str(value).strip())
    if not m:
        raise ScenarioError(f"{where}: at {value!r} must look like +3d, +14d or +2h")
    n, unit = float(m.group(1)), m.group(2)
    return {"d": timedelta(days=n), "h": timedelta(hours=n), "m": timedelta(minutes=n)}[unit]


@dataclass
class Conversation:
    """One simulated client talking to the engine, with the gate on every outbound message."""

    engine: Engine
    profile: CompanyProfile
    state: ConversationState
    now: datetime

    def __post_init__(self) -> None:
        self.transcript: list[dict[str, Any]] = []

    def recipient(self) -> RecipientFacts:
        """The recipient's facts at this moment, as the gate sees them (as the dispatcher)."""
        return self.engine.recipient_facts(self.state)

    def send(self, msg: OutboundMessage, slot: str | None = None) -> GateResult:
        """Judge a message at the moment of sending and record it."""
        result = judge(msg, self.recipient(), self.profile)
        entry: dict[str, Any] = {"from": msg.sender.value, "text": msg.text}
        if slot:
            entry["slot"] = slot
        entry["kind"] = msg.kind.value
        entry["verdict"] = result.verdict.value
        if result.verdict is not Verdict.ALLOWED:
            entry["reason"] = result.reason
        self.transcript.append(entry)
        return result

    def deliver(self, turn: TurnResult) -> None:
        """Send what the engine produced through the gate."""
        for intent in turn.outbound:
            self._deliver_intent(intent)

    def _deliver_intent(self, intent: OutboundIntent) -> None:
        msg = OutboundMessage(Sender.BOT, intent.kind, intent.text, self.now, reply=True)
        self.send(msg, slot=intent.slot)

    def client(self, text: str, **extra: Any) -> TurnResult:
        """The client writes a message (or /start)."""
        self.transcript.append({"from": "client", "text": text})
        kind = "start" if text.strip().lower().startswith("/start") else "message"
        event = ClientEvent(kind=kind, at=self.now, text=text, **extra)  # type: ignore[arg-type]
        turn = self.engine.handle(self.state, event)
        self.deliver(turn)
        return turn


def _load_company(spec: Mapping[str, Any], file: Path) -> CompanyProfile:
    company = spec.get("company")
    try:
        if isinstance(company, str):
            path = (file.parent / company).resolve()
            return parse_profile(read_yaml(path), source=str(path))
        if isinstance(company, Mapping):
            return parse_profile(company, source=f"{file} (inline company)")
    except ProfileError as exc:
        raise ScenarioError(str(exc)) from None
    except ConfigError as exc:
        raise ScenarioError(f"{file}: company: {exc}") from None
    raise ScenarioError(f"{file}: company: a path to a profile or an inline profile is required")


def run_file(file: Path, engine_for: Any) -> Iterator[dict[str, Any]]:
    """Run every scenario of one file. `engine_for(profile)` builds an Engine."""
    try:
        spec = read_yaml(file)
    except ConfigError as exc:
        raise ScenarioError(str(exc)) from None
    if not isinstance(spec, Mapping) or not isinstance(spec.get("scenarios"), list):
        raise ScenarioError(f"{file}: a mapping with a 'scenarios' list is required")
    if spec.get("version", 1) != 1:
        raise ScenarioError(f"{file}: version: only format version 1 is supported")
    now = _as_datetime(spec.get("now", datetime.now(UTC)), f"{file}: now")
    profile = _load_company(spec, file)
    engine = engine_for(profile)
    # Validate everything before running anything, so an error never leaves half an output.
    for i, sc in enumerate(spec["scenarios"]):
        _validate(sc, f"{file}: scenario {sc.get('id', i) if isinstance(sc, Mapping) else i}")
    for sc in spec["scenarios"]:
        yield run_scenario(sc, engine, profile, now)


def _validate(sc: object, where: str) -> None:
    if not isinstance(sc, Mapping):
        raise ScenarioError(f"{where}: must be a mapping")
    if "id" not in sc:
        raise ScenarioError(f"{where}: id is required")
    for key, typ in (
        ("client", Mapping),
        ("answers", Mapping),
        ("messages", list),
        ("later", list),
    ):
        if key in sc and sc[key] is not None and not isinstance(sc[key], typ):
            raise ScenarioError(f"{where}: {key} has the wrong type")
    client = sc.get("client") or {}
    for i, c in enumerate(client.get("crm") or []):
        if not isinstance(c, Mapping) or "date" not in c:
            raise ScenarioError(f"{where}: client.crm[{i}]: date is required")
        try:
            date.fromisoformat(str(c["date"]))
        except ValueError:
            raise ScenarioError(f"{where}: client.crm[{i}].date: use YYYY-MM-DD") from None
    for i, item in enumerate(sc.get("later") or []):
        if not isinstance(item, Mapping) or not ({"client", "send"} & set(item)):
            raise ScenarioError(f"{where}: later[{i}]: needs 'client' or 'send'")
        send = item.get("send")
        if send is not None:
            if not isinstance(send, Mapping) or "text" not in send:
                raise ScenarioError(f"{where}: later[{i}].send: text is required")
            try:
                Sender(send.get("from", "bot"))
                MessageKind(send.get("kind", "reply"))
            except ValueError as exc:
                raise ScenarioError(f"{where}: later[{i}].send: {exc}") from None
            if "at" in send:
                _offset(send["at"], f"{where}: later[{i}].send")


def run_scenario(
    sc: Mapping[str, Any], engine: Engine, profile: CompanyProfile, now: datetime
) -> dict[str, Any]:
    """Play one scenario and report it in the FORMAT.md output shape."""
    client = sc.get("client") or {}
    state = ConversationState(
        language=client.get("language"),
        phone=str(client["phone"]) if client.get("phone") else None,
        start_param=client.get("start"),
        crm=[
            {
                "channel": str(c.get("channel", "?")),
                "date": str(c["date"]),
                "note": str(c.get("note", "")),
            }
            for c in client.get("crm") or []
        ],
    )
    conv = Conversation(engine, profile, state, now)
    answers: Mapping[str, Any] = sc.get("answers") or {}
    for text in sc.get("messages") or []:
        conv.client(str(text))
    asked: dict[str, int] = {}
    for _ in range(SLOTS_ASKED_MAX):
        slot = state.pending
        if slot is None:
            break
        asked[slot] = asked.get(slot, 0) + 1
        answer = answers.get(slot)
        conv.client(str(answer) if answer is not None and asked[slot] == 1 else DONT_KNOW)
    # The scenario's own decision is the first inquiry's decision when the intake ends; what
    # happens later is reported item by item (a later fact may re-open it).
    first = replace(state.inquiries[0]) if state.inquiries else None
    later_out: list[Any] = []
    for item in sc.get("later") or []:
        if "client" in item:
            before = len(state.inquiries)
            conv.client(str(item["client"]))
            if len(state.inquiries) > before:
                later_out.append({"decision": state.inquiries[-1].outcome, "opened": True})
            elif state.inquiries:
                later_out.append({"decision": state.inquiries[-1].outcome, "opened": False})
            else:
                later_out.append({"decision": "none", "opened": False})
        else:
            send = item["send"]
            if "at" in send:
                conv.now = conv.now + _offset(send["at"], "at")
            msg = OutboundMessage(
                sender=Sender(send.get("from", "bot")),
                kind=MessageKind(send.get("kind", "reply")),
                text=str(send["text"]),
                at=conv.now,
                reply=bool(send.get("reply", False)),
            )
            later_out.append(conv.send(msg).verdict.value)
    return {
        "id": sc["id"],
        "decision": first.outcome if first else None,
        "service": first.service if first else None,
        "country": first.country if first else None,
        "rules": list(first.rules) if first else [],
        "reasons": list(first.reasons) if first else [],
        "inquiries": [{"service": i.service, "decision": i.outcome} for i in state.inquiries],
        "final": {"decision": state.inquiries[0].outcome if state.inquiries else None},
        "later": later_out,
        "transcript": conv.transcript,
    }
