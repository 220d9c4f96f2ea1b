"""The house's arrows (DESIGN.md, Layers), checked on the source with `ast`.

Imports point down: channels -> service -> flows/outbox -> domain; the store imports nothing
above it; the outbox nothing of the flows or the channels; the flows only the domain; the
domain nothing of the project outside itself; nothing in the product imports the test
servers, which live outside it (the triage-sandbox package in sandbox/): only `triage demo` and
`triage chat` load them, inside the functions that need them. `KNOWN` lists the arrows that
still point the wrong way (the redesign of issue 13 is not finished): a new one fails the
test, and so does an entry that no longer exists, so the list only ever shrinks.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "triage"

#: The loopback Telegram and Slack servers and the outbox's test doubles (sandbox/ at the
#: repository root, not the product).
SANDBOX = "triage_sandbox"
#: Commands that run the product against the test servers on purpose (`triage demo`,
#: `triage chat`), importing them lazily; tests and the benchmarks are outside src/.
SANDBOX_USERS = ("triage.cli.demo", "triage.cli.chat")

#: (importer's layer or module, imported module) pairs still to be removed.
KNOWN: frozenset[tuple[str, str]] = frozenset(
    {
        # Channels still reach below the service layer (step 4 of issue 13); the staff
        # notifications (slack_staff) are a service still living among the adapters.
        ("triage.channels.slack", "triage.flows.engine"),
        ("triage.channels.slack", "triage.store.db"),
        ("triage.channels.slack", "triage.store.models"),
        ("triage.channels.slack", "triage.observability"),
        ("triage.channels.slack", "triage.settings"),
        ("triage.channels.slack", "triage.outbox.senders"),
        ("triage.channels.slack_cards", "triage.flows.engine"),
        ("triage.channels.slack_cards", "triage.store.models"),
        ("triage.channels.slack_staff", "triage.flows.engine"),
        ("triage.channels.slack_staff", "triage.outbox.dispatcher"),
        ("triage.channels.slack_staff", "triage.outbox.facts"),
        ("triage.channels.slack_staff", "triage.outbox.rows"),
        ("triage.channels.slack_staff", "triage.store"),
        ("triage.channels.slack_staff", "triage.store.audit"),
        ("triage.channels.slack_staff", "triage.store.db"),
        ("triage.channels.slack_staff", "triage.store.models"),
        ("triage.channels.telegram", "triage.flows.engine"),
        ("triage.channels.telegram", "triage.outbox.senders"),
    }
)


def _module(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> Iterator[str]:
    """Every project module `path` imports, at any depth (function-level imports too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    here = _module(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            # `from triage.store import audit` imports the module triage.store.audit.
            names = [module] + [f"{module}.{alias.name}" for alias in node.names]
            names = [n for n in names if _is_module(n)] or [module]
        else:
            continue
        yield from (n for n in names if n == "triage" or n.startswith("triage."))


def _is_module(name: str) -> bool:
    path = SRC.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _within(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _graph() -> dict[str, set[str]]:
    return {
        _module(path): set(_imports(path))
        for path in sorted(PACKAGE.rglob("*.py"))
        if "__pycache__" not in path.parts
    }


def _violations() -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for importer, imported in _graph().items():
        for name in imported:
            if name in ("triage", importer):
                continue
            wrong = (
                (_within(importer, "triage.domain") and not _within(name, "triage.domain"))
                or (
                    _within(importer, "triage.store")
                    and _within(
                        name,
                        "triage.flows",
                        "triage.outbox",
                        "triage.channels",
                        "triage.service",
                        "triage.app",
                    )
                )
                or (
                    _within(importer, "triage.outbox")
                    and _within(name, "triage.flows", "triage.channels", "triage.service")
                )
                or (
                    _within(importer, "triage.flows")
                    and not _within(name, "triage.flows", "triage.domain")
                )
                or (
                    _within(importer, "triage.service")
                    and _within(name, "triage.channels", "triage.app", "triage.cli")
                )
                or (
                    _within(importer, "triage.channels")
                    and not _within(name, "triage.channels", "triage.service", "triage.domain")
                )
            )
            if wrong:
                found.add((importer, name))
    return found


def test_imports_point_down() -> None:
    new = sorted(_violations() - KNOWN)
    assert new == [], "imports against the house's arrows (DESIGN.md, Layers):\n" + "\n".join(
        f"  {a} imports {b}" for a, b in new
    )


def test_known_wrong_arrows_are_still_there() -> None:
    gone = sorted(KNOWN - _violations())
    assert gone == [], "fixed, so remove from KNOWN:\n" + "\n".join(
        f"  {a} -> {b}" for a, b in gone
    )


def test_the_check_sees_a_wrong_arrow() -> None:
    """The parser finds imports inside functions and `from package import module` forms."""
    sample = PACKAGE / "domain" / "policy.py"
    names = set(_imports(sample))
    assert names and all(_within(n, "triage.domain") for n in names)
    store = set(_imports(PACKAGE / "service" / "client_events.py"))
    assert "triage.store.audit" in store and "triage.flows.engine" in store


def _sandbox_imports(source: str) -> Iterator[tuple[int, bool]]:
    """(line, lazy) of every import of the sandbox in `source`; lazy means inside a function or
    under `if TYPE_CHECKING:`, so importing the module does not load the sandbox."""

    def visit(node: ast.AST, lazy: bool) -> Iterator[tuple[int, bool]]:
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""] if not node.level else []
        else:
            names = []
        if any(_within(n, SANDBOX) for n in names):
            yield node.lineno, lazy
        inner = lazy or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        if isinstance(node, ast.If) and ast.unparse(node.test) in (
            "TYPE_CHECKING",
            "typing.TYPE_CHECKING",
        ):
            for child in node.body:
                yield from visit(child, True)
            for child in node.orelse:
                yield from visit(child, lazy)
            return
        for child in ast.iter_child_nodes(node):
            yield from visit(child, inner)

    yield from visit(ast.parse(source), False)


def _product_files() -> list[Path]:
    return [p for p in sorted(PACKAGE.rglob("*.py")) if "__pycache__" not in p.parts]


def test_the_product_does_not_import_the_sandbox() -> None:
    """Only `triage demo` and `triage chat` import the test servers, and only lazily."""
    wrong = []
    for path in _product_files():
        module = _module(path)
        for line, lazy in _sandbox_imports(path.read_text(encoding="utf-8")):
            if module not in SANDBOX_USERS:
                wrong.append(f"  {module}:{line} imports {SANDBOX}")
            elif not lazy:
                wrong.append(f"  {module}:{line} imports {SANDBOX} at the top (import it lazily)")
    assert wrong == [], "the test servers are not the product:\n" + "\n".join(wrong)


def test_the_sandbox_is_not_in_the_product_package() -> None:
    """The test servers and the outbox's doubles live in sandbox/, outside src/triage."""
    inside = [
        str(p.relative_to(SRC))
        for p in _product_files()
        if "sandbox" in p.relative_to(PACKAGE).parts or p.stem in ("testing", "sandbox")
    ]
    assert inside == []
    assert not (PACKAGE / "sandbox").exists()
    sandbox = SRC.parent / "sandbox" / "src" / SANDBOX
    assert (sandbox / "telegram.py").exists() and (sandbox / "outbox.py").exists()


def test_the_check_sees_a_sandbox_import() -> None:
    """The scan finds the demo's lazy imports and tells a top-level import from a lazy one."""
    demo = list(_sandbox_imports((PACKAGE / "cli" / "demo.py").read_text(encoding="utf-8")))
    assert demo and all(lazy for _, lazy in demo)
    sample = (
        "import triage_sandbox.slack\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from triage_sandbox.telegram import TelegramSandbox\n"
        "def f():\n"
        "    from triage_sandbox.slack_signing import deliver\n"
        "from triage_sandboxes import nothing\n"
    )
    assert list(_sandbox_imports(sample)) == [(1, False), (4, True), (6, True)]
