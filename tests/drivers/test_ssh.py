"""A remote Node over `ssh://`: Debian's sshd on a loopback port reaching the test engine.

The fixture generates a host key and a client key in a temporary folder,
starts `sshd -D` on a free loopback port with `SetEnv DOCKER_HOST=<test
engine>` (so `docker system dial-stdio`, which the Docker SDK runs over the
SSH channel, reaches the private engine), and gives the test process a
temporary HOME whose `~/.ssh/config` names the key and whose `known_hosts`
pins the host key. The user's real ~/.ssh is never touched.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.executor.lab import Lab

pytestmark = pytest.mark.docker  # every test here uses the real engine

SSHD = "/usr/sbin/sshd"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def keygen(path: Path) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path.with_suffix(".pub").read_text().strip()


@pytest.fixture
def sshd(tmp_path: Path, docker_host: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Start sshd; yield the node URL `ssh://root@127.0.0.1:PORT`."""
    folder = tmp_path / "sshd"
    folder.mkdir()
    host_pub = keygen(folder / "host_key")
    client_pub = keygen(folder / "client_key")
    (folder / "authorized_keys").write_text(client_pub + "\n")
    port = free_port()
    config = folder / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host_key'}\n"
        f"AuthorizedKeysFile {folder / 'authorized_keys'}\nPidFile {folder / 'sshd.pid'}\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
        f"SetEnv DOCKER_HOST={docker_host}\n"
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    proc = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL
    )
    home = tmp_path / "home"
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir(parents=True)
    (ssh_dir / "config").write_text(
        f"Host 127.0.0.1\n  IdentityFile {folder / 'client_key'}\n  User root\n"
    )
    (ssh_dir / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub}\n")
    monkeypatch.setenv("HOME", str(home))
    try:
        deadline = time.monotonic() + 10
        while True:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "sshd did not listen"
                time.sleep(0.05)
        yield f"ssh://root@127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_container_on_an_ssh_node_is_created_through_the_docker_sdk(lab: Lab, sshd: str) -> None:
    lab.node(sshd, name="remote")
    name = lab.container("far", node="remote")
    lab.commit()
    [create] = lab.propose()
    assert lab.run_now([create]) == ["done"], lab.action(create.id).outcome
    [container] = lab.containers(name)
    assert container.labels["homelab.reconciler/node"] == "remote"
    assert container.status == "running"
    assert lab.plan().plan.empty

    lab.repo.remove(f"manifests/{name}.yaml")
    lab.commit()
    [delete] = lab.propose()
    assert lab.run_now([delete]) == ["done"]
    assert lab.containers(name) == []
