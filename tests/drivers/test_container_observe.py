"""The observed Container spec, mapped from real `docker inspect` output.

A container the driver creates from a spec maps back to exactly that spec
(a property test over generated specs, and an image that sets every
default the manifest leaves out); a container made or changed by hand
maps to what it really is; secret values never appear.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.drivers.container_observe import (
    container_runtime,
    label_spec,
    observed_container_spec,
    record_matches,
    secret_files,
    secret_fingerprints,
)
from reconciler.drivers.docker import DockerDriver
from reconciler.resources.normalize import fingerprint, spec_hash
from reconciler.runtime_root import RuntimeRoot
from tests.conftest import BUSYBOX
from tests.drivers.observe_kit import (
    DEFAULTS_IMAGE,
    apply_context,
    apply_spec,
    build_defaults_image,
    desired_spec,
    inspect,
    observe,
)

pytestmark = pytest.mark.docker  # every test here inspects real containers

_ENGINE_KEYS = sorted(
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


class _Env:
    """A runtime root, a driver and a name prefix; containers removed at the end."""

    def __init__(self, tmp: Path, host: str, client: Any) -> None:
        self.root = RuntimeRoot(tmp / "root").ensure()
        self.host, self.client = host, client
        self.tmp = tmp
        self.driver = DockerDriver()
        self.prefix = "o" + uuid.uuid4().hex[:6]
        self.count = 0

    def name(self) -> str:
        self.count += 1
        return f"{self.prefix}-{self.count}"

    def remove(self, name: str) -> None:
        with contextlib.suppress(Exception):
            self.client.api.remove_container(f"homelab-{name}", force=True)

    def cleanup(self) -> None:
        for summary in self.client.api.containers(all=True):
            if any(n.startswith(f"/homelab-{self.prefix}") for n in summary["Names"]):
                self.client.api.remove_container(summary["Id"], force=True)
        self.driver.close()


@pytest.fixture(scope="module")
def env(
    tmp_path_factory: pytest.TempPathFactory, docker_host: str, docker_client: Any
) -> Iterator[_Env]:
    build_defaults_image(docker_client)
    the_env = _Env(tmp_path_factory.mktemp("observe"), docker_host, docker_client)
    yield the_env
    the_env.cleanup()


def _run(env: _Env, name: str, **kwargs: Any) -> dict[str, Any]:
    """A container made by hand (SDK defaults, no managed labels), inspected."""
    kwargs.setdefault("network_mode", "none")
    env.client.containers.create(BUSYBOX, name=f"homelab-{name}", **kwargs)
    attrs, _ = inspect(env.client, name)
    return attrs


def test_a_hand_made_container_maps_to_what_it_runs(env: _Env) -> None:
    name = env.name()
    second = 1_000_000_000
    attrs = _run(
        env,
        name,
        entrypoint=["sh", "-c"],
        command=["sleep 100"],
        environment={"A": "1", "EMPTY": ""},
        ports={"80/tcp": ("127.0.0.1", 18080), "53/udp": None},
        volumes={str(env.tmp): {"bind": "/data", "mode": "ro"}, "named": {"bind": "/v"}},
        labels={"x": "y"},
        user="1000",
        working_dir="/data",
        cap_add=["net_admin"],
        cap_drop=["CAP_CHOWN", "mknod"],
        healthcheck={"test": ["CMD", "true"], "interval": 2 * second, "retries": 2},
    )
    _, image = inspect(env.client, name)
    observed = observed_container_spec(attrs, image, None, "local")
    assert sorted(observed) == _ENGINE_KEYS
    assert observed == {
        "node": "local",
        "image": BUSYBOX,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c"],
        "args": ["sleep 100"],
        # PATH=/bin is the image's own ENV: left out, as a manifest leaves it out
        "env": [
            {"name": "A", "value": "1", "valueFrom": None},
            {"name": "EMPTY", "value": "", "valueFrom": None},
        ],
        "ports": [
            {"containerPort": 53, "hostPort": None, "protocol": "udp", "hostIP": None},
            {"containerPort": 80, "hostPort": 18080, "protocol": "tcp", "hostIP": "127.0.0.1"},
        ],
        "volumes": [
            {"source": str(env.tmp), "target": "/data", "readOnly": True},
            {"volume": "named", "target": "/v", "readOnly": False},
        ],
        "restartPolicy": "no",  # the engine's "" (no policy given)
        "labels": {"x": "y"},
        # the engine's defaults for what was not given: timeout 30 s, start period 0
        "healthcheck": {
            "test": ["CMD", "true"],
            "interval": 2,
            "timeout": 30,
            "retries": 2,
            "startPeriod": 0,
        },
        "networkMode": "none",
        "user": "1000",
        "workingDir": "/data",
        "privileged": False,
        "pidMode": None,
        "capAdd": ["NET_ADMIN"],
        "capDrop": ["CHOWN", "MKNOD"],
        "state": "stopped",  # created, never started
    }
    runtime = container_runtime(attrs, image)
    assert runtime["containerId"] == attrs["Id"] and runtime["imageId"].startswith("sha256:")
    assert runtime["startedAt"] is None and runtime["repoDigests"] == []


def test_state_network_and_restart_policy_follow_the_engine(env: _Env) -> None:
    name = env.name()
    _run(env, name, command=["sleep", "300"], network_mode="host")
    container = env.client.containers.get(f"homelab-{name}")
    assert observe(env.client, name)["networkMode"] == "host"
    container.start()
    assert observe(env.client, name)["state"] == "running"
    started = container_runtime(*inspect(env.client, name))["startedAt"]
    assert started and not started.startswith("0001")
    container.pause()
    assert observe(env.client, name)["state"] == "paused"
    container.unpause()
    container.update(restart_policy={"Name": "on-failure", "MaximumRetryCount": 2})
    assert observe(env.client, name)["restartPolicy"] == "on-failure"
    container.kill()
    assert observe(env.client, name)["state"] == "stopped"
    attrs, image = inspect(env.client, name)
    attrs["HostConfig"]["NetworkMode"] = "default"  # what an engine reports for no --network
    attrs["State"]["Status"] = "restarting"
    observed = observed_container_spec(attrs, image, None, "local")
    assert (observed["networkMode"], observed["state"]) == ("bridge", "running")


def test_a_secret_is_observed_by_fingerprint_with_or_without_its_newline(env: _Env) -> None:
    (env.root.secrets / "db-pass").write_bytes(b"hunter2\n")
    name = env.name()
    spec = {
        "image": BUSYBOX,
        "command": ["sleep", "300"],
        "networkMode": "none",
        "state": "stopped",
        "env": [{"name": "DB_PASS", "valueFrom": {"secret": "db-pass"}}],
    }
    desired = desired_spec(env.root, name, spec)
    apply_spec(env.driver, env.root, env.host, name, desired)
    assert observe(env.client, name) == desired  # the container holds "hunter2"
    attrs, image = inspect(env.client, name)
    last, reason = label_spec(attrs["Config"]["Labels"])
    assert reason == "LabelRead" and last == desired
    assert "DB_PASS=hunter2" in attrs["Config"]["Env"]

    # the secret rotated in the file, the container still holds the old value
    rotated = copy.deepcopy(last)
    rotated["env"][0]["valueFrom"]["sha256"] = fingerprint(b"rotated\n")
    [var] = observed_container_spec(attrs, image, rotated, "local")["env"]
    assert var == {
        "name": "DB_PASS",
        "value": None,
        "valueFrom": {"secret": "db-pass", "sha256": fingerprint(b"hunter2")},
    }
    # no last-applied (a container made by hand): the value matches a known secret file
    (env.root.secrets / ".other.tmp").write_bytes(b"half-written")  # no secret
    (env.root.secrets / "other").write_bytes(b"x")
    known = secret_fingerprints(secret_files(env.root.secrets))
    assert sorted({name for name, _ in known.values()}) == ["db-pass", "other"]
    [var] = observed_container_spec(attrs, image, None, "local", known_secrets=known)["env"]
    assert var["valueFrom"] == {"secret": "db-pass", "sha256": fingerprint(b"hunter2\n")}
    assert var["value"] is None
    # a literal of last-applied stays literal even when a secret file holds the same text
    literal = {**last, "env": [{"name": "DB_PASS", "value": "hunter2", "valueFrom": None}]}
    [var] = observed_container_spec(attrs, image, literal, "local", known_secrets=known)["env"]
    assert var == {"name": "DB_PASS", "value": "hunter2", "valueFrom": None}
    for case in (rotated, None, last):
        shown = orjson.dumps(
            observed_container_spec(attrs, image, case, "local", known_secrets=known)
        )
        assert b"hunter2" not in shown


def test_image_defaults_left_out_of_the_manifest_are_no_drift(env: _Env) -> None:
    name = env.name()
    spec = {"image": DEFAULTS_IMAGE, "networkMode": "none", "restartPolicy": "no"}
    desired = desired_spec(env.root, name, spec)
    apply_spec(env.driver, env.root, env.host, name, desired)
    attrs, image = inspect(env.client, name)
    # the container does carry every default of the image...
    config = attrs["Config"]
    assert "GREETING=hello" in config["Env"] and config["Labels"]["org.example.team"] == "lab"
    assert (config["Entrypoint"], config["Cmd"]) == (["/bin/sleep"], ["3600"])
    assert (config["WorkingDir"], config["User"]) == ("/work", "1000:1000")
    assert config["Healthcheck"]["Test"] == ["CMD", "true"]
    assert attrs["State"]["Running"] is True
    # ...and observes as exactly the desired spec, which sets none of them
    assert observe(env.client, name) == desired
    # without last-applied (adoption of a container made by hand) the same holds
    assert observed_container_spec(attrs, image, None, "local") == desired

    # set in the manifest to the image's value: kept, because last-applied has them
    named = desired_spec(
        env.root,
        name,
        {
            **spec,
            "env": {"GREETING": "hello"},
            "labels": {"org.example.team": "lab"},
            "command": ["/bin/sleep"],
            "args": ["3600"],
            "workingDir": "/work",
            "user": "1000:1000",
            "healthcheck": {"test": ["CMD", "true"], "interval": 30, "timeout": 5, "retries": 2},
        },
    )
    # startPeriod 0 in the manifest: the engine fills the image's 2 s, which is no drift
    assert observed_container_spec(attrs, image, named, "local") == named
    # the image gone (nothing known to be inherited): everything the container holds shows
    orphan = observed_container_spec(attrs, None, None, "local")
    assert orphan["workingDir"] == "/work" and orphan["labels"]["org.example.tier"] == "base"


def test_the_adoption_record_must_name_the_container() -> None:
    record = {"containerId": "0123456789ab", "node": "local", "spec": {}}
    full = "0123456789ab" + "c" * 52
    assert record_matches(record, full, "local")
    assert not record_matches(record, full, "other")
    assert not record_matches(record, "f" * 64, "local")
    assert not record_matches({"containerId": "01"}, full, "local")  # too short to mean one
    assert not record_matches(None, full, "local")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


_LABEL_VALUE = st.from_regex(r"\A[a-z0-9]([a-z0-9._-]{0,8}[a-z0-9])?\Z")
_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=12)
_COMMANDS = {
    BUSYBOX: [
        {"command": ["sleep", "3600"]},
        {"args": ["sleep", "3600"]},
        {"command": ["sleep"], "args": ["3600"]},
        {"command": ["sh", "-c"], "args": ["sleep 3600"]},
    ],
    DEFAULTS_IMAGE: [
        {},
        {"args": ["3600"]},
        {"command": ["sleep"], "args": ["3600"]},
        {"command": ["/bin/sleep", "3600"]},
    ],
}


@st.composite
def container_specs(draw: st.DrawFn, volumes_root: str) -> tuple[dict[str, Any], bytes]:
    """A Container spec the engine can create (and, when running, run), and a secret."""
    image = draw(st.sampled_from(sorted(_COMMANDS)))
    spec: dict[str, Any] = {"image": image, **draw(st.sampled_from(_COMMANDS[image]))}
    spec["imagePullPolicy"] = draw(st.sampled_from(["IfNotPresent", "Never"]))
    state = draw(st.sampled_from(["stopped", "stopped", "running"]))
    spec["state"] = state
    network = draw(st.sampled_from(["bridge", "none", "host"]))
    spec["networkMode"] = network
    env = []
    for var in draw(st.lists(st.sampled_from(["A", "B_1", "GREETING", "PATH"]), unique=True)):
        if var == "PATH":
            value = draw(st.sampled_from(["/bin", "/bin:/usr/bin"]))
        elif var == "GREETING":
            value = draw(st.sampled_from(["hello", "bonjour"]))
        else:
            value = draw(_TEXT)
        env.append({"name": var, "value": value})
    if draw(st.booleans()):
        env.append({"name": "DB_PASS", "valueFrom": {"secret": "db-pass"}})
    spec["env"] = draw(st.permutations(env))
    if network == "bridge":
        ports = draw(
            st.lists(
                st.tuples(st.integers(1, 65535), st.sampled_from(["tcp", "udp"]), st.booleans()),
                max_size=2,
                unique_by=lambda p: (p[0], p[1]),
            )
        )
        spec["ports"] = [
            {
                "containerPort": number,
                "protocol": protocol,
                "hostIP": "127.0.0.1",
                "hostPort": _free_port() if fixed else None,
            }
            for number, protocol, fixed in ports
        ]
    targets = draw(st.lists(st.sampled_from(["/data", "/cfg", "/var/lib/x"]), unique=True))
    spec["volumes"] = [
        {"source": f"{volumes_root}/{i}", "target": t, "readOnly": draw(st.booleans())}
        for i, t in enumerate(targets)
    ]
    spec["restartPolicy"] = draw(st.sampled_from(["no", "always", "unless-stopped", "on-failure"]))
    spec["labels"] = draw(
        st.dictionaries(st.sampled_from(["tier", "app", "org.example.team"]), _LABEL_VALUE)
    )
    if draw(st.booleans()):
        spec["healthcheck"] = {
            "test": ["CMD", "true"],
            "interval": draw(st.integers(1, 2)),
            # generous: a probe on a loaded machine may take seconds, and unhealthy fails
            "timeout": draw(st.integers(5, 8)),
            "retries": draw(st.integers(2, 3)),
            "startPeriod": draw(st.integers(0, 1)),
        }
    spec["user"] = draw(st.sampled_from([None, "1000", "1000:1000", "0"]))
    spec["workingDir"] = draw(st.sampled_from([None, "/tmp", "/srv/app"]))
    caps = ["NET_ADMIN", "net_raw", "CAP_SYS_TIME"]
    spec["capAdd"] = draw(st.lists(st.sampled_from(caps), unique=True))
    spec["capDrop"] = draw(st.lists(st.sampled_from(["chown", "MKNOD", "CAP_KILL"]), unique=True))
    if state == "stopped":  # never run these here
        spec["privileged"] = draw(st.booleans())
        spec["pidMode"] = draw(st.sampled_from([None, "host"]))
    secret = draw(st.sampled_from([b"s3cret-value", b"s3cret-value\n", b"pa ss=word\n"]))
    return spec, secret


@given(data=st.data())
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_a_container_created_from_a_spec_observes_as_that_spec(
    env: _Env, data: st.DataObject
) -> None:
    volumes = env.tmp / "volumes"
    spec, secret = data.draw(container_specs(str(volumes)))
    for i in range(3):
        (volumes / str(i)).mkdir(parents=True, exist_ok=True)
    (env.root.secrets / "db-pass").write_bytes(secret)
    name = env.name()
    try:
        desired = desired_spec(env.root, name, spec)
        apply_spec(env.driver, env.root, env.host, name, desired)
        observed = observe(env.client, name)
        assert observed == desired
        assert secret.strip() not in orjson.dumps(observed)
    finally:
        env.remove(name)


def test_the_stale_plan_check_hashes_the_observed_spec(env: _Env) -> None:
    """A plan made against a drifted container holds until the container moves again."""
    name = env.name()
    spec = {"image": BUSYBOX, "command": ["sleep", "300"], "networkMode": "none"}
    desired = desired_spec(env.root, name, spec)
    apply_spec(env.driver, env.root, env.host, name, desired)
    container = env.client.containers.get(f"homelab-{name}")
    container.update(restart_policy={"Name": "no"})  # drift made by hand
    drifted = observe(env.client, name)
    assert drifted["restartPolicy"] == "no"
    ctx = apply_context(env.root, env.host, name, desired)
    plan = msgspec.structs.replace(
        ctx.action, id="b" * 20, operation="update", basis=spec_hash(drifted)
    )
    ctx = dataclasses.replace(ctx, action=plan)
    assert env.driver.check(ctx) is None  # the world the plan saw
    container.pause()  # moved since the plan was made
    assert env.driver.check(ctx) == f"container homelab-{name} changed since the plan was made"
    container.unpause()
