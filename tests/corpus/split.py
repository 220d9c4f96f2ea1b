"""Split a blind writer's `scenarios.yaml` into `tune.yaml` and `frozen.yaml` (every third).

Run once per group, right after the writer finishes and before anyone tunes on it:
`python -m tests.corpus.split tests/corpus/g1`. The frozen third is never read to improve the
product; it is only measured (`make accuracy`). The split is by position (the 3rd, 6th, ...
scenario), so each language and rule class a writer spread evenly lands in both parts.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml


def split(folder: Path) -> tuple[int, int]:
    source = folder / "scenarios.yaml"
    spec: dict[str, Any] = yaml.safe_load(source.read_text(encoding="utf-8"))
    scenarios = spec.pop("scenarios")
    parts = {
        "tune": [s for i, s in enumerate(scenarios) if i % 3 != 2],
        "frozen": [s for i, s in enumerate(scenarios) if i % 3 == 2],
    }
    for name, chosen in parts.items():
        doc = {**spec, "scenarios": chosen}
        head = f"# {folder.name}: the {name} part of a blind corpus (tests/corpus/README.md)\n"
        body = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=100)
        (folder / f"{name}.yaml").write_text(head + body, encoding="utf-8")
    source.unlink()
    return len(parts["tune"]), len(parts["frozen"])


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(arg, *split(Path(arg)))
