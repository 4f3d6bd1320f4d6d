"""The events page and the disk banner in a real browser (Debian's Chromium, Playwright).

A log of three days (the first compressed with zstandard, as compaction
leaves it) served by the real UI on uvicorn: page older to the oldest event
and newer back, filter loosely by type, resource and text and by a time
range, read dates with relative times (the absolute time on hover),
readable data and severity colours. Then a disk threshold above the free
space: the banner on every page and the dashboard's disk card.
Screenshots go to artifacts/screenshots/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from reconciler.api.config import UISettings
from reconciler.events.log import EventLog
from reconciler.resources.key import ResourceKey
from reconciler.runtime_root import RuntimeRoot
from tests.api.conftest import TOKEN, Server
from tests.api.test_eventbrowse import write_log
from tests.browser.test_operator_flow import CHROMIUM_ARGS

SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
PORT = 18450

pytestmark = pytest.mark.browser


@pytest.fixture
def browser_page() -> Iterator[Page]:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        yield context.new_page()
        context.close()
        browser.close()


def login(page: Page, url: str, target: str) -> None:
    page.goto(url + target)
    page.fill("input[name=name]", "alice")
    page.fill("input[name=token]", TOKEN)
    page.click("button[type=submit]")


def shown_ids(page: Page) -> list[str]:
    return [
        str(x)
        for x in page.locator("tr[data-event]").evaluate_all(
            "rows => rows.map(r => r.dataset.event)"
        )
    ]


def test_events_page_pages_and_filters_in_a_browser(
    runtime_root: RuntimeRoot, browser_page: Page
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    events = write_log(runtime_root, 260, days=3, compress=(0,))
    ids = [e["id"] for e in events]
    log = EventLog(runtime_root, "observer")
    log.append("action.failed", ResourceKey("Container", "db"), {"ok": False, "outcome": {"n": 1}})
    log.close()
    server = Server(UISettings(root=runtime_root, port=PORT, token=TOKEN)).start()
    page = browser_page
    try:
        login(page, server.url, "/events?limit=60")
        expect(page.get_by_role("heading", name="Events")).to_be_visible()
        newest = page.locator("tr[data-event]").first
        expect(newest.locator(".etype")).to_have_text("action.failed")
        expect(newest.locator(".etype")).to_have_css("color", "rgb(207, 34, 46)")  # bad: red
        expect(newest.locator(".rel")).to_have_text(re.compile(r"^(just now|\d+ s ago)$"))
        assert "UTC" in str(newest.locator("time").get_attribute("title"))
        data = newest.locator("td.data").inner_text()
        assert "ok: false" in data and "outcome:" in data and "n: 1" in data
        assert "False" not in page.locator("table.events").inner_text()
        page.screenshot(path=str(SHOTS / "events-01-newest.png"), full_page=True)

        seen = shown_ids(page)
        for _ in range(20):
            older = page.get_by_test_id("older").first
            if older.count() == 0:
                break
            older.click()
            page.wait_for_load_state()
            seen.extend(shown_ids(page))
        assert seen[1:] == ids[::-1]  # every retained event, the compressed day included
        expect(page.locator(".pager .meta", has_text="Oldest").first).to_be_visible()
        assert page.locator("tr[data-event] .date").last.inner_text() == "2026-03-01"
        page.screenshot(path=str(SHOTS / "events-02-oldest.png"), full_page=True)
        page.get_by_test_id("newer").first.click()
        page.wait_for_load_state()
        back = shown_ids(page)
        assert back and all(i > seen[-1] for i in back) and back == sorted(back, reverse=True)

        page.goto(server.url + "/events")
        page.fill("input[name=type]", "ACTION.")
        page.fill("input[name=resource]", "web-1")
        page.fill("input[name=since]", "2026-03-01T12:00:00")
        page.fill("input[name=until]", "2026-03-03T00:00:00")
        page.click("form.filters button[type=submit]")
        page.wait_for_load_state()
        want = [
            e["id"]
            for e in events
            if "action." in e["type"]
            and "web-1" in e["ref"]["name"].lower()
            and "2026-03-01T12:00:00" <= e["ts"] < "2026-03-03"
        ]
        assert want and shown_ids(page) == want[::-1][:100]
        assert page.input_value("input[name=resource]") == "web-1"
        page.screenshot(path=str(SHOTS / "events-03-filtered.png"), full_page=True)
        page.fill("input[name=text]", "NEEDLE2")
        page.click("form.filters button[type=submit]")
        page.wait_for_load_state()
        rows = shown_ids(page)
        assert rows and set(rows) <= set(want)
        assert all("needle2" in t.lower() for t in page.locator("td.data").all_inner_texts())
    finally:
        server.close()


def test_disk_banner_and_card(runtime_root: RuntimeRoot, browser_page: Page) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    write_log(runtime_root, 50, days=1)
    settings = UISettings(
        root=runtime_root,
        port=PORT + 1,
        token=TOKEN,
        disk_warn_percent=100.0,
        disk_warn_bytes=1 << 62,
    )
    server = Server(settings).start()
    page = browser_page
    try:
        login(page, server.url, "/")
        banner = page.get_by_test_id("disk-banner")
        expect(banner).to_be_visible()
        expect(banner).to_contain_text("Disk space low")
        expect(page.get_by_test_id("disk")).to_contain_text("DiskPressure")
        assert "KiB" in page.get_by_test_id("disk-log").inner_text()
        page.screenshot(path=str(SHOTS / "disk-01-banner.png"), full_page=True)
        page.goto(server.url + "/events")
        expect(page.get_by_test_id("disk-banner")).to_be_visible()
    finally:
        server.close()
    server = Server(UISettings(root=runtime_root, port=PORT + 2, token=TOKEN)).start()
    try:
        page.context.clear_cookies()
        login(page, server.url, "/")
        expect(page.get_by_test_id("disk")).to_be_visible()
        free = page.get_by_test_id("disk-free").inner_text()
        assert " of " in free and "%" in free
        pressured = "DiskPressure" in free
        expect(page.get_by_test_id("disk-banner")).to_have_count(1 if pressured else 0)
    finally:
        server.close()
