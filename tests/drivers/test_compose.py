"""The compose driver with Debian's docker-compose v1 against the real engine."""

from __future__ import annotations

import orjson
import pytest

from reconciler.atomic_files import read_json
from reconciler.drivers.base import ApplyContext, DriverSettings, NodeInfo
from reconciler.drivers.compose import ComposeDriver
from reconciler.errors import PermanentError
from tests.conftest import BUSYBOX
from tests.executor.lab import Lab

pytestmark = pytest.mark.docker  # every test here uses the real engine

COMPOSE = f"""\
version: "2.4"
services:
  app:
    image: {BUSYBOX}
    command: ["sleep", "3600"]
    network_mode: host
    environment:
      ROUND: "ROUND_VALUE"
"""


def stack_yaml(name: str, files: list[str]) -> str:
    doc = {
        "apiVersion": "homelab.reconciler/v1alpha1",
        "kind": "ComposeStack",
        "metadata": {"name": name},
        "spec": {"files": files},
    }
    return orjson.dumps(doc).decode() + "\n"


def project_containers(lab: Lab, project: str) -> list[object]:
    return list(
        lab.client.containers.list(
            all=True, filters={"label": f"com.docker.compose.project={project}"}
        )
    )


def test_a_stack_is_brought_up_updated_and_down(lab: Lab) -> None:
    name = lab.name("stack")
    lab.write(f"compose/{name}/compose.yaml", COMPOSE.replace("ROUND_VALUE", "1"))
    lab.write("manifests/stack.yaml", stack_yaml(name, [f"compose/{name}/compose.yaml"]))
    lab.commit()
    try:
        [create] = lab.propose()
        assert lab.run_now([create], compose_command=("docker-compose",)) == ["done"]
        [container] = project_containers(lab, name)
        assert container.status == "running"  # type: ignore[attr-defined]
        folder = lab.root.stacks / name
        assert (folder / f"compose/{name}/compose.yaml").read_text().count('ROUND: "1"') == 1
        assert read_json(folder / "applied.json")["spec"] == create.desired
        assert lab.plan().plan.empty

        lab.write(f"compose/{name}/compose.yaml", COMPOSE.replace("ROUND_VALUE", "2"))
        lab.commit()
        [update] = lab.propose()
        assert update.operation == "update"
        assert lab.run_now([update], compose_command=("docker-compose",)) == ["done"]
        [container] = project_containers(lab, name)
        assert "ROUND=2" in container.attrs["Config"]["Env"]  # type: ignore[attr-defined]

        lab.repo.remove("manifests/stack.yaml")
        lab.commit()
        [delete] = lab.propose()
        assert lab.run_now([delete], compose_command=("docker-compose",)) == ["done"]
        assert project_containers(lab, name) == []
        assert not (folder / "applied.json").exists()
    finally:
        for leftover in project_containers(lab, name):
            leftover.remove(force=True)  # type: ignore[attr-defined]


def test_a_broken_compose_file_fails_with_the_compose_message(lab: Lab) -> None:
    name = lab.name("broken")
    lab.write(f"compose/{name}.yaml", "version: '2.4'\nservices:\n  app:\n    imagee: x\n")
    lab.write("manifests/stack.yaml", stack_yaml(name, [f"compose/{name}.yaml"]))
    lab.commit()
    [action] = lab.propose()
    assert lab.run_now([action], compose_command=("docker-compose",)) == ["failed"]
    error = lab.action(action.id).outcome["error"]
    assert "docker-compose up failed" in error and "imagee" in error


def test_the_driver_refuses_a_stack_the_guard_rails_refuse_and_starts_nothing(lab: Lab) -> None:
    """The planner already refuses such a stack; the driver's own check is the last line."""
    name = lab.name("priv")
    body = (
        f'version: "2.4"\nservices:\n  app:\n    image: {BUSYBOX}\n'
        '    command: ["sleep", "60"]\n    network_mode: host\n    privileged: true\n'
    )
    lab.write(f"compose/{name}.yaml", body)
    lab.write("manifests/stack.yaml", stack_yaml(name, [f"compose/{name}.yaml"]))
    config = {"apiVersion": "homelab.reconciler/v1alpha1", "kind": "RepositoryConfig"}
    lab.write("homelab.yaml", orjson.dumps({**config, "allowDangerous": [name]}).decode())
    lab.commit()
    [create] = lab.propose(approve=False)  # planned while allowed
    ctx = ApplyContext(
        action=create,
        node=NodeInfo("local", lab.host),
        root=lab.root,
        repo_file=lambda path: body.encode(),
        secret_file=lambda _: None,
        settings=DriverSettings(stop_grace=1, compose_command=("docker-compose",)),
        allow_dangerous=False,
    )
    with pytest.raises(PermanentError, match=r"\[privileged\]") as refused:
        ComposeDriver().apply(ctx)
    assert f"allowDangerous: [{name}]" in str(refused.value)
    assert project_containers(lab, name) == []
    assert not (lab.root.stacks / name / f"compose/{name}.yaml").exists()  # nothing written
