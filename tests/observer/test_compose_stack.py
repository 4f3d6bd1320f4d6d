"""Compose stacks observed per service, on the real engine with Debian's docker-compose v1.

Stacks are applied by the real compose driver (through the `Lab`'s executor), changed by
hand (`docker stop`, `docker rm -f`, an edited file under ROOT/stacks, a re-tagged image,
a failing healthcheck, a project started with `docker-compose up -d`) and observed by the
Docker collector (reconciler/observer/collectors/compose_stack.py); the plan is the real
planner's and `up` / `adopt` run through the real driver.
"""

from __future__ import annotations

import itertools
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from reconciler.atomic_files import atomic_write_bytes, read_json
from reconciler.drivers.base import ApplyContext, DriverSettings, NodeInfo
from reconciler.drivers.compose import ComposeDriver
from reconciler.events.log import EventLog
from reconciler.observer.collectors.docker import DockerCollector
from reconciler.observer.collectors.node import NodeTarget
from reconciler.observer.service import ObserverService, ObserverSettings
from reconciler.queue import Action, new_action
from reconciler.queue.action import Operation
from reconciler.resources.key import ResourceKey
from reconciler.supervisor.proposals import world_basis
from reconciler.world import world_path
from tests.conftest import BUSYBOX
from tests.drivers.test_compose import stack_yaml
from tests.executor import lab as executor_lab
from tests.executor.lab import Lab

pytestmark = pytest.mark.docker  # every test here uses the real engine
lab = executor_lab.lab  # the fixture (tests/executor/lab.py)

COMPOSE = """\
version: "2.4"
services:
  app:
    image: IMAGE
    command: ["sleep", "3600"]
    network_mode: none
    environment:
      ROUND: "1"
  web:
    image: IMAGE
    command: ["sleep", "3600"]
    network_mode: none
"""


class Observed:
    """A Docker collector for the lab's root writing into its event log; what it wrote."""

    def __init__(self, lab: Lab, command: tuple[str, ...] = ("docker-compose",)) -> None:
        self.lab = lab
        self.log = EventLog(lab.root, "observer")
        self.written: list[tuple[str, ResourceKey | None, dict[str, Any]]] = []
        target = NodeTarget("local", lab.host)
        self.collector = DockerCollector(target, lab.root, self.emit, compose_command=command)

    def emit(self, etype: str, ref: ResourceKey | None, data: dict[str, Any]) -> None:
        self.log.append(etype, ref, data)
        self.written.append((etype, ref, data))

    def full(self) -> None:
        self.collector.full_listing(self.lab.client)

    def project(self, project: str) -> None:
        """What an engine event of one of the project's containers makes the collector do."""
        self.collector.stacks.check(self.lab.client, project)

    def stack(self, name: str) -> dict[str, Any]:
        """The newest observation of ComposeStack/name (missing: {"missing": reason})."""
        for etype, ref, data in reversed(self.written):
            if ref == ResourceKey("ComposeStack", name):
                return data if etype == "observed.resource" else {"missing": data["reason"]}
        raise AssertionError(f"ComposeStack/{name} was never observed")

    def close(self) -> None:
        self.log.close()


@pytest.fixture
def observed(lab: Lab) -> Iterator[Observed]:
    seen = Observed(lab)
    yield seen
    seen.close()


def project_containers(lab: Lab, project: str) -> list[Any]:
    label = f"com.docker.compose.project={project}"
    return list(lab.client.containers.list(all=True, filters={"label": label}))


def service_container(lab: Lab, project: str, service: str) -> Any:
    [found] = [
        c
        for c in project_containers(lab, project)
        if c.labels.get("com.docker.compose.service") == service
    ]
    return found


def remove_project(lab: Lab, project: str) -> None:
    for leftover in project_containers(lab, project):
        leftover.remove(force=True)


def condition(data: dict[str, Any], type_: str) -> dict[str, Any]:
    [found] = [c for c in data["conditions"] if c["type"] == type_]
    return cast(dict[str, Any], found)


def apply_stack(lab: Lab, short: str, body: str) -> str:
    name = lab.name(short)
    lab.write(f"compose/{name}/compose.yaml", body)
    lab.write("manifests/stack.yaml", stack_yaml(name, [f"compose/{name}/compose.yaml"]))
    lab.commit()
    [create] = lab.propose()
    assert lab.run_now([create], compose_command=("docker-compose",)) == ["done"]
    return name


_generation = itertools.count(1)


def run_the_plan(lab: Lab, operation: str) -> None:
    """Plan (after folding what was observed), expect one `operation`, approve and run it.

    The same drift seen again plans the same action id: a new generation of it is
    proposed, as the supervisor does (`walk_chain`, reconciler/supervisor/proposals.py).
    """
    result = lab.plan()
    assert not result.errors
    [change] = result.plan.changes
    assert change.operation == operation, change
    action = new_action(
        change,
        commit=result.state.commit,
        basis=world_basis(result.world.get(change.ref)),
        manifest=result.state.manifests[change.ref].doc,
        generation=next(_generation),
    )
    lab.queue.propose(action, actor="supervisor")
    lab.queue.move(action.id, "pending", "approved", actor="cli-test")
    assert lab.run_now([action], compose_command=("docker-compose",)) == ["done"]


def test_a_stack_is_observed_per_service_and_up_brings_back_what_was_stopped_removed_or_paused(
    lab: Lab, observed: Observed
) -> None:
    name = apply_stack(lab, "svc", COMPOSE.replace("IMAGE", BUSYBOX))
    try:
        observed.full()
        data = observed.stack(name)
        assert data["spec"]["state"] == "running" and data["managed"] is True
        assert data["health"] == "Healthy"
        services = data["runtime"]["services"]
        assert sorted(services) == ["app", "web"]
        for svc, seen in services.items():
            label = service_container(lab, name, svc).labels["com.docker.compose.config-hash"]
            assert seen == {
                "state": "running",
                "health": "Healthy",
                "image": BUSYBOX,
                "configHash": label,
                "current": True,
            }
        text = (lab.root.stacks / name / f"compose/{name}/compose.yaml").read_text()
        assert data["runtime"]["files"] == {f"compose/{name}/compose.yaml": text}
        assert condition(data, "ServicesUp")["status"] == "True"
        assert condition(data, "ConfigHashComputed")["status"] == "True"
        lab.fold()
        assert lab.plan().plan.empty  # the observed spec is the desired one

        service_container(lab, name, "web").stop(timeout=1)
        observed.project(name)
        data = observed.stack(name)
        assert data["spec"]["state"] == "degraded"
        assert data["runtime"]["services"]["web"]["state"] == "stopped"
        assert data["health"] == "Unhealthy"  # one running, one stopped
        up = condition(data, "ServicesUp")
        assert up["status"] == "False" and up["message"] == "web: stopped"
        run_the_plan(lab, "up")
        assert service_container(lab, name, "web").status == "running"
        observed.project(name)
        assert observed.stack(name)["spec"]["state"] == "running"

        service_container(lab, name, "web").remove(force=True)
        observed.project(name)
        data = observed.stack(name)
        assert data["spec"]["state"] == "degraded"
        assert data["runtime"]["services"]["web"]["state"] == "missing"
        assert condition(data, "ServicesUp")["message"] == "web: missing (no container)"
        app_id = service_container(lab, name, "app").id
        run_the_plan(lab, "up")
        assert service_container(lab, name, "web").status == "running"
        assert service_container(lab, name, "app").id == app_id  # only what was missing
        observed.project(name)
        assert observed.stack(name)["spec"]["state"] == "running"

        service_container(lab, name, "web").pause()  # `up -d` alone would leave it paused
        observed.project(name)
        data = observed.stack(name)
        assert data["spec"]["state"] == "degraded"
        assert condition(data, "ServicesUp")["message"] == "web: paused"
        run_the_plan(lab, "up")
        assert service_container(lab, name, "web").status == "running"
        observed.project(name)
        assert observed.stack(name)["spec"]["state"] == "running"

        for c in project_containers(lab, name):
            c.stop(timeout=1)
        observed.project(name)
        data = observed.stack(name)
        assert (data["spec"]["state"], data["health"]) == ("stopped", "Stopped")
        run_the_plan(lab, "up")
        observed.project(name)
        assert observed.stack(name)["spec"]["state"] == "running"
        lab.fold()
        assert lab.plan().plan.empty
    finally:
        remove_project(lab, name)


def test_an_edited_applied_file_or_a_moved_image_tag_makes_services_outdated(
    lab: Lab, observed: Observed
) -> None:
    image = f"local/{lab.prefix}-img:1"
    lab.client.images.get(BUSYBOX).tag(image)
    name = apply_stack(lab, "outdated", COMPOSE.replace("IMAGE", image))
    applied = lab.root.stacks / name / f"compose/{name}/compose.yaml"
    try:
        observed.full()
        assert observed.stack(name)["spec"]["state"] == "running"

        original = applied.read_text()
        applied.write_text(original.replace('ROUND: "1"', 'ROUND: "2"'))  # by hand
        observed.project(name)
        data = observed.stack(name)
        assert data["spec"]["state"] == "degraded"
        app = data["runtime"]["services"]["app"]
        assert app["current"] is False and app["wantedHash"] != app["configHash"]
        assert data["runtime"]["services"]["web"]["current"] is True
        message = condition(data, "ServicesUp")["message"]
        assert message.startswith("app: outdated (config hash ") and "web" not in message
        assert 'ROUND: "2"' in data["runtime"]["files"][f"compose/{name}/compose.yaml"]
        # The file differs from the desired one: the plan writes it again (update).
        app_id = service_container(lab, name, "app").id
        run_the_plan(lab, "update")
        assert applied.read_text() == original
        assert service_container(lab, name, "app").id == app_id  # it was current all along
        observed.project(name)
        assert observed.stack(name)["spec"]["state"] == "running"

        builder = lab.client.containers.create(image, ["true"])
        try:
            builder.commit(repository=image.split(":")[0], tag="1", changes=["LABEL round=2"])
        finally:
            builder.remove(force=True)
        observed.project(name)
        data = observed.stack(name)
        assert data["spec"]["state"] == "degraded"
        assert [s["current"] for s in data["runtime"]["services"].values()] == [False, False]
        run_the_plan(lab, "up")  # compose recreates both from the new image
        new_id = lab.client.images.get(image).id
        assert {c.image.id for c in project_containers(lab, name)} == {new_id}
        observed.project(name)
        assert observed.stack(name)["spec"]["state"] == "running"
    finally:
        remove_project(lab, name)
        lab.client.images.remove(image, force=True)


def test_an_unhealthy_service_makes_the_stack_unhealthy(lab: Lab, observed: Observed) -> None:
    body = COMPOSE.replace("IMAGE", BUSYBOX) + (
        '    healthcheck:\n      test: ["CMD", "false"]\n'
        "      interval: 1s\n      timeout: 1s\n      retries: 1\n"
    )
    name = apply_stack(lab, "sick", body)
    try:
        deadline = time.monotonic() + 30
        while True:
            observed.project(name)
            data = observed.stack(name)
            if data["health"] == "Unhealthy" or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert data["health"] == "Unhealthy"
        assert data["runtime"]["services"]["web"]["health"] == "Unhealthy"
        assert data["runtime"]["services"]["app"]["health"] == "Healthy"
        assert data["spec"]["state"] == "running"  # running and current: nothing to bring up
    finally:
        remove_project(lab, name)


def test_a_project_started_by_hand_is_unmanaged_until_the_driver_adopts_it(
    lab: Lab, observed: Observed, tmp_path: Path
) -> None:
    name = lab.name("byhand")
    body = COMPOSE.replace("IMAGE", BUSYBOX)
    elsewhere = tmp_path / "by-hand"
    elsewhere.mkdir()
    (elsewhere / "compose.yaml").write_text(body)
    env = {"DOCKER_HOST": lab.host, "PATH": "/usr/bin:/bin"}
    command = ["docker-compose", "-p", name, "-f", "compose.yaml", "up", "-d"]
    subprocess.run(command, cwd=elsewhere, env=env, check=True, capture_output=True)
    try:
        observed.full()
        data = observed.stack(name)
        assert data["managed"] is False
        assert data["spec"] == {"node": "local", "project": name, "files": [], "state": "running"}
        assert sorted(data["runtime"]["services"]) == ["app", "web"]
        assert data["runtime"]["configFiles"] == ["compose.yaml"]
        before = {c.id for c in project_containers(lab, name)}

        lab.write(f"compose/{name}/compose.yaml", body)
        lab.write("manifests/stack.yaml", stack_yaml(name, [f"compose/{name}/compose.yaml"]))
        lab.commit()
        desired = lab.plan(fold=False).desired[ResourceKey("ComposeStack", name)]
        driver = ComposeDriver()
        up = adopt_context(lab, name, desired, "up")
        assert driver.check(up) == f"stack {name} has no applied.json (it was never applied here)"
        ctx = adopt_context(lab, name, desired, "adopt")
        assert driver.check(ctx) is None
        assert driver.apply(ctx).changed
        assert read_json(lab.root.stacks / name / "applied.json")["spec"] == desired
        assert {c.id for c in project_containers(lab, name)} == before  # nothing differed
        assert driver.check(ctx) == f"stack {name} is already applied here (nothing to adopt)"

        observed.full()
        data = observed.stack(name)
        assert data["managed"] is True
        assert data["spec"] == desired
        assert condition(data, "ServicesUp")["status"] == "True"
    finally:
        remove_project(lab, name)


def adopt_context(lab: Lab, name: str, desired: dict[str, Any], operation: str) -> ApplyContext:
    action = Action(
        id="a" * 20,
        kind="ComposeStack",
        name=name,
        operation=cast(Operation, operation),
        desired=desired,
        commit=lab.repo.head,
    )
    return ApplyContext(
        action=action,
        node=NodeInfo("local", lab.host),
        root=lab.root,
        repo_file=lambda path: (lab.repo.path / path).read_bytes(),
        secret_file=lambda _: None,
        settings=DriverSettings(stop_grace=1, compose_command=("docker-compose",)),
    )


def _wait(check: Callable[[], object], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.1)


def test_the_config_hash_runs_once_per_file_change_not_per_event(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real observer service, its compose command counting each run in a file."""
    name = apply_stack(lab, "count", COMPOSE.replace("IMAGE", BUSYBOX))
    runs = tmp_path / "runs"
    runs.touch()
    counting = ("sh", "-c", 'echo run >> "$0"; exec docker-compose "$@"', str(runs))
    monkeypatch.setenv("DOCKER_HOST", lab.host)
    settings = ObserverSettings(resync=1, durable=False, compose_command=counting)
    service = ObserverService(lab.root, settings=settings)
    stop = threading.Event()
    thread = threading.Thread(target=service.run, args=(stop,))

    def status() -> dict[str, Any]:
        try:
            doc = read_json(world_path(lab.root, "ComposeStack", name))
        except (OSError, ValueError):
            return {}
        return cast(dict[str, Any], doc["status"])

    def state() -> str | None:
        return (status().get("observed") or {}).get("state")

    def count() -> int:
        return len(runs.read_text().splitlines())

    thread.start()
    try:
        _wait(lambda: "services" in (status().get("runtime") or {}), 30)
        assert state() == "running" and status()["managed"] is True
        assert count() == 1
        web = service_container(lab, name, "web")
        for _ in range(3):  # each round: kill, die, stop, start events
            web.stop(timeout=1)
            _wait(lambda: state() == "degraded", 20)
            web.start()
            _wait(lambda: state() == "running", 20)
        time.sleep(3)  # and a few full listings (resync every second)
        assert count() == 1

        applied = lab.root.stacks / name / f"compose/{name}/compose.yaml"
        edited = applied.read_text().replace('ROUND: "1"', 'ROUND: "3"')
        atomic_write_bytes(applied, edited.encode())  # one change (no half-written file)
        _wait(lambda: state() == "degraded", 20)  # seen at the next full listing
        services = status()["runtime"]["services"]
        assert services["app"]["current"] is False and services["web"]["current"] is True
        time.sleep(3)
        assert count() == 2
        message = next(c for c in status()["conditions"] if c["type"] == "ServicesUp")["message"]
        assert message.startswith("app: outdated")
    finally:
        stop.set()
        thread.join(timeout=30)
        remove_project(lab, name)
    assert not thread.is_alive()


def test_a_failing_config_hash_command_is_a_condition_not_a_crash(lab: Lab, tmp_path: Path) -> None:
    name = apply_stack(lab, "nohash", COMPOSE.replace("IMAGE", BUSYBOX))
    runs = tmp_path / "runs"
    runs.touch()
    failing = ("sh", "-c", 'echo run >> "$0"; echo "no engine here" >&2; exit 3', str(runs))
    seen = Observed(lab, failing)
    try:
        seen.full()
        seen.project(name)
        seen.full()
        data = seen.stack(name)
        hashed = condition(data, "ConfigHashComputed")
        assert (hashed["status"], hashed["reason"]) == ("False", "ComposeConfigFailed")
        assert "exit 3" in hashed["message"] and "no engine here" in hashed["message"]
        # The declared services come from the files' keys; none is called outdated.
        assert sorted(data["runtime"]["services"]) == ["app", "web"]
        assert data["spec"]["state"] == "running"
        assert len(runs.read_text().splitlines()) == 1  # a failure is retried after a minute

        service_container(lab, name, "web").remove(force=True)
        seen.project(name)
        data = seen.stack(name)
        assert data["spec"]["state"] == "degraded"
        assert condition(data, "ServicesUp")["message"] == "web: missing (no container)"
    finally:
        seen.close()
        remove_project(lab, name)
