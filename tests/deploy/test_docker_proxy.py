"""The read-only Docker API proxy, by real HTTP requests in front of the real engine.

What passes (GET/HEAD on the allow-list, streamed as the engine answers) and
what does not (any other method, any other path, a request body, an
Upgrade), and that docker-py, the collector's client, works through it.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import stat
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import orjson
import pytest

from reconciler.errors import ConfigError
from reconciler.observer.docker_proxy import DockerProxyService, bind_socket, check
from tests.conftest import BUSYBOX


class _Unix(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        super().__init__("docker", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(str(self.path))


def _request(
    sock: Path, method: str, path: str, body: bytes | None = None, **headers: str
) -> tuple[int, bytes]:
    conn = _Unix(sock)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.fixture
def proxy(tmp_path: Path, docker_host: str) -> Iterator[Path]:
    """`DockerProxyService.run` in a thread in front of the test engine; its socket."""
    listen = tmp_path / "engine.sock"
    service = DockerProxyService(listen, docker_host)
    stop = threading.Event()
    thread = threading.Thread(target=service.run, args=(stop,), name="proxy-under-test")
    thread.start()
    deadline = time.monotonic() + 15
    while True:
        with contextlib.suppress(OSError):
            if _request(listen, "GET", "/_ping")[0] == 200:
                break
        assert time.monotonic() < deadline, "the proxy did not answer /_ping"
        time.sleep(0.05)
    yield listen
    stop.set()
    thread.join(timeout=15)
    assert not thread.is_alive()
    assert not listen.exists()  # removed on the way out


@pytest.fixture
def sleeper(docker_client: Any) -> Iterator[Any]:
    container = docker_client.containers.run(
        BUSYBOX,
        ["sleep", "300"],
        name=f"proxy-{uuid.uuid4().hex[:8]}",
        detach=True,
        network_mode="none",
    )
    yield container
    container.remove(force=True)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/_ping"),
        ("HEAD", "/_ping"),
        ("GET", "/version"),
        ("GET", "/v1.41/info"),
        ("GET", "/events"),
        ("GET", "/containers/json"),
        ("GET", "/v1.41/containers/3f2a9c1b0d4e/json"),
        ("GET", "/images/json"),
        ("GET", "/images/local/busybox:1/json"),
        ("GET", "/images/sha256:0123abcd/json"),
        ("GET", "/networks"),
        ("GET", "/networks/host"),
        ("GET", "/volumes"),
        ("GET", "/v1.41/volumes/data"),
    ],
)
def test_reads_of_state_pass(method: str, path: str) -> None:
    assert check(method, path, [(b"accept", b"*/*")]) is None


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/containers/create"),
        ("POST", "/v1.41/containers/x/start"),
        ("DELETE", "/containers/x"),
        ("PUT", "/containers/x/archive"),
        ("POST", "/containers/x/update"),
        ("POST", "/images/create"),
        ("POST", "/exec/x/start"),
        ("OPTIONS", "/containers/json"),
        # GETs that read more than state: logs, files, whole images, a hijacked stream
        ("GET", "/containers/x/logs"),
        ("GET", "/containers/x/archive"),
        ("GET", "/containers/x/export"),
        ("GET", "/containers/x/attach/ws"),
        ("GET", "/containers/x/stats"),
        ("GET", "/images/get"),
        ("GET", "/images/busybox/get"),
        ("GET", "/exec/x/json"),
        ("GET", "/secrets"),
        ("GET", "/swarm"),
        ("GET", "/containers/x/../../build"),
        ("GET", "//containers/json"),
        ("GET", "/containers/json/"),
        ("GET", "/v1/containers/json"),
    ],
)
def test_everything_else_is_forbidden(method: str, path: str) -> None:
    refused = check(method, path, [])
    assert refused is not None and refused[0] == 403


def test_a_request_body_is_refused() -> None:
    assert check("GET", "/containers/json", [(b"content-length", b"0")]) is None
    assert check("GET", "/containers/json", [(b"content-length", b"12")]) == (
        400,
        "the read-only proxy forwards no request body",
    )
    refused = check("GET", "/containers/json", [(b"transfer-encoding", b"chunked")])
    assert refused is not None and refused[0] == 400


@pytest.mark.docker
def test_get_containers_json_passes_with_the_engines_answer(proxy: Path, sleeper: Any) -> None:
    status, body = _request(proxy, "GET", "/containers/json?all=1")
    assert status == 200
    assert sleeper.id in [c["Id"] for c in orjson.loads(body)]
    status, body = _request(proxy, "GET", f"/containers/{sleeper.id[:12]}/json")
    assert status == 200 and orjson.loads(body)["State"]["Running"] is True
    assert _request(proxy, "HEAD", "/_ping") == (200, b"")
    status, body = _request(proxy, "GET", "/images/local/busybox:1/json")
    assert status == 200 and BUSYBOX in orjson.loads(body)["RepoTags"]


@pytest.mark.docker
def test_post_create_is_403_and_creates_nothing(proxy: Path, docker_client: Any) -> None:
    name = f"proxy-denied-{uuid.uuid4().hex[:8]}"
    body = orjson.dumps({"Image": BUSYBOX, "Cmd": ["true"]})
    status, answer = _request(
        proxy,
        "POST",
        f"/containers/create?name={name}",
        body,
        **{"Content-Type": "application/json"},
    )
    assert status == 403
    assert "read-only" in orjson.loads(answer)["message"]
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(name)


@pytest.mark.docker
def test_delete_and_state_changes_are_403_and_change_nothing(proxy: Path, sleeper: Any) -> None:
    assert _request(proxy, "DELETE", f"/containers/{sleeper.id}?force=1")[0] == 403
    assert _request(proxy, "POST", f"/v1.41/containers/{sleeper.id}/stop")[0] == 403
    assert _request(proxy, "GET", f"/containers/{sleeper.id}/export")[0] == 403
    assert _request(proxy, "GET", f"/containers/{sleeper.id}/archive?path=/etc")[0] == 403
    sleeper.reload()
    assert sleeper.status == "running"


@pytest.mark.docker
def test_no_body_and_no_upgrade_pass(proxy: Path) -> None:
    status, answer = _request(proxy, "GET", "/containers/json", b"{}")
    assert status == 400 and b"no request body" in answer
    status, answer = _request(proxy, "GET", "/containers/json", Connection="Upgrade", Upgrade="tcp")
    assert status == 200 and isinstance(orjson.loads(answer), list)  # a plain answer, not 101


@pytest.mark.docker
def test_events_stream_through_as_they_happen(proxy: Path, docker_client: Any) -> None:
    conn = _Unix(proxy, timeout=20)
    conn.request("GET", '/events?filters={"type":["container"]}')
    response = conn.getresponse()
    assert response.status == 200
    seen: list[dict[str, Any]] = []
    name = f"proxy-events-{uuid.uuid4().hex[:8]}"

    def read() -> None:
        with contextlib.suppress(OSError, ValueError, http.client.HTTPException):
            while not any(
                e.get("Actor", {}).get("Attributes", {}).get("name") == name for e in seen
            ):
                line = response.readline()  # the engine ends every event with a newline
                if not line:
                    return
                seen.append(orjson.loads(line))

    reader = threading.Thread(target=read)
    reader.start()
    time.sleep(0.5)  # the stream is open and idle: nothing has ended it
    assert reader.is_alive()
    container = docker_client.containers.create(BUSYBOX, ["true"], name=name, network_mode="none")
    container.remove()
    reader.join(timeout=10)
    assert not reader.is_alive(), "the create event did not come through within 10 s"
    conn.close()  # the client goes away mid-stream; the proxy serves on
    ours = [e["Action"] for e in seen if e["Actor"]["Attributes"].get("name") == name]
    assert ours[:1] == ["create"]
    assert _request(proxy, "GET", "/_ping") == (200, b"OK")


@pytest.mark.docker
def test_docker_py_reads_through_it_and_cannot_write(proxy: Path, sleeper: Any) -> None:
    client = docker.DockerClient(base_url=f"unix://{proxy}", timeout=10)
    try:
        assert client.ping() is True
        assert client.info()["ServerVersion"]
        assert sleeper.id in [c.id for c in client.containers.list(all=True)]
        assert client.containers.get(sleeper.name).status == "running"
        assert client.images.get(BUSYBOX).tags
        with pytest.raises(docker.errors.APIError) as refused:
            client.containers.get(sleeper.name).stop(timeout=0)
        assert refused.value.status_code == 403
    finally:
        client.close()
    sleeper.reload()
    assert sleeper.status == "running"


def test_the_socket_is_private_and_a_stale_one_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "engine.sock"
    first = bind_socket(path)
    first.close()  # a socket file left by a proxy that died
    second = bind_socket(path)
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_ISSOCK(path.stat().st_mode)
    finally:
        second.close()
    other = tmp_path / "not-a-socket"
    other.write_text("keep me")
    with pytest.raises(ConfigError, match="not a socket"):
        bind_socket(other)
    assert other.read_text() == "keep me"
