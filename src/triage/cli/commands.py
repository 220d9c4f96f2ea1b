"""The `triage` command."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from triage.cli.store import audit_app, db_app, evidence_app, retention_app
from triage.settings import ConfigError

app = typer.Typer(help="Reverse-solicitation triage bot (MiCA Art. 61).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(audit_app, name="audit")
app.add_typer(evidence_app, name="evidence")
app.add_typer(retention_app, name="retention")
err = Console(stderr=True)


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, markup=True)
    raise typer.Exit(code)


@app.command()
def simulate(
    files: Annotated[list[Path], typer.Argument(help="Scenario files (FORMAT.md, format v1).")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per scenario.")] = False,
) -> None:
    """Run scenario files through the real engine and gate."""
    from triage.app import build_engine
    from triage.cli.simulate import ScenarioError, run_file

    results = []
    try:
        for file in files:
            results.extend(run_file(file, build_engine))
    except (ScenarioError, ConfigError) as exc:
        _fail(str(exc))
    if as_json:
        for r in results:
            sys.stdout.write(json.dumps(r, ensure_ascii=False) + "\n")
        return
    _print_table(results)


_REPO = Path(__file__).resolve().parents[3]


def _visible_scenarios() -> Path:
    shared = _REPO.parent / "shared" / "scenarios" / "visible.yaml"
    return shared if shared.exists() else _REPO / "examples" / "visible.yaml"


SANDBOX_MISSING = (
    "the sandbox servers are test code: install them with `pip install -e ./sandbox` "
    "(or run `make demo`, which does)"
)


def _need_sandbox() -> None:
    """`triage demo` and `triage chat` run against the loopback servers of sandbox/."""
    from importlib.util import find_spec

    if find_spec("triage_sandbox") is None:
        _fail(SANDBOX_MISSING)


@app.command()
def demo(
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the database and the evidence.")
    ] = Path("demo-out"),
    offline: Annotated[
        bool, typer.Option("--engine-only", help="Only the engine and the gate, no servers.")
    ] = False,
) -> None:
    """The real product against the sandbox Telegram and Slack servers (no tokens needed)."""
    file = _visible_scenarios()
    if offline:
        from triage.app import build_engine
        from triage.cli.simulate import ScenarioError, run_file

        try:
            _print_table(list(run_file(file, build_engine)))
        except (ScenarioError, ConfigError) as exc:
            _fail(str(exc))
        return
    _need_sandbox()
    from triage.cli.demo import run_demo

    err.print(f"Playing {file} as Telegram clients against the sandbox servers ...")
    raise typer.Exit(run_demo(file, out))


@app.command()
def chat(
    language: Annotated[
        str, typer.Option("--language", help="The client's Telegram language.")
    ] = "en",
    out: Annotated[Path, typer.Option("--out", help="Folder for the database.")] = Path(
        "demo-out"
    ),
) -> None:
    """Talk to the real bot as a Telegram client; act as sales or a compliance officer."""
    _need_sandbox()
    from triage.cli.chat import run_chat
    from triage.settings import DEFAULT_PROFILE, load_profile

    try:
        profile = load_profile(DEFAULT_PROFILE)
    except ConfigError as exc:
        _fail(str(exc))
    raise typer.Exit(run_chat(profile, out, language))


def _report_checks(checks: list[object]) -> bool:
    from triage.cli.check import Check

    table = Table(title="triage check", show_lines=False)
    for col in ("", "check", "detail"):
        table.add_column(col, overflow="fold")
    ok = True
    for c in checks:
        assert isinstance(c, Check)
        ok = ok and c.ok
        table.add_row("[green]ok[/]" if c.ok else "[red]FAIL[/]", c.name, c.detail)
    err.print(table)
    return ok


@app.command()
def check(
    run: Annotated[
        bool, typer.Option("--run/--no-run", help="Also require what `triage run` needs.")
    ] = True,
) -> None:
    """Check settings, the company profile, the flows and the database; exit 2 on a problem."""
    from triage.cli.check import run_checks

    if not _report_checks(list(run_checks(for_run=run))):
        raise typer.Exit(2)


@app.command("run")
def run_cmd() -> None:
    """The production process: Telegram, Slack (when configured), the outbox, /healthz."""
    import asyncio

    from triage.app import run_until_signalled
    from triage.cli.check import run_checks
    from triage.observability import configure_logging
    from triage.settings import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as exc:
        _fail("invalid settings:\n" + str(exc))
    checks = run_checks(settings, for_run=True)
    if not all(c.ok for c in checks):
        _report_checks(list(checks))
        _fail("triage run needs the problems above fixed first (see `triage check`)")
    configure_logging(settings.log_format)
    asyncio.run(run_until_signalled(settings))


def _print_table(results: list[dict[str, object]]) -> None:
    table = Table(title="Scenarios", show_lines=True)
    for col in ("id", "decision", "service", "country", "later", "reasons"):
        table.add_column(col, overflow="fold")
    for r in results:
        later = r.get("later") or []
        later_txt = ", ".join(
            x
            if isinstance(x, str)
            else (x or {}).get("decision", "-")
            if isinstance(x, dict)
            else "-"
            for x in later  # type: ignore[union-attr]
        )
        reasons = r.get("reasons") or []
        table.add_row(
            str(r["id"]),
            str(r.get("decision")),
            str(r.get("service") or "-"),
            str(r.get("country") or "-"),
            later_txt or "-",
            "; ".join(str(x) for x in reasons),  # type: ignore[union-attr]
        )
    Console().print(table)


def main() -> None:
    """Entry point of the console script."""
    app()


if __name__ == "__main__":
    main()
