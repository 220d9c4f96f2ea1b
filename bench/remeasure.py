"""`python -m bench.remeasure --url URL --size N`: item 4's measurement on a kept store.

Building the 1 M store takes 10-20+ minutes; `python -m bench --only scale
--keep-postgres-datasets` (or `--keep-sqlite-datasets DIR`) leaves it in place, and this
measures it again (after a fix, say) without building it again. It prints the same figures
as item 4 at that size, as JSON. The measurement adds clients and rows (new conversations,
queued messages), a few hundred per run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from bench.common import example_engine, quiet_logs
from bench.scale import measure


def main(argv: list[str] | None = None) -> int:
    """Measure, print the JSON."""
    p = argparse.ArgumentParser(
        prog="python -m bench.remeasure", description=__doc__.split("\n")[0]
    )
    p.add_argument("--url", required=True, help="the kept store's URL, as the bench printed it")
    p.add_argument("--size", type=int, required=True, help="generated clients it holds")
    p.add_argument("--samples", type=int, default=300, help="turns and gate checks")
    p.add_argument(
        "--seed",
        type=int,
        default=int(time.time()),
        help="picks the stored clients; a new one per run by default (the new clients' "
        "update keys derive from it, and a store refuses a key it has seen)",
    )
    p.add_argument(
        "--sqlite-cache-kib",
        type=int,
        help="what-if: SQLite page cache per connection (the product's default is 65536)",
    )
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    quiet_logs()
    kwargs = (
        {} if args.sqlite_cache_kib is None else {"sqlite_cache_size_kib": args.sqlite_cache_kib}
    )
    figures = asyncio.run(
        measure(args.url, example_engine(), args.size, args.samples, args.seed, kwargs)
    )
    figures["engine_kwargs"] = kwargs
    print(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
