"""Settings from the environment (prefix TRIAGE_) and a .env file. Read only by app.py/cli.py."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from triage.config import DEFAULT_FLOWS_DIR

#: The example company profile shipped in examples/ (the visible scenarios' firm).
DEFAULT_PROFILE = Path(__file__).resolve().parents[2] / "examples" / "company.yaml"


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
