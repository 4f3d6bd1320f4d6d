"""The Docker driver against the real engine: secrets, health, guard rails, idempotence."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from reconciler.drivers.docker import DockerDriver
from reconciler.errors import PermanentError
from reconciler.resources.normalize import fingerprint
from tests.conftest import BUSYBOX
from tests.executor.lab import Lab

pytestmark = pytest.mark.docker  # every test here uses the real engine


def test_env_from_a_secret_reaches_only_the_container(lab: Lab) -> None:
    (lab.root.secrets / "db-pass").write_bytes(b"hunter2-secret\n")
    env = [{"name": "DB_PASS", "valueFrom": {"secret": "db-pass"}}, {"name": "A", "value": "1"}]
    name = lab.container("app", env=env)
    lab.commit()
    [create] = lab.propose()
    assert lab.run_now([create]) == ["done"]
    [container] = lab.containers(name)
    assert "DB_PASS=hunter2-secret" in container.attrs["Config"]["Env"]
    label = orjson.loads(container.labels["homelab.reconciler/spec"])
    assert label == create.desired
    secret_env = next(e for e in label["env"] if e["name"] == "DB_PASS")
    assert secret_env["valueFrom"]["sha256"] == fingerprint(b"hunter2-secret\n")
    shown = b"".join(p.read_bytes() for p in lab.root.path.rglob("*.json*"))
    assert b"hunter2" not in shown and b"hunter2" not in orjson.dumps(container.labels)

    (lab.root.secrets / "db-pass").write_bytes(b"rotated-secret\n")  # drift
    [replace] = lab.propose()
    assert replace.operation == "replace"
    assert lab.run_now([replace]) == ["done"]
    [container] = lab.containers(name)
    assert "DB_PASS=rotated-secret" in container.attrs["Config"]["Env"]


def test_a_healthcheck_is_waited_for_and_a_second_apply_changes_nothing(lab: Lab) -> None:
    check = {"test": ["CMD", "true"], "interval": 1, "timeout": 1, "retries": 2}
    name = lab.container("ok", healthcheck=check)
    lab.commit()
    [create] = lab.propose()
    assert lab.run_now([create]) == ["done"]
    outcome = lab.action(create.id).outcome
    assert outcome["health"] == "Healthy" and outcome["changed"] is True
    [container] = lab.containers(name)
    assert container.attrs["State"]["Health"]["Status"] == "healthy"
    driver = DockerDriver()  # the same action applied again, as after a crash: a no-op
    try:
        result = driver.apply(lab.apply_context(name, create.desired, create.id))
    finally:
        driver.close()
    assert result.changed is False and "already at the desired spec" in result.output
    assert [c.id for c in lab.containers(name)] == [container.id]


@pytest.mark.parametrize(
    ("extra", "finding"),
    [
        ({"privileged": True}, r"\[privileged\] privileged mode"),
        ({"pidMode": "host"}, r"\[host-namespace\] the host's PID namespace"),
        ({"capAdd": ["SYS_ADMIN"]}, r"\[dangerous-capability\] capability SYS_ADMIN"),
        (
            {"volumes": [{"source": "/var/run/docker.sock", "target": "/s", "readOnly": False}]},
            r"\[docker-socket\] bind of /var/run/docker.sock",
        ),
    ],
)
def test_dangerous_options_are_refused_again_at_apply_time(
    lab: Lab, extra: dict[str, Any], finding: str
) -> None:
    desired = {
        "node": "local",
        "image": BUSYBOX,
        "imagePullPolicy": "Never",
        "command": ["sleep", "60"],
        "networkMode": "host",
        "env": [],
        "volumes": [],
        "capAdd": [],
        **extra,
    }
    name = lab.name("danger")
    driver = DockerDriver()
    try:
        with pytest.raises(PermanentError, match=finding):
            driver.apply(lab.apply_context(name, desired))
    finally:
        driver.close()
    assert lab.containers(name) == []
