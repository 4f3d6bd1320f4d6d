"""A small homelab for executor and driver tests: a real git repo, runtime root and engine.

`Lab` writes manifests (with a `local` Node pointing at the test engine and a
temporary allowed root), commits, plans with the real planner, proposes and
approves actions through the real queue, and folds the executor's
`observed.*` events into world documents exactly as docs/internals.md says
the observer does (so the tests do not depend on the observer service).
Containers get a per-test name prefix and are removed at teardown.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from reconciler.atomic_files import atomic_write_json, read_json
from reconciler.drivers.base import ApplyContext, DriverSettings, NodeInfo
from reconciler.events.log import EventLog
from reconciler.executor.action_runner import ActionRunner, RetryPolicy
from reconciler.executor.context import DesiredView
from reconciler.executor.service import Executor, default_drivers
from reconciler.planning import PlanResult, compute_plan
from reconciler.queue import Action, ActionQueue, new_action
from reconciler.resources.normalize import spec_hash
from reconciler.runtime_root import RuntimeRoot
from reconciler.sources.git import GitSource
from reconciler.supervisor.proposals import world_basis
from reconciler.world import new_world_doc, world_path
from tests.conftest import BUSYBOX, GitRepo

TOP = Path(__file__).resolve().parents[2]
FINAL = ("done", "failed", "superseded", "rejected")


def container_yaml(name: str, **spec: Any) -> str:
    body = {
        "image": BUSYBOX,
        "imagePullPolicy": "Never",
        "command": ["sleep", "3600"],
        "networkMode": "host",
        "restartPolicy": "no",
        **spec,
    }
    doc = {
        "apiVersion": "homelab.reconciler/v1alpha1",
        "kind": "Container",
        "metadata": {"name": name},
        "spec": body,
    }
    return orjson.dumps(doc).decode() + "\n"  # JSON is YAML


class Lab:
    def __init__(self, tmp: Path, docker_host: str, client: Any) -> None:
        self.tmp = tmp
        self.repo = GitRepo(tmp / "repo")
        self.root = RuntimeRoot(tmp / "root").ensure()
        self.files = tmp / "srv"
        self.files.mkdir()
        self.host = docker_host
        self.client = client
        self.prefix = "t" + uuid.uuid4().hex[:6]
        self.events = EventLog(self.root, "cli-test")
        self.queue = ActionQueue(self.root, self.events)
        self._runner: ActionRunner | None = None
        self.node(docker_host)

    def name(self, short: str) -> str:
        return f"{self.prefix}-{short}"

    def node(self, docker_host: str, name: str = "local") -> None:
        doc = {
            "apiVersion": "homelab.reconciler/v1alpha1",
            "kind": "Node",
            "metadata": {"name": name},
            "spec": {"dockerHost": docker_host, "allowedRoots": [str(self.files)]},
        }
        self.repo.write(f"manifests/node-{name}.yaml", orjson.dumps(doc).decode() + "\n")

    def container(self, short: str, **spec: Any) -> str:
        name = self.name(short)
        self.repo.write(f"manifests/{name}.yaml", container_yaml(name, **spec))
        return name

    def write(self, rel: str, text: str) -> None:
        self.repo.write(rel, text)

    def commit(self, message: str = "change") -> str:
        return self.repo.commit(message)

    def plan(self, *, fold: bool = True) -> PlanResult:
        """Plan against the world; `fold=False` when a real observer keeps the world."""
        if fold:
            self.fold()
        return compute_plan(GitSource(self.repo.path), self.root)

    def propose(self, *, approve: bool = True, fold: bool = True) -> list[Action]:
        """Plan, propose every change and (by default) approve it, like the UI would."""
        result = self.plan(fold=fold)
        assert not result.errors, [str(e) for e in result.errors]
        actions = []
        for change in result.plan.changes:
            basis = world_basis(result.world.get(change.ref))
            manifest = result.state.manifests.get(change.ref)
            action = new_action(
                change,
                commit=result.state.commit,
                basis=basis,
                manifest=manifest.doc if manifest else None,
            )
            self.queue.propose(action, actor="supervisor")
            if approve:
                self.queue.move(action.id, "pending", "approved", actor="cli-test")
            actions.append(action)
        return actions

    def fold(self) -> None:
        """Fold observed.* events into world documents, as the observer does."""
        events = []
        for path in sorted(self.root.events.glob("*/*.jsonl")):
            for line in path.read_bytes().splitlines():
                try:
                    events.append(orjson.loads(line))
                except orjson.JSONDecodeError:
                    continue  # a torn line from a killed writer
        for event in sorted(events, key=lambda e: e["id"]):
            if event["type"] not in ("observed.resource", "observed.missing"):
                continue
            kind, name = event["ref"]["kind"], event["ref"]["name"]
            target = world_path(self.root, kind, name)
            doc = read_json(target) if target.exists() else new_world_doc(kind, name)
            status = doc["status"]
            if event["type"] == "observed.resource":
                spec = event["data"]["spec"]
                managed = bool(event["data"].get("managed", True))  # as the observer's fold
                status.update(exists=True, observed=spec, basis=spec_hash(spec), managed=managed)
                status["health"] = event["data"].get("health", "Unknown")
            else:
                status.update(exists=False, observed=None, basis="", health="Missing")
            status["lastEventId"] = event["id"]
            atomic_write_json(target, doc)

    def apply_context(
        self, name: str, desired: dict[str, Any] | None, action_id: str = "0" * 20
    ) -> ApplyContext:
        """What a driver gets for a create of Container `name` on the local node."""
        action = Action(
            id=action_id,
            kind="Container",
            name=name,
            operation="create",
            desired=desired,
            commit="0" * 40,
        )
        return ApplyContext(
            action=action,
            node=NodeInfo("local", self.host),
            root=self.root,
            repo_file=lambda path: None,
            secret_file=lambda name: None,
            settings=DriverSettings(stop_grace=1),
        )

    def state(self, action_id: str) -> str | None:
        return self.queue.find(action_id)

    def action(self, action_id: str) -> Action:
        found = self.queue.get(action_id)
        assert found is not None
        return found[1]

    def wait_final(self, action_id: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.state(action_id)
            if state in FINAL:
                assert state is not None
                return state
            time.sleep(0.05)
        raise AssertionError(f"action {action_id} still {self.state(action_id)} after {timeout}s")

    def containers(self, name: str) -> list[Any]:
        return list(
            self.client.containers.list(
                all=True, filters={"label": f"homelab.reconciler/name={name}"}
            )
        )

    def executor_events(self, type: str | None = None) -> list[dict[str, Any]]:
        out = []
        for path in sorted(self.root.events.glob("*/executor.jsonl")):
            for line in path.read_bytes().splitlines():
                try:
                    event = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if type is None or event["type"] == type:
                    out.append(event)
        return out

    def run_now(self, actions: list[Action], **settings: Any) -> list[str | None]:
        """Claim and run approved actions in this process, in order; their final states."""
        if self._runner is None:
            events = EventLog(self.root, "executor")
            view = DesiredView(GitSource(self.repo.path), self.root)
            self._runner = ActionRunner(
                ActionQueue(self.root, events),
                events,
                view,
                default_drivers(),
                settings=DriverSettings(stop_grace=1, **settings),
                retry=RetryPolicy(attempts=2, initial=0.1, maximum=0.2),
            )
        return [self._runner.claim_and_run(a.id) for a in actions]

    def cleanup(self) -> None:
        if self._runner is not None:
            self._runner.events.close()
        for container in self.client.containers.list(all=True):
            if container.name.startswith(f"homelab-{self.prefix}"):
                container.remove(force=True)
        self.events.close()

    def executor_command(self, *extra: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "reconciler",
            "run",
            "executor",
            "--repo",
            str(self.repo.path),
            "--root",
            str(self.root.path),
            "--retry-initial",
            "0.2",
            "--retry-max",
            "1",
            "--stop-grace",
            "1",
            *extra,
        ]

    def spawn_executor(self, *extra: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, "PYTHONPATH": str(TOP)}
        return subprocess.Popen(
            self.executor_command(*extra),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=TOP,
        )


class ThreadedExecutor:
    """The executor service in a thread of the test process."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.executor.run(self.stop)
        except BaseException as exc:
            self.error = exc

    def __enter__(self) -> ThreadedExecutor:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)
        assert not self.thread.is_alive(), "executor did not stop"
        if self.error is not None:
            raise self.error


@pytest.fixture
def lab(tmp_path: Path, docker_host: str, docker_client: Any) -> Iterator[Lab]:
    the_lab = Lab(tmp_path, docker_host, docker_client)
    yield the_lab
    the_lab.cleanup()
