"""The Docker driver's in-place operations and adoption, against the real engine.

`start` (of a stopped or a paused container), `stop` and `update` (restart policy) keep
the container; `create` with `state: stopped` leaves it unstarted; `adopt` takes over a
container someone started under the resource's name: as it runs when nothing differs
(recorded in the adoption registry), replaced when something does; a replace or delete
of an adopted container clears its record; and `check` refuses an action whose container
is gone or no longer what the plan saw.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from reconciler.drivers.adopted import read_adopted, write_adopted
from reconciler.drivers.base import ApplyContext
from reconciler.drivers.docker import DockerDriver, _observed_spec, container_name
from reconciler.resources.normalize import spec_hash
from tests.conftest import BUSYBOX
from tests.executor.lab import Lab

pytestmark = pytest.mark.docker  # every test here uses the real engine

P = "homelab.reconciler"


def spec(**extra: Any) -> dict[str, Any]:
    """A comparable Container spec (the keys the driver and the observation use)."""
    return {
        "node": "local",
        "image": BUSYBOX,
        "imagePullPolicy": "Never",
        "command": ["sleep", "3600"],
        "args": None,
        "env": [],
        "ports": [],
        "volumes": [],
        "restartPolicy": "no",
        "labels": {},
        "healthcheck": None,
        "networkMode": "host",
        "user": None,
        "workingDir": None,
        "privileged": False,
        "pidMode": None,
        "capAdd": [],
        "capDrop": [],
        "state": "running",
        **extra,
    }


@pytest.fixture
def driver() -> Iterator[DockerDriver]:
    the_driver = DockerDriver()
    yield the_driver
    the_driver.close()


def context(
    lab: Lab,
    name: str,
    operation: str,
    desired: dict[str, Any],
    *,
    basis: str = "",
    patch: list[dict[str, Any]] | None = None,
    action_id: str = "a" * 20,
) -> ApplyContext:
    ctx = lab.apply_context(name, desired, action_id)
    patch = [{"op": "replace", "path": "/x", "value": 1}] if patch is None else patch
    action = ctx.action.evolve(operation=operation, basis=basis, patch=patch)
    return dataclasses.replace(ctx, action=action)


def inspect(lab: Lab, name: str) -> dict[str, Any]:
    attrs: dict[str, Any] = lab.client.containers.get(container_name(name)).attrs
    return attrs


def created(lab: Lab, driver: DockerDriver, name: str, desired: dict[str, Any]) -> str:
    """Create the container through the driver; its id."""
    driver.apply(context(lab, name, "create", desired, action_id="c" * 20))
    return str(inspect(lab, name)["Id"])


def by_hand(lab: Lab, name: str, restart: str = "no") -> Any:
    """A container someone started under the resource's name, without any label."""
    return lab.client.containers.run(
        BUSYBOX,
        entrypoint=["sleep", "3600"],
        name=container_name(name),
        detach=True,
        network_mode="host",
        restart_policy={"Name": restart},
    )


def seen(lab: Lab, driver: DockerDriver, name: str) -> str:
    """The basis a plan made now would carry: the hash of the container's observed spec."""
    ctx = lab.apply_context(name, spec())
    return spec_hash(_observed_spec(ctx, lab.client.containers.get(container_name(name))))


@pytest.mark.parametrize("how", ["stopped", "paused"])
def test_start_brings_a_stopped_or_paused_container_back_with_the_same_id(
    lab: Lab, driver: DockerDriver, how: str
) -> None:
    name = lab.name("start")
    desired = spec()
    first = created(lab, driver, name, desired)
    container = lab.client.containers.get(container_name(name))
    container.stop(timeout=1) if how == "stopped" else container.pause()
    # What the world holds for it now: the spec as applied, in the state it was left in.
    ctx = context(lab, name, "start", desired, basis=spec_hash({**desired, "state": how}))

    assert driver.check(ctx) is None
    result = driver.apply(ctx)

    assert result.changed and result.health == "Healthy"
    assert ("unpaused" if how == "paused" else "started") in result.output
    state = inspect(lab, name)["State"]
    assert state["Running"] and not state["Paused"]
    assert [c.id for c in lab.containers(name)] == [first]
    again = driver.apply(ctx)  # as after a crash: nothing more to do
    assert again.changed is False and [c.id for c in lab.containers(name)] == [first]


@pytest.mark.parametrize("how", ["running", "paused"])
def test_stop_stops_a_running_or_paused_container_and_keeps_it(
    lab: Lab, driver: DockerDriver, how: str
) -> None:
    name = lab.name(f"stop-{how}")
    first = created(lab, driver, name, spec())
    if how == "paused":
        lab.client.containers.get(first).pause()
    desired = spec(state="stopped")
    ctx = context(lab, name, "stop", desired, basis=spec_hash(spec(state=how)))

    assert driver.check(ctx) is None
    result = driver.apply(ctx)

    assert result.changed and result.health == "Stopped" and "stopped" in result.output
    assert inspect(lab, name)["State"]["Status"] == "exited"
    assert [c.id for c in lab.containers(name)] == [first]
    assert driver.apply(ctx).changed is False


def test_update_changes_the_restart_policy_in_place(lab: Lab, driver: DockerDriver) -> None:
    name = lab.name("update")
    first = created(lab, driver, name, spec())
    started_at = inspect(lab, name)["State"]["StartedAt"]
    desired = spec(restartPolicy="always")
    ctx = context(lab, name, "update", desired, basis=spec_hash(spec()))

    assert driver.check(ctx) is None
    result = driver.apply(ctx)

    attrs = inspect(lab, name)
    assert result.changed and "restart policy no -> always" in result.output
    assert attrs["HostConfig"]["RestartPolicy"]["Name"] == "always"
    assert attrs["Id"] == first and attrs["State"]["StartedAt"] == started_at  # not restarted
    assert spec_hash(_observed_spec(ctx, lab.client.containers.get(first))) == spec_hash(desired)


def test_update_of_a_stopped_container_also_brings_it_to_the_desired_state(
    lab: Lab, driver: DockerDriver
) -> None:
    name = lab.name("upstart")
    first = created(lab, driver, name, spec())
    lab.client.containers.get(first).stop(timeout=1)
    ctx = context(lab, name, "update", spec(restartPolicy="on-failure"))

    result = driver.apply(ctx)

    attrs = inspect(lab, name)
    assert attrs["HostConfig"]["RestartPolicy"]["Name"] == "on-failure"
    assert attrs["State"]["Running"] and attrs["Id"] == first and "started" in result.output


def test_create_with_state_stopped_leaves_the_container_unstarted(
    lab: Lab, driver: DockerDriver
) -> None:
    name = lab.name("cold")
    result = driver.apply(context(lab, name, "create", spec(state="stopped")))

    attrs = inspect(lab, name)
    assert result.changed and result.health == "Stopped" and "started" not in result.output
    assert attrs["State"]["Status"] == "created" and not attrs["State"]["Running"]
    assert attrs["Config"]["Labels"][f"{P}/managed-by"] == "homelab-reconciler"


def test_adopt_without_differences_records_the_container_and_never_restarts_it(
    lab: Lab, driver: DockerDriver
) -> None:
    name = lab.name("adopt")
    theirs = by_hand(lab, name)
    before = inspect(lab, name)
    desired = spec()
    ctx = context(lab, name, "adopt", desired, basis=seen(lab, driver, name), patch=[])

    assert driver.check(ctx) is None
    result = driver.apply(ctx)

    after = inspect(lab, name)
    assert result.changed and "adopted" in result.output and result.health == "Healthy"
    assert after["Id"] == theirs.id == before["Id"]
    assert after["State"]["StartedAt"] == before["State"]["StartedAt"]
    assert f"{P}/managed-by" not in (after["Config"]["Labels"] or {})  # Docker cannot relabel
    record = read_adopted(lab.root, "Container")[name]
    assert record == {
        "containerId": theirs.id,
        "node": "local",
        "spec": desired,
        "action": "a" * 20,
    }
    # From now on the container reads as what was adopted: no drift left.
    assert _observed_spec(ctx, lab.client.containers.get(theirs.id)) == desired
    driver.apply(ctx)  # a re-run after a crash: the same record, still not restarted
    assert read_adopted(lab.root, "Container")[name] == record
    assert inspect(lab, name)["State"]["StartedAt"] == before["State"]["StartedAt"]


def test_adopt_with_differences_replaces_the_container_without_a_name_conflict(
    lab: Lab, driver: DockerDriver
) -> None:
    name = lab.name("adoptd")
    theirs = by_hand(lab, name)
    desired = spec(restartPolicy="always", env=[{"name": "MODE", "value": "prod"}])
    ctx = context(lab, name, "adopt", desired, basis=seen(lab, driver, name))

    assert driver.check(ctx) is None
    result = driver.apply(ctx)

    [container] = lab.containers(name)  # found by the managed labels it now carries
    assert container.id != theirs.id and result.changed
    assert container.labels[f"{P}/action-id"] == "a" * 20
    assert "MODE=prod" in container.attrs["Config"]["Env"]
    assert container.attrs["HostConfig"]["RestartPolicy"]["Name"] == "always"
    assert read_adopted(lab.root, "Container") == {}
    assert len(lab.client.containers.list(all=True, filters={"name": container_name(name)})) == 1


@pytest.mark.parametrize("operation", ["replace", "delete"])
def test_a_replace_or_delete_of_an_adopted_container_clears_its_record(
    lab: Lab, driver: DockerDriver, operation: str
) -> None:
    name = lab.name("gone")
    theirs = by_hand(lab, name)
    adopted = spec()
    record = {"containerId": theirs.id, "node": "local", "spec": adopted, "action": "b" * 20}
    write_adopted(lab.root, "Container", name, record)
    basis = seen(lab, driver, name)
    assert basis == spec_hash(adopted)  # an adopted container is observed at its record
    desired = spec(command=["sleep", "7200"])
    ctx = context(lab, name, operation, desired, basis=basis)
    if operation == "delete":
        ctx = dataclasses.replace(ctx, action=ctx.action.evolve(desired=None, observed=adopted))

    assert driver.check(ctx) is None
    driver.apply(ctx)

    assert read_adopted(lab.root, "Container") == {}
    left = lab.client.containers.list(all=True, filters={"name": container_name(name)})
    if operation == "delete":
        assert left == []
    else:
        [container] = left
        assert container.id != theirs.id
        assert container.attrs["Config"]["Entrypoint"] == ["sleep", "7200"]
        assert container.labels[f"{P}/spec-hash"] == spec_hash(desired)


def test_check_refuses_a_start_whose_container_was_removed_or_changed(
    lab: Lab, driver: DockerDriver
) -> None:
    name = lab.name("stale")
    first = created(lab, driver, name, spec())
    container = lab.client.containers.get(first)
    container.stop(timeout=1)
    ctx = context(lab, name, "start", spec(), basis=spec_hash(spec(state="stopped")))
    assert driver.check(ctx) is None

    container.start()  # started by hand since the plan: it is not what the plan saw
    assert driver.check(ctx) == f"container {container_name(name)} changed since the plan was made"

    container.remove(force=True)
    assert driver.check(ctx) == f"container {container_name(name)} no longer exists"
    with pytest.raises(Exception, match="no longer exists; nothing to start"):
        driver.apply(ctx)
    assert lab.containers(name) == []  # never created again by a start
