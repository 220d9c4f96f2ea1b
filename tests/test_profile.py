"""The company profile: valid files load; each kind of mistake names file, field and fix."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from triage.domain.codes import MarketingKind, ServiceCode
from triage.domain.profile import ProfileError, parse_profile
from triage.settings import ConfigError, load_profile

from .conftest import EXAMPLE_PROFILE

BASE = yaml.safe_load(EXAMPLE_PROFILE.read_text())


def test_example_profile_loads() -> None:
    p = load_profile(EXAMPLE_PROFILE)
    assert p.home_country == "SG"
    assert ServiceCode.CUSTODY in p.services
    assert p.entry("referral") is not None
    assert p.entry("referral").kind is MarketingKind.REFERRAL  # type: ignore[union-attr]
    assert p.entry("nope") is None


def _broken(path: str, value: object) -> dict[str, object]:
    doc = copy.deepcopy(BASE)
    target = doc
    parts = path.split(".")
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target[part]
    last = parts[-1]
    if value is ...:
        del target[last]
    else:
        target[int(last) if last.isdigit() else last] = value
    return doc


@pytest.mark.parametrize(
    ("path", "value", "field", "hint"),
    [
        ("services.0", "CUSTODIAN", "services[0]", "CUSTODY"),
        ("marketing.0.start", "2026-13-01", "marketing[0].start", "YYYY-MM-DD"),
        ("marketing.1.regions", ["XX"], "marketing[1].regions", "ISO 3166-1"),
        ("marketing.3.code_pattern", "NW-[", "marketing[3].code_pattern", "regular expression"),
        ("name", ..., "name", "required"),
        ("home_country", "Singapore", "home_country", "alpha-2"),
        ("marketing.0.kind", "billboard", "marketing[0].kind", "influencer"),
        ("lookback_months", -1, "lookback_months", "greater than or equal"),
        ("close_links.0.country", "Netherlands", "close_links[0].country", "alpha-2"),
        ("marketing.0.regoins", ["EU"], "marketing[0].regoins", "unknown field"),
    ],
)
def test_each_mistake_names_field_and_fix(path: str, value: object, field: str, hint: str) -> None:
    with pytest.raises(ProfileError) as exc:
        parse_profile(_broken(path, value), source="company.yaml")
    message = str(exc.value)
    assert f"company.yaml: {field}:" in message
    assert hint in message


def test_end_before_start_is_refused() -> None:
    doc = _broken("marketing.0.end", "2026-01-01")
    with pytest.raises(ProfileError, match="before start"):
        parse_profile(doc, source="company.yaml")


def test_not_a_mapping() -> None:
    with pytest.raises(ProfileError, match="YAML mapping"):
        parse_profile(["x"], source="c.yaml")


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_profile(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: not valid YAML at line"):
        load_profile(bad)


def test_referral_pattern_matches_whole_codes_only() -> None:
    p = parse_profile(BASE, source="company.yaml")
    rx = p.entry("referral").code_regex()  # type: ignore[union-attr]
    assert rx is not None
    assert rx.search("my code is NW-7Q2K thanks")
    assert rx.search("nw-88ab")
    assert not rx.search("XNW-7Q2KZ")
