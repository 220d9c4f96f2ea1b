"""`python -m bench`: run the benchmarks, print the table, write bench/results.json.

    python -m bench                      # full mode (see BENCHMARKS.md for its run time)
    python -m bench --quick              # small sizes: a smoke test
    python -m bench --only classifiers,outbox
    python -m bench --scale-sizes 10000,100000,1000000 --only scale

Items: turns (1), e2e (2), classifiers (3), scale (4), slack (5), evidence (6), outbox (7).
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from bench import classifiers, e2e, evidence, outbox, report, scale, slack_ack, turns
from bench.common import Config, load_average, machine, now_iso, quiet_logs

#: Order matters for the datasets: evidence reads the store before scale grows it.
ITEMS = {
    "classifiers": classifiers.run,
    "turns": turns.run,
    "e2e": e2e.run,
    "slack": slack_ack.run,
    "outbox": outbox.run,
    "evidence": evidence.run,
    "scale": scale.run,
}
RESULTS = Path(__file__).resolve().parent / "results.json"


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x.replace("_", "")) for x in text.split(",") if x.strip())


def _backends(text: str) -> tuple[str, ...]:
    names = tuple(x.strip() for x in text.split(",") if x.strip())
    unknown = [n for n in names if n not in ("sqlite", "postgres")]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"use sqlite, postgres or both (got {text!r})")
    return names


def parse(argv: list[str]) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes, one run each")
    p.add_argument("--only", default="", help=f"comma-separated items: {','.join(ITEMS)}")
    p.add_argument("--repeats", type=int, help="runs per measurement (median reported)")
    p.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON")
    p.add_argument("--postgres-url", help="PostgreSQL base URL (else TRIAGE_BENCH_POSTGRES_URL)")
    p.add_argument("--no-postgres", action="store_true", help="SQLite only")
    p.add_argument("--scale-sizes", type=_ints, help="stored clients, e.g. 10000,100000,1000000")
    p.add_argument(
        "--scale-backends",
        type=_backends,
        help="item 4 on these only, e.g. postgres (default: sqlite,postgres)",
    )
    p.add_argument("--scale-samples", type=int, help="turns and gate checks per size")
    p.add_argument("--scale-repeats", type=int, help="runs at each size")
    p.add_argument("--evidence-clients", type=int, help="stored clients for verify")
    p.add_argument("--export-clients", type=int, help="clients exported")
    p.add_argument("--turn-clients", type=int, help="concurrent conversations in item 1")
    p.add_argument("--e2e-clients", type=int, help="concurrent clients in item 2")
    p.add_argument("--profile", action="store_true", help="cProfile into bench/profiles/")
    p.add_argument(
        "--keep-sqlite-datasets",
        type=Path,
        metavar="DIR",
        help="build item 4's SQLite store in DIR and leave it there (its path is printed) for "
        "`python -m bench.remeasure`",
    )
    p.add_argument(
        "--keep-postgres-datasets",
        action="store_true",
        help="leave item 4's PostgreSQL store in place (its URL is printed) for "
        "`python -m bench.remeasure`; drop the schema yourself afterwards",
    )
    p.add_argument("--work-dir", type=Path, help="scratch folder for SQLite files")
    return p.parse_args(argv)


def config(args: argparse.Namespace, work_dir: Path) -> Config:
    """The Config the arguments describe."""
    overrides: dict[str, Any] = {"work_dir": work_dir}
    for name in (
        "repeats",
        "scale_sizes",
        "scale_samples",
        "scale_repeats",
        "evidence_clients",
        "export_clients",
        "turn_clients",
        "e2e_clients",
        "postgres_url",
        "scale_backends",
    ):
        value = getattr(args, name)
        if value is not None:
            overrides[name] = value
    if args.keep_sqlite_datasets is not None:
        args.keep_sqlite_datasets.mkdir(parents=True, exist_ok=True)
        overrides["keep_dir"] = args.keep_sqlite_datasets.resolve()
    if args.no_postgres:
        overrides["postgres_url"] = "postgresql+psycopg://disabled@127.0.0.1:1/none"
        overrides["scale_backends"] = ("sqlite",)
    return Config.quick_config(**overrides) if args.quick else Config(**overrides)


async def run_items(
    cfg: Config, names: list[str], profile: bool, keep_postgres: bool = False
) -> dict[str, Any]:
    """Each item in its turn; a failing item is reported, the others still run."""
    from bench.datagen import close_all

    sections: dict[str, Any] = {}
    durations: dict[str, float] = {}
    errors: dict[str, str] = {}
    try:
        for name in names:
            started = time.perf_counter()
            print(f"[bench] {name} ...", file=sys.stderr, flush=True)
            try:
                sections[name] = await ITEMS[name](cfg, profile=profile)
            except Exception as exc:
                errors[name] = f"{type(exc).__name__}: {exc}"
                traceback.print_exc()
            durations[name] = round(time.perf_counter() - started, 1)
            print(f"[bench] {name} done in {durations[name]} s", file=sys.stderr, flush=True)
    finally:
        close_all(cfg, keep_postgres=keep_postgres)
    return {"sections": sections, "durations": durations, "errors": errors}


def code_state() -> dict[str, Any]:
    """The commit measured, and whether the work tree had changes beyond it."""
    import subprocess

    repo = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=repo, capture_output=True, text=True, check=False, timeout=30
        )
        return done.stdout.strip()

    try:
        changed = [line for line in git("status", "--porcelain").splitlines() if line]
        return {"commit": git("rev-parse", "HEAD"), "uncommitted_paths": len(changed)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "uncommitted_paths": None}


def main(argv: list[str] | None = None) -> int:
    """Run, print, write; exit 1 if an item failed."""
    args = parse(sys.argv[1:] if argv is None else argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(ITEMS)
    unknown = [n for n in names if n not in ITEMS]
    if unknown:
        print(f"unknown item(s) {unknown}; choose from {list(ITEMS)}", file=sys.stderr)
        return 2
    names = [n for n in ITEMS if n in names]
    quiet_logs()
    started = time.perf_counter()
    info = machine()
    code = code_state()  # before the run: other work may land while it runs
    with tempfile.TemporaryDirectory(prefix="triage-bench-", dir=args.work_dir) as tmp:
        cfg = config(args, Path(tmp))
        outcome = asyncio.run(
            run_items(cfg, names, args.profile, keep_postgres=args.keep_postgres_datasets)
        )
    header = {
        "machine": info["summary"],
        "code": code,
        "date": now_iso(),
        "command": "python -m bench " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])),
        "mode": "quick" if cfg.quick else "full",
        "items": names,
        "machine_info": {**info, "load_average_at_end": load_average()},
        "config": {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in vars(cfg).items()
            if k not in ("work_dir", "postgres_url", "keep_dir")
        },
        "durations_s": {**outcome["durations"], "total": round(time.perf_counter() - started, 1)},
        "errors": outcome["errors"],
    }
    doc = report.assemble(header, outcome["sections"])
    report.write(doc, args.out)
    report.print_table(doc)
    print(f"wrote {args.out}", file=sys.stderr)
    return 1 if outcome["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
