"""Benchmark: `homelab import compose` of the five sample projects (prints figures only).

Imports tests/data/compose-real/* into a fresh repository (first import:
every file written), then again with nothing changed (re-import: every
file read round-trip, nothing written), in-process through
`reconciler.importing.run.import_compose`, and splits off the part
`docker-compose config` takes (a subprocess per project, which dominates).
Prints the median and range of several runs for each.

    .venv/bin/python hack/bench/import_bench.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from reconciler.importing.compose_config import load_project
from reconciler.importing.run import import_compose

TOP = Path(__file__).resolve().parents[2]
PROJECTS = ("traefik", "jellyfin", "postgres", "nextcloud", "vaultwarden")


def _figures(name: str, values: list[float]) -> None:
    print(
        f"{name:34} median {statistics.median(values) * 1000:8.1f} ms  "
        f"range {min(values) * 1000:.1f}-{max(values) * 1000:.1f} ms  ({len(values)} runs)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    os.environ.setdefault("JELLYFIN_RENDER_DEVICE", "/dev/null")
    first, again, config = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        samples = Path(tmp) / "samples"
        shutil.copytree(TOP / "tests/data/compose-real", samples)
        files = [samples / p / "compose.yaml" for p in PROJECTS]
        for _ in range(runs):
            repo = Path(tempfile.mkdtemp(dir=tmp))
            t0 = time.perf_counter()
            for path in files:
                import_compose(repo, [path])
            first.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            for path in files:
                import_compose(repo, [path])
            again.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            for path in files:
                load_project([path])
            config.append(time.perf_counter() - t0)
    print(f"homelab import compose, {len(PROJECTS)} projects (19 resources)")
    _figures("first import (5 files written)", first)
    _figures("re-import (nothing changed)", again)
    _figures("of which docker-compose config", config)


if __name__ == "__main__":
    main()
