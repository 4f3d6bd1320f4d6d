"""A small homelab for supervisor tests: a real git repository and a real runtime root.

`Lab` writes Container manifests and commits them, writes world documents the
way the observer does (`observe`), plays the executor's queue moves
(`execute`), runs the real `homelab` console script, and runs supervisor
passes in-process (`reconcile`) so tests decide exactly when a pass happens.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from reconciler.atomic_files import atomic_write_json
from reconciler.planning import desired_specs
from reconciler.queue import Action, ActionQueue
from reconciler.queue.action import now_iso
from reconciler.resources.normalize import spec_hash
from reconciler.runtime_root import RuntimeRoot
from reconciler.sources.git import GitSource
from reconciler.supervisor.service import Supervisor, SupervisorSettings
from reconciler.world import new_world_doc, world_path

HOMELAB = str(Path(sys.executable).parent / "homelab")

CONTAINER = """\
apiVersion: homelab.reconciler/v1alpha1
kind: Container
metadata:
  name: {name}
spec:
  image: {image}
  imagePullPolicy: Never
  command: ["sleep", "3600"]
  networkMode: host
{policy}"""


class Lab:
    def __init__(self, repo: Any, root: RuntimeRoot) -> None:
        self.repo = repo
        self.root = root
        self.queue = ActionQueue(root)
        self._supervisor: Supervisor | None = None

    # -- desired state -------------------------------------------------------
    def container(self, name: str, image: str = "local/busybox:1", *, auto: bool = False) -> None:
        policy = "  policy:\n    autoApprove: true\n" if auto else ""
        text = CONTAINER.format(name=name, image=image, policy=policy)
        self.repo.write(f"manifests/{name}.yaml", text)

    def remove(self, name: str) -> None:
        self.repo.remove(f"manifests/{name}.yaml")

    def commit(self, message: str = "change") -> str:
        sha: str = self.repo.commit(message)
        return sha

    def desired(self, name: str, ref: str | None = None) -> dict[str, Any]:
        source = GitSource(self.repo.path)
        specs, _errors, _invalid = desired_specs(source, source.load(ref), self.root)
        return specs[("Container", name)]

    # -- observed state (what the observer would write) ----------------------
    def observe(self, name: str, spec: dict[str, Any] | None, kind: str = "Container") -> None:
        doc = new_world_doc(kind, name)
        status = doc["status"]
        status.update(
            exists=spec is not None,
            managed=True,
            observed=spec,
            observedAt=now_iso(),
            basis=spec_hash(spec) if spec is not None else "",
            health="Healthy" if spec is not None else "Missing",
        )
        atomic_write_json(world_path(self.root, kind, name), doc)

    def observer_caught_up(self, caught_up: bool = True, listed: bool = True) -> None:
        started = "2024-01-01T00:00:00.000000Z"
        atomic_write_json(
            self.root.state / "observer_status.json",
            {
                "caughtUp": caught_up,
                "updatedAt": now_iso(),
                "lagBytes": 0,
                "eventsFolded": 1,
                "nodes": {
                    "local": {
                        "collectorStartedAt": started,
                        "lastFullListingAt": now_iso() if listed else None,
                        "ready": True,
                    }
                },
            },
        )

    # -- queue ---------------------------------------------------------------
    def actions(self, state: str = "pending") -> list[dict[str, Any]]:
        return self.queue.actions(state)

    def only(self, state: str = "pending") -> Action:
        found = self.actions(state)
        assert len(found) == 1, [(a.kind, a.name, a.operation) for a in found]
        return found[0]

    def execute(self, action_id: str) -> None:
        """The executor's part: claim, apply (the world shows desired), finish."""
        action = self.queue.move(action_id, "approved", "running", actor="executor")
        self.queue.move(action_id, "running", "done", actor="executor", outcome={"result": "ok"})
        self.observe(action.name, action.desired)

    # -- services ------------------------------------------------------------
    def supervisor(self, **settings: Any) -> Supervisor:
        if self._supervisor is None or settings:
            if self._supervisor is not None:
                self._supervisor.events.close()
            self._supervisor = Supervisor(
                self.repo.path, self.root, None, SupervisorSettings(**settings)
            )
        return self._supervisor

    def reconcile(self) -> dict[str, Any]:
        status = self.supervisor().reconcile(force=True)
        assert status is not None
        return status

    def cli(self, *args: str, operator: str = "alice", check: bool = True) -> Any:
        env = {**os.environ, "HOMELAB_OPERATOR": operator}
        proc = subprocess.run(
            [HOMELAB, *args, "--root", str(self.root.path)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if check:
            assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    def events(self, type_prefix: str = "") -> list[dict[str, Any]]:
        import orjson

        out = []
        for path in sorted(self.root.events.glob("*/*.jsonl")):
            for line in path.read_bytes().splitlines():
                if line.strip():
                    event = orjson.loads(line)
                    if event["type"].startswith(type_prefix):
                        out.append(event)
        return out

    def close(self) -> None:
        if self._supervisor is not None:
            self._supervisor.events.close()


@pytest.fixture
def lab(git_repo: Any, runtime_root: RuntimeRoot) -> Any:
    made = Lab(git_repo, runtime_root)
    yield made
    made.close()
