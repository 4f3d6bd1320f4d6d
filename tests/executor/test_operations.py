"""start, stop and adopt through the queue: planned from the world, approved, run, observed.

The world documents are written from the container as the Docker driver observes it
(`_observed_spec`, the function the stale-plan check hashes too), then the real planner
plans, the real queue holds the approved action and the executor's `ActionRunner` runs
it against the real engine; afterwards the executor's own `observed.resource` event,
folded, leaves nothing to plan.
"""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.atomic_files import atomic_write_json
from reconciler.drivers.adopted import read_adopted
from reconciler.drivers.docker import _observed_spec, container_name
from reconciler.resources.normalize import spec_hash
from reconciler.world import new_world_doc, world_path
from tests.conftest import BUSYBOX
from tests.executor.lab import Lab

pytestmark = pytest.mark.docker  # every test here uses the real engine


def observe_now(lab: Lab, name: str, *, managed: bool) -> dict[str, Any]:
    """Write the world document of Container `name` as the container is now; its spec."""
    container = lab.client.containers.get(container_name(name))
    observed = _observed_spec(lab.apply_context(name, None), container)
    doc = new_world_doc("Container", name)
    doc["status"].update(
        exists=True,
        managed=managed,
        observed=observed,
        observedAt="2026-12-01T00:00:00.000000Z",
        basis=spec_hash(observed),
        health="Stopped",
    )
    atomic_write_json(world_path(lab.root, "Container", name), doc)
    return observed


def test_an_approved_start_runs_the_same_container_again(lab: Lab) -> None:
    name = lab.container("again")
    lab.commit()
    [create] = lab.propose()
    assert lab.run_now([create]) == ["done"]
    [container] = lab.containers(name)
    container.stop(timeout=1)
    assert observe_now(lab, name, managed=True)["state"] == "stopped"

    [start] = lab.propose(fold=False)

    assert start.operation == "start" and start.patch == [
        {"op": "replace", "path": "/state", "value": "running"}
    ]
    assert lab.run_now([start]) == ["done"]
    [after] = lab.containers(name)
    assert after.id == container.id and after.attrs["State"]["Running"]
    assert lab.action(start.id).outcome["health"] == "Healthy"
    assert lab.plan().plan.empty  # the executor's observation closed the loop


def test_a_desired_stop_is_planned_and_run(lab: Lab) -> None:
    name = lab.container("halt")
    lab.commit()
    [create] = lab.propose()
    assert lab.run_now([create]) == ["done"]
    lab.container("halt", state="stopped")
    lab.commit("stop it")

    [stop] = lab.propose()

    assert stop.operation == "stop"
    assert lab.run_now([stop]) == ["done"]
    [after] = lab.containers(name)
    assert after.attrs["State"]["Status"] == "exited"
    assert lab.action(stop.id).outcome["health"] == "Stopped"
    assert lab.plan().plan.empty


def test_an_unmanaged_container_under_the_name_is_adopted_never_a_conflict(lab: Lab) -> None:
    name = lab.container("theirs")
    lab.commit()
    theirs = lab.client.containers.run(
        BUSYBOX, ["sleep", "3600"], name=container_name(name), detach=True, network_mode="host"
    )
    observe_now(lab, name, managed=False)

    [adopt] = lab.propose(fold=False)

    assert adopt.operation == "adopt" and adopt.patch  # it differs from the manifest
    assert lab.run_now([adopt]) == ["done"]
    [ours] = lab.containers(name)
    assert ours.id != theirs.id and ours.labels["homelab.reconciler/action-id"] == adopt.id
    assert read_adopted(lab.root, "Container") == {}
    assert lab.plan().plan.empty
