"""`containerName`: the engine name of a Container, found and adopted by it.

Through the real planner, queue, executor and engine: a Container with a
`containerName` is created under that name and observes as its manifest
(nothing left to plan); a changed `containerName` replaces the container
(found by its labels under the old name, never two); a container compose
started under a manifest's `containerName` is seen by the collector (the
name claimed through `NodeTarget.claims`, its compose label notwithstanding)
and adopted as it runs, without a restart.
"""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.atomic_files import atomic_write_json
from reconciler.drivers.adopted import read_adopted
from reconciler.observer.collectors.docker import DockerCollector
from reconciler.observer.collectors.node import targets_from_state
from reconciler.resources.key import ResourceKey
from reconciler.resources.normalize import spec_hash
from reconciler.sources.git import GitSource
from reconciler.world import new_world_doc, world_path
from tests.conftest import BUSYBOX
from tests.executor.lab import Lab

pytestmark = pytest.mark.docker  # every test here uses the real engine


def _engine_names(lab: Lab, name: str) -> list[str]:
    return sorted(c.name for c in lab.containers(name))


def test_a_container_is_created_under_its_container_name_and_observes_as_its_spec(
    lab: Lab,
) -> None:
    engine = f"homelab-{lab.prefix}_web.1"
    name = lab.container("named", containerName=engine)
    lab.commit()
    [create] = lab.propose()
    assert create.desired is not None and create.desired["containerName"] == engine
    assert lab.run_now([create]) == ["done"]
    assert _engine_names(lab, name) == [engine]
    assert lab.client.containers.get(engine).attrs["State"]["Running"]
    assert lab.plan().plan.empty  # the executor's observation equals the desired spec

    lab.container("named", containerName=f"homelab-{lab.prefix}_web.2")
    lab.commit("rename")
    [replace] = lab.propose()
    assert replace.operation == "replace"
    assert [op["path"] for op in replace.patch] == ["/containerName"]
    assert lab.run_now([replace]) == ["done"]
    assert _engine_names(lab, name) == [f"homelab-{lab.prefix}_web.2"]  # the old one is gone
    assert lab.plan().plan.empty

    lab.container("named")  # back to the default name homelab-<name>
    lab.commit("default name")
    [back] = lab.propose()
    assert lab.run_now([back]) == ["done"]
    assert _engine_names(lab, name) == [f"homelab-{name}"]
    assert lab.plan().plan.empty


def test_a_default_container_name_written_out_keeps_the_spec_hash(lab: Lab) -> None:
    plain = lab.container("plain")
    lab.commit()
    [before] = lab.propose(approve=False)
    lab.container("plain", containerName=f"homelab-{plain}")
    lab.commit("the same name, written out")
    [after] = lab.propose(approve=False)
    assert before.desired == after.desired and "containerName" not in (after.desired or {})


def test_a_compose_container_under_a_claimed_name_is_adopted_as_it_runs(lab: Lab) -> None:
    engine = f"homelab-{lab.prefix}-proxy-1"
    name = lab.container("proxy", containerName=engine)
    lab.commit()
    theirs = lab.client.containers.run(
        BUSYBOX,
        None,
        entrypoint=["sleep", "3600"],
        name=engine,
        detach=True,
        network_mode="host",
        labels={"com.docker.compose.project": f"{lab.prefix}", "com.docker.compose.service": "x"},
    )
    targets, _ = targets_from_state(GitSource(lab.repo.path).load(None))
    assert (engine, name) in targets["local"].claims
    seen: list[tuple[str, ResourceKey | None, dict[str, Any]]] = []
    collector = DockerCollector(targets["local"], lab.root, lambda t, k, d: seen.append((t, k, d)))
    collector.full_listing(lab.client)
    [data] = [d for t, k, d in seen if k == ResourceKey("Container", name)]
    assert data["managed"] is False and data["spec"]["containerName"] == engine
    doc = new_world_doc("Container", name)
    doc["status"].update(
        exists=True,
        managed=False,
        observed=data["spec"],
        observedAt="2026-12-01T00:00:00.000000Z",
        basis=spec_hash(data["spec"]),
        health="Healthy",
    )
    atomic_write_json(world_path(lab.root, "Container", name), doc)

    [adopt] = lab.propose(fold=False)

    assert adopt.operation == "adopt" and adopt.patch == []  # the same spec: no restart
    assert lab.run_now([adopt]) == ["done"]
    assert read_adopted(lab.root, "Container")[name]["containerId"] == theirs.id
    theirs.reload()
    assert theirs.attrs["State"]["Running"]
    seen.clear()
    collector.full_listing(lab.client)  # now managed through the adoption record
    [data] = [d for t, k, d in seen if k == ResourceKey("Container", name)]
    assert data["managed"] is True and data["containerId"] == theirs.id[:12]
    theirs.remove(force=True)
