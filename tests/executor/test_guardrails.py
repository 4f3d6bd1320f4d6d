"""The executor refuses what the guard rails refuse, whatever was approved, on the real engine.

An action approved under an older rule set (built here exactly as the old
planner built it, which let `//var/run/docker.sock` through) and an action
approved while homelab.yaml allowed it, then no longer, must both end in
`failed/` with a permanent error naming the rule, and no container may be
created. The Docker driver refuses on its own too (the node's socket bound
at its real path, and through a symlink).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from reconciler.diff.plan import Change
from reconciler.drivers.docker import DockerDriver
from reconciler.errors import PermanentError
from reconciler.queue import Action, new_action
from tests.conftest import BUSYBOX
from tests.executor.lab import Lab

pytestmark = pytest.mark.docker  # every test here uses the real engine


def allow(lab: Lab, names: list[str]) -> None:
    config = {"apiVersion": "homelab.reconciler/v1alpha1", "kind": "RepositoryConfig"}
    lab.write("homelab.yaml", orjson.dumps({**config, "allowDangerous": names}).decode())


def old_planner_action(lab: Lab, name: str, desired: dict[str, Any]) -> Action:
    """An approved create, as the string-matching planner proposed it."""
    change = Change(
        "Container", name, "create", [{"op": "add", "path": "", "value": desired}], desired, None
    )
    action = new_action(change, commit=lab.repo.head, basis="", manifest=None)
    lab.queue.propose(action, actor="supervisor")
    lab.queue.move(action.id, "pending", "approved", actor="cli-test")
    return action


def test_an_action_approved_under_the_old_rules_is_refused(lab: Lab) -> None:
    volumes = [{"source": "//var/run/docker.sock", "target": "/s", "readOnly": False}]
    name = lab.container("sock", volumes=volumes)
    allow(lab, [name])  # so the planner gives us the exact desired spec the old one gave
    lab.commit()
    [planned] = lab.propose(approve=False)
    allow(lab, [])
    lab.commit("no longer allowed")
    assert planned.desired is not None
    action = old_planner_action(lab, name, planned.desired)
    assert lab.run_now([action]) == ["failed"]
    error = str((lab.action(action.id).outcome or {})["error"])
    assert "[docker-socket]" in error and "//var/run/docker.sock" in error, error
    assert f"allowDangerous: [{name}]" in error
    assert lab.containers(name) == []
    assert lab.client.containers.list(all=True, filters={"name": f"homelab-{name}"}) == []


def test_an_approval_outlives_its_allowance_and_is_refused(lab: Lab) -> None:
    engine = lab.host.removeprefix("unix://")  # the node's own socket, at its real path
    name = lab.container("own", volumes=[{"source": engine, "target": "/engine.sock"}])
    allow(lab, [name])
    lab.commit()
    [create] = lab.propose()
    allow(lab, [])
    lab.commit("revoke")
    assert lab.run_now([create]) == ["failed"]
    error = str((lab.action(create.id).outcome or {})["error"])
    assert "[docker-socket]" in error and engine in error, error
    assert lab.containers(name) == []


@pytest.mark.parametrize("how", ["real-path", "symlink", "double-slash", "parent-folder"])
def test_the_driver_refuses_the_node_socket_however_it_is_named(
    lab: Lab, tmp_path: Path, how: str
) -> None:
    engine = lab.host.removeprefix("unix://")
    link = tmp_path / "harmless"
    os.symlink(engine, link)
    source = {
        "real-path": engine,
        "symlink": str(link),
        "double-slash": "/" + engine,
        "parent-folder": os.path.dirname(engine) + "/./",
    }[how]
    desired = {
        "node": "local",
        "image": BUSYBOX,
        "imagePullPolicy": "Never",
        "command": ["sleep", "60"],
        "networkMode": "host",
        "env": [],
        "capAdd": [],
        "volumes": [{"source": source, "target": "/s", "readOnly": False}],
    }
    name = lab.name(how)
    driver = DockerDriver()
    try:
        with pytest.raises(PermanentError, match=r"\[docker-socket\]"):
            driver.apply(lab.apply_context(name, desired))
    finally:
        driver.close()
    assert lab.containers(name) == []
