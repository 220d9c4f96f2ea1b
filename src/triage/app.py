"""Composition root: builds the objects of the product from settings."""

from __future__ import annotations

from pathlib import Path

from triage.config import load_flow, load_profile
from triage.domain.profile import CompanyProfile
from triage.flows.engine import Engine
from triage.flows.spec import FlowSpec
from triage.geodata import load_gazetteer
from triage.settings import Settings


def build_engine(profile: CompanyProfile, flow: FlowSpec | None = None) -> Engine:
    """An engine for one company profile, with the shipped flow and the real gazetteer."""
    return Engine(flow or load_flow(), profile, load_gazetteer())


def engine_from_settings(settings: Settings) -> Engine:
    """The engine the settings describe."""
    profile = load_profile(Path(settings.company_profile))
    return build_engine(profile, load_flow(settings.flows_dir))
