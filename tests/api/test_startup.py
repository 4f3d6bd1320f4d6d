"""The UI's first read and its file watcher, on a real uvicorn server.

`UIService.run` builds the app (which reads the runtime root once) and only
then starts uvicorn, whose lifespan starts the file watcher: an action the
supervisor proposes in between (as `homelab up` does, the services starting
together) must still appear at once, not at the next periodic resync (15 s).
The test takes the same steps as `UIService.run`, proposing in that gap.
"""

from __future__ import annotations

import threading
import time

import httpx
import uvicorn

from reconciler.api.app import create_app
from reconciler.api.config import UISettings
from tests.api.conftest import TOKEN, UILab, free_port, wait_for

PROMPT_SECONDS = 3.0


def test_actions_proposed_between_the_first_read_and_the_watcher_appear_promptly(
    lab: UILab,
) -> None:
    settings = UISettings(root=lab.root, port=free_port(), token=TOKEN)
    app = create_app(settings)  # the first read of the runtime root
    proposed = {a.id for a in lab.propose()}  # before uvicorn (and the watcher) start
    assert proposed
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=settings.port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        client = httpx.Client(
            base_url=f"http://127.0.0.1:{settings.port}",
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=5,
        )
        wait_for(lambda: server.started, timeout=20)
        started = time.monotonic()

        def listed() -> bool:
            rows = client.get("/api/actions", params={"state": "pending"}).json()
            return proposed <= {row["id"] for row in rows}

        wait_for(listed, timeout=PROMPT_SECONDS)
        assert time.monotonic() - started < PROMPT_SECONDS
    finally:
        server.should_exit = True
        thread.join(timeout=15)
