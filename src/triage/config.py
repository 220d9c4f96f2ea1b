"""Reading the configuration files: the company profile and the flow. Errors name the file."""

from __future__ import annotations

from pathlib import Path

import yaml

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
