"""Validation of the compose-parity Container fields: units, shorthands, located errors.

Sizes, cpus and durations normalize to numbers (docker's 1024-based units);
compose's shorthands normalize to the long form; an unset field leaves the
comparable spec as it was before these fields existed; a bad value is a
located error (file:line:column, field) from the manifest loader; the guard
rails refuse what gives the host away.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from reconciler.diff.plan import diff_resource
from reconciler.diff.render import render_change
from reconciler.resources.container_fields import parse_cpus, parse_duration, parse_size
from reconciler.resources.guardrails import container_findings
from reconciler.resources.kinds import Container
from reconciler.resources.normalize import comparable_spec
from reconciler.sources.manifests import parse_file
from tests.conftest import GitRepo
from tests.planning.test_guardrails import container, node, plan_errors

MI = 1 << 20


class _NoInputs:
    def repo_file_sha256(self, path: str) -> str | None:
        return None

    def secret_sha256(self, name: str) -> str | None:
        return None


def _spec(**fields: Any) -> dict[str, Any]:
    doc = Container.model_validate(
        {"metadata": {"name": "app"}, "spec": {"image": "local/busybox:1", **fields}}
    )
    return comparable_spec("Container", doc.model_dump(mode="json"), _NoInputs())


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("64Mi", 64 * MI),
        ("512m", 512 * MI),
        ("1g", 1 << 30),
        ("1.5G", 3 << 29),
        ("2048", 2048),
        (4096, 4096),
        ("10kb", 10 << 10),
        ("1MiB", MI),
    ],
)
def test_sizes_are_read_in_docker_units(text: Any, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["64 megs", "-1", "1e6", "", True, "Mi"])
def test_a_bad_size_names_what_is_expected(bad: Any) -> None:
    with pytest.raises(ValueError, match="size like 64Mi"):
        parse_size(bad)


@pytest.mark.parametrize(("text", "cpus"), [(1.5, 1.5), ("1.5", 1.5), ("500m", 0.5), (2, 2)])
def test_cpus_accept_numbers_and_millicpus(text: Any, cpus: float) -> None:
    assert parse_cpus(text) == cpus
    assert type(parse_cpus(2.0)) is int  # 2.0 and 2 serialize alike


@pytest.mark.parametrize(("text", "seconds"), [("10s", 10), ("1m30s", 90), ("500ms", 0.5), (3, 3)])
def test_durations_as_compose_writes_them(text: Any, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_unset_fields_leave_the_comparable_spec_as_it_was() -> None:
    spec = _spec(command=["sleep", "1"])
    assert sorted(spec) == sorted(
        [
            "node",
            "image",
            "imagePullPolicy",
            "command",
            "args",
            "env",
            "ports",
            "volumes",
            "restartPolicy",
            "labels",
            "healthcheck",
            "networkMode",
            "user",
            "workingDir",
            "privileged",
            "pidMode",
            "capAdd",
            "capDrop",
            "state",
        ]
    )
    # False, empty and default values written out are the same spec.
    assert _spec(command=["sleep", "1"], init=False, devices=[], resources={}, sysctls={}) == spec
    assert _spec(command=["sleep", "1"], resources={"oomScoreAdj": 0}) == spec


def test_shorthands_normalize_to_the_long_form() -> None:
    spec = _spec(
        devices=["/dev/ttyUSB0:/dev/zigbee", "/dev/dri", "/dev/snd:rw"],
        extraHosts=["nas:10.0.0.5", "v6=::1"],
        tmpfs=["/run:size=64m,mode=1777"],
        ulimits={"nofile": 1024},
        sysctls=["net.core.somaxconn=1024"],
        groupAdd=44,
        dns="1.1.1.1",
        stopSignal="term",
        stopGracePeriod="1m",
        healthcheck={"test": "wget -q -O- localhost"},
        resources={"memory": "64Mi", "cpus": "500m", "memorySwap": -1},
    )
    assert spec["devices"] == [
        {"hostPath": "/dev/dri", "containerPath": "/dev/dri", "permissions": "rwm"},
        {"hostPath": "/dev/snd", "containerPath": "/dev/snd", "permissions": "rw"},
        {"hostPath": "/dev/ttyUSB0", "containerPath": "/dev/zigbee", "permissions": "rwm"},
    ]
    assert spec["extraHosts"] == [
        {"hostname": "nas", "ip": "10.0.0.5"},
        {"hostname": "v6", "ip": "::1"},
    ]
    assert spec["tmpfs"] == [{"target": "/run", "size": 64 * MI, "mode": "1777"}]
    assert spec["ulimits"] == {"nofile": {"soft": 1024, "hard": 1024}}
    assert spec["sysctls"] == {"net.core.somaxconn": "1024"}
    assert (spec["groupAdd"], spec["dns"], spec["stopSignal"]) == (["44"], ["1.1.1.1"], "SIGTERM")
    assert spec["stopGracePeriod"] == 60
    assert spec["healthcheck"]["test"] == ["CMD-SHELL", "wget -q -O- localhost"]
    assert spec["resources"] == {"memory": 64 * MI, "cpus": 0.5, "memorySwap": -1}
    assert _spec(healthcheck={"disable": True})["healthcheck"] == {"disable": True}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"resources": {"memory": "lots"}}, "size like 64Mi"),
        ({"resources": {"memory": "1m"}}, "below the engine's minimum"),
        ({"resources": {"memorySwap": "64m"}}, "memorySwap needs memory"),
        ({"resources": {"cpus": 0}}, "number of cpus"),
        ({"resources": {"pids": 0}}, "pids: 0"),
        ({"devices": ["dri"]}, "absolute path"),
        ({"devices": ["/dev/a:/dev/b:rwx"]}, "permissions"),
        ({"extraHosts": ["nas"]}, "HOST:IP"),
        ({"extraHosts": ["nas:not-an-ip"]}, "not an IP address"),
        ({"ulimits": {"nofile": {"soft": 10, "hard": 5}}}, "above hard"),
        ({"ulimits": {"files": 10}}, "ulimits 'files'"),
        ({"tmpfs": ["/run:uid=1000"]}, "only size= and mode="),
        ({"tmpfs": ["run"]}, "absolute path"),
        ({"sysctls": {"somaxconn": 1}}, "not a sysctl name"),
        ({"stopSignal": "sig term"}, "signal like SIGTERM"),
        ({"stopGracePeriod": "soon"}, "duration like 10s"),
        ({"ipcMode": "hostly"}, "ipcMode 'hostly'"),
        ({"hostname": "-bad-"}, "not a host name"),
        ({"macAddress": "02:42"}, "macAddress"),
        ({"platform": "amd64"}, "os/arch"),
        ({"deviceCgroupRules": ["c 188 rwm"]}, "MAJOR:MINOR"),
        ({"volumesFrom": ["a b"]}, "volumesFrom"),
        ({"containerName": "-x"}, "not a container name"),
        ({"logging": {"driver": "Json File"}}, "pattern"),
        ({"secrets": ["db"], "readOnly": True}, "readOnly: false"),
        ({"secrets": ["a", {"secret": "b", "target": "/run/secrets/a"}]}, "same target"),
        ({"secrets": [{"secret": "a", "mode": "rwx"}]}, "octal"),
        ({"secrets": [{"secret": "a", "target": "relative"}]}, "absolute file path"),
        ({"secrets": ["../etc"]}, "secret"),
    ],
)
def test_a_bad_value_is_refused_with_what_is_expected(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _spec(**fields)


def test_a_bad_value_is_a_located_error_in_the_manifest() -> None:
    text = b"""\
apiVersion: homelab.reconciler/v1alpha1
kind: Container
metadata:
  name: jellyfin
spec:
  image: local/busybox:1
  resources:
    memory: 2 gigs
  devices:
    - /dev/dri
"""
    result = parse_file("manifests/media.yaml", text)
    [error] = result.errors
    assert str(error).startswith("manifests/media.yaml:8:13: spec.resources.memory: ")
    assert "size like 64Mi" in str(error)


def test_resource_limits_change_in_place_the_rest_replaces() -> None:
    desired = _spec(resources={"memory": "128Mi", "oomScoreAdj": 10}, hostname="media")
    drifted = {**desired, "resources": {**desired["resources"], "memory": 64 * MI}}
    change = diff_resource("Container", "app", desired, drifted, in_place=Container.IN_PLACE)
    assert change is not None and change.operation == "update"
    unset = {k: v for k, v in desired.items() if k != "resources"}
    change = diff_resource("Container", "app", desired, unset, in_place=Container.IN_PLACE)
    assert change is not None and change.operation == "replace"  # oomScoreAdj needs a new one
    limits_only = _spec(resources={"memory": "128Mi", "pids": 10}, hostname="media")
    without = {k: v for k, v in limits_only.items() if k != "resources"}
    change = diff_resource("Container", "app", limits_only, without, in_place=Container.IN_PLACE)
    assert change is not None and change.operation == "update"
    assert "forces replacement" not in render_change(change)  # limits alone: in place
    drifted = {**desired, "resources": {"memory": 128 * MI, "oomScoreAdj": 5}}
    change = diff_resource("Container", "app", desired, drifted, in_place=Container.IN_PLACE)
    assert change is not None and change.operation == "replace"
    assert change.forces == ("resources.oomScoreAdj",)
    line = render_change(change).splitlines()[-1]
    assert line.strip() == "~ resources.oomScoreAdj: 5 -> 10  # forces replacement", line
    other = {**desired, "hostname": "other"}
    change = diff_resource("Container", "app", desired, other, in_place=Container.IN_PLACE)
    assert change is not None and change.operation == "replace" and change.forces == ("hostname",)


@pytest.mark.parametrize(
    ("fields", "rule"),
    [
        ({"devices": ["/dev"]}, "host-device"),
        ({"devices": ["/dev/sda"]}, "host-device"),
        ({"devices": [{"hostPath": "/dev/nvme0n1p2"}]}, "host-device"),
        ({"devices": ["/dev/disk/by-id/usb-stick:/dev/x"]}, "host-device"),
        ({"devices": ["/dev/mem"]}, "host-device"),
        ({"devices": ["/run/docker.sock"]}, "host-device"),
        ({"deviceCgroupRules": ["a *:* rwm"]}, "host-device"),
        ({"deviceCgroupRules": ["b 8:* rw"]}, "host-device"),
        ({"securityOpt": ["seccomp=unconfined"]}, "security-opt"),
        ({"securityOpt": ["apparmor:unconfined"]}, "security-opt"),
        ({"securityOpt": ["label=disable"]}, "security-opt"),
        ({"ipcMode": "host"}, "host-namespace"),
        ({"utsMode": "host"}, "host-namespace"),
        ({"usernsMode": "host"}, "host-namespace"),
        ({"cgroup": "host"}, "host-namespace"),
    ],
)
def test_the_guard_rails_refuse_what_gives_the_host_away(fields: dict[str, Any], rule: str) -> None:
    assert [f.rule for f in container_findings(_spec(**fields))] == [rule]


def test_everyday_homelab_devices_and_options_pass_the_guard_rails() -> None:
    spec = _spec(
        devices=[
            "/dev/dri",
            "/dev/ttyUSB0:/dev/zigbee",
            "/dev/ttyACM0",
            "/dev/net/tun",
            "/dev/snd",
        ],
        deviceCgroupRules=["c 188:* rmw", "c 189:* rmw"],
        securityOpt=["no-new-privileges:true", "apparmor=docker-default"],
        ipcMode="shareable",
        cgroup="private",
    )
    assert container_findings(spec) == []


def test_a_host_disk_behind_a_symlink_is_a_located_refusal_in_the_plan(
    git_repo: GitRepo, tmp_path: Path
) -> None:
    link = tmp_path / "zigbee-stick"
    os.symlink("/dev/sda", link)  # looks like a stick, is the host's first disk
    git_repo.write("manifests/node.yaml", node("edge", "unix:///run/docker.sock"))
    devices = {"devices": ["/dev/dri", f"{link}:/dev/ttyUSB0"], "securityOpt": ["label:disable"]}
    git_repo.write("manifests/app.yaml", container("app", node="edge", **devices))
    errors, changes = plan_errors(git_repo)
    text = (git_repo.path / "manifests/app.yaml").read_text().splitlines()
    assert len(errors) == 2, errors
    for error, field, marker in zip(
        sorted(errors),
        ["spec.devices[1].hostPath", "spec.securityOpt[0]"],
        [str(link), "label:disable"],
        strict=True,
    ):
        where, _, message = error.partition(f": {field}: ")
        path, line, _column = where.rsplit(":", 2)
        assert path == "manifests/app.yaml" and marker in text[int(line) - 1], error
        assert "allowDangerous: [app]" in message
    assert f"{link} (that is /dev/sda): /dev/sda: a block disk of the host" in sorted(errors)[0]
    assert ("Container", "app") not in changes

    errors, changes = plan_errors(git_repo, allow=["app"])
    assert errors == [] and ("Container", "app") in changes
