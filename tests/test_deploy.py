"""The deployment files agree with the code: compose, the image, .env.example, the Slack manifest.

No Docker engine runs here, so the files are checked by parsing them: every setting the code
reads is in .env.example and nothing else is; compose only sets settings that exist; the image
runs `triage run` as a non-root user with a health check on /healthz; the Slack manifest asks for
exactly the scopes and events the adapter's calls need; the README's Operations section names
only commands and options that exist.
"""

from __future__ import annotations

import ast
import fnmatch
import json
import os
import re
import shlex
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from triage import settings as triage_config
from triage import settings as triage_settings
from triage.cli import app as cli_app
from triage.settings import Settings

REPO = Path(__file__).resolve().parents[1]
DOCKER = REPO / "docker"
SRC = REPO / "src" / "triage"


def module_constant(path: Path, name: str) -> str:
    """A module-level string constant, read without importing the module (aiogram and Bolt
    take seconds to import)."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            value = ast.literal_eval(node.value)
            assert isinstance(value, str)
            return value
    raise AssertionError(f"{path} defines no {name}")


EVENTS_PATH = module_constant(SRC / "channels" / "slack.py", "EVENTS_PATH")
WEBHOOK_PATH = module_constant(SRC / "channels" / "telegram.py", "WEBHOOK_PATH")
SETTING_NAMES = {f"TRIAGE_{name.upper()}" for name in Settings.model_fields}
#: Services of docker/compose.yaml that run the triage image.
TRIAGE_SERVICES = ("migrate", "worker-1", "worker-2", "polling")

# --- .env.example ---------------------------------------------------------------------------


def env_example() -> list[tuple[str, str, list[str]]]:
    """(name, value, comment lines above it) for each assignment in .env.example."""
    out: list[tuple[str, str, list[str]]] = []
    comments: list[str] = []
    for raw in (REPO / ".env.example").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line:
            comments = []
        elif line.startswith("#"):
            comments.append(line)
        else:
            name, sep, value = line.partition("=")
            assert sep, f".env.example: {raw!r} is neither a comment nor NAME=value"
            out.append((name.strip(), value, comments))
            comments = []
    return out


def test_env_example_lists_every_setting_once_and_nothing_else() -> None:
    names = [name for name, _, _ in env_example()]
    assert len(names) == len(set(names)), "a setting is listed twice in .env.example"
    missing = SETTING_NAMES - set(names)
    unused = set(names) - SETTING_NAMES
    assert not missing, f"settings the code reads but .env.example lacks: {sorted(missing)}"
    assert not unused, f".env.example lists variables no setting reads: {sorted(unused)}"


def test_env_example_explains_every_setting() -> None:
    for name, _, comments in env_example():
        words = " ".join(c.lstrip("# ") for c in comments if not set(c) <= set("#- "))
        assert len(words) >= 15, f"{name} in .env.example has no comment saying what it is"


def test_env_example_is_a_valid_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    """Copied to .env as it is, it loads, and only the bot token is left to fill in."""
    for name in list(os.environ):
        if name.startswith("TRIAGE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(REPO)  # its relative paths are relative to the repository root
    settings = Settings(_env_file=REPO / ".env.example")  # type: ignore[call-arg]
    assert settings.telegram_mode == "polling" and not settings.slack_enabled
    assert settings.company_profile.resolve() == triage_settings.DEFAULT_PROFILE
    assert settings.flows_dir.resolve() == triage_config.DEFAULT_FLOWS_DIR
    assert [p.split(":")[0] for p in settings.problems_for_run()] == ["TRIAGE_TELEGRAM_TOKEN"]


# --- the settings are the only reader of the environment --------------------------------------


def _settings_properties() -> dict[str, set[str]]:
    """Each property or method of Settings and the fields it reads (self.<field>)."""
    tree = ast.parse((SRC / "settings.py").read_text(encoding="utf-8"))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Settings")
    out: dict[str, set[str]] = {}
    for node in cls.body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            out[node.name] = {
                a.attr
                for a in ast.walk(node)
                if isinstance(a, ast.Attribute)
                and isinstance(a.value, ast.Name)
                and a.value.id == "self"
            }
    return out


def _attributes_read_outside_settings() -> set[str]:
    names: set[str] = set()
    for path in SRC.rglob("*.py"):
        if path == SRC / "settings.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute):
                names.add(node.attr)
    return names


def test_every_setting_is_read_by_the_code() -> None:
    """A field nothing reads is a setting that does nothing: remove it or use it."""
    read = _attributes_read_outside_settings()
    via: set[str] = set()
    for prop, fields in _settings_properties().items():
        if prop in read and prop != "problems_for_run":
            via |= fields
    unread = [f for f in Settings.model_fields if f not in read and f not in via]
    assert not unread, f"Settings fields no code outside settings.py reads: {unread}"


def _is_environ(node: ast.expr) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr in ("environ", "environb")) or (
        isinstance(node, ast.Name) and node.id in ("environ", "environb")
    )


def _names_setting(node: ast.expr | None) -> bool:
    """A string (or f-string) that starts with TRIAGE_."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value.startswith("TRIAGE_")
    if isinstance(node, ast.JoinedStr) and node.values:
        return _names_setting(node.values[0])  # type: ignore[arg-type]
    return False


def environment_reads(source: str) -> list[int]:
    """Lines that read a TRIAGE_ variable from the environment, or a .env file, directly."""
    lines: list[int] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            getenv = (isinstance(func, ast.Attribute) and func.attr == "getenv") or (
                isinstance(func, ast.Name) and func.id == "getenv"
            )
            on_environ = isinstance(func, ast.Attribute) and _is_environ(func.value)
            if (getenv or on_environ) and node.args and _names_setting(node.args[0]):
                lines.append(node.lineno)
            elif (
                isinstance(func, ast.Attribute)
                and func.attr == "startswith"
                and node.args
                and _names_setting(node.args[0])
            ):
                lines.append(node.lineno)  # scanning the environment for TRIAGE_* names
        elif isinstance(node, ast.Subscript) and _is_environ(node.value):
            if _names_setting(node.slice) and isinstance(node.ctx, ast.Load):
                lines.append(node.lineno)
        elif isinstance(node, ast.Compare) and _names_setting(node.left):
            if any(_is_environ(c) for c in node.comparators):
                lines.append(node.lineno)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            if any(m.split(".")[0] == "dotenv" for m in modules):
                lines.append(node.lineno)
    return lines


def test_nothing_but_settings_reads_the_environment() -> None:
    """STYLE: settings are read through Settings only; nothing else looks up TRIAGE_* names."""
    offences = [
        f"{path.relative_to(REPO)}:{line}"
        for path in sorted(SRC.rglob("*.py"))
        if path != SRC / "settings.py"
        for line in environment_reads(path.read_text(encoding="utf-8"))
    ]
    assert not offences, "read these through triage.settings.Settings: " + ", ".join(offences)


def test_the_environment_scanner_finds_direct_reads() -> None:
    reads = [
        'os.environ["TRIAGE_DATABASE_URL"]',
        'os.environ.get("TRIAGE_TELEGRAM_TOKEN", "")',
        'os.getenv(f"TRIAGE_{name}")',
        'getenv("TRIAGE_HTTP_PORT")',
        '"TRIAGE_FOUR_EYES" in os.environ',
        '[k for k in os.environ if k.startswith("TRIAGE_")]',
        "from dotenv import load_dotenv",
    ]
    for code in reads:
        assert environment_reads(code) == [1], code
    passes_through = 'subprocess.run(cmd, env={**os.environ, "TRIAGE_DATABASE_URL": url})'
    assert environment_reads(passes_through) == []
    assert environment_reads('os.environ.get("HOME")') == []


# --- docker/compose.yaml ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """docker/compose.yaml, parsed (anchors and merge keys resolved)."""
    data = yaml.safe_load((DOCKER / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_compose_runs_postgres_a_migration_and_two_webhook_workers(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert set(services) == {"db", *TRIAGE_SERVICES}
    db = services["db"]
    assert db["image"].startswith("postgres:")
    assert any(v.endswith(":/var/lib/postgresql/data") for v in db["volumes"])
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    volume_names = {v.split(":")[0] for s in services.values() for v in s.get("volumes", [])}
    assert set(compose["volumes"]) <= volume_names
    assert "pgdata" in compose["volumes"], "the database must live on a named volume"

    migrate = services["migrate"]
    assert migrate["command"] == ["db", "upgrade"]
    assert migrate["depends_on"]["db"]["condition"] == "service_healthy"

    workers = [services["worker-1"], services["worker-2"]]
    for w in workers:
        assert w["depends_on"] == {
            "db": {"condition": "service_healthy"},
            "migrate": {"condition": "service_completed_successfully"},
        }
        assert w["environment"]["TRIAGE_TELEGRAM_MODE"] == "webhook"
        assert w["environment"]["TRIAGE_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert w["environment"]["TRIAGE_HTTP_HOST"] == "0.0.0.0"
        assert "command" not in w, "workers run the image's entry point, `triage run`"
    assert len({w["environment"]["TRIAGE_WORKER_ID"] for w in workers}) == 2
    host_ports = [p.rsplit(":", 1)[0] for w in workers for p in w["ports"]]
    assert len(set(host_ports)) == 2, "the two workers need two host ports"
    urls = {w["environment"]["TRIAGE_DATABASE_URL"] for w in workers}
    assert urls == {migrate["environment"]["TRIAGE_DATABASE_URL"]}, "one shared database"
    assert services["polling"]["environment"]["TRIAGE_TELEGRAM_MODE"] == "polling"
    assert services["polling"]["profiles"] == ["polling"], "polling runs only when asked for"


def test_compose_sets_only_settings_that_exist_and_reads_the_env_file(
    compose: dict[str, Any],
) -> None:
    for name in TRIAGE_SERVICES:
        service = compose["services"][name]
        assert (DOCKER / service["env_file"]).resolve() == REPO / ".env", name
        build = service["build"]
        assert (DOCKER / build["context"] / build["dockerfile"]).resolve() == DOCKER / "Dockerfile"
        unknown = set(service.get("environment", {})) - SETTING_NAMES
        assert not unknown, f"compose service {name} sets variables no setting reads: {unknown}"
        profile = service["environment"]["TRIAGE_COMPANY_PROFILE"]
        mounts = {v.split(":")[1]: v.split(":")[0] for v in service["volumes"]}
        assert profile in mounts, f"{name}: the company profile must be mounted"
        assert (DOCKER / mounts[profile]).resolve().is_file()


def test_compose_interpolates_only_the_database_password() -> None:
    text = (DOCKER / "compose.yaml").read_text(encoding="utf-8")
    variables = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text))
    assert variables == {"POSTGRES_PASSWORD"}, (
        "compose interpolates only POSTGRES_PASSWORD; triage settings come from ../.env"
    )


# --- docker/Dockerfile ------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in (DOCKER / "Dockerfile").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, args = line.partition(" ")
        out.append((keyword.upper(), args.strip()))
    assert not pending, "Dockerfile ends in a continuation line"
    return out


def final_stage() -> list[tuple[str, str]]:
    """The instructions of the runtime stage (from the last FROM on)."""
    steps = dockerfile()
    last_from = max(i for i, (k, _) in enumerate(steps) if k == "FROM")
    return steps[last_from:]


def test_image_runs_triage_run_as_a_non_root_user() -> None:
    stage = final_stage()
    users = [args for k, args in stage if k == "USER"]
    assert users and users[-1] not in ("root", "0", "0:0"), "the final stage must switch user"
    assert any(k == "RUN" and "useradd" in a and users[-1] in a for k, a in stage)
    entry = [json.loads(a) for k, a in stage if k == "ENTRYPOINT"]
    cmd = [json.loads(a) for k, a in stage if k == "CMD"]
    assert entry and cmd, "ENTRYPOINT and CMD in exec (JSON) form"
    assert entry[-1] + cmd[-1] == ["triage", "run"]
    user_at = max(i for i, (k, _) in enumerate(stage) if k == "USER")
    entry_at = max(i for i, (k, _) in enumerate(stage) if k == "ENTRYPOINT")
    assert user_at < entry_at


def test_image_health_check_asks_healthz_without_curl() -> None:
    checks = [a for k, a in final_stage() if k == "HEALTHCHECK"]
    assert len(checks) == 1
    check = checks[0]
    assert "/healthz" in check and "urllib.request" in check and "curl" not in check
    assert "TRIAGE_HTTP_PORT" in check, "the health check follows the configured port"


def test_image_base_is_slim_python_311() -> None:
    steps = dockerfile()
    args = {a.split("=", 1)[0]: a.split("=", 1)[1] for k, a in steps if k == "ARG" and "=" in a}
    bases = [a.split()[0] for k, a in steps if k == "FROM"]
    resolved = [args.get(b.strip("${}"), b) for b in bases]
    assert len(resolved) == 2, "a two-stage build"
    assert all(re.fullmatch(r"python:3\.11[\w.-]*-slim[\w.-]*", b) for b in resolved), resolved


def test_image_keeps_the_checkout_layout_the_code_expects() -> None:
    """config.py finds flows/ (and settings.py examples/) beside src/: /app/flows in the image."""
    assert triage_config.DEFAULT_FLOWS_DIR.relative_to(REPO) == Path("flows")
    assert triage_settings.DEFAULT_PROFILE.relative_to(REPO) == Path("examples/company.yaml")
    steps = dockerfile()
    copies = {
        tuple(a.split()[-2:]) for k, a in steps if k == "COPY" and not a.startswith("--from")
    }
    assert {("src", "./src"), ("flows", "/app/flows"), ("examples", "/app/examples")} <= copies
    workdirs = [a for k, a in steps if k == "WORKDIR"]
    assert workdirs and all(w == "/app" for w in workdirs)
    assert any(k == "RUN" and "install --no-deps --no-build-isolation -e ." in a for k, a in steps)
    assert ("COPY", "--from=builder /app /app") in final_stage()
    env = " ".join(a for k, a in final_stage() if k == "ENV")
    assert "TRIAGE_FLOWS_DIR=/app/flows" in env
    assert "TRIAGE_COMPANY_PROFILE=/app/examples/company.yaml" in env
    names = set(re.findall(r"\b(TRIAGE_[A-Z0-9_]+)=", env))
    assert names <= SETTING_NAMES


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching .dockerignore line wins; a line matches a path or its
    parent folders."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        glob = pattern[1:] if negate else pattern
        glob = glob.rstrip("/")
        if any(
            fnmatch.fnmatch(c, glob) or (glob.startswith("**/") and fnmatch.fnmatch(c, glob[3:]))
            for c in candidates
        ):
            ignored = not negate
    return ignored


def test_dockerignore_lets_in_what_the_image_copies_and_keeps_secrets_out() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for k, args in dockerfile():
        if k == "COPY" and not args.startswith("--from"):
            for source in args.split()[:-1]:
                assert (REPO / source).exists(), f"COPY {source}: no such file"
                assert not _ignored(source, patterns), f".dockerignore drops {source}"
    secrets = (".env", "docker/.env", "src/.env", "triage.db", ".git/config", ".venv/pyvenv.cfg")
    for secret in secrets:
        assert _ignored(secret, patterns), f".dockerignore lets {secret} into the image"
    for kept in ("src/triage/cli.py", "flows/intake.yaml", "src/triage/migrations/env.py"):
        assert not _ignored(kept, patterns)


def _runtime_closure() -> dict[str, str]:
    """pyproject's dependencies and everything they need, as installed here: name -> version."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    seen: dict[str, set[str]] = {}
    todo = [Requirement(d) for d in pyproject["project"]["dependencies"]]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen and set(req.extras) <= seen[name]:
            continue
        seen[name] = seen.get(name, set()) | set(req.extras)
        for spec in metadata.distribution(name).requires or []:
            sub = Requirement(spec)
            extras = ["", *sorted(seen[name])]
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in extras):
                todo.append(sub)
    return {name: metadata.version(name) for name in sorted(seen)}


def test_image_dependencies_are_pinned_and_complete() -> None:
    pinned: dict[str, str] = {}
    for line in (DOCKER / "requirements.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, sep, version = line.strip().partition("==")
            assert sep and version, f"docker/requirements.txt: {line!r} is not pinned with =="
            pinned[canonicalize_name(name)] = version
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    for dep in pyproject["project"]["dependencies"]:
        req = Requirement(dep)
        name = canonicalize_name(req.name)
        assert name in pinned and req.specifier.contains(pinned[name]), (
            f"docker/requirements.txt pins {name}=={pinned.get(name)}, pyproject says {dep}"
        )
    expected = _runtime_closure()
    expected_lines = "\n".join(f"{n}=={v}" for n, v in expected.items())
    assert pinned == expected, (
        "docker/requirements.txt is out of date with the installed dependency tree; "
        f"its package lines should be:\n{expected_lines}"
    )


# --- docker/slack-manifest.yaml ------------------------------------------------------------------

#: Scopes each Slack Web API method needs (docs.slack.dev/reference/methods). A method the
#: adapter starts calling must be added here, and its scope to the manifest.
METHOD_SCOPES: dict[str, set[str]] = {
    "chat.postMessage": {"chat:write"},
    "chat.update": {"chat:write"},
    "chat.postEphemeral": {"chat:write"},
    "chat.delete": {"chat:write"},
    "chat.getPermalink": set(),
    "views.open": set(),
    "views.update": set(),
    "views.push": set(),
    "users.info": {"users:read"},
    "usergroups.users.list": {"usergroups:read"},
    "conversations.info": {"channels:read", "groups:read"},
    "conversations.replies": {"channels:history", "groups:history"},
    "conversations.history": {"channels:history", "groups:history"},
    "reactions.add": {"reactions:write"},
}
#: The manifest's bot events for each Bolt `app.event(...)` type, and the scopes they need.
#: Replies arrive in the sales channel's threads, which may be public or private.
EVENT_SUBSCRIPTIONS: dict[str, dict[str, set[str]]] = {
    "message": {"message.channels": {"channels:history"}, "message.groups": {"groups:history"}},
}
_API_FAMILIES = (
    "admin|apps|auth|bookmarks|bots|calls|canvases|chat|conversations|dnd|emoji|files|pins|"
    "reactions|reminders|search|stars|team|usergroups|users|views|workflows"
)
_METHOD_CALL = re.compile(rf"\.\s*((?:{_API_FAMILIES})_[A-Za-z_]+)\s*\(")


def slack_sources() -> dict[str, str]:
    """The Slack adapter's source files: name -> text."""
    files = sorted((SRC / "channels").glob("slack*.py"))
    assert files, "no Slack adapter in src/triage/channels"
    return {f.name: f.read_text(encoding="utf-8") for f in files}


def called_methods() -> set[str]:
    """The Slack Web API methods the adapter calls, as Slack names them (chat.postMessage)."""
    methods: set[str] = set()
    for name, text in slack_sources().items():
        assert "api_call(" not in text, f"{name}: api_call hides the method; call it by name"
        for python_name in _METHOD_CALL.findall(text):
            methods.add(python_name.replace("_", "."))
    return methods


def subscribed_events() -> set[str]:
    """The event types the Bolt app listens to (`app.event("message")`)."""
    events: set[str] = set()
    for text in slack_sources().values():
        events |= set(re.findall(r"\.event\(\s*[\"']([\w.]+)[\"']", text))
    return events


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    """docker/slack-manifest.yaml, parsed."""
    data = yaml.safe_load((DOCKER / "slack-manifest.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_manifest_sends_events_and_interactivity_to_slack_events(
    manifest: dict[str, Any],
) -> None:
    settings = manifest["settings"]
    assert settings["socket_mode_enabled"] is False, "HTTP mode; Socket Mode is the alternative"
    for url in (
        settings["event_subscriptions"]["request_url"],
        settings["interactivity"]["request_url"],
    ):
        assert url.startswith("https://") and url.endswith(EVENTS_PATH), url
    assert settings["interactivity"]["is_enabled"] is True
    assert manifest["features"]["bot_user"]["display_name"]


def test_manifest_scopes_are_exactly_what_the_adapter_calls_need(
    manifest: dict[str, Any],
) -> None:
    methods = called_methods()
    assert "chat.postMessage" in methods, "the scan found no Slack calls; is the regex stale?"
    unknown = methods - set(METHOD_SCOPES)
    assert not unknown, f"add the scopes of {sorted(unknown)} to METHOD_SCOPES and the manifest"
    events = subscribed_events()
    unknown_events = events - set(EVENT_SUBSCRIPTIONS)
    assert not unknown_events, f"map the event types {sorted(unknown_events)} in this test"
    needed = set().union(*(METHOD_SCOPES[m] for m in methods))
    bot_events: set[str] = set()
    for event in events:
        for subscription, scopes in EVENT_SUBSCRIPTIONS[event].items():
            bot_events.add(subscription)
            needed |= scopes
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == needed
    assert set(manifest["settings"]["event_subscriptions"]["bot_events"]) == bot_events


def test_manifest_has_commands_and_interactivity_only_when_used(
    manifest: dict[str, Any],
) -> None:
    text = "\n".join(slack_sources().values())
    interactive = any(f".{kind}(" in text for kind in ("action", "view", "shortcut", "options"))
    assert manifest["settings"]["interactivity"]["is_enabled"] is interactive
    uses_commands = ".command(" in text
    assert bool(manifest["features"].get("slash_commands")) is uses_commands
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert ("commands" in scopes) is uses_commands


# --- README, Operations -------------------------------------------------------------------------


def operations_section() -> str:
    """README.md from "## Operations" to the next top-level section."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert "\n## Operations\n" in text, "README.md has no '## Operations' section"
    section = text.split("\n## Operations\n", 1)[1]
    return section.split("\n## ", 1)[0]


def cli_commands() -> dict[tuple[str, ...], set[str]]:
    """Every `triage` command path and its options."""
    out: dict[tuple[str, ...], set[str]] = {}

    def walk(command: Any, path: tuple[str, ...]) -> None:
        subcommands = getattr(command, "commands", None)
        if subcommands:
            for name, sub in subcommands.items():
                walk(sub, (*path, name))
            return
        options = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
        out[path] = options | {"--help"}

    walk(typer.main.get_command(cli_app), ())
    return out


#: `docker compose` options that take a value (the README's commands use no others).
_COMPOSE_VALUE_OPTIONS = {"-f", "--file", "-v", "--volume", "-e", "--env", "-u", "--user", "-w"}
_ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")


def shell_commands(block: str) -> list[list[str]]:
    """The simple commands of a shell snippet: words, split at ; && || | and redirections."""
    out: list[list[str]] = []
    for line in block.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        current: list[str] = []
        for word in lexer:
            if set(word) <= set("();<>|&"):
                out.append(current)
                current = []
            else:
                current.append(word)
        out.append(current)
    return [words for words in out if words]


def triage_invocations(words: list[str], services: set[str]) -> list[list[str]]:
    """The `triage` argument lists a command runs: directly, or in a compose service."""
    while words and _ASSIGNMENT.match(words[0]):
        words = words[1:]
    if not words:
        return []
    if words[0] == "triage" or words[0].endswith("/bin/triage"):
        return [words[1:]]
    if words[:2] != ["docker", "compose"]:
        return []
    rest = words[2:]
    while rest and rest[0].startswith("-"):
        rest = rest[2:] if rest[0] in _COMPOSE_VALUE_OPTIONS else rest[1:]
    if not rest:
        return []
    sub, rest = rest[0], rest[1:]
    while rest and rest[0].startswith("-"):
        rest = rest[2:] if rest[0] in _COMPOSE_VALUE_OPTIONS else rest[1:]
    if sub in ("run", "exec"):
        assert rest and rest[0] in services, f"no compose service {rest[:1]} in {words}"
        args = rest[1:]
        if sub == "exec":
            return triage_invocations(args, services) if args else []
        # The triage image's entry point is `triage`: the arguments are its command line.
        return [args or ["run"]] if rest[0] in TRIAGE_SERVICES else []
    unknown = [w for w in rest if not w.startswith("-") and w not in services]
    assert not unknown, f"no compose service {unknown} in {words}"
    return []


def test_readme_operations_names_only_commands_and_options_that_exist(
    compose: dict[str, Any],
) -> None:
    commands = cli_commands()
    services = set(compose["services"])
    blocks = re.findall(r"```[a-z]*\n(.*?)```", operations_section(), flags=re.S)
    used = 0
    for block in blocks:
        for words in shell_commands(block):
            for args in triage_invocations(words, services):
                path = next(
                    (
                        p
                        for p in sorted(commands, key=len, reverse=True)
                        if tuple(args[: len(p)]) == p
                    ),
                    None,
                )
                assert path is not None, f"README runs a command that does not exist: {words}"
                options = {a.split("=")[0] for a in args[len(path) :] if a.startswith("--")}
                assert options <= commands[path], f"{words}: no option {options - commands[path]}"
                used += 1
    assert used >= 15, f"only {used} triage commands found in the Operations section"


def test_the_readme_command_scanner_catches_mistakes() -> None:
    services = {"db", "migrate"}
    assert triage_invocations(["X=1", ".venv/bin/triage", "audit", "verify"], services) == [
        ["audit", "verify"]
    ]
    assert triage_invocations(
        shell_commands("docker compose -f f.yaml run --rm -v a:/b migrate evidence export 1")[0],
        services,
    ) == [["evidence", "export", "1"]]
    assert shell_commands("cd /x && triage check >> log 2>&1") == [
        ["cd", "/x"],
        ["triage", "check"],
        ["log", "2"],
        ["1"],
    ]
    with pytest.raises(AssertionError):
        triage_invocations(["docker", "compose", "run", "--rm", "worker-9"], services)


def test_readme_operations_settings_table_lists_every_setting() -> None:
    section = operations_section()
    table = [line for line in section.splitlines() if line.startswith("| `TRIAGE_")]
    listed = {re.match(r"\| `(TRIAGE_[A-Z0-9_]+)`", line).group(1) for line in table}  # type: ignore[union-attr]
    assert listed == SETTING_NAMES


def test_readme_operations_names_the_real_paths() -> None:
    section = operations_section()
    assert WEBHOOK_PATH in section and EVENTS_PATH in section and "/healthz" in section
    for path in ("docker/compose.yaml", "docker/slack-manifest.yaml", ".env.example"):
        assert path in section and (REPO / path).exists()
