"""`homelab up --base-path /homelab`: every page, link, asset and form under the prefix.

A real `homelab up` process (the example repository, the private Docker engine)
serves the UI at http://127.0.0.1:PORT/homelab/ with no proxy in front. Debian's
Chromium (desktop and phone) logs in there, follows every link of every page it
reaches (breadth first, same origin), and checks that each address the pages
name (links, forms, scripts, styles, the live stream) is under /homelab/, that
each page answers 200 and that the live stream connects; a rejection posted from
the queue comes back under the prefix (nothing is approved: the example would be
applied outside the test's folders). A missing page is the 404 page, under it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.api.conftest import free_port
from tests.browser.test_operator_flow import CHROMIUM_ARGS
from tests.cli import test_up as up_kit
from tests.cli.test_up import Up, eventually, get_json

pytestmark = [pytest.mark.browser, pytest.mark.docker]
start_up = up_kit.start_up  # the fixture that runs `homelab up` and kills what is left
VIEWPORTS = {"desktop": (1440, 900), "phone": (390, 844)}
NAMED = (
    "() => Array.from(document.querySelectorAll("
    "'a[href], link[href], script[src], form[action], [sse-connect], [hx-get]'))"
    ".map(e => e.getAttribute('href') || e.getAttribute('src') || e.getAttribute('action')"
    " || e.getAttribute('sse-connect') || e.getAttribute('hx-get'))"
)


def crawl(page: Page, origin: str, start: str, limit: int = 60) -> dict[str, int]:
    """Status of every page reached from `start` by links; asserts every named address."""
    seen: dict[str, int] = {}
    todo = [start]
    while todo and len(seen) < limit:
        path = todo.pop(0)
        if path in seen:
            continue
        response = page.goto(origin + path)
        assert response is not None, path
        seen[path] = response.status
        for named in page.evaluate(NAMED):
            where = urlsplit(named)
            assert not where.netloc or where.netloc == urlsplit(origin).netloc, (path, named)
            assert where.path.startswith("/homelab/"), f"{path} names {named}"
        for href in page.eval_on_selector_all(
            "a[href]", "as => as.map(a => a.getAttribute('href'))"
        ):
            target = href.split("#")[0]
            if target and target not in seen and "notice=" not in target:
                todo.append(target)
    return seen


def test_up_serves_every_page_and_link_under_the_base_path(
    tmp_path: Path, docker_host: str, start_up: Callable[[list[str], dict[str, str]], Up]
) -> None:
    port = free_port()
    root = tmp_path / "state"
    up = start_up(
        ["--root", str(root), "--port", str(port), "--base-path", "/homelab/"],
        {"DOCKER_HOST": docker_host},
    )
    assert up.wait_line("UI: ") == f"UI: http://127.0.0.1:{port}/homelab/"
    token = (root / "state" / "ui_token").read_text().strip()
    origin = f"http://127.0.0.1:{port}"
    eventually(
        lambda: get_json(f"{origin}/homelab/summary")["actions"]["pending"] >= 2,
        "the example's actions to be proposed\n" + "\n".join(up.lines),
        timeout=120,
    )
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            for viewport, (width, height) in VIEWPORTS.items():
                context = browser.new_context(viewport={"width": width, "height": height})
                page = context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
                page.on(
                    "console",
                    lambda m, errors=errors: (
                        errors.append(m.text)
                        if m.type == "error" and "status of 404" not in m.text
                        else None
                    ),
                )
                # every asset and stream answers; the one 404 asked for and the favicon aside
                page.on(
                    "response",
                    lambda r, errors=errors: (
                        errors.append(f"{r.status} {r.url}")
                        if r.status >= 400
                        and not r.url.endswith(("/favicon.ico", "/homelab/no/such/page"))
                        else None
                    ),
                )
                page.goto(origin + "/homelab/queue")  # not logged in: the login page, under it
                assert urlsplit(page.url).path == "/homelab/login", page.url
                page.fill("input[name=name]", f"alice-{viewport}")
                page.fill("input[name=token]", token)
                page.click("button[type=submit]")
                expect(page.get_by_role("heading", name="Action queue")).to_be_visible()
                assert urlsplit(page.url).path == "/homelab/queue"
                seen = crawl(page, origin, "/homelab/")
                assert {
                    "/homelab/",
                    "/homelab/resources",
                    "/homelab/queue",
                    "/homelab/events",
                } <= set(seen)
                assert any(p.startswith("/homelab/actions/") for p in seen), seen
                assert any(p.startswith("/homelab/resources/") for p in seen), seen
                assert {p: s for p, s in seen.items() if s != 200} == {}
                # The live stream is connected under the prefix: no banner.
                page.goto(origin + "/homelab/queue")
                page.wait_for_function("() => !!window.htmx")
                expect(page.get_by_test_id("conn-lost")).to_be_hidden()
                # A decision posted from the queue comes back under the prefix. A rejection:
                # approving would apply the example (its file under /tmp/homelab-example,
                # its containers) outside this test's folders.
                row = page.locator("[data-testid=pending-action]").first
                row.locator("input[name=reason]").fill(f"not now ({viewport})")
                row.locator("[data-testid=reject]").click()
                expect(page.get_by_test_id("notice")).to_contain_text("Rejected")
                assert urlsplit(page.url).path == "/homelab/queue", page.url
                missing = page.goto(origin + "/homelab/no/such/page")
                assert missing is not None and missing.status == 404
                expect(page.get_by_role("heading", name="404 Not found")).to_be_visible()
                back = page.get_by_test_id("error-page").get_by_role("link", name="Dashboard")
                expect(back).to_have_attribute("href", re.compile("^/homelab/$"))
                context.close()
                assert not errors, (viewport, errors)
        finally:
            browser.close()
    assert up.interrupt() == 0
