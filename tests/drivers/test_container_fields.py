"""The compose-parity Container fields on the real engine, a few fields per container.

For each group: the manifest spec is validated and reduced as the planner
does, the Docker driver creates the container, `docker inspect` shows each
value where the engine keeps it, the collector's observation equals the
desired comparable spec (no diff), and a change made by hand (`docker
update`, or the container recreated under the same labels with one option
changed) shows as a diff: in place (`update`) for the limits `docker update`
changes, a `replace` for the rest. Then the driver's `update` brings the
limits back in place, keeping the container.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.diff.plan import diff_resource
from reconciler.drivers.base import ApplyContext
from reconciler.drivers.container_fields import create_container
from reconciler.drivers.docker import DockerDriver, create_kwargs
from reconciler.observer.collectors.docker import DockerCollector
from reconciler.observer.collectors.node import NodeTarget
from reconciler.queue import Action
from reconciler.resources.key import ResourceKey
from reconciler.resources.kinds import Container
from reconciler.runtime_root import RuntimeRoot
from tests.conftest import BUSYBOX
from tests.drivers.observe_kit import apply_context, desired_spec

pytestmark = pytest.mark.docker  # every test here creates real containers

MI = 1 << 20


class _Fields:
    """A runtime root, a driver and a collector on the test engine."""

    def __init__(self, tmp: Path, host: str, client: Any) -> None:
        self.root = RuntimeRoot(tmp / "root").ensure()
        self.host, self.client = host, client
        self.driver = DockerDriver()
        self.prefix = "f" + uuid.uuid4().hex[:6]
        self.seen: list[tuple[str, ResourceKey | None, dict[str, Any]]] = []
        self.collector = DockerCollector(
            NodeTarget("local", host), self.root, lambda t, k, d: self.seen.append((t, k, d))
        )

    def observed(self, name: str) -> dict[str, Any]:
        """The collector's observed spec of Container `name` (a full listing)."""
        self.seen.clear()
        self.collector.full_listing(self.client)
        found = [d for t, k, d in self.seen if k == ResourceKey("Container", name)]
        assert found, f"the collector did not observe Container/{name}"
        spec: dict[str, Any] = found[-1]["spec"]
        return spec

    def cleanup(self) -> None:
        for summary in self.client.api.containers(all=True):
            if any(n.startswith(f"/homelab-{self.prefix}") for n in summary["Names"]):
                with contextlib.suppress(Exception):
                    self.client.api.remove_container(summary["Id"], force=True)
        self.driver.close()


@pytest.fixture(scope="module")
def fx(
    tmp_path_factory: pytest.TempPathFactory, docker_host: str, docker_client: Any
) -> Iterator[_Fields]:
    the = _Fields(tmp_path_factory.mktemp("fields"), docker_host, docker_client)
    yield the
    the.cleanup()


def _recreate(fx: _Fields, engine: str, **changed: Any) -> None:
    """Replace the container by hand: the same create arguments and labels, one option changed."""
    attrs = fx.client.api.inspect_container(engine)
    kwargs = _kwargs_of[engine]
    fx.client.api.remove_container(attrs["Id"], force=True)
    create_container(fx.client, **{**kwargs, **changed}).start()


_kwargs_of: dict[str, dict[str, Any]] = {}


def _create(fx: _Fields, name: str, spec: dict[str, Any]) -> tuple[dict[str, Any], ApplyContext]:
    desired = desired_spec(fx.root, name, spec)
    ctx = apply_context(fx.root, fx.host, name, desired)
    fx.driver.apply(ctx)
    kwargs = create_kwargs(ctx, desired)
    _kwargs_of[kwargs["name"]] = kwargs
    return desired, ctx


def _diff(name: str, desired: dict[str, Any], observed: dict[str, Any]) -> Any:
    return diff_resource("Container", name, desired, observed, in_place=Container.IN_PLACE)


def _base(**spec: Any) -> dict[str, Any]:
    return {
        "image": BUSYBOX,
        "imagePullPolicy": "Never",
        "command": ["sleep", "3600"],
        "networkMode": "none",
        "restartPolicy": "no",
        **spec,
    }


Inspected = Callable[[dict[str, Any]], Any]

# Each group: the manifest's fields, what docker inspect must show, a change by hand.
GROUPS: list[tuple[str, dict[str, Any], list[tuple[Inspected, Any]], dict[str, Any], str]] = [
    (
        "limits",
        {
            "resources": {
                "memory": "64Mi",
                "memoryReservation": "32m",
                "memorySwap": "128Mi",
                "memorySwappiness": 10,
                "cpus": "1.5",
                "cpuShares": 512,
                "cpuset": "0",
                "pids": 100,
                "oomKillDisable": True,
                "oomScoreAdj": 100,
            }
        },
        [
            (lambda a: a["HostConfig"]["Memory"], 64 * MI),
            (lambda a: a["HostConfig"]["MemoryReservation"], 32 * MI),
            (lambda a: a["HostConfig"]["MemorySwap"], 128 * MI),
            (lambda a: a["HostConfig"]["MemorySwappiness"], 10),
            (lambda a: a["HostConfig"]["NanoCpus"], 1_500_000_000),
            (lambda a: a["HostConfig"]["CpuShares"], 512),
            (lambda a: a["HostConfig"]["CpusetCpus"], "0"),
            (lambda a: a["HostConfig"]["PidsLimit"], 100),
            (lambda a: a["HostConfig"]["OomKillDisable"], True),
            (lambda a: a["HostConfig"]["OomScoreAdj"], 100),
        ],
        {"update": {"mem_limit": 96 * MI, "memswap_limit": 192 * MI}},
        "update",
    ),
    (
        "quota",
        {"resources": {"cpuPeriod": 100000, "cpuQuota": 50000, "memory": "1g"}},
        [
            (lambda a: a["HostConfig"]["CpuPeriod"], 100000),
            (lambda a: a["HostConfig"]["CpuQuota"], 50000),
            (lambda a: a["HostConfig"]["Memory"], 1 << 30),
            (lambda a: a["HostConfig"]["MemorySwap"], 2 << 30),  # the engine's default
        ],
        {"update": {"cpu_quota": 25000}},
        "update",
    ),
    (
        "process",
        {
            "init": True,
            "readOnly": True,
            "tmpfs": ["/run:size=16m,mode=1777", {"target": "/tmp", "size": "8Mi"}],
            "shmSize": "32m",
            "stopSignal": "TERM",
            "stopGracePeriod": "1m30s",
            "ulimits": {"nofile": {"soft": 1024, "hard": 2048}, "nproc": 512},
            "sysctls": {"net.core.somaxconn": 512},
            "securityOpt": ["no-new-privileges"],
            "groupAdd": [44, "1000"],
            "devices": ["/dev/null:/dev/mynull:rw", {"hostPath": "/dev/zero"}],
            "deviceCgroupRules": ["c 1:3 mr"],
            "tty": True,
            "stdinOpen": True,
            "healthcheck": {"test": "test -e /proc/1", "interval": 1, "retries": 2},
        },
        [
            (lambda a: a["HostConfig"]["Init"], True),
            (lambda a: a["HostConfig"]["ReadonlyRootfs"], True),
            (
                lambda a: a["HostConfig"]["Tmpfs"],
                {"/run": f"size={16 * MI},mode=1777", "/tmp": f"size={8 * MI}"},
            ),
            (lambda a: a["HostConfig"]["ShmSize"], 32 * MI),
            (lambda a: a["Config"]["StopSignal"], "SIGTERM"),
            (lambda a: a["Config"]["StopTimeout"], 90),
            (
                lambda a: sorted(
                    (u["Name"], u["Soft"], u["Hard"]) for u in a["HostConfig"]["Ulimits"]
                ),
                [("nofile", 1024, 2048), ("nproc", 512, 512)],
            ),
            (lambda a: a["HostConfig"]["Sysctls"], {"net.core.somaxconn": "512"}),
            (lambda a: a["HostConfig"]["SecurityOpt"], ["no-new-privileges"]),
            (lambda a: sorted(a["HostConfig"]["GroupAdd"]), ["1000", "44"]),
            (
                lambda a: sorted(
                    (d["PathOnHost"], d["PathInContainer"], d["CgroupPermissions"])
                    for d in a["HostConfig"]["Devices"]
                ),
                [("/dev/null", "/dev/mynull", "rw"), ("/dev/zero", "/dev/zero", "rwm")],
            ),
            (lambda a: a["HostConfig"]["DeviceCgroupRules"], ["c 1:3 mr"]),
            (lambda a: (a["Config"]["Tty"], a["Config"]["OpenStdin"]), (True, True)),
            (lambda a: a["Config"]["Healthcheck"]["Test"], ["CMD-SHELL", "test -e /proc/1"]),
            (lambda a: a["State"]["Health"]["Status"], "healthy"),
        ],
        {"recreate": {"shm_size": 16 * MI}},
        "replace",
    ),
    (
        "namespaces",
        {"utsMode": "host", "usernsMode": "host", "ipcMode": "private", "stopSignal": "SIGINT"},
        [
            (lambda a: a["HostConfig"]["UTSMode"], "host"),
            (lambda a: a["HostConfig"]["UsernsMode"], "host"),
            (lambda a: a["HostConfig"]["IpcMode"], "private"),
            (lambda a: a["Config"]["StopSignal"], "SIGINT"),
        ],
        {"recreate": {"uts_mode": None}},
        "replace",
    ),
    (
        "naming",
        {
            "containerName": "CHANGE",
            "hostname": "media",
            "domainname": "home.arpa",
            "dns": ["192.0.2.53", "192.0.2.54"],
            "dnsSearch": "home.arpa",
            "dnsOptions": ["ndots:2"],
            "extraHosts": {"nas": "192.0.2.10", "printer": ["192.0.2.11"]},
            "logging": {"driver": "json-file", "options": {"max-size": "10m", "max-file": 3}},
            "ipcMode": "shareable",
            "cgroup": "private",
            "cgroupParent": "/homelab-test",
            "runtime": "runc",
            "platform": "PLATFORM",
            "macAddress": "02:42:ac:11:00:99",
            "healthcheck": {"disable": True},
        },
        [
            (lambda a: a["Name"], "/CHANGE"),
            (
                lambda a: (a["Config"]["Hostname"], a["Config"]["Domainname"]),
                ("media", "home.arpa"),
            ),
            (lambda a: a["HostConfig"]["Dns"], ["192.0.2.53", "192.0.2.54"]),
            (lambda a: a["HostConfig"]["DnsSearch"], ["home.arpa"]),
            (lambda a: a["HostConfig"]["DnsOptions"], ["ndots:2"]),
            (
                lambda a: sorted(a["HostConfig"]["ExtraHosts"]),
                ["nas:192.0.2.10", "printer:192.0.2.11"],
            ),
            (
                lambda a: a["HostConfig"]["LogConfig"],
                {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}},
            ),
            (lambda a: a["HostConfig"]["IpcMode"], "shareable"),
            (lambda a: a["HostConfig"]["CgroupnsMode"], "private"),
            (lambda a: a["HostConfig"]["CgroupParent"], "/homelab-test"),
            (lambda a: a["HostConfig"]["Runtime"], "runc"),
            (lambda a: a["Config"]["MacAddress"], "02:42:ac:11:00:99"),
            (lambda a: a["Config"]["Healthcheck"]["Test"], ["NONE"]),
        ],
        {"recreate": {"hostname": "other"}},
        "replace",
    ),
]


@pytest.mark.parametrize(
    ("group", "fields", "shows", "by_hand", "operation"), GROUPS, ids=[g[0] for g in GROUPS]
)
def test_fields_are_applied_observed_and_diffed(
    fx: _Fields,
    group: str,
    fields: dict[str, Any],
    shows: list[tuple[Inspected, Any]],
    by_hand: dict[str, Any],
    operation: str,
) -> None:
    name = f"{fx.prefix}-{group}"
    engine = f"homelab-{name}"
    if fields.get("containerName") == "CHANGE":
        engine = f"homelab-{fx.prefix}_{group}.1"
        fields = {**fields, "containerName": engine}
        shows = [(lambda a: a["Name"], f"/{engine}"), *shows[1:]]
    if fields.get("platform") == "PLATFORM":
        image = fx.client.api.inspect_image(BUSYBOX)
        fields = {**fields, "platform": f"{image['Os']}/{image['Architecture']}"}
    desired, ctx = _create(fx, name, _base(**fields))
    for key in fields:
        assert key in desired, f"{key} is missing from the comparable spec"

    attrs = fx.client.api.inspect_container(engine)
    for read, expected in shows:
        assert read(attrs) == expected
    observed = fx.observed(name)
    assert observed == desired  # applied, then observed back: no diff
    assert _diff(name, desired, observed) is None

    if "update" in by_hand:
        fx.client.api.update_container(engine, **by_hand["update"])  # docker update by hand
    else:
        _recreate(fx, engine, **by_hand["recreate"])
    drifted = fx.observed(name)
    change = _diff(name, desired, drifted)
    assert change is not None and change.operation == operation, change
    if operation == "update":
        # The driver's in-place update brings the limits back on the same container.
        before = attrs["Id"]
        update = Action(
            id="b" * 20,
            kind="Container",
            name=name,
            operation="update",
            desired=desired,
            commit="0" * 40,
        )
        fx.driver.apply(
            ApplyContext(
                update, ctx.node, ctx.root, ctx.repo_file, ctx.secret_file, ctx.settings, True
            )
        )
        assert fx.client.api.inspect_container(engine)["Id"] == before
        assert fx.observed(name) == desired


def test_volumes_from_mounts_another_containers_volumes(fx: _Fields, tmp_path: Path) -> None:
    source = f"{fx.prefix}-data"
    data = tmp_path / "data"
    data.mkdir()
    _create(fx, source, _base(volumes=[{"source": str(data), "target": "/data"}]))
    name = f"{fx.prefix}-reader"
    desired, _ = _create(fx, name, _base(volumesFrom=[f"homelab-{source}:ro"]))
    attrs = fx.client.api.inspect_container(f"homelab-{name}")
    assert attrs["HostConfig"]["VolumesFrom"] == [f"homelab-{source}:ro"]
    assert [(m["Destination"], m["RW"]) for m in attrs["Mounts"]] == [("/data", False)]
    assert fx.observed(name) == desired


def test_secrets_are_copied_in_observed_as_fingerprints_and_a_change_diffs(fx: _Fields) -> None:
    value = b"s3cret-Value\n"
    (fx.root.secrets / "db-pass").write_bytes(value)
    (fx.root.secrets / "api-key").write_bytes(b"k3y")
    name = f"{fx.prefix}-secrets"
    engine = f"homelab-{name}"
    spec = _base(secrets=["db-pass", {"secret": "api-key", "target": "/etc/app/key", "mode": 400}])
    desired, _ = _create(fx, name, spec)
    assert [m["target"] for m in desired["secrets"]] == ["/etc/app/key", "/run/secrets/db-pass"]
    container = fx.client.containers.get(engine)
    assert container.exec_run(["cat", "/run/secrets/db-pass"]).output == value
    modes = [
        container.get_archive(p)[1]["mode"] & 0o777
        for p in ("/etc/app/key", "/run/secrets/db-pass")
    ]
    assert modes == [0o400, 0o444]
    observed = fx.observed(name)
    assert observed == desired
    assert b"s3cret" not in repr(fx.seen).encode() and b"k3y" not in repr(fx.seen).encode()

    container.exec_run(["sh", "-c", "echo changed > /run/secrets/db-pass"])  # by hand
    drifted = fx.observed(name)
    change = _diff(name, desired, drifted)
    assert change is not None and change.operation == "replace"
    assert [op["path"] for op in change.patch] == ["/secrets/1/sha256"]
    assert b"changed" not in repr(change.patch).encode()
