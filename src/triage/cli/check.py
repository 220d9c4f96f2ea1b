"""`triage check`: is this installation ready to run? Every problem with its fix.

It validates the settings, the company profile, the flow files, and reaches the database. `triage
run` runs the same checks first and refuses to start while any of them fails.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import yaml

from triage.settings import (
    ConfigError,
    Settings,
    SettingsError,
    load_flow,
    load_profile,
    load_settings,
)


@dataclass(frozen=True)
class Check:
    """One check: what was checked, whether it passed, and the detail or the fix."""

    name: str
    ok: bool
    detail: str


#: The database URLs the product runs on, as the fix for a URL it cannot use.
URL_FORMS = "postgresql+psycopg://USER:PASSWORD@HOST:5432/DB or sqlite+aiosqlite:///PATH/triage.db"


def _url_problem(url: str) -> str | None:
    """Why a database URL cannot be used at all (before trying to connect), or None."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return f"TRIAGE_DATABASE_URL: not a database URL; use {URL_FORMS}"
    if parsed.get_backend_name() not in ("postgresql", "sqlite"):
        return (
            f"TRIAGE_DATABASE_URL: {parsed.get_backend_name()} is not supported; use {URL_FORMS}"
        )
    if parsed.get_backend_name() == "sqlite":
        if parsed.get_driver_name() != "aiosqlite":
            return f"TRIAGE_DATABASE_URL: SQLite needs the async driver; use {URL_FORMS}"
        path = parsed.database
        if path and path != ":memory:" and not path.startswith("file:"):
            folder = Path(path).resolve().parent
            if not folder.is_dir():
                return (
                    f"TRIAGE_DATABASE_URL: the folder {folder} of the SQLite file does not "
                    "exist; create it or fix the path"
                )
    elif parsed.get_driver_name() != "psycopg":
        return f"TRIAGE_DATABASE_URL: use the psycopg driver: {URL_FORMS}"
    return None


async def _database(url: str, timeout: float = 10.0) -> Check:
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from triage.store.db import make_engine

    problem = _url_problem(url)
    if problem:
        return Check("database", False, problem)
    parsed = make_url(url)
    safe = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        file = Path(parsed.database)
        if not file.exists():
            # Connecting would create an empty file; say where it will be created instead.
            return Check(
                "database",
                True,
                f"{safe}: no file yet; `triage db upgrade` (or `triage run`) creates it",
            )

    async def probe() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    engine = make_engine(url)
    try:
        await asyncio.wait_for(probe(), timeout)
    except Exception as exc:  # a check reports, it does not crash
        if isinstance(exc, TimeoutError):
            reason = f"no answer within {timeout:.0f} s"
        else:
            reason = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        return Check(
            "database",
            False,
            f"TRIAGE_DATABASE_URL: cannot connect to {safe} ({reason}); check the URL, that the "
            "server runs and accepts this user",
        )
    finally:
        await engine.dispose()
    return Check("database", True, f"reachable: {safe}")


def _profile(path: Path) -> list[Check]:
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "file not found"
        return [
            Check(
                "company profile",
                False,
                f"TRIAGE_COMPANY_PROFILE: {path}: {what}; point it at the firm's company.yaml "
                "(examples/company.yaml shows the format)",
            )
        ]
    try:
        profile = load_profile(path)
    except ConfigError as exc:
        return [
            Check("company profile", False, f"TRIAGE_COMPANY_PROFILE: {line}")
            for line in str(exc).splitlines()
            if line.strip() and line != "invalid company profile"
        ]
    except ValueError as exc:
        # PyYAML's own constructors raise plain ValueErrors (a date like 2025-13-45).
        detail = f"TRIAGE_COMPANY_PROFILE: {_bad_value(path, exc)}"
        return [Check("company profile", False, detail)]
    return [
        Check(
            "company profile",
            True,
            f"{path}: {profile.name}, {len(profile.marketing)} register entries",
        )
    ]


def _field(path: tuple[int | str, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _unbuildable(node: yaml.Node, at: tuple[int | str, ...]) -> tuple[str, yaml.Node, str] | None:
    """The first scalar under `node` that the safe loader cannot turn into a value."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            found = _unbuildable(value, (*at, str(key.value)))
            if found:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            found = _unbuildable(item, (*at, i))
            if found:
                return found
    elif isinstance(node, yaml.ScalarNode):
        try:
            yaml.SafeLoader("").construct_object(node, deep=True)
        except (ValueError, yaml.YAMLError) as exc:
            return _field(at), node, str(exc)
    return None


def _bad_value(path: Path, exc: Exception) -> str:
    """Where in a YAML file a value is that looks like a date but is none, and the fix."""
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, yaml.YAMLError):
        root = None
    found = _unbuildable(root, ()) if root is not None else None
    if found is None:
        return f"{path}: a value cannot be read ({exc}); write dates as YYYY-MM-DD"
    field, node, why = found
    mark = node.start_mark
    where = f"at line {mark.line + 1}, column {mark.column + 1}"
    if node.tag.endswith(":timestamp"):
        return (
            f"{path}: {field}: {node.value!r} is not a valid date ({why}) {where}; write a real "
            "date as YYYY-MM-DD, e.g. 2026-01-31"
        )
    return f"{path}: {field}: {node.value!r} cannot be read ({why}) {where}; quote it or fix it"


def run_checks(settings: Settings | None = None, *, for_run: bool = True) -> list[Check]:
    """All checks; with `for_run` the settings `triage run` needs (tokens, secrets) too."""
    checks: list[Check] = []
    if settings is None:
        try:
            settings = load_settings()
        except SettingsError as exc:
            return [Check("settings", False, p) for p in exc.problems]
    problems = settings.problems_for_run() if for_run else []
    checks.extend(Check("settings", False, p) for p in problems)
    if not problems:
        checks.append(Check("settings", True, "all required settings present"))
    checks.extend(_profile(Path(settings.company_profile)))
    try:
        flow = load_flow(settings.flows_dir)
        checks.append(
            Check("flows", True, f"{len(flow.steps)} steps, languages {', '.join(flow.languages)}")
        )
    except ConfigError as exc:
        checks.append(Check("flows", False, f"TRIAGE_FLOWS_DIR: {exc}"))
    except Exception as exc:  # a check reports, it does not crash
        checks.append(
            Check(
                "flows", False, f"TRIAGE_FLOWS_DIR: {settings.flows_dir}: cannot be read ({exc})"
            )
        )
    checks.append(asyncio.run(_database(settings.database_url)))
    return checks
