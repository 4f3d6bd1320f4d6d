"""Cost of rendering one change for people (`reconciler.diff.render_change`).

Builds Container specs through the real model (three variables, a port, a
label), then renders an update (one variable and the host port changed) and
a create, `--number` times per run, `--runs` runs; prints the median and the
range of the per-render times. The UI renders a page's 50 rows at most once
per action (cached by id), the supervisor once per proposal.

    .venv/bin/python hack/bench/diff_render.py [--runs 7] [--number 500]

Figures are printed; nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import timeit
from typing import Any

from reconciler.diff import diff_resource, render_change
from reconciler.resources.kinds import Container


def spec(**fields: Any) -> dict[str, Any]:
    doc = {"metadata": {"name": "web"}, "spec": {"image": "local/busybox:1", **fields}}
    out: dict[str, Any] = Container.model_validate(doc).model_dump(mode="json")["spec"]
    for key in ("policy", "dependsOn", "networks"):
        out.pop(key, None)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--number", type=int, default=500)
    args = parser.parse_args()
    env = {"A": "1", "B": "2", "C": "3"}
    old = spec(env=env, ports=[{"containerPort": 80}], labels={"app": "web"})
    new = spec(
        env={**env, "A": "2"}, ports=[{"containerPort": 80, "hostPort": 81}], labels={"app": "web"}
    )
    cases = {
        "update": diff_resource("Container", "web", new, old),
        "create": diff_resource("Container", "web", new, None),
    }
    for name, change in cases.items():
        assert change is not None
        runs = [
            timeit.timeit(lambda c=change: render_change(c), number=args.number) / args.number * 1e6
            for _ in range(args.runs)
        ]
        print(
            f"{name}: median {statistics.median(runs):.0f} us per render, "
            f"range {min(runs):.0f}-{max(runs):.0f} us ({args.runs} runs x {args.number})"
        )


if __name__ == "__main__":
    main()
