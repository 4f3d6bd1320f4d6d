"""The compose driver with Debian's docker-compose v1 against the real engine."""

from __future__ import annotations

import orjson
import pytest

from reconciler.atomic_files import read_json
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
