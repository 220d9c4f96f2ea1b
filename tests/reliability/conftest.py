"""The reliability suite (issue 6): every test collected under tests/reliability/ is marked
`reliability`, so `pytest -m reliability` runs it alone and `-m "not reliability"` skips it.

Hypothesis profiles: `reliability-ci` (default here, 100 examples per property) and
`reliability-full` (the 10,000-example run): `TRIAGE_FUZZ_PROFILE=reliability-full`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

_HERE = Path(__file__).resolve().parent

settings.register_profile(
    "reliability-ci",
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "reliability-full",
    max_examples=10_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
#: The profile the reliability properties use (applied per test, never globally).
_PROFILE = os.environ.get("TRIAGE_FUZZ_PROFILE", "reliability-ci")
FUZZ = settings(settings.get_profile(os.environ.get("TRIAGE_FUZZ_PROFILE", "reliability-ci")))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "reliability: the attack suite of RELIABILITY.md")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.reliability)


#: Whole conversations on long texts cost ~1 s each (6 turns of up to 4,096 characters):
#: 25 in CI, 1,000 in the full profile.
CONVERSATIONS = settings(FUZZ, max_examples=25 if _PROFILE == "reliability-ci" else 1_000)
