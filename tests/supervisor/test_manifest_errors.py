"""A manifest YAML cannot read: its resources turn Invalid, their actions say where.

A committed YAML syntax error used to drop the file's resources from the
desired state: they showed "Unknown" and their pending actions were
superseded as "no change needed any more". Real git, real root, supervisor
passes in-process, and `homelab plan` as a subprocess.
"""

from __future__ import annotations

import subprocess
from typing import Any

from tests.supervisor.conftest import HOMELAB

BROKEN = """\
apiVersion: homelab.reconciler/v1alpha1
kind: Container
metadata:
  name: web
spec:
  image: local/busybox:2
  command: ["sleep", "3600"
  networkMode: host
"""


def _superseded(lab: Any) -> list[tuple[str, str | None]]:
    return [(a.name, a.moves[-1].reason) for a in lab.actions("superseded")]


def test_a_syntax_error_makes_the_files_resources_invalid_at_file_line(lab: Any) -> None:
    lab.container("web")
    lab.container("db")
    lab.commit("two containers")
    lab.reconcile()
    assert {a.name for a in lab.actions("pending")} == {"web", "db"}
    lab.repo.write("manifests/web.yaml", BROKEN)
    commit = lab.commit("a typo: an unclosed list")
    status = lab.reconcile()

    web = status["resources"]["Container/web"]
    assert web["status"] == "Invalid"
    assert web["source"].startswith("manifests/web.yaml:8:")
    assert any("YAML syntax error" in e and "manifests/web.yaml:8:" in e for e in web["errors"])
    assert _superseded(lab) == [("web", "manifest invalid at manifests/web.yaml:8")]
    assert [a.name for a in lab.actions("pending")] == ["db"]  # the other file is untouched
    [error] = status["manifestErrors"]
    assert (error["path"], error["line"]) == ("manifests/web.yaml", 8)
    assert error["message"].startswith("YAML syntax error")
    assert status["commit"] == commit
    conditions = [e["data"] for e in lab.events("resource.condition") if e["ref"]["name"] == "web"]
    assert conditions[-1]["type"] == "InvalidManifest"
    assert conditions[-1]["status"] == "True"


def test_fixing_the_file_proposes_again_and_clears_the_condition(lab: Any) -> None:
    lab.container("web")
    lab.commit()
    lab.reconcile()
    lab.repo.write("manifests/web.yaml", BROKEN)
    lab.commit("broken")
    lab.reconcile()
    assert lab.actions("pending") == []
    lab.container("web", "local/busybox:2")
    lab.commit("fixed")
    status = lab.reconcile()
    assert status["resources"]["Container/web"]["status"] == "Pending"
    assert status["manifestErrors"] == []
    assert lab.only("pending").desired["image"] == "local/busybox:2"
    last = [e["data"] for e in lab.events("resource.condition") if e["ref"]["name"] == "web"][-1]
    assert (last["type"], last["status"]) == ("InvalidManifest", "False")


def test_a_resource_in_sync_keeps_its_world_and_is_never_deleted(lab: Any) -> None:
    lab.container("web")
    lab.commit()
    lab.observe("web", lab.desired("web"))
    lab.observer_caught_up()
    assert lab.reconcile()["resources"]["Container/web"]["status"] == "InSync"
    lab.repo.write("manifests/web.yaml", BROKEN)
    lab.commit("broken")
    status = lab.reconcile()
    assert status["resources"]["Container/web"]["status"] == "Invalid"
    assert lab.actions("pending") == []  # no delete of what the broken file defined


def test_homelab_plan_reports_the_same_invalid_resource(lab: Any) -> None:
    lab.container("web")
    lab.repo.write("manifests/web.yaml", BROKEN)
    lab.container("db")
    lab.commit()
    proc = subprocess.run(
        [HOMELAB, "plan", "--repo", str(lab.repo.path), "--root", str(lab.root.path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "manifests/web.yaml:8:" in proc.stderr
    assert "Container/web: manifest invalid at manifests/web.yaml:8" in proc.stdout
    assert "+ Container/db" in proc.stdout
    assert "Container/web" not in proc.stdout.replace(
        "Container/web: manifest invalid at manifests/web.yaml:8", ""
    )
