"""The UI service: the app on uvicorn, stoppable through the service contract.

`UIService(settings).run(stop)` serves until `stop` is set (docs/internals.md
"Services"), so `homelab run ui` and `homelab up` run it the same way. The
operator token is created on the first start and printed once, then only
stored in ROOT/state/ui_token (0600). Called by reconciler/cli/run_ui.py
and the in-process runner.
"""

from __future__ import annotations

import sys
import threading
from typing import TextIO

import uvicorn

from reconciler.api.app import app_context, create_app
from reconciler.api.config import UISettings
from reconciler.api.connections import guarded_protocol
from reconciler.api.limits import (
    ACCEPT_BACKLOG,
    KEEP_ALIVE_SECONDS,
    MAX_HEADER_BYTES,
    ConnectionLimits,
    connection_cap,
)
from reconciler.api.sessions import load_or_create_token


class UIService:
    name = "ui"

    def __init__(self, settings: UISettings, *, out: TextIO | None = None) -> None:
        self.settings = settings
        self.out = out or sys.stderr
        self.server: uvicorn.Server | None = None

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
            app,
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
        server = self.server = uvicorn.Server(config)

        def _stop_when_asked() -> None:
            stop.wait()
            app_context(app).views.close()  # ends the live streams so shutdown is quick
            server.should_exit = True

        threading.Thread(target=_stop_when_asked, name="ui-stop", daemon=True).start()
        server.run()
        if not stop.is_set() and not server.should_exit:
            raise RuntimeError("ui: server stopped on its own")
