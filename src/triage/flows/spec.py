"""The intake flow as data: steps and prompts per language, parsed from flows/*.yaml.

Parsing is pure; `triage.settings` reads the files and passes the documents in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

SLOTS = ("source", "residence", "service", "prior_contact", "referral")
_CONDITIONS = {None, "before_serving_eu", "link_mentioned"}
_REQUIRED_PROMPTS = (
    "welcome",
    "source",
    "source_retry",
    "residence",
    "residence_retry",
    "service",
    "service_retry",
    "prior_contact",
    "referral",
    "outcome_HANDOFF_NON_EU",
    "outcome_SERVE_EU_RESTRICTED",
    "outcome_DECLINE",
    "outcome_ESCALATE",
    "new_inquiry",
    "help",
    "privacy",
    "erasure",
)


class FlowError(ValueError):
    """A flow definition that cannot be run, naming the file and the field."""


@dataclass(frozen=True)
class Step:
    """Ask for one slot."""

    slot: str
    required: bool = False
    when: str | None = None
    retry_buttons: tuple[str, ...] = ()


@dataclass(frozen=True)
class FlowSpec:
    """The steps of a flow and its prompts by language."""

    steps: tuple[Step, ...]
    prompts: Mapping[str, Mapping[str, str]]
    default_language: str = "en"
    languages: tuple[str, ...] = field(default=())

    def step(self, slot: str) -> Step:
        """The step that asks for a slot."""
        for step in self.steps:
            if step.slot == slot:
                return step
        raise KeyError(slot)

    def text(self, key: str, language: str | None, **values: object) -> str:
        """A prompt in the client's language, falling back to the default language."""
        lang = (language or "").split("-")[0].lower()
        table = self.prompts.get(lang) or self.prompts[self.default_language]
        template = table.get(key) or self.prompts[self.default_language][key]
        try:
            return template.format(**values)
        except (KeyError, IndexError):
            return template

    def supports(self, language: str | None) -> bool:
        """Whether prompts exist in this language."""
        return (language or "").split("-")[0].lower() in self.prompts


def parse_flow(
    doc: object, prompts: Mapping[str, object], *, source: str = "flows/intake.yaml"
) -> FlowSpec:
    """Validate a flow document and its prompt tables (language -> mapping)."""
    if not isinstance(doc, Mapping):
        raise FlowError(f"{source}: the flow must be a YAML mapping")
    raw_steps = doc.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise FlowError(f"{source}: steps: a non-empty list of steps is required")
    steps: list[Step] = []
    for i, raw in enumerate(raw_steps):
        if not isinstance(raw, Mapping) or raw.get("slot") not in SLOTS:
            raise FlowError(f"{source}: steps[{i}].slot: must be one of {', '.join(SLOTS)}")
        when = raw.get("when")
        if when not in _CONDITIONS:
            raise FlowError(
                f"{source}: steps[{i}].when: {when!r} is unknown; use before_serving_eu or "
                "link_mentioned"
            )
        buttons = raw.get("retry_buttons") or ()
        if isinstance(buttons, str):
            buttons = (buttons,)
        steps.append(
            Step(
                slot=str(raw["slot"]),
                required=bool(raw.get("required", False)),
                when=when,
                retry_buttons=tuple(str(b) for b in buttons),
            )
        )
    default = str(doc.get("default_language", "en"))
    tables: dict[str, dict[str, str]] = {}
    for lang, table in prompts.items():
        if not isinstance(table, Mapping):
            raise FlowError(f"flows/prompts/{lang}.yaml: must be a mapping of prompt keys")
        tables[lang] = {str(k): str(v) for k, v in table.items()}
    if default not in tables:
        raise FlowError(f"{source}: default_language: no prompts/{default}.yaml found")
    missing = [k for k in _REQUIRED_PROMPTS if k not in tables[default]]
    if missing:
        raise FlowError(f"flows/prompts/{default}.yaml: missing keys: {', '.join(missing)}")
    return FlowSpec(tuple(steps), tables, default, tuple(sorted(tables)))
