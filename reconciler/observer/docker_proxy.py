"""The read-only Docker API proxy: how the collector service reads an engine it may not change.

`DockerProxyService(listen, engine).run(stop)` (`homelab run docker-proxy`)
serves the Docker Engine API on the unix socket `listen` (created mode
0600, a stale socket replaced) and forwards to the engine's socket
`engine` only what `check` lets through: GET or HEAD, no request body, on a
path of `ALLOWED` (optionally `/vX.Y`-prefixed): `_ping`, `version`,
`info`, `events`, the lists and inspects of containers, images, networks
and volumes. Everything else is answered 403 (a body: 400) with the
API's error shape, `{"message": ...}`, and logged; that includes GETs that
read more than state (`/containers/{id}/logs`, `/archive`, `/export`,
`/attach/ws`, `/images/get`). Only `Accept` and `User-Agent` are forwarded,
so no `Upgrade` can hijack the connection. Responses stream through as the
engine sends them (`/events`), and the engine connection is closed as soon
as the client goes away. Runs in the Compose stack as its own service, the
only one besides the executor with the socket; see docs/vps-control-plane.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import stat
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvicorn

from reconciler.errors import ConfigError

log = logging.getLogger("reconciler.docker_proxy")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]*"  # container, network, volume: id or name
_IMAGE = r"[A-Za-z0-9][A-Za-z0-9_.:@/-]*"  # an image reference may hold '/', ':' and '@'
ALLOWED = re.compile(
    r"^(?:/v[0-9]+\.[0-9]+)?/(?:"
    r"_ping|version|info|events"
    rf"|containers/json|containers/{_NAME}/json"
    rf"|images/json|images/{_IMAGE}/json"
    rf"|networks|networks/{_NAME}"
    rf"|volumes|volumes/{_NAME}"
    r")$"
)
METHODS = frozenset({"GET", "HEAD"})
FORWARDED_REQUEST_HEADERS = frozenset({b"accept", b"user-agent"})
HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"transfer-encoding", b"upgrade", b"proxy-connection", b"te"}
)
SOCKET_MODE = 0o600
MAX_CONNECTIONS = 64


def check(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> tuple[int, str] | None:
    """None when the request may pass, else (status, why). `path` is the decoded path."""
    if method not in METHODS:
        return 403, f"{method} is not allowed: this proxy is read-only (GET and HEAD only)"
    if ".." in path or "//" in path or not ALLOWED.match(path):
        return 403, f"{method} {path} is not on the read-only proxy's allow-list"
    for name, value in headers:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return 400, "the read-only proxy forwards no request body"
    return None


async def _deny(send: Send, status: int, message: str) -> None:
    body = orjson.dumps({"message": message})
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


class ProxyApp:
    """The ASGI application: check, then stream the engine's answer through."""

    def __init__(self, engine: str) -> None:
        self.engine = engine
        self.client: httpx.AsyncClient | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # No read timeout: /events stays open as long as the client wants it.
                self.client = httpx.AsyncClient(
                    transport=httpx.AsyncHTTPTransport(uds=self.engine),
                    base_url="http://docker",
                    timeout=httpx.Timeout(10.0, read=None),
                )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.client is not None:
                    await self.client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        method, path = scope["method"], scope["path"]
        refused = check(method, path, scope["headers"])
        if refused is not None:
            log.warning("docker-proxy: refused %s %s (%d)", method, path, refused[0])
            await _deny(send, *refused)
            return
        pump = asyncio.ensure_future(self._forward(scope, send))
        gone = asyncio.ensure_future(_until_disconnect(receive))
        try:
            await asyncio.wait({pump, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # The client went away (or we are stopping): end the engine request too.
            pump.cancel()
            gone.cancel()
            await asyncio.gather(pump, gone, return_exceptions=True)
        failure = None if pump.cancelled() else pump.exception()
        if failure is not None:
            raise failure

    async def _forward(self, scope: Scope, send: Send) -> None:
        assert self.client is not None
        target = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        headers = [(k, v) for k, v in scope["headers"] if k in FORWARDED_REQUEST_HEADERS]
        request = self.client.build_request(
            scope["method"], "http://docker" + target.decode("ascii"), headers=headers
        )
        try:
            response = await self.client.send(request, stream=True)
        except httpx.HTTPError as exc:
            log.warning("docker-proxy: engine at %s: %s", self.engine, exc)
            await _deny(send, 502, f"the engine does not answer: {type(exc).__name__}")
            return
        try:
            out = [(k, v) for k, v in response.headers.raw if k.lower() not in HOP_BY_HOP]
            await send(
                {"type": "http.response.start", "status": response.status_code, "headers": out}
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()


def bind_socket(path: Path) -> socket.socket:
    """A listening unix socket at `path`, mode 0600; a stale socket file is replaced."""
    try:
        if stat.S_ISSOCK(path.lstat().st_mode):
            path.unlink()
        else:
            raise ConfigError(f"{path} exists and is not a socket; not replacing it")
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))  # mode 0777 & ~umask: no one else may connect (needs write)
        os.chmod(path, SOCKET_MODE)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


class DockerProxyService:
    name = "docker-proxy"

    def __init__(self, listen: Path, engine: str) -> None:
        self.listen = listen
        self.engine = engine.removeprefix("unix://")
        self.server: uvicorn.Server | None = None

    def run(self, stop: threading.Event) -> None:
        logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request
        sock = bind_socket(self.listen)
        config = uvicorn.Config(
            ProxyApp(self.engine),
            http="h11",
            ws="none",
            lifespan="on",
            limit_concurrency=MAX_CONNECTIONS,
            log_level="warning",
            access_log=False,
            proxy_headers=False,
            server_header=False,
            date_header=False,
            timeout_graceful_shutdown=3,
        )
        server = self.server = uvicorn.Server(config)

        def _stop_when_asked() -> None:
            stop.wait()
            server.should_exit = True

        threading.Thread(target=_stop_when_asked, name="docker-proxy-stop", daemon=True).start()
        log.info("docker-proxy: serving %s read-only on %s", self.engine, self.listen)
        try:
            server.run(sockets=[sock])
        finally:
            sock.close()
            with contextlib.suppress(FileNotFoundError):
                self.listen.unlink()
        if not stop.is_set() and not server.should_exit:
            raise RuntimeError("docker-proxy: server stopped on its own")
