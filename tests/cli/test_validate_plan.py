"""`homelab validate` and `homelab plan` as a new user runs them: real processes, real git."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from reconciler.atomic_files import atomic_write_json
from reconciler.resources.normalize import spec_hash
from reconciler.runtime_root import RuntimeRoot
from reconciler.world import new_world_doc
from tests.conftest import GitRepo

TOP = Path(__file__).resolve().parents[2]


def homelab(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
    )


WEB = """\
apiVersion: homelab.reconciler/v1alpha1
kind: Container
metadata:
  name: web
spec:
  image: local/busybox:1
  command: [httpd, -f, -p, "18080"]
  networkMode: host
"""


def write_world(root: RuntimeRoot, kind: str, name: str, spec: dict[str, object]) -> None:
    doc = new_world_doc(kind, name)
    doc["status"].update(exists=True, managed=True, observed=spec, basis=spec_hash(spec))
    atomic_write_json(root.world / kind / f"{name}.json", doc)


def test_bundled_example_validates_and_plans(git_repo: GitRepo, tmp_path: Path) -> None:
    shutil.copytree(TOP / "manifests", git_repo.path / "manifests")
    shutil.copytree(TOP / "compose", git_repo.path / "compose")
    git_repo.commit("example")
    ok = homelab("validate", "--repo", str(git_repo.path), "--root", str(tmp_path / "r"))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("OK: 5 resource(s) valid at commit")
    plan = homelab("plan", "--repo", str(git_repo.path), "--root", str(tmp_path / "r"))
    assert plan.returncode == 0, plan.stderr
    assert plan.stdout.strip().endswith(
        "Plan: 4 to create, 0 to update, 0 to replace, 0 to delete."
    )
    for ref in ("Container/web", "Container/worker", "File/index-page", "ComposeStack/whoami"):
        assert f"  + {ref}\n" in plan.stdout


def test_fresh_repo_plan_against_a_world(git_repo: GitRepo, runtime_root: RuntimeRoot) -> None:
    git_repo.write("manifests/web.yaml", WEB)
    git_repo.commit()
    args = ("--repo", str(git_repo.path), "--root", str(runtime_root.path))
    first = homelab("plan", "--detailed-exitcode", *args)
    assert first.returncode == 2, first.stderr
    assert "+ Container/web" in first.stdout
    doc = orjson.loads(homelab("plan", "--json", *args).stdout)
    desired = doc["changes"][0]["desired"]
    write_world(runtime_root, "Container", "web", desired)
    write_world(runtime_root, "Container", "old", desired)
    in_sync = homelab("plan", "--detailed-exitcode", *args)
    assert in_sync.returncode == 2
    assert "  - Container/old" in in_sync.stdout
    assert in_sync.stdout.strip().endswith("0 to replace, 1 to delete.")
    write_world(runtime_root, "Container", "old", {})
    (runtime_root.world / "Container" / "old.json").unlink()
    assert homelab("plan", "--detailed-exitcode", *args).returncode == 0
    git_repo.write("manifests/web.yaml", WEB.replace("busybox:1", "busybox:2"))
    git_repo.commit("bump")
    replace = homelab("plan", *args)
    assert "-/+ Container/web" in replace.stdout
    assert '~ image: "local/busybox:1" -> "local/busybox:2"  # forces replacement' in replace.stdout
    git_repo.write("manifests/web.yaml", WEB + "  restartPolicy: always\n")
    git_repo.commit("restart policy")
    update = homelab("plan", *args)
    assert "  ~ Container/web" in update.stdout
    assert '~ restartPolicy: "unless-stopped" -> "always"' in update.stdout


def test_validate_lists_every_error_without_traceback(git_repo: GitRepo, tmp_path: Path) -> None:
    git_repo.write("manifests/web.yaml", WEB)
    git_repo.write("manifests/bad.yaml", WEB.replace("name: web", "name: Bad") + "  colour: x\n")
    git_repo.write("manifests/syntax.yml", "kind: [\n")
    git_repo.commit()
    out = homelab("validate", "--repo", str(git_repo.path), "--root", str(tmp_path / "r"))
    assert out.returncode == 1
    lines = out.stderr.splitlines()
    assert lines[0].startswith("manifests/bad.yaml:4:9: metadata.name: 'Bad' is not a DNS-1123")
    assert lines[1] == "manifests/bad.yaml:9:3: spec.colour: Extra inputs are not permitted"
    assert lines[2].startswith("manifests/syntax.yml:2:1: YAML syntax error")
    assert "Traceback" not in out.stderr
    plan = homelab(
        "plan", "--detailed-exitcode", "--repo", str(git_repo.path), "--root", str(tmp_path / "r")
    )
    assert plan.returncode == 1
    assert "+ Container/web" in plan.stdout  # valid resources still plan


def test_uncommitted_edits_are_ignored_and_mentioned(git_repo: GitRepo, tmp_path: Path) -> None:
    git_repo.write("manifests/web.yaml", WEB)
    git_repo.commit()
    git_repo.write("manifests/web.yaml", "broken: [")
    out = homelab("validate", "--repo", str(git_repo.path), "--root", str(tmp_path / "r"))
    assert out.returncode == 0
    assert "1 uncommitted change(s) under manifests/ are ignored" in out.stderr


def test_ref_and_path_flags_and_env_defaults(git_repo: GitRepo, tmp_path: Path) -> None:
    git_repo.write("infra/web.yaml", WEB)
    first = git_repo.commit()
    git_repo.write("infra/web.yaml", WEB.replace("name: web", "name: web2"))
    git_repo.commit()
    out = homelab(
        "plan", "--path", "infra", "--ref", first, "--root", str(tmp_path / "r"), cwd=git_repo.path
    )
    assert out.returncode == 0, out.stderr
    assert "+ Container/web\n" in out.stdout


def test_bad_repository_is_one_clear_error(tmp_path: Path) -> None:
    out = homelab("plan", "--repo", str(tmp_path), "--root", str(tmp_path / "r"))
    assert out.returncode == 1
    assert out.stderr.startswith("error: ")
    assert "is not a git repository with a commit yet" in out.stderr
    assert "Traceback" not in out.stderr
    debug = homelab("--debug", "plan", "--repo", str(tmp_path), "--root", str(tmp_path / "r"))
    assert "Traceback" in debug.stderr


def test_version() -> None:
    out = homelab("--version")
    assert out.returncode == 0
    assert out.stdout.startswith("homelab, version ")


def _commands() -> list[list[str]]:
    import click

    from reconciler.cli.main import cli

    found: list[list[str]] = []
    ctx = click.Context(cli)

    def walk(group: click.Command, prefix: list[str]) -> None:
        if not isinstance(group, click.Group):
            return
        for name in group.list_commands(ctx):
            cmd = group.get_command(ctx, name)
            assert cmd is not None, name
            found.append([*prefix, name])
            walk(cmd, [*prefix, name])

    walk(cli, [])
    return found


@pytest.mark.parametrize("command", _commands(), ids=lambda c: " ".join(c))
def test_every_command_has_help_with_an_example(command: list[str]) -> None:
    out = homelab(*command, "--help")
    assert out.returncode == 0, out.stderr
    assert "Example" in out.stdout
