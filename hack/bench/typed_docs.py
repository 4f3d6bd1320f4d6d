"""Benchmark: world documents and actions decoded untyped vs typed (prints figures only).

Why the typed core documents are msgspec structs and not pydantic models:
decodes 1,000 world documents and 1,000 action documents as the services
read them (bytes from a file) with orjson into plain dicts (what the code
did before the types), with msgspec straight into `WorldDoc` / `Action`,
and with pydantic models of the same shapes (defined here), and prints the median
of several runs for each.

    .venv/bin/python hack/bench/typed_docs.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pydantic

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from reconciler.diff import diff_resource
from reconciler.queue.action import action_from_json, action_to_dict, new_action
from reconciler.world import new_world_doc
from reconciler.world.doc import world_doc_from_json

COUNT = 1000


def world_docs() -> list[bytes]:
    out = []
    for i in range(COUNT):
        doc = new_world_doc("Container", f"svc-{i}")
        spec = {"image": f"registry.example.com/app-{i}:1.0", "node": "local", "env": {"A": "1"}}
        doc["status"].update(exists=True, managed=True, observed=spec, basis="f" * 16)
        doc["status"]["conditions"] = [
            {
                "type": "Ready",
                "status": "True",
                "reason": "",
                "message": "",
                "lastTransitionTime": "t",
            }
        ]
        doc["status"]["node"] = "local"
        doc["status"]["eventIds"] = {"observed": "e", "lastAction": "", "conditions": {}}
        out.append(orjson.dumps(doc))
    return out


def action_docs() -> list[bytes]:
    out = []
    for i in range(COUNT):
        change = diff_resource(
            "Container", f"svc-{i}", {"image": f"app:{i}", "node": "local"}, None
        )
        assert change is not None
        action = new_action(change, commit="c" * 40, basis="", manifest={"spec": {"image": "x"}})
        out.append(orjson.dumps(action_to_dict(action)))
    return out


class _Frozen(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(frozen=True)


class PCondition(_Frozen):
    type: str
    status: str
    reason: str = ""
    message: str = ""
    lastTransitionTime: str | None = None


class PStatus(_Frozen):
    exists: bool = False
    managed: bool = False
    observed: dict[str, Any] | None = None
    observedAt: str | None = None
    health: str = "Unknown"
    conditions: tuple[PCondition, ...] = ()
    basis: str | None = ""
    lastAction: dict[str, Any] | None = None
    lastEventId: str | None = None
    node: str | None = None
    eventIds: dict[str, Any] = {}


class PMeta(_Frozen):
    name: str
    labels: dict[str, Any] = {}


class PWorldDoc(_Frozen):
    """The same shape as `WorldDoc`, as a pydantic model."""

    apiVersion: str
    kind: str
    metadata: PMeta
    status: PStatus = PStatus()


class PAction(_Frozen):
    """The same shape as `Action`, as a pydantic model."""

    id: str
    planId: str = ""
    generation: int = 0
    kind: str
    name: str
    operation: str
    patch: list[dict[str, Any]] = []
    desired: dict[str, Any] | None = None
    observed: dict[str, Any] | None = None
    forcesReplacement: list[str] = []
    manifest: dict[str, Any] | None = None
    commit: str = ""
    basis: str = ""
    summary: str = ""
    autoApprove: bool = False
    createdAt: str = ""
    outcome: dict[str, Any] | None = None


def timed(label: str, fn: Any, data: list[bytes], runs: int = 9) -> None:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        for raw in data:
            fn(raw)
        samples.append((time.perf_counter() - start) * 1e6 / len(data))
    print(
        f"  {label:<38} median {statistics.median(samples):6.1f} us/doc "
        f"(range {min(samples):.1f}-{max(samples):.1f})"
    )


def main() -> None:
    worlds, actions = world_docs(), action_docs()
    print(f"{COUNT} world documents ({sum(map(len, worlds)) / COUNT:.0f} bytes each):")
    timed("orjson -> dict (untyped, before)", orjson.loads, worlds)
    timed("msgspec -> WorldDoc (typed, now)", world_doc_from_json, worlds)
    timed("pydantic model, same shape", PWorldDoc.model_validate_json, worlds)
    print(f"{COUNT} action documents ({sum(map(len, actions)) / COUNT:.0f} bytes each):")
    timed("orjson -> dict (untyped, before)", orjson.loads, actions)
    timed("msgspec -> Action (typed, now)", action_from_json, actions)
    timed("pydantic model, same shape", PAction.model_validate_json, actions)


if __name__ == "__main__":
    main()
