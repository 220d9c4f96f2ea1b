"""The company profile (format v1): the firm's register of marketing, products, close links.

It is also the product's configuration, kept by compliance, so every mistake in it must come back
as one clear error naming the file, the field and what would be valid. Parsing is pure: the caller
reads the file and passes the mapping and the file name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Any

import pycountry
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from triage.domain.codes import HUMAN_CODES, MarketingKind, ServiceCode

_SPECIAL_REGIONS = frozenset({"WORLD", "EU", "EEA"})


class ProfileError(ValueError):
    """A company profile that cannot be used, with every problem found."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = [f"{source}: {field}: {msg}" for field, msg in problems]
        super().__init__("invalid company profile\n" + "\n".join(lines))


def _valid_region(value: str) -> str:
    code = value.strip().upper()
    if code in _SPECIAL_REGIONS or code in HUMAN_CODES:
        return code
    if pycountry.countries.get(alpha_2=code) is None:
        raise ValueError(
            f"{value!r} is not a region; use an ISO 3166-1 alpha-2 code such as DE, or EU, EEA, "
            "WORLD"
        )
    return code


def _valid_country(value: str) -> str:
    code = value.strip().upper()
    if pycountry.countries.get(alpha_2=code) is None:
        raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code (e.g. SG, NL)")
    return code


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Product(_Strict):
    """A named offer of the firm, mapped to a MiCA service or NON_MICA."""

    name: str = Field(min_length=1)
    aliases: tuple[str, ...] = ()
    service: ServiceCode


class CloseLink(_Strict):
    """An entity with close links to the firm (>= 20 % of capital or votes, or control)."""

    name: str = Field(min_length=1)
    aliases: tuple[str, ...] = ()
    country: str

    @field_validator("country")
    @classmethod
    def _country(cls, value: str) -> str:
        return _valid_country(value)


class MarketingEntry(_Strict):
    """One activity in the register of everything that could reach people."""

    id: str = Field(min_length=1)
    kind: MarketingKind
    channel: str | None = None
    names: tuple[str, ...] = ()
    regions: tuple[str, ...] = ("WORLD",)
    excluded: tuple[str, ...] = ()
    start: date | None = None
    end: date | None = None
    location: str | None = None
    paid: bool = False
    code_pattern: str | None = None

    @field_validator("regions", "excluded")
    @classmethod
    def _regions(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_valid_region(v) for v in values)

    @field_validator("location")
    @classmethod
    def _location(cls, value: str | None) -> str | None:
        return None if value is None else _valid_country(value)

    @field_validator("code_pattern")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(
                f"{value!r} is not a valid regular expression ({exc}); e.g. NW-[A-Z0-9]{{4}}"
            ) from None
        return value

    def active_on(self, day: date) -> bool:
        """Whether the activity was running on a given day."""
        if self.start is not None and day < self.start:
            return False
        return self.end is None or day <= self.end

    def code_regex(self) -> re.Pattern[str] | None:
        """The referral-code pattern, matched case-insensitively as a whole word."""
        if self.code_pattern is None:
            return None
        return re.compile(rf"(?<![A-Za-z0-9]){self.code_pattern}(?![A-Za-z0-9])", re.IGNORECASE)


class CompanyProfile(_Strict):
    """The whole profile: the firm, its services, its register, and the policy knobs."""

    name: str = Field(min_length=1)
    #: How the bot names the firm to clients ("Northwind Digital"); the legal name by default.
    display_name: str | None = None
    home_country: str
    services: tuple[ServiceCode, ...] = Field(min_length=1)
    products: tuple[Product, ...] = ()
    marketing: tuple[MarketingEntry, ...] = ()
    close_links: tuple[CloseLink, ...] = ()
    geo_blocking: tuple[str, ...] = ()
    lookback_months: int = Field(default=12, ge=0, le=120)
    reply_window_hours: int = Field(default=72, ge=1, le=24 * 90)
    retention_years: int = Field(default=5, ge=5, le=30)

    @field_validator("home_country")
    @classmethod
    def _home(cls, value: str) -> str:
        return _valid_country(value)

    @field_validator("geo_blocking")
    @classmethod
    def _geo(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_valid_region(v) for v in values)

    @field_validator("marketing")
    @classmethod
    def _unique_ids(cls, entries: tuple[MarketingEntry, ...]) -> tuple[MarketingEntry, ...]:
        seen: set[str] = set()
        for entry in entries:
            if entry.id in seen:
                raise ValueError(f"marketing id {entry.id!r} is used twice; ids must be unique")
            seen.add(entry.id)
            if entry.start and entry.end and entry.end < entry.start:
                raise ValueError(f"marketing {entry.id!r}: end {entry.end} is before start")
        return entries

    @property
    def display(self) -> str:
        """The firm's name in a sentence: the display name, or the legal name without a final
        full stop (so "Northwind Digital Pte. Ltd." does not end a sentence with "..")."""
        return (self.display_name or self.name).rstrip(".").strip()

    def entry(self, entry_id: str) -> MarketingEntry | None:
        """The register entry with this id, if any."""
        return next((e for e in self.marketing if e.id == entry_id), None)


_FIXES = {
    "missing": "this field is required",
    "extra_forbidden": "unknown field; check the spelling against FORMAT.md (format v1)",
    "date_from_datetime_parsing": "write the date as YYYY-MM-DD",
    "date_parsing": "write the date as YYYY-MM-DD",
    "date_type": "write the date as YYYY-MM-DD",
    "enum": "",
    "bool_parsing": "use true or false",
    "int_parsing": "use a whole number",
}


def _field_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _problem(err: Mapping[str, Any]) -> tuple[str, str]:
    kind = str(err.get("type", ""))
    msg = str(err.get("msg", "invalid"))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if kind == "enum":
        expected = (err.get("ctx") or {}).get("expected", "")
        msg = f"{err.get('input')!r} is not valid; use one of {expected}"
    elif kind in _FIXES and _FIXES[kind]:
        got = err.get("input")
        msg = f"{_FIXES[kind]}" + (f" (got {got!r})" if kind != "missing" else "")
    return _field_path(tuple(err.get("loc", ()))), msg


def parse_profile(data: object, *, source: str) -> CompanyProfile:
    """Validate a parsed profile document; raise ProfileError naming file, field and fix."""
    if not isinstance(data, Mapping):
        raise ProfileError(source, [("(top level)", "the profile must be a YAML mapping")])
    try:
        return CompanyProfile.model_validate(dict(data))
    except ValidationError as exc:
        problems = [_problem(e) for e in exc.errors()]
        raise ProfileError(source, problems) from None
