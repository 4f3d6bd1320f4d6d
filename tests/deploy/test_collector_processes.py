"""`homelab run docker-proxy` and `homelab run collector` as compose.yaml runs them, as processes.

The two real commands on a runtime root in front of the test engine: both
become healthy for `homelab health` (their containers' healthchecks), the
collector's events land in its own producer file, SIGTERM ends both with
status 0 and the proxy removes its socket. A proxy pointed at anything but a
unix socket refuses to start.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import orjson
import pytest

from reconciler.events.log import reserved_actor
from tests.cli.test_up import HOMELAB, eventually


def _health(root: Path, service: str) -> bool:
    out = subprocess.run(
        [HOMELAB, "health", service, "--root", str(root)], capture_output=True, timeout=30
    )
    return out.returncode == 0


def _collector_events(root: Path) -> list[dict[str, object]]:
    return [
        orjson.loads(line)
        for path in root.glob("events/*/collector.jsonl")
        for line in path.read_bytes().splitlines()
    ]


@pytest.mark.docker
def test_proxy_and_collector_run_healthy_and_stop_cleanly(tmp_path: Path, docker_host: str) -> None:
    root, listen = tmp_path / "root", tmp_path / "engine" / "docker.sock"
    listen.parent.mkdir(mode=0o700)
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    proxy = subprocess.Popen(
        [HOMELAB, "run", "docker-proxy", "--root", str(root), "--listen", str(listen),
         "--engine", docker_host],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    collector = subprocess.Popen(
        [HOMELAB, "run", "collector", "--root", str(root), "--resync", "2",
         "--local-engine", f"unix://{listen}"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        eventually(lambda: _health(root, "docker-proxy"), "docker-proxy healthy", 30)
        eventually(lambda: _health(root, "collector"), "collector healthy", 30)

        def node_ready() -> bool:
            return any(
                e["type"] == "node.status" and e["data"]["ready"]  # type: ignore[index]
                for e in _collector_events(root)
            )

        eventually(node_ready, "node.status ready from the producer `collector`", 30)
        assert any(e["type"] == "observed.listing" for e in _collector_events(root))

        def status_ready() -> bool:  # rewritten within a second of the change
            status = orjson.loads((root / "state" / "collector_status.json").read_bytes())
            return status["nodes"]["local"]["ready"] is True

        eventually(status_ready, "collector_status.json: node local ready", 10)
    finally:
        for proc in (collector, proxy):
            proc.send_signal(signal.SIGTERM)
        outputs = [proc.communicate(timeout=30)[0] for proc in (collector, proxy)]
    assert (collector.returncode, proxy.returncode) == (0, 0), outputs
    assert not listen.exists()
    assert "refused" not in outputs[1]  # the collector asked only for what it may read


def test_the_proxy_needs_a_unix_socket_engine(tmp_path: Path) -> None:
    out = subprocess.run(
        [HOMELAB, "run", "docker-proxy", "--root", str(tmp_path / "root"),
         "--listen", str(tmp_path / "p.sock"), "--engine", "tcp://127.0.0.1:2375"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert out.returncode != 0
    assert "reads a local engine's unix socket" in out.stderr + out.stdout


def test_the_new_service_names_are_not_operator_names() -> None:
    assert reserved_actor("collector") is not None
    assert reserved_actor("Docker-Proxy") is not None
