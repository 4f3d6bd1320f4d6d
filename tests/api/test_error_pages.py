"""Errors: a page in the layout for a browser, JSON for the API, never a traceback.

A real app (`create_app`) on uvicorn, on a real runtime root. To have an
unexpected exception to answer, the test registers one more route on that app
whose handler raises (no route of the product fails on purpose); everything
else (middleware, exception handlers, templates, headers) is the product's.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from litestar import get

from reconciler.api.app import create_app
from reconciler.api.config import UISettings
from reconciler.api.error_pages import SERVER_ERROR
from reconciler.runtime_root import RuntimeRoot
from tests.api.conftest import TOKEN, free_port

SECRET = "db password is hunter2"  # what a traceback or exception text could carry


@get("/boom", include_in_schema=False, sync_to_thread=False)
def boom() -> str:
    raise RuntimeError(f"unexpected: {SECRET}")


@get("/api/boom", include_in_schema=False, sync_to_thread=False)
def api_boom() -> str:
    raise KeyError(SECRET)


@pytest.fixture
def url(runtime_root: RuntimeRoot) -> Iterator[str]:
    app = create_app(UISettings(root=runtime_root, token=TOKEN), watch=False)
    app.register(boom)
    app.register(api_boom)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the app did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(15)


@contextlib.contextmanager
def _session(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, timeout=10) as client:
        answer = client.post("/login", data={"token": TOKEN, "name": "alice", "next": "/"})
        assert answer.status_code == 303, answer.text
        yield client


HTML = {"Accept": "text/html,application/xhtml+xml"}


def test_a_500_is_a_page_for_a_browser_and_json_for_the_api_without_a_traceback(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with _session(url) as browser, caplog.at_level(logging.ERROR, logger="homelab.ui"):
        page = browser.get("/boom", headers=HTML)
        assert page.status_code == 500
        assert page.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
        assert '<h1><span class="status-code">500</span> Something went wrong</h1>' in page.text
        assert SERVER_ERROR.split(";")[0] in page.text  # "The UI failed ... changed by it"
        assert 'href="/queue"' in page.text  # in the layout, with the navigation
        api = browser.get("/api/boom", headers=HTML)  # an API path stays JSON, even so asked
        assert api.status_code == 500
        assert api.json() == {"status_code": 500, "detail": "Internal Server Error"}
        script = httpx.get(f"{url}/boom", headers={"Authorization": f"Bearer {TOKEN}"})
        assert script.status_code == 500 and script.json()["detail"] == "Internal Server Error"
        for answer in (page, api, script):
            assert SECRET not in answer.text and "Traceback" not in answer.text
            assert "RuntimeError" not in answer.text and "KeyError" not in answer.text
    # ... the operator's log has what happened, with the traceback.
    logged = [r for r in caplog.records if r.name == "homelab.ui"]
    assert any("GET /boom failed" in r.getMessage() and r.exc_info for r in logged)


def test_a_404_is_a_page_for_a_browser_and_json_for_the_api(url: str) -> None:
    with _session(url) as browser:
        for path, detail in (("/nowhere", "Not Found"), ("/resources/File/none", "no resource")):
            page = browser.get(path, headers=HTML)
            assert page.status_code == 404, path
            assert page.headers["content-type"].startswith("text/html")
            assert "default-src 'self'" in page.headers["content-security-policy"]
            assert "404</span> Not found" in page.text and detail in page.text
            assert 'href="/queue"' in page.text and 'hx-get="/nowhere"' not in page.text
        api = browser.get("/api/resources/File/none", headers=HTML)
        assert api.status_code == 404
        assert api.json() == {"status_code": 404, "detail": "no resource File/none"}
        assert "default-src 'self'" in api.headers["content-security-policy"]
        plain = httpx.get(f"{url}/nowhere")  # no Accept: text/html, e.g. curl
        assert plain.status_code == 404 and plain.json()["status_code"] == 404
        # A method not allowed, as a page, keeps its status and says so.
        wrong = browser.put("/resources", headers=HTML)
        assert wrong.status_code == 405 and "Method not allowed" in wrong.text
