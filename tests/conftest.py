"""Shared fixtures: the example profile, the real gazetteer, the shipped flow."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from triage.domain.profile import CompanyProfile, parse_profile
from triage.domain.territory import Gazetteer
from triage.flows.engine import Engine
from triage.flows.spec import FlowSpec
from triage.geodata import load_gazetteer
from triage.settings import load_flow

REPO = Path(__file__).resolve().parents[1]
SHARED_SCENARIOS = REPO.parent / "shared" / "scenarios"
EXAMPLE_PROFILE = REPO / "examples" / "company.yaml"


def visible_file() -> Path:
    """The visible scenarios: shared/ beside the checkout, else the copy in examples/."""
    shared = SHARED_SCENARIOS / "visible.yaml"
    return shared if shared.exists() else REPO / "examples" / "visible.yaml"


@pytest.fixture(scope="session")
def profile() -> CompanyProfile:
    return parse_profile(yaml.safe_load(EXAMPLE_PROFILE.read_text()), source=str(EXAMPLE_PROFILE))


@pytest.fixture(scope="session")
def gazetteer() -> Gazetteer:
    return load_gazetteer()


@pytest.fixture(scope="session")
def flow() -> FlowSpec:
    return load_flow()


@pytest.fixture()
def engine(flow: FlowSpec, profile: CompanyProfile, gazetteer: Gazetteer) -> Engine:
    return Engine(flow, profile, gazetteer)
