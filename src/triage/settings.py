"""What the product is configured with: settings from the environment (prefix TRIAGE_) and a
.env file, read only by app.py and the CLI, and the files they name (the company profile, the
flows), read with errors that name the file.

Every setting the product reads is a field here, with a description: `.env.example` and the
README's settings table are checked against this class by the tests.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import yaml
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from triage.domain.profile import CompanyProfile, ProfileError, parse_profile
from triage.flows.spec import FlowError, FlowSpec, parse_flow

#: The flows/ folder of this checkout (the package is installed in editable mode or the folder
#: is copied next to it in the image).
DEFAULT_FLOWS_DIR = Path(__file__).resolve().parents[2] / "flows"


class ConfigError(Exception):
    """A configuration file that cannot be used; the message names the file and the fix."""


def read_yaml(path: Path) -> object:
    """Parse a YAML file, turning I/O and syntax errors into a ConfigError naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None


def load_profile(path: str | Path) -> CompanyProfile:
    """Load and validate a company profile file."""
    path = Path(path)
    try:
        return parse_profile(read_yaml(path), source=str(path))
    except ProfileError as exc:
        raise ConfigError(str(exc)) from None


def load_flow(directory: str | Path = DEFAULT_FLOWS_DIR) -> FlowSpec:
    """Load flows/intake.yaml and flows/prompts/*.yaml."""
    directory = Path(directory)
    doc = read_yaml(directory / "intake.yaml")
    prompts = {p.stem: read_yaml(p) for p in sorted((directory / "prompts").glob("*.yaml"))}
    try:
        return parse_flow(doc, prompts, source=str(directory / "intake.yaml"))
    except FlowError as exc:
        raise ConfigError(str(exc)) from None


#: The example company profile shipped in examples/ (the visible scenarios' firm).
DEFAULT_PROFILE = Path(__file__).resolve().parents[2] / "examples" / "company.yaml"

_SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_BOT_TOKEN = re.compile(r"^\d+:[A-Za-z0-9_-]{1,}$")
_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,30}$")
#: Telegram's own Bot API delivers webhooks only to HTTPS on these ports (a local Bot API
#: server, or the sandbox, accepts any URL).
_WEBHOOK_PORTS = frozenset({443, 80, 88, 8443})
_TELEGRAM_CLOUD = "https://api.telegram.org"


class SettingsError(Exception):
    """Settings that cannot be used: one line per problem, each naming the variable and fix."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class Settings(BaseSettings):
    """Every setting the product reads."""

    model_config = SettingsConfigDict(env_prefix="TRIAGE_", env_file=".env", extra="ignore")

    company_profile: Path = Field(
        default=DEFAULT_PROFILE, description="Path to the company profile (company.yaml)."
    )
    flows_dir: Path = Field(default=DEFAULT_FLOWS_DIR, description="Folder of intake.yaml.")
    database_url: str = Field(
        default="sqlite+aiosqlite:///./triage.db", description="SQLAlchemy async database URL."
    )
    # --- Telegram -------------------------------------------------------------------------
    telegram_token: str = Field(default="", description="Bot token from BotFather.")
    telegram_api_base: str = Field(
        default="https://api.telegram.org",
        description="Bot API server (the sandbox's address in the demo and tests).",
    )
    telegram_mode: Literal["polling", "webhook"] = Field(
        default="polling", description="polling (one worker) or webhook (several workers)."
    )
    telegram_webhook_secret: str = Field(
        default="", description="Secret Telegram echoes in X-Telegram-Bot-Api-Secret-Token."
    )
    telegram_webhook_url: str = Field(
        default="",
        description="Public HTTPS URL of /telegram/webhook; set with setWebhook at start.",
    )
    # --- HTTP -----------------------------------------------------------------------------
    http_host: str = Field(default="127.0.0.1", description="Address the HTTP server binds.")
    http_port: int = Field(
        default=8080, ge=0, le=65535, description="Port of /healthz, webhooks, /slack/events."
    )
    # --- Slack ----------------------------------------------------------------------------
    slack_bot_token: str = Field(default="", description="Slack bot token (xoxb-...).")
    slack_signing_secret: str = Field(default="", description="Slack app signing secret.")
    slack_app_token: str = Field(
        default="", description="App-level token (xapp-...) for Socket Mode; empty = HTTP mode."
    )
    slack_api_base: str = Field(
        default="https://slack.com/api/",
        description="Slack Web API base (the sandbox's in tests).",
    )
    slack_sales_channel: str = Field(default="", description="Channel id for lead cards.")
    slack_compliance_channel: str = Field(default="", description="Channel id for case cards.")
    compliance_users: str = Field(
        default="", description="Comma-separated Slack user ids allowed to decide escalations."
    )
    four_eyes: bool = Field(
        default=False, description="An approval needs two different compliance officers."
    )
    case_sla_hours: float = Field(
        default=24.0, gt=0, description="Remind compliance of an undecided case after this."
    )
    # --- outbox ---------------------------------------------------------------------------
    outbox_interval_seconds: float = Field(
        default=1.0, gt=0, description="How often the dispatcher drains due outbox rows."
    )
    outbox_lease_seconds: float = Field(
        default=60.0,
        gt=31,
        description="How long a worker's claim on an outbox row lasts; a crashed worker's rows "
        "are taken over after this (must exceed the 30 s send timeout).",
    )
    worker_id: str = Field(
        default="", description="Name of this worker in outbox leases (default: host:pid)."
    )
    log_format: Literal["json", "text"] = Field(
        default="json", description="json: one event a line; text: for a terminal."
    )

    @field_validator("telegram_api_base", "slack_api_base")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://", value):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value

    @property
    def compliance_user_ids(self) -> frozenset[str]:
        """The Slack user ids of the compliance officers."""
        return frozenset(u.strip() for u in self.compliance_users.split(",") if u.strip())

    @property
    def slack_enabled(self) -> bool:
        """Whether Slack is configured at all."""
        return bool(self.slack_bot_token)

    def problems_for_run(self) -> list[str]:
        """What must be fixed before `triage run` can start, one line per setting."""
        out: list[str] = []
        if not self.telegram_token:
            out.append("TRIAGE_TELEGRAM_TOKEN: missing; set the bot token from BotFather")
        elif not _BOT_TOKEN.match(self.telegram_token):
            out.append("TRIAGE_TELEGRAM_TOKEN: not a bot token; it looks like 123456:ABC-def...")
        if self.telegram_mode == "webhook":
            if not self.telegram_webhook_secret:
                out.append(
                    "TRIAGE_TELEGRAM_WEBHOOK_SECRET: required in webhook mode; 1-256 characters "
                    "A-Z a-z 0-9 _ - (e.g. the output of `openssl rand -hex 32`)"
                )
            elif not _SECRET_TOKEN.match(self.telegram_webhook_secret):
                out.append(
                    "TRIAGE_TELEGRAM_WEBHOOK_SECRET: only A-Z a-z 0-9 _ - allowed, 1-256 long "
                    "(e.g. the output of `openssl rand -hex 32`)"
                )
        out.extend(self._webhook_url_problems())
        out.extend(self._slack_problems())
        return out

    def _webhook_url_problems(self) -> list[str]:
        url = self.telegram_webhook_url
        if not url:
            return []
        if self.telegram_mode == "polling":
            return [
                "TRIAGE_TELEGRAM_WEBHOOK_URL: set, but TRIAGE_TELEGRAM_MODE is polling, which "
                "deletes the webhook at start; set TRIAGE_TELEGRAM_MODE=webhook or empty the URL"
            ]
        if self.telegram_api_base.rstrip("/") != _TELEGRAM_CLOUD:
            return []
        try:
            parts = urlsplit(url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            parts, port = None, 0
        if parts is None or parts.scheme != "https" or not parts.hostname:
            return [
                f"TRIAGE_TELEGRAM_WEBHOOK_URL: {url!r} is not an https:// URL; Telegram delivers "
                "webhooks only over HTTPS (e.g. https://bot.example.com/telegram/webhook)"
            ]
        if port not in _WEBHOOK_PORTS:
            return [
                f"TRIAGE_TELEGRAM_WEBHOOK_URL: port {port} is not one Telegram delivers to; use "
                "443, 80, 88 or 8443 on the reverse proxy"
            ]
        return []

    def _slack_problems(self) -> list[str]:
        out: list[str] = []
        if not self.slack_enabled:
            others = {
                "TRIAGE_SLACK_SIGNING_SECRET": self.slack_signing_secret,
                "TRIAGE_SLACK_APP_TOKEN": self.slack_app_token,
                "TRIAGE_SLACK_SALES_CHANNEL": self.slack_sales_channel,
                "TRIAGE_SLACK_COMPLIANCE_CHANNEL": self.slack_compliance_channel,
                "TRIAGE_COMPLIANCE_USERS": self.compliance_users,
            }
            set_ = [name for name, value in others.items() if value]
            if set_:
                out.append(
                    f"TRIAGE_SLACK_BOT_TOKEN: missing, but {', '.join(set_)} "
                    f"{'is' if len(set_) == 1 else 'are'} set; without the bot token (xoxb-...) "
                    "Slack stays off: set it, or empty the other Slack settings"
                )
            return out
        if not self.slack_bot_token.startswith("xoxb-"):
            out.append(
                "TRIAGE_SLACK_BOT_TOKEN: not a bot token; copy the Bot User OAuth Token "
                "(xoxb-...) from the Slack app's OAuth & Permissions page"
            )
        if self.slack_app_token and not self.slack_app_token.startswith("xapp-"):
            out.append(
                "TRIAGE_SLACK_APP_TOKEN: not an app-level token (xapp-...); create one with the "
                "connections:write scope under Basic Information, or empty it for HTTP mode"
            )
        if not self.slack_signing_secret and not self.slack_app_token:
            out.append(
                "TRIAGE_SLACK_SIGNING_SECRET: required with TRIAGE_SLACK_BOT_TOKEN in HTTP "
                "mode (or set TRIAGE_SLACK_APP_TOKEN for Socket Mode)"
            )
        if not self.slack_sales_channel:
            out.append("TRIAGE_SLACK_SALES_CHANNEL: missing; the channel id for lead cards")
        if not self.slack_compliance_channel:
            out.append("TRIAGE_SLACK_COMPLIANCE_CHANNEL: missing; the channel id for case cards")
        if not self.compliance_user_ids:
            out.append(
                "TRIAGE_COMPLIANCE_USERS: missing; comma-separated Slack user ids of the "
                "compliance officers"
            )
        bad = sorted(u for u in self.compliance_user_ids if not _SLACK_USER.match(u))
        if bad:
            out.append(
                f"TRIAGE_COMPLIANCE_USERS: {', '.join(repr(u) for u in bad)} "
                f"{'is not a Slack user id' if len(bad) == 1 else 'are not Slack user ids'}; "
                "use member ids like U0123ABCD (Slack profile > More > Copy member ID), not names"
            )
        return out


def _hint(field: str) -> str:
    """What a setting is and its default, to append to a validation error."""
    info = Settings.model_fields.get(field)
    if info is None:
        return ""
    what = (info.description or "").rstrip(".")
    default = info.default
    shown = f"{default}" if not isinstance(default, str) or default else "empty"
    return f"; it is: {what} (unset it for the default, {shown})" if what else ""


def load_settings() -> Settings:
    """Read the settings; invalid values raise SettingsError naming each variable and fix."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(str(p) for p in err.get("loc", ()))
            name = "TRIAGE_" + "_".join(loc).upper()
            msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            hint = _hint(loc[0]) if len(loc) == 1 else ""
            problems.append(f"{name}: {msg} (got {err.get('input')!r}){hint}")
        raise SettingsError(problems) from None
