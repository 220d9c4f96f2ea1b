"""`triage check` on a good and on broken configurations, run as an operator runs it.

Each configuration runs the real command in a subprocess with only the variables it sets (no
.env: the working directory is empty). All of them start at once, so the file takes about as
long as the slowest one. A good configuration exits 0 with every line ok; a broken one exits 2
and says which file or variable, which field, and what to do. The command must stay quick: the
subprocess fails if it loaded the gazetteer.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from triage.cli.check import run_checks
from triage.settings import Settings, SettingsError, load_settings

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "examples" / "company.yaml"
TOKEN = "123456:ABC-def_ghi"
UNREACHABLE = "postgresql+psycopg://nobody@127.0.0.1:1/x"

#: Runs the CLI's `main` and, at exit, fails loudly if the gazetteer (seconds to load, never
#: needed to check a configuration) was imported.
_RUNNER = """
import atexit, os, sys
def _guard():
    if sys.argv[1:2] == ["check"] and "triage.geodata" in sys.modules:
        sys.stderr.write("GAZETTEER LOADED\\n")
        os._exit(99)
atexit.register(_guard)
from triage.cli import main
sys.argv = ["triage", *sys.argv[1:]]
main()
"""


@dataclass(frozen=True)
class Row:
    """One line of the `triage check` table."""

    ok: bool
    check: str
    detail: str


@dataclass(frozen=True)
class Outcome:
    """What one run printed and returned."""

    code: int
    rows: list[Row]
    stderr: str

    def failures(self) -> list[str]:
        """The details of the failing lines."""
        return [r.detail for r in self.rows if not r.ok]

    def failure(self, *needles: str) -> str:
        """The one failing line that contains every needle."""
        found = [d for d in self.failures() if all(n in d for n in needles)]
        assert len(found) == 1, f"no single failure with {needles} in:\n{self.stderr}"
        return found[0]


def parse_table(text: str) -> list[Row]:
    """The rows of rich's table; a detail that wrapped onto continuation lines is joined."""
    rows: list[list[str]] = []
    for line in text.splitlines():
        if not line.startswith("│"):
            continue
        cells = [c.strip() for c in line.strip("│").split("│")]
        if len(cells) != 3:
            continue
        if cells[0] or not rows:
            rows.append(cells)
        else:
            for i in (1, 2):
                if cells[i]:
                    rows[-1][i] = f"{rows[-1][i]} {cells[i]}".strip()
    out = []
    for status, check, detail in rows:
        assert status in ("ok", "FAIL"), f"unexpected status {status!r}"
        out.append(Row(status == "ok", check, detail))
    return out


def write_profile(path: Path, replacements: dict[str, str]) -> Path:
    """The example profile with some text replaced, written to `path`."""
    text = PROFILE.read_text(encoding="utf-8")
    for old, new in replacements.items():
        assert old in text, f"the example profile changed: {old!r} not found"
        text = text.replace(old, new, 1)
    path.write_text(text, encoding="utf-8")
    return path


def line_of(path: Path, needle: str) -> int:
    """The 1-based number of the first line of `path` containing `needle`."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if needle in line)


@dataclass(frozen=True)
class Files:
    """The files the configurations point at."""

    base: Path
    sqlite_url: str
    bad_fields: Path
    impossible_date: Path
    not_yaml: Path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    """A SQLite file and the broken profiles, in a folder for this module."""
    base = tmp_path_factory.mktemp("check")
    db = base / "triage.db"
    sqlite3.connect(db).close()
    not_yaml = base / "broken.yaml"
    not_yaml.write_text("name: Northwind\nservices: [CUSTODY\nhome_country: SG\n", "utf-8")
    return Files(
        base=base,
        sqlite_url=f"sqlite+aiosqlite:///{db}",
        bad_fields=write_profile(
            base / "fields.yaml",
            {
                "services: [CUSTODY,": "services: [CUSTODDY,",
                "start: 2025-09-01": "start: next autumn",
                "retention_years: 5": "retention_years: 5\nfavourite_colour: blue",
            },
        ),
        impossible_date=write_profile(
            base / "date.yaml", {"start: 2025-11-12": "start: 2025-13-45"}
        ),
        not_yaml=not_yaml,
    )


@pytest.fixture(scope="module")
def runs(files: Files) -> dict[str, Outcome]:
    """Every configuration below, run at once; name -> outcome."""
    good = {
        "TRIAGE_TELEGRAM_TOKEN": TOKEN,
        "TRIAGE_DATABASE_URL": files.sqlite_url,
        "TRIAGE_COMPANY_PROFILE": str(PROFILE),
    }
    webhook = {**good, "TRIAGE_TELEGRAM_MODE": "webhook"}
    # Independent mistakes share a run (each gets its own line in the table), to start fewer
    # processes; a bad setting value stops the other checks, so it runs alone.
    configs: dict[str, tuple[list[str], dict[str, str]]] = {
        "good": (["check"], good),
        "no token, unreachable database": (
            ["check"],
            {**good, "TRIAGE_TELEGRAM_TOKEN": "", "TRIAGE_DATABASE_URL": UNREACHABLE},
        ),
        "webhook without secret, profile fields": (
            ["check"],
            {**webhook, "TRIAGE_COMPANY_PROFILE": str(files.bad_fields)},
        ),
        "secret with bad characters, impossible date": (
            ["check"],
            {
                **webhook,
                "TRIAGE_TELEGRAM_WEBHOOK_SECRET": "my secret!",
                "TRIAGE_COMPANY_PROFILE": str(files.impossible_date),
            },
        ),
        "missing profile": (
            ["check"],
            {**good, "TRIAGE_COMPANY_PROFILE": str(files.base / "nowhere" / "company.yaml")},
        ),
        "invalid yaml": (["check"], {**good, "TRIAGE_COMPANY_PROFILE": str(files.not_yaml)}),
        "bad port": (["check"], {**good, "TRIAGE_HTTP_PORT": "eighty"}),
        "run refuses": (["run"], {**good, "TRIAGE_TELEGRAM_TOKEN": ""}),
    }
    home = files.base / "home"
    home.mkdir()
    procs = {}
    for name, (args, env) in configs.items():
        cwd = files.base / re.sub(r"\W+", "-", name)
        cwd.mkdir()
        full_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "COLUMNS": "200",
            "LANG": "C.UTF-8",
            **env,
        }
        procs[name] = subprocess.Popen(
            [sys.executable, "-c", _RUNNER, *args],
            cwd=cwd,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    out: dict[str, Outcome] = {}
    try:
        for name, proc in procs.items():
            _, stderr = proc.communicate(timeout=120)
            assert "Traceback" not in stderr, f"{name}: a traceback, not a message:\n{stderr}"
            assert "GAZETTEER LOADED" not in stderr, f"{name}: `triage check` built the gazetteer"
            out[name] = Outcome(proc.returncode, parse_table(stderr), stderr)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert not (home / ".cache" / "triage").exists(), "a gazetteer cache was written"
    return out


def test_a_good_configuration_passes_every_check(runs: dict[str, Outcome]) -> None:
    good = runs["good"]
    assert good.code == 0, good.stderr
    assert [r.check for r in good.rows] == ["settings", "company profile", "flows", "database"]
    assert all(r.ok for r in good.rows), good.stderr
    assert "Northwind" in good.rows[1].detail and "reachable" in good.rows[3].detail


def test_a_missing_token_names_the_variable_and_botfather(runs: dict[str, Outcome]) -> None:
    run = runs["no token, unreachable database"]
    assert run.code == 2
    assert [r.check for r in run.rows if not r.ok] == ["settings", "database"]
    assert run.failure("TRIAGE_TELEGRAM_TOKEN") == (
        "TRIAGE_TELEGRAM_TOKEN: missing; set the bot token from BotFather"
    )


def test_webhook_mode_needs_a_secret(runs: dict[str, Outcome]) -> None:
    run = runs["webhook without secret, profile fields"]
    assert run.code == 2
    detail = run.failure("TRIAGE_TELEGRAM_WEBHOOK_SECRET")
    assert "required in webhook mode" in detail and "openssl rand -hex 32" in detail


def test_a_secret_with_characters_telegram_refuses(runs: dict[str, Outcome]) -> None:
    run = runs["secret with bad characters, impossible date"]
    assert run.code == 2
    detail = run.failure("TRIAGE_TELEGRAM_WEBHOOK_SECRET")
    assert "only A-Z a-z 0-9 _ - allowed" in detail


def test_profile_mistakes_name_the_file_the_field_and_the_fix(
    runs: dict[str, Outcome], files: Files
) -> None:
    run = runs["webhook without secret, profile fields"]
    path = str(files.bad_fields)
    assert run.code == 2
    service = run.failure(path, "services[0]")
    assert "'CUSTODDY' is not valid; use one of" in service and "'CUSTODY'" in service
    date = run.failure(path, "marketing[2].start")
    assert "write the date as YYYY-MM-DD" in date and "next autumn" in date
    unknown = run.failure(path, "favourite_colour")
    assert "unknown field" in unknown
    profile = [r for r in run.rows if r.check == "company profile"]
    assert len(profile) == 3 and not any(r.ok for r in profile)
    assert all(r.detail.startswith("TRIAGE_COMPANY_PROFILE: ") for r in profile)


def test_an_impossible_date_is_located_not_a_traceback(
    runs: dict[str, Outcome], files: Files
) -> None:
    run = runs["secret with bad characters, impossible date"]
    path = files.impossible_date
    assert run.code == 2
    detail = run.failure(str(path), "'2025-13-45' is not a valid date")
    assert f"line {line_of(path, '2025-13-45')}, column 12" in detail
    assert "YYYY-MM-DD" in detail
    assert "marketing[" in detail and "].start" in detail


def test_a_missing_profile_says_where_it_looked(runs: dict[str, Outcome]) -> None:
    run = runs["missing profile"]
    assert run.code == 2
    detail = run.failure("TRIAGE_COMPANY_PROFILE", "nowhere/company.yaml")
    assert "file not found" in detail and "examples/company.yaml" in detail


def test_invalid_yaml_gives_line_and_column(runs: dict[str, Outcome], files: Files) -> None:
    run = runs["invalid yaml"]
    assert run.code == 2
    detail = run.failure("TRIAGE_COMPANY_PROFILE", str(files.not_yaml))
    assert "not valid YAML at line 3, column 1" in detail


def test_an_unreachable_database_names_the_url_and_what_to_check(
    runs: dict[str, Outcome],
) -> None:
    run = runs["no token, unreachable database"]
    assert run.code == 2
    detail = run.failure("TRIAGE_DATABASE_URL")
    assert f"cannot connect to {UNREACHABLE}" in detail
    assert "check the URL, that the server runs and accepts this user" in detail


def test_an_invalid_port_names_the_variable_the_value_and_the_default(
    runs: dict[str, Outcome],
) -> None:
    run = runs["bad port"]
    assert run.code == 2
    detail = run.failure("TRIAGE_HTTP_PORT")
    assert "'eighty'" in detail and "integer" in detail and "default, 8080" in detail


def test_triage_run_refuses_to_start_on_a_failed_check(runs: dict[str, Outcome]) -> None:
    run = runs["run refuses"]
    assert run.code == 2
    assert "TRIAGE_TELEGRAM_TOKEN: missing" in " ".join(run.failures())
    assert "triage run needs the problems above fixed first" in run.stderr


# --- the settings' own checks, in process (no subprocess needed) -------------------------------


@pytest.fixture(autouse=True)
def no_triage_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The operator's own TRIAGE_* variables must not leak into these settings."""
    for name in list(os.environ):
        if name.startswith("TRIAGE_"):
            monkeypatch.delenv(name)


def settings(**values: object) -> Settings:
    """Settings from these values only (no environment file), with a valid bot token."""
    return Settings(_env_file=None, telegram_token=TOKEN, **values)  # type: ignore[call-arg]


def test_a_port_out_of_range(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIAGE_HTTP_PORT", "70000")
    monkeypatch.chdir(REPO / "tests")  # no .env here
    with pytest.raises(SettingsError) as caught:
        load_settings()
    (problem,) = caught.value.problems
    assert problem.startswith("TRIAGE_HTTP_PORT: Input should be less than or equal to 65535")
    assert "'70000'" in problem and "default, 8080" in problem


def test_an_unknown_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIAGE_TELEGRAM_MODE", "push")
    monkeypatch.chdir(REPO / "tests")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert (
        "TRIAGE_TELEGRAM_MODE: Input should be 'polling' or 'webhook'" in caught.value.problems[0]
    )


def test_webhook_urls_telegram_would_refuse() -> None:
    base = {"telegram_mode": "webhook", "telegram_webhook_secret": "s3cret"}
    assert settings(**base).problems_for_run() == []
    assert (
        settings(**base, telegram_webhook_url="https://bot.example.com").problems_for_run() == []
    )
    (plain,) = settings(**base, telegram_webhook_url="http://bot.example.com").problems_for_run()
    assert plain.startswith("TRIAGE_TELEGRAM_WEBHOOK_URL:") and "HTTPS" in plain
    (port,) = settings(**base, telegram_webhook_url="https://b.example:8080/x").problems_for_run()
    assert "port 8080" in port and "443, 80, 88 or 8443" in port
    # A local Bot API server (or the sandbox) takes any URL.
    local = settings(
        **base, telegram_api_base="http://127.0.0.1:8081", telegram_webhook_url="http://a:1/x"
    )
    assert local.problems_for_run() == []
    (polling,) = settings(telegram_webhook_url="https://bot.example.com").problems_for_run()
    assert polling.startswith("TRIAGE_TELEGRAM_WEBHOOK_URL:") and "polling" in polling


SLACK = {
    "slack_bot_token": "xoxb-1-2-3",
    "slack_signing_secret": "abc",
    "slack_sales_channel": "C0SALES",
    "slack_compliance_channel": "C0COMPLY",
    "compliance_users": "U0ALICE1,U0BOB2",
}


def test_a_complete_slack_configuration_passes() -> None:
    assert settings(**SLACK).problems_for_run() == []
    socket_mode = {**SLACK, "slack_signing_secret": "", "slack_app_token": "xapp-1"}
    assert settings(**socket_mode).problems_for_run() == []


def test_slack_half_configured_says_what_is_missing() -> None:
    (half,) = settings(slack_sales_channel="C0SALES", compliance_users="U0A1").problems_for_run()
    assert half.startswith("TRIAGE_SLACK_BOT_TOKEN: missing")
    assert "TRIAGE_SLACK_SALES_CHANNEL, TRIAGE_COMPLIANCE_USERS are set" in half
    problems = settings(slack_bot_token="xoxb-1").problems_for_run()
    assert [p.split(":")[0] for p in problems] == [
        "TRIAGE_SLACK_SIGNING_SECRET",
        "TRIAGE_SLACK_SALES_CHANNEL",
        "TRIAGE_SLACK_COMPLIANCE_CHANNEL",
        "TRIAGE_COMPLIANCE_USERS",
    ]


def test_slack_tokens_and_officer_ids_in_the_wrong_form() -> None:
    problems = settings(
        **{
            **SLACK,
            "slack_bot_token": "xoxp-user-token",
            "slack_app_token": "abc",
            "compliance_users": "U0ALICE1,@bob",
        }
    ).problems_for_run()
    assert [p.split(":")[0] for p in problems] == [
        "TRIAGE_SLACK_BOT_TOKEN",
        "TRIAGE_SLACK_APP_TOKEN",
        "TRIAGE_COMPLIANCE_USERS",
    ]
    assert "xoxb-" in problems[0] and "xapp-" in problems[1]
    assert "'@bob' is not a Slack user id" in problems[2] and "member ids" in problems[2]


def test_check_reports_a_bad_database_url_before_connecting(tmp_path: Path) -> None:
    base = {"company_profile": PROFILE}
    cases = {
        "nonsense": "not a database URL",
        "mysql+aiomysql://a@b/c": "mysql is not supported",
        "sqlite:///x.db": "SQLite needs the async driver",
        f"sqlite+aiosqlite:///{tmp_path}/no/such/dir/t.db": "does not exist",
    }
    for url, message in cases.items():
        checks = run_checks(settings(**base, database_url=url))
        (db,) = [c for c in checks if c.name == "database"]
        assert not db.ok and db.detail.startswith("TRIAGE_DATABASE_URL: ") and message in db.detail
    fresh = run_checks(settings(**base, database_url=f"sqlite+aiosqlite:///{tmp_path}/new.db"))
    assert fresh[-1].ok and "`triage db upgrade`" in fresh[-1].detail
    assert not (tmp_path / "new.db").exists(), "a check must not create the database"
