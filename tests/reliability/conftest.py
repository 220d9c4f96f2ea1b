"""The reliability suite (issue 6): every test collected under tests/reliability/ is marked
`reliability`, so `pytest -m reliability` runs it alone and `-m "not reliability"` skips it.

Hypothesis profiles: `reliability-ci` (default here, a few hundred examples per property) and
`reliability-full` (the 10,000-example run): `pytest tests/reliability -p no:cacheprovider
--hypothesis-profile=reliability-full` or `TRIAGE_FUZZ_PROFILE=reliability-full`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

_HERE = Path(__file__).resolve().parent

settings.register_profile(
    "reliability-ci",
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "reliability-full",
    max_examples=10_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
if os.environ.get("TRIAGE_FUZZ_PROFILE"):
    settings.load_profile(os.environ["TRIAGE_FUZZ_PROFILE"])


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "reliability: the attack suite of RELIABILITY.md")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.reliability)
