"""Guard rails at plan time: every bypass the adversarial run found is now refused.

Each case commits a real manifest to a real git repository and plans it with
the real planner; the refusal must be a located error naming the rule, and
`allowDangerous` in homelab.yaml must let the same manifest through.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from reconciler.planning import compute_plan
from reconciler.sources.git import GitSource
from tests.conftest import GitRepo

NODE_SOCKET = "/srv/engine/docker.sock"  # a node whose engine listens somewhere unusual


def container(name: str, **spec: Any) -> str:
    body = {"image": "local/busybox:1", "command": ["sleep", "60"], "networkMode": "host", **spec}
    doc = {
        "apiVersion": "homelab.reconciler/v1alpha1",
        "kind": "Container",
        "metadata": {"name": name},
        "spec": body,
    }
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n"


def node(name: str, host: str) -> str:
    doc = {
        "apiVersion": "homelab.reconciler/v1alpha1",
        "kind": "Node",
        "metadata": {"name": name},
        "spec": {"dockerHost": host},
    }
    return orjson.dumps(doc).decode() + "\n"


def bind(source: str) -> dict[str, Any]:
    return {"volumes": [{"source": source, "target": "/mnt/x"}]}


BYPASSES = [
    ("node-socket", bind(NODE_SOCKET), "docker-socket", "spec.volumes[0].source"),
    ("double-slash", bind("//var/run/docker.sock"), "docker-socket", "spec.volumes[0].source"),
    ("dot-segment", bind("/var/run/./docker.sock"), "docker-socket", "spec.volumes[0].source"),
    ("dot-dot", bind("/var/lib/../run/docker.sock"), "docker-socket", "spec.volumes[0].source"),
    ("run-folder", bind("/var/run"), "docker-socket", "spec.volumes[0].source"),
    (
        "containerd",
        bind("/run/containerd/containerd.sock"),
        "docker-socket",
        "spec.volumes[0].source",
    ),
    (
        "podman",
        bind("/run/user/1000/podman/podman.sock"),
        "docker-socket",
        "spec.volumes[0].source",
    ),
    ("host-root", bind("/"), "host-root", "spec.volumes[0].source"),
    ("host-root-slashes", bind("///"), "host-root", "spec.volumes[0].source"),
    ("etc", bind("/etc/"), "host-root", "spec.volumes[0].source"),
    ("shadow", bind("/etc/shadow"), "host-root", "spec.volumes[0].source"),
    ("proc", bind("/proc/sysrq-trigger"), "host-root", "spec.volumes[0].source"),
    ("docker-data", bind("/var/lib/docker/volumes"), "host-root", "spec.volumes[0].source"),
    ("sys-module", {"capAdd": ["SYS_MODULE"]}, "dangerous-capability", "spec.capAdd[0]"),
    ("sys-ptrace", {"capAdd": ["sys_ptrace"]}, "dangerous-capability", "spec.capAdd[0]"),
    ("dac", {"capAdd": ["CAP_DAC_READ_SEARCH"]}, "dangerous-capability", "spec.capAdd[0]"),
    ("rawio", {"capAdd": ["cap_sys_rawio"]}, "dangerous-capability", "spec.capAdd[0]"),
    ("all", {"capAdd": ["all"]}, "dangerous-capability", "spec.capAdd[0]"),
    ("privileged", {"privileged": True}, "privileged", "spec.privileged"),
    ("pid", {"pidMode": "host"}, "host-namespace", "spec.pidMode"),
]


def plan_errors(repo: GitRepo, allow: list[str] | None = None) -> tuple[list[str], set[Any]]:
    if allow is not None:
        config = {"apiVersion": "homelab.reconciler/v1alpha1", "kind": "RepositoryConfig"}
        repo.write("homelab.yaml", orjson.dumps({**config, "allowDangerous": allow}).decode())
    repo.commit()
    result = compute_plan(GitSource(repo.path), None)
    return [str(e) for e in result.errors], {c.ref for c in result.plan.changes}


@pytest.mark.parametrize(("name", "spec", "rule", "field"), BYPASSES, ids=[b[0] for b in BYPASSES])
def test_a_bypass_is_refused_with_a_located_error_naming_the_rule(
    git_repo: GitRepo, name: str, spec: dict[str, Any], rule: str, field: str
) -> None:
    git_repo.write("manifests/node.yaml", node("edge", f"unix://{NODE_SOCKET}"))
    git_repo.write("manifests/app.yaml", container("app", node="edge", **spec))
    git_repo.write("manifests/ok.yaml", container("ok", node="edge"))
    errors, changes = plan_errors(git_repo)
    assert all("app.yaml" in e for e in errors), errors  # the rest of the repository is fine
    [error] = [e for e in errors if f"[{rule}]" in e]
    text = (git_repo.path / "manifests/app.yaml").read_text().splitlines()
    where, _, message = error.partition(f": {field}: ")
    path, line, column = where.rsplit(":", 2)
    row = text[int(line) - 1]
    assert path == "manifests/app.yaml" and message, error
    [(key, value)] = spec.items()
    marker = value[0]["source"] if key == "volumes" else value[0] if key == "capAdd" else key
    at = row[int(column) - 1 :]
    assert at.startswith(f'"{marker}"') if key in ("volumes", "capAdd") else marker in row, error
    assert f"[{rule}]" in message and "allowDangerous: [app]" in message, error
    assert ("Container", "app") not in changes and ("Container", "ok") in changes

    errors, changes = plan_errors(git_repo, allow=["app"])
    assert errors == [] and ("Container", "app") in changes


def test_a_symlink_to_the_node_socket_is_refused(git_repo: GitRepo, tmp_path: Path) -> None:
    socket_dir = tmp_path / "engine"
    socket_dir.mkdir()
    (socket_dir / "docker.sock").write_text("")  # the rule is by path; a plain file will do
    link = tmp_path / "innocent"
    os.symlink(socket_dir / "docker.sock", link)
    git_repo.write("manifests/node.yaml", node("edge", f"unix://{socket_dir}/docker.sock"))
    git_repo.write("manifests/app.yaml", container("app", node="edge", **bind(str(link))))
    errors, changes = plan_errors(git_repo)
    [error] = errors
    assert "[docker-socket]" in error and str(socket_dir / "docker.sock") in error, error
    assert ("Container", "app") not in changes


def test_a_hard_link_to_the_node_socket_is_refused(git_repo: GitRepo, tmp_path: Path) -> None:
    (tmp_path / "engine").mkdir()
    real = tmp_path / "engine" / "api"
    real.write_text("")
    os.link(real, tmp_path / "other-name")
    git_repo.write("manifests/node.yaml", node("edge", f"unix://{real}"))
    volumes = bind(str(tmp_path / "other-name"))
    git_repo.write("manifests/app.yaml", container("app", node="edge", **volumes))
    errors, _changes = plan_errors(git_repo)
    [error] = errors
    assert "[docker-socket]" in error, error


def test_ordinary_binds_capabilities_and_host_networking_pass(git_repo: GitRepo) -> None:
    spec = {
        "volumes": [
            {"source": "/srv/homelab/data", "target": "/data"},
            {"source": "/etc/localtime", "target": "/etc/localtime", "readOnly": True},
            {"source": "named-volume", "target": "/cache"},
        ],
        "capAdd": ["NET_BIND_SERVICE", "CHOWN"],
        "networkMode": "host",
    }
    git_repo.write("manifests/app.yaml", container("app", **spec))
    errors, changes = plan_errors(git_repo)
    assert errors == [] and ("Container", "app") in changes
