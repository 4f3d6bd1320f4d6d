"""axe-core over every page of the UI, desktop and phone, light and dark: nothing serious.

The demo homelab of tests/browser/demo.py (real git, root, supervisor and UI on
uvicorn) has pending actions of every kind (a replace, a File line diff, a create,
a delete), a manifest error and an in-sync resource. Debian's Chromium (Playwright)
opens each page in a browser context of the given viewport and `color_scheme`;
axe-core (tests/browser/axe.py: the pinned npm tarball) runs on it, and no
violation of impact serious or critical may be left. The login page is checked
logged out, the others logged in; the 404 is a page in the layout.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from reconciler.runtime_root import RuntimeRoot
from tests.api.conftest import TOKEN, Server, serve
from tests.browser.axe import install_axe, run_axe
from tests.browser.demo import Demo, build_demo
from tests.browser.test_operator_flow import CHROMIUM_ARGS
from tests.conftest import GitRepo

pytestmark = pytest.mark.browser
VIEWPORTS = {"desktop": (1440, 900), "phone": (390, 844)}


@pytest.fixture
def demo(git_repo: GitRepo, runtime_root: RuntimeRoot) -> Demo:
    return build_demo(git_repo, runtime_root)


@pytest.fixture
def server(demo: Demo) -> Iterator[Server]:
    srv = serve(demo.root)
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def pages_of(demo: Demo) -> dict[str, str]:
    """Every page an operator reaches, by a short name."""
    replace = demo.one("replace", "web")
    delete = demo.one("delete", "old-worker")
    return {
        "dashboard": "/",
        "resources": "/resources",
        "resource": "/resources/Container/web",
        "resource-invalid": "/resources/Container/proxy",
        "queue": "/queue",
        "action-replace": f"/actions/{replace.id}",
        "action-delete": f"/actions/{delete.id}",
        "action-file": f"/actions/{demo.one('update', 'motd').id}",
        "events": "/events",
        "errors": "/errors",
        "not-found": "/no/such/page",
    }


def login(page: Page, server: Server) -> None:
    page.goto(server.url + "/login")
    page.fill("input[name=name]", "alice")
    page.fill("input[name=token]", TOKEN)
    page.click("button[type=submit]")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_no_serious_or_critical_violation_on_any_page(
    browser: Browser, server: Server, demo: Demo, viewport: str, scheme: str
) -> None:
    width, height = VIEWPORTS[viewport]
    context = browser.new_context(
        viewport={"width": width, "height": height},
        color_scheme=scheme,  # type: ignore[arg-type]
    )
    install_axe(context)
    try:
        page = context.new_page()
        found: dict[str, list[str]] = {}
        page.goto(server.url + "/login")
        found["login"] = run_axe(page)
        login(page, server)
        for name, path in pages_of(demo).items():
            response = page.goto(server.url + path)
            assert response is not None
            assert response.status == (404 if name == "not-found" else 200), (name, path)
            page.wait_for_load_state("load")
            found[name] = run_axe(page)
        assert set(found) == {"login", *pages_of(demo)}
        bad = {name: lines for name, lines in found.items() if lines}
        assert not bad, "\n".join(f"{n}: {line}" for n, lines in bad.items() for line in lines)
    finally:
        context.close()
