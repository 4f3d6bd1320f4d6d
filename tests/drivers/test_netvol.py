"""Network and Volume resources, and containers on networks with named volumes, on the real engine.

Each test writes manifests into a real git repository (the `lab`), plans
with the real planner over a world observed by the real collector
(`refresh_world`, as `homelab plan --refresh` does), proposes and approves
the actions through the real queue and runs them with the executor's
action runner and drivers. Names carry the lab's prefix; the networks and
volumes a test made are removed at teardown.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import docker.errors
import orjson
import pytest

from reconciler.atomic_files import atomic_write_json
from reconciler.diff import Change
from reconciler.diff.render import render_change
from reconciler.drivers.netvol_observe import key_name
from reconciler.observer.collectors.docker import DockerCollector
from reconciler.observer.collectors.node import NodeTarget
from reconciler.observer.refresh import refresh_world
from reconciler.planning import PlanResult, compute_plan
from reconciler.queue import Action, new_action
from reconciler.resources.key import ResourceKey
from reconciler.sources.git import GitSource
from reconciler.supervisor.proposals import world_basis
from reconciler.world import world_path
from reconciler.world.doc import world_doc_to_dict
from tests.conftest import BUSYBOX
from tests.executor.lab import Lab
from tests.observer.test_docker_collector import _wait

pytestmark = pytest.mark.docker


def _doc(kind: str, name: str, spec: dict[str, Any]) -> str:
    doc = {
        "apiVersion": "homelab.reconciler/v1alpha1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    }
    return orjson.dumps(doc).decode() + "\n"


def _order(change: Change) -> int:
    """Networks and volumes before the containers, their deletes after (the depends helper
    makes the executor do this; here the test runs the actions one by one)."""
    if change.kind not in ("Network", "Volume"):
        return 1
    return 2 if change.operation == "delete" else 0


class NetLab:
    """The lab plus Network/Volume manifests, refreshed plans and engine cleanup."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.client = lab.client

    def name(self, short: str) -> str:
        return self.lab.name(short)

    def network(self, short: str, **spec: Any) -> str:
        name = self.name(short)
        self.lab.write(f"manifests/{name}.yaml", _doc("Network", name, spec))
        return name

    def volume(self, short: str, **spec: Any) -> str:
        name = self.name(short)
        self.lab.write(f"manifests/{name}.yaml", _doc("Volume", name, spec))
        return name

    def container(self, short: str, **spec: Any) -> str:
        body = {"networkMode": "bridge", **spec}
        return self.lab.container(short, **body)

    def remove(self, name: str) -> None:
        self.lab.repo.remove(f"manifests/{name}.yaml")

    def plan(self) -> PlanResult:
        source = GitSource(self.lab.repo.path)
        state = source.load(None)
        refreshed = refresh_world(self.lab.root, state)
        assert not refreshed.unreachable, refreshed.unreachable
        for (kind, name), doc in refreshed.world.items():  # as the observer would write them
            atomic_write_json(world_path(self.lab.root, kind, name), world_doc_to_dict(doc))
        return compute_plan(source, self.lab.root, state=state, world=refreshed.world)

    def text(self, result: PlanResult) -> str:
        return "\n".join(render_change(c) for c in result.plan.changes)

    def ops(self, result: PlanResult) -> dict[str, str]:
        return {f"{c.kind}/{c.name}": c.operation for c in result.plan.changes}

    def run(self, result: PlanResult) -> list[Action]:
        """Propose and approve every change, run them in plan order; the actions as they ended."""
        actions = []
        for change in sorted(result.plan.changes, key=_order):
            manifest = result.state.manifests.get(change.ref)
            action = new_action(
                change,
                commit=result.state.commit,
                basis=world_basis(result.world.get(change.ref)),
                manifest=manifest.doc if manifest else None,
            )
            self.lab.queue.propose(action, actor="supervisor")
            self.lab.queue.move(action.id, "pending", "approved", actor="test")
            actions.append(action)
        self.lab.run_now(actions)
        return [self.lab.action(a.id) for a in actions]

    def apply(self, message: str = "change") -> list[Action]:
        self.lab.commit(message)
        done = self.run(self.plan())
        for action in done:
            assert self.lab.state(action.id) == "done", (action.kind, action.name, action.outcome)
        return done

    def exec(self, container: str, *cmd: str) -> str:
        found = self.client.containers.get(f"homelab-{container}")
        code, out = found.exec_run(list(cmd))
        assert code == 0, out
        return str(out.decode())

    def cleanup(self) -> None:
        prefix = self.lab.prefix
        for found in self.client.containers.list(all=True):
            if prefix in found.name:
                found.remove(force=True)
        for net in self.client.networks.list():
            if net.name.startswith(prefix):
                net.remove()
        for vol in self.client.volumes.list():
            if vol.name.startswith(prefix):
                vol.remove(force=True)


@pytest.fixture
def net(lab: Lab) -> Iterator[NetLab]:
    the = NetLab(lab)
    lab.root.instance_id()  # a refresh lists a node only for a root that made something
    yield the
    the.cleanup()


def _sleeper(**spec: Any) -> dict[str, Any]:
    return {"image": BUSYBOX, "command": ["sleep", "3600"], **spec}


def test_network_and_volume_are_created_observed_and_deleted(net: NetLab) -> None:
    network = net.network(
        "lan",
        attachable=True,
        labels={"tier": "edge"},
        ipam={"subnets": [{"subnet": "10.71.0.0/24", "gateway": "10.71.0.1"}]},
    )
    volume = net.volume("data", labels={"tier": "db"}, deletionPolicy="Delete")
    net.lab.commit("network and volume")
    first = net.plan()
    assert net.ops(first) == {f"Network/{network}": "create", f"Volume/{volume}": "create"}
    for action in net.run(first):
        assert net.lab.state(action.id) == "done", action.outcome

    inspected = net.client.api.inspect_network(network)
    assert inspected["IPAM"]["Config"] == [{"Subnet": "10.71.0.0/24", "Gateway": "10.71.0.1"}]
    assert inspected["Attachable"] is True
    assert inspected["Labels"]["tier"] == "edge"
    assert inspected["Labels"]["homelab.reconciler/kind"] == "Network"
    assert net.client.api.inspect_volume(volume)["Labels"]["tier"] == "db"

    again = net.plan()  # observed by the collector exactly as desired: nothing to do
    assert again.plan.changes == [], net.text(again)
    doc = again.world[("Network", network)]
    assert doc.status.managed and doc.status.exists
    assert doc.status.observed is not None
    assert doc.status.observed["ipam"]["subnets"] == [
        {"subnet": "10.71.0.0/24", "gateway": "10.71.0.1"}
    ]
    assert again.world[("Volume", volume)].status.observed["deletionPolicy"] == "Delete"  # type: ignore[index]

    shown = subprocess.run(
        [sys.executable, "-m", "reconciler", "get", "volumes", "--root", str(net.lab.root.path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert volume in shown and "Healthy" in shown
    root = str(net.lab.root.path)
    shown = subprocess.run(
        [
            sys.executable,
            "-m",
            "reconciler",
            "get",
            "Network",
            network,
            "-o",
            "json",
            "--root",
            root,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert orjson.loads(shown)["status"]["observed"]["attachable"] is True

    net.remove(network)
    net.remove(volume)
    net.lab.commit("prune")
    prune = net.plan()
    assert net.ops(prune) == {f"Network/{network}": "delete", f"Volume/{volume}": "delete"}
    assert f"deletes volume {volume} (empty): deletionPolicy Delete" in net.text(prune)
    for action in net.run(prune):
        assert net.lab.state(action.id) == "done", action.outcome
    with pytest.raises(docker.errors.NotFound):
        net.client.api.inspect_network(network)
    with pytest.raises(docker.errors.NotFound):
        net.client.api.inspect_volume(volume)
    assert net.plan().plan.changes == []


def test_a_container_on_two_networks_with_an_alias_and_a_static_ip(net: NetLab) -> None:
    front = net.network("front", ipam={"subnets": [{"subnet": "10.72.1.0/24"}]})
    back = net.network("back")
    web = net.container(
        "web",
        **_sleeper(
            networks=[
                {"network": front, "aliases": ["site"], "ipv4Address": "10.72.1.9"},
                {"network": back, "aliases": ["api"]},
            ]
        ),
    )
    net.apply("two networks")  # creates in plan order: the networks before the container

    attrs = net.client.api.inspect_container(f"homelab-{web}")
    joined = attrs["NetworkSettings"]["Networks"]
    assert set(joined) == {front, back}
    assert joined[front]["IPAddress"] == "10.72.1.9"
    assert joined[front]["IPAMConfig"]["IPv4Address"] == "10.72.1.9"
    assert "site" in joined[front]["Aliases"]
    assert "api" in joined[back]["Aliases"]
    assert attrs["HostConfig"]["NetworkMode"] == front

    again = net.plan()
    assert again.plan.changes == [], net.text(again)
    seen = again.world[("Container", web)].status.observed
    assert seen is not None
    assert seen["networks"] == [
        {"network": front, "aliases": ["site"], "ipv4Address": "10.72.1.9"},
        {"network": back, "aliases": ["api"], "ipv4Address": None},
    ]

    # From a second container on the network, the alias resolves and answers.
    out = net.client.containers.run(
        BUSYBOX,
        ["sh", "-c", "nslookup site && ping -c1 -W3 site"],
        network=front,
        remove=True,
        name=f"{net.lab.prefix}-probe",
    ).decode()
    assert "10.72.1.9" in out and "1 packets received" in out

    # Disconnected by hand: drift of the container, which is replaced to join it again.
    net.client.api.disconnect_container_from_network(f"homelab-{web}", back)
    drift = net.plan()
    change = next(c for c in drift.plan.changes if c.name == web)
    assert change.operation == "replace" and "networks" in change.forces
    assert "# forces replacement" in net.text(drift)
    for action in net.run(drift):
        assert net.lab.state(action.id) == "done", action.outcome
    joined = net.client.api.inspect_container(f"homelab-{web}")["NetworkSettings"]["Networks"]
    assert set(joined) == {front, back}


def test_a_named_volume_outlives_a_replace_and_a_prune_that_retains_it(net: NetLab) -> None:
    volume = net.volume("media")
    app = net.container("app", **_sleeper(volumes=[{"volume": volume, "target": "/data"}]))
    net.apply("volume and container")
    mounts = net.client.api.inspect_container(f"homelab-{app}")["Mounts"]
    assert [(m["Type"], m["Name"], m["Destination"]) for m in mounts] == [
        ("volume", volume, "/data")
    ]
    net.exec(app, "sh", "-c", "echo kept > /data/note && head -c 20000 /dev/zero > /data/blob")
    assert net.plan().plan.changes == []

    net.container(
        "app", **_sleeper(env={"MODE": "two"}, volumes=[{"volume": volume, "target": "/data"}])
    )
    net.lab.commit("replace the container")
    replace = net.plan()
    assert net.ops(replace) == {f"Container/{app}": "replace"}
    net.run(replace)
    assert net.exec(app, "cat", "/data/note").strip() == "kept"

    net.remove(app)
    net.remove(volume)
    net.lab.commit("prune both")
    prune = net.plan()
    assert net.ops(prune) == {f"Container/{app}": "delete", f"Volume/{volume}": "delete"}
    text = net.text(prune)
    assert f"retained: deletionPolicy Retain; volume {volume} (holds data:" in text
    done = net.run(prune)
    assert all(net.lab.state(a.id) == "done" for a in done), [a.outcome for a in done]
    outcome = next(a for a in done if a.kind == "Volume").outcome or {}
    assert "retained: deletionPolicy Retain" in str(outcome)

    assert net.client.api.inspect_volume(volume)["Name"] == volume  # still there, with data
    after = net.plan()
    assert after.plan.changes == [], net.text(after)  # it left management: no delete again
    doc = after.world[("Volume", volume)]
    assert doc.status.exists and not doc.status.managed

    reader = net.client.containers.run(
        BUSYBOX,
        ["cat", "/data/note"],
        volumes={volume: {"bind": "/data", "mode": "ro"}},
        remove=True,
    )
    assert reader.decode().strip() == "kept"

    net.volume("media")  # named in git again: adopted as it is, not created
    net.lab.commit("manage it again")
    back = net.plan()
    assert net.ops(back) == {f"Volume/{volume}": "adopt"}
    assert back.plan.changes[0].patch == []
    net.run(back)
    assert net.plan().plan.changes == []


def test_a_prune_with_deletion_policy_delete_deletes_the_volume_and_says_what_it_held(
    net: NetLab,
) -> None:
    volume = net.volume("scratch", deletionPolicy="Delete")
    net.apply("volume")
    net.client.containers.run(
        BUSYBOX,
        ["sh", "-c", "head -c 3000000 /dev/zero > /v/a && echo b > /v/b"],
        volumes={volume: {"bind": "/v", "mode": "rw"}},
        remove=True,
    )
    net.remove(volume)
    net.lab.commit("prune")
    prune = net.plan()
    text = net.text(prune)
    assert f"deletes volume {volume} (holds data: 3.0 MB): deletionPolicy Delete" in text, text
    done = net.run(prune)
    assert net.lab.state(done[0].id) == "done", done[0].outcome
    assert "deleted volume" in str(done[0].outcome)
    with pytest.raises(docker.errors.NotFound):
        net.client.api.inspect_volume(volume)


def test_a_network_and_volume_made_by_hand_plan_as_adopt(net: NetLab) -> None:
    engine_net = f"{net.lab.prefix}_default"
    engine_vol = f"{net.lab.prefix}_data"
    compose = {"com.docker.compose.project": net.lab.prefix, "com.docker.compose.network": "x"}
    net.client.networks.create(engine_net, driver="bridge", labels=compose)
    net.client.volumes.create(engine_vol, labels={"com.docker.compose.project": net.lab.prefix})
    network = net.network("default", name=engine_net)
    volume = net.volume("data", name=engine_vol)
    net.lab.commit("adopt")
    plan = net.plan()
    assert net.ops(plan) == {f"Network/{network}": "adopt", f"Volume/{volume}": "adopt"}
    assert all(c.patch == [] for c in plan.plan.changes), net.text(plan)
    assert "taken over as it runs" in net.text(plan)
    ids = net.client.api.inspect_network(engine_net)["Id"]
    net.run(plan)
    assert net.client.api.inspect_network(engine_net)["Id"] == ids  # never recreated
    after = net.plan()
    assert after.plan.changes == [], net.text(after)
    assert after.world[("Network", network)].status.managed
    assert after.world[("Volume", volume)].status.managed


def test_replacing_a_network_in_use_is_refused_with_the_reason(net: NetLab) -> None:
    lan = net.network("lan", ipam={"subnets": [{"subnet": "10.73.0.0/24"}]})
    app = net.container("app", **_sleeper(networks=[lan]))
    net.apply("network in use")
    net.network("lan", ipam={"subnets": [{"subnet": "10.74.0.0/24"}]})
    net.lab.commit("another subnet")
    plan = net.plan()
    assert net.ops(plan) == {f"Network/{lan}": "replace"}
    text = net.text(plan)
    assert "ipam cannot change in place" in text and "# forces replacement" in text
    assert f"refused when approved: containers homelab-{app} are attached" in text
    done = net.run(plan)
    assert net.lab.state(done[0].id) == "failed"
    assert f"containers homelab-{app} are attached" in str(done[0].outcome)
    subnet = net.client.api.inspect_network(lan)["IPAM"]["Config"][0]["Subnet"]
    assert subnet == "10.73.0.0/24"  # untouched, the container still on it


def test_replacing_a_retained_volume_is_refused(net: NetLab) -> None:
    volume = net.volume("keep", labels={"a": "1"})
    net.apply("volume")
    net.volume("keep", labels={"a": "2"})
    net.lab.commit("relabel")
    plan = net.plan()
    assert net.ops(plan) == {f"Volume/{volume}": "replace"}
    assert "refused when approved: recreating volume" in net.text(plan)
    done = net.run(plan)
    assert net.lab.state(done[0].id) == "failed"
    assert "deletionPolicy is Retain" in str(done[0].outcome)
    # deletionPolicy changes in place (the registry record), then the replace goes through.
    net.volume("keep", labels={"a": "1"}, deletionPolicy="Delete")
    net.lab.commit("allow deletion")
    update = net.plan()
    assert net.ops(update) == {f"Volume/{volume}": "update"}
    net.run(update)
    net.volume("keep", labels={"a": "2"}, deletionPolicy="Delete")
    net.lab.commit("relabel again")
    done = net.run(net.plan())
    assert net.lab.state(done[0].id) == "done", done[0].outcome
    assert net.client.api.inspect_volume(volume)["Labels"]["a"] == "2"


def test_the_collector_follows_network_and_volume_events(net: NetLab, docker_host: str) -> None:
    """Created, removed, a container disconnected: seen from the events stream, long before
    the next full listing (resync an hour away)."""
    written: list[tuple[str, Any, dict[str, Any]]] = []
    collector = DockerCollector(
        NodeTarget("local", docker_host),
        net.lab.root,
        lambda etype, ref, data: written.append((etype, ref, data)),
        resync=3600,
    )
    stop = threading.Event()
    thread = threading.Thread(target=collector.run, args=(stop,), daemon=True)
    thread.start()

    def seen(kind: str, engine_name: str) -> bool:
        return any(
            t == "observed.resource" and ref.kind == kind and d["spec"]["name"] == engine_name
            for t, ref, d in written
            if ref is not None
        )

    def listed_without(kind: str, key: str) -> bool:
        last = [d for t, _, d in written if t == "observed.listing" and d["kind"] == kind]
        return bool(last) and key not in last[-1]["names"]

    try:
        _wait(lambda: any(t == "observed.listing" for t, _, _ in written), 20)
        engine_net, engine_vol = f"{net.lab.prefix}_events", f"{net.lab.prefix}_vol"
        made = net.client.networks.create(engine_net)
        net.client.volumes.create(engine_vol)
        _wait(lambda: seen("Network", engine_net) and seen("Volume", engine_vol), 20)

        lan = net.network("lan")
        web = net.container("web", **_sleeper(networks=[lan, engine_net]))
        net.apply("a container on two networks")
        key = ResourceKey("Container", web)

        def networks_of_web() -> list[str]:
            found = [d for t, r, d in written if r == key and t == "observed.resource"]
            return (
                [a["network"] for a in (found[-1]["spec"].get("networks") or [])] if found else []
            )

        _wait(lambda: networks_of_web() == [lan, engine_net], 20)
        made.disconnect(f"homelab-{web}")
        _wait(lambda: networks_of_web() == [lan], 20)  # the disconnect event, not a re-list

        net.client.api.remove_volume(engine_vol)
        _wait(lambda: listed_without("Volume", key_name(engine_vol)), 20)
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()


def test_a_container_made_by_hand_on_a_network_with_a_named_volume_plans_as_adopt(
    net: NetLab,
) -> None:
    """As docker-compose v1 runs a service: the named volume as a bind `NAME:/data:rw`."""
    engine_net, engine_vol = f"{net.lab.prefix}_default", f"{net.lab.prefix}_data"
    net.client.networks.create(engine_net)
    net.client.volumes.create(engine_vol)
    app = net.name("app")
    net.client.containers.run(
        BUSYBOX,
        ["sleep", "3600"],
        name=f"homelab-{app}",
        network=engine_net,
        volumes={engine_vol: {"bind": "/data", "mode": "rw"}},
        detach=True,
    )
    net.network("default", name=engine_net)
    net.volume("data", name=engine_vol)
    net.container(
        "app",
        image=BUSYBOX,
        command=None,
        args=["sleep", "3600"],  # what `docker run IMAGE sleep 3600` sets (Cmd)
        networks=[engine_net],
        volumes=[{"volume": engine_vol, "target": "/data"}],
    )
    net.lab.commit("adopt what runs")
    plan = net.plan()
    assert set(net.ops(plan).values()) == {"adopt"}, net.text(plan)
    assert len(plan.plan.changes) == 3
    assert all(c.patch == [] for c in plan.plan.changes), net.text(plan)
    started = net.client.api.inspect_container(f"homelab-{app}")["State"]["StartedAt"]
    for action in net.run(plan):
        assert net.lab.state(action.id) == "done", action.outcome
    assert net.client.api.inspect_container(f"homelab-{app}")["State"]["StartedAt"] == started
    assert net.plan().plan.changes == []


def test_a_subpath_on_an_engine_older_than_api_1_45_is_refused_before_anything_changes(
    net: NetLab,
) -> None:
    volume = net.volume("cfg")
    net.apply("volume")
    app = net.container(
        "app", **_sleeper(volumes=[{"volume": volume, "target": "/cfg", "subpath": "app"}])
    )
    net.lab.commit("subpath")
    done = net.run(net.plan())
    assert net.lab.state(done[0].id) == "failed"
    version = tuple(int(x) for x in net.client.api.api_version.split("."))
    assert version < (1, 45), "this test is about an older engine (the test engine speaks 1.41)"
    assert "subpath needs Docker Engine API 1.45" in str(done[0].outcome)
    assert net.lab.containers(app) == []  # refused before the create
