"""`homelab plan --refresh` with no service running: real repo, real files, real engine.

A homelab is applied by the real executor and its world folded by the real
fold (`WorldBuilder.rebuild`); then things are changed by hand and `homelab
plan --refresh` runs in a fresh process, as an operator would run it.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from reconciler.observer.world_builder import WorldBuilder
from tests.executor.lab import TOP, Lab, lab

__all__ = ["lab"]  # the fixture

# What the plan proposes for a container stopped by hand: its observed `state`
# is `stopped`, the manifest wants it running.
STOPPED_CONTAINER_OPERATION = "start"


def homelab(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    where = ["--repo", str(lab.repo.path), "--root", str(lab.root.path)]
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args, *where],
        capture_output=True,
        text=True,
        cwd=TOP,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(TOP), "NO_COLOR": "1"},
    )


def file_yaml(name: str, path: Path, content: str, mode: str = "0644") -> str:
    doc = {
        "apiVersion": "homelab.reconciler/v1alpha1",
        "kind": "File",
        "metadata": {"name": name},
        "spec": {"path": str(path), "content": content, "mode": mode},
    }
    return orjson.dumps(doc).decode() + "\n"


def applied(lab: Lab) -> None:
    """Apply every change with the real executor, then fold the log into the world."""
    actions = lab.propose()
    assert lab.run_now(actions) == ["done"] * len(actions)
    builder = WorldBuilder(lab.root)
    builder.lock()
    try:
        builder.rebuild()
    finally:
        builder.unlock()


def log_and_world(lab: Lab) -> dict[str, bytes]:
    """Every byte under events/ and world/, to show a refresh writes nothing."""
    out = {}
    for folder in (lab.root.events, lab.root.world):
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                out[str(path)] = path.read_bytes()
    return out


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # closed again: nothing listens there


@pytest.mark.docker
def test_refresh_sees_a_file_edited_and_a_container_stopped_by_hand(lab: Lab) -> None:
    web = lab.container("web")
    motd = lab.files / "motd"
    lab.write("manifests/motd.yaml", file_yaml("motd", motd, "hello\n"))
    lab.commit("web and motd")
    applied(lab)
    fresh = homelab(lab, "plan", "--refresh", "--detailed-exitcode")
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert "0 observation(s) changed" in fresh.stdout
    assert "No changes." in fresh.stdout

    motd.write_text("edited by hand\n")
    motd.chmod(0o600)
    lab.containers(web)[0].stop(timeout=1)
    before = log_and_world(lab)
    result = homelab(lab, "plan", "--refresh", "--detailed-exitcode")
    assert "Traceback" not in result.stderr
    assert result.returncode == 2, result.stdout + result.stderr
    out = result.stdout
    assert "Refreshed 1 of 1 node(s)" in out
    assert "  File/motd: spec mode, sha256 changed" in out
    # With an observed `state` the line also names the spec field; the health stays.
    [seen] = [line for line in out.splitlines() if line.startswith(f"  Container/{web}: ")]
    assert "health Healthy -> Stopped" in seen
    assert '  ~ File/motd\n      ~ mode: "0600" -> "0644"\n      ~ sha256: "sha256:' in out
    doc = orjson.loads(homelab(lab, "plan", "--refresh", "--json").stdout)
    changes = {(c["kind"], c["name"]): c for c in doc["changes"]}
    assert changes[("File", "motd")]["operation"] == "update"
    paths = {op["path"] for op in changes[("File", "motd")]["patch"]}
    assert paths == {"/mode", "/sha256"}
    want = "sha256:" + hashlib.sha256(b"hello\n").hexdigest()
    assert [
        op["value"] for op in changes[("File", "motd")]["patch"] if op["path"] == "/sha256"
    ] == [want]
    container_change = changes.get(("Container", web))
    operation = None if container_change is None else container_change["operation"]
    assert operation == STOPPED_CONTAINER_OPERATION
    [drift] = [d for d in doc["refresh"]["drift"] if d["name"] == web]
    assert drift["kind"] == "Container" and "health Healthy -> Stopped" in drift["what"]
    # A plan is read-only: no event appended, no world document touched.
    assert log_and_world(lab) == before
    # Without --refresh the world on disk still says nothing changed.
    stale = homelab(lab, "plan", "--detailed-exitcode")
    assert stale.returncode == 0, stale.stdout


@pytest.mark.docker
def test_unreachable_node_is_a_clear_line_and_its_resources_are_not_refreshed(
    lab: Lab,
) -> None:
    port = closed_port()
    lab.node(f"tcp://127.0.0.1:{port}", name="far")
    name = lab.container("away", node="far")
    lab.commit("a node that is down")
    result = homelab(lab, "plan", "--refresh")
    assert "Traceback" not in result.stderr + result.stdout
    assert result.returncode == 1, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: node far")]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: node far could not be read (")
    assert lines[0].endswith("); its resources are not refreshed")
    assert "Refreshed 1 of 2 node(s)" in result.stdout
    assert f"Note: Container/{name}: not refreshed (node far unreachable: " in result.stdout
    assert f"  + Container/{name}\n" in result.stdout  # still planned from what is known
    doc = orjson.loads(homelab(lab, "plan", "--refresh", "--json").stdout)
    nodes = {n["name"]: n for n in doc["refresh"]["nodes"]}
    assert nodes["far"]["ready"] is False and nodes["local"]["ready"] is True
    assert doc["refresh"]["notRefreshed"][0]["name"] == name
    # Nothing was ever applied from this root: a refresh does not even give it an id.
    assert not (lab.root.state / "instance_id").exists()
    assert not list(lab.root.events.glob("*/*.jsonl"))
