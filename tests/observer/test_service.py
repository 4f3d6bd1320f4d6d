"""The observer service against the real Docker engine: containers appear, die, vanish."""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from reconciler.atomic_files import read_json
from reconciler.observer.service import ObserverService, ObserverSettings
from reconciler.runtime_root import RuntimeRoot
from reconciler.world import world_path
from tests.conftest import BUSYBOX

P = "homelab.reconciler"


def _wait(check: Callable[[], bool], timeout: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if check():
            return time.monotonic() - t0
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout} s")


def _status(root: RuntimeRoot, name: str) -> dict[str, Any]:
    try:
        return dict(read_json(world_path(root, "Container", name))["status"])
    except (OSError, ValueError):
        return {}


@pytest.fixture
def observer(
    runtime_root: RuntimeRoot, docker_host: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ObserverService]:
    monkeypatch.setenv("DOCKER_HOST", docker_host)
    service = ObserverService(runtime_root, settings=ObserverSettings(resync=5, durable=False))
    stop = threading.Event()
    thread = threading.Thread(target=service.run, args=(stop,))
    thread.start()
    yield service
    stop.set()
    thread.join(timeout=20)
    assert not thread.is_alive()


def _managed_labels(root: RuntimeRoot, name: str, spec: dict[str, Any] | None) -> dict[str, str]:
    labels = {
        f"{P}/managed-by": "homelab-reconciler",
        f"{P}/instance": root.instance_id(),
        f"{P}/kind": "Container",
        f"{P}/name": name,
        f"{P}/node": "local",
    }
    if spec is not None:
        labels[f"{P}/spec"] = orjson.dumps(spec).decode()
    return labels


def _run_managed(client: Any, root: RuntimeRoot, name: str, spec: dict[str, Any] | None) -> Any:
    """A container started outside the project, labelled as `root` manages it."""
    return client.containers.run(
        BUSYBOX,
        entrypoint=["sleep", "300"],
        name=f"homelab-{name}",
        detach=True,
        network_mode="host",
        labels=_managed_labels(root, name, spec),
    )


@pytest.mark.docker
def test_container_created_outside_appears_dies_and_is_removed(
    observer: ObserverService, runtime_root: RuntimeRoot, docker_client: Any
) -> None:
    name = f"obs-{uuid.uuid4().hex[:8]}"
    spec = {"node": "local", "image": BUSYBOX, "command": ["sleep", "300"]}
    container = _run_managed(docker_client, runtime_root, name, spec)
    try:
        _wait(lambda: _status(runtime_root, name).get("health") == "Healthy", 10)
        status = _status(runtime_root, name)
        assert status["exists"] is True and status["managed"] is True
        observed = status["observed"]  # what the engine runs, keyed as a manifest's spec
        assert {k: observed[k] for k in spec} == spec
        assert (observed["restartPolicy"], observed["state"]) == ("no", "running")
        assert status["runtime"]["containerId"] == container.id
        container.kill()
        took = _wait(lambda: _status(runtime_root, name).get("health") == "Stopped", 5)
        assert took < 2.0, f"kill seen after {took:.2f} s"
        container.remove(force=True)
        took = _wait(lambda: _status(runtime_root, name).get("health") == "Missing", 5)
        assert took < 2.0, f"removal seen after {took:.2f} s"
        assert _status(runtime_root, name)["exists"] is False
    finally:
        with contextlib.suppress(Exception):
            container.remove(force=True)
    node = read_json(world_path(runtime_root, "Node", "local"))["status"]
    assert node["conditions"][0]["type"] == "Ready"
    assert node["conditions"][0]["status"] == "True"
    obs = read_json(runtime_root.state / "observer_status.json")
    assert obs["caughtUp"] is True
    assert obs["nodes"]["local"]["lastFullListingAt"] >= obs["nodes"]["local"]["collectorStartedAt"]


@pytest.mark.docker
def test_managed_container_without_spec_label_is_observed_as_it_runs(
    observer: ObserverService, runtime_root: RuntimeRoot, docker_client: Any
) -> None:
    name = f"obs-{uuid.uuid4().hex[:8]}"
    container = _run_managed(docker_client, runtime_root, name, None)
    try:
        _wait(lambda: bool(_status(runtime_root, name).get("exists")), 10)
        status = _status(runtime_root, name)
        [cond] = [c for c in status["conditions"] if c["type"] == "SpecReadable"]
        assert (cond["status"], cond["reason"]) == ("False", "LabelMissing")
        # the label only told image defaults from set values: the spec is still the truth
        assert status["observed"]["image"] == BUSYBOX
        assert status["observed"]["command"] == ["sleep", "300"]
        assert status["managed"] is True
    finally:
        container.remove(force=True)


@pytest.mark.docker
def test_world_document_deleted_while_running_comes_back(
    observer: ObserverService, runtime_root: RuntimeRoot
) -> None:
    path = world_path(runtime_root, "Node", "local")
    _wait(path.exists, 10)
    before = path.read_bytes()
    os.unlink(path)
    _wait(path.exists, 15)  # a loaded machine: the behaviour counts, not the speed
    assert orjson.loads(path.read_bytes())["metadata"] == orjson.loads(before)["metadata"]


def test_unreachable_engine_is_reported_not_fatal(
    runtime_root: RuntimeRoot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{runtime_root.path}/no-such.sock")
    service = ObserverService(runtime_root, settings=ObserverSettings(durable=False))
    stop = threading.Event()
    thread = threading.Thread(target=service.run, args=(stop,))
    thread.start()
    try:
        path = world_path(runtime_root, "Node", "local")
        _wait(path.exists, 10)
        [cond] = read_json(path)["status"]["conditions"]
        assert (cond["status"], cond["reason"]) == ("False", "EngineUnreachable")
    finally:
        stop.set()
        thread.join(timeout=20)


@pytest.mark.docker
def test_without_docker_collectors_the_executor_reports_still_fold(
    runtime_root: RuntimeRoot, docker_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Compose layout: no engine access, so no node reports and no listings."""
    from reconciler.events.log import EventLog

    monkeypatch.setenv("DOCKER_HOST", f"unix://{runtime_root.path}/no-such.sock")
    settings = ObserverSettings(durable=False, docker=False)
    service = ObserverService(runtime_root, settings=settings)
    stop = threading.Event()
    thread = threading.Thread(target=service.run, args=(stop,))
    thread.start()
    try:
        spec = {"node": "local", "image": BUSYBOX}
        log = EventLog(runtime_root, "executor")
        log.append("observed.resource", ("Container", "app"), {"spec": spec, "health": "Healthy"})
        log.close()
        _wait(lambda: _status(runtime_root, "app").get("observed") == spec, 10)
        status_file = runtime_root.state / "observer_status.json"
        _wait(lambda: status_file.exists() and read_json(status_file)["caughtUp"] is True, 10)
        status = read_json(status_file)
        assert (status["nodes"], status["dockerCollectors"]) == ({}, False)
        assert not world_path(runtime_root, "Node", "local").exists()
    finally:
        stop.set()
        thread.join(timeout=20)


@pytest.mark.docker
def test_another_control_planes_containers_are_not_observed(
    observer: ObserverService, runtime_root: RuntimeRoot, docker_client: Any, tmp_path: Any
) -> None:
    """Two runtime roots on one engine: each sees only its own containers."""
    other = RuntimeRoot(tmp_path / "other-root")
    spec = {"node": "local", "image": BUSYBOX, "command": ["sleep", "300"]}
    foreign, own = f"obs-{uuid.uuid4().hex[:8]}", f"obs-{uuid.uuid4().hex[:8]}"
    started = []
    try:
        for name, root in ((foreign, other), (own, runtime_root)):
            started.append(_run_managed(docker_client, root, name, spec))
        _wait(lambda: _status(runtime_root, own).get("health") == "Healthy", 10)
        # the listing that found `own` saw `foreign` too, and left it out
        listed = read_json(runtime_root.state / "observer_status.json")["nodes"]["local"]
        _wait(
            lambda: (
                (
                    read_json(runtime_root.state / "observer_status.json")["nodes"]["local"][
                        "lastFullListingAt"
                    ]
                    or ""
                )
                > (listed["lastFullListingAt"] or "")
            ),
            15,
        )
        assert not world_path(runtime_root, "Container", foreign).exists()
        assert other.instance_id() != runtime_root.instance_id()
    finally:
        for container in started:
            with contextlib.suppress(Exception):
                container.remove(force=True)


@pytest.mark.docker
def test_a_restarted_service_watches_the_engine_again(
    runtime_root: RuntimeRoot, docker_host: str, docker_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runner restarts a failed service by calling run() again on the same object."""
    monkeypatch.setenv("DOCKER_HOST", docker_host)
    service = ObserverService(runtime_root, settings=ObserverSettings(resync=60, durable=False))
    for attempt in range(2):
        stop = threading.Event()
        thread = threading.Thread(target=service.run, args=(stop,))
        thread.start()
        name = f"obs-{attempt}-{uuid.uuid4().hex[:6]}"
        spec = {"node": "local", "image": BUSYBOX, "command": ["sleep", "300"]}
        try:
            _wait((runtime_root.state / "observer_status.json").exists, 10)
            container = _run_managed(docker_client, runtime_root, name, spec)
            try:
                # Seen through the engine's event stream, well before the 60 s resync.
                _wait(lambda n=name: _status(runtime_root, n).get("health") == "Healthy", 10)
            finally:
                container.remove(force=True)
        finally:
            stop.set()
            thread.join(timeout=20)
        assert not thread.is_alive()
