"""The health the executor reports after it starts a container, on the real engine.

The executor's `observed.resource` after a create is the observer's first
word on the new container (the world reads it until a collector speaks), so
its `health` must describe the container after the start, not the created
but not yet started one it inspected before.
"""

from __future__ import annotations

import pytest

from tests.executor.lab import Lab

pytestmark = pytest.mark.docker


def test_a_started_container_is_reported_running_not_stopped(lab: Lab) -> None:
    name = lab.container("fresh")
    lab.commit("add fresh")
    [create] = lab.propose()
    assert lab.run_now([create]) == ["done"]
    [container] = lab.containers(name)
    container.reload()
    assert container.status == "running"
    observed = [
        e
        for e in lab.executor_events("observed.resource")
        if e["ref"] == {"kind": "Container", "name": name}
    ]
    assert [e["data"]["health"] for e in observed] == ["Healthy"]
    assert lab.action(create.id).outcome["health"] == "Healthy"


def test_a_container_with_a_healthcheck_is_reported_healthy_once_it_passes(lab: Lab) -> None:
    check = {"test": ["CMD", "true"], "interval": 1, "timeout": 1, "retries": 3}
    name = lab.container("checked", healthcheck=check)
    lab.commit("add checked")
    [create] = lab.propose()
    assert lab.run_now([create]) == ["done"]
    [event] = [
        e
        for e in lab.executor_events("observed.resource")
        if e["ref"] == {"kind": "Container", "name": name}
    ]
    assert event["data"]["health"] == "Healthy"
