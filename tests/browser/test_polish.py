"""The polish of the UI in a real browser (Debian's Chromium driven by Playwright).

The demo homelab of tests/browser/demo.py (real git, root, supervisor, UI on
uvicorn). Every test runs at a desktop (1440x900) and a phone (390x844) viewport:
404 pages in the layout (JSON still for the API), dark mode by
`prefers-color-scheme`, relative times with the absolute one on hover and kept
fresh, buttons named with their operation and resource, tables as stacked cards
on the phone, 44 px tap targets there, and the "connection lost" banner while
the UI is down, gone once it is back. Screenshots go to artifacts/screenshots/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from reconciler.api.config import UISettings
from reconciler.runtime_root import RuntimeRoot
from tests.api.conftest import TOKEN, Server, serve, wait_for
from tests.browser.demo import Demo, build_demo
from tests.browser.test_operator_flow import CHROMIUM_ARGS
from tests.conftest import GitRepo

pytestmark = pytest.mark.browser
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
VIEWPORTS = {"desktop": (1440, 900), "phone": (390, 844)}


@pytest.fixture(params=list(VIEWPORTS))
def viewport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


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


class Session:
    """A logged-in browser context; collects script errors and CSP refusals."""

    def __init__(
        self, browser: Browser, viewport: str, *, stream_errors: bool = False, **options: Any
    ) -> None:
        width, height = VIEWPORTS[viewport]
        self.context: BrowserContext = browser.new_context(
            viewport={"width": width, "height": height}, **options
        )
        self.page: Page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on(
            "console",
            lambda m: (
                self.errors.append(f"{m.text} {m.location.get('url')}")
                if m.type == "error"
                and not m.location.get("url", "").endswith("/favicon.ico")
                and "status of 404" not in m.text  # the 404 page itself
                # the banner test stops the UI: its stream errors (htmx logs the Event)
                and not (
                    stream_errors
                    and ("ERR_CONNECTION_REFUSED" in m.text or m.text == "[object Event]")
                )
                else None
            ),
        )

    def login(self, url: str) -> Page:
        self.page.goto(url + "/login")
        self.page.fill("input[name=name]", "alice")
        self.page.fill("input[name=token]", TOKEN)
        self.page.click("button[type=submit]")
        expect(self.page.get_by_role("heading", name="Dashboard")).to_be_visible()
        return self.page

    def close(self) -> None:
        errors = list(self.errors)  # (closing the context aborts its live stream: not counted)
        self.context.close()
        assert not errors, errors  # no script error, no CSP refusal


@pytest.fixture
def session(browser: Browser, viewport: str) -> Iterator[Session]:
    s = Session(browser, viewport)
    yield s
    s.close()


def shot(page: Page, name: str, viewport: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"polish-{name}-{viewport}.png"), full_page=True)


def fits(page: Page) -> None:
    """Nothing wider than the viewport: no sideways scrolling of the page."""
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], width  # type: ignore[index]


# -- 404 / JSON errors ---------------------------------------------------------


def test_a_missing_page_is_a_page_in_the_layout_and_the_api_keeps_json(
    session: Session, server: Server, viewport: str
) -> None:
    page = session.login(server.url)
    for path, detail in (
        ("/no/such/page", "Not Found"),
        ("/resources/Container/nothere", "no resource Container/nothere"),
        ("/actions/" + "f" * 32, "no action"),
    ):
        response = page.goto(server.url + path)
        assert response is not None and response.status == 404, path
        assert response.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in response.headers["content-security-policy"]
        expect(page.get_by_role("heading", name="404 Not found")).to_be_visible()
        expect(page.get_by_test_id("error-detail")).to_contain_text(detail)
        nav = page.get_by_role("navigation").first
        expect(nav.get_by_role("link", name="Queue")).to_be_visible()  # the layout, signed in
        fits(page)
    shot(page, "404", viewport)
    page.get_by_role("link", name="Dashboard").last.click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    # The API, asked by a script with the same session: JSON, as before.
    api = page.request.get(server.url + "/api/resources/Container/nothere")
    assert api.status == 404 and api.headers["content-type"].startswith("application/json")
    assert api.json() == {"status_code": 404, "detail": "no resource Container/nothere"}
    # Logged out: the 404 page, offering to log in (no navigation of a session).
    anonymous = httpx.get(server.url + "/no/such/page", headers={"Accept": "text/html"})
    assert (
        anonymous.status_code == 404
        and '<h1><span class="status-code">404</span>' in anonymous.text
    )
    assert 'href="/login"' in anonymous.text and 'href="/queue"' not in anonymous.text


# -- dark mode -------------------------------------------------------------------


def _colours(page: Page, selector: str) -> tuple[str, str]:
    # Found and read in one evaluate: a live swap of the page between finding the element
    # and reading its style would leave a detached element, whose computed colours are "".
    page.wait_for_selector(selector)
    found = page.evaluate(
        """s => {
            const c = getComputedStyle(document.querySelector(s));
            return [c.color, c.backgroundColor];
        }""",
        selector,
    )
    return (found[0], found[1])


def test_dark_mode_follows_the_system_setting(
    browser: Browser, server: Server, demo: Demo, viewport: str
) -> None:
    seen = {}
    for scheme in ("light", "dark"):
        s = Session(browser, viewport, color_scheme=scheme)
        try:
            page = s.login(server.url)
            badge = _colours(page, ".badge")  # the dashboard's pending list
            page.goto(server.url + "/queue")
            body = _colours(page, "body")
            card = _colours(page, "article.card")
            approve = _colours(page, "button.approve")
            seen[scheme] = (body, card, badge, approve)
            shot(page, f"queue-{scheme}", viewport)
        finally:
            s.close()
    assert seen["light"][0] == ("rgb(29, 33, 39)", "rgb(246, 247, 249)")
    assert seen["dark"][0] == ("rgb(230, 237, 243)", "rgb(13, 17, 23)")
    assert seen["dark"][1][1] == "rgb(22, 27, 34)"  # cards are dark too
    assert seen["dark"][2] != seen["light"][2]  # badges have their dark colours
    assert seen["dark"][3][0] == "rgb(255, 255, 255)"  # white on green either way
    # (contrast AA of every colour: tests/browser/test_accessibility.py, in both schemes)


# -- relative times ----------------------------------------------------------------


def test_times_are_relative_with_the_absolute_one_on_hover_and_stay_fresh(
    browser: Browser, server: Server, demo: Demo, viewport: str
) -> None:
    s = Session(browser, viewport)
    try:
        s.page.clock.install()
        page = s.login(server.url)
        action = demo.one("replace", "web")
        page.goto(f"{server.url}/actions/{action.id}")
        proposed = page.get_by_test_id("timeline").locator("time").first
        expect(proposed).to_have_text(re.compile(r"^(just now|\d+ s ago)$"))
        assert proposed.get_attribute("datetime") == action.created_at
        title = proposed.get_attribute("title") or ""
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} UTC", title), title
        assert title.startswith(action.created_at[:10])
        page.clock.fast_forward(7 * 60 * 1000)  # seven minutes later, without reloading
        expect(proposed).to_have_text(re.compile(r"^(7|8) min ago$"))
        page.goto(server.url + "/queue")
        row = page.locator("[data-testid=pending-action]", has_text="Container/web")
        expect(row.locator("time")).to_have_text(re.compile(r"ago$"))
        page.clock.fast_forward(3 * 3600 * 1000)
        expect(row.locator("time")).to_have_text(re.compile(r"^3 h ago$"))
        page.goto(server.url + "/events")
        first = page.locator("table.events tbody tr").first
        expect(first.locator("[data-ago]")).to_have_text(re.compile(r"ago$|just now"))
        assert first.locator("time").get_attribute("title")
    finally:
        s.close()


# -- accessible names ----------------------------------------------------------------


def test_every_button_names_its_operation_and_resource(
    session: Session, server: Server, demo: Demo, viewport: str
) -> None:
    page = session.login(server.url)
    page.goto(server.url + "/queue")
    for operation, ref in (
        ("replace", "Container/web"),
        ("create", "Container/cache"),
        ("update", "File/motd"),
    ):
        button = page.get_by_role("button", name=f"Approve {operation} {ref}", exact=True)
        expect(button).to_have_count(1)
        # the visible text stays short; the rest is for screen readers only
        visible = button.evaluate("b => b.firstChild.textContent.trim()")
        assert visible == "Approve"
        expect(
            page.get_by_role("button", name=f"Reject {operation} {ref}", exact=True)
        ).to_have_count(1)
        expect(
            page.get_by_role("textbox", name=f"reason to reject {operation} {ref}")
        ).to_have_count(1)
        expect(page.get_by_role("checkbox", name=f"select {operation} {ref}")).to_have_count(1)
    delete = page.get_by_role("button", name="Approve delete Container/old-worker", exact=True)
    expect(delete).to_have_count(1)
    expect(
        page.get_by_role("button", name="Reject delete Container/old-worker", exact=True)
    ).to_have_count(1)
    # No two buttons on the page share a name (each says what it acts on).
    names = page.eval_on_selector_all(
        "#pending-list button", "bs => bs.map(b => b.textContent.replace(/\\s+/g, ' ').trim())"
    )
    assert len(names) == len(set(names)) == 2 * len(demo.pending()), names
    # The action page's buttons carry the same names.
    page.goto(f"{server.url}/actions/{demo.one('delete').id}")
    expect(
        page.get_by_role("button", name="Approve delete Container/old-worker", exact=True)
    ).to_be_visible()


# -- stacked cards and tap targets on the phone ---------------------------------------------


SHAPE = """() => {
  const table = [...document.querySelectorAll('.scroll > table')]
    .find(t => t.querySelector('td[data-label]'));
  const row = [...table.querySelectorAll('tbody > tr')]
    .find(r => r.querySelector('td[data-label]'));
  const cell = row.querySelector('td[data-label]');
  return {display: getComputedStyle(row).display,
          head: table.querySelector('thead').getBoundingClientRect().height,
          before: getComputedStyle(cell, '::before').content, label: cell.dataset.label,
          width: row.getBoundingClientRect().width};
}"""
TABLE_PAGES = ("/resources", "/queue", "/events", "/errors", "/resources/Container/web")


def test_tables_are_cards_on_the_phone_and_tables_on_the_desktop(
    session: Session, server: Server, demo: Demo, viewport: str
) -> None:
    # a decided action, so the queue's "Recent" table has a row
    decided = demo.one("create").id
    demo.queue.move(decided, "pending", "rejected", actor="bob", reason="later")
    with server.client() as api:  # seen by the UI before the pages load: no live swap meanwhile
        wait_for(lambda: api.get(f"/api/actions/{decided}").json()["action"]["state"] == "rejected")
    page = session.login(server.url)
    for path in TABLE_PAGES:
        page.goto(server.url + path)
        expect(page.locator(".scroll > table td[data-label]").first).to_be_attached()
        # Read in one go: a live swap of the page (an event arrived) cannot come in between.
        seen = page.evaluate(SHAPE)
        if viewport == "phone":
            assert seen["display"] == "block", (path, seen)
            assert seen["head"] <= 1, (path, seen)  # the header row is only for screen readers
            assert seen["before"] == f'"{seen["label"]}"', (path, seen)
            assert seen["width"] <= 390, (path, seen)
        else:
            assert seen["display"] == "table-row", (path, seen)
            assert seen["head"] > 10, (path, seen)
        fits(page)
    page.goto(server.url + "/resources")
    shot(page, "resources", viewport)


# What a finger must hit on the phone: every control and every link that is not
# part of a sentence (inline links in running text are exempt, as in WCAG 2.5.8).
TARGETS = (
    "button:visible, select:visible, summary:visible, input:visible, "
    "header a:visible, nav a:visible, td a:visible, .ops a:visible, a.stat:visible"
)


def test_tap_targets_are_44_px_on_the_phone(
    session: Session, server: Server, demo: Demo, viewport: str
) -> None:
    page = session.login(server.url)
    small: list[str] = []
    counted = 0
    for path in (
        "/",
        "/resources",
        "/queue",
        "/events",
        "/errors",
        "/resources/Container/web",
        f"/actions/{demo.one('delete').id}",
    ):
        page.goto(server.url + path)
        for target in page.locator(TARGETS).all():
            box = target.bounding_box()
            if box is None or box["width"] == 0:
                continue
            counted += 1
            if viewport == "phone" and box["height"] < 43.5:
                html = target.evaluate("e => e.outerHTML.slice(0, 90)")
                small.append(f"{path}: {box['width']:.0f}x{box['height']:.0f} {html}")
            if viewport == "phone" and target.evaluate("e => e.type === 'checkbox'"):
                assert box["width"] >= 44, (path, box)
    assert counted > 60, counted
    assert not small, "\n".join(small)


# -- the live stream's banner -------------------------------------------------------


def test_a_dropped_live_stream_shows_a_banner_until_it_reconnects(
    browser: Browser, demo: Demo, viewport: str
) -> None:
    session = Session(browser, viewport, stream_errors=True)
    first = serve(demo.root)
    port = first.settings.port
    again: Server | None = None
    try:
        page = session.login(first.url)
        banner = page.get_by_test_id("conn-lost")
        page.wait_for_function("() => !!window.htmx")
        expect(banner).to_be_hidden()
        first.close()  # the UI stops: its stream ends, reconnecting is refused
        expect(banner).to_be_visible(timeout=15000)
        expect(banner).to_have_text(re.compile("^Connection lost — retrying"))
        expect(banner).to_have_attribute("role", "status")
        shot(page, "connection-lost", viewport)
        # The UI is back on the same address (same root, same token: the session holds).
        again = Server(UISettings(root=demo.root, port=port, token=TOKEN)).start()
        expect(banner).to_be_hidden(timeout=30000)
        # ... and the page is live again: a new proposal shows without a reload.
        pending = page.get_by_test_id("pending-count")
        before = int(pending.inner_text())
        demo.queue.move(demo.one("create").id, "pending", "rejected", actor="bob", reason="later")
        expect(pending).to_have_text(str(before - 1), timeout=15000)
    finally:
        if again is not None:
            again.close()
        session.close()
