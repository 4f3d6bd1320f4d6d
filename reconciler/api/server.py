"""The UI service: the app on uvicorn, stoppable through the service contract.

`UIService(settings).run(stop)` serves until `stop` is set (docs/internals.md
"Services"), so `homelab run ui` and `homelab up` run it the same way. It
runs uvicorn as a `QuietServer`, whose main loop waits for the stop instead
of ticking ten times a second (the tick's one other job, the `Date`
header, is done per request by reconciler.api.connections). The
operator token is created on the first start and printed once, then only
stored in ROOT/state/ui_token (0600). Called by reconciler/cli/run_ui.py
and the in-process runner.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from types import FrameType
from typing import TextIO

import uvicorn

from reconciler.api.app import app_context, create_app
from reconciler.api.config import UISettings
from reconciler.api.connections import guarded_protocol
from reconciler.api.error_pages import strip_base_path
from reconciler.api.limits import (
    ACCEPT_BACKLOG,
    KEEP_ALIVE_SECONDS,
    MAX_HEADER_BYTES,
    ConnectionLimits,
    connection_cap,
)
from reconciler.api.sessions import load_or_create_token


class QuietServer(uvicorn.Server):
    """uvicorn's server whose main loop sleeps until it is asked to exit."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._exit: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def main_loop(self) -> None:
        self._exit = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        await self.on_tick(0)  # sets the default headers once
        if not self.should_exit:
            await self._exit.wait()

    def request_exit(self) -> None:
        """Ask the server to shut down (from any thread)."""
        self.should_exit = True
        loop, event = self._loop, self._exit
        if loop is not None and event is not None:
            loop.call_soon_threadsafe(event.set)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)  # uvicorn's own signal handling (main thread only)
        self.request_exit()


class UIService:
    name = "ui"

    def __init__(self, settings: UISettings, *, out: TextIO | None = None) -> None:
        self.settings = settings
        self.out = out or sys.stderr
        self.server: QuietServer | None = None

    def _announce(self) -> None:
        root = self.settings.root.ensure()
        token, created = load_or_create_token(root)
        where = f"http://{self.settings.host}:{self.settings.port}{self.settings.base_path}/"
        cap = connection_cap(self.settings.max_connections)
        print(f"ui: serving {where} (at most {cap} connections)", file=self.out)
        if created and self.settings.token is None:
            print(
                f"ui: operator token (shown once; kept in {root.state / 'ui_token'}): {token}",
                file=self.out,
            )
        self.out.flush()

    def run(self, stop: threading.Event) -> None:
        self._announce()
        app = create_app(self.settings)
        cap = connection_cap(self.settings.max_connections)
        limits = ConnectionLimits(cap, header_timeout=self.settings.header_timeout)
        config = uvicorn.Config(
            strip_base_path(app, self.settings.base_path),
            host=self.settings.host,
            port=self.settings.port,
            http=guarded_protocol(limits),
            backlog=ACCEPT_BACKLOG,  # also asyncio's accept batch: descriptors beyond the cap
            h11_max_incomplete_event_size=MAX_HEADER_BYTES,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            # in-flight requests; the guard already keeps connections <= cap, and a
            # connection it just closed may count for one more loop turn
            limit_concurrency=cap + 64,
            log_level="warning",
            access_log=False,
            proxy_headers=False,  # the auth middleware trusts forwarded headers from proxies only
            timeout_graceful_shutdown=3,
            lifespan="on",
        )
        server = self.server = QuietServer(config)

        def _stop_when_asked() -> None:
            stop.wait()
            app_context(app).views.close()  # ends the live streams so shutdown is quick
            server.request_exit()

        threading.Thread(target=_stop_when_asked, name="ui-stop", daemon=True).start()
        server.run()
        if not stop.is_set() and not server.should_exit:
            raise RuntimeError("ui: server stopped on its own")
